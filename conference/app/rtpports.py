# -*- test-case-name: tests.unit.app.test_rtpports -*-
"""
The RTP/RTCP port pairs of the media services, kept bound between calls.

Binding two UDP sockets for every join and closing them at every BYE was a
third of a join's CPU (the system calls, Twisted's port bookkeeping and
the four log lines C{udp.Port} writes unconditionally).  A pair whose
session ended is parked instead: it stays bound, its sinks drop and count
whatever arrives, and the next session takes it once it has been parked for
L{QUARANTINE} seconds, so the packets the previous peer still had in flight
are not handed to the new one (the mixer's latch rule drops strangers
anyway; the quarantine means a parked port's late traffic never even
reaches a channel).  Parking is bounded (L{parked_cap}: up to
L{MAX_PARKED} pairs, fewer where the process may open few files), beyond
which pairs are closed as before.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Container, Deque, Optional, Set, Tuple, cast

from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort, IReactorTime, IReactorUDP
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from conference.sip.errors import RemoteProtocolError
from conference.udpport import listen_checked

log = Logger()

# The smallest RTCP packet; RTP needs 12.  Both start with version 2.
MIN_PACKET_SIZE = 8
MAX_PACKET_SIZE = 8192
#: Seconds a released pair stays parked before another session gets it.
QUARANTINE = 0.5
#: Pairs kept parked at most (two sockets each); more are closed.  The
#: pool keeps fewer where the process may open few files (L{parked_cap}).
MAX_PARKED = 1024


def parked_cap(limit: int = MAX_PARKED) -> int:
    """
    How many pairs may stay parked: at most C{limit}, and no more than an
    eighth of the files the process may open (a quarter of them as
    sockets), so parking never starves the server of descriptors.
    """
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return min(limit, 128)
    if soft == resource.RLIM_INFINITY:
        return limit
    return max(0, min(limit, soft // 8))


class RTPSink(DatagramProtocol):
    """
    Counts the datagrams that reach one port and hands them on, or drops
    them while the port is parked.

    @ivar packets: datagrams received; C{octets} their total size.
    @ivar malformed: those too short or not RTP/RTCP version 2.
    @ivar on_datagram: called with each datagram and its source, if set
        (the mixer's receive path).
    @ivar on_activity: called for each well-formed datagram, if set (the
        null service refreshes the session's C{last_activity} through it;
        the mixer unsets it and counts only the media it accepts).
    @ivar parked: whether the port belongs to no session (then both
        callbacks are unset and everything arriving is dropped).
    """

    # Twisted logs "Starting protocol" and "Stopping protocol" otherwise.
    noisy = False

    def __init__(self) -> None:
        self.packets = 0
        self.octets = 0
        self.malformed = 0
        self.parked = False
        self.on_datagram: Optional[Callable[[bytes, Tuple[str, int]], None]] = None
        self.on_activity: Optional[Callable[[], None]] = None

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        self.packets += 1
        self.octets += len(datagram)
        if len(datagram) < MIN_PACKET_SIZE or datagram[0] >> 6 != 2:
            self.malformed += 1
        elif self.on_activity is not None:
            self.on_activity()
        if self.on_datagram is not None:
            self.on_datagram(datagram, (addr[0], addr[1]))

    def park(self) -> None:
        """Belong to no session: forget the callbacks, start counting afresh."""
        self.on_datagram = self.on_activity = None
        self.packets = self.octets = self.malformed = 0
        self.parked = True


class PortPair:
    """
    One bound RTP port (even) and its RTCP port above it.

    @ivar parked_at: when it was last released (L{None} while in use).
    """

    def __init__(
        self,
        port: int,
        listeners: Tuple[IListeningPort, IListeningPort],
        sinks: Tuple[RTPSink, RTPSink],
    ) -> None:
        self.port = port
        self.listeners = listeners
        self.sinks = sinks
        self.parked_at: Optional[float] = None

    def close(self) -> None:
        """Unbind both ports."""
        for listener in self.listeners:
            listener.stopListening()


class PortPairPool:
    """
    Hands out port pairs of C{low}-C{high} on C{address}: a parked pair
    past its quarantine first, then a newly bound one (the cursor goes
    round the range, skipping pairs held or parked), and, when nothing
    else can be bound, the longest-parked pair even within its quarantine
    (a full range must not refuse a join while a pair sits idle).

    @ivar parked: the parked pairs, longest-parked first.
    @ivar bound: how many pairs were bound so far; C{reused} how many
        sessions got a parked one.
    """

    def __init__(
        self,
        reactor: IReactorUDP,
        address: str,
        low: int,
        high: int,
        *,
        quarantine: float = QUARANTINE,
        max_parked: Optional[int] = None,
    ) -> None:
        """
        @param reactor: where ports are bound; also provides C{IReactorTime}.
        @param low: the lowest even port; C{high} the highest usable port.
        @param max_parked: pairs kept parked at most (L{parked_cap} if
            L{None}).
        """
        self._reactor = reactor
        self.address = address
        self.low, self.high = low, high
        self.quarantine = quarantine
        self.max_parked = parked_cap() if max_parked is None else max_parked
        self.parked: Deque[PortPair] = deque()
        self._parked_ports: Set[int] = set()
        self._next_port = low
        self.bound = 0
        self.reused = 0

    @property
    def pairs(self) -> int:
        """How many pairs the range holds."""
        return (self.high - self.low + 1) // 2

    def _now(self) -> float:
        return cast(IReactorTime, self._reactor).seconds()

    def take(self, held: Container[int]) -> PortPair:
        """
        A pair for a new session; C{held} are the RTP ports in use.

        @raise RemoteProtocolError: 503 when no pair is free.
        """
        if self.parked:
            oldest = self.parked[0]
            assert oldest.parked_at is not None
            if self._now() - oldest.parked_at >= self.quarantine:
                return self._unpark()
        pair = self._bind(held)
        if pair is not None:
            return pair
        if self.parked:
            return self._unpark()
        log.warn("No free RTP port pair in {low}-{high}", low=self.low, high=self.high)
        raise RemoteProtocolError("No media ports available", 503)

    def _unpark(self) -> PortPair:
        pair = self.parked.popleft()
        self._parked_ports.discard(pair.port)
        pair.parked_at = None
        for sink in pair.sinks:
            sink.parked = False
        self.reused += 1
        return pair

    def _take_port(self) -> int:
        port = self._next_port
        self._next_port += 2
        if self._next_port + 1 > self.high:
            self._next_port = self.low
        return port

    def _bind(self, held: Container[int]) -> Optional[PortPair]:
        """Bind the next free pair, going round the range once; L{None} if none."""
        for _ in range(self.pairs):
            port = self._take_port()
            if port in held or port in self._parked_ports:
                continue
            rtp, rtcp = RTPSink(), RTPSink()
            try:
                rtp_listener = listen_checked(
                    self._reactor, port, rtp, self.address, MAX_PACKET_SIZE
                )
            except CannotListenError:
                continue
            try:
                rtcp_listener = listen_checked(
                    self._reactor, port + 1, rtcp, self.address, MAX_PACKET_SIZE
                )
            except CannotListenError:
                rtp_listener.stopListening()
                continue
            self.bound += 1
            return PortPair(port, (rtp_listener, rtcp_listener), (rtp, rtcp))
        return None

    def release(self, pair: PortPair) -> None:
        """
        The session of C{pair} ended: park it (its sinks forget the
        session) or, when enough are parked, close it.
        """
        for sink in pair.sinks:
            sink.park()
        if len(self.parked) >= self.max_parked:
            pair.close()
            return
        pair.parked_at = self._now()
        self.parked.append(pair)
        self._parked_ports.add(pair.port)

    def close_all(self) -> None:
        """Close every parked pair (at shutdown)."""
        while self.parked:
            self.parked.popleft().close()
        self._parked_ports.clear()
