# -*- test-case-name: tests.unit.media.test_tone -*-
"""
Tones the mixer plays into one participant's audio, mixed over what they
hear.  The end-of-conference warning is two 440 Hz beeps of 200 ms with
150 ms between them at -12 dBFS: clearly audible over speech, short
enough not to interrupt it.  Each tone is computed once per sample rate
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


@lru_cache(maxsize=8)
def warning_tone(rate: int) -> npt.NDArray[np.float32]:
    """
    The end-of-conference warning at C{rate} samples per second, as
    linear samples on the int16 scale (peak at L{WARNING_LEVEL_DBFS}).

    The array is shared by every caller: it is read-only.
    """
    beep = round(WARNING_BEEP * rate)
    gap = round(WARNING_GAP * rate)
    amplitude = 32767.0 * 10.0 ** (WARNING_LEVEL_DBFS / 20.0)
    t = np.arange(beep, dtype=np.float64) / rate
    # 5 ms raised-cosine ramps: no clicks at the edges of a beep.
    ramp = min(round(0.005 * rate), beep // 2)
    envelope = np.ones(beep)
    if ramp:
        edge = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
        envelope[:ramp] = edge
        envelope[beep - ramp :] = edge[::-1]
    one = amplitude * envelope * np.sin(2 * np.pi * WARNING_FREQUENCY * t)
    silence = np.zeros(gap)
    parts = []
    for index in range(WARNING_BEEPS):
        if index:
            parts.append(silence)
        parts.append(one)
    tone: npt.NDArray[np.float32] = np.concatenate(parts).astype(np.float32)
    tone.setflags(write=False)
    return tone


__all__ = ["WARNING_FREQUENCY", "WARNING_LEVEL_DBFS", "warning_tone"]
