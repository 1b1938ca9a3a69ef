# -*- test-case-name: tests.unit.media.test_resample -*-
"""
Sample-rate conversion between a codec's rate and the mixer's internal
rate, by integer factors: up by 2 (G.711's 8 kHz to 16 kHz), down by 2
(16 kHz to G.711) and down by 3 (Opus decoded at 48 kHz to 16 kHz).

Each conversion is a linear-phase FIR low-pass, a Kaiser-windowed sinc
(L{lowpass}), run as a polyphase filter: upsampling never multiplies the
inserted zeros, downsampling computes only the samples it keeps.  The
cut-off (-6 dB) sits at 95 % of the lower rate's Nyquist frequency and
the filter has 32 taps per phase: the passband is flat within 0.15 dB up
to 85 % of that Nyquist frequency (3.4 kHz for G.711, 6.8 kHz for Opus),
everything from 110 % up is attenuated by 65 dB or more, so what little
folds back lands above 90 % of Nyquist, at the edge of the band; each
conversion delays the audio by under 2 ms.  Linear interpolation would
have been cheaper but folds the 4-8 kHz band of a wideband mix back into
a narrowband listener's ear.

A L{Resampler} keeps the last input samples of its stream, so packets
join without clicks; L{decimate_rows} converts many streams' frames at
once (one matrix product), each with its own history, for the mixer's
G.711 listeners.  Everything is numpy: no Python loop over samples.
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Tuple

import numpy as np
import numpy.typing as npt

TAPS_PER_PHASE = 32
KAISER_BETA = 6.0
CUTOFF = 0.95

Floats = npt.NDArray[np.float32]


def lowpass(taps: int, cutoff: float, beta: float = KAISER_BETA) -> npt.NDArray[np.float64]:
    """
    A windowed-sinc low-pass filter of unit DC gain.

    @param cutoff: the -6 dB frequency as a fraction of the sampling rate
        (0 to 0.5).
    @param beta: the Kaiser window's shape: 6 gives about 60 dB of
        stopband attenuation.
    """
    n = np.arange(taps) - (taps - 1) / 2.0
    h = 2.0 * cutoff * np.sinc(2.0 * cutoff * n) * np.kaiser(taps, beta)
    result: npt.NDArray[np.float64] = h / h.sum()
    return result


@cache
def _filter(factor: int) -> Floats:
    """The anti-aliasing / anti-imaging filter of a change by C{factor}."""
    taps = TAPS_PER_PHASE * factor
    h = lowpass(taps, CUTOFF * 0.5 / factor).astype(np.float32)
    h.setflags(write=False)
    return h


def to_int16(samples: npt.NDArray[np.floating]) -> npt.NDArray[np.int16]:
    """Round and saturate float samples to 16 bits."""
    result: npt.NDArray[np.int16] = np.clip(np.rint(samples), -32768, 32767).astype(np.int16)
    return result


class Resampler:
    """
    One stream's conversion by C{up}/C{down} (one of them 1), keeping the
    filter's history from one block to the next.

    @ivar up: the interpolation factor; C{down} the decimation factor.
    """

    def __init__(self, up: int = 1, down: int = 1) -> None:
        if up < 1 or down < 1 or (up > 1 and down > 1):
            raise ValueError(f"cannot resample by {up}/{down}: one integer factor only")
        self.up = up
        self.down = down
        factor = max(up, down)
        h = _filter(factor)
        if up > 1:
            # Phase p of the output uses taps p, p + up, ...; gain up
            # restores the level the inserted zeros took away.
            self._phases = [np.ascontiguousarray(h[p::up][::-1]) * up for p in range(up)]
            self._history = np.zeros(TAPS_PER_PHASE - 1, dtype=np.float32)
        else:
            self._taps = np.ascontiguousarray(h[::-1])
            self._history = np.zeros(len(h) - 1, dtype=np.float32)
        self._skip = 0

    def reset(self) -> None:
        """Forget the history (a new source)."""
        self._history[:] = 0
        self._skip = 0

    def process(self, samples: npt.NDArray[np.generic]) -> Floats:
        """
        Convert one block; the output has C{len * up // down} samples (for
        downsampling, blocks need not be multiples of C{down}: the phase
        carries over).
        """
        if self.up == 1 and self.down == 1:
            return samples.astype(np.float32)
        ext = np.concatenate([self._history, samples.astype(np.float32)])
        keep = len(self._history)
        self._history = ext[len(ext) - keep :].copy()
        if self.up > 1:
            out = np.empty(len(samples) * self.up, dtype=np.float32)
            for p, g in enumerate(self._phases):
                out[p :: self.up] = np.correlate(ext, g, "valid")
            return out
        full = np.correlate(ext, self._taps, "valid")
        out = full[self._skip :: self.down]
        self._skip = (self._skip - len(full)) % self.down
        result: Floats = out.astype(np.float32, copy=False)
        return result


@lru_cache(maxsize=16)
def _decimation_matrix(length: int, factor: int) -> Floats:
    """
    The matrix M with C{[history | block] @ M} the decimated block: column
    m holds the taps that make output sample m.
    """
    h = _filter(factor)
    taps = len(h)
    rows = taps - 1 + length
    outputs = length // factor
    matrix = np.zeros((rows, outputs), dtype=np.float32)
    for m in range(outputs):  # once per block length, not per block
        start = m * factor
        matrix[start : start + taps, m] = h[::-1]
    matrix.setflags(write=False)
    return matrix


def decimation_history(factor: int) -> Floats:
    """A fresh history for L{decimate_rows} (silence before the stream)."""
    return np.zeros(len(_filter(factor)) - 1, dtype=np.float32)


def decimate_rows(
    frames: npt.NDArray[np.generic], histories: Floats, factor: int
) -> Tuple[Floats, Floats]:
    """
    Downsample one frame of each of several streams.

    @param frames: one row per stream; the length a multiple of C{factor}.
    @param histories: one row per stream, each the history returned for
        that stream last time (or L{decimation_history}).
    @return: the decimated rows and the new histories.
    """
    length = frames.shape[1]
    if length % factor:
        raise ValueError(f"a frame of {length} samples does not divide by {factor}")
    ext = np.concatenate([histories, frames.astype(np.float32)], axis=1)
    out: Floats = ext @ _decimation_matrix(length, factor)
    keep = histories.shape[1]
    return out, ext[:, ext.shape[1] - keep :].copy()


__all__ = [
    "Resampler",
    "decimate_rows",
    "decimation_history",
    "lowpass",
    "to_int16",
]
