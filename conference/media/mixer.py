# -*- test-case-name: tests.unit.media.test_mixer -*-
"""
The N-1 mixer of one conference, sans-I/O: on each tick of the
conference's 20 ms clock it takes a frame from every participant's jitter
buffer, and sends each participant the sum of everyone else.

The work of a tick is a handful of numpy operations over an N x 320
matrix (20 ms at the internal 16 kHz), whatever N is: apply the incoming
gains (zero for the muted and the silent), sum the rows once, subtract
each row from the sum (nobody hears themself), apply the outgoing gains,
add any tone a participant is being played (the end-of-conference
warning), saturate to 16 bits (loud sums clip instead of wrapping
around) and encode: the rows of all G.711
listeners with one resampling product and one table lookup, each Opus or
G.722 listener with its own encoder (one C call).  Python loops only over
participants, never over samples; participants with different codecs
hear each other because everything meets at the internal rate.  A
silent tick (no frame from anyone, no tone) builds no matrix: each
G.711 listener whose resampler has settled gets its codec's silence as
is, which a quiet conference sends 50 times a second to everyone.
"""

from __future__ import annotations

from typing import Dict, Hashable, List, Optional, Tuple, cast

import numpy as np
import numpy.typing as npt

from conference.media.channel import Channel, Datagram
from conference.media.codecs import (
    FRAME_MS,
    FRAME_SAMPLES,
    INTERNAL_RATE,
    AudioCodec,
    Encoder,
    Samples,
)
from conference.media.tone import alone_tone

Matrix = npt.NDArray[np.float32]
FRAME_RATE_PER_SECOND = 1000 // FRAME_MS


def mix_minus(
    frames: Matrix,
    gains_in: npt.NDArray[np.float32],
    gains_out: npt.NDArray[np.float32],
    overlay: Optional[Matrix] = None,
) -> npt.NDArray[np.int16]:
    """
    What each participant hears.

    @param frames: one row of samples per participant.
    @param gains_in: per participant, the gain of what they say (0 for
        the muted or silent); C{gains_out} of what they hear.
    @param overlay: rows added to what each participant hears after
        their outgoing gain (tones), or L{None}.
    @return: row M is the sum of every other row, each scaled by its
        incoming gain, scaled by M's outgoing gain and saturated to int16.
    """
    spoken = frames * gains_in[:, None]
    total = spoken.sum(axis=0)
    heard = (total[None, :] - spoken) * gains_out[:, None]
    if overlay is not None:
        heard += overlay
    np.rint(heard, out=heard)
    np.clip(heard, -32768, 32767, out=heard)
    result: npt.NDArray[np.int16] = heard.astype(np.int16)
    return result


class Mixer:
    """
    The participants of one conference and their tick.

    @ivar channels: by key, in the order they joined.
    @ivar ticks: how many frames were mixed.
    @ivar alone_every: while one participant is alone, the "you are
        alone" cue (L{alone_tone}) is played to them one second after
        they became alone and then every C{alone_every} ticks (L{None}:
        never); a tone already playing (the end warning) is not cut.
    """

    def __init__(self, frame: int = FRAME_SAMPLES, alone_every: Optional[int] = 250) -> None:
        self.frame = frame
        self.channels: Dict[Hashable, Channel] = {}
        self.ticks = 0
        self.alone_every = alone_every
        self._alone_ticks = 0

    def add(self, channel: Channel) -> None:
        """A participant joins the mix."""
        self.channels[channel.key] = channel

    def remove(self, key: Hashable) -> Optional[Channel]:
        """A participant leaves; returns its channel, if it was here."""
        return self.channels.pop(key, None)

    def __len__(self) -> int:
        return len(self.channels)

    def tick(self, now: float) -> List[Datagram]:
        """
        Mix one frame: the RTP packets for everyone, plus the RTCP
        reports that are due.
        """
        self.ticks += 1
        channels = list(self.channels.values())
        count = len(channels)
        if not count:
            return []
        self._cue_alone(channels)
        heard = self._mix(channels)
        if heard is None:
            payloads = self._encode_silence(channels)
        else:
            payloads = self._encode(channels, heard)
        out: List[Datagram] = []
        for channel, payload in zip(channels, payloads):
            out.extend(channel.packets(payload))
            out.extend(channel.rtcp_report(now))
        return out

    def _mix(self, channels: List[Channel]) -> Optional[npt.NDArray[np.int16]]:
        """
        Take this tick's frame from every participant and mix them; L{None}
        for a silent tick (no frame to mix and no tone to play), which
        builds no matrix at all: everyone hears silence.
        """
        count = len(channels)
        spoken: List[Tuple[int, Samples, float]] = []  # row, frame, incoming gain
        overlay: Optional[Matrix] = None
        for row, channel in enumerate(channels):
            tone = channel.overlay()
            if tone is not None:
                if overlay is None:
                    overlay = np.zeros((count, self.frame), dtype=np.float32)
                overlay[row] = tone
            frame = channel.pop()
            if frame is not None and not channel.mute_in:
                spoken.append((row, frame, channel.gain_in))
        if not spoken and overlay is None:
            return None
        frames = np.zeros((count, self.frame), dtype=np.float32)
        gains_in = np.zeros(count, dtype=np.float32)
        for row, frame, gain in spoken:
            frames[row] = frame
            gains_in[row] = gain
        gains_out = np.array(
            [0.0 if channel.mute_out else channel.gain_out for channel in channels],
            dtype=np.float32,
        )
        return mix_minus(frames, gains_in, gains_out, overlay)

    def _cue_alone(self, channels: List[Channel]) -> None:
        """Play the alone cue to a lone participant when it is due."""
        every = self.alone_every
        if len(channels) != 1 or every is None:
            self._alone_ticks = 0
            return
        first = FRAME_RATE_PER_SECOND  # one second after becoming alone
        due = self._alone_ticks >= first and (self._alone_ticks - first) % every == 0
        self._alone_ticks += 1
        [channel] = channels
        if due and channel.sends and not channel.playing:
            channel.play(alone_tone(INTERNAL_RATE))

    def _encode(
        self, channels: List[Channel], heard: npt.NDArray[np.int16]
    ) -> List[Optional[bytes]]:
        """
        Each participant's frame in its send codec: the rows of one codec
        go to it together (G.711: one resampling and one lookup for all).
        """
        rows: Dict[AudioCodec, List[int]] = {}
        for row, channel in enumerate(channels):
            encoder = channel.encoder
            if channel.sends and encoder is not None:
                rows.setdefault(encoder.codec, []).append(row)
        payloads: List[Optional[bytes]] = [None] * len(channels)
        for codec, indices in rows.items():
            encoders = [cast(Encoder, channels[index].encoder) for index in indices]
            encoded = codec.encode_frames(encoders, heard[indices])
            for index, payload in zip(indices, encoded):
                payloads[index] = payload
        return payloads

    def _encode_silence(self, channels: List[Channel]) -> List[Optional[bytes]]:
        """
        Each participant's frame of a silent tick: the encoder's own
        payload for silence when its state is at rest (L{Encoder.at_rest}),
        so a quiet conference costs no numpy work per tick; the others
        encode a frame of zeros as in any tick.
        """
        payloads: List[Optional[bytes]] = [None] * len(channels)
        busy: List[int] = []
        for row, channel in enumerate(channels):
            encoder = channel.encoder
            if channel.sends and encoder is not None:
                payload = encoder.at_rest()
                if payload is None:
                    busy.append(row)
                else:
                    payloads[row] = payload
        if busy:
            zeros = np.zeros((len(busy), self.frame), dtype=np.int16)
            encoded = self._encode([channels[row] for row in busy], zeros)
            for row, payload in zip(busy, encoded):
                payloads[row] = payload
        return payloads

    def skip(self, frames: int) -> None:
        """The clock missed C{frames} ticks: keep every stream's timing."""
        for channel in self.channels.values():
            channel.skip(frames)


__all__ = ["Mixer", "mix_minus"]
