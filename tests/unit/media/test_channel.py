# -*- test-case-name: tests.unit.media.test_channel -*-
"""
Tests for L{conference.media.channel}: one participant's RTP and RTCP,
the latch rule, SSRC changes, bad input, DTMF, reports and inactivity.
"""

from __future__ import annotations

import random
from typing import List, Optional, Tuple

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from conference.media.channel import MAX_PACKETS_PER_TICK, RTCP_INTERVAL, Channel, Counters, Latch
from conference.media.codecs import FRAME_SAMPLES, INTERNAL_RATE, PCMA, PCMU
from conference.media.dtmf import DTMFError, TelephoneEvent, parse_event
from conference.media.rtcp import (
    Goodbye,
    Report,
    SenderInfo,
    SourceDescription,
    build_bye,
    build_report,
    build_sdes,
    compact_ntp,
    ntp_time,
    parse_rtcp,
)
from conference.media.rtp import ReceptionReport, build_rtp, parse_rtp
from conference.media.srtp import SRTPContext, SRTPKeys
from conference.media.wideband import G722, OPUS, unavailable
from tests.unit.media.signals import decode_stream, peak_frequency, rtp_stream, tone

PEER = ("192.0.2.7", 6000)
PEER_RTCP = ("192.0.2.7", 6001)
NAT = ("192.0.2.7", 40123)
STRANGER = ("203.0.113.66", 6000)


def make_channel(now: float = 0.0, direction: str = "sendrecv") -> Channel:
    """A channel negotiated with PCMU (0), PCMA (8) and telephone-event (101)."""
    channel = Channel("alice", now=now, cname="test@example", rng=random.Random(1))
    channel.configure(
        remote=PEER,
        codecs={0: PCMU, 8: PCMA},
        send_pt=0,
        event_pt=101,
        direction=direction,
    )
    return channel


# One 20 ms frame on G.711's 8 kHz clock.
NARROW = 160


def voice(n: int, ssrc: int = 0x1234, pt: int = 0, value: int = 1000) -> bytes:
    """RTP packet n of a stream of constant 20 ms frames of G.711."""
    codec = PCMU if pt == 0 else PCMA
    payload = codec.encode(np.full(NARROW, value, dtype=np.int16)).tobytes()
    return build_rtp(pt, 100 + n, 8000 + NARROW * n, ssrc, payload)


class LatchTests(SynchronousTestCase):
    """
    The latch rule.
    """

    def test_sdp_address(self) -> None:
        """The SDP's exact address is accepted and latched; others then are strangers."""
        latch = Latch(PEER)
        self.assertTrue(latch.accept(PEER))
        self.assertFalse(latch.accept(NAT))
        self.assertEqual(latch.destination, PEER)

    def test_nat_port(self) -> None:
        """The first packet from the SDP's host on another port latches (NAT)."""
        latch = Latch(PEER)
        self.assertEqual(latch.destination, PEER)
        self.assertFalse(latch.accept(STRANGER))
        self.assertTrue(latch.accept(NAT))
        self.assertFalse(latch.accept(PEER))
        self.assertEqual(latch.destination, NAT)

    def test_ipv6_forms(self) -> None:
        """IPv6 addresses match whatever their spelling in the SDP."""
        latch = Latch(("2001:DB8:0:0::7", 6000))
        self.assertEqual(latch.destination, ("2001:db8::7", 6000))
        self.assertTrue(latch.accept(("2001:db8::7", 6000)))

    def test_unknown(self) -> None:
        """Without an address (a host name, 0.0.0.0) nothing is accepted or sent."""
        for latch in (Latch(None), Latch(("phone.example.com", 6000)), Latch(("0.0.0.0", 6000))):
            self.assertFalse(latch.accept(PEER))
            self.assertIsNone(latch.destination)


class ReceiveTests(SynchronousTestCase):
    """
    What comes in: accepted, or dropped and counted.
    """

    def setUp(self) -> None:
        self.channel = make_channel()

    def feed(
        self, packets: List[bytes], source: tuple[str, int] = PEER, start: float = 0.0
    ) -> None:
        for n, data in enumerate(packets):
            self.channel.receive_rtp(data, source, start + 0.02 * n)
            if n % 10 == 9:
                self.channel.pop()  # a tick resets the flood budget

    def test_plays_stream(self) -> None:
        """A stream is decoded into the jitter buffer (the first packet is probation)."""
        self.feed([voice(n) for n in range(5)])
        c = self.channel.counters
        self.assertEqual((c.received, c.accepted, c.unconfirmed, c.dropped), (5, 4, 1, 1))
        frames = [self.channel.pop() for _ in range(4)]
        heard = [f for f in frames if f is not None]
        self.assertTrue(heard)
        self.assertTrue(np.all(np.abs(heard[-1].astype(int) - 1000) < 40))

    def test_strangers(self) -> None:
        """Packets from elsewhere never reach the mix."""
        self.feed([voice(n) for n in range(5)], source=STRANGER)
        self.assertEqual(self.channel.counters.strangers, 5)
        self.assertIsNone(self.channel.pop())
        self.assertIsNone(self.channel.rtp.latched)

    def test_bad_packets(self) -> None:
        """Malformed, oversized, unknown-payload and RTCP-on-RTP datagrams are counted."""
        self.feed([voice(n) for n in range(3)])
        self.feed(
            [
                b"\x80\x00",
                b"\x00" * 40,
                voice(3)[:12] + b"\xff" * 1600,
                build_rtp(18, 103, 8000 + 3 * 160, 0x1234, b"g729"),
                build_report(1, None),
            ],
            start=0.06,
        )
        c = self.channel.counters
        self.assertEqual((c.malformed, c.oversized, c.wrong_payload), (3, 1, 1))
        self.assertEqual(c.dropped, 3 + 1 + 1 + c.unconfirmed)

    def test_flood(self) -> None:
        """Beyond MAX_PACKETS_PER_TICK datagrams between two ticks the rest is dropped unparsed."""
        for n in range(MAX_PACKETS_PER_TICK + 10):
            self.channel.receive_rtp(voice(n), PEER, 0.0)
        self.assertEqual(self.channel.counters.flood, 10)
        self.channel.pop()
        self.channel.receive_rtp(voice(100), PEER, 0.02)
        self.assertEqual(self.channel.counters.flood, 10)

    def test_ssrc_storm(self) -> None:
        """Packets each with a new SSRC are all dropped; the followed source plays on."""
        self.feed([voice(n) for n in range(3)])
        accepted = self.channel.counters.accepted
        storm = [voice(n, ssrc=0x5000 + n) for n in range(3, 13)]
        self.feed(storm, start=0.06)
        self.assertEqual(self.channel.counters.ssrc_mismatch, 10)
        self.assertEqual(self.channel.counters.accepted, accepted)
        self.feed([voice(n) for n in range(13, 15)], start=0.26)
        self.assertEqual(self.channel.counters.accepted, accepted + 2)

    def test_ssrc_change(self) -> None:
        """A new SSRC in sequence twice takes over and restarts the jitter buffer."""
        self.feed([voice(n) for n in range(3)])
        self.feed([voice(n, ssrc=0x9999, value=-2000) for n in range(50, 53)], start=0.06)
        c = self.channel.counters
        self.assertEqual((c.ssrc_changes, c.ssrc_mismatch), (1, 1))
        frames = [self.channel.pop() for _ in range(3)]
        heard = [f for f in frames if f is not None]
        self.assertTrue(np.all(heard[-1] < 0))

    def test_interleaved_ssrc_does_not_take_over(self) -> None:
        """A second SSRC interleaved with the followed one never takes over."""
        packets = []
        for n in range(10):
            packets += [voice(n), voice(n, ssrc=0x7777)]
        self.feed(packets)
        self.assertEqual(self.channel.counters.ssrc_changes, 0)

    def test_codec_switch(self) -> None:
        """The peer may switch between negotiated codecs (PCMU to PCMA)."""
        self.feed([voice(n) for n in range(3)] + [voice(n, pt=8) for n in range(3, 6)])
        self.assertEqual(self.channel.counters.accepted, 5)

    def test_dtmf_in(self) -> None:
        """Telephone events give their digit once."""
        self.feed([voice(n) for n in range(2)])
        digits: List[Optional[str]] = []
        for n, duration in enumerate((160, 320, 480)):
            payload = TelephoneEvent(3, duration == 480, 10, duration).to_bytes()
            data = build_rtp(101, 102 + n, 8320, 0x1234, payload)
            digits.append(self.channel.receive_rtp(data, PEER, 0.04 + 0.02 * n))
        self.assertEqual(digits, ["3", None, None])
        bad = build_rtp(101, 105, 9000, 0x1234, b"\x01")
        self.assertIsNone(self.channel.receive_rtp(bad, PEER, 0.1))
        self.assertEqual((self.channel.counters.dtmf, self.channel.counters.malformed), (1, 1))

    def test_not_receiving(self) -> None:
        """When we do not receive (sendonly, inactive), media is ignored."""
        channel = make_channel(direction="sendonly")
        channel.receive_rtp(voice(0), PEER, 0.0)
        channel.receive_rtp(voice(1), PEER, 0.02)
        self.assertEqual(channel.counters.ignored, 2)
        self.assertIsNone(channel.pop())

    def test_reconfigure_unlatches(self) -> None:
        """A new SDP address unlatches; the same address keeps the latch."""
        self.feed([voice(0)], source=NAT)
        self.channel.configure(remote=PEER, codecs={0: PCMU}, send_pt=0)
        self.assertEqual(self.channel.rtp.latched, NAT)
        other = ("192.0.2.8", 7000)
        self.channel.configure(remote=other, codecs={0: PCMU}, send_pt=0)
        self.assertIsNone(self.channel.rtp.latched)
        self.assertEqual(self.channel.rtp.destination, other)
        self.assertEqual(self.channel.rtcp.destination, ("192.0.2.8", 7001))
        self.assertRaises(ValueError, self.channel.configure, remote=other, codecs={}, send_pt=0)
        self.assertRaises(
            ValueError,
            self.channel.configure,
            remote=other,
            codecs={0: PCMU},
            send_pt=0,
            direction="sideways",
        )


class FuzzTests(SynchronousTestCase):
    """
    Whatever arrives, nothing raises and every datagram is counted once.
    """

    @settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        st.lists(
            st.tuples(
                st.booleans(),
                st.one_of(
                    st.binary(max_size=80),
                    st.builds(
                        lambda pt, seq, ssrc, body: build_rtp(pt, seq, 0, ssrc, body),
                        st.sampled_from([0, 8, 101, 13, 127]),
                        st.integers(0, 65535),
                        st.sampled_from([0x1234, 0x1235, 7]),
                        st.binary(max_size=200),
                    ),
                ),
                st.sampled_from([PEER, PEER_RTCP, NAT, STRANGER]),
            ),
            max_size=30,
        )
    )
    def test_anything(self, datagrams: List[Tuple[bool, bytes, Tuple[str, int]]]) -> None:
        """Random datagrams on both ports: no exception, counters add up."""
        channel = make_channel()
        for n, (rtcp, data, source) in enumerate(datagrams):
            if rtcp:
                channel.receive_rtcp(data, source, 0.02 * n)
            else:
                channel.receive_rtp(data, source, 0.02 * n)
            if n % 7 == 0:
                channel.pop()
        c = channel.counters
        self.assertEqual(c.received + c.rtcp_received, c.accepted + c.rtcp_accepted + c.dropped)


class SendTests(SynchronousTestCase):
    """
    What goes out.
    """

    def test_rtp_stream(self) -> None:
        """Packets carry our SSRC, consecutive numbers, +160 timestamps, a first marker."""
        channel = make_channel()
        payload = PCMU.silence * NARROW
        sent = [channel.packets(payload)[0] for _ in range(3)]
        packets = [parse_rtp(d.data) for d in sent]
        self.assertEqual({p.ssrc for p in packets}, {channel.ssrc})
        self.assertEqual([p.marker for p in packets], [True, False, False])
        self.assertEqual([(p.sequence - packets[0].sequence) % 65536 for p in packets], [0, 1, 2])
        self.assertEqual(
            [(p.timestamp - packets[0].timestamp) % 2**32 for p in packets], [0, 160, 320]
        )
        self.assertEqual({d.address for d in sent}, {PEER})
        self.assertEqual({d.key for d in sent}, {"alice"})
        self.assertEqual(channel.counters.sent, 3)

    def test_sends_to_latched(self) -> None:
        """Once latched, media goes where the peer's packets come from (symmetric RTP)."""
        channel = make_channel()
        channel.receive_rtp(voice(0), NAT, 0.0)
        [datagram] = channel.packets(b"\xff" * 160)
        self.assertEqual(datagram.address, NAT)

    def test_directions(self) -> None:
        """Nothing is sent to a recvonly or inactive stream, but the clock still runs."""
        for direction in ("recvonly", "inactive"):
            channel = make_channel(direction=direction)
            self.assertEqual(channel.packets(b"\xff" * 160), [])
        unconfigured = Channel("x", now=0, cname="c")
        self.assertEqual(unconfigured.packets(b"\xff"), [])

    def test_dtmf_out(self) -> None:
        """Queued digits replace the audio with telephone events, then audio resumes."""
        channel = make_channel()
        channel.send_dtmf("9", duration=320)
        ticks = [channel.packets(b"\xff" * 160) for _ in range(3)]
        events = [parse_rtp(d.data) for d in ticks[0] + ticks[1]]
        self.assertEqual({p.payload_type for p in events}, {101})
        self.assertEqual({parse_event(p.payload).event for p in events}, {9})
        self.assertEqual(parse_rtp(ticks[2][0].data).payload_type, 0)
        plain = Channel("x", now=0, cname="c")
        plain.configure(remote=PEER, codecs={0: PCMU}, send_pt=0)
        self.assertRaises(DTMFError, plain.send_dtmf, "1")

    def test_skip(self) -> None:
        """Missed ticks advance the RTP clock."""
        channel = make_channel()
        first = parse_rtp(channel.packets(b"\xff")[0].data)
        channel.skip(10)
        second = parse_rtp(channel.packets(b"\xff")[0].data)
        self.assertEqual((second.timestamp - first.timestamp) % 2**32, 160 * 11)

    def test_gain(self) -> None:
        """Gains are set in dB and kept linear."""
        channel = make_channel()
        channel.set_gain(-6.0206, None)
        self.assertAlmostEqual(channel.gain_in, 0.5, places=4)
        self.assertEqual(channel.gain_out, 1.0)
        channel.set_gain(None, 20)
        self.assertAlmostEqual(channel.gain_out, 10.0)


class RTCPTests(SynchronousTestCase):
    """
    Reports both ways.
    """

    def test_report_interval(self) -> None:
        """A report is due 2.5-7.5 s after the start, then again within that spread."""
        channel = make_channel()
        times = [t / 10 for t in range(200)]
        due = [t for t in times if channel.rtcp_report(t)]
        self.assertTrue(0.5 * RTCP_INTERVAL <= due[0] <= 1.5 * RTCP_INTERVAL)
        gaps = [b - a for a, b in zip(due, due[1:])]
        self.assertTrue(
            all(0.5 * RTCP_INTERVAL - 0.1 <= g <= 1.5 * RTCP_INTERVAL + 0.1 for g in gaps)
        )

    def test_sender_report(self) -> None:
        """After sending, the report is an SR with a block about the peer and our CNAME."""
        channel = make_channel()
        for n in range(10):
            channel.receive_rtp(voice(n), PEER, 0.02 * n)
            channel.packets(b"\xff" * 160)
        peer_sr = build_report(0x1234, SenderInfo(*ntp_time(0.1), 8000, 5, 800))
        channel.receive_rtcp(peer_sr + build_sdes(0x1234, "peer"), PEER_RTCP, 0.1)
        [datagram] = channel.rtcp_report(10.0)
        self.assertEqual((datagram.rtcp, datagram.address), (True, PEER_RTCP))
        report, sdes = parse_rtcp(datagram.data)
        assert isinstance(report, Report) and isinstance(sdes, SourceDescription)
        assert report.sender is not None
        self.assertEqual((report.sender.packets, report.sender.octets), (10, 1600))
        [block] = report.blocks
        self.assertEqual(
            (block.ssrc, block.cumulative_lost, block.highest_sequence), (0x1234, 0, 109)
        )
        self.assertEqual(block.last_sr, compact_ntp(0.1))
        self.assertAlmostEqual(block.delay_since_last_sr / 65536, 9.9, places=3)
        self.assertEqual(sdes.cnames, [(channel.ssrc, "test@example")])

    def test_receiver_report(self) -> None:
        """Without sending, the report is an RR."""
        channel = make_channel(direction="recvonly")
        [datagram] = channel.rtcp_report(10.0)
        report = parse_rtcp(datagram.data)[0]
        assert isinstance(report, Report)
        self.assertIsNone(report.sender)

    def test_reads_reports(self) -> None:
        """The peer's report on our stream gives loss, jitter and the round trip."""
        channel = make_channel()
        block = ReceptionReport(channel.ssrc, 64, 12, 5000, 33)
        other = ReceptionReport(0x42, 255, 99, 1, 1)
        sent_at = compact_ntp(100.0)
        rr = build_report(0x1234, None, [(other, 0, 0), (block, sent_at, 65536 // 2)])
        channel.receive_rtcp(rr, PEER_RTCP, 101.0)
        self.assertEqual(channel.remote_loss, (64, 12, 33))
        assert channel.round_trip is not None
        self.assertAlmostEqual(channel.round_trip, 0.5, places=3)

    def test_rtcp_bad_input(self) -> None:
        """Malformed RTCP and RTCP from strangers are counted and ignored."""
        channel = make_channel()
        channel.receive_rtcp(b"\x80\xc9\x00", PEER_RTCP, 0.0)
        channel.receive_rtcp(build_report(1, None), STRANGER, 0.0)
        c = channel.counters
        self.assertEqual((c.rtcp_received, c.rtcp_malformed, c.strangers), (2, 1, 1))
        self.assertIsNone(channel.last_heard)

    def test_bye(self) -> None:
        """An RTCP BYE for the followed source is noted; ours goes out on close."""
        channel = make_channel()
        for n in range(3):
            channel.receive_rtp(voice(n), PEER, 0.02 * n)
        channel.receive_rtcp(build_report(0x1234, None) + build_bye(0x1234), PEER_RTCP, 1.0)
        self.assertTrue(channel.bye_received)
        channel.packets(b"\xff" * 160)
        [goodbye] = channel.goodbye(2.0, "conference over")
        self.assertEqual(parse_rtcp(goodbye.data)[-1].reason, "conference over")  # type: ignore[union-attr]
        self.assertEqual(Channel("x", now=0, cname="c").goodbye(1.0), [])

    def test_no_bye_before_sending(self) -> None:
        """No RTCP BYE from a channel that never sent RTP or RTCP (RFC 3550 6.3.7)."""
        channel = make_channel()
        channel.receive_rtp(voice(0), PEER, 0.0)
        self.assertEqual(channel.goodbye(0.5), [])

    def test_bye_after_report_only(self) -> None:
        """A channel that only sent an RTCP report says BYE: the peer knows its SSRC."""
        channel = make_channel()
        self.assertEqual(len(channel.rtcp_report(RTCP_INTERVAL * 2)), 1)
        [goodbye] = channel.goodbye(RTCP_INTERVAL * 2 + 1)
        self.assertIsInstance(parse_rtcp(goodbye.data)[-1], Goodbye)


class HeardTests(SynchronousTestCase):
    """
    C{last_heard}, the activity the service reports: accepted packets only.
    """

    def test_accepted_packets_only(self) -> None:
        """RTP and RTCP from the peer set last_heard; strangers and malformed packets do not."""
        channel = make_channel(now=0.0)
        channel.receive_rtp(voice(0), STRANGER, 10.0)
        channel.receive_rtp(b"\x80\x00", PEER, 11.0)
        self.assertIsNone(channel.last_heard)
        channel.receive_rtp(voice(0), PEER, 20.0)
        self.assertEqual(channel.last_heard, 20.0)
        channel.receive_rtcp(build_report(0x1234, None), PEER_RTCP, 30.0)
        self.assertEqual(channel.last_heard, 30.0)
        channel.receive_rtp(voice(1), STRANGER, 40.0)
        channel.receive_rtcp(build_report(0x1234, None), STRANGER, 40.0)
        self.assertEqual(channel.last_heard, 30.0)


class ToneTests(SynchronousTestCase):
    """
    A tone through a channel keeps its samples.
    """

    def test_tone_through(self) -> None:
        """Every frame of a PCMA tone comes out of the buffer as decoded, in order."""
        channel = make_channel()
        samples = tone(440, 0.2)
        packets = rtp_stream(PCMA, 8, samples)
        out = []
        for n, data in enumerate(packets):
            channel.receive_rtp(data, PEER, 0.02 * n)
            frame = channel.pop()
            if frame is not None:
                out.append(frame)
        joined = np.concatenate(out)
        # The first packet only puts the source on probation (RFC 3550 A.1).
        expected = decode_stream(PCMA, [parse_rtp(p).payload for p in packets[1:]])
        self.assertTrue(np.array_equal(joined, expected[: len(joined)]))
        self.assertGreaterEqual(len(joined), len(expected) - 2 * FRAME_SAMPLES)


class CountersTests(SynchronousTestCase):
    """
    Counters summed for totals over channels.
    """

    def test_add(self) -> None:
        """Adding counters adds every field, the drop total with them."""
        total = Counters(received=2, strangers=1)
        total.add(Counters(received=3, accepted=2, strangers=1, sent=4))
        self.assertEqual((total.received, total.accepted, total.sent), (5, 2, 4))
        self.assertEqual(total.dropped, 2)


SUITE = "AES_CM_128_HMAC_SHA1_80"
OUR_KEY, PHONE_KEY = b"o" * 30, b"p" * 30


class SRTPChannelTests(SynchronousTestCase):
    """
    A channel whose stream is SRTP: what it sends is protected, what it
    takes must authenticate, and only an authenticated packet latches.
    """

    def setUp(self) -> None:
        self.channel = Channel("alice", now=0.0, cname="test@example", rng=random.Random(1))
        self.channel.configure(
            remote=PEER, codecs={0: PCMU}, send_pt=0, srtp=SRTPKeys(SUITE, OUR_KEY, PHONE_KEY)
        )
        self.phone = SRTPContext(SRTPKeys(SUITE, PHONE_KEY, OUR_KEY))

    def test_receive(self) -> None:
        """The phone's SRTP reaches the jitter buffer; RTCP is read after SRTCP."""
        for n in range(3):
            self.channel.receive_rtp(self.phone.protect(voice(n)), PEER, 0.02 * n)
        # The first is the new source's probation (RFC 3550 A.1).
        self.assertEqual(self.channel.counters.accepted, 2)
        self.assertEqual(self.channel.rtp.latched, PEER)
        sealed = self.phone.protect_rtcp(build_report(0x1234, None))
        self.channel.receive_rtcp(sealed, PEER_RTCP, 0.1)
        self.assertEqual(self.channel.counters.rtcp_accepted, 1)

    def test_send(self) -> None:
        """RTP, RTCP reports and the BYE leave protected with our key."""
        [datagram] = self.channel.packets(b"\xff" * 160)
        self.assertEqual(len(datagram.data), 12 + 160 + 10)
        self.assertEqual(parse_rtp(self.phone.unprotect(datagram.data)).payload, b"\xff" * 160)
        [report] = self.channel.rtcp_report(RTCP_INTERVAL * 2)
        self.assertIsInstance(parse_rtcp(self.phone.unprotect_rtcp(report.data))[0], Report)
        [bye] = self.channel.goodbye(RTCP_INTERVAL * 3)
        self.assertEqual(len(parse_rtcp(self.phone.unprotect_rtcp(bye.data))), 3)

    def test_forgeries_do_not_latch(self) -> None:
        """Plain or forged packets from the SDP's host are dropped and latch nothing."""
        forger = SRTPContext(SRTPKeys(SUITE, b"f" * 30, OUR_KEY))
        for n, data in enumerate([voice(1), forger.protect(voice(2)), b"\x80" * 40]):
            self.channel.receive_rtp(data, NAT, 0.02 * n)
        c = self.channel.counters
        self.assertEqual((c.unauthenticated, c.accepted, self.channel.last_heard), (3, 0, None))
        self.assertIsNone(self.channel.rtp.latched)
        self.channel.receive_rtp(self.phone.protect(voice(3)), PEER, 0.1)
        self.assertEqual((c.unconfirmed, self.channel.rtp.latched), (1, PEER))
        self.channel.receive_rtcp(forger.protect_rtcp(build_report(1, None)), PEER_RTCP, 0.2)
        self.assertEqual((c.unauthenticated, c.rtcp_accepted, c.rtcp_received), (4, 0, 1))

    def test_replay(self) -> None:
        """A replayed packet is counted as replayed and not played twice."""
        self.channel.receive_rtp(self.phone.protect(voice(0)), PEER, 0.0)
        data = self.phone.protect(voice(1))
        self.channel.receive_rtp(data, PEER, 0.02)
        self.channel.receive_rtp(data, PEER, 0.04)
        c = self.channel.counters
        self.assertEqual((c.accepted, c.replayed, c.dropped), (1, 1, 2))

    def test_malformed(self) -> None:
        """Datagrams libsrtp cannot read are malformed, RTP and RTCP."""
        self.channel.receive_rtp(b"\x80\x00", PEER, 0.0)
        self.channel.receive_rtcp(b"\x80\x00", PEER_RTCP, 0.0)
        c = self.channel.counters
        self.assertEqual((c.malformed, c.rtcp_malformed, c.dropped), (1, 1, 2))

    def test_reconfigure(self) -> None:
        """The same keys keep the context (and its state); none makes the stream plain."""
        context = self.channel.srtp
        data = self.phone.protect(voice(1))
        self.channel.receive_rtp(data, PEER, 0.0)
        self.channel.configure(
            remote=PEER, codecs={0: PCMU}, send_pt=0, srtp=SRTPKeys(SUITE, OUR_KEY, PHONE_KEY)
        )
        self.assertIs(self.channel.srtp, context)
        self.channel.receive_rtp(data, PEER, 0.02)
        self.assertEqual(self.channel.counters.replayed, 1)
        self.channel.configure(remote=PEER, codecs={0: PCMU}, send_pt=0)
        self.assertIsNone(self.channel.srtp)
        [datagram] = self.channel.packets(b"\xff" * 160)
        self.assertEqual(parse_rtp(datagram.data).payload, b"\xff" * 160)

    @given(st.binary(max_size=300))
    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    def test_fuzz(self, data: bytes) -> None:
        """Any datagram on an SRTP channel is dropped and counted, never raised."""
        channel = Channel("x", now=0.0, cname="c", rng=random.Random(2))
        channel.configure(
            remote=PEER, codecs={0: PCMU}, send_pt=0, srtp=SRTPKeys(SUITE, OUR_KEY, PHONE_KEY)
        )
        channel.receive_rtp(data, PEER, 0.0)
        channel.receive_rtcp(data, PEER_RTCP, 0.0)
        c = channel.counters
        self.assertEqual(c.dropped, 2)


class WidebandChannelTests(SynchronousTestCase):
    """
    Opus (48 kHz RTP clock) and G.722 (8 kHz clock, 16 kHz audio) through a channel.
    """

    def setUp(self) -> None:
        for codec in (OPUS, G722):
            reason = unavailable(codec)
            if reason is not None:
                raise SkipTest(reason)
        self.channel = Channel("carol", now=0.0, cname="test@example", rng=random.Random(2))
        self.channel.configure(
            remote=PEER,
            codecs={111: OPUS, 9: G722, 0: PCMU},
            send_pt=111,
            event_pt=101,
            fmtp={111: "useinbandfec=1"},
        )

    def play(self, packets: List[bytes]) -> np.ndarray:  # type: ignore[type-arg]
        """Deliver one packet per 20 ms tick; what the buffer hands out, joined."""
        out = []
        for n, data in enumerate(packets):
            self.channel.receive_rtp(data, PEER, 0.02 * n)
            frame = self.channel.pop()
            out.append(np.zeros(FRAME_SAMPLES, np.int16) if frame is None else frame)
        return np.concatenate(out)

    def test_opus_in(self) -> None:
        """Opus at 48 kHz timestamps (wrapping 2**32) plays in order at 16 kHz, the tone kept."""
        start = 2**32 - 10 * 960
        packets = rtp_stream(OPUS, 111, tone(1000, 1.0, -10), timestamp=start)
        heard = self.play(packets)[INTERNAL_RATE // 5 :]
        self.assertLess(abs(peak_frequency(heard) - 1000), 10)
        jitter = self.channel.jitter
        self.assertEqual((jitter.resyncs, jitter.concealed, jitter.late), (0, 0, 0))
        self.assertEqual(self.channel.counters.accepted, 49)  # the first is the probation

    def test_g722_in(self) -> None:
        """G.722's 160 timestamp units a packet carry 320 samples: no gap, no overlap."""
        heard = self.play(rtp_stream(G722, 9, tone(700, 1.0, -10)))[INTERNAL_RATE // 5 :]
        self.assertLess(abs(peak_frequency(heard) - 700), 10)
        self.assertEqual((self.channel.jitter.concealed, self.channel.jitter.resyncs), (0, 0))

    def test_malformed_dropped(self) -> None:
        """Bad Opus and empty G.722 payloads are counted as malformed, never raised."""
        good = rtp_stream(OPUS, 111, tone(1000, 0.2, -10))
        for n, data in enumerate(good[:3]):
            self.channel.receive_rtp(data, PEER, 0.02 * n)
        bad = [
            build_rtp(111, 1003, 5000 + 3 * 960, 0x1234, b"\xff"),
            build_rtp(111, 1004, 5000 + 4 * 960, 0x1234, b""),
            build_rtp(9, 1005, 5000 + 5 * 960, 0x1234, b""),
        ]
        for data in bad:
            self.assertIsNone(self.channel.receive_rtp(data, PEER, 0.1))
        counters = self.channel.counters
        self.assertEqual((counters.malformed, counters.accepted), (3, 2))
        self.channel.receive_rtp(good[6], PEER, 0.12)
        self.assertEqual(counters.accepted, 3)

    def test_opus_out(self) -> None:
        """We stamp Opus in its 48 kHz clock: 960 a frame, skips too."""
        encoder = self.channel.encoder
        assert encoder is not None
        payload = encoder.encode(np.zeros(FRAME_SAMPLES, np.int16))
        first = parse_rtp(self.channel.packets(payload)[0].data)
        second = parse_rtp(self.channel.packets(payload)[0].data)
        self.channel.skip(3)
        third = parse_rtp(self.channel.packets(payload)[0].data)
        self.assertEqual(first.payload_type, 111)
        self.assertEqual((second.timestamp - first.timestamp) % 2**32, 960)
        self.assertEqual((third.timestamp - second.timestamp) % 2**32, 4 * 960)
        self.assertEqual(self.channel.clock, 48000)

    def test_encoder_kept_or_remade(self) -> None:
        """A refresh with the same codec and fmtp keeps the encoder; a change remakes it."""
        encoder = self.channel.encoder
        codecs = {111: OPUS, 9: G722, 0: PCMU}
        self.channel.configure(
            remote=PEER, codecs=codecs, send_pt=111, fmtp={111: "useinbandfec=1"}
        )
        self.assertIs(self.channel.encoder, encoder)
        self.channel.configure(remote=PEER, codecs=codecs, send_pt=111, fmtp={111: "cbr=1"})
        self.assertIsNot(self.channel.encoder, encoder)
        self.channel.configure(remote=PEER, codecs=codecs, send_pt=0)
        assert self.channel.encoder is not None
        self.assertIs(self.channel.encoder.codec, PCMU)
        self.assertEqual(self.channel.clock, 8000)

    def test_dtmf_on_opus_clock(self) -> None:
        """telephone-event goes out on the audio's timestamps: durations in 48 kHz units."""
        self.channel.send_dtmf("1", duration=4800)
        ticks = [self.channel.packets(b"x") for _ in range(5)]
        events = [parse_event(parse_rtp(d.data).payload) for tick in ticks for d in tick]
        self.assertEqual([e.duration for e in events[:5]], [960, 1920, 2880, 3840, 4800])
        self.assertTrue(events[-1].end)
