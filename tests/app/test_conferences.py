# -*- test-case-name: tests.app.test_conferences -*-
"""
Tests for L{conference.app.conferences}: reading conference calendars.
"""

from __future__ import annotations

from datetime import timedelta

from twisted.trial.unittest import SynchronousTestCase

from conference.app import conferences as c
from conference.calendar import parse_xcal_calendar, to_xcal
from tests.app.calendars import T0, conference_calendar, conference_record


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
