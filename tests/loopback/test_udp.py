# -*- test-case-name: tests.loopback.test_udp -*-
"""
Tests for L{conference.transport.udp}.
"""

from __future__ import annotations

import socket
import time
from typing import Any, List, Optional, Tuple

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase

from conference.app.core import CoreRouter
from conference.sip.transaction_model import new_tag
from conference.transport.server import SIPServer
from conference.transport.udp import (
    SIPDatagramProtocol,
    TimestampedPort,
    UDPListenerService,
    listen_udp,
    parse_udp_description,
)
from tests.builders import parse_response, request_bytes


class FakeDatagramTransport:
    """
    Records writes; fails for one address to check errors are contained.
    """

    def __init__(self) -> None:
        self.written: List[Tuple[bytes, Any]] = []

    def write(self, data: bytes, addr: Any) -> None:
        if addr[0] == "203.0.113.99":
            raise OSError("unreachable")
        self.written.append((data, addr))


class UDPTests(SynchronousTestCase):
    """
    The datagram protocol and its service.
    """

    def setUp(self) -> None:
        router = CoreRouter(["example.com"], tag_factory=new_tag, accept_ip_literals=True)
        self.server = SIPServer(router, reactor=Clock())
        self.protocol = SIPDatagramProtocol(self.server)
        self.transport = FakeDatagramTransport()
        self.protocol.transport = self.transport  # type: ignore[assignment]
        self.protocol.startProtocol()

    def test_answer(self) -> None:
        """A datagram is answered from the same socket."""
        self.protocol.datagramReceived(
            request_bytes("OPTIONS", "sip:example.com"), ("192.0.2.1", 5060)
        )
        [(data, addr)] = self.transport.written
        self.assertEqual(addr, ("192.0.2.1", 5060))
        self.assertEqual(parse_response(data).code, 200)

    def test_ipv6_address(self) -> None:
        """IPv6 source addresses (4-tuples) are handled."""
        data = request_bytes("OPTIONS", "sip:example.com", via_host="[2001:db8::5]:5060")
        self.protocol.datagramReceived(data, ("2001:db8::5", 5060, 0, 0))
        [(_, addr)] = self.transport.written
        self.assertEqual(addr, ("2001:db8::5", 5060))

    def test_peer_shared_per_source(self) -> None:
        """Datagrams from one source share one Peer; a full table starts over."""
        peer = self.protocol.peer_for("192.0.2.1", 5060)
        self.assertIs(self.protocol.peer_for("192.0.2.1", 5060), peer)
        self.assertEqual((peer.transport, peer.host, peer.port), ("UDP", "192.0.2.1", 5060))
        self.assertIs(peer.connection, self.protocol)
        other = self.protocol.peer_for("192.0.2.1", 5061)
        self.assertIsNot(other, peer)
        self.protocol.MAX_PEERS = 2
        third = self.protocol.peer_for("192.0.2.2", 5060)
        self.assertEqual(third.host, "192.0.2.2")
        self.assertEqual(self.protocol.peer_for("192.0.2.1", 5060), peer)
        self.assertIsNot(self.protocol.peer_for("192.0.2.1", 5060), peer)

    def test_local_address_asked_once(self) -> None:
        """The bound address is asked of the socket once per listening, again after a restart."""
        asked: List[int] = []

        class Host:
            host, port = "127.0.0.1", 5062

        def get_host() -> Host:
            asked.append(1)
            return Host()

        self.transport.getHost = get_host  # type: ignore[attr-defined]
        self.assertEqual(self.protocol.local_address(), ("127.0.0.1", 5062))
        self.assertEqual(self.protocol.local_address(), ("127.0.0.1", 5062))
        self.assertEqual(len(asked), 1)
        self.protocol.stopProtocol()
        Host.port = 5064
        self.protocol.startProtocol()
        self.assertEqual(self.protocol.local_address(), ("127.0.0.1", 5064))
        self.assertEqual(len(asked), 2)

    def test_send_error_contained(self) -> None:
        """A socket error on send is logged, not raised."""
        self.protocol.send_bytes(b"x", "203.0.113.99", 5060)
        self.assertEqual(self.transport.written, [])

    def test_too_large(self) -> None:
        """A datagram over the limit is answered 513."""
        self.server.max_message_size = 1024
        data = request_bytes(
            "OPTIONS", "sip:example.com", headers=[("Content-Type", "text/plain")], body=b"y" * 2000
        )
        self.protocol.datagramReceived(data, ("192.0.2.1", 5060))
        [(reply, _)] = self.transport.written
        self.assertEqual(parse_response(reply).code, 513)

    def test_stop_forgets(self) -> None:
        """A stopped protocol is no longer a sender."""
        self.protocol.stopProtocol()
        self.assertNotIn(self.protocol, self.server.senders)

    def test_parse_description(self) -> None:
        """udp:PORT[:interface=ADDR] parses; mistakes are named."""
        self.assertEqual(parse_udp_description("udp:5060"), (5060, ""))
        self.assertEqual(parse_udp_description("udp:0:interface=127.0.0.1"), (0, "127.0.0.1"))
        self.assertEqual(parse_udp_description("udp:5060:interface=\\:\\:1"), (5060, "::1"))
        for bad in ("udp:", "udp:x", "udp:70000", "udp:5060:mtu=1", "tcp:5060"):
            self.assertRaises(ValueError, parse_udp_description, bad)

    def test_service(self) -> None:
        """The service listens with room for the largest message and stops."""
        reactor = FakeUDPReactor()
        service = UDPListenerService(
            reactor,  # type: ignore[arg-type]
            self.server,
            5062,
            "127.0.0.1",
            max_size=65536,
        )
        service.startService()
        [(port, _, interface, size)] = reactor.calls
        self.assertEqual((port, interface), (5062, "127.0.0.1"))
        self.assertGreater(size, 65536)
        service.stopService()
        self.assertIsNone(service.port)
        self.assertTrue(reactor.port.stopped)


class FakePort:
    """
    A listening port that records being stopped.
    """

    stopped = False

    def stopListening(self) -> None:
        self.stopped = True


class FakeUDPReactor:
    """
    Records listenUDP calls (MemoryReactor has no UDP).
    """

    def __init__(self) -> None:
        self.calls: List[Tuple[int, Any, str, int]] = []
        self.port = FakePort()

    def listenUDP(
        self, port: int, protocol: Any, interface: str = "", maxPacketSize: int = 8192
    ) -> FakePort:
        self.calls.append((port, protocol, interface, maxPacketSize))
        return self.port


class StampRecorder:
    """A protocol stub that keeps each datagram with its receive time."""

    def __init__(self) -> None:
        self.got: List[Tuple[bytes, Any, Optional[float]]] = []
        self.transport: Any = None
        self.done: Deferred[None] = Deferred()

    def makeConnection(self, transport: Any) -> None:
        self.transport = transport

    def doStart(self) -> None:
        pass

    def doStop(self) -> None:
        pass

    def datagram_received_at(self, data: bytes, addr: Any, arrival: Optional[float]) -> None:
        self.got.append((data, addr, arrival))
        if not self.done.called:
            self.done.callback(None)


class TimestampTests(TestCase):
    """
    The UDP port reads each datagram with the kernel's receive time.
    """

    async def test_arrival_time(self) -> None:
        """A datagram sent on loopback comes with a receive time from just before it was read."""
        from twisted.internet import reactor

        recorder = StampRecorder()
        port = listen_udp(reactor, 0, recorder, "127.0.0.1")  # type: ignore[arg-type]
        self.addCleanup(port.stopListening)
        if not getattr(port, "stamps", False):
            raise SkipTest("this platform gives no UDP receive timestamps")
        sent = time.time()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"hello", ("127.0.0.1", port.getHost().port))  # type: ignore[attr-defined]
            await recorder.done
        [(data, addr, arrival)] = recorder.got
        self.assertEqual((data, addr[0]), (b"hello", "127.0.0.1"))
        assert arrival is not None
        self.assertGreaterEqual(arrival, sent - 0.01)
        self.assertLessEqual(arrival, time.time())

    async def test_read_budget(self) -> None:
        """One wake-up reads at most MAX_DATAGRAMS datagrams; the rest wait for the next."""
        from twisted.internet import reactor

        recorder = StampRecorder()
        port = listen_udp(reactor, 0, recorder, "127.0.0.1")  # type: ignore[arg-type]
        self.addCleanup(port.stopListening)
        if not getattr(port, "stamps", False):
            raise SkipTest("this platform gives no UDP receive timestamps")
        budget = TimestampedPort.MAX_DATAGRAMS
        port.stopReading()  # type: ignore[attr-defined]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for n in range(budget + 5):
                sock.sendto(b"%d" % n, ("127.0.0.1", port.getHost().port))  # type: ignore[attr-defined]
        port.doRead()  # type: ignore[attr-defined]
        self.assertEqual(len(recorder.got), budget)
        port.doRead()  # type: ignore[attr-defined]
        self.assertEqual(
            [data for data, _, _ in recorder.got], [b"%d" % n for n in range(budget + 5)]
        )
