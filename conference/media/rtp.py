# -*- test-case-name: tests.unit.media.test_rtp -*-
"""
RTP data packets and reception statistics (RFC 3550 sections 5 and 6.4,
appendices A.1, A.3 and A.8), sans-I/O.

L{parse_rtp} refuses with L{RTPError} whatever is not a well-formed RTP
version 2 packet; L{build_rtp} writes the fixed header the mixer sends.
L{SourceStatistics} follows one synchronisation source: sequence numbers
with their 16-bit wrap, the probation of a new source, loss and
interarrival jitter, as a receiver report block needs them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Optional, Tuple

RTP_VERSION = 2
HEADER = struct.Struct("!BBHII")
HEADER_SIZE = HEADER.size
SEQ_MOD = 1 << 16
TIMESTAMP_MOD = 1 << 32
# RFC 3550 appendix A.1.
MAX_DROPOUT = 3000
MAX_MISORDER = 100
MIN_SEQUENTIAL = 2


class RTPError(ValueError):
    """A datagram that is not a valid RTP packet; the text says why."""


@dataclass(frozen=True)
class RTPPacket:
    """
    One RTP packet, its header fields decoded.

    @ivar csrcs: the contributing sources; C{extension} the profile word
        and data of a header extension, if any.  Padding is removed from
        C{payload}.
    """

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False
    csrcs: Tuple[int, ...] = ()
    extension: Optional[Tuple[int, bytes]] = None


def is_rtcp(data: bytes) -> bool:
    """
    Whether a datagram looks like RTCP rather than RTP: the second octet
    is an RTCP packet type, 192-223 (RFC 5761 section 4).
    """
    return len(data) >= 2 and 192 <= data[1] <= 223


def parse_rtp(data: bytes) -> RTPPacket:
    """
    Decode an RTP packet.

    @raise RTPError: shorter than the header, not version 2, CSRC list,
        extension or padding running past the end, or an RTCP packet type
        where the payload type should be.
    """
    if len(data) < HEADER_SIZE:
        raise RTPError(f"{len(data)} bytes is shorter than an RTP header")
    first, second, sequence, timestamp, ssrc = HEADER.unpack_from(data)
    if first >> 6 != RTP_VERSION:
        raise RTPError(f"RTP version {first >> 6}, not 2")
    if is_rtcp(data):
        raise RTPError(f"RTCP packet type {second} on the RTP port")
    offset = HEADER_SIZE
    count = first & 0x0F
    csrcs: Tuple[int, ...] = ()
    if count:
        end = offset + 4 * count
        if end > len(data):
            raise RTPError(f"{count} CSRCs run past the end")
        csrcs = struct.unpack_from(f"!{count}I", data, offset)
        offset = end
    extension: Optional[Tuple[int, bytes]] = None
    if first & 0x10:
        if offset + 4 > len(data):
            raise RTPError("header extension runs past the end")
        profile, words = struct.unpack_from("!HH", data, offset)
        end = offset + 4 + 4 * words
        if end > len(data):
            raise RTPError("header extension runs past the end")
        extension = (profile, bytes(data[offset + 4 : end]))
        offset = end
    stop = len(data)
    if first & 0x20:
        padding = data[-1]
        if padding == 0 or stop - padding < offset:
            raise RTPError(f"bad padding count {padding}")
        stop -= padding
    return RTPPacket(
        payload_type=second & 0x7F,
        sequence=sequence,
        timestamp=timestamp,
        ssrc=ssrc,
        payload=bytes(data[offset:stop]),
        marker=bool(second & 0x80),
        csrcs=csrcs,
        extension=extension,
    )


def build_rtp(
    payload_type: int,
    sequence: int,
    timestamp: int,
    ssrc: int,
    payload: bytes,
    *,
    marker: bool = False,
) -> bytes:
    """An RTP version 2 packet with no CSRC, extension or padding."""
    second = (0x80 if marker else 0) | (payload_type & 0x7F)
    return (
        HEADER.pack(
            0x80,
            second,
            sequence % SEQ_MOD,
            timestamp % TIMESTAMP_MOD,
            ssrc,
        )
        + payload
    )


def timestamp_delta(later: int, earlier: int) -> int:
    """C{later - earlier} for 32-bit RTP timestamps, across a wrap."""
    delta = (later - earlier) % TIMESTAMP_MOD
    return delta - TIMESTAMP_MOD if delta >= TIMESTAMP_MOD // 2 else delta


@dataclass(frozen=True)
class ReceptionReport:
    """What a receiver report block says about one source (RFC 3550 6.4.1)."""

    ssrc: int
    fraction_lost: int
    cumulative_lost: int
    highest_sequence: int
    jitter: int


class SourceStatistics:
    """
    The state of one synchronisation source as received (RFC 3550
    appendix A.1): sequence validation with wrap and probation, counts for
    loss, and interarrival jitter (A.8) in timestamp units.

    @ivar valid: whether the source has passed probation
        (L{MIN_SEQUENTIAL} packets in sequence).
    @ivar received: packets counted since the source was (re)started.
    """

    def __init__(self, ssrc: int, sequence: int, clock_rate: int = 8000) -> None:
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self._init(sequence)
        # A new source starts on probation (A.1): its first packet is
        # the one before the sequence that confirms it.
        self.max_seq = (sequence - 1) % SEQ_MOD
        self.probation = MIN_SEQUENTIAL
        self.valid = False
        self.jitter = 0.0
        self._transit: Optional[float] = None
        self._expected_prior = 0
        self._received_prior = 0

    def _init(self, sequence: int) -> None:
        self.base_seq = sequence
        self.max_seq = sequence
        self.bad_seq = SEQ_MOD + 1
        self.cycles = 0
        self.received = 0
        self._expected_prior = 0
        self._received_prior = 0

    def update(self, sequence: int) -> bool:
        """
        Count a packet with this sequence number.

        @return: whether it is usable: the source is valid and the
            number is not a jump that still awaits confirmation.
        """
        udelta = (sequence - self.max_seq) % SEQ_MOD
        if self.probation:
            if sequence == (self.max_seq + 1) % SEQ_MOD:
                self.probation -= 1
                self.max_seq = sequence
                if self.probation == 0:
                    self._init(sequence)
                    self.received += 1
                    self.valid = True
                    return True
            else:
                self.probation = MIN_SEQUENTIAL - 1
                self.max_seq = sequence
            return False
        if udelta < MAX_DROPOUT:
            if sequence < self.max_seq:
                self.cycles += SEQ_MOD
            self.max_seq = sequence
        elif udelta <= SEQ_MOD - MAX_MISORDER:
            if sequence == self.bad_seq:
                # Two sequential packets after a big jump: the sender
                # restarted without changing SSRC; resynchronise.
                self._init(sequence)
            else:
                self.bad_seq = (sequence + 1) % SEQ_MOD
                return False
        # else: a duplicate or reordered packet, counted and used.
        self.received += 1
        return True

    def update_jitter(self, timestamp: int, arrival: float) -> None:
        """
        Fold in a packet's transit time: C{arrival} in seconds on the
        receiver's clock, C{timestamp} its RTP timestamp (A.8).
        """
        transit = arrival * self.clock_rate - timestamp
        if self._transit is not None:
            d = abs(transit - self._transit)
            if d < TIMESTAMP_MOD // 2:  # not a timestamp wrap or jump
                self.jitter += (d - self.jitter) / 16.0
        self._transit = transit

    @property
    def extended_max(self) -> int:
        """The highest sequence number seen, with its wrap count."""
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        """How many packets the sequence numbers say were sent."""
        return self.extended_max - self.base_seq + 1

    @property
    def lost(self) -> int:
        """Packets expected but not received (negative with duplicates)."""
        return self.expected - self.received

    def report(self) -> ReceptionReport:
        """
        The report block for this source, starting a new interval for
        the fraction lost (A.3).
        """
        expected = self.expected
        interval_expected = expected - self._expected_prior
        interval_received = self.received - self._received_prior
        self._expected_prior = expected
        self._received_prior = self.received
        interval_lost = interval_expected - interval_received
        if interval_expected == 0 or interval_lost <= 0:
            fraction = 0
        else:
            fraction = (interval_lost << 8) // interval_expected
        lost = max(-0x800000, min(0x7FFFFF, self.lost))
        return ReceptionReport(
            ssrc=self.ssrc,
            fraction_lost=min(fraction, 255),
            cumulative_lost=lost,
            highest_sequence=self.extended_max % TIMESTAMP_MOD,
            jitter=int(self.jitter),
        )


__all__ = [
    "HEADER_SIZE",
    "RTPError",
    "RTPPacket",
    "ReceptionReport",
    "SourceStatistics",
    "build_rtp",
    "is_rtcp",
    "parse_rtp",
    "timestamp_delta",
]
