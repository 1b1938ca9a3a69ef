# -*- test-case-name: tests.loopback.test_outbound,tests.loopback.test_dns -*-
"""
A UDP and a TCP listener on one loopback port number, as RFC 3261 section
18.1.1 and DNS over TCP need.  The UDP port is the kernel's choice; the
same number may already be taken for TCP (another test's connection holds
it as its own ephemeral port), so the pair is tried again on a new port
rather than failing the test.
"""

from __future__ import annotations

from typing import Callable, Tuple, TypeVar

from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort

UDP = TypeVar("UDP", bound=IListeningPort)
TCP = TypeVar("TCP", bound=IListeningPort)

#: How many port numbers to try before giving up.
ATTEMPTS = 20


def listen_same_port(
    udp: Callable[[int], UDP], tcp: Callable[[int], TCP], attempts: int = ATTEMPTS
) -> Tuple[UDP, TCP]:
    """
    Listen with C{udp(0)}, then with C{tcp} on the port number it got; on
    that number being taken for TCP, close the UDP port and start again.

    @raise CannotListenError: when no number of C{attempts} was free for both.
    """
    for attempt in range(attempts):
        datagrams = udp(0)
        try:
            return datagrams, tcp(int(datagrams.getHost().port))  # type: ignore[attr-defined]
        except CannotListenError:
            datagrams.stopListening()
            if attempt == attempts - 1:
                raise
    raise ValueError("attempts must be positive")
