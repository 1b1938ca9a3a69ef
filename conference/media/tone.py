# -*- test-case-name: tests.unit.media.test_tone -*-
"""
Tones the mixer plays into one participant's audio, mixed over what they
hear.  The end-of-conference warning is two 440 Hz beeps of 200 ms with
150 ms between them at -12 dBFS: clearly audible over speech, short
enough not to interrupt it.  The "you are alone" cue, played to the only
participant of a conference now and then, is one soft 660 Hz beep of
150 ms at -24 dBFS: a sign that the line is alive and nobody else is
there, not an interruption.  Each tone is computed once per sample rate
(numpy, no per-sample loop) and cached.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt

WARNING_FREQUENCY = 440.0
WARNING_BEEP = 0.2
WARNING_GAP = 0.15
WARNING_BEEPS = 2
WARNING_LEVEL_DBFS = -12.0
ALONE_FREQUENCY = 660.0
ALONE_BEEP = 0.15
ALONE_LEVEL_DBFS = -24.0


@lru_cache(maxsize=8)
def warning_tone(rate: int) -> npt.NDArray[np.float32]:
    """
    The end-of-conference warning at C{rate} samples per second, as
    linear samples on the int16 scale (peak at L{WARNING_LEVEL_DBFS}).

    The array is shared by every caller: it is read-only.
    """
    return beeps(
        rate,
        WARNING_FREQUENCY,
        length=WARNING_BEEP,
        gap=WARNING_GAP,
        count=WARNING_BEEPS,
        level_dbfs=WARNING_LEVEL_DBFS,
    )


@lru_cache(maxsize=8)
def alone_tone(rate: int) -> npt.NDArray[np.float32]:
    """The "you are alone" cue at C{rate}, like L{warning_tone} (read-only)."""
    return beeps(
        rate, ALONE_FREQUENCY, length=ALONE_BEEP, gap=0.0, count=1, level_dbfs=ALONE_LEVEL_DBFS
    )


def beeps(
    rate: int, frequency: float, *, length: float, gap: float, count: int, level_dbfs: float
) -> npt.NDArray[np.float32]:
    """
    C{count} beeps of C{frequency} Hz, C{length} seconds each with C{gap}
    seconds of silence between them, peaking at C{level_dbfs}, with 5 ms
    raised-cosine edges; read-only.
    """
    beep = round(length * rate)
    silence_samples = round(gap * rate)
    amplitude = 32767.0 * 10.0 ** (level_dbfs / 20.0)
    t = np.arange(beep, dtype=np.float64) / rate
    # 5 ms raised-cosine ramps: no clicks at the edges of a beep.
    ramp = min(round(0.005 * rate), beep // 2)
    envelope = np.ones(beep)
    if ramp:
        edge = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
        envelope[:ramp] = edge
        envelope[beep - ramp :] = edge[::-1]
    one = amplitude * envelope * np.sin(2 * np.pi * frequency * t)
    silence = np.zeros(silence_samples)
    parts = []
    for index in range(count):
        if index:
            parts.append(silence)
        parts.append(one)
    tone: npt.NDArray[np.float32] = np.concatenate(parts).astype(np.float32)
    tone.setflags(write=False)
    return tone


__all__ = [
    "ALONE_FREQUENCY",
    "ALONE_LEVEL_DBFS",
    "WARNING_FREQUENCY",
    "WARNING_LEVEL_DBFS",
    "alone_tone",
    "beeps",
    "warning_tone",
]
