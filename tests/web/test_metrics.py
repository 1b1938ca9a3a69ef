# -*- test-case-name: tests.web.test_metrics -*-
"""
Tests for L{conference.web.metrics}.
"""

from __future__ import annotations

from prometheus_client.exposition import generate_latest
from twisted.internet.defer import ensureDeferred

from conference.records import StoreError
from conference.web.metrics import StoreProbe, server_registry
from tests.web.fixture import FailingConferences, WebFixture


class CollectorTests(WebFixture):
    """
    Numbers read from the live server at scrape time.
    """

    def scrape(self) -> str:
        return generate_latest(server_registry(self)).decode("utf-8")

    def test_sip_stats(self) -> None:
        """The SIP server's counters appear as they are at scrape time."""
        self.sip.stats["received"] = 7
        self.sip.stats["limited"] = 2
        self.sip.stats["shed"] = 3
        text = self.scrape()
        self.assertIn('conference_sip_messages_total{kind="received"} 7.0', text)
        self.assertIn("conference_sip_rate_limited_total 2.0", text)
        self.assertIn("conference_sip_shed_total 3.0", text)
        self.assertIn('conference_sip_transactions{table="server"} 0.0', text)

    def test_roster(self) -> None:
        """Participants and open conferences follow joins."""
        self.assertIn("conference_participants 0.0", self.scrape())
        self.join("call-1", "bob")
        self.join("call-2", "dave")
        text = self.scrape()
        self.assertIn("conference_participants 2.0", text)
        self.assertIn("conference_conferences_open 1.0", text)

    def test_before_focus(self) -> None:
        """Before the applications exist only the SIP metrics are given."""
        del self.focus
        text = self.scrape()
        self.assertIn("conference_sip_messages_total", text)
        self.assertNotIn("conference_participants", text)

    def test_own_registry(self) -> None:
        """Two servers' registries do not share numbers."""
        other = server_registry(self)
        self.sip.stats["sent"] = 5
        self.assertIn('kind="sent"} 5.0', generate_latest(other).decode())
        self.assertIsNot(other, server_registry(self))


class StoreProbeTests(WebFixture):
    """
    What only the store knows, asked at scrape time.
    """

    def test_counts(self) -> None:
        """Stored conferences are counted by state; the query's time is kept."""
        ticks = iter([10.0, 10.25])
        probe = StoreProbe(timer=lambda: next(ticks))
        self.successResultOf(ensureDeferred(probe.refresh(self.stores)))
        registry = server_registry(self, probe)
        text = generate_latest(registry).decode()
        self.assertIn("conference_store_up 1.0", text)
        self.assertIn('conference_conferences_stored{state="scheduled"} 1.0', text)
        self.assertIn('conference_conferences_stored{state="cancelled"} 0.0', text)
        self.assertIn("conference_store_probe_seconds 0.25", text)

    def test_down(self) -> None:
        """A failing or unopened store is conference_store_up 0, without counts."""
        probe = StoreProbe()
        self.stores.conferences = FailingConferences()  # type: ignore[assignment]
        self.failureResultOf(ensureDeferred(probe.refresh(self.stores)), StoreError)
        text = generate_latest(server_registry(self, probe)).decode()
        self.assertIn("conference_store_up 0.0", text)
        self.assertNotIn("conference_conferences_stored", text)
        self.successResultOf(ensureDeferred(probe.refresh(None)))
        self.assertFalse(probe.up)

    def test_not_asked(self) -> None:
        """Before the first scrape the store's gauges are absent."""
        text = generate_latest(server_registry(self, StoreProbe())).decode()
        self.assertNotIn("conference_store_up", text)
