# -*- test-case-name: tests.unit.media.test_dtmf -*-
"""
RFC 4733 telephone events (DTMF digits over RTP), both ways.

An event is identified by its RTP timestamp, which stays the same in
every packet of the event while its duration grows; the last packet has
the E bit and is sent three times.  L{DTMFReceiver} reports each digit
once, when its first packet arrives (retransmissions, updates and the
end packets are not reported again).  L{DTMFSender} turns queued digits
into the packets to send, one per mixer tick, in place of the audio.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass
from typing import Deque, List, Optional, Tuple

from conference.media.codecs import FRAME_MS
from conference.media.rtp import timestamp_delta

# Events 0-15 of RFC 4733 section 3.2 as characters; 16 is flash.
DIGITS = "0123456789*#ABCD"
FLASH = 16
FLASH_NAME = "flash"
END_REPEATS = 3
DEFAULT_VOLUME = 10
DEFAULT_DURATION = 800  # samples: 100 ms at 8 kHz
DEFAULT_FRAME = 8000 * FRAME_MS // 1000  # one tick on an 8 kHz clock
MAX_DURATION = 0xFFFF
GAP_FRAMES = 2
MAX_QUEUE = 64
_EVENT = struct.Struct("!BBH")


class DTMFError(ValueError):
    """A telephone-event payload or digit that cannot be used."""


@dataclass(frozen=True)
class TelephoneEvent:
    """
    One telephone-event payload: the event code, the E(nd) bit, the
    volume (dBm0 below zero) and the duration so far, in timestamp units.
    """

    event: int
    end: bool
    volume: int
    duration: int

    @property
    def name(self) -> Optional[str]:
        """The digit (C{0}-C{9}, C{*}, C{#}, C{A}-C{D}), C{flash}, or L{None}."""
        if self.event < len(DIGITS):
            return DIGITS[self.event]
        return FLASH_NAME if self.event == FLASH else None

    def to_bytes(self) -> bytes:
        """The 4-byte payload."""
        flags = (0x80 if self.end else 0) | (self.volume & 0x3F)
        return _EVENT.pack(self.event, flags, min(self.duration, MAX_DURATION))


def parse_event(payload: bytes) -> TelephoneEvent:
    """
    Read the first event of a telephone-event payload (any further,
    redundant ones of section 2.5.1.5 are ignored).

    @raise DTMFError: shorter than 4 bytes.
    """
    if len(payload) < _EVENT.size:
        raise DTMFError(f"telephone-event payload of {len(payload)} bytes")
    event, flags, duration = _EVENT.unpack_from(payload)
    return TelephoneEvent(event, bool(flags & 0x80), flags & 0x3F, duration)


def event_code(digit: str) -> int:
    """
    The event code of a digit (case-insensitive) or C{flash}.

    @raise DTMFError: for anything else.
    """
    if digit.lower() == FLASH_NAME:
        return FLASH
    index = DIGITS.find(digit.upper()) if len(digit) == 1 else -1
    if index < 0:
        raise DTMFError(f"not a DTMF digit: {digit!r}")
    return index


class DTMFReceiver:
    """
    Turns a participant's telephone-event packets into digits, each
    reported once.

    @ivar events: how many events were reported.
    """

    def __init__(self) -> None:
        self._timestamp: Optional[int] = None
        self._event: Optional[TelephoneEvent] = None
        self.events = 0

    def receive(self, timestamp: int, payload: bytes) -> Optional[str]:
        """
        Take one telephone-event packet.

        @return: the digit (or C{flash}) when this packet starts a new
            event, else L{None}.
        @raise DTMFError: for a malformed payload.
        """
        event = parse_event(payload)
        previous, last = self._event, self._timestamp
        self._timestamp, self._event = timestamp, event
        if last is not None and previous is not None:
            if timestamp == last:
                return None  # an update or retransmission of the same event
            if (
                not previous.end
                and previous.event == event.event
                and timestamp_delta(timestamp, last) == previous.duration
            ):
                return None  # a long event continued in a new segment (2.5.1.3)
        name = event.name
        if name is not None:
            self.events += 1
        return name


class DTMFSender:
    """
    Queued digits as telephone-event packets for the mixer's ticks.
    """

    def __init__(self, frame: int = DEFAULT_FRAME, volume: int = DEFAULT_VOLUME) -> None:
        self.frame = frame
        self.volume = volume
        self._queue: Deque[Tuple[int, int]] = deque()
        self._code = 0
        self._duration = 0
        self._start: Optional[int] = None
        self._elapsed = 0
        self._gap = 0

    @property
    def busy(self) -> bool:
        """Whether an event is being sent or waits to be."""
        return self._start is not None or bool(self._queue)

    def queue(self, digits: str, duration: int = DEFAULT_DURATION) -> None:
        """
        Queue C{digits} (each a character of L{DIGITS}), each lasting
        C{duration} timestamp units.

        @raise DTMFError: for a character that is not a digit, a duration
            outside one frame to 65535 units, or a full queue.
        """
        if not self.frame <= duration <= MAX_DURATION:
            raise DTMFError(f"duration {duration} outside {self.frame}-{MAX_DURATION}")
        codes = [event_code(d) for d in digits]
        if len(self._queue) + len(codes) > MAX_QUEUE:
            raise DTMFError(f"more than {MAX_QUEUE} digits queued")
        self._queue.extend((code, duration) for code in codes)

    def next_packets(self, timestamp: int) -> List[Tuple[bytes, int, bool]]:
        """
        The telephone-event packets of this tick, as (payload, RTP
        timestamp, marker), or none if the audio should go out instead.

        @param timestamp: the RTP timestamp this tick's audio would have.
        """
        if self._start is None:
            if self._gap:
                self._gap -= 1
                return []
            if not self._queue:
                return []
            self._code, self._duration = self._queue.popleft()
            self._start = timestamp
            self._elapsed = 0
        self._elapsed += self.frame
        first = self._elapsed == self.frame
        end = self._elapsed >= self._duration
        payload = TelephoneEvent(self._code, end, self.volume, self._elapsed).to_bytes()
        packet = (payload, self._start, first)
        if not end:
            return [packet]
        self._start = None
        self._gap = GAP_FRAMES
        return [packet] + [(payload, packet[1], False)] * (END_REPEATS - 1)

    def clear(self) -> None:
        """Drop the queued digits (an event being sent still ends)."""
        self._queue.clear()


__all__ = [
    "DIGITS",
    "DTMFError",
    "DTMFReceiver",
    "DTMFSender",
    "TelephoneEvent",
    "event_code",
    "parse_event",
]
