# -*- test-case-name: tests.unit.media.test_wideband -*-
"""
The wideband codecs, G.722 and Opus, through PyAV (the C{av} package).

PyAV's wheels bundle FFmpeg built with libopus, so one maintained
dependency brings both codecs on CPython (abi3 wheels), with nothing to
install from the system.  Not on PyPy: see L{AV_REFUSED}.  Where it is
missing, or its FFmpeg lacks a codec, L{unavailable} says so and the
mixer simply does not offer that codec (docs/media.rst tells why PyAV
rather than opuslib).

G.722 (RFC 3551 section 4.5.2): 16 kHz audio on an 8 kHz RTP clock, one
byte per two samples, static payload type 9; no parameters.

Opus (RFC 7587): always C{opus/48000/2} in SDP, whatever is really sent.
We encode mono at 16 kHz (wideband, the mixer's rate) in 20 ms frames;
the decoder yields 48 kHz, which is resampled by 3.  The peer's
C{a=fmtp} says what it prefers to receive (L{OpusParameters}) and shapes
the encoder: C{maxplaybackrate} caps the audio bandwidth,
C{maxaveragebitrate} the bit rate, C{cbr} turns VBR off, C{useinbandfec}
makes the encoder add in-band forward error correction; C{stereo} is a
preference a mono sender may ignore, and a stereo packet decodes to mono.
Our own C{a=fmtp} (L{OPUS_FMTP}) tells peers we play 16 kHz mono and do
not use their FEC (FFmpeg's decoder does not expose it).

Every payload is decoded when it arrives; one that FFmpeg refuses, or an
empty one (which FFmpeg would take for the end of the stream), raises
L{CodecError} and leaves the decoder usable for the next.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Dict, Literal, Optional, Tuple

import numpy as np

from conference.media.codecs import (
    FRAME_SAMPLES,
    INTERNAL_RATE,
    AudioCodec,
    CodecError,
    Decoder,
    Encoder,
    Samples,
)
from conference.media.resample import Resampler, to_int16

#: Why PyAV is not used here (L{None}: it is, if installed).  On PyPy its
#: Cython generators crash the interpreter when collected (cpyext has no
#: slot wrapper for their finaliser: "Fatal RPython error:
#: NotImplementedError"), so PyPy never imports it and speaks G.711 only.
AV_REFUSED: Optional[str] = (
    "PyAV is not used on PyPy (its Cython generators crash PyPy's cpyext when collected)"
    if platform.python_implementation() == "PyPy"
    else None
)
HAVE_AV = False
if AV_REFUSED is None:
    try:
        import av
        from av.error import FFmpegError
    except ImportError:  # the codecs are optional: see unavailable()
        pass
    else:
        HAVE_AV = True

OPUS_CLOCK = 48000
#: Wideband speech: 24 kbit/s leaves room for FEC at 20 ms frames.
OPUS_BITRATE = 24000
OPUS_MIN_BITRATE = 6000
#: The loss rate (%) the encoder plans its FEC for, when the peer asked for FEC.
OPUS_EXPECTED_LOSS = 10
#: What we ask of peers in our SDP (RFC 7587 section 6.1).
OPUS_FMTP = "maxplaybackrate=16000;sprop-maxcapturerate=16000;stereo=0;sprop-stereo=0"
# FFmpeg's libopus names of the encoder's audio bandwidth, by the highest
# playback rate that still needs it.
_CUTOFFS = ((8000, "4000"), (12000, "6000"))
_MAX_DECODED = OPUS_CLOCK * 120 // 1000  # the longest Opus packet


def parse_fmtp(fmtp: Optional[str]) -> Dict[str, str]:
    """
    The C{name=value} pairs of an C{a=fmtp} value (separated by C{;},
    names in lower case); anything else is ignored.
    """
    params: Dict[str, str] = {}
    for item in (fmtp or "").split(";"):
        name, sep, value = item.partition("=")
        if sep and name.strip():
            params[name.strip().lower()] = value.strip()
    return params


def _integer(params: Dict[str, str], name: str) -> Optional[int]:
    value = params.get(name, "")
    return int(value) if value.isdigit() and len(value) <= 9 else None


@dataclass(frozen=True)
class OpusParameters:
    """
    What an Opus receiver prefers (RFC 7587 section 6.1), from its
    C{a=fmtp}; absent or unreadable values take the RFC's defaults.
    """

    maxplaybackrate: int = 48000
    maxaveragebitrate: Optional[int] = None
    stereo: bool = False
    cbr: bool = False
    useinbandfec: bool = False
    usedtx: bool = False

    @classmethod
    def from_fmtp(cls, fmtp: Optional[str]) -> OpusParameters:
        """Read the parameters of an C{a=fmtp} value."""
        params = parse_fmtp(fmtp)
        flags = {
            name: params.get(name) == "1" for name in ("stereo", "cbr", "useinbandfec", "usedtx")
        }
        playback = _integer(params, "maxplaybackrate")
        return cls(
            maxplaybackrate=playback if playback and playback >= 8000 else 48000,
            maxaveragebitrate=_integer(params, "maxaveragebitrate") or None,
            **flags,
        )

    def encoder_settings(self) -> Tuple[int, Dict[str, str]]:
        """The bit rate and FFmpeg libopus options that honour these preferences."""
        bitrate = OPUS_BITRATE
        if self.maxaveragebitrate is not None:
            bitrate = max(OPUS_MIN_BITRATE, min(bitrate, self.maxaveragebitrate))
        options = {
            "application": "voip",
            "frame_duration": str(1000 * FRAME_SAMPLES // INTERNAL_RATE),
        }
        for rate, cutoff in _CUTOFFS:
            if self.maxplaybackrate <= rate:
                options["cutoff"] = cutoff
                break
        if self.cbr:
            options["vbr"] = "off"
        if self.useinbandfec:
            options["fec"] = "1"
            options["packet_loss"] = str(OPUS_EXPECTED_LOSS)
        return bitrate, options


def _context(name: str, mode: Literal["r", "w"], rate: int) -> Any:
    """An FFmpeg codec context for mono 16-bit audio at C{rate}, not yet open."""
    context: Any = av.CodecContext.create(name, mode)
    context.sample_rate = rate
    context.layout = "mono"
    if mode == "w":
        context.format = "s16"
    return context


class _AVDecoder(Decoder):
    """Payloads through an FFmpeg decoder, resampled to the internal rate."""

    def __init__(self, name: str, rate: int) -> None:
        self._name = name
        self._rate = rate
        self._context = _context(name, "r", rate)
        self._context.open()
        factor = rate // INTERNAL_RATE
        self._resampler = Resampler(down=factor) if factor > 1 else None

    def decode(self, payload: bytes) -> Samples:
        if not payload:
            raise CodecError(f"empty {self._name} payload")
        try:
            frames = self._context.decode(av.Packet(payload))
        except (FFmpegError, ValueError) as e:
            raise CodecError(f"undecodable {self._name} payload: {e}") from None
        chunks = [frame.to_ndarray().reshape(-1) for frame in frames]
        samples = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
        if len(samples) > _MAX_DECODED:
            raise CodecError(f"{self._name} payload of {len(samples)} samples")
        if samples.dtype != np.int16:  # a float decoder: full scale is 1.0
            samples = to_int16(samples * 32768.0)
        if self._resampler is not None:
            return to_int16(self._resampler.process(samples))
        return samples

    def reset(self) -> None:
        self._context = _context(self._name, "r", self._rate)
        self._context.open()
        if self._resampler is not None:
            self._resampler.reset()


class _AVEncoder(Encoder):
    """Frames at the internal rate through an FFmpeg encoder."""

    def __init__(
        self,
        codec: AudioCodec,
        name: str,
        bitrate: int = 0,
        options: Optional[Dict[str, str]] = None,
    ) -> None:
        self.codec = codec
        context = _context(name, "w", INTERNAL_RATE)
        if bitrate:
            context.bit_rate = bitrate
        context.time_base = Fraction(1, INTERNAL_RATE)
        context.options = dict(options or {})
        context.open()
        self._context = context
        self._pts = 0

    def encode(self, frame: Samples) -> Optional[bytes]:
        audio = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(frame, dtype=np.int16).reshape(1, -1), format="s16", layout="mono"
        )
        audio.sample_rate = INTERNAL_RATE
        audio.pts = self._pts
        self._pts += len(frame)
        packets = self._context.encode(audio)
        if not packets:
            return None
        return b"".join(bytes(packet) for packet in packets)


class G722Codec(AudioCodec):
    """G.722 at 64 kbit/s: 16 kHz audio, RTP clock 8 kHz (RFC 3551)."""

    name = "G722"
    clock = 8000
    rate = 16000

    def decoder(self, fmtp: Optional[str] = None) -> Decoder:
        """A G.722 decoder (G.722 has no parameters)."""
        return _AVDecoder("g722", self.rate)

    def encoder(self, fmtp: Optional[str] = None) -> Encoder:
        """A G.722 encoder."""
        return _AVEncoder(self, "g722")


class OpusCodec(AudioCodec):
    """Opus, mono, 20 ms frames at 16 kHz on its 48 kHz RTP clock (RFC 7587)."""

    name = "opus"
    clock = OPUS_CLOCK
    rate = INTERNAL_RATE

    def decoder(self, fmtp: Optional[str] = None) -> Decoder:
        """A decoder: any Opus packet (mono or stereo, any bandwidth) to mono."""
        return _AVDecoder("libopus", OPUS_CLOCK)

    def encoder(self, fmtp: Optional[str] = None) -> Encoder:
        """An encoder shaped by the peer's C{fmtp} (L{OpusParameters})."""
        bitrate, options = OpusParameters.from_fmtp(fmtp).encoder_settings()
        return _AVEncoder(self, "libopus", bitrate, options)


G722 = G722Codec()
OPUS = OpusCodec()
_FFMPEG_NAMES = {G722: "g722", OPUS: "libopus"}


def unavailable(codec: AudioCodec) -> Optional[str]:
    """Why C{codec} cannot be used here, or L{None} when it can."""
    if AV_REFUSED is not None:
        return AV_REFUSED
    if not HAVE_AV:
        return "PyAV (the av package) is not installed"
    name = _FFMPEG_NAMES[codec]
    for mode in ("r", "w"):
        try:
            av.codec.Codec(name, mode)
        except (FFmpegError, ValueError):
            return f"PyAV's FFmpeg has no {name} {'decoder' if mode == 'r' else 'encoder'}"
    return None


__all__ = [
    "G722",
    "OPUS",
    "OPUS_FMTP",
    "G722Codec",
    "OpusCodec",
    "OpusParameters",
    "parse_fmtp",
    "unavailable",
]
