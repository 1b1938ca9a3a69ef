# -*- test-case-name: tests.unit.transport.test_stream -*-
"""
Tests for L{conference.transport.stream}: TCP/TLS framing, limits, idling,
and the deadlines and per-source cap against slow peers.
"""

from __future__ import annotations

from typing import Any, Dict, List, cast

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import ILogObserver, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import directlyProvides

from conference.app.core import CoreRouter
from conference.sip.transaction_model import new_tag
from conference.transport.server import SIPServer
from conference.transport.stream import SIPStreamFactory, SIPStreamProtocol
from tests.builders import parse_response, request_bytes


class Connecting:
    """
    Connects protocols of C{self.factory} over string transports.
    """

    factory: SIPStreamFactory

    def connect(
        self, port: int = 40000, host: str = "192.0.2.5", *, tls: bool = False
    ) -> tuple[SIPStreamProtocol, StringTransport]:
        address: Any = (
            IPv6Address("TCP", host, port) if ":" in host else IPv4Address("TCP", host, port)
        )
        protocol = self.factory.buildProtocol(address)
        assert isinstance(protocol, SIPStreamProtocol)
        transport = StringTransport(peerAddress=address)
        if tls:
            directlyProvides(transport, ISSLTransport)
        protocol.makeConnection(transport)
        return protocol, transport


class StreamTests(Connecting, SynchronousTestCase):
    """
    One protocol per connection over a string transport.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        router = CoreRouter(["example.com"], tag_factory=new_tag, accept_ip_literals=True)
        self.server = SIPServer(router, reactor=self.clock, max_message_size=2048)
        self.factory = SIPStreamFactory(
            self.server, self.clock, max_connections=2, idle_timeout=30.0
        )

    def test_options_over_tcp(self) -> None:
        """A request split across reads is answered on the same connection."""
        protocol, transport = self.connect()
        data = request_bytes("OPTIONS", "sip:example.com", transport="TCP")
        protocol.dataReceived(data[:17])
        self.assertEqual(transport.value(), b"")
        protocol.dataReceived(data[17:])
        self.assertEqual(parse_response(transport.value()).code, 200)

    def test_two_messages_one_read(self) -> None:
        """Two pipelined requests in one read get two answers."""
        protocol, transport = self.connect()
        first = request_bytes("OPTIONS", "sip:example.com", transport="TCP", branch="z9hG4bK1")
        second = request_bytes("OPTIONS", "sip:example.com", transport="TCP", branch="z9hG4bK2")
        protocol.dataReceived(first + second)
        self.assertEqual(transport.value().count(b"SIP/2.0 200"), 2)

    def test_too_large_closes(self) -> None:
        """A message over the size limit is answered 513 and the connection closed."""
        protocol, transport = self.connect()
        body = b"x" * 4096
        data = request_bytes(
            "OPTIONS",
            "sip:example.com",
            transport="TCP",
            headers=[("Content-Type", "text/plain")],
            body=body,
        )
        protocol.dataReceived(data)
        self.assertTrue(transport.disconnecting)
        self.assertIn(b"513", transport.value().split(b"\r\n")[0])

    def test_connection_cap(self) -> None:
        """Connections over the cap are aborted at once."""
        self.connect(1)
        self.connect(2)
        _, third = self.connect(3)
        self.assertTrue(third.disconnecting)
        self.assertEqual(self.factory.active, 2)

    def test_idle_timeout(self) -> None:
        """An idle connection is closed after the timeout; traffic resets it."""
        protocol, transport = self.connect()
        protocol.dataReceived(b"\r\n\r\n")  # RFC 5626 keep-alive
        self.clock.advance(20)
        protocol.dataReceived(b"\r\n\r\n")
        self.clock.advance(20)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(11)
        self.assertTrue(transport.disconnecting)

    def test_lost_connection_forgotten(self) -> None:
        """A closed connection is no longer a sender and frees its slot."""
        protocol, _ = self.connect()
        self.assertIn(protocol, self.server.senders)
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertNotIn(protocol, self.server.senders)
        self.assertEqual(self.factory.active, 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class SlowPeerTests(Connecting, SynchronousTestCase):
    """
    Slow and half-open connections cannot hold the
    server's connection slots for ever.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        router = CoreRouter(["example.com"], tag_factory=new_tag, accept_ip_literals=True)
        self.server = SIPServer(router, reactor=self.clock, max_message_size=2048)
        # The audit's settings: an idle timeout of 5 s.
        self.factory = SIPStreamFactory(
            self.server,
            self.clock,
            max_connections=8,
            idle_timeout=5.0,
            max_per_source=3,
            message_timeout=10.0,
            handshake_timeout=4.0,
        )

    def trickle(self, protocol: SIPStreamProtocol, data: bytes, every: float = 1.0) -> None:
        for i in range(len(data)):
            protocol.dataReceived(data[i : i + 1])
            self.clock.advance(every)

    def test_byte_at_a_time_closed_at_deadline(self) -> None:
        """One byte a second resets the idle timer but not the message deadline."""
        protocol, transport = self.connect()
        data = request_bytes("OPTIONS", "sip:example.com", transport="TCP")
        self.trickle(protocol, data[:9])
        self.assertFalse(transport.disconnecting)  # 9 s in, idle timeout 5 s: alive
        self.trickle(protocol, data[9:11])
        self.assertTrue(transport.disconnecting)
        self.assertEqual(transport.value(), b"")

    def test_deadline_counts_per_message(self) -> None:
        """Messages each finished in time keep the connection however long it lasts."""
        protocol, transport = self.connect()
        for n in range(4):
            data = request_bytes(
                "OPTIONS", "sip:example.com", transport="TCP", branch=f"z9hG4bKm{n}"
            )
            protocol.dataReceived(data[:40])
            self.clock.advance(4)
            protocol.dataReceived(data[40:])
            self.clock.advance(4)
        self.assertFalse(transport.disconnecting)
        self.assertEqual(transport.value().count(b"SIP/2.0 200"), 4)

    def test_pipelined_message_gets_fresh_deadline(self) -> None:
        """A message that starts in the read completing another gets its own deadline."""
        protocol, transport = self.connect()
        first = request_bytes("OPTIONS", "sip:example.com", transport="TCP", branch="z9hG4bKa")
        second = request_bytes("OPTIONS", "sip:example.com", transport="TCP", branch="z9hG4bKb")
        protocol.dataReceived(first[:30])
        self.clock.advance(4)
        protocol.dataReceived(first[30:] + second[:30])
        self.clock.advance(4)
        protocol.dataReceived(second[30:31])
        self.clock.advance(4)  # 12 s since the first began, 8 since the second did
        self.assertFalse(transport.disconnecting)
        self.clock.advance(2.5)
        self.assertTrue(transport.disconnecting)

    def test_silent_connection_closed(self) -> None:
        """A connection that never sends anything is closed at the message deadline."""
        self.factory.idle_timeout = None  # only the deadline is left
        _, transport = self.connect()
        self.clock.advance(9.9)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(0.2)
        self.assertTrue(transport.disconnecting)

    def test_keepalive_clears_deadline(self) -> None:
        """A CRLF keep-alive with nothing after it leaves only the idle timeout."""
        protocol, transport = self.connect()
        for _ in range(6):
            protocol.dataReceived(b"\r\n\r\n")
            self.clock.advance(4)
        self.assertFalse(transport.disconnecting)

    def test_per_source_cap(self) -> None:
        """A fourth connection from one address is aborted; other addresses still get in."""
        for port in range(3):
            self.connect(port)
        _, fourth = self.connect(3)
        self.assertTrue(fourth.disconnecting)
        _, other = self.connect(4, host="198.51.100.9")
        self.assertFalse(other.disconnecting)
        self.assertEqual(self.factory.per_source, {"192.0.2.5": 3, "198.51.100.9": 1})

    def test_per_source_cap_counts_loopback(self) -> None:
        """Sources exempt from rate limits (loopback) are capped like any other."""
        for port in range(3):
            self.connect(port, host="127.0.0.1")
        _, fourth = self.connect(3, host="127.0.0.1")
        self.assertTrue(fourth.disconnecting)

    def test_per_source_cap_ipv6_slash64(self) -> None:
        """Addresses of one IPv6 /64 share one cap."""
        for n in range(3):
            self.connect(n, host=f"2001:db8::{n + 1}")
        _, fourth = self.connect(3, host="2001:db8::ffff:1")
        self.assertTrue(fourth.disconnecting)
        _, other = self.connect(4, host="2001:db8:0:1::1")
        self.assertFalse(other.disconnecting)

    def test_closing_frees_source_slot(self) -> None:
        """A closed connection gives its source slot back."""
        protocols = [self.connect(port)[0] for port in range(3)]
        protocols[0].connectionLost(Failure(ConnectionDone()))
        _, again = self.connect(9)
        self.assertFalse(again.disconnecting)
        self.assertEqual(self.factory.per_source, {"192.0.2.5": 3})
        self.assertEqual(self.factory.active, 3)

    def test_broken_framing_frees_slots(self) -> None:
        """A connection closed for lost framing gives back its slots (they once leaked)."""
        protocol, transport = self.connect()
        protocol.dataReceived(b"OPTIONS sip:example.com SIP/2.0\r\nVia: x\r\n\r\n")
        self.assertTrue(transport.disconnecting)
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual((self.factory.active, self.factory.per_source), (0, {}))
        self.assertNotIn(protocol, self.server.senders)

    def test_refusals_logged_once(self) -> None:
        """A flood of refused connections from one source logs one line a minute."""
        events: List[Dict[str, Any]] = []
        observer = cast(ILogObserver, events.append)
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        for port in range(20):
            self.connect(port)
        refused = [e for e in events if "Refusing" in e.get("log_format", "")]
        self.assertEqual(len(refused), 1)
        self.clock.advance(61)
        self.connect(99)
        refused = [e for e in events if "Refusing" in e.get("log_format", "")]
        self.assertEqual(len(refused), 2)

    def test_tls_handshake_deadline(self) -> None:
        """A TLS peer that never finishes its handshake is aborted at the handshake deadline."""
        _, transport = self.connect(tls=True)
        self.clock.advance(3.9)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(0.2)
        self.assertTrue(transport.disconnecting)

    def test_tls_handshake_then_message_deadline(self) -> None:
        """After the handshake the peer has the message deadline for its first message."""
        self.factory.idle_timeout = None
        protocol, transport = self.connect(tls=True)
        self.clock.advance(3)
        protocol.handshakeCompleted()
        self.clock.advance(3)
        protocol.dataReceived(b"OPT")
        self.clock.advance(6.9)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(0.2)
        self.assertTrue(transport.disconnecting)

    def test_half_open_handshakes_count(self) -> None:
        """Connections still in their TLS handshake count against the per-source cap."""
        for port in range(3):
            self.connect(port, tls=True)
        _, fourth = self.connect(3, tls=True)
        self.assertTrue(fourth.disconnecting)

    def test_timers_cancelled_on_close(self) -> None:
        """A closed connection leaves no deadline or idle timer behind."""
        protocol, _ = self.connect(tls=True)
        protocol.dataReceived(b"OPT")
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.clock.getDelayedCalls(), [])
