# -*- test-case-name: tests.unit.app.test_conferences -*-
"""
Tests for L{conference.app.conferences}: reading conference calendars.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import List, Tuple

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from conference.app import conferences as c
from conference.calendar import CalendarError, Component, parse_xcal_calendar, to_xcal
from conference.calendar.recurrence import HORIZON, Budget
from tests.unit.app.calendars import T0, conference_calendar, conference_record


class ConferenceCalendarTests(SynchronousTestCase):
    """
    Instances, windows, overlaps and the join VEVENT.
    """

    def test_organizer_and_attendees(self) -> None:
        """The organizer and attendees are read and normalised."""
        cal = conference_calendar(organizer="SIP:Alice@EXAMPLE.com")
        self.assertEqual(c.organizer_of(cal), "sip:Alice@example.com")
        self.assertEqual(
            [(a, cu) for a, _, cu in c.attendees_of(cal)],
            [("sip:conf@example.com", "ROOM"), ("sip:bob@example.com", "INDIVIDUAL")],
        )

    def test_current_instance_window(self) -> None:
        """A conference is open from the early-join margin before DTSTART until DTEND."""
        cal = conference_calendar()
        early = timedelta(minutes=10)
        self.assertIsNone(c.current_instance(cal, T0 - timedelta(minutes=11), early))
        self.assertIsNotNone(c.current_instance(cal, T0 - timedelta(minutes=10), early))
        self.assertIsNotNone(c.current_instance(cal, T0 + timedelta(minutes=59), early))
        self.assertIsNone(c.current_instance(cal, T0 + timedelta(hours=1), early))

    def test_recurring(self) -> None:
        """Weekly instances are found; an EXDATE removes one."""
        cal = conference_calendar(rrule="FREQ=WEEKLY;COUNT=4", exdate=T0 + timedelta(weeks=1))
        self.assertIsNone(c.current_instance(cal, T0 + timedelta(weeks=1, minutes=5)))
        current = c.current_instance(cal, T0 + timedelta(weeks=2, minutes=5))
        assert current is not None
        self.assertEqual(current.recurrence_id, T0 + timedelta(weeks=2))
        upcoming = c.next_instance(cal, T0 + timedelta(minutes=5))
        assert upcoming is not None
        self.assertEqual(upcoming.start, T0 + timedelta(weeks=2))

    def test_over(self) -> None:
        """A conference is over once its last instance ended."""
        cal = conference_calendar(rrule="FREQ=DAILY;COUNT=2")
        self.assertFalse(c.is_over(cal, T0 + timedelta(days=1)))
        self.assertTrue(c.is_over(cal, T0 + timedelta(days=1, hours=1)))

    def test_cancelled(self) -> None:
        """A cancelled conference record or VEVENT counts as cancelled."""
        cal = conference_calendar(status="CANCELLED")
        self.assertTrue(c.is_cancelled(conference_record(cal), cal))
        live = conference_calendar()
        self.assertFalse(c.is_cancelled(conference_record(live), live))

    def test_cancelled_per_version(self) -> None:
        """The answer is kept per record version: a new version that cancels is cancelled."""
        live = conference_calendar()
        record = conference_record(live)
        self.assertFalse(c.is_cancelled(record, c.calendar_of(record)))
        cancelled = replace(conference_record(conference_calendar(status="CANCELLED")), version=2)
        self.assertTrue(c.is_cancelled(cancelled, c.calendar_of(cancelled)))
        self.assertFalse(c.is_cancelled(record, c.calendar_of(record)))

    def test_overlaps(self) -> None:
        """Overlapping bookings are detected; back-to-back ones are not."""
        one = conference_calendar()
        other = conference_calendar(uid="x", start=T0 + timedelta(minutes=30))
        later = conference_calendar(uid="y", start=T0 + timedelta(hours=1))
        now = T0 - timedelta(days=1)
        self.assertTrue(c.overlaps(one, other, now))
        self.assertFalse(c.overlaps(one, later, now))

    def test_join_calendar(self) -> None:
        """The join VEVENT has the instance times, CONFERENCE and roster PARTSTATs."""
        cal = conference_calendar(rrule="FREQ=WEEKLY;COUNT=3", sequence=2)
        record = conference_record(cal)
        instance = c.current_instance(cal, T0 + timedelta(weeks=1))
        assert instance is not None
        joined = c.join_calendar(
            record, cal, instance, T0, roster=["sip:bob@example.com", "sip:carol@example.com"]
        )
        self.assertEqual(joined.value("METHOD"), "REQUEST")
        [event] = joined.subcomponents("VEVENT")
        self.assertEqual(event.value("DTSTART"), T0 + timedelta(weeks=1))
        self.assertEqual(event.value("RECURRENCE-ID"), T0 + timedelta(weeks=1))
        self.assertEqual(event.value("SEQUENCE"), 2)
        self.assertEqual(event.value("CONFERENCE"), "sip:conf@example.com")
        partstats = {str(p.values[0]): p.param("PARTSTAT") for p in event.get_all("ATTENDEE")}
        self.assertEqual(partstats["sip:bob@example.com"], "ACCEPTED")
        self.assertNotIn("sip:carol@example.com", partstats)
        self.assertEqual(partstats["sip:conf@example.com"], "NEEDS-ACTION")
        # It serializes to RFC 6321 and reads back the same.
        self.assertEqual(parse_xcal_calendar(to_xcal(joined)), joined)

    def test_calendar_of_cached(self) -> None:
        """A record's calendar is parsed once per version."""
        record = conference_record(conference_calendar())
        self.assertIs(c.calendar_of(record), c.calendar_of(record))

    def test_record_owner(self) -> None:
        """A new record is its organizer's; later records keep the first owner."""
        first = c.record_for("sip:conf@example.com", conference_calendar(), None, 0.0)
        self.assertEqual(first.owner, "sip:alice@example.com")
        carols = conference_calendar(organizer="sip:carol@example.com", uid="carol-1")
        later = c.record_for("sip:conf@example.com", carols, first, 1.0)
        self.assertEqual((later.organizer, later.owner), ("sip:carol@example.com", first.owner))
        legacy = conference_record(conference_calendar())
        self.assertEqual(c.record_for(legacy.uri, carols, legacy, 1.0).owner, legacy.organizer)


def instance(start: datetime, minutes: float) -> c.Instance:
    """
    An instance of no particular event lasting C{minutes}.
    """
    return c.Instance(start, start + timedelta(minutes=minutes), Component("VEVENT"), None)


def brute_overlap(mine: List[c.Instance], theirs: List[c.Instance]) -> bool:
    """
    Whether some pair overlaps, by comparing every pair.
    """
    return any(a.start < b.end and b.start < a.end for a in mine for b in theirs)


_INTERVALS = st.lists(
    st.tuples(st.integers(0, 40), st.sampled_from([0, 1, 2, 5, 15])), max_size=12
).map(lambda xs: sorted((instance(T0 + timedelta(minutes=s), m) for s, m in xs), key=_by_start))


def _by_start(i: c.Instance) -> Tuple[datetime, datetime]:
    return (i.start, i.end)


class SweepTests(SynchronousTestCase):
    """
    Booking conflicts are found by one sweep over both bookings' instances.
    """

    @given(_INTERVALS, _INTERVALS)
    def test_same_as_every_pair(self, mine: List[c.Instance], theirs: List[c.Instance]) -> None:
        """The sweep finds an overlap exactly when comparing every pair does, and a true one."""
        found = c.first_overlap(mine, theirs)
        self.assertEqual(found is not None, brute_overlap(mine, theirs))
        if found is not None:
            a, b = found
            self.assertIn(a, mine)
            self.assertIn(b, theirs)
            self.assertTrue(a.start < b.end and b.start < a.end)

    def test_forty_thousand(self) -> None:
        """20,000 + 20,000 interleaved instances: no overlap, one step each; one moved: found."""
        mine = [instance(T0 + timedelta(minutes=2 * k), 1) for k in range(20_000)]
        theirs = [instance(T0 + timedelta(minutes=2 * k + 1), 1) for k in range(20_000)]
        budget = Budget()
        self.assertIsNone(c.first_overlap(mine, theirs, budget))
        self.assertEqual(budget.spent, 40_000)
        moved = list(theirs)
        moved[12_345] = instance(T0 + timedelta(minutes=2 * 12_345 + 0.5), 1)
        found = c.first_overlap(mine, moved)
        assert found is not None
        self.assertEqual((found[0], found[1]), (mine[12_345], moved[12_345]))

    def test_bookings(self) -> None:
        """Two interleaved MINUTELY bookings of 20,000 instances each do not overlap."""
        one = conference_calendar(
            rrule="FREQ=MINUTELY;INTERVAL=2;COUNT=20000", duration=timedelta(minutes=1)
        )
        other = conference_calendar(
            uid="x",
            start=T0 + timedelta(minutes=1),
            rrule="FREQ=MINUTELY;INTERVAL=2;COUNT=20000",
            duration=timedelta(minutes=1),
        )
        clash = conference_calendar(uid="y", start=T0 + timedelta(days=20, seconds=30))
        now = T0 - timedelta(days=1)
        self.assertFalse(c.overlaps(one, other, now))
        self.assertTrue(c.overlaps(clash, other, now))


class TimelineTests(SynchronousTestCase):
    """
    One bounded expansion answers the focus's questions; it is cached per
    record version and day.
    """

    def test_between(self) -> None:
        """Lookups in a timeline give what expanding the sub-window gives."""
        cal = conference_calendar(rrule="FREQ=DAILY;COUNT=30", duration=timedelta(hours=30))
        start = T0 - timedelta(days=1)
        timeline = c.Timeline.expand(cal, start, start + timedelta(days=2) + HORIZON)
        self.assertGreater(timeline.steps, 0)
        for days in (0, 3, 10.5, 29, 40):
            at = T0 + timedelta(days=days)
            window = (at, at + timedelta(hours=5))
            self.assertEqual(timeline.between(*window), c.instances(cal, *window))
        self.assertEqual(c.current_instance(timeline, T0), c.current_instance(cal, T0))
        self.assertEqual(c.next_instance(timeline, T0), c.next_instance(cal, T0))
        self.assertRaises(ValueError, timeline.between, start - timedelta(days=1), start)

    def test_cached(self) -> None:
        """One expansion per record version and day; a new version or day expands again."""
        cache = c.TimelineCache()
        record = conference_record(conference_calendar(rrule="FREQ=DAILY"))
        first = cache.get(record, T0)
        self.assertIs(cache.get(record, T0 + timedelta(hours=1)), first)
        self.assertEqual(cache.expansions, 1)
        cache.get(replace(record, version=2), T0)
        cache.get(record, T0 + timedelta(days=1))
        self.assertEqual(cache.expansions, 3)

    def test_bounded(self) -> None:
        """The cache keeps at most its number of entries, least recently used dropped."""
        cache = c.TimelineCache(entries=2)
        records = [
            replace(conference_record(conference_calendar()), uri=f"sip:{n}@x") for n in "abc"
        ]
        for record in records:
            cache.get(record, T0)
        self.assertEqual(len(cache), 2)
        cache.get(records[1], T0)
        self.assertEqual(cache.expansions, 3)
        cache.get(records[0], T0)
        self.assertEqual(cache.expansions, 4)

    def test_failure_cached(self) -> None:
        """A calendar that cannot be expanded fails each time, but is expanded once."""
        record = conference_record(conference_calendar(rrule="FREQ=SECONDLY"))
        cache = c.TimelineCache()
        for _ in range(3):
            error = self.assertRaises(CalendarError, cache.get, record, T0)
            self.assertIn("steps", str(error))
        self.assertEqual(cache.expansions, 1)
