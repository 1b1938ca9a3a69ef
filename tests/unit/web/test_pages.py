# -*- test-case-name: tests.unit.web.test_pages -*-
"""
Tests for L{conference.web.pages}.
"""

from __future__ import annotations

from datetime import timedelta, timezone

from twisted.trial.unittest import SynchronousTestCase

from conference.web import pages
from conference.web.access import Viewer
from conference.web.views import describe
from conference.web.zones import viewer_zone
from tests.unit.app.calendars import T0, conference_calendar, conference_record

UTC = timezone.utc


class TimelineTests(SynchronousTestCase):
    """
    The timeline picture.
    """

    def flatten(self, tag: object) -> str:
        return self.successResultOf(pages.render(tag)).decode("utf-8")  # type: ignore[arg-type]

    def test_bars(self) -> None:
        """Each conference gets its name, a link to its page and one bar per occurrence."""
        record = conference_record(conference_calendar(rrule="FREQ=DAILY;COUNT=3"))
        conference = describe(record, Viewer(record.organizer), T0, T0 + timedelta(days=7))
        assert conference is not None
        day = T0.replace(hour=0)
        svg = self.flatten(
            pages.timeline_svg(
                [conference],
                day,
                day + timedelta(days=7),
                UTC,
                ticks=pages.week_ticks(day, UTC),
                label="This week",
            )
        )
        self.assertIn("Weekly sync", svg)
        self.assertIn("/conference?uri=sip%3Aconf%40example.com", svg)
        self.assertEqual(svg.count("<rect"), 3)

    def test_now_line(self) -> None:
        """A red line marks now when it is inside the picture, and only then."""
        inside = self.flatten(
            pages.timeline_svg([], T0, T0 + timedelta(days=1), UTC, ticks=[], label="Today", now=T0)
        )
        self.assertIn('stroke="#d1242f"', inside)
        outside = self.flatten(
            pages.timeline_svg(
                [], T0, T0 + timedelta(days=1), UTC, ticks=[], label="x", now=T0 - timedelta(1)
            )
        )
        self.assertNotIn('stroke="#d1242f"', outside)

    def test_empty(self) -> None:
        """No conferences: the picture says so."""
        svg = self.flatten(
            pages.timeline_svg([], T0, T0 + timedelta(days=1), UTC, ticks=[], label="Today")
        )
        self.assertIn("No conferences.", svg)

    def test_names_escaped(self) -> None:
        """Text from calendars is escaped, never markup."""
        record = conference_record(conference_calendar())
        conference = describe(record, Viewer(record.organizer), T0, T0 + timedelta(days=1))
        assert conference is not None
        conference.summary = "<script>alert(1)</script>"
        svg = self.flatten(
            pages.timeline_svg([conference], T0, T0 + timedelta(days=1), UTC, ticks=[], label="x")
        )
        self.assertNotIn("<script>", svg)
        self.assertIn("&lt;script&gt;", svg)

    def test_freebusy_split_at_midnight(self) -> None:
        """A busy span over the viewer's midnight is drawn in both days' columns."""
        zone = viewer_zone("Asia/Tokyo")
        start = T0.astimezone(zone).replace(hour=0)
        data = {
            "user": "sip:bob@example.com",
            "busy": {
                "BUSY": [
                    {
                        "start": (start + timedelta(hours=23)).isoformat(),
                        "end": (start + timedelta(hours=25)).isoformat(),
                    }
                ]
            },
        }
        svg = self.flatten(pages.freebusy_svg(data, start, 7, zone))
        self.assertEqual(svg.count("<rect"), 2)
