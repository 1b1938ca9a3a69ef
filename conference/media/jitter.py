# -*- test-case-name: tests.unit.media.test_jitter -*-
"""
A small adaptive jitter buffer: one per participant, between the packets
as they arrive and the mixer's clock, which takes one frame per tick.

Packets are placed by RTP timestamp, so any packet time works (10, 20,
30 ms...) and reordered packets fall into place.  The play position
advances one frame per tick.  The buffer adapts in two directions:

* An underrun (nothing at the position, nothing after it: the packet is
  late) conceals the frame and holds the position, which adds a frame of
  delay.
* When more than the target delay has stayed buffered for
  L{TRIM_AFTER} ticks, one frame is dropped, which removes one.

The target is one frame plus four times the interarrival jitter (as RFC
3550 A.8 measures it), between C{min_delay} (40 ms) and C{max_delay}
(200 ms); a packet is first played C{target} minus one frame after it
arrives (give or take the phase of the clock).  A
timestamp jump beyond C{max_delay} (a restarted sender) resynchronises
to the target; so does the first packet after the buffer went silent, or
a packet with the marker bit when it is empty (a new talkspurt).

Gaps (loss) are concealed by repeating the last frame at half the level
each time, for at most L{CONCEAL_FRAMES} frames, then silence.
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from conference.media.codecs import FRAME_SAMPLES, INTERNAL_RATE, Samples
from conference.media.rtp import TIMESTAMP_MOD, timestamp_delta

CONCEAL_FRAMES = 3
TRIM_AFTER = 25
MAX_CHUNKS = 64


class JitterBuffer:
    """
    Orders one source's decoded packets by timestamp and hands out one
    frame per tick.

    @ivar played: frames that carried received audio; C{concealed} the
        frames made up for loss or lateness; C{late} packets that came
        after their time; C{overflow} packets refused because the buffer
        was full; C{duplicates}, C{resyncs} and C{trimmed} frames dropped
        to cut delay.
    @ivar jitter: the interarrival jitter estimate, in samples.
    """

    def __init__(
        self,
        *,
        frame: int = FRAME_SAMPLES,
        rate: int = INTERNAL_RATE,
        min_delay: int = 2 * FRAME_SAMPLES,
        max_delay: int = 10 * FRAME_SAMPLES,
        max_chunks: int = MAX_CHUNKS,
    ) -> None:
        if not 0 < min_delay <= max_delay:
            raise ValueError("need 0 < min_delay <= max_delay")
        self.frame = frame
        self.rate = rate
        self.min_delay = min_delay
        self.max_delay = max_delay
        self.max_chunks = max_chunks
        self.jitter = 0.0
        self.played = self.concealed = self.late = self.overflow = 0
        self.duplicates = self.resyncs = self.trimmed = 0
        self.reset()

    def reset(self) -> None:
        """Forget the buffered audio and the timing (a new source)."""
        self._chunks: Dict[int, Samples] = {}
        self._pos: Optional[int] = None
        self._transit: Optional[float] = None
        self._last: Optional[Samples] = None
        self._gap = 0
        self._excess = 0

    @property
    def target(self) -> int:
        """The delay aimed at, in samples: whole frames, within bounds."""
        wanted = self.frame + 4.0 * self.jitter
        frames = -(-int(wanted) // self.frame)
        return max(self.min_delay, min(self.max_delay, frames * self.frame))

    @property
    def depth(self) -> int:
        """How many samples are buffered from the play position on."""
        if self._pos is None or not self._chunks:
            return 0
        return max(ts + len(s) for ts, s in self._chunks.items()) - self._pos

    def _extend(self, timestamp: int) -> int:
        """A 32-bit timestamp as an unbounded one near the play position."""
        if self._pos is None:
            return timestamp
        return self._pos + timestamp_delta(timestamp, self._pos % TIMESTAMP_MOD)

    def _resync(self, ext: int) -> None:
        self._chunks.clear()
        self._pos = ext - self.target + self.frame
        self._last = None  # nothing before a resync is worth concealing with
        self._gap = 0
        self._excess = 0

    def push(self, timestamp: int, samples: Samples, arrival: float, marker: bool = False) -> bool:
        """
        Buffer a decoded packet.

        @param timestamp: its RTP timestamp (at the internal rate).
        @param arrival: when it arrived, in seconds.
        @param marker: the RTP marker bit (start of a talkspurt).
        @return: whether it was kept (not late, duplicate or overflowing).
        """
        if not len(samples):
            return False
        transit = arrival * self.rate - timestamp
        if self._transit is not None:
            d = abs(transit - self._transit)
            if d < self.rate:  # a jump of a second or more is not jitter
                self.jitter += (d - self.jitter) / 16.0
        self._transit = transit
        ext = self._extend(timestamp)
        if self._pos is None:
            self._resync(ext)
        else:
            assert self._pos is not None
            ahead = ext - self._pos
            if ahead > self.max_delay + self.frame or ahead < -self.max_delay - self.frame:
                self.resyncs += 1
                self._resync(ext)
            elif ahead > 0 and not self._chunks and (marker or self._gap > CONCEAL_FRAMES):
                # A new talkspurt after silence: start it at the target delay.
                self._resync(ext)
            elif ext + len(samples) <= self._pos:
                self.late += 1
                return False
        if ext in self._chunks:
            self.duplicates += 1
            return False
        if len(self._chunks) >= self.max_chunks:
            self.overflow += 1
            return False
        self._chunks[ext] = samples
        return True

    def pop(self) -> Optional[Samples]:
        """
        The next frame: received audio, concealment, or L{None} for
        silence (nothing to play).
        """
        if self._pos is None:
            return None
        start = self._pos
        end = start + self.frame
        chunk = self._chunks.get(start)
        if chunk is not None and len(chunk) == self.frame:
            del self._chunks[start]
            out: Optional[Samples] = chunk
        else:
            out = self._assemble(start, end)
        if out is None:
            if any(ts >= end for ts in self._chunks):
                # Loss: something later is here, this frame never came.
                self._pos = end
                return self._conceal()
            # Underrun: hold the position, the packet may be late.
            return self._conceal()
        self._pos = end
        self._gap = 0
        self._last = out
        self.played += 1
        self._trim()
        return out

    def _assemble(self, start: int, end: int) -> Optional[Samples]:
        """The frame at C{start} from the chunks overlapping it, if any."""
        out: Optional[Samples] = None
        for ts in sorted(self._chunks):
            samples = self._chunks[ts]
            stop = ts + len(samples)
            if stop <= start:
                del self._chunks[ts]  # entirely in the past
                continue
            if ts >= end:
                break
            if out is None:
                out = np.zeros(self.frame, dtype=np.int16)
            lo, hi = max(ts, start), min(stop, end)
            out[lo - start : hi - start] = samples[lo - ts : hi - ts]
            if stop <= end:
                del self._chunks[ts]
        return out

    def _conceal(self) -> Optional[Samples]:
        self._gap += 1
        if self._last is None or self._gap > CONCEAL_FRAMES:
            return None
        self.concealed += 1
        return (self._last >> self._gap).astype(np.int16)

    def _trim(self) -> None:
        """Drop a frame once the delay has stayed above the target long enough."""
        if self.depth > self.target + self.frame:
            self._excess += 1
            if self._excess >= TRIM_AFTER:
                assert self._pos is not None
                self._assemble(self._pos, self._pos + self.frame)
                self._pos += self.frame
                self.trimmed += 1
                self._excess = 0
        else:
            self._excess = 0


__all__ = ["CONCEAL_FRAMES", "JitterBuffer"]
