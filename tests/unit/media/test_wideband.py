# -*- test-case-name: tests.unit.media.test_wideband -*-
"""
Tests for L{conference.media.wideband}: Opus's C{a=fmtp} parameters and
what they make of the encoder, malformed G.722 and Opus payloads, and the
refusal when PyAV is missing.  (Tone round trips are in test_codecs.)
"""

from __future__ import annotations

import platform
from typing import Any

import numpy as np
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from conference.media import wideband
from conference.media.codecs import FRAME_SAMPLES, AudioCodec, CodecError
from conference.media.wideband import (
    G722,
    OPUS,
    OPUS_BITRATE,
    OpusParameters,
    parse_fmtp,
    unavailable,
)
from tests.unit.media.signals import encode_stream, rms_db, tone


def require(codec: AudioCodec) -> None:
    """Skip unless C{codec} works here."""
    reason = unavailable(codec)
    if reason is not None:
        raise SkipTest(reason)


class FmtpTests(SynchronousTestCase):
    """
    RFC 7587's receiver preferences, read leniently.
    """

    def test_parse(self) -> None:
        """Pairs split on semicolons, names folded to lower case; junk ignored."""
        self.assertEqual(
            parse_fmtp("useinbandfec=1; MaxPlaybackRate=16000;;junk; =3"),
            {"useinbandfec": "1", "maxplaybackrate": "16000"},
        )
        self.assertEqual(parse_fmtp(None), {})

    def test_defaults(self) -> None:
        """No fmtp: fullband, no bit-rate cap, mono, VBR, no FEC, no DTX."""
        self.assertEqual(OpusParameters.from_fmtp(None), OpusParameters())
        self.assertEqual(OpusParameters().encoder_settings()[0], OPUS_BITRATE)

    def test_values(self) -> None:
        """Every parameter is read; unreadable numbers keep their defaults."""
        params = OpusParameters.from_fmtp(
            "maxplaybackrate=8000;maxaveragebitrate=12000;stereo=1;cbr=1;useinbandfec=1;usedtx=1"
        )
        self.assertEqual(params, OpusParameters(8000, 12000, True, True, True, True))
        bad = OpusParameters.from_fmtp("maxplaybackrate=fast;maxaveragebitrate=-5;stereo=yes")
        self.assertEqual(bad, OpusParameters())
        self.assertEqual(OpusParameters.from_fmtp("maxplaybackrate=100").maxplaybackrate, 48000)

    def test_encoder_settings(self) -> None:
        """Narrowband playback sets the cut-off, the bit rate is capped, FEC and CBR follow."""
        bitrate, options = OpusParameters.from_fmtp(
            "maxplaybackrate=8000;maxaveragebitrate=12000;cbr=1;useinbandfec=1"
        ).encoder_settings()
        self.assertEqual(bitrate, 12000)
        self.assertEqual(
            options,
            {
                "application": "voip",
                "frame_duration": "20",
                "cutoff": "4000",
                "vbr": "off",
                "fec": "1",
                "packet_loss": "10",
            },
        )
        self.assertEqual(OpusParameters(12000).encoder_settings()[1]["cutoff"], "6000")
        self.assertNotIn("cutoff", OpusParameters(16000).encoder_settings()[1])
        self.assertEqual(OpusParameters(maxaveragebitrate=10).encoder_settings()[0], 6000)


class OpusTests(SynchronousTestCase):
    """
    The Opus encoder honours the peer's fmtp; bad payloads are refused.
    """

    def setUp(self) -> None:
        require(OPUS)

    def mean_size(self, fmtp: str) -> float:
        payloads = encode_stream(OPUS, tone(1000, 1.0, -10), fmtp)
        return float(np.mean([len(p) for p in payloads[5:]]))

    def test_bitrate_honoured(self) -> None:
        """maxaveragebitrate=12000 halves the packets; cbr=1 makes them all one size."""
        self.assertLess(self.mean_size("maxaveragebitrate=12000"), self.mean_size(""))
        payloads = encode_stream(OPUS, tone(1000, 0.4, -10), "cbr=1;maxaveragebitrate=16000")
        self.assertEqual({len(p) for p in payloads}, {16000 // 8 // 50})

    def test_malformed(self) -> None:
        """Empty and invalid packets raise CodecError; the decoder goes on decoding."""
        decoder = OPUS.decoder()
        good = encode_stream(OPUS, tone(1000, 0.1, -10))
        decoder.decode(good[0])
        for bad in (b"", b"\xff", b"\x03", b"\x03\xff\xff\xff"):
            self.assertRaises(CodecError, decoder.decode, bad)
        self.assertEqual(len(decoder.decode(good[1])), FRAME_SAMPLES)

    def test_stereo_packet(self) -> None:
        """A stereo sender's packet decodes to mono samples at the internal rate."""
        import av

        context: Any = av.CodecContext.create("libopus", "w")
        context.sample_rate, context.layout, context.format = 48000, "stereo", "s16"
        context.open()
        samples = np.tile(tone(1000, 0.02, -10, rate=48000), (2, 1)).T.reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples), "s16", "stereo")
        frame.sample_rate, frame.pts = 48000, 0
        [packet] = context.encode(frame)
        self.assertEqual(len(OPUS.decoder().decode(bytes(packet))), FRAME_SAMPLES)

    def test_reset(self) -> None:
        """A reset decoder (a new source) decodes afresh."""
        decoder = OPUS.decoder()
        payloads = encode_stream(OPUS, tone(1000, 0.1, -10))
        decoder.decode(payloads[0])
        decoder.reset()
        self.assertEqual(len(decoder.decode(payloads[1])), FRAME_SAMPLES)


class G722Tests(SynchronousTestCase):
    """
    G.722 payloads: two samples a byte; an empty one is refused.
    """

    def setUp(self) -> None:
        require(G722)

    def test_any_bytes(self) -> None:
        """Every byte is a G.722 code: any non-empty payload decodes to twice its length."""
        decoder = G722.decoder()
        self.assertEqual(len(decoder.decode(bytes(range(256)))), 512)
        self.assertRaises(CodecError, decoder.decode, b"")
        self.assertEqual(len(decoder.decode(b"\x00" * 160)), FRAME_SAMPLES)

    def test_silence(self) -> None:
        """Silence in, (near) silence out."""
        payloads = encode_stream(G722, np.zeros(FRAME_SAMPLES * 5, np.int16))
        decoder = G722.decoder()
        out = np.concatenate([decoder.decode(p) for p in payloads])
        self.assertLess(rms_db(out), -70)


class UnavailableTests(SynchronousTestCase):
    """
    Without PyAV the codecs say why they cannot be used.
    """

    def test_without_pyav(self) -> None:
        """No PyAV: both codecs are unavailable, with the reason."""
        self.patch(wideband, "HAVE_AV", False)
        self.patch(wideband, "AV_REFUSED", None)
        for codec in (G722, OPUS):
            self.assertEqual(unavailable(codec), "PyAV (the av package) is not installed")

    def test_refused_on_pypy(self) -> None:
        """Where PyAV is refused (PyPy), that reason is given."""
        refused = platform.python_implementation() == "PyPy"
        self.assertEqual(wideband.AV_REFUSED is not None, refused)
        self.patch(wideband, "AV_REFUSED", "not here")
        for codec in (G722, OPUS):
            self.assertEqual(unavailable(codec), "not here")
