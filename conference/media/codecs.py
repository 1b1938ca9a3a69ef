# -*- test-case-name: tests.unit.media.test_codecs -*-
"""
The mixer's internal audio format, what a voice codec is to the mixer,
and G.711 (PCMU and PCMA) by numpy lookup tables.

The mixer works on signed 16-bit linear PCM at L{INTERNAL_RATE} (16 kHz)
in frames of L{FRAME_SAMPLES} (20 ms).  16 kHz carries everything a
wideband codec (G.722, Opus in wideband) transmits, at a third of the
mixing cost of 48 kHz; the narrowband G.711 is resampled by 2 on the way
in and out (L{conference.media.resample}).  Each participant has its own
L{Decoder} per payload type and one L{Encoder}: state that codecs such as
Opus and G.722 must keep per stream.  An L{AudioCodec} makes them.

G.711 turns payload bytes into samples and back with one table lookup per
packet (or per block of packets), never a Python loop per sample.  The
tables are built once, at import, from the segment rules of ITU-T G.711
(the same arithmetic as the reference C code in Sun's public-domain
g711.c).  G.722 and Opus are in L{conference.media.wideband}.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np
import numpy.typing as npt

from conference.media.resample import Resampler, decimate_rows, decimation_history, to_int16

INTERNAL_RATE = 16000
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


class CodecError(ValueError):
    """A payload the codec cannot decode (the packet is dropped and counted)."""


class Decoder:
    """One stream's decoder: payloads to samples at L{INTERNAL_RATE}."""

    def decode(self, payload: bytes) -> Samples:
        """
        The samples of one packet's payload.

        @raise CodecError: the payload is malformed.
        """
        raise NotImplementedError

    def reset(self) -> None:
        """Forget the stream's state (a new source); nothing by default."""


class Encoder:
    """
    One stream's encoder: frames of L{FRAME_SAMPLES} at L{INTERNAL_RATE}
    to payloads.

    @ivar codec: the codec it encodes with.
    """

    codec: AudioCodec

    def encode(self, frame: Samples) -> Optional[bytes]:
        """The payload of one frame (L{None}: nothing to send this time)."""
        raise NotImplementedError

    def at_rest(self) -> Optional[bytes]:
        """
        The payload of a frame of silence, if encoding one would give it
        without changing the encoder's state (so it can be sent as is,
        however many times); L{None} when the state must be run, as by
        default.
        """
        return None


class AudioCodec:
    """
    A voice codec the mixer speaks.

    @ivar name: the encoding name of C{a=rtpmap} (C{PCMU}, C{opus});
        C{clock} its RTP clock rate; C{rate} the sampling rate of its
        audio (G.722 samples at 16 kHz on an 8 kHz RTP clock, RFC 3551
        section 4.5.2).
    """

    name = ""
    clock = 8000
    rate = 8000

    def decoder(self, fmtp: Optional[str] = None) -> Decoder:
        """A decoder for one stream; C{fmtp} the stream's C{a=fmtp} parameters."""
        raise NotImplementedError

    def encoder(self, fmtp: Optional[str] = None) -> Encoder:
        """
        An encoder for one stream; C{fmtp} the C{a=fmtp} parameters of the
        peer, which say what it prefers to receive.
        """
        raise NotImplementedError

    def encode_frames(self, encoders: Sequence[Encoder], frames: Samples) -> List[Optional[bytes]]:
        """
        Encode row M of C{frames} with C{encoders[M]} (each made by this
        codec): one call per tick for all of a codec's listeners, which
        stateless codecs do in one go.
        """
        return [encoder.encode(frame) for encoder, frame in zip(encoders, frames)]

    def frame_step(self) -> int:
        """How far the RTP clock advances in one frame."""
        return self.clock * FRAME_MS // 1000

    def __repr__(self) -> str:
        return f"<AudioCodec {self.name}/{self.clock}>"


class G711(AudioCodec):
    """
    PCMU or PCMA: stateless, one byte per sample at 8 kHz.

    L{decode} and L{encode} work at 8 kHz; the L{Decoder} and L{Encoder}
    it makes convert to and from L{INTERNAL_RATE}, each keeping its
    resampler's history, and L{encode_frames} does all of a tick's
    listeners with one matrix product and one table lookup.

    @ivar silence: the payload byte of a zero sample.
    """

    rate = 8000
    clock = 8000

    def __init__(self, name: str, decode_table: Samples, encode_table: Payloads):
        self.name = name
        self._decode = decode_table
        self._encode = encode_table
        self.silence = bytes([int(encode_table[0])])
        self._factor = INTERNAL_RATE // self.rate

    def decode(self, payload: bytes) -> Samples:
        """The 8 kHz samples of C{payload}, one per byte."""
        return self._decode[np.frombuffer(payload, dtype=np.uint8)]

    def encode(self, pcm: npt.NDArray[np.int16]) -> Payloads:
        """
        Encode 8 kHz samples of any shape (a frame, or one frame per row
        for several participants); the result has the same shape.
        """
        return self._encode[pcm.view(np.uint16)]

    def decoder(self, fmtp: Optional[str] = None) -> Decoder:
        """A decoder to L{INTERNAL_RATE}; G.711 has no parameters."""
        return _G711Decoder(self)

    def encoder(self, fmtp: Optional[str] = None) -> Encoder:
        """An encoder from L{INTERNAL_RATE}."""
        return _G711Encoder(self)

    def encode_frames(self, encoders: Sequence[Encoder], frames: Samples) -> List[Optional[bytes]]:
        """Downsample every row at once, then one table lookup."""
        mine = [e for e in encoders if isinstance(e, _G711Encoder)]
        if len(mine) != len(encoders):
            return super().encode_frames(encoders, frames)
        histories = np.stack([e.history for e in mine])
        narrow, histories = decimate_rows(frames, histories, self._factor)
        for encoder, history in zip(mine, histories):
            encoder.history = history
            encoder.quiet = None
        return [row.tobytes() for row in self.encode(to_int16(narrow))]


class _G711Decoder(Decoder):
    def __init__(self, codec: G711) -> None:
        self.codec = codec
        self._resampler = Resampler(up=INTERNAL_RATE // codec.rate)

    def decode(self, payload: bytes) -> Samples:
        return to_int16(self._resampler.process(self.codec.decode(payload)))

    def reset(self) -> None:
        self._resampler.reset()


class _G711Encoder(Encoder):
    def __init__(self, codec: G711) -> None:
        self.codec = codec
        self.history = decimation_history(INTERNAL_RATE // codec.rate)
        self._silence = codec.silence * codec.frame_step()
        # The silent frame while the history is all zeros (the filter's
        # input was silence for long enough), else None.
        self.quiet: Optional[bytes] = self._silence

    def at_rest(self) -> Optional[bytes]:
        """
        Silence (the zero sample's byte) once the resampler's history is all
        zeros: the filter then turns zeros into zeros and keeps its history.
        """
        if self.quiet is None and not self.history.any():
            self.quiet = self._silence
        return self.quiet

    def encode(self, frame: Samples) -> Optional[bytes]:
        return self.codec.encode_frames([self], frame[None, :])[0]


PCMU = G711("PCMU", _ulaw_decode_table(), _ulaw_encode_table())
PCMA = G711("PCMA", _alaw_decode_table(), _alaw_encode_table())


__all__ = [
    "FRAME_MS",
    "FRAME_SAMPLES",
    "INTERNAL_RATE",
    "PCMA",
    "PCMU",
    "AudioCodec",
    "CodecError",
    "Decoder",
    "Encoder",
    "G711",
    "Samples",
]
