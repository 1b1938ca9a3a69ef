# -*- test-case-name: tests.unit.app.test_rtpports -*-
"""
Tests for L{conference.app.rtpports}: the sinks and the pool of port pairs.
"""

from __future__ import annotations

import resource
import struct
from typing import List, Set, Tuple

from twisted.trial.unittest import SynchronousTestCase

from conference.app.rtpports import MAX_PARKED, PortPairPool, RTPSink, parked_cap
from conference.sip.errors import RemoteProtocolError
from tests.mediacontract import FakeMediaReactor

RTP_PACKET = struct.pack("!BBHII", 0x80, 0, 1, 160, 0x1234) + b"\xff" * 160
SOURCE = ("192.0.2.1", 4000)


class RTPSinkTests(SynchronousTestCase):
    """
    The counting sink.
    """

    def test_counts(self) -> None:
        """Packets and octets are counted; short or non-v2 datagrams are malformed."""
        sink = RTPSink()
        seen: List[Tuple[bytes, Tuple[str, int]]] = []
        sink.on_datagram = lambda data, addr: seen.append((data, addr))
        sink.datagramReceived(RTP_PACKET, SOURCE)
        sink.datagramReceived(b"\x00" * 20, SOURCE)
        sink.datagramReceived(b"\x80", SOURCE)
        self.assertEqual((sink.packets, sink.octets, sink.malformed), (3, len(RTP_PACKET) + 21, 2))
        self.assertEqual(seen[0], (RTP_PACKET, SOURCE))

    def test_park(self) -> None:
        """A parked sink forgets its callbacks and counts from zero; nothing is handed on."""
        sink = RTPSink()
        seen: List[bytes] = []
        active: List[int] = []
        sink.on_datagram = lambda data, addr: seen.append(data)
        sink.on_activity = lambda: active.append(1)
        sink.datagramReceived(RTP_PACKET, SOURCE)
        sink.park()
        self.assertTrue(sink.parked)
        self.assertEqual((sink.packets, sink.octets, sink.malformed), (0, 0, 0))
        sink.datagramReceived(RTP_PACKET, SOURCE)
        self.assertEqual((len(seen), len(active), sink.packets), (1, 1, 1))

    def test_quiet(self) -> None:
        """Starting and stopping a sink logs nothing (one join opens two)."""
        self.assertFalse(RTPSink.noisy)


class PortPairPoolTests(SynchronousTestCase):
    """
    The pool on a fake UDP reactor.
    """

    def setUp(self) -> None:
        self.reactor = FakeMediaReactor()
        self.pool = PortPairPool(self.reactor, "198.51.100.1", 30000, 30007, quarantine=0.5)
        self.held: Set[int] = set()

    def take(self) -> int:
        """Take a pair as a session would, returning its RTP port."""
        pair = self.pool.take(self.held)
        self.held.add(pair.port)
        return pair.port

    def test_binds_round_the_range(self) -> None:
        """New pairs are bound in turn on even ports, RTCP above, on the address."""
        self.assertEqual([self.take() for _ in range(4)], [30000, 30002, 30004, 30006])
        self.assertEqual(
            self.reactor.listened[:2], [(30000, "198.51.100.1"), (30001, "198.51.100.1")]
        )
        self.assertEqual((self.pool.bound, self.pool.reused), (4, 0))
        e = self.assertRaises(RemoteProtocolError, self.pool.take, self.held)
        self.assertEqual(e.status, 503)

    def test_quarantine(self) -> None:
        """A released pair is parked, bound, and reused only after its quarantine."""
        first = self.pool.take(self.held)
        self.pool.release(first)
        self.assertEqual(list(self.pool.parked), [first])
        self.assertIn(30000, self.reactor.open)
        self.assertEqual(self.pool.take(self.held).port, 30002)
        self.reactor.advance(0.5)
        again = self.pool.take(self.held)
        self.assertIs(again, first)
        self.assertFalse(again.sinks[0].parked or again.sinks[1].parked)
        self.assertEqual((self.pool.bound, self.pool.reused), (2, 1))

    def test_full_range_reuses_early(self) -> None:
        """With nothing left to bind, the longest-parked pair is taken within its quarantine."""
        pairs = [self.pool.take(self.held) for _ in range(4)]
        self.held = {pair.port for pair in pairs}
        self.pool.release(pairs[2])
        self.pool.release(pairs[0])
        self.held -= {pairs[2].port, pairs[0].port}
        self.assertIs(self.pool.take(self.held), pairs[2])
        self.assertIs(self.pool.take(self.held), pairs[0])

    def test_parked_ports_skipped(self) -> None:
        """Binding skips parked pairs rather than trying to bind them again."""
        first = self.pool.take(self.held)
        self.pool.release(first)
        for _ in range(3):
            self.pool.take(self.held)
        self.assertNotIn((30000, "198.51.100.1"), self.reactor.listened[2:])

    def test_busy_ports_skipped(self) -> None:
        """A port something else holds (RTP or RTCP) makes the pool try the next pair."""
        self.reactor.busy = {30000, 30003}
        self.assertEqual(self.pool.take(self.held).port, 30004)
        self.assertNotIn(30000, self.reactor.open)
        self.assertNotIn(30002, self.reactor.open)

    def test_max_parked(self) -> None:
        """Beyond max_parked a released pair is closed, its ports unbound."""
        pool = PortPairPool(self.reactor, "198.51.100.1", 30000, 30007, max_parked=1)
        a, b = pool.take(set()), pool.take({30000})
        pool.release(a)
        pool.release(b)
        self.assertEqual(list(pool.parked), [a])
        self.assertNotIn(b.port, self.reactor.open)
        self.assertNotIn(b.port + 1, self.reactor.open)

    def test_parked_drops(self) -> None:
        """What reaches a parked port goes to no session: it is counted and dropped."""
        pair = self.pool.take(self.held)
        seen: List[bytes] = []
        pair.sinks[0].on_datagram = lambda data, addr: seen.append(data)
        self.pool.release(pair)
        self.reactor.deliver(pair.port, RTP_PACKET, SOURCE)
        self.assertEqual((seen, pair.sinks[0].packets), ([], 1))

    def test_close_all(self) -> None:
        """close_all unbinds every parked pair and forgets them."""
        pairs = [self.pool.take(set()) for _ in range(2)]
        for pair in pairs:
            self.pool.release(pair)
        self.pool.close_all()
        self.assertEqual((self.reactor.open, list(self.pool.parked)), ({}, []))
        self.assertEqual(self.pool.take(set()).port, 30004)

    def test_parked_cap(self) -> None:
        """By default at most MAX_PARKED pairs park, and no more than an eighth of the files."""
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        expected = MAX_PARKED if soft == resource.RLIM_INFINITY else min(MAX_PARKED, soft // 8)
        self.assertEqual(parked_cap(), expected)
        self.assertEqual(
            PortPairPool(self.reactor, "198.51.100.1", 30000, 30007).max_parked, expected
        )
        self.assertLessEqual(parked_cap(4), 4)
