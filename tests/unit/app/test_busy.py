# -*- test-case-name: tests.unit.app.test_busy -*-
"""
Tests for L{conference.app.busy}: the parts of conference 486s, made once
a second.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import List, Tuple

from twisted.trial.unittest import SynchronousTestCase

from conference.app.busy import (
    ICAL,
    XCAL,
    BodyFormats,
    ConferenceBusyParts,
    calendar_part,
    conference_unavailable,
)
from conference.calendar import parse_xcal_calendar

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
