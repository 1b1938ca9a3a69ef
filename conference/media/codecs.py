# -*- test-case-name: tests.unit.media.test_codecs -*-
"""
G.711 (PCMU and PCMA) by numpy lookup tables, and the mixer's internal
audio format.

The mixer works on signed 16-bit linear PCM at L{INTERNAL_RATE} in frames
of L{FRAME_SAMPLES}.  Each codec turns payload bytes into such samples and
back with one table lookup per packet (or per block of packets), never a
Python loop per sample.  The tables are built once, at import, from the
segment rules of ITU-T G.711 (the same arithmetic as the reference C code
in Sun's public-domain g711.c).
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import numpy.typing as npt

INTERNAL_RATE = 8000
FRAME_MS = 20
FRAME_SAMPLES = INTERNAL_RATE * FRAME_MS // 1000

Samples = npt.NDArray[np.int16]
Payloads = npt.NDArray[np.uint8]

_SEG_ALAW_END = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)
_SEG_ULAW_END = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
_ULAW_BIAS = 0x84
_ULAW_CLIP = 8159


def _all_int16() -> npt.NDArray[np.int32]:
    """Every 16-bit sample value, indexed by its unsigned bit pattern."""
    return np.arange(65536, dtype=np.int32).astype(np.uint16).view(np.int16).astype(np.int32)


def _ulaw_decode_table() -> Samples:
    u = (~np.arange(256, dtype=np.int32)) & 0xFF
    t = (((u & 0x0F) << 3) + _ULAW_BIAS) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, _ULAW_BIAS - t, t - _ULAW_BIAS).astype(np.int16)


def _ulaw_encode_table() -> Payloads:
    pcm = _all_int16() >> 2
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(pcm), _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    seg = np.searchsorted(_SEG_ULAW_END, magnitude, side="left").astype(np.int32)
    shifted = magnitude >> np.minimum(seg + 1, 31)
    value = np.where(seg >= 8, 0x7F, (np.minimum(seg, 7) << 4) | (shifted & 0x0F))
    return (value ^ mask).astype(np.uint8)


def _alaw_decode_table() -> Samples:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    t = np.where(seg == 0, t + 8, (t + 0x108) << np.maximum(seg - 1, 0))
    return np.where(a & 0x80, t, -t).astype(np.int16)


def _alaw_encode_table() -> Payloads:
    pcm = _all_int16() >> 3
    mask = np.where(pcm >= 0, 0xD5, 0x55)
    magnitude = np.where(pcm >= 0, pcm, -pcm - 1)
    seg = np.searchsorted(_SEG_ALAW_END, magnitude, side="left").astype(np.int32)
    low = np.where(seg < 2, magnitude >> 1, magnitude >> np.minimum(seg, 31)) & 0x0F
    value = np.where(seg >= 8, 0x7F, (np.minimum(seg, 7) << 4) | low)
    return (value ^ mask).astype(np.uint8)


class AudioCodec:
    """
    A voice codec the mixer speaks: payload bytes to L{Samples} at
    L{INTERNAL_RATE} and back.

    @ivar name: the encoding name of C{a=rtpmap} (C{PCMU}); C{clock} its
        RTP clock rate.
    @ivar silence: the payload byte of a zero sample.
    """

    def __init__(self, name: str, clock: int, decode_table: Samples, encode_table: Payloads):
        self.name = name
        self.clock = clock
        self._decode = decode_table
        self._encode = encode_table
        self.silence = bytes([int(encode_table[0])])

    def decode(self, payload: bytes) -> Samples:
        """The samples of C{payload}, one per byte."""
        return self._decode[np.frombuffer(payload, dtype=np.uint8)]

    def encode(self, pcm: npt.NDArray[np.int16]) -> Payloads:
        """
        Encode samples of any shape (a frame, or one frame per row for
        several participants); the result has the same shape.
        """
        return self._encode[pcm.view(np.uint16)]

    def __repr__(self) -> str:
        return f"<AudioCodec {self.name}/{self.clock}>"


PCMU = AudioCodec("PCMU", 8000, _ulaw_decode_table(), _ulaw_encode_table())
PCMA = AudioCodec("PCMA", 8000, _alaw_decode_table(), _alaw_encode_table())

CODECS: Dict[str, AudioCodec] = {codec.name.lower(): codec for codec in (PCMU, PCMA)}


def codec_named(name: str, clock: int) -> Optional[AudioCodec]:
    """The codec an C{a=rtpmap} of C{name/clock} names, if we speak it."""
    codec = CODECS.get(name.lower())
    if codec is None or codec.clock != clock:
        return None
    return codec


__all__ = [
    "CODECS",
    "FRAME_MS",
    "FRAME_SAMPLES",
    "INTERNAL_RATE",
    "PCMA",
    "PCMU",
    "AudioCodec",
    "Samples",
    "codec_named",
]
