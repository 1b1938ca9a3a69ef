# -*- test-case-name: tests.unit.app.test_busy -*-
"""
Tests for L{conference.app.busy}: the parts of conference 486s, made once
a second, the conferences remembered as not open yet, and the Accept
texts read once.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import List, Tuple

from twisted.trial.unittest import SynchronousTestCase

from conference.app import busy
from conference.app.busy import (
    ICAL,
    XCAL,
    BodyFormats,
    ClosedConferences,
    ConferenceBusyParts,
    body_formats,
    calendar_part,
    conference_unavailable,
    retry_after,
)
from conference.calendar import parse_xcal_calendar
from conference.records import ConferenceRecord
from conference.sip.errors import RemoteProtocolError
from conference.sip.message import Request
from tests.builders import make_request

URI = "sip:room@example.com"
AT = datetime(2026, 12, 4, 9, 0, 0, 250000, tzinfo=timezone.utc)
UNTIL = AT + timedelta(hours=1)
XML = BodyFormats(True, XCAL)


class ConferenceBusyPartsTests(SynchronousTestCase):
    """
    The cache of VFREEBUSY parts.
    """

    def test_same_second_made_once(self) -> None:
        """Within one second the same conference gets the same part, made once."""
        parts = ConferenceBusyParts()
        first = parts.part(URI, AT, UNTIL, kind="BUSY", formats=XML)
        second = parts.part(URI, AT + timedelta(milliseconds=700), UNTIL, kind="BUSY", formats=XML)
        self.assertIs(first, second)
        self.assertEqual(parts.made, 1)

    def test_part_as_without_cache(self) -> None:
        """A part is what calendar_part gives for the whole second, DTSTAMP and window included."""
        parts = ConferenceBusyParts()
        part = parts.part(URI, AT, UNTIL, kind="BUSY", formats=XML)
        second = AT.replace(microsecond=0)
        expected = calendar_part(conference_unavailable(URI, second, UNTIL, "BUSY"), XML)
        self.assertEqual(part, expected)
        assert part is not None
        [fb] = parse_xcal_calendar(part[1]).subcomponents("VFREEBUSY")
        [stamp] = fb.get_all("DTSTAMP")
        self.assertEqual(stamp.values[0], second)

    def test_keys(self) -> None:
        """Another second, end, kind, type, conference or signer makes another part."""
        parts = ConferenceBusyParts()
        base = parts.part(URI, AT, UNTIL, kind="BUSY", formats=XML)
        others = [
            parts.part(URI, AT + timedelta(seconds=1), UNTIL, kind="BUSY", formats=XML),
            parts.part(URI, AT, UNTIL + timedelta(hours=1), kind="BUSY", formats=XML),
            parts.part(URI, AT, UNTIL, kind="BUSY-UNAVAILABLE", formats=XML),
            parts.part(URI, AT, UNTIL, kind="BUSY", formats=BodyFormats(True, ICAL)),
            parts.part("sip:other@example.com", AT, UNTIL, kind="BUSY", formats=XML),
            parts.part(URI, AT, UNTIL, kind="BUSY", formats=XML, sign=lambda t, b: (t, b)),
        ]
        self.assertEqual(parts.made, 7)
        self.assertNotIn(base, others[:5])

    def test_signed(self) -> None:
        """With a signer the part is what it signed."""
        signed: List[Tuple[str, bytes]] = []

        def sign(content_type: str, body: bytes) -> Tuple[str, bytes]:
            signed.append((content_type, body))
            return "multipart/signed", b"signed:" + body

        parts = ConferenceBusyParts()
        part = parts.part(URI, AT, UNTIL, kind="BUSY", formats=XML, sign=sign)
        parts.part(URI, AT, UNTIL, kind="BUSY", formats=XML, sign=sign)
        self.assertEqual(len(signed), 1)
        self.assertEqual(part, ("multipart/signed", b"signed:" + signed[0][1]))

    def test_no_calendar_accepted(self) -> None:
        """A caller accepting no calendar type gets no part."""
        parts = ConferenceBusyParts()
        self.assertIsNone(parts.part(URI, AT, UNTIL, kind="BUSY", formats=BodyFormats(True, None)))

    def test_bounded(self) -> None:
        """At most size parts are kept, the oldest dropped first; size 0 keeps none."""
        parts = ConferenceBusyParts(size=2)
        for n in range(3):
            parts.part(f"sip:r{n}@example.com", AT, UNTIL, kind="BUSY", formats=XML)
        parts.part("sip:r2@example.com", AT, UNTIL, kind="BUSY", formats=XML)
        self.assertEqual(parts.made, 3)
        parts.part("sip:r0@example.com", AT, UNTIL, kind="BUSY", formats=XML)
        self.assertEqual(parts.made, 4)
        none = ConferenceBusyParts(size=0)
        none.part(URI, AT, UNTIL, kind="BUSY", formats=XML)
        none.part(URI, AT, UNTIL, kind="BUSY", formats=XML)
        self.assertEqual(none.made, 2)

    def test_refusal_per_second(self) -> None:
        """A refusal is the part and the Retry-After of its whole second, made once a second."""
        parts = ConferenceBusyParts()
        now = AT.timestamp()
        part, retry = parts.refusal(URI, now, UNTIL, kind="BUSY", formats=XML)
        second = AT.replace(microsecond=0)
        self.assertEqual(part, parts.part(URI, AT, UNTIL, kind="BUSY", formats=XML))
        self.assertEqual(retry, retry_after(second, UNTIL))
        self.assertEqual(retry, 3601)  # UNTIL is a quarter second past the hour
        again = parts.refusal(URI, now + 0.7, UNTIL, kind="BUSY", formats=XML)
        self.assertEqual(again, (part, retry))
        self.assertEqual(parts.made, 1)
        _, later = parts.refusal(URI, now + 1, UNTIL, kind="BUSY", formats=XML)
        self.assertEqual((later, parts.made), (3600, 2))


OPENS = UNTIL
EARLY = timedelta(minutes=10)


def record(
    version: int = 1, calendar: bytes = b"<vcalendar/>", state: str = "scheduled"
) -> ConferenceRecord:
    """
    A stored conference record; only its identity fields matter here.
    """
    return ConferenceRecord(
        uri=URI,
        uid="u",
        organizer="sip:a@example.com",
        calendar=calendar,
        state=state,
        version=version,
    )


class ClosedConferencesTests(SynchronousTestCase):
    """
    The conferences remembered as not open yet.
    """

    def test_until_opening(self) -> None:
        """The remembered opening serves the same record until that opening."""
        closed = ClosedConferences()
        stored = record()
        closed.remember(stored, AT, OPENS, EARLY)
        self.assertEqual(closed.until(stored, AT.timestamp() + 1800, EARLY), OPENS)
        self.assertIsNone(closed.until(stored, OPENS.timestamp(), EARLY))

    def test_same_version_other_object(self) -> None:
        """An equal version read again (a store that copies records) is served too."""
        closed = ClosedConferences()
        closed.remember(record(), AT, OPENS, EARLY)
        self.assertEqual(closed.until(record(), AT.timestamp(), EARLY), OPENS)

    def test_other_version(self) -> None:
        """Another version, calendar, state or early-join margin is decided afresh."""
        closed = ClosedConferences()
        closed.remember(record(), AT, OPENS, EARLY)
        now = AT.timestamp()
        self.assertIsNone(closed.until(record(version=2), now, EARLY))
        self.assertIsNone(closed.until(record(calendar=b"<other/>"), now, EARLY))
        self.assertIsNone(closed.until(record(state="cancelled"), now, EARLY))
        self.assertIsNone(closed.until(record(), now, timedelta(minutes=5)))

    def test_day_end(self) -> None:
        """A decision lasts at most to the end of its expansion's day."""
        closed = ClosedConferences()
        stored = record()
        late = AT.replace(hour=23, minute=30)
        closed.remember(stored, late, late + timedelta(hours=3), EARLY)
        midnight = late.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        self.assertIsNotNone(closed.until(stored, midnight.timestamp() - 1, EARLY))
        self.assertIsNone(closed.until(stored, midnight.timestamp(), EARLY))

    def test_bounded(self) -> None:
        """At most size conferences are remembered, the oldest dropped first; size 0 none."""
        closed = ClosedConferences(size=2)
        records = [
            ConferenceRecord(uri=f"sip:r{n}@example.com", uid="u", organizer="o", calendar=b"")
            for n in range(3)
        ]
        for stored in records:
            closed.remember(stored, AT, OPENS, EARLY)
        self.assertEqual(len(closed), 2)
        self.assertIsNone(closed.until(records[0], AT.timestamp(), EARLY))
        self.assertEqual(closed.until(records[2], AT.timestamp(), EARLY), OPENS)
        none = ClosedConferences(size=0)
        none.remember(records[0], AT, OPENS, EARLY)
        self.assertEqual(len(none), 0)

    def test_negative_margin(self) -> None:
        """A negative early-join margin is never remembered."""
        closed = ClosedConferences()
        closed.remember(record(), AT, OPENS, -EARLY)
        self.assertEqual(len(closed), 0)


class BodyFormatsTests(SynchronousTestCase):
    """
    The Accept header fields, read once per text.
    """

    def invite(self, *accept: str) -> Request:
        """An INVITE with these Accept header fields."""
        return make_request(
            "INVITE", "sip:room@example.com", headers=[("Accept", a) for a in accept]
        )

    def test_read_once(self) -> None:
        """The same Accept text gives the same formats, parsed once."""
        first = body_formats(self.invite("application/sdp, application/calendar+xml"))
        second = body_formats(self.invite("application/sdp, application/calendar+xml"))
        self.assertIs(first, second)
        self.assertEqual(first, BodyFormats(True, XCAL))
        self.assertEqual(body_formats(self.invite("text/calendar")), BodyFormats(False, ICAL))

    def test_malformed_each_time(self) -> None:
        """A malformed Accept is refused 400 every time, and not kept."""
        for _ in range(2):
            error = self.assertRaises(RemoteProtocolError, body_formats, self.invite("text/"))
            self.assertEqual(error.status, 400)
        self.assertNotIn(("text/",), busy._FORMATS)

    def test_bounded(self) -> None:
        """Made-up Accept texts cannot grow the map past its size."""
        for n in range(busy.FORMATS_CACHE_SIZE + 3):
            body_formats(self.invite(f"application/x-{n}"))
        self.assertLessEqual(len(busy._FORMATS), busy.FORMATS_CACHE_SIZE)
