# -*- test-case-name: tests.unit.calendar.test_expansion -*-
"""
Tests for L{conference.calendar.expansion}: a calendar's live instances,
the budget they share, and errors instead of overflows.  (Expansion
details, such as RDATE periods, EXDATE and time zones, are tested through
free/busy in L{tests.unit.calendar.test_freebusy}.)
"""

from __future__ import annotations

from datetime import datetime, timedelta

from twisted.trial.unittest import SynchronousTestCase

from conference.calendar import values as cv
from conference.calendar.errors import ExpansionError
from conference.calendar.expansion import calendar_occurrences, expand, live_masters
from conference.calendar.recurrence import Budget
from conference.calendar.timezones import TimezoneResolver
from tests.unit.calendar.support import UTC, conference_event, request

START = datetime(2024, 1, 2, 10, tzinfo=UTC)
WINDOW = (START - timedelta(days=1), START + timedelta(days=30))


class OccurrenceTests(SynchronousTestCase):
    """
    The live instances of a calendar, sorted, with their RECURRENCE-ID.
    """

    def test_sorted_with_overrides(self) -> None:
        """Two weekly events interleave; an override moves its instance and keeps its RID."""
        first = conference_event(uid="a")
        first.add("RRULE", cv.parse_recur("FREQ=WEEKLY;COUNT=3"))
        second = conference_event(uid="b", start=START + timedelta(days=1))
        second.add("RRULE", cv.parse_recur("FREQ=WEEKLY;COUNT=2"))
        moved = conference_event(uid="a", start=START + timedelta(days=8, hours=3))
        moved.add("RECURRENCE-ID", START + timedelta(days=7))
        found = calendar_occurrences(request(first, second, moved), *WINDOW)
        starts = [o.start - START for o in found]
        self.assertEqual(
            starts,
            [
                timedelta(0),
                timedelta(days=1),
                timedelta(days=8),
                timedelta(days=8, hours=3),
                timedelta(days=14),
            ],
        )
        override = found[3]
        self.assertIs(override.event, moved)
        self.assertEqual(override.recurrence_id, START + timedelta(days=7))
        self.assertIsNone(
            calendar_occurrences(request(conference_event()), *WINDOW)[0].recurrence_id
        )

    def test_cancelled(self) -> None:
        """A cancelled master has no instances, not even through an override."""
        master = conference_event()
        master.add("RRULE", cv.parse_recur("FREQ=DAILY;COUNT=3"))
        master.add("STATUS", "CANCELLED")
        override = conference_event(start=START + timedelta(days=1, hours=2))
        override.add("RECURRENCE-ID", START + timedelta(days=1))
        calendar = request(master, override)
        self.assertEqual(live_masters(calendar), [])
        self.assertEqual(calendar_occurrences(calendar, *WINDOW), [])


class BoundTests(SynchronousTestCase):
    """
    One budget for a calendar; arithmetic past the calendar is an error.
    """

    def test_shared_budget(self) -> None:
        """The events of a calendar draw on one budget."""
        events = []
        for uid in "abc":
            event = conference_event(uid=uid)
            event.add("RRULE", cv.parse_recur("FREQ=HOURLY;COUNT=100"))
            events.append(event)
        budget = Budget()
        calendar_occurrences(request(*events[:1]), *WINDOW, budget=budget)
        one = budget.spent
        self.assertRaises(
            ExpansionError, calendar_occurrences, request(*events), *WINDOW, budget=Budget(2 * one)
        )

    def test_overflow(self) -> None:
        """An instance ending past the year 9999 is an ExpansionError, not an OverflowError."""
        event = conference_event()
        event.remove("DTEND")
        event.set("DTSTART", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC))
        event.set("DURATION", timedelta(days=1))
        found = expand(event, [], *WINDOW, resolver=TimezoneResolver())
        error = self.assertRaises(ExpansionError, list, found)
        self.assertIn("cannot expand VEVENT", str(error))

    def test_mixed_period(self) -> None:
        """An RDATE period from a UTC to a floating time is an ExpansionError."""
        event = conference_event()
        period = cv.Period(START + timedelta(days=2), datetime(2024, 1, 4, 12))
        event.add("RDATE", [period], None, cv.PERIOD)
        found = expand(event, [], *WINDOW, resolver=TimezoneResolver())
        self.assertRaises(ExpansionError, list, found)
