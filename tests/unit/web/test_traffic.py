# -*- test-case-name: tests.unit.web.test_traffic -*-
"""
Tests for L{conference.web.traffic}: transaction outcomes counted from the
SIP server's own log events.
"""

from __future__ import annotations

from prometheus_client.exposition import generate_latest
from prometheus_client.registry import CollectorRegistry
from twisted.internet.task import Clock
from twisted.logger import Logger, LogPublisher, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from conference.app.core import CoreRouter
from conference.sip.transaction import Peer
from conference.sip.transaction_model import new_tag
from conference.transport.server import SIPServer
from conference.web.traffic import ObservedCounter, TransactionCounter
from tests.builders import request_bytes
from tests.unit.transport.test_server import RecordingSender


def scrape(counter: TransactionCounter) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(counter)
    return generate_latest(registry).decode("utf-8")


class CounterTests(SynchronousTestCase):
    """
    Counting and exporting.
    """

    def test_real_server(self) -> None:
        """An OPTIONS (a debug event) and an unknown method answered by SIPServer count once."""
        counter = TransactionCounter()
        observed = ObservedCounter(counter, globalLogPublisher)
        observed.start()
        self.addCleanup(observed.stop)
        clock = Clock()
        server = SIPServer(CoreRouter(["example.com"], tag_factory=new_tag), reactor=clock)
        server.add_sender("udp", RecordingSender())
        peer = Peer("UDP", "192.0.2.1", 5060, "udp")
        server.datagram_received(request_bytes("OPTIONS", "sip:example.com"), peer)
        server.datagram_received(request_bytes("FROB", "sip:example.com", branch="z9hG4bKf"), peer)
        self.assertEqual(counter.outcomes[("OPTIONS", "200", "in")], 1)
        self.assertEqual(counter.outcomes[("other", "501", "in")], 1)
        text = scrape(counter)
        self.assertIn(
            "conference_sip_transactions_completed_total"
            '{code="200",direction="in",method="OPTIONS"} 1.0',
            text,
        )
        self.assertIn('conference_sip_transaction_seconds_count{method="OPTIONS"} 1.0', text)

    def test_buckets_and_timeouts(self) -> None:
        """Latency falls in its bucket; a timeout and an outbound request are told apart."""
        publisher = LogPublisher()
        counter = TransactionCounter()
        ObservedCounter(counter, publisher).start()
        log = Logger(namespace="conference.transport.server", observer=publisher)
        for status, ms, outbound in ((200, 3.0, False), ("timeout", 32000.0, True)):
            log.info(
                "{transaction_summary}",
                transaction_summary="x",
                method="INVITE",
                status=status,
                duration_ms=ms,
                outbound=outbound,
            )
        Logger(namespace="elsewhere", observer=publisher).info(
            "{transaction_summary}", transaction_summary="y"
        )
        self.assertEqual(
            dict(counter.outcomes), {("INVITE", "200", "in"): 1, ("INVITE", "timeout", "out"): 1}
        )
        text = scrape(counter)
        self.assertIn(
            'conference_sip_transaction_seconds_bucket{le="0.005",method="INVITE"} 1.0', text
        )
        self.assertIn(
            'conference_sip_transaction_seconds_bucket{le="32.0",method="INVITE"} 2.0', text
        )
        self.assertIn(
            'conference_sip_transaction_seconds_bucket{le="+Inf",method="INVITE"} 2.0', text
        )

    def test_stop(self) -> None:
        """Once stopped, events are no longer counted."""
        publisher = LogPublisher()
        counter = TransactionCounter()
        observed = ObservedCounter(counter, publisher)
        observed.start()
        observed.stop()
        Logger(namespace="conference.transport.server", observer=publisher).info(
            "{transaction_summary}", transaction_summary="x", method="BYE", status=200
        )
        self.assertEqual(counter.outcomes, {})
