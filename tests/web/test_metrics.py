# -*- test-case-name: tests.web.test_metrics -*-
"""
Tests for L{conference.web.metrics}.
"""

from __future__ import annotations

from prometheus_client.exposition import generate_latest

from conference.web.metrics import server_registry
from tests.web.fixture import WebFixture


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
