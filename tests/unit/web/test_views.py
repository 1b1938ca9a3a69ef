# -*- test-case-name: tests.unit.web.test_views -*-
"""
Tests for L{conference.web.views}.
"""

from __future__ import annotations

from datetime import timedelta

from twisted.internet.defer import ensureDeferred

from conference.records import ConferenceRecord
from conference.web.access import Viewer
from conference.web.views import (
    MAX_FREEBUSY_DAYS,
    Forbidden,
    NotFound,
    conference_page,
    describe,
    freebusy,
    visible_conferences,
)
from tests.unit.app.calendars import T0, conference_calendar, conference_record
from tests.unit.web.fixture import CONF, WebFixture

ALICE = Viewer("sip:alice@example.com")
CAROL = Viewer("sip:carol@example.com")


class ViewTests(WebFixture):
    """
    The data behind the pages.
    """

    def put(self, uri: str, **kwargs: object) -> None:
        record = conference_record(conference_calendar(**kwargs), uri)  # type: ignore[arg-type]
        self.successResultOf(self.stores.conferences.put(record, 0))

    def test_order_and_window(self) -> None:
        """Conferences come by first occurrence; those outside the window are left out."""
        self.put("sip:early@example.com", uid="early@x", start=T0 - timedelta(hours=2))
        self.put("sip:late@example.com", uid="late@x", start=T0 + timedelta(days=30))
        window = visible_conferences(
            self.stores, ALICE, T0 - timedelta(days=1), T0 + timedelta(days=1)
        )
        found = self.successResultOf(ensureDeferred(window))
        self.assertEqual([c.record.uid for c in found], ["early@x", "conf-1@example.com"])

    def test_bad_calendar(self) -> None:
        """A record whose calendar cannot be parsed is left out, not an error."""
        record = ConferenceRecord(
            uri="sip:x@example.com", uid="x", organizer=ALICE.aor, calendar=b"<nope"
        )
        self.assertIsNone(describe(record, ALICE, T0, T0 + timedelta(days=1)))

    def test_page_hidden(self) -> None:
        """A conference page for a stranger or an unknown URI raises NotFound."""
        for viewer, uri in ((CAROL, CONF), (ALICE, "sip:none@example.com")):
            d = ensureDeferred(conference_page(self.stores, self.focus, viewer, uri, T0))
            self.failureResultOf(d, NotFound)

    def test_freebusy_bounds(self) -> None:
        """Free/busy is bounded to MAX_FREEBUSY_DAYS and to one's own unless admin."""
        d = ensureDeferred(freebusy(self.stores, ALICE, ALICE.aor, T0, MAX_FREEBUSY_DAYS + 1))
        self.failureResultOf(d, ValueError)
        d = ensureDeferred(freebusy(self.stores, ALICE, "sip:bob@example.com", T0, 7))
        self.failureResultOf(d, Forbidden)
        data = self.successResultOf(ensureDeferred(freebusy(self.stores, ALICE, ALICE.aor, T0, 7)))
        self.assertEqual(data["busy"], {})
