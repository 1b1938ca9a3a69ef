# -*- test-case-name: tests.transport.test_stream -*-
"""
Tests for L{conference.transport.stream}: TCP/TLS framing, limits, idling.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from conference.app.core import CoreRouter
from conference.sip.transaction_model import new_tag
from conference.transport.server import SIPServer
from conference.transport.stream import SIPStreamFactory, SIPStreamProtocol
from tests.builders import parse_response, request_bytes


class StreamTests(SynchronousTestCase):
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

    def connect(self, port: int = 40000) -> tuple[SIPStreamProtocol, StringTransport]:
        protocol = self.factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", port))
        assert isinstance(protocol, SIPStreamProtocol)
        transport = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.5", port))
        protocol.makeConnection(transport)
        return protocol, transport

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
