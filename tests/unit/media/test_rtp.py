# -*- test-case-name: tests.unit.media.test_rtp -*-
"""
Tests for L{conference.media.rtp}: RTP packets and RFC 3550 reception
statistics.
"""

from __future__ import annotations

import struct
from typing import List, Tuple

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from conference.media.rtp import (
    RTPError,
    RTPPacket,
    SourceStatistics,
    build_rtp,
    is_rtcp,
    parse_rtp,
    timestamp_delta,
)


class PacketTests(SynchronousTestCase):
    """
    Parsing and building RTP packets.
    """

    @given(
        st.tuples(
            st.integers(0, 127),
            st.integers(0, 65535),
            st.integers(0, 2**32 - 1),
            st.integers(0, 2**32 - 1),
            st.binary(max_size=300),
        ),
        st.booleans(),
    )
    def test_round_trip(self, fields: Tuple[int, int, int, int, bytes], marker: bool) -> None:
        """What build_rtp writes, parse_rtp reads back (but RTCP-like types 72-95)."""
        data = build_rtp(*fields, marker=marker)
        if is_rtcp(data):
            self.assertRaises(RTPError, parse_rtp, data)
            return
        self.assertEqual(parse_rtp(data), RTPPacket(*fields, marker=marker))

    def test_wraps_fields(self) -> None:
        """Sequence and timestamp are written modulo their sizes."""
        packet = parse_rtp(build_rtp(0, 65536 + 5, 2**32 + 7, 1, b"x"))
        self.assertEqual((packet.sequence, packet.timestamp), (5, 7))

    def test_csrc_extension_padding(self) -> None:
        """CSRCs, a header extension and padding are decoded and removed from the payload."""
        header = struct.pack("!BBHII", 0x80 | 0x20 | 0x10 | 2, 8, 1, 2, 3)
        csrcs = struct.pack("!II", 10, 11)
        extension = struct.pack("!HH", 0xBEDE, 1) + b"\x10\xaa\x00\x00"
        data = header + csrcs + extension + b"voice" + b"\x00\x00\x03"
        packet = parse_rtp(data)
        self.assertEqual(packet.csrcs, (10, 11))
        self.assertEqual(packet.extension, (0xBEDE, b"\x10\xaa\x00\x00"))
        self.assertEqual(packet.payload, b"voice")
        self.assertEqual(packet.payload_type, 8)

    def test_refusals(self) -> None:
        """Short, wrong version, overrunning CSRC/extension, bad padding and RTCP are refused."""
        good = build_rtp(0, 1, 2, 3, b"abcd")
        bad = {
            "short": good[:11],
            "version": bytes([0x40]) + good[1:],
            "csrc": bytes([0x8F]) + good[1:],
            "extension": bytes([0x90]) + good[1:12] + b"\x00\x01",
            "extension length": bytes([0x90]) + good[1:12] + b"\x00\x01\x00\x09",
            "padding zero": bytes([0xA0]) + good[1:] + b"\x00",
            "padding long": bytes([0xA0]) + good[1:] + b"\x40",
            "rtcp": good[:1] + bytes([200]) + good[2:],
        }
        for name, data in bad.items():
            try:
                parse_rtp(data)
            except RTPError:
                continue
            self.fail(f"{name}: accepted")

    @given(st.binary(max_size=64))
    def test_any_bytes(self, data: bytes) -> None:
        """Random bytes parse or raise RTPError, nothing else."""
        try:
            packet = parse_rtp(data)
        except RTPError:
            return
        self.assertLessEqual(len(packet.payload), len(data) - 12)

    def test_is_rtcp(self) -> None:
        """RTCP packet types 192-223 in the second byte mark RTCP (RFC 5761)."""
        self.assertTrue(is_rtcp(b"\x80\xc8"))
        self.assertFalse(is_rtcp(build_rtp(0, 1, 2, 3, b"")))
        self.assertFalse(is_rtcp(b"\x80"))

    def test_timestamp_delta(self) -> None:
        """Timestamp differences are signed and cross the 32-bit wrap."""
        self.assertEqual(timestamp_delta(10, 2**32 - 150), 160)
        self.assertEqual(timestamp_delta(2**32 - 150, 10), -160)
        self.assertEqual(timestamp_delta(500, 340), 160)


class StatisticsTests(SynchronousTestCase):
    """
    Sequence validation, loss and jitter of one source (RFC 3550 A.1, A.3, A.8).
    """

    def feed(self, stats: SourceStatistics, sequences: List[int]) -> List[bool]:
        return [stats.update(s) for s in sequences]

    def test_probation(self) -> None:
        """A new source is usable from its second packet in sequence."""
        stats = SourceStatistics(1, 100)
        self.assertEqual(self.feed(stats, [100, 101, 102]), [False, True, True])
        self.assertTrue(stats.valid)
        self.assertEqual((stats.received, stats.expected, stats.lost), (2, 2, 0))

    def test_probation_restarts(self) -> None:
        """Out-of-sequence packets during probation keep the source on probation."""
        stats = SourceStatistics(1, 100)
        self.assertEqual(self.feed(stats, [100, 300, 500, 501]), [False, False, False, True])

    def test_wrap(self) -> None:
        """Crossing 65535 -> 0 counts a cycle in the extended sequence number."""
        stats = SourceStatistics(1, 65534)
        self.feed(stats, [65534, 65535, 0, 1])
        self.assertEqual(stats.extended_max, 65536 + 1)
        self.assertEqual((stats.expected, stats.lost), (3, 0))

    def test_loss_and_fraction(self) -> None:
        """Missing numbers are lost; the report gives the interval's fraction and the total."""
        stats = SourceStatistics(7, 10)
        self.feed(stats, [10, 11, 12, 14, 15, 18, 19])  # 13, 16, 17 missing
        report = stats.report()
        self.assertEqual((report.ssrc, report.cumulative_lost, report.highest_sequence), (7, 3, 19))
        self.assertEqual(report.fraction_lost, (3 << 8) // 9)
        self.feed(stats, [20, 21])
        self.assertEqual(stats.report().fraction_lost, 0)

    def test_reorder_and_duplicate(self) -> None:
        """A late packet is used; a duplicate makes the loss negative as A.3 says."""
        stats = SourceStatistics(1, 1)
        self.assertEqual(self.feed(stats, [1, 2, 4, 3, 3]), [False, True, True, True, True])
        self.assertEqual(stats.lost, -1)

    def test_jump(self) -> None:
        """A big jump needs a second packet in sequence before the source resynchronises."""
        stats = SourceStatistics(1, 1)
        self.feed(stats, [1, 2, 3])
        self.assertEqual(self.feed(stats, [20000, 20001, 20002]), [False, True, True])
        self.assertEqual((stats.base_seq, stats.received), (20001, 2))

    def test_jitter(self) -> None:
        """Steady packets have no jitter; alternating transit converges to its deviation."""
        steady = SourceStatistics(1, 1)
        for n in range(50):
            steady.update_jitter(160 * n, 0.02 * n)
        self.assertLess(steady.jitter, 1e-6)
        shaky = SourceStatistics(1, 1)
        for n in range(500):
            shaky.update_jitter(160 * n, 0.02 * n + (0.005 if n % 2 else 0))
        self.assertAlmostEqual(shaky.jitter, 40.0, places=3)
        self.assertEqual(shaky.report().jitter, 40)
