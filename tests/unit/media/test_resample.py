# -*- test-case-name: tests.unit.media.test_resample -*-
"""
Tests for L{conference.media.resample}: the filters' response, block
joins without clicks, and the batch decimation the mixer uses.
"""

from __future__ import annotations

import numpy as np
from twisted.trial.unittest import SynchronousTestCase

from conference.media.resample import (
    Resampler,
    decimate_rows,
    decimation_history,
    lowpass,
    to_int16,
)
from tests.unit.media.signals import band_share, peak_frequency, rms_db, tone


def through(resampler: Resampler, samples: np.ndarray, block: int) -> np.ndarray:  # type: ignore[type-arg]
    """C{samples} through C{resampler} in blocks of C{block}."""
    parts = [resampler.process(samples[i : i + block]) for i in range(0, len(samples), block)]
    return np.concatenate(parts)


class FilterTests(SynchronousTestCase):
    """
    The windowed-sinc low-pass.
    """

    def test_response(self) -> None:
        """Unit gain at DC, -6 dB at the cut-off, 60 dB down well past it."""
        h = lowpass(64, 0.2)
        spectrum = np.abs(np.fft.rfft(h, 8192))
        freqs = np.fft.rfftfreq(8192)
        self.assertAlmostEqual(float(spectrum[0]), 1.0, places=6)
        cutoff = spectrum[np.argmin(np.abs(freqs - 0.2))]
        self.assertLess(abs(20 * np.log10(cutoff) + 6.0), 0.3)
        self.assertLess(20 * np.log10(spectrum[freqs > 0.26].max()), -60)


class ResamplerTests(SynchronousTestCase):
    """
    One stream's conversion, block by block.
    """

    def test_up_by_two(self) -> None:
        """An 8 kHz tone in 20 ms blocks becomes the same tone at 16 kHz, level kept."""
        narrow = tone(1000, 1.0, -10, rate=8000)
        wide = through(Resampler(up=2), narrow, 160)
        self.assertEqual(len(wide), 16000)
        self.assertEqual(peak_frequency(wide, 16000), 1000.0)
        self.assertLess(abs(rms_db(wide[320:]) - rms_db(narrow)), 0.05)

    def test_blocks_join_smoothly(self) -> None:
        """Any block size gives the samples of one long block: history carries over."""
        for up, down, rate in ((2, 1, 8000), (1, 2, 16000), (1, 3, 48000)):
            x = tone(700, 0.2, -10, rate=rate)
            whole = Resampler(up, down).process(x)
            for block in (160, 333, 960):
                pieces = through(Resampler(up, down), x, block)
                self.assertTrue(np.allclose(pieces, whole, atol=1e-2), (up, down, block))

    def test_down_by_three_removes_alias(self) -> None:
        """48 to 16 kHz keeps a 1 kHz tone and removes a 12 kHz one (it would alias to 4 kHz)."""
        clean = tone(1000, 1.0, -10, rate=48000).astype(np.float32)
        high = tone(12000, 1.0, -10, rate=48000).astype(np.float32)
        out = through(Resampler(down=3), clean + high, 960)
        self.assertEqual(len(out), 16000)
        self.assertGreater(band_share(out[100:], 1000, 16000), 0.999)
        self.assertLess(band_share(out[100:], 4000, 16000), 1e-5)

    def test_reset(self) -> None:
        """A reset forgets the history: the next block starts from silence."""
        resampler = Resampler(up=2)
        resampler.process(np.full(160, 10000, dtype=np.int16))
        resampler.reset()
        self.assertEqual(np.abs(resampler.process(np.zeros(160, np.int16))).max(), 0)

    def test_refusals(self) -> None:
        """Only one integer factor at a time."""
        self.assertRaises(ValueError, Resampler, 2, 3)
        self.assertRaises(ValueError, Resampler, 0, 1)

    def test_identity(self) -> None:
        """By 1/1 the samples come back as they are."""
        x = np.arange(10, dtype=np.int16)
        self.assertEqual(Resampler().process(x).tolist(), x.tolist())

    def test_to_int16(self) -> None:
        """Floats round and saturate to 16 bits."""
        out = to_int16(np.array([1.6, -1.6, 40000.0, -40000.0], np.float32))
        self.assertEqual(out.tolist(), [2, -2, 32767, -32768])


class DecimateRowsTests(SynchronousTestCase):
    """
    Many streams' frames downsampled at once.
    """

    def test_rows_match_single_streams(self) -> None:
        """Each row, frame after frame, equals its own stream's Resampler."""
        streams = [tone(f, 0.1, -10, rate=16000) for f in (300, 1000, 2500)]
        histories = np.stack([decimation_history(2)] * 3)
        singles = [Resampler(down=2) for _ in streams]
        for start in range(0, 1600, 320):
            frames = np.stack([s[start : start + 320] for s in streams])
            out, histories = decimate_rows(frames, histories, 2)
            for row, (stream, single) in enumerate(zip(streams, singles)):
                expected = single.process(stream[start : start + 320])
                self.assertTrue(np.allclose(out[row], expected, atol=1e-2))

    def test_frame_must_divide(self) -> None:
        """A frame length the factor does not divide is refused."""
        self.assertRaises(
            ValueError, decimate_rows, np.zeros((1, 321)), np.zeros((1, 63), np.float32), 2
        )
