# -*- test-case-name: tests.unit.calendar.test_freebusy -*-
"""
Tests for L{conference.calendar.freebusy}: what counts as busy, FBTYPEs,
recurrence expansion (RRULE, RDATE, EXDATE, overrides, time zones), the
cap, merging, the VFREEBUSY built and the next free slot.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, List, Optional, Tuple

from twisted.trial.unittest import SynchronousTestCase

from conference.calendar import ical
from conference.calendar import values as cv
from conference.calendar.errors import FreeBusyError
from conference.calendar.freebusy import (
    build_freebusy,
    busy_intervals,
    merge,
    next_free_slot,
)
from conference.calendar.model import Component, new_calendar
from tests.unit.calendar.support import UTC

D0 = datetime(2024, 1, 1, tzinfo=UTC)
WEEK = D0 + timedelta(days=7)


def event(uid: str, start: Any, hours: float = 1, **props: Any) -> Component:
    """
    A VEVENT starting at C{start} lasting C{hours} (DTEND), plus C{props}
    (underscores for dashes; a tuple value is C{(value, params)}).
    """
    ev = Component("VEVENT")
    ev.add("UID", uid)
    ev.add("DTSTAMP", D0)
    tzid = props.pop("tzid", None)
    params = {"TZID": tzid} if tzid else None
    ev.add("DTSTART", start, params)
    if hours:
        ev.add("DTEND", start + timedelta(hours=hours), params)
    for name, value in props.items():
        if isinstance(value, tuple):
            ev.add(name.replace("_", "-"), value[0], value[1])
        else:
            ev.add(name.replace("_", "-"), value)
    return ev


def busy(*events: Component, user: Optional[str] = None) -> List[Tuple[str, str, str]]:
    """
    Busy periods over the first week as (FBTYPE, start, end) ISO strings.
    """
    found = busy_intervals([new_calendar(components=list(events))], D0, WEEK, user=user)
    return [(k, s.isoformat(), e.isoformat()) for k, spans in found.items() for s, e in spans]


def at(day: int, hour: float) -> str:
    """
    ISO string of 2024-01-<day> <hour>:00 UTC.
    """
    return (datetime(2024, 1, day, tzinfo=UTC) + timedelta(hours=hour)).isoformat()


class CountingTests(SynchronousTestCase):
    """
    Which events count, and as which FBTYPE.
    """

    def test_opaque_counts(self) -> None:
        """An ordinary (OPAQUE) event is BUSY."""
        self.assertEqual(busy(event("a", D0 + timedelta(hours=9))), [("BUSY", at(1, 9), at(1, 10))])

    def test_transparent_ignored(self) -> None:
        """A TRANSPARENT event does not count."""
        self.assertEqual(busy(event("a", D0, TRANSP="TRANSPARENT")), [])

    def test_tentative(self) -> None:
        """A TENTATIVE event is BUSY-TENTATIVE."""
        self.assertEqual(
            busy(event("a", D0, STATUS="TENTATIVE")), [("BUSY-TENTATIVE", at(1, 0), at(1, 1))]
        )

    def test_cancelled_ignored(self) -> None:
        """A CANCELLED event does not count."""
        self.assertEqual(busy(event("a", D0, STATUS="CANCELLED")), [])

    def test_user_partstat(self) -> None:
        """The user's DECLINED drops the event; NEEDS-ACTION makes it tentative."""
        declined = event("a", D0, ATTENDEE=("sip:u@x", {"PARTSTAT": "DECLINED"}))
        pending = event("b", D0 + timedelta(hours=5), ATTENDEE=("sip:u@x", {}))
        self.assertEqual(
            busy(declined, pending, user="SIP:U@X"), [("BUSY-TENTATIVE", at(1, 5), at(1, 6))]
        )

    def test_all_day(self) -> None:
        """A DATE event without end lasts the day (floating zone UTC by default)."""
        self.assertEqual(
            busy(event("a", date(2024, 1, 3), hours=0)), [("BUSY", at(3, 0), at(4, 0))]
        )

    def test_zero_length_ignored(self) -> None:
        """A date-time event without DTEND or DURATION takes no time."""
        self.assertEqual(busy(event("a", D0, hours=0)), [])

    def test_duration(self) -> None:
        """DURATION gives the length when there is no DTEND."""
        self.assertEqual(
            busy(event("a", D0, hours=0, DURATION=timedelta(minutes=30))),
            [("BUSY", at(1, 0), at(1, 0.5))],
        )


class RecurrenceTests(SynchronousTestCase):
    """
    Recurrence expansion.
    """

    def test_rrule_exdate_override(self) -> None:
        """A daily rule, minus an EXDATE, with one instance moved and made tentative."""
        master = event(
            "r",
            D0 + timedelta(hours=9),
            RRULE=cv.Recur("DAILY", count=4),
            EXDATE=D0 + timedelta(days=2, hours=9),
        )
        moved = event(
            "r",
            D0 + timedelta(days=1, hours=15),
            STATUS="TENTATIVE",
            RECURRENCE_ID=D0 + timedelta(days=1, hours=9),
        )
        self.assertEqual(
            busy(master, moved),
            [
                ("BUSY", at(1, 9), at(1, 10)),
                ("BUSY", at(4, 9), at(4, 10)),
                ("BUSY-TENTATIVE", at(2, 15), at(2, 16)),
            ],
        )

    def test_rdate_period(self) -> None:
        """RDATE dates and periods add instances (periods with their own length)."""
        ev = event("r", D0 + timedelta(hours=9), RDATE=D0 + timedelta(days=1, hours=9))
        ev.add("RDATE", [cv.Period(D0 + timedelta(days=2), D0 + timedelta(days=2, hours=3))])
        self.assertEqual(
            busy(ev),
            [
                ("BUSY", at(1, 9), at(1, 10)),
                ("BUSY", at(2, 9), at(2, 10)),
                ("BUSY", at(3, 0), at(3, 3)),
            ],
        )

    def test_timezone_and_dst(self) -> None:
        """A weekly Helsinki 10:00 meeting stays at 10:00 local across the DST change."""
        start = datetime(2024, 3, 25, 10, 0)
        ev = event("h", start, tzid="Europe/Helsinki", RRULE=cv.Recur("WEEKLY", count=3))
        window = (datetime(2024, 3, 20, tzinfo=UTC), datetime(2024, 4, 20, tzinfo=UTC))
        spans = busy_intervals([new_calendar(components=[ev])], *window)["BUSY"]
        self.assertEqual([s.hour for s, _ in spans], [8, 7, 7])

    def test_until_and_window(self) -> None:
        """UNTIL ends the rule; instances outside the window are skipped, edges clipped."""
        ev = event(
            "u",
            D0 - timedelta(hours=1),
            hours=2,
            RRULE=cv.Recur("DAILY", until=D0 + timedelta(days=2)),
        )
        self.assertEqual(
            busy(ev),
            [
                ("BUSY", at(1, 0), at(1, 1)),
                ("BUSY", at(1, 23), at(2, 1)),
                ("BUSY", at(2, 23), at(3, 1)),
            ],
        )

    def test_step_cap(self) -> None:
        """A secondly rule is stopped by the work budget with an error, not spun through."""
        ev = event(
            "s",
            datetime(2000, 1, 1, tzinfo=UTC),
            hours=0,
            DURATION=timedelta(seconds=1),
            RRULE=cv.Recur("SECONDLY"),
        )
        error = self.assertRaises(FreeBusyError, busy_intervals, [ev], D0, WEEK, max_steps=1000)
        self.assertIn("1000 steps", str(error))

    def test_old_rule_within_budget(self) -> None:
        """An hourly rule from 1990 starts at the window: a week costs far less than 1000 steps."""
        ev = event(
            "h",
            datetime(1990, 1, 1, tzinfo=UTC),
            hours=0,
            DURATION=timedelta(minutes=30),
            RRULE=cv.Recur("HOURLY", interval=6),
        )
        found = busy_intervals([ev], D0, WEEK, max_steps=1000)
        self.assertEqual(len(found["BUSY"]), 28)

    def test_instance_cap(self) -> None:
        """At most max_instances busy instances are collected."""
        ev = event("m", D0, hours=0, DURATION=timedelta(minutes=1), RRULE=cv.Recur("HOURLY"))
        found = busy_intervals([ev], D0, WEEK, max_instances=10)
        self.assertEqual(len(found["BUSY"]), 10)

    def test_unknown_timezone(self) -> None:
        """An unknown TZID is a FreeBusyError, not a crash."""
        ev = event("z", datetime(2024, 1, 2, 10), tzid="Mars/Olympus")
        self.assertRaises(FreeBusyError, busy_intervals, [ev], D0, WEEK)


class BuildTests(SynchronousTestCase):
    """
    The VFREEBUSY component.
    """

    def test_component(self) -> None:
        """One VFREEBUSY with DTSTAMP, UID, ORGANIZER, ATTENDEE, window, merged periods."""
        evs = [
            event("a", D0 + timedelta(hours=9)),
            event("b", D0 + timedelta(hours=9.5)),
            event("c", D0 + timedelta(hours=12), STATUS="TENTATIVE"),
        ]
        fb = build_freebusy(
            [new_calendar(components=evs)],
            D0,
            WEEK,
            D0,
            organizer="sip:o@x",
            attendee="sip:a@x",
            uid="fb1",
        )
        text = ical.dumps(fb)
        self.assertIn("UID:fb1", text)
        self.assertIn("ORGANIZER:sip:o@x", text)
        self.assertIn("DTSTART:20240101T000000Z", text)
        self.assertIn("FREEBUSY;FBTYPE=BUSY:20240101T090000Z/20240101T103000Z", text)
        self.assertIn("FREEBUSY;FBTYPE=BUSY-TENTATIVE:20240101T120000Z/20240101T130000Z", text)

    def test_uid_derived(self) -> None:
        """Without a UID one is derived from the inputs (same inputs, same UID)."""
        one = build_freebusy([], D0, WEEK, D0, attendee="sip:a@x")
        two = build_freebusy([], D0, WEEK, D0, attendee="sip:a@x")
        self.assertEqual(one.value("UID"), two.value("UID"))
        self.assertEqual(one.get_all("FREEBUSY"), [])

    def test_bad_window(self) -> None:
        """Naive datetimes and empty windows are refused."""
        self.assertRaises(FreeBusyError, build_freebusy, [], D0, D0, D0)
        self.assertRaises(FreeBusyError, build_freebusy, [], D0.replace(tzinfo=None), WEEK, D0)

    def test_merge(self) -> None:
        """Overlapping and touching intervals merge; others stay apart, sorted."""
        h = timedelta(hours=1)
        self.assertEqual(
            merge(
                [(D0 + 3 * h, D0 + 4 * h), (D0, D0 + h), (D0 + h, D0 + 2 * h), (D0 + h / 2, D0 + h)]
            ),
            [(D0, D0 + 2 * h), (D0 + 3 * h, D0 + 4 * h)],
        )


class NextFreeSlotTests(SynchronousTestCase):
    """
    The next free slot (for Retry-After).
    """

    def setUp(self) -> None:
        """A day with 9-10 busy, 10:30-12 tentative, 12-13 busy."""
        evs = [
            event("a", D0 + timedelta(hours=9)),
            event("b", D0 + timedelta(hours=10.5), hours=1.5, STATUS="TENTATIVE"),
            event("c", D0 + timedelta(hours=12)),
        ]
        self.fb = build_freebusy([new_calendar(components=evs)], D0, D0 + timedelta(days=1), D0)

    def test_free_now(self) -> None:
        """Free at t: t itself."""
        self.assertEqual(next_free_slot(self.fb, timedelta(minutes=30), D0), D0)

    def test_gap_fits(self) -> None:
        """A 30-minute slot fits the 10:00-10:30 gap."""
        t = D0 + timedelta(hours=9, minutes=15)
        self.assertEqual(
            next_free_slot(self.fb, timedelta(minutes=30), t), D0 + timedelta(hours=10)
        )

    def test_gap_too_small(self) -> None:
        """A 1-hour slot skips the gap and tentative time: 13:00."""
        t = D0 + timedelta(hours=9, minutes=15)
        self.assertEqual(next_free_slot(self.fb, timedelta(hours=1), t), D0 + timedelta(hours=13))

    def test_beyond_window(self) -> None:
        """No slot inside the VFREEBUSY window: None (time beyond it is unknown)."""
        t = D0 + timedelta(hours=23, minutes=30)
        self.assertIsNone(next_free_slot(self.fb, timedelta(hours=1), t))

    def test_plain_intervals(self) -> None:
        """Plain intervals work too, with an explicit limit."""
        spans = [(D0, D0 + timedelta(hours=1))]
        self.assertEqual(next_free_slot(spans, timedelta(hours=1), D0), D0 + timedelta(hours=1))
        self.assertIsNone(
            next_free_slot(spans, timedelta(hours=1), D0, until=D0 + timedelta(minutes=90))
        )

    def test_bad_arguments(self) -> None:
        """A non-positive duration or naive time is refused."""
        self.assertRaises(FreeBusyError, next_free_slot, self.fb, timedelta(0), D0)
        self.assertRaises(
            FreeBusyError, next_free_slot, self.fb, timedelta(hours=1), D0.replace(tzinfo=None)
        )
        self.assertRaises(
            FreeBusyError, next_free_slot, Component("VEVENT"), timedelta(hours=1), D0
        )
