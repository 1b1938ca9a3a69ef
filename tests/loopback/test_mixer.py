# -*- test-case-name: tests.loopback.test_mixer -*-
"""
Tests for L{conference.app.mixer}: the mixer service on a fake reactor
(a clock with UDP ports), and over loopback on the real one.
"""

from __future__ import annotations

import gc
import platform
import random
import weakref
from typing import Any, List, Tuple

import numpy as np
from twisted.internet import reactor as global_reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import deferLater
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase

from conference.app.media import NullMediaService, NullMediaSession
from conference.app.mixer import MixerMediaService, media_service, mixer_codecs
from conference.interfaces import IMediaSession
from conference.media.codecs import FRAME_SAMPLES, PCMA, PCMU
from conference.media.dtmf import DTMFError, TelephoneEvent, parse_event
from conference.media.rtcp import Goodbye, build_report, parse_rtcp
from conference.media.rtp import build_rtp, parse_rtp
from conference.media.wideband import G722, OPUS, OPUS_FMTP, unavailable
from conference.offeranswer import PCMU as PCMU_SDP
from conference.offeranswer import TELEPHONE_EVENT, Codec
from conference.sdp import fmtp_of, parse_sdp
from conference.sip.errors import RemoteProtocolError
from tests.mediacontract import CONFERENCE, FakeMediaReactor, MediaServiceContract
from tests.unit.media.signals import band_share, decode_stream, rtp_stream, tone
from tests.unit.test_sdp import crlf

ADDRESS = "198.51.100.1"
TICK = 0.02


def offer(port: int, pt: int = 0, host: str = "192.0.2.10") -> bytes:
    """A phone's offer: one codec and telephone-event 101."""
    name = {0: "PCMU", 8: "PCMA"}[pt]
    return crlf(
        f"""
        v=0
        o=phone 1 1 IN IP4 {host}
        s=-
        c=IN IP4 {host}
        t=0 0
        m=audio {port} RTP/AVP {pt} 101
        a=rtpmap:{pt} {name}/8000
        a=rtpmap:101 telephone-event/8000
        """
    )


class MixerContractTests(MediaServiceContract, SynchronousTestCase):
    """
    The IMediaService contract, for the mixer.
    """

    def setUp(self) -> None:
        self.reactor = FakeMediaReactor()
        self.service = self.make_service()

    def make_service(self, **kwargs: Any) -> MixerMediaService:
        kwargs.setdefault("address", ADDRESS)
        return MixerMediaService(self.reactor, rng=random.Random(3), **kwargs)


class MixerServiceTests(SynchronousTestCase):
    """
    The service's clock, ports and hooks on a fake reactor.
    """

    def setUp(self) -> None:
        self.reactor = FakeMediaReactor()
        self.digits: List[Tuple[IMediaSession, str]] = []
        self.service = MixerMediaService(
            self.reactor,
            address=ADDRESS,
            on_dtmf=lambda s, digit: self.digits.append((s, digit)),
            rng=random.Random(5),
        )

    def join(
        self, port: int, pt: int = 0, who: str = "", conference: str = CONFERENCE
    ) -> NullMediaSession:
        d = self.service.answer(conference, who or f"sip:{port}@example.com", offer(port, pt))
        session = self.successResultOf(d)
        assert isinstance(session, NullMediaSession)
        return session

    def advance(self, seconds: float) -> None:
        """Run the clock tick by tick (a hair past the last, against rounding)."""
        for _ in range(round(seconds / TICK)):
            self.reactor.advance(TICK)
        self.reactor.advance(1e-6)

    def test_clock_per_conference(self) -> None:
        """The first participant starts a 20 ms clock, the last one's close stops it."""
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        a = self.join(6000)
        b = self.join(6002)
        other = self.join(6004, conference="sip:other@example.com")
        self.assertEqual(len(self.reactor.getDelayedCalls()), 2)
        self.service.close(a)
        self.assertEqual(len(self.reactor.getDelayedCalls()), 2)
        self.service.close(b)
        self.service.close(other)
        self.assertEqual(self.reactor.getDelayedCalls(), [])
        self.assertEqual(self.service.conferences, {})

    def test_sends_every_tick(self) -> None:
        """Each tick sends one RTP packet to each participant's SDP address, from its port."""
        a = self.join(6000, pt=0)
        self.join(6002, pt=8)
        self.advance(0.2)
        to_a = self.reactor.sent_to(("192.0.2.10", 6000))
        to_b = self.reactor.sent_to(("192.0.2.10", 6002))
        self.assertEqual((len(to_a), len(to_b)), (10, 10))
        self.assertEqual({parse_rtp(d).payload_type for d in to_b}, {8})
        self.assertEqual({port for port, _, to in self.reactor.sent if to[1] == 6000}, {a.port})

    def test_n_minus_one(self) -> None:
        """Two phones with different codecs hear each other's tone, not their own."""
        a = self.join(6000, pt=0)
        b = self.join(6002, pt=8)
        streams = {
            a.port: (rtp_stream(PCMU, 0, tone(500, 1.0), ssrc=1), ("192.0.2.10", 6000)),
            b.port: (rtp_stream(PCMA, 8, tone(900, 1.0), ssrc=2), ("192.0.2.10", 6002)),
        }
        for n in range(50):
            for port, (packets, source) in streams.items():
                self.reactor.deliver(port, packets[n], source)
            self.reactor.advance(TICK)
        heard_a = decode_stream(
            PCMU, [parse_rtp(d).payload for d in self.reactor.sent_to(("192.0.2.10", 6000))]
        )
        heard_b = decode_stream(
            PCMA, [parse_rtp(d).payload for d in self.reactor.sent_to(("192.0.2.10", 6002))]
        )
        self.assertGreater(band_share(heard_a[1600:], 900), 0.95)
        self.assertGreater(band_share(heard_b[1600:], 500), 0.95)

    def test_warn(self) -> None:
        """warn plays the 440 Hz warning to that participant only, over silence."""
        a = self.join(6000, pt=0)
        self.join(6002, pt=0)
        self.service.warn(a, 1000.0)
        self.advance(0.6)
        heard = {
            port: decode_stream(
                PCMU, [parse_rtp(d).payload for d in self.reactor.sent_to(("192.0.2.10", port))]
            )
            for port in (6000, 6002)
        }
        self.assertGreater(band_share(heard[6000][:3200], 440), 0.95)
        self.assertEqual(np.abs(heard[6002]).max(), 0)

    def test_stranger_not_mixed(self) -> None:
        """Media from an address other than the peer's host is dropped, never heard."""
        a = self.join(6000)
        b = self.join(6002)
        for packet in rtp_stream(PCMU, 0, tone(700, 0.5)):
            self.reactor.deliver(a.port, packet, ("203.0.113.9", 6000))
            self.reactor.advance(TICK)
        heard = decode_stream(
            PCMU, [parse_rtp(d).payload for d in self.reactor.sent_to(("192.0.2.10", 6002))]
        )
        self.assertTrue(np.all(np.abs(heard.astype(int)) <= 8))
        self.assertEqual(self.service.counters(a).strangers, 25)
        self.assertEqual(self.service.counters(b).received, 0)

    def test_flood_does_not_stall_others(self) -> None:
        """Garbage, oversized and random-SSRC floods on one participant's ports are
        dropped and counted; the other participant still gets a packet every tick."""
        a = self.join(6000)
        self.join(6002)
        rng = random.Random(9)
        source = ("192.0.2.10", 6000)
        for _ in range(10):
            for n in range(100):
                kind = n % 3
                if kind == 0:
                    data = rng.randbytes(rng.randrange(100))
                elif kind == 1:
                    data = b"\x80" + bytes(3000)
                else:
                    data = build_rtp(0, rng.randrange(65536), 0, rng.getrandbits(32), b"\xff" * 160)
                self.reactor.deliver(a.port, data, source)
                self.reactor.deliver(a.port + 1, data, ("192.0.2.10", 6001))
            self.reactor.advance(TICK)
        self.reactor.advance(1e-6)
        self.assertEqual(len(self.reactor.sent_to(("192.0.2.10", 6002))), 10)
        c = self.service.counters(a)
        self.assertEqual((c.received, c.rtcp_received, c.accepted), (1000, 1000, 0))
        self.assertEqual(c.received + c.rtcp_received, c.rtcp_accepted + c.dropped)
        self.assertGreater(c.flood, 0)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_activity_is_accepted_media(self) -> None:
        """Only what the channel accepts refreshes last_activity: a stranger's packets do not."""
        quiet = self.join(6000)
        talking = self.join(6002)
        self.assertIsNone(quiet.rtp.on_activity)
        packets = rtp_stream(PCMU, 0, tone(500, 1.0), ssrc=9)
        for n in range(int(0.5 / TICK)):
            self.reactor.deliver(talking.port, packets[n], ("192.0.2.10", 6002))
            self.reactor.deliver(quiet.port, packets[n], ("203.0.113.9", 6000))
            self.reactor.deliver(quiet.port + 1, build_report(9, None), ("203.0.113.9", 6001))
            self.reactor.advance(TICK)
        self.assertEqual(quiet.last_activity, 0)
        self.assertAlmostEqual(talking.last_activity, 0.5 - TICK)
        self.assertGreater(self.service.counters(quiet).strangers, 0)

    def test_dtmf_hook(self) -> None:
        """An RFC 4733 event reaches on_dtmf once."""
        a = self.join(6000)
        source = ("192.0.2.10", 6000)
        self.reactor.deliver(a.port, build_rtp(0, 1, 0, 7, b"\xff" * 160), source)
        for n in range(4):
            payload = TelephoneEvent(11, n == 3, 10, 160 * (n + 1)).to_bytes()
            self.reactor.deliver(a.port, build_rtp(101, 2 + n, 160, 7, payload), source)
        self.assertEqual(self.digits, [(a, "#")])

    def test_controls(self) -> None:
        """mute, set_gain and send_dtmf act on the session's channel; closed sessions are 481."""
        a = self.join(6000)
        self.service.mute(a, incoming=True)
        self.service.set_gain(a, outgoing_db=6)
        channel = self.service.channel(a)
        self.assertTrue(channel.mute_in)
        self.assertFalse(channel.mute_out)
        self.assertAlmostEqual(channel.gain_out, 1.995, places=3)
        self.service.send_dtmf(a, "5")
        self.reactor.advance(TICK)
        sent = self.reactor.sent_to(("192.0.2.10", 6000))
        self.assertEqual(parse_event(parse_rtp(sent[-1]).payload).event, 5)
        self.assertRaises(DTMFError, self.service.send_dtmf, a, "z")
        self.service.close(a)
        e = self.assertRaises(RemoteProtocolError, self.service.mute, a, outgoing=True)
        self.assertEqual(e.status, 481)

    def test_rtcp_bye_on_close(self) -> None:
        """Closing a session that sent media sends an RTCP BYE to the peer's RTCP port."""
        a = self.join(6000)
        ssrc = self.service.channel(a).ssrc
        self.reactor.advance(TICK)
        self.service.close(a)
        [bye] = self.reactor.sent_to(("192.0.2.10", 6001))
        goodbye = parse_rtcp(bye)[-1]
        assert isinstance(goodbye, Goodbye)
        self.assertEqual(goodbye.ssrcs, (ssrc,))

    def test_no_rtcp_bye_before_media(self) -> None:
        """A session closed before its first frame says no RTCP BYE (RFC 3550 6.3.7)."""
        a = self.join(6000)
        self.service.close(a)
        self.assertEqual(self.reactor.sent_to(("192.0.2.10", 6001)), [])

    def test_one_debug_event_per_close(self) -> None:
        """Closing a mixed session logs one debug event, with the channel's counters."""
        events = EventLoggingObserver()
        globalLogPublisher.addObserver(events)
        self.addCleanup(globalLogPublisher.removeObserver, events)
        a = self.join(6000)
        self.service.close(a)
        closed = [e for e in events if e.get("participant") == a.participant]  # type: ignore[attr-defined]
        self.assertEqual([e["log_format"] for e in closed], ["Media of {participant}: {counters}"])

    def test_clock_is_injected(self) -> None:
        """The conference's frame clock runs on the injected reactor, not the global one."""
        self.join(6000)
        [conference] = self.service.conferences.values()
        assert conference.loop is not None
        self.assertIs(conference.loop.clock, self.reactor)
        self.reactor.advance(TICK)
        self.assertTrue(self.reactor.sent_to(("192.0.2.10", 6000)))

    def test_last_leave_frees_the_clock(self) -> None:
        """The last leave frees the stopped clock and its conference without a cycle."""
        if gc.isenabled():  # no collection may free a cycle meanwhile
            gc.disable()
            self.addCleanup(gc.enable)
        a = self.join(6000)
        [conference] = self.service.conferences.values()
        loop = conference.loop
        assert loop is not None
        gone = weakref.ref(conference)
        del conference
        self.service.close(a)
        self.assertFalse(loop.running)
        # The stopped clock no longer reaches the conference (nor itself).
        self.assertEqual((loop.a, loop.kw), ((), {}))
        self.assertNotIn(gone(), gc.get_referents(loop.f))
        self.assertEqual(self.service.conferences, {})
        del loop
        if platform.python_implementation() == "CPython":
            # Freed by reference counting alone: no collection needed.
            self.assertIsNone(gone())

    def test_offer_then_answer(self) -> None:
        """An offerless join sends nothing until the ACK's answer tells where to."""
        session = self.successResultOf(self.service.offer(CONFERENCE, "sip:x@example.com"))
        self.advance(0.1)
        self.assertEqual(self.reactor.sent, [])
        answer = offer(7000, pt=8).replace(b"RTP/AVP 8 101", b"RTP/AVP 8")
        self.service.complete(session, answer)
        self.advance(0.1)
        self.assertEqual(len(self.reactor.sent_to(("192.0.2.10", 7000))), 5)

    def test_hold_stops_sending(self) -> None:
        """A re-offer putting the stream on hold (sendonly) stops our media, then resumes."""
        a = self.join(6000)
        hold = offer(6000).replace(b"telephone-event/8000", b"telephone-event/8000\r\na=sendonly")
        self.successResultOf(self.service.update(a, hold))
        self.advance(0.1)
        self.assertEqual(self.reactor.sent_to(("192.0.2.10", 6000)), [])
        self.successResultOf(self.service.update(a, offer(6000)))
        self.advance(0.1)
        self.assertEqual(len(self.reactor.sent_to(("192.0.2.10", 6000))), 5)

    def test_errors_never_stop_the_clock(self) -> None:
        """A failing write is logged once and the mix goes on; a failing tick is logged."""
        a = self.join(6000)
        self.reactor.write_error = OSError("network unreachable")
        self.advance(0.1)
        self.reactor.write_error = None
        self.advance(0.1)
        self.assertEqual(len(self.reactor.sent_to(("192.0.2.10", 6000))), 5)
        conference = self.service.conferences[CONFERENCE]

        def broken(now: float) -> List[Any]:
            raise RuntimeError("boom")

        conference.mixer.tick = broken  # type: ignore[method-assign]
        self.advance(0.04)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 2)
        self.assertIsNotNone(conference.loop)
        assert conference.loop is not None
        self.assertTrue(conference.loop.running)
        self.service.close(a)

    def test_stall_catch_up(self) -> None:
        """After a long stall at most MAX_CATCH_UP frames go out at once; the rest are skipped."""
        self.join(6000)
        self.reactor.advance(1.0)
        self.assertEqual(len(self.reactor.sent_to(("192.0.2.10", 6000))), 5)
        self.assertEqual(self.service.conferences[CONFERENCE].skipped, 45)

    def test_settings(self) -> None:
        """Bad settings are refused; media_service picks the implementation."""
        self.assertRaises(
            ValueError, MixerMediaService, self.reactor, codecs=[Codec("G729", 8000, 18)]
        )
        self.assertIsInstance(media_service("builtin", self.reactor), MixerMediaService)
        null = media_service("null", self.reactor)
        self.assertIsInstance(null, NullMediaService)
        self.assertNotIsInstance(null, MixerMediaService)
        self.assertRaises(ValueError, media_service, "janus", self.reactor)


class Phone(DatagramProtocol):
    """A loopback RTP peer that records what it receives."""

    def __init__(self) -> None:
        self.received: List[bytes] = []

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        self.received.append(datagram)


class LoopbackTests(TestCase):
    """
    The mixer on the real reactor over loopback.
    """

    def test_two_phones(self) -> Deferred[None]:
        """Two phones on loopback hear each other's tone through the mixer."""
        service = MixerMediaService(address="127.0.0.1", port_range=(41000, 41999))
        self.addCleanup(service.close_all)
        phones: List[Phone] = []
        ports: List[Any] = []
        sessions: List[NullMediaSession] = []
        for _ in range(2):
            phone = Phone()
            port = global_reactor.listenUDP(0, phone, interface="127.0.0.1")  # type: ignore[attr-defined]
            self.addCleanup(port.stopListening)
            phones.append(phone)
            ports.append(port)
            number = port.getHost().port
            answered = service.answer(
                CONFERENCE, f"sip:{number}@example.com", offer(number, host="127.0.0.1")
            )
            session = self.successResultOf(answered)
            assert isinstance(session, NullMediaSession)
            sessions.append(session)
        streams = [rtp_stream(PCMU, 0, tone(f, 1.0), ssrc=n + 1) for n, f in enumerate((600, 1000))]

        def send(n: int) -> None:
            for port, session, stream in zip(ports, sessions, streams):
                port.write(stream[n], ("127.0.0.1", session.port))

        for n in range(30):
            global_reactor.callLater(n * TICK, send, n)  # type: ignore[attr-defined]
        done: Deferred[None] = deferLater(global_reactor, 30 * TICK + 0.2, lambda: None)  # type: ignore[arg-type]

        def check(_: None) -> None:
            for phone, other in zip(phones, (1000, 600)):
                rtp = [parse_rtp(p) for p in phone.received if not 192 <= p[1] <= 223]
                heard = decode_stream(PCMU, [p.payload for p in rtp])
                self.assertGreater(len(heard), 20 * FRAME_SAMPLES)
                self.assertGreater(band_share(heard[1600:], other), 0.9)

        done.addCallback(check)
        return done


def opus_offer(port: int, fmtp: str, host: str = "192.0.2.10") -> bytes:
    """A phone's offer of Opus (dynamic 111, with C{fmtp}), then PCMU, and telephone-event."""
    return crlf(
        f"""
        v=0
        o=phone 1 1 IN IP4 {host}
        s=-
        c=IN IP4 {host}
        t=0 0
        m=audio {port} RTP/AVP 111 0 101
        a=rtpmap:111 opus/48000/2
        a=fmtp:111 {fmtp}
        a=rtpmap:101 telephone-event/8000
        """
    )


class WidebandServiceTests(SynchronousTestCase):
    """
    The mixer service with Opus and G.722: negotiated, coded, and refused
    where the binding is missing.
    """

    def setUp(self) -> None:
        self.reactor = FakeMediaReactor()

    def service(self, **kwargs: Any) -> MixerMediaService:
        return MixerMediaService(self.reactor, address=ADDRESS, rng=random.Random(5), **kwargs)

    def test_without_binding(self) -> None:
        """Without PyAV's codecs Opus is not answered: PCMU is chosen, an Opus-only offer is 488."""
        service = self.service(codecs=mixer_codecs((PCMU, PCMA)))
        answered = self.successResultOf(
            service.answer(CONFERENCE, "a", opus_offer(6000, "useinbandfec=1"))
        )
        audio = parse_sdp(answered.local_sdp).media[0]
        self.assertEqual(audio.formats, ["0", "101"])
        only_opus = opus_offer(6002, "").replace(b"111 0 101", b"111")
        failure = self.failureResultOf(service.answer(CONFERENCE, "b", only_opus))
        self.assertEqual(failure.value.status, 488)

    def test_default_codecs(self) -> None:
        """The mixer offers what PyAV codes, best first, then G.711 and telephone-event."""
        speaks = [c for c in (OPUS, G722) if unavailable(c) is None]
        names = [c.name for c in mixer_codecs() if not c.is_event]
        self.assertEqual(names, [c.name for c in speaks] + ["PCMU", "PCMA"])
        self.assertEqual(mixer_codecs((PCMU,)), (PCMU_SDP, TELEPHONE_EVENT))

    def test_opus_participant(self) -> None:
        """An Opus and a PCMU phone hear each other; the Opus stream honours cbr and bitrate."""
        if unavailable(OPUS) is not None:
            raise SkipTest(str(unavailable(OPUS)))
        service = self.service()
        fmtp = "cbr=1;maxaveragebitrate=16000"
        a = self.successResultOf(service.answer(CONFERENCE, "a", opus_offer(6000, fmtp)))
        b = self.successResultOf(service.answer(CONFERENCE, "b", offer(6002, 0)))
        audio = parse_sdp(a.local_sdp).media[0]
        self.assertEqual(audio.formats[0], "111")
        self.assertEqual(fmtp_of(audio, "111"), OPUS_FMTP)
        assert isinstance(a, NullMediaSession) and isinstance(b, NullMediaSession)
        streams = [
            (a.port, rtp_stream(OPUS, 111, tone(500, 1.0), ssrc=1), ("192.0.2.10", 6000)),
            (b.port, rtp_stream(PCMU, 0, tone(900, 1.0), ssrc=2), ("192.0.2.10", 6002)),
        ]
        for n in range(50):
            for port, packets, source in streams:
                self.reactor.deliver(port, packets[n], source)
            self.reactor.advance(TICK)
        to_a = [parse_rtp(d) for d in self.reactor.sent_to(("192.0.2.10", 6000))]
        to_b = [parse_rtp(d) for d in self.reactor.sent_to(("192.0.2.10", 6002))]
        self.assertEqual({p.payload_type for p in to_a}, {111})
        self.assertEqual(
            {(q.timestamp - p.timestamp) % 2**32 for p, q in zip(to_a, to_a[1:])}, {960}
        )
        self.assertEqual({len(p.payload) for p in to_a}, {16000 // 8 // 50})
        heard_a = decode_stream(OPUS, [p.payload for p in to_a])
        heard_b = decode_stream(PCMU, [p.payload for p in to_b])
        self.assertGreater(band_share(heard_a[3200:], 900), 0.9)
        self.assertGreater(band_share(heard_b[3200:], 500), 0.9)
        service.close_all()
