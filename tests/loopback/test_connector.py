# -*- test-case-name: tests.loopback.test_connector -*-
"""
Tests for L{conference.transport.connector}: outgoing TCP connections on
loopback are opened once and reused, refusals fail clearly, and closing
closes them (TLS name checks are in L{tests.loopback.test_outbound}).
"""

from __future__ import annotations

from typing import Any, List

from twisted.internet import reactor as _reactor
from twisted.internet.defer import gatherResults, inlineCallbacks
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from conference.app.core import CoreRouter
from conference.sip.locate import Target
from conference.sip.transaction_model import new_tag
from conference.transport.connector import ConnectionFailed, Connector
from conference.transport.server import SIPServer
from conference.transport.stream import SIPStreamFactory

reactor: Any = _reactor


class ConnectorTests(TestCase):
    """
    L{Connector.connect} against a TCP listener of a second SIP core.
    """

    def setUp(self) -> None:
        router = CoreRouter(["example.net"], tag_factory=new_tag)
        self.far = SIPStreamFactory(SIPServer(router, reactor=reactor), reactor)
        self.port = reactor.listenTCP(0, self.far, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.near = SIPServer(CoreRouter(["example.com"], tag_factory=new_tag), reactor=reactor)
        self.connector = Connector(SIPStreamFactory(self.near, reactor), reactor, timeout=2)
        self.addCleanup(self.connector.close)
        self.target = Target("tcp", "127.0.0.1", int(self.port.getHost().port), "example.net")

    @inlineCallbacks
    def test_reuse(self) -> Any:
        """
        Two connects at once, and one after, share one connection, which
        the SIP core knows as a sender.
        """
        first, second = yield gatherResults(
            [self.connector.connect(self.target), self.connector.connect(self.target)]
        )
        third = yield self.connector.connect(self.target)
        self.assertIs(first, second)
        self.assertIs(first, third)
        self.assertIn(first, self.near.senders)
        self.assertEqual(first.local_address()[0], "127.0.0.1")

    @inlineCallbacks
    def test_keepalive(self) -> Any:
        """
        With keepalive, CRLF CRLF is sent on the open connection every
        interval, and stops once it is closed.
        """
        received: List[bytes] = []

        class Recorder(Protocol):
            def dataReceived(self, data: bytes) -> None:
                received.append(data)

        port = reactor.listenTCP(0, Factory.forProtocol(Recorder), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.connector.keepalive = 0.05
        target = Target("tcp", "127.0.0.1", int(port.getHost().port), "example.net")
        yield self.connector.connect(target)
        yield deferLater(reactor, 0.3, lambda: None)
        self.assertGreaterEqual(len(b"".join(received)) // 4, 2)
        self.assertEqual(set(b"".join(received)), set(b"\r\n"))
        self.connector.close()

    @inlineCallbacks
    def test_refused(self) -> Any:
        """
        A closed port fails with L{ConnectionFailed}; a later connect tries
        again.
        """
        yield self.port.stopListening()
        yield self.assertFailure(self.connector.connect(self.target), ConnectionFailed)
        self.assertEqual(self.connector._opening, {})

    @inlineCallbacks
    def test_closed_not_reused(self) -> Any:
        """
        After close, a connect opens a new connection.
        """
        first = yield self.connector.connect(self.target)
        self.connector.close()
        while first.usable:
            yield deferLater(reactor, 0.01, lambda: None)
        second = yield self.connector.connect(self.target)
        self.assertIsNot(first, second)
