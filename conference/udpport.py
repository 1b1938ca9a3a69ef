# -*- test-case-name: tests.loopback.test_udpport -*-
"""
A Twisted UDP port whose C{write} checks each destination host once.

Twisted's C{udp.Port.write} checks, on every datagram, that the host is
an IP address of the socket's family: a fifth of the cost of a send.  The
server sends to the same few hosts thousands of times a second, on the
SIP port (a front end, its phones) and on every RTP port (one packet per
participant and 20 ms tick), so both kinds of port are this one: a host
that passed Twisted's checks once is sent to directly after that.
"""

from __future__ import annotations

import errno
from typing import Optional, Set, Tuple, Type

from twisted.internet import udp
from twisted.internet.error import MessageLengthError
from twisted.internet.interfaces import IListeningPort, IReactorUDP
from twisted.internet.posixbase import PosixReactorBase
from twisted.internet.protocol import DatagramProtocol

__all__ = ["CheckedPort", "listen_checked"]


class CheckedPort(udp.Port):  # type: ignore[misc]
    """
    Twisted's UDP port, sending to a host it already checked without
    checking it again (at most L{MAX_CHECKED} hosts are remembered).
    """

    #: How many destination hosts to remember as checked, at most.
    MAX_CHECKED = 4096
    _checked: Optional[Set[str]] = None

    def write(self, datagram: bytes, addr: Optional[Tuple[str, int]] = None) -> None:
        """
        Twisted's write, without its checks that the host is an IP address
        of this socket's family for a host it already checked.

        @raise twisted.internet.error.InvalidAddressError: C{addr}'s host is
            not an IP address of the socket's family (checked every time).
        @raise MessageLengthError: the datagram is too long to send.
        """
        checked = self._checked
        if checked is None:
            checked = self._checked = set()
        if addr is None or self._connectedAddr or addr[0] not in checked:
            super().write(datagram, addr)  # raises for a bad address
            if addr is not None and len(checked) < self.MAX_CHECKED:
                checked.add(addr[0])
            return
        try:
            self.socket.sendto(datagram, addr)
        except OSError as e:
            # What Twisted's write does with these.
            if e.args[0] == errno.EINTR:
                self.write(datagram, addr)
            elif e.args[0] == errno.EMSGSIZE:
                raise MessageLengthError("message too long") from None
            elif e.args[0] != errno.ECONNREFUSED:
                raise


def listen_checked(
    reactor: IReactorUDP,
    port: int,
    protocol: DatagramProtocol,
    interface: str = "",
    max_packet_size: int = 8192,
    *,
    kind: Type[CheckedPort] = CheckedPort,
) -> IListeningPort:
    """
    Listen with a C{kind} port (a L{CheckedPort}) on a POSIX reactor, with
    the reactor's own C{listenUDP} on any other (tests' memory reactors).

    @raise twisted.internet.error.CannotListenError: the port is taken.
    """
    if isinstance(reactor, PosixReactorBase):
        listening = kind(port, protocol, interface, max_packet_size, reactor)
        listening.startListening()
        return listening  # type: ignore[no-any-return]
    return reactor.listenUDP(port, protocol, interface=interface, maxPacketSize=max_packet_size)
