# -*- test-case-name: tests.loopback.test_udp -*-
"""
The UDP transport: one datagram is one message (RFC 3261 section 18.3).

Twisted's UDP ports read at most 8 KiB by default; SIP allows up to 64 KiB
over UDP, so the port's limit follows the configured message size.

On Linux the port reads each datagram with the time the kernel received
it (C{SO_TIMESTAMPNS}), so the server knows how long every request waited
in the socket's queue: the overload control's second signal
(L{conference.overload.ProportionalShedding}).  Elsewhere, or on a reactor that
is not a POSIX one, datagrams come without it.
"""

from __future__ import annotations

import socket
import struct
import sys
from typing import Any, Dict, Optional, Tuple

from twisted.internet import udp
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IListeningPort, IReactorUDP
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from conference.sip.transaction import Peer
from conference.transport.listening import ListenerService
from conference.transport.server import SIPServer
from conference.udpport import CheckedPort, listen_checked

log = Logger()

RECEIVE_BUFFER = 4 * 1024 * 1024

# Linux's SO_TIMESTAMPNS (asm-generic; Python's socket module lacks it) and
# the struct timespec it delivers.
SO_TIMESTAMPNS = 35 if sys.platform.startswith("linux") else None
_TIMESPEC = struct.Struct("@ll")
_ANCILLARY = socket.CMSG_SPACE(_TIMESPEC.size) if hasattr(socket, "CMSG_SPACE") else 0
# What Twisted's own UDP port ignores or reports as refused when reading.
_READ_IGNORE = frozenset(udp._sockErrReadIgnore)
_READ_REFUSE = frozenset(udp._sockErrReadRefuse)


class TimestampedPort(CheckedPort):
    """
    A UDP port that hands its protocol each datagram with the kernel's
    receive time (C{datagram_received_at}), or reads as Twisted's does
    where the socket option is refused.

    It also reads at most L{MAX_DATAGRAMS} datagrams per wake-up, where
    Twisted's port reads up to 256 KiB (some 250 INVITEs, a quarter of a
    second of work): a burst on the SIP port must not hold up the timers
    (retransmissions, the mixer's 20 ms clock) and the other sockets that
    long.  What stays in the socket is read at the next turn of the loop,
    and its wait is what the receive times measure.

    @ivar stamps: whether datagrams carry their receive time.
    """

    stamps = False
    #: Datagrams read per wake-up at most.
    MAX_DATAGRAMS = 32
    maxThroughput = 32 * 1024

    def createInternetSocket(self) -> socket.socket:
        sock: socket.socket = super().createInternetSocket()
        if SO_TIMESTAMPNS is not None and _ANCILLARY:
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            except OSError as e:
                log.info("UDP receive timestamps unavailable: {error}", error=e)
            else:
                self.stamps = True
        return sock

    def doRead(self) -> None:
        if not self.stamps:
            super().doRead()
            return
        read = count = 0
        while read < self.maxThroughput and count < self.MAX_DATAGRAMS:
            try:
                data, ancillary, _, addr = self.socket.recvmsg(self.maxPacketSize, _ANCILLARY)
            except OSError as e:
                if e.args[0] in _READ_REFUSE and self._connectedAddr:
                    self.protocol.connectionRefused()
                if e.args[0] in _READ_IGNORE or e.args[0] in _READ_REFUSE:
                    return
                raise
            read += len(data)
            count += 1
            arrival: Optional[float] = None
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    seconds, nanoseconds = _TIMESPEC.unpack_from(value)
                    arrival = seconds + nanoseconds * 1e-9
            try:
                self.protocol.datagram_received_at(data, addr[:2], arrival)
            except BaseException:
                log.failure("UDP datagram handling failed")


def listen_udp(
    reactor: IReactorUDP,
    port: int,
    protocol: SIPDatagramProtocol,
    interface: str = "",
    max_packet_size: int = 8192,
) -> IListeningPort:
    """
    Listen with a L{TimestampedPort} on a POSIX reactor, with the
    reactor's own C{listenUDP} on any other (tests' memory reactors).
    """
    return listen_checked(reactor, port, protocol, interface, max_packet_size, kind=TimestampedPort)


class SIPDatagramProtocol(DatagramProtocol):
    """
    Hands datagrams to the L{SIPServer} and sends what it asks, from the
    same socket (so NATs see replies come from where requests went).
    """

    #: How many sources' L{Peer}s are kept for reuse (L{peer_for}).
    MAX_PEERS = 4096

    def __init__(self, server: SIPServer) -> None:
        self.server = server
        self._peers: Dict[Tuple[str, int], Peer] = {}
        self._local: Optional[Tuple[str, int]] = None

    def startProtocol(self) -> None:
        self._local = None
        self.server.add_sender(self, self)
        sock = getattr(self.transport, "socket", None)
        if sock is not None:
            # A burst of datagrams should queue, not be dropped by the kernel
            # (the kernel caps this at net.core.rmem_max).
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            except OSError as e:
                log.info("Could not enlarge the UDP receive buffer: {error}", error=e)

    def stopProtocol(self) -> None:
        self._local = None
        self.server.remove_sender(self)

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        self.datagram_received_at(datagram, addr, None)

    def datagram_received_at(self, datagram: bytes, addr: Any, arrival: Optional[float]) -> None:
        """
        One datagram, with the time the kernel received it (L{None}: not
        known), on the clock of C{time.time}.
        """
        self.server.datagram_received(datagram, self.peer_for(addr[0], addr[1]), arrival)

    def peer_for(self, host: str, port: int) -> Peer:
        """
        The L{Peer} of datagrams from C{host}:C{port}: one object per source
        (up to L{MAX_PEERS} of them), shared by all its transactions, so a
        busy server holds one per phone or front end instead of one per
        transaction waiting for its timer, and builds none per datagram.
        """
        peers = self._peers
        peer = peers.get((host, port))
        if peer is None:
            if len(peers) >= self.MAX_PEERS:
                peers.clear()  # sources rarely change: start over, rarely
            peer = peers[host, port] = Peer("UDP", host, port, self)
        return peer

    def local_address(self) -> Tuple[str, int]:
        """
        The address and port this socket is bound to: asked of the socket
        once per listening (a system call; every join's Contact needs it).
        """
        local = self._local
        if local is None:
            host = self.transport.getHost()  # type: ignore[union-attr]
            local = self._local = (str(host.host), int(host.port))
        return local

    def send_bytes(self, data: bytes, host: str, port: int) -> None:
        """
        Send one datagram; socket errors are logged, not raised.
        """
        if self.transport is None:
            return
        try:
            self.transport.write(data, (host, port))
        except (OSError, ValueError) as e:  # ValueError: InvalidAddressError
            log.info("UDP send to {host}:{port} failed: {error}", host=host, port=port, error=e)


def parse_udp_description(description: str) -> Tuple[int, str]:
    """
    Parse C{udp:PORT[:interface=ADDR]} into (port, interface).

    @raise ValueError: naming what is wrong.
    """
    parts = description.split(":", 2)
    if parts[0].lower() != "udp" or len(parts) < 2:
        raise ValueError(f"not a UDP listen description: {description!r}")
    rest = description[len(parts[0]) + 1 :]
    port_text, _, options = rest.partition(":")
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"bad UDP port in {description!r}") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"UDP port out of range in {description!r}")
    interface = ""
    if options:
        key, _, value = options.partition("=")
        if key != "interface" or not value:
            raise ValueError(f"unknown UDP option in {description!r} (only interface=ADDR)")
        interface = value.replace("\\:", ":")
    return port, interface


class UDPListenerService(ListenerService):
    """
    Listens on one UDP port while running (bound early: see
    L{conference.transport.listening}).

    @ivar number: the port number asked for (0: any).
    """

    def __init__(
        self,
        reactor: IReactorUDP,
        server: SIPServer,
        number: int,
        interface: str = "",
        *,
        max_size: int = 65536,
        description: Optional[str] = None,
    ) -> None:
        super().__init__(description or f"udp:{number}:interface={interface}")
        self._reactor = reactor
        self.server = server
        self.number = number
        self.interface = interface
        self.max_size = max_size
        self.protocol = SIPDatagramProtocol(server)

    def _listen(self) -> Deferred[IListeningPort]:
        return succeed(
            listen_udp(
                self._reactor,
                self.number,
                self.protocol,
                interface=self.interface,
                max_packet_size=self.max_size + 1,
            )
        )
