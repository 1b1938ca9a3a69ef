# -*- test-case-name: tests.unit.media.test_mixer -*-
"""
Tests for L{conference.media.mixer}: N-1 mixes, clipping, mute and gain,
and whole conferences of channels on a simulated 20 ms clock.
"""

from __future__ import annotations

import random
from typing import Dict, List, Optional, Tuple

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from conference.media.channel import Channel
from conference.media.codecs import INTERNAL_RATE, PCMA, PCMU, AudioCodec, Decoder
from conference.media.mixer import Mixer, mix_minus
from conference.media.rtp import parse_rtp
from conference.media.tone import (
    ALONE_FREQUENCY,
    ALONE_LEVEL_DBFS,
    WARNING_LEVEL_DBFS,
    warning_tone,
)
from conference.media.wideband import G722, OPUS, unavailable
from tests.unit.media.signals import band_share, rms_db, rtp_stream, tone

TICK = 0.02


def ones(n: int) -> np.ndarray:  # type: ignore[type-arg]
    return np.ones(n, dtype=np.float32)


class MixMinusTests(SynchronousTestCase):
    """
    The vectorised mix.
    """

    @settings(deadline=None)
    @given(hnp.arrays(np.int16, st.tuples(st.integers(1, 6), st.just(8))))
    def test_everyone_but_yourself(self, frames: np.ndarray) -> None:  # type: ignore[type-arg]
        """Each row hears the saturated sum of the other rows, never its own."""
        n = frames.shape[0]
        heard = mix_minus(frames.astype(np.float32), ones(n), ones(n))
        wide = frames.astype(np.int64)
        expected = np.clip(wide.sum(axis=0)[None, :] - wide, -32768, 32767)
        self.assertTrue(np.array_equal(heard, expected))
        self.assertEqual(heard.dtype, np.int16)

    def test_single_talker(self) -> None:
        """A lone talker hears exact silence; the others hear them exactly."""
        frames = np.zeros((3, 4), dtype=np.float32)
        frames[1] = [100, -200, 300, -400]
        heard = mix_minus(frames, ones(3), ones(3))
        self.assertEqual(heard[1].tolist(), [0, 0, 0, 0])
        self.assertEqual(heard[0].tolist(), [100, -200, 300, -400])
        self.assertEqual(heard[2].tolist(), [100, -200, 300, -400])

    def test_clipping(self) -> None:
        """Loud talkers saturate at the int16 limits instead of wrapping around."""
        frames = np.array([[30000, -30000], [30000, -30000], [0, 0]], dtype=np.float32)
        heard = mix_minus(frames, ones(3), ones(3))
        self.assertEqual(heard[2].tolist(), [32767, -32768])

    def test_gains(self) -> None:
        """Incoming gains scale a talker for everyone; outgoing gains scale what one hears."""
        frames = np.array([[1000], [2000], [0]], dtype=np.float32)
        gains_in = np.array([0.5, 0.0, 1.0], dtype=np.float32)
        gains_out = np.array([1.0, 1.0, 2.0], dtype=np.float32)
        heard = mix_minus(frames, gains_in, gains_out)
        self.assertEqual(heard[:, 0].tolist(), [0, 500, 1000])


class Conference:
    """
    Channels in a mixer, each fed an RTP tone as if from its own peer,
    with a tick every 20 ms; records what each peer receives.
    """

    def __init__(self, codecs: List[Tuple[AudioCodec, int]], frequencies: List[float]) -> None:
        self.mixer = Mixer()
        self.peers: Dict[str, Tuple[str, int]] = {}
        self.streams: Dict[str, List[bytes]] = {}
        self.decoders: Dict[str, Decoder] = {}
        rng = random.Random(7)
        for n, ((codec, pt), frequency) in enumerate(zip(codecs, frequencies)):
            key = f"p{n}"
            peer = ("192.0.2.1", 6000 + 2 * n)
            channel = Channel(key, now=0.0, cname="mixer@test", rng=rng)
            channel.configure(remote=peer, codecs={pt: codec}, send_pt=pt)
            self.mixer.add(channel)
            self.peers[key] = peer
            self.decoders[key] = codec.decoder()
            self.streams[key] = rtp_stream(codec, pt, tone(frequency, 2.0, -12), ssrc=0x100 + n)
        self.received: Dict[str, List[np.ndarray]] = {key: [] for key in self.peers}  # type: ignore[type-arg]

    def run(self, ticks: int) -> None:
        """Deliver one packet per peer and tick, for C{ticks} ticks."""
        for k in range(ticks):
            now = k * TICK
            for key, stream in self.streams.items():
                if k < len(stream):
                    self.mixer.channels[key].receive_rtp(stream[k], self.peers[key], now)
            for datagram in self.mixer.tick(now + 0.01):
                if datagram.rtcp:
                    continue
                packet = parse_rtp(datagram.data)
                key = next(k for k, addr in self.peers.items() if addr == datagram.address)
                self.received[key].append(self.decoders[key].decode(packet.payload))

    def heard(self, key: str) -> np.ndarray:  # type: ignore[type-arg]
        """What C{key}'s peer received (decoded to the internal rate), after the first 100 ms."""
        return np.concatenate(self.received[key])[INTERNAL_RATE // 10 :]


class MixerTests(SynchronousTestCase):
    """
    Whole conferences: who hears whom.
    """

    def test_three_tones(self) -> None:
        """Three talkers: each hears the two other tones and not its own."""
        freqs = [440.0, 700.0, 1100.0]
        conference = Conference([(PCMU, 0)] * 3, freqs)
        conference.run(60)
        for n, own in enumerate(freqs):
            heard = conference.heard(f"p{n}")
            self.assertLess(band_share(heard, own), 0.01, f"p{n} hears itself")
            for other in freqs:
                if other != own:
                    self.assertGreater(band_share(heard, other), 0.3, f"p{n} misses {other}")

    def test_warning_tone(self) -> None:
        """The warning tone is mixed into one participant's audio at -12 dBFS, nobody else's."""
        conference = Conference([(PCMU, 0)] * 2, [1000.0, 1500.0])
        conference.mixer.channels["p0"].play(warning_tone(INTERNAL_RATE))
        conference.run(30)
        warned = np.concatenate(conference.received["p0"]).astype(np.float64)
        other = np.concatenate(conference.received["p1"])
        # The first 2 ms are the decoder's resampling delay.
        beep = warned[32 : 32 + INTERNAL_RATE // 5]
        self.assertGreater(band_share(beep, 440.0), 0.3)
        self.assertGreater(band_share(warned, 1500.0), 0.3, "the warning masks the mix")
        self.assertLess(band_share(other, 440.0), 0.01)
        # 200 ms of 440 Hz is 88 whole cycles: bin 88 of the beep's FFT.
        amplitude = 2 * abs(np.fft.rfft(beep)[88]) / len(beep)
        level = 20 * np.log10(amplitude / 32767)
        self.assertLess(abs(level - WARNING_LEVEL_DBFS), 0.5, f"{level:.2f} dBFS")
        gap = warned[INTERNAL_RATE // 5 + 160 : INTERNAL_RATE * 35 // 100 - 160]
        self.assertLess(band_share(gap, 440.0), 0.05)
        self.assertIsNone(conference.mixer.channels["p0"].overlay())

    def test_alone_cue(self) -> None:
        """A lone participant hears the soft 660 Hz cue after 1 s, then every 5 s, else silence."""
        conference = Conference([(PCMU, 0)], [1000.0])
        conference.run(320)
        heard = np.concatenate(conference.received["p0"]).astype(np.float64)
        second = INTERNAL_RATE
        cue = heard[second + second // 50 : second + second // 50 + second * 15 // 100]
        self.assertGreater(band_share(cue, ALONE_FREQUENCY), 0.9)
        self.assertLess(rms_db(cue), ALONE_LEVEL_DBFS)
        self.assertLess(float(np.abs(heard[2 * second : 6 * second]).max()), 10)
        again = heard[6 * second : 6 * second + second // 4]
        self.assertGreater(band_share(again, ALONE_FREQUENCY), 0.9)

    def test_no_cue_in_company(self) -> None:
        """With two participants, or the cue turned off, nobody hears it."""
        conference = Conference([(PCMU, 0)] * 2, [1000.0, 1500.0])
        conference.run(100)
        lone = Conference([(PCMU, 0)], [1000.0])
        lone.mixer.alone_every = None
        lone.run(100)
        for heard in (conference.heard("p0"), conference.heard("p1"), lone.heard("p0")):
            self.assertLess(band_share(heard, ALONE_FREQUENCY), 0.01)

    def test_warning_clipping_safe(self) -> None:
        """A tone over a full-scale mix saturates instead of wrapping around."""
        frames = np.full((2, 4), 30000, dtype=np.float32)
        overlay = np.full((2, 4), 10000, dtype=np.float32)
        heard = mix_minus(frames, ones(2), ones(2), overlay)
        self.assertEqual(heard.tolist(), [[32767] * 4] * 2)

    def test_mixed_codecs(self) -> None:
        """A PCMU and a PCMA participant hear each other at the level sent."""
        conference = Conference([(PCMU, 0), (PCMA, 8)], [500.0, 900.0])
        conference.run(50)
        a, b = conference.heard("p0"), conference.heard("p1")
        self.assertGreater(band_share(a, 900), 0.95)
        self.assertGreater(band_share(b, 500), 0.95)
        expected = rms_db(tone(500, 1.0, -12))
        self.assertLess(abs(rms_db(b) - expected), 0.5)

    def test_every_codec(self) -> None:
        """Opus, G.722, PCMU and PCMA participants each hear the three others, not themselves."""
        for codec in (OPUS, G722):
            reason = unavailable(codec)
            if reason is not None:
                raise SkipTest(reason)
        codecs: List[Tuple[AudioCodec, int]] = [(OPUS, 111), (G722, 9), (PCMU, 0), (PCMA, 8)]
        freqs = [440.0, 700.0, 1100.0, 1500.0]
        conference = Conference(codecs, freqs)
        conference.run(50)
        for n, own in enumerate(freqs):
            heard = conference.heard(f"p{n}")
            name = codecs[n][0].name
            self.assertLess(band_share(heard, own), 0.01, f"{name} hears itself")
            for other in freqs:
                if other != own:
                    self.assertGreater(band_share(heard, other), 0.2, f"{name} misses {other}")
        # The sum of three -12 dBFS tones, whatever codecs carried them.
        expected = rms_db(tone(700, 1.0, -12)) + 10 * np.log10(3)
        for n in range(4):
            self.assertLess(abs(rms_db(conference.heard(f"p{n}")) - expected), 1.0)

    def test_mute_and_gain(self) -> None:
        """A muted talker is heard by nobody; a deafened one hears silence; gain scales."""
        conference = Conference([(PCMU, 0)] * 3, [440.0, 700.0, 1100.0])
        channels = conference.mixer.channels
        channels["p0"].mute_in = True
        channels["p1"].mute_out = True
        channels["p2"].set_gain(-6.0206, None)
        conference.run(50)
        self.assertLess(band_share(conference.heard("p2"), 440), 0.01)
        self.assertLess(rms_db(conference.heard("p1")), -60)
        heard = conference.heard("p0")
        self.assertGreater(band_share(heard, 1100), 0.1)
        level_700 = rms_db(tone(700, 1.0, -12))
        # p0 hears p1 at full level and p2 at half (-6 dB): the mix is louder than p1 alone.
        self.assertGreater(rms_db(heard), level_700)

    def test_empty_and_leaving(self) -> None:
        """An empty mixer sends nothing; a removed channel is no longer sent to."""
        mixer = Mixer()
        self.assertEqual(mixer.tick(0.0), [])
        conference = Conference([(PCMU, 0)] * 2, [440.0, 700.0])
        self.assertIsNotNone(conference.mixer.remove("p1"))
        self.assertIsNone(conference.mixer.remove("p1"))
        datagrams = conference.mixer.tick(0.0)
        self.assertEqual({d.key for d in datagrams}, {"p0"})
        self.assertEqual(len(conference.mixer), 1)

    def test_skip(self) -> None:
        """After a skip, every stream's RTP clock has advanced by the skipped frames."""
        conference = Conference([(PCMU, 0)] * 2, [440.0, 700.0])
        before = [parse_rtp(d.data).timestamp for d in conference.mixer.tick(0.0)]
        conference.mixer.skip(5)
        after = [parse_rtp(d.data).timestamp for d in conference.mixer.tick(0.2)]
        self.assertEqual([(b - a) % 2**32 for a, b in zip(before, after)], [6 * 160] * 2)


class _EveryTickMixed(Mixer):
    """The mixer as it was: silent ticks encode a matrix of zeros like any other."""

    def _encode_silence(self, channels: List[Channel]) -> List[Optional[bytes]]:
        return self._encode(channels, np.zeros((len(channels), self.frame), dtype=np.int16))


class SilentTickTests(SynchronousTestCase):
    """
    Ticks where nobody is heard and no tone plays skip the mix, and
    encoders at rest send their silence as is.
    """

    def codecs(self) -> List[Tuple[AudioCodec, int]]:
        codecs: List[Tuple[AudioCodec, int]] = [(PCMU, 0), (PCMA, 8), (PCMU, 0)]
        codecs += [(codec, pt) for codec, pt in ((G722, 9), (OPUS, 111)) if not unavailable(codec)]
        return codecs

    def sent(self, conference: Conference, ticks: int, tone_at: int) -> List[bytes]:
        """Every datagram the mixer sends in C{ticks} ticks (talk stops at 100)."""
        out: List[bytes] = []
        for k in range(ticks):
            if k == tone_at:
                conference.mixer.channels["p2"].play(warning_tone(INTERNAL_RATE))
            for key, stream in conference.streams.items():
                if k < len(stream) and key != "p2":
                    channel = conference.mixer.channels[key]
                    channel.receive_rtp(stream[k], conference.peers[key], k * TICK)
            out.extend(d.data for d in conference.mixer.tick(k * TICK + 0.01))
        return out

    def test_same_bytes_as_mixing_every_tick(self) -> None:
        """Talk, then silence, then a tone over silence: the same packets as the full mix."""
        codecs = self.codecs()
        freqs = [440.0, 700.0, 1100.0, 1500.0, 1900.0][: len(codecs)]
        fast, full = Conference(codecs, freqs), Conference(codecs, freqs)
        full.mixer.__class__ = _EveryTickMixed
        ours, theirs = self.sent(fast, 200, 150), self.sent(full, 200, 150)
        self.assertEqual(len(ours), len(theirs))
        self.assertEqual(ours, theirs)

    def test_quiet_conference_sends_silence(self) -> None:
        """Nobody talking: every G.711 listener gets its codec's silence, 160 bytes a frame."""
        conference = Conference([(PCMU, 0), (PCMA, 8)], [440.0, 700.0])
        sent = [d for d in conference.mixer.tick(0.0) if not d.rtcp]
        payloads = {d.key: parse_rtp(d.data).payload for d in sent}
        self.assertEqual(payloads, {"p0": b"\xff" * 160, "p1": b"\xd5" * 160})
