# -*- test-case-name: tests.loopback.test_udpport -*-
"""
Tests for L{conference.udpport}: the UDP port the SIP transport and the
RTP ports send from.
"""

from __future__ import annotations

import socket
from typing import Any, List, Tuple

from twisted.internet.error import InvalidAddressError, MessageLengthError
from twisted.internet.protocol import DatagramProtocol
from twisted.trial.unittest import SynchronousTestCase, TestCase

from conference.app.rtpports import PortPairPool
from conference.udpport import CheckedPort, listen_checked


class CheckedPortTests(TestCase):
    """
    A real port on loopback.
    """

    def test_write_checks_each_host_once(self) -> None:
        """Sends arrive; a hostname is refused every time; a checked IP is not checked again."""
        from twisted.internet import reactor

        port = listen_checked(reactor, 0, DatagramProtocol(), "127.0.0.1")  # type: ignore[arg-type]
        self.addCleanup(port.stopListening)
        self.assertIsInstance(port, CheckedPort)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(5)
            target = sock.getsockname()
            for n in range(3):
                port.write(b"%d" % n, target)  # type: ignore[attr-defined]
            self.assertEqual([sock.recv(100) for _ in range(3)], [b"0", b"1", b"2"])
        self.assertEqual(port._checked, {"127.0.0.1"})  # type: ignore[attr-defined]
        for _ in range(2):
            self.assertRaises(
                InvalidAddressError,
                port.write,  # type: ignore[attr-defined]
                b"x",
                ("localhost", target[1]),
            )
        self.assertNotIn("localhost", port._checked)  # type: ignore[attr-defined]
        self.assertRaises(
            MessageLengthError,
            port.write,  # type: ignore[attr-defined]
            b"x" * 70000,
            target,
        )

    def test_rtp_ports_are_checked_ports(self) -> None:
        """The RTP port pool binds both ports of a pair as checked ports."""
        from twisted.internet import reactor

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            low = probe.getsockname()[1] & ~1
        pool = PortPairPool(reactor, "127.0.0.1", low, low + 201)  # type: ignore[arg-type]
        pair = pool.take(())
        self.addCleanup(pair.close)
        for listener in pair.listeners:
            self.assertIsInstance(listener, CheckedPort)


class _UDPOnly:
    """A reactor that only records listenUDP calls."""

    def __init__(self) -> None:
        self.calls: List[Tuple[int, Any, str, int]] = []

    def listenUDP(
        self, port: int, protocol: Any, interface: str = "", maxPacketSize: int = 0
    ) -> str:
        self.calls.append((port, protocol, interface, maxPacketSize))
        return "listening"


class OtherReactorTests(SynchronousTestCase):
    """
    A reactor that is not a POSIX one.
    """

    def test_falls_back_to_listen_udp(self) -> None:
        """Elsewhere (tests' fake reactors) the port is the reactor's own listenUDP's."""
        reactor = _UDPOnly()
        protocol = DatagramProtocol()
        got = listen_checked(reactor, 5004, protocol, "127.0.0.1", 1500)  # type: ignore[arg-type]
        self.assertEqual(got, "listening")
        self.assertEqual(reactor.calls, [(5004, protocol, "127.0.0.1", 1500)])
