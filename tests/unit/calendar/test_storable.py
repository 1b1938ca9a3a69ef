# -*- test-case-name: tests.unit.calendar.test_storable -*-
"""
Tests for L{conference.calendar.storable}: each reason a calendar may not
be stored, with the REQUEST-STATUS it gets, and the work the checks do.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Optional

from twisted.trial.unittest import SynchronousTestCase

from conference.calendar import values as cv
from conference.calendar.errors import RequestStatus
from conference.calendar.model import Component
from conference.calendar.recurrence import ACCEPT_STEPS, HORIZON, MAX_DURATION, Budget
from conference.calendar.storable import check_storable
from conference.calendar.xcal_reader import MAX_NESTING
from tests.unit.calendar.support import UTC, conference_event, request

NOW = datetime(2024, 1, 1, tzinfo=UTC)


def check(*events: Component, budget: Optional[Budget] = None) -> Optional[RequestStatus]:
    """
    L{check_storable} of a calendar holding C{events}, all of them changed.
    """
    return check_storable(request(*events), events, now=NOW, budget=budget)


def with_rule(text: str, **kw: object) -> Component:
    """
    The conference event recurring by C{text}.
    """
    event = conference_event(**kw)  # type: ignore[arg-type]
    event.add("RRULE", cv.parse_recur(text))
    return event


class AcceptedTests(SynchronousTestCase):
    """
    What the server stores.
    """

    def test_conference(self) -> None:
        """A plain and a weekly conference are storable, at a small cost."""
        budget = Budget(ACCEPT_STEPS)
        self.assertIsNone(check(conference_event(), budget=budget))
        self.assertIsNone(check(with_rule("FREQ=WEEKLY;BYDAY=MO,TH"), budget=budget))
        self.assertLess(budget.spent, 1000)

    def test_cancelled_exempt(self) -> None:
        """A cancelled event is never expanded again: bad dates or rules do not stop a CANCEL."""
        event = with_rule("FREQ=SECONDLY", start=datetime(1500, 1, 1, tzinfo=UTC))
        event.set("STATUS", "CANCELLED")
        self.assertIsNone(check(event))


class ReadableTests(SynchronousTestCase):
    """
    Stored calendars read back.
    """

    def test_nesting(self) -> None:
        """Components nested deeper than the reader allows are 3.10."""
        event = conference_event()
        inner = event
        for _ in range(MAX_NESTING):
            alarm = Component("VALARM")
            alarm.add("ACTION", "DISPLAY")
            inner.components.append(alarm)
            inner = alarm
        found = check(event)
        assert found is not None
        self.assertEqual(found.code, "3.10")
        self.assertIn(f"nested deeper than {MAX_NESTING}", str(found.data))

    def test_read_back(self) -> None:
        """A value xCal cannot carry (a control character) is 3.1."""
        event = conference_event()
        event.set("SUMMARY", "bell \x07")
        found = check(event)
        assert found is not None
        self.assertEqual(found.code, "3.1")
        self.assertIn("cannot be stored", str(found.data))


class DateTests(SynchronousTestCase):
    """
    Dates stay in the range the server computes with, and make sense.
    """

    def assertStatus(self, event: Component, code: str, text: str) -> None:
        found = check(event)
        assert found is not None, text
        self.assertEqual(found.code, code)
        self.assertIn(text, str(found.data))

    def test_end_of_time(self) -> None:
        """DTSTART 9999-12-31T23:59:59Z with DURATION P1D is 3.5 (it overflowed at INVITE)."""
        event = conference_event()
        event.remove("DTEND")
        event.set("DTSTART", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC))
        event.set("DURATION", timedelta(days=1))
        self.assertStatus(event, "3.5", "DTSTART 9999-12-31T23:59:59 is outside the years")

    def test_other_dates(self) -> None:
        """RDATE, EXDATE and RECURRENCE-ID values are in range too."""
        for name in ("RDATE", "EXDATE", "RECURRENCE-ID"):
            event = conference_event()
            event.add(name, datetime(1500, 1, 1, tzinfo=UTC))
            self.assertStatus(event, "3.5", f"{name} 1500-01-01T00:00:00 is outside")

    def test_end_before_start(self) -> None:
        """DTEND before DTSTART is 3.5; DTEND equal to it is a zero-length event."""
        event = conference_event()
        event.set("DTEND", event.value("DTSTART") - timedelta(minutes=1))
        self.assertStatus(event, "3.5", "DTEND is before DTSTART")
        event.set("DTEND", event.value("DTSTART"))
        self.assertIsNone(check(event))

    def test_end_in_another_zone(self) -> None:
        """DTEND is compared as an instant, whatever its TZID."""
        event = conference_event(start=datetime(2024, 6, 1, 10, tzinfo=UTC))
        event.set("DTEND", datetime(2024, 6, 1, 11, 30), {"TZID": "Europe/Helsinki"})
        self.assertStatus(event, "3.5", "DTEND is before DTSTART")

    def test_mixed_types(self) -> None:
        """A DATE DTEND with a DATE-TIME DTSTART is 3.5."""
        event = conference_event()
        event.set("DTEND", date(2024, 1, 3))
        self.assertStatus(event, "3.5", "mix a DATE and a DATE-TIME")

    def test_duration(self) -> None:
        """A negative DURATION is 3.1, one longer than MAX_DURATION 3.5."""
        event = conference_event()
        event.remove("DTEND")
        event.set("DURATION", -timedelta(hours=1))
        self.assertStatus(event, "3.1", "DURATION is negative")
        event.set("DURATION", MAX_DURATION + timedelta(days=1))
        self.assertStatus(event, "3.5", "lasts longer than")

    def test_period(self) -> None:
        """An RDATE period ending before it starts is 3.5."""
        event = conference_event()
        start = datetime(2024, 2, 1, tzinfo=UTC)
        event.add("RDATE", [cv.Period(start, start - timedelta(hours=1))], None, cv.PERIOD)
        self.assertStatus(event, "3.5", "ends before it starts")


class RuleTests(SynchronousTestCase):
    """
    Rules are allowed ones, produce instances, and expand within the
    budget; the checks themselves stay within it.
    """

    def test_forbidden(self) -> None:
        """A rule RFC 5545 forbids (BYDAY=1MO with DAILY) is 3.6."""
        found = check(with_rule("FREQ=DAILY;BYDAY=1MO"))
        assert found is not None
        self.assertEqual(found.code, "3.6")

    def test_never_matches(self) -> None:
        """SECONDLY;BYMONTH=2;BYMONTHDAY=30 is 3.6, found with a step per day of the horizon."""
        budget = Budget(ACCEPT_STEPS)
        found = check(with_rule("FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30"), budget=budget)
        assert found is not None
        self.assertEqual(found.code, "3.6")
        self.assertIn(f"no instance within {HORIZON.days} days", str(found.data))
        self.assertLess(budget.spent, HORIZON.days + 10)

    def test_too_dense(self) -> None:
        """FREQ=SECONDLY without COUNT is 3.10 once the budget is spent, and no later."""
        budget = Budget(ACCEPT_STEPS)
        found = check(with_rule("FREQ=SECONDLY"), budget=budget)
        assert found is not None
        self.assertEqual(found.code, "3.10")
        self.assertEqual(budget.spent, ACCEPT_STEPS + 1)

    def test_count_to_its_end(self) -> None:
        """A rule with COUNT is costed to its last instance, even beyond the window."""
        self.assertIsNone(check(with_rule("FREQ=DAILY")))
        found = check(with_rule("FREQ=DAILY;COUNT=40000"))
        assert found is not None
        self.assertEqual(found.code, "3.10")

    def test_events_share_the_budget(self) -> None:
        """Events that fit one by one can be too much together."""
        one = with_rule("FREQ=MINUTELY;COUNT=20000", uid="a")
        two = with_rule("FREQ=MINUTELY;COUNT=20000", uid="b")
        three = with_rule("FREQ=MINUTELY;COUNT=20000", uid="c")
        self.assertIsNone(check(one, two))
        found = check(one, two, three)
        assert found is not None
        self.assertEqual(found.code, "3.10")

    def test_unusable_time_zone(self) -> None:
        """A TZID whose VTIMEZONE would be too costly to convert is 3.1."""
        zone = Component("VTIMEZONE")
        zone.add("TZID", "Evil")
        standard = Component("STANDARD")
        standard.add("DTSTART", datetime(1970, 1, 1))
        standard.add("RRULE", cv.parse_recur("FREQ=MINUTELY"))
        standard.add("TZOFFSETFROM", timedelta(hours=1))
        standard.add("TZOFFSETTO", timedelta(0))
        zone.components.append(standard)
        event = conference_event()
        event.set("DTSTART", datetime(2024, 1, 2, 10), {"TZID": "Evil"})
        event.set("DTEND", datetime(2024, 1, 2, 11), {"TZID": "Evil"})
        calendar = request(event)
        calendar.components.insert(0, zone)
        found = check_storable(calendar, [event], now=NOW)
        assert found is not None
        self.assertEqual(found.code, "3.1")
        self.assertIn("unknown time zone 'Evil'", str(found.data))
