# -*- test-case-name: tests.unit.media.test_codecs -*-
"""
Tests for L{conference.media.codecs}: the G.711 tables, and tone round
trips through every codec (G.711 here, and G.722 and Opus where PyAV is
installed) at the mixer's internal rate.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from conference.media.codecs import FRAME_SAMPLES, G711, INTERNAL_RATE, PCMA, PCMU, AudioCodec
from conference.media.wideband import G722, OPUS, unavailable
from tests.unit.media.signals import (
    band_share,
    decode_stream,
    encode_stream,
    peak_frequency,
    rms_db,
    tone,
)

ALL_CODES = bytes(range(256))
ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)
NARROW = 8000
# G.711 alone, at 8 kHz: frequency within one FFT bin of 1 s (1 Hz), level
# within 0.2 dB, signal to quantisation noise at least 30 dB at -10 and
# -30 dBFS (G.711's segments keep it near 38 dB over that range).
FREQUENCY_TOLERANCE = 1.0
LEVEL_TOLERANCE_DB = 0.2
MIN_SNR_DB = 30.0
# Every codec as the mixer uses it (16 kHz in and out, resampling
# included): frequency within 10 Hz, level within 0.5 dB, and 95 % of the
# energy still within 30 Hz of the tone (no added distortion products).
# Measured after the first 200 ms, once the codec has settled.
CODEC_FREQUENCY_TOLERANCE = 10.0
CODEC_LEVEL_TOLERANCE_DB = 0.5
CODEC_MIN_PURITY = 0.95
SETTLE = INTERNAL_RATE // 5


class TableTests(SynchronousTestCase):
    """
    The lookup tables against G.711's defining values and properties.
    """

    def test_known_values(self) -> None:
        """Codes decode to the values of the G.711 tables (zeros, extremes)."""
        self.assertEqual(PCMU.decode(b"\xff\x7f\x00\x80").tolist(), [0, 0, -32124, 32124])
        self.assertEqual(PCMA.decode(b"\xd5\x55\x2a\xaa").tolist(), [8, -8, -32256, 32256])
        self.assertEqual(
            PCMU.encode(np.array([0, 32767, -32768], np.int16)).tolist(), [255, 128, 0]
        )
        self.assertEqual(
            PCMA.encode(np.array([0, 32767, -32768], np.int16)).tolist(), [213, 170, 42]
        )

    def test_codes_round_trip(self) -> None:
        """Every code survives decode then encode (but mu-law's negative zero)."""
        self.assertEqual(PCMA.encode(PCMA.decode(ALL_CODES)).tobytes(), ALL_CODES)
        back = PCMU.encode(PCMU.decode(ALL_CODES)).tobytes()
        self.assertEqual(back[:127] + back[128:], ALL_CODES[:127] + ALL_CODES[128:])
        self.assertEqual(back[127], 0xFF)

    def test_monotonic(self) -> None:
        """Quantising keeps the order of samples."""
        for codec in (PCMU, PCMA):
            levels = codec.decode(codec.encode(ALL_SAMPLES).tobytes()).astype(np.int32)
            self.assertTrue(np.all(np.diff(levels) >= 0), codec)

    def test_quantisation_error(self) -> None:
        """The error is within half a segment step: under 1/32 of the value plus a floor."""
        for codec, floor in ((PCMU, 12), (PCMA, 8)):
            decoded = codec.decode(codec.encode(ALL_SAMPLES).tobytes()).astype(np.int32)
            x = ALL_SAMPLES.astype(np.int32)
            unclipped = np.abs(x) < 32000
            error = np.abs(decoded - x)[unclipped]
            self.assertTrue(np.all(error <= np.abs(x[unclipped]) / 32 + floor), codec)

    def test_silence(self) -> None:
        """The silence byte decodes to (nearly) zero."""
        self.assertEqual((PCMU.silence, PCMA.silence), (b"\xff", b"\xd5"))
        self.assertLessEqual(abs(int(PCMA.decode(PCMA.silence)[0])), 8)

    @settings(deadline=None)
    @given(st.binary(max_size=400))
    def test_decode_any_payload(self, payload: bytes) -> None:
        """Any payload decodes to as many int16 samples, for both codecs."""
        for codec in (PCMU, PCMA):
            samples = codec.decode(payload)
            self.assertEqual((samples.dtype, len(samples)), (np.dtype(np.int16), len(payload)))

    def test_encode_keeps_shape(self) -> None:
        """Encoding a block of frames gives one payload row per frame."""
        block = np.zeros((3, FRAME_SAMPLES), dtype=np.int16)
        self.assertEqual(PCMU.encode(block).shape, (3, FRAME_SAMPLES))

    def test_names(self) -> None:
        """Each codec shows its rtpmap name and clock, and its frame's RTP step."""
        self.assertEqual(repr(PCMU), "<AudioCodec PCMU/8000>")
        self.assertEqual([c.frame_step() for c in (PCMU, G722, OPUS)], [160, 160, 960])
        self.assertEqual(
            (G722.clock, G722.rate, OPUS.clock, OPUS.rate), (8000, 16000, 48000, 16000)
        )


class ToneTests(SynchronousTestCase):
    """
    A 1 kHz tone through G.711's tables keeps its frequency and level.
    """

    def round_trip(self, codec: G711, level_db: float) -> None:
        original = tone(1000, 1.0, level_db, rate=NARROW)
        decoded = codec.decode(codec.encode(original).tobytes())
        self.assertLessEqual(abs(peak_frequency(decoded, NARROW) - 1000), FREQUENCY_TOLERANCE)
        self.assertLessEqual(abs(rms_db(decoded) - rms_db(original)), LEVEL_TOLERANCE_DB)
        noise = decoded.astype(np.float64) - original
        snr = rms_db(original) - rms_db(noise)
        self.assertGreater(snr, MIN_SNR_DB, f"{codec} at {level_db} dBFS")

    def test_pcmu(self) -> None:
        """PCMU keeps a 1 kHz tone at -10 and -30 dBFS."""
        self.round_trip(PCMU, -10)
        self.round_trip(PCMU, -30)

    def test_pcma(self) -> None:
        """PCMA keeps a 1 kHz tone at -10 and -30 dBFS."""
        self.round_trip(PCMA, -10)
        self.round_trip(PCMA, -30)


class CodecRoundTripTests(SynchronousTestCase):
    """
    A 1 kHz tone at the internal rate through each codec's encoder and
    decoder (20 ms frames, as the mixer sends them) keeps its frequency
    and level.
    """

    def round_trip(self, codec: AudioCodec) -> None:
        reason = unavailable(codec) if codec in (G722, OPUS) else None
        if reason is not None:
            raise SkipTest(reason)
        for level_db in (-10, -30):
            original = tone(1000, 1.0, level_db)
            payloads = encode_stream(codec, original)
            self.assertEqual(len(payloads), INTERNAL_RATE // FRAME_SAMPLES)
            decoded = decode_stream(codec, payloads)
            self.assertEqual(len(decoded), len(original))
            settled = decoded[SETTLE:]
            where = f"{codec.name} at {level_db} dBFS"
            frequency = peak_frequency(settled)
            self.assertLessEqual(abs(frequency - 1000), CODEC_FREQUENCY_TOLERANCE, where)
            level = rms_db(settled) - rms_db(original[SETTLE:])
            self.assertLessEqual(abs(level), CODEC_LEVEL_TOLERANCE_DB, where)
            self.assertGreater(band_share(settled, 1000), CODEC_MIN_PURITY, where)

    def test_pcmu(self) -> None:
        """PCMU, resampled 16-8-16 kHz, keeps a 1 kHz tone at -10 and -30 dBFS."""
        self.round_trip(PCMU)

    def test_pcma(self) -> None:
        """PCMA, resampled 16-8-16 kHz, keeps a 1 kHz tone at -10 and -30 dBFS."""
        self.round_trip(PCMA)

    def test_g722(self) -> None:
        """G.722 keeps a 1 kHz tone at -10 and -30 dBFS; 160 bytes per 20 ms."""
        self.round_trip(G722)
        if unavailable(G722) is None:
            payloads = encode_stream(G722, tone(1000, 0.1))
            self.assertEqual({len(p) for p in payloads}, {160})

    def test_opus(self) -> None:
        """Opus (wideband, 20 ms) keeps a 1 kHz tone at -10 and -30 dBFS."""
        self.round_trip(OPUS)


class AtRestTests(SynchronousTestCase):
    """
    An encoder's silence sent as is while encoding silence would change
    nothing.
    """

    def test_g711_at_rest(self) -> None:
        """A fresh G.711 encoder's silence is what encoding a zero frame gives."""
        for codec in (PCMU, PCMA):
            encoder = codec.encoder()
            rest = encoder.at_rest()
            self.assertEqual(rest, codec.silence * 160)
            self.assertEqual(encoder.encode(np.zeros(FRAME_SAMPLES, dtype=np.int16)), rest)

    def test_g711_after_sound(self) -> None:
        """After sound the resampler's history must drain first; one silent frame does it."""
        encoder = PCMU.encoder()
        encoder.encode(tone(440.0, FRAME_SAMPLES / INTERNAL_RATE, -12))
        self.assertIsNone(encoder.at_rest())
        zeros = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        drained = encoder.encode(zeros)
        self.assertNotEqual(drained, PCMU.silence * 160)
        self.assertEqual(encoder.at_rest(), PCMU.silence * 160)
        self.assertEqual(encoder.encode(zeros), PCMU.silence * 160)

    def test_stateful_codecs_run(self) -> None:
        """G.722 and Opus keep state that silence changes: never at rest."""
        for codec in (G722, OPUS):
            if unavailable(codec):
                continue
            self.assertIsNone(codec.encoder().at_rest())
