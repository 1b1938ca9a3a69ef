# -*- test-case-name: tests.loopback.test_sameport -*-
"""
Tests for L{tests.loopback.sameport}: a UDP and TCP pair on one port
number, tried again when the number is taken for TCP.
"""

from __future__ import annotations

from typing import Any, Callable, List

from twisted.internet import reactor as _reactor
from twisted.internet.error import CannotListenError
from twisted.internet.protocol import DatagramProtocol, Factory, Protocol
from twisted.trial.unittest import TestCase

from tests.loopback.sameport import listen_same_port

reactor: Any = _reactor


class _Port:
    """A stand-in listening port on a given number."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.stopped = False

    def getHost(self) -> Any:
        return type("Host", (), {"port": self.number})()

    def stopListening(self) -> None:
        self.stopped = True


def _numbered(first: int, made: List[_Port]) -> Callable[[int], Any]:
    """A UDP listen stand-in that gets numbers from C{first} up, keeping its ports in C{made}."""

    def listen(_: int) -> Any:
        made.append(_Port(first + len(made)))
        return made[-1]

    return listen


class ListenSamePortTests(TestCase):
    """L{listen_same_port} gives a pair on one number, or fails cleanly."""

    def test_real_pair(self) -> None:
        """On loopback, the UDP and TCP listeners share their port number."""
        udp, tcp = listen_same_port(
            lambda n: reactor.listenUDP(n, DatagramProtocol(), interface="127.0.0.1"),
            lambda n: reactor.listenTCP(n, Factory.forProtocol(Protocol), interface="127.0.0.1"),
        )
        self.addCleanup(udp.stopListening)
        self.addCleanup(tcp.stopListening)
        self.assertEqual(udp.getHost().port, tcp.getHost().port)  # type: ignore[attr-defined]

    def test_taken_number_retried(self) -> None:
        """A number taken for TCP closes its UDP port and the next number is tried."""
        udps: List[_Port] = []
        udp = _numbered(5000, udps)

        def tcp(number: int) -> Any:
            if number == 5000:
                raise CannotListenError("127.0.0.1", number, OSError("in use"))
            return _Port(number)

        pair = listen_same_port(udp, tcp)
        self.assertEqual([pair[0].getHost().port, pair[1].getHost().port], [5001, 5001])
        self.assertEqual([p.stopped for p in udps], [True, False])

    def test_gives_up(self) -> None:
        """When every number is taken, the error comes out and no UDP port is left open."""
        udps: List[_Port] = []
        udp = _numbered(6000, udps)

        def tcp(number: int) -> Any:
            raise CannotListenError("127.0.0.1", number, OSError("in use"))

        self.assertRaises(CannotListenError, listen_same_port, udp, tcp, 3)
        self.assertEqual([p.stopped for p in udps], [True, True, True])
