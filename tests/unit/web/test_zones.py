# -*- test-case-name: tests.unit.web.test_zones -*-
"""
Tests for L{conference.web.zones}.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from conference.web.zones import ZoneError, parse_date, viewer_zone


class ZoneTests(SynchronousTestCase):
    """
    Time zone names and dates from query strings.
    """

    def test_known(self) -> None:
        """IANA names resolve; UTC too."""
        paris = viewer_zone("Europe/Paris")
        self.assertEqual(datetime(2026, 7, 1, tzinfo=paris).utcoffset(), timedelta(hours=2))
        self.assertEqual(datetime(2026, 7, 1, tzinfo=viewer_zone("UTC")).utcoffset(), timedelta(0))

    def test_refused(self) -> None:
        """Path-like, empty, overlong and unknown names are refused."""
        for name in ("../etc/passwd", "/etc/localtime", "", "A" * 100, "Mars/Olympus", "a b"):
            with self.assertRaises(ZoneError):
                viewer_zone(name)

    @given(st.text(max_size=80))
    def test_any_text(self, name: str) -> None:
        """Any text resolves to a zone or raises ZoneError, nothing else."""
        try:
            zone = viewer_zone(name)
        except ZoneError:
            return
        self.assertIsNotNone(datetime(2026, 1, 1, tzinfo=zone).utcoffset())

    def test_parse_date(self) -> None:
        """A date is midnight in the viewer's zone; bad or far dates are refused."""
        start = parse_date("2026-03-29", viewer_zone("Europe/Paris"))
        self.assertEqual(
            start.astimezone(timezone.utc), datetime(2026, 3, 28, 23, tzinfo=timezone.utc)
        )
        for text in ("yesterday", "2026-13-01", "0001-01-01", "2026-03-29T10:00"):
            with self.assertRaises(ZoneError):
                parse_date(text, timezone.utc)
