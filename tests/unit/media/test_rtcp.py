# -*- test-case-name: tests.unit.media.test_rtcp -*-
"""
Tests for L{conference.media.rtcp}: compound RTCP packets.
"""

from __future__ import annotations

import contextlib
import struct

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from conference.media.rtcp import (
    Goodbye,
    Report,
    ReportBlock,
    RTCPError,
    SenderInfo,
    SourceDescription,
    build_bye,
    build_report,
    build_sdes,
    compact_ntp,
    ntp_time,
    parse_rtcp,
)
from conference.media.rtp import ReceptionReport


class RTCPTests(SynchronousTestCase):
    """
    Writing and reading SR, RR, SDES and BYE.
    """

    def test_sender_report(self) -> None:
        """An SR with a block and an SDES CNAME read back field by field."""
        info = SenderInfo(3900000000, 2**31, 12345, 50, 8000)
        block = ReceptionReport(0xAABBCCDD, 25, -3, 70000, 40)
        data = build_report(1, info, [(block, 0x11112222, 65536)]) + build_sdes(1, "mixer@host")
        report, sdes = parse_rtcp(data)
        assert isinstance(report, Report) and isinstance(sdes, SourceDescription)
        self.assertEqual((report.ssrc, report.sender), (1, info))
        self.assertEqual(
            report.blocks, [ReportBlock(0xAABBCCDD, 25, -3, 70000, 40, 0x11112222, 65536)]
        )
        self.assertEqual(sdes.cnames, [(1, "mixer@host")])
        self.assertEqual(info.compact_ntp, ((3900000000 & 0xFFFF) << 16) | 0x8000)

    def test_receiver_report_and_bye(self) -> None:
        """An RR without blocks, then a BYE with its reason."""
        packets = parse_rtcp(build_report(9, None) + build_bye(9, "leaving"))
        self.assertEqual(packets, [Report(9, None, []), Goodbye((9,), "leaving")])
        self.assertEqual(parse_rtcp(build_report(9, None) + build_bye(9))[1], Goodbye((9,), ""))

    def test_skips_other_types(self) -> None:
        """APP and feedback packets are skipped, not refused."""
        app = struct.pack("!BBHI4s", 0x80, 204, 2, 9, b"test")
        packets = parse_rtcp(build_report(9, None) + app)
        self.assertEqual(packets, [Report(9, None, [])])

    def test_reduced_size(self) -> None:
        """A packet not starting with SR or RR (RFC 5506; baresip's APP PING) is read."""
        ping = bytes.fromhex("80cc0003536b98a950494e47504f4e47")
        self.assertEqual(parse_rtcp(ping), [])
        self.assertEqual(parse_rtcp(build_sdes(9, "x")), [SourceDescription([(9, "x")])])

    def test_padding(self) -> None:
        """Padding on the last packet is accepted and removed."""
        rr = bytearray(build_report(9, None) + b"\x00\x00\x00\x04")
        rr[0] |= 0x20
        rr[3] += 1
        self.assertEqual(parse_rtcp(bytes(rr)), [Report(9, None, [])])

    def test_refusals(self) -> None:
        """Bad version, wrong first type, overrunning lengths and bad padding are refused."""
        rr = build_report(9, None)
        bad = [
            b"\x80",
            bytes([0x40]) + rr[1:],
            b"\x80\x00\x00\x01\x00\x00\x00\x01",  # an RTP payload type
            rr[:2] + b"\x00\x05" + rr[4:],
            rr + b"\x80",
            bytes([0x81]) + rr[1:],  # claims a block it lacks
            bytes([0xA0]) + rr[1:],  # padding count 0... in the SSRC's last byte
            rr + bytes([0x81, 202, 0, 1]) + b"\0\0\0\1",  # SDES chunk without items end
            rr + bytes([0x81, 203, 0, 0]),  # BYE without its SSRC
            rr + bytes([0x80, 200, 0, 1]) + b"\0\0\0\1",  # SR without sender info
        ]
        for data in bad:
            self.assertRaises(RTCPError, parse_rtcp, data)

    @given(st.binary(max_size=96))
    def test_any_bytes(self, data: bytes) -> None:
        """Random bytes parse or raise RTCPError, nothing else."""
        try:
            packets = parse_rtcp(data)
        except RTCPError:
            return
        self.assertIsInstance(packets, list)

    @given(st.binary(min_size=1, max_size=60))
    def test_any_sdes_tail(self, tail: bytes) -> None:
        """Random bytes after a valid RR, framed as SDES, never raise anything but RTCPError."""
        words = (len(tail) + 3) // 4
        body = tail + b"\0" * (4 * words - len(tail))
        data = build_report(1, None) + bytes([0x81, 202]) + struct.pack("!H", words) + body
        with contextlib.suppress(RTCPError):
            parse_rtcp(data)

    def test_ntp(self) -> None:
        """Unix time maps to NTP seconds since 1900 and its compact middle 32 bits."""
        self.assertEqual(ntp_time(0.5), (2208988800, 2**31))
        self.assertEqual(compact_ntp(0.5), ((2208988800 & 0xFFFF) << 16) | 0x8000)
