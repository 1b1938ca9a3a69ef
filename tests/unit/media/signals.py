"""
Test signals and their measurement: tones, RMS level, the energy near a
frequency (by FFT), streams through a codec, and a WAV writer and reader
for the softphones.
"""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any, List, Sequence, Tuple

import numpy as np
import numpy.typing as npt

from conference.media.codecs import FRAME_SAMPLES, INTERNAL_RATE, AudioCodec
from conference.media.rtp import build_rtp

FULL_SCALE = 32767.0


def tone(
    frequency: float, seconds: float, level_db: float = -10.0, rate: int = INTERNAL_RATE
) -> npt.NDArray[np.int16]:
    """A sine of C{frequency} Hz at C{level_db} dBFS (peak), as int16 samples."""
    t = np.arange(int(seconds * rate)) / rate
    amplitude = FULL_SCALE * 10 ** (level_db / 20)
    samples: npt.NDArray[np.int16] = np.rint(amplitude * np.sin(2 * np.pi * frequency * t)).astype(
        np.int16
    )
    return samples


def rms_db(samples: npt.NDArray[Any]) -> float:
    """The RMS level in dBFS (a full-scale sine is -3 dB); -inf for silence."""
    rms = float(np.sqrt(np.mean(np.square(samples.astype(np.float64)))))
    return float("-inf") if rms == 0 else 20 * np.log10(rms / FULL_SCALE)


def peak_frequency(samples: npt.NDArray[Any], rate: int = INTERNAL_RATE) -> float:
    """The frequency of the strongest FFT bin (windowed)."""
    x = samples.astype(np.float64) * np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(x))
    return float(np.argmax(spectrum[1:]) + 1) * rate / len(samples)


def band_share(
    samples: npt.NDArray[Any], frequency: float, rate: int = INTERNAL_RATE, width: float = 30.0
) -> float:
    """The share (0-1) of the signal's energy within C{width} Hz of C{frequency}."""
    x = samples.astype(np.float64) * np.hanning(len(samples))
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1.0 / rate)
    total = float(power[freqs > 20].sum())
    if total == 0:
        return 0.0
    return float(power[np.abs(freqs - frequency) <= width].sum()) / total


def encode_stream(codec: AudioCodec, samples: npt.NDArray[np.int16], fmtp: str = "") -> List[bytes]:
    """C{samples} (at the internal rate) as payloads of one frame each, by one encoder."""
    encoder = codec.encoder(fmtp or None)
    payloads = []
    for n in range(len(samples) // FRAME_SAMPLES):
        payload = encoder.encode(samples[n * FRAME_SAMPLES : (n + 1) * FRAME_SAMPLES])
        assert payload is not None
        payloads.append(payload)
    return payloads


def decode_stream(codec: AudioCodec, payloads: Sequence[bytes]) -> npt.NDArray[np.int16]:
    """Payloads of one stream through one decoder, joined, at the internal rate."""
    decoder = codec.decoder()
    return np.concatenate([decoder.decode(p) for p in payloads])


def rtp_stream(
    codec: AudioCodec,
    pt: int,
    samples: npt.NDArray[np.int16],
    *,
    ssrc: int = 0x1234,
    sequence: int = 1000,
    timestamp: int = 5000,
) -> List[bytes]:
    """C{samples} (at the internal rate) as RTP packets of one 20 ms frame each."""
    step = codec.frame_step()
    return [
        build_rtp(pt, sequence + n, timestamp + n * step, ssrc, payload, marker=n == 0)
        for n, payload in enumerate(encode_stream(codec, samples))
    ]


def write_wav(
    path: Path, samples: npt.NDArray[np.int16], rate: int = INTERNAL_RATE, channels: int = 1
) -> None:
    """Write 16-bit samples as a WAV file, the same on each of C{channels}."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.repeat(samples, channels).astype("<i2").tobytes())


def read_wav(path: Path) -> Tuple[npt.NDArray[np.int16], int]:
    """The samples (first channel) and rate of a 16-bit WAV file."""
    with wave.open(str(path), "rb") as f:
        channels, width, rate = f.getnchannels(), f.getsampwidth(), f.getframerate()
        data = f.readframes(f.getnframes())
    if width != 2:
        raise ValueError(f"{path}: {8 * width}-bit samples, expected 16")
    samples = np.frombuffer(data, dtype="<i2").astype(np.int16)
    return samples[::channels].copy(), rate
