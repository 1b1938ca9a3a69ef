# -*- test-case-name: tests.unit.media.test_rtcp -*-
"""
RTCP (RFC 3550 section 6), sans-I/O: compound packets read and written.

The mixer sends a sender report (or a receiver report while it sends
nothing) with one report block about the participant's stream and an
SDES CNAME, and reads the participant's reports for loss, jitter and
round-trip time.  Packets other than SR, RR, SDES and BYE (APP, feedback)
are skipped; anything that breaks the framing of a compound packet
(appendix A.2) raises L{RTCPError}.  A packet need not start with SR or
RR: reduced-size RTCP (RFC 5506) and the APP "PING" baresip sends to
open NAT bindings are read (and skipped) too.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple, Union

from conference.media.rtp import ReceptionReport

SR, RR, SDES, BYE, APP = 200, 201, 202, 203, 204
SDES_CNAME = 1
NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900 to 1970

_HEADER = struct.Struct("!BBH")
_SR_INFO = struct.Struct("!IIIII")
_BLOCK = struct.Struct("!IIIIII")


class RTCPError(ValueError):
    """A datagram that is not a valid compound RTCP packet."""


@dataclass(frozen=True)
class SenderInfo:
    """The sender information of an SR: NTP time, RTP time, counts."""

    ntp_seconds: int
    ntp_fraction: int
    rtp_timestamp: int
    packets: int
    octets: int

    @property
    def compact_ntp(self) -> int:
        """The middle 32 bits of the NTP timestamp (an RR's LSR)."""
        return ((self.ntp_seconds & 0xFFFF) << 16) | (self.ntp_fraction >> 16)


@dataclass(frozen=True)
class ReportBlock(ReceptionReport):
    """A report block as received: L{ReceptionReport} plus LSR and DLSR."""

    last_sr: int = 0
    delay_since_last_sr: int = 0


@dataclass
class Report:
    """
    An SR or RR: the reporter's SSRC, its sender info (SR only) and its
    report blocks.
    """

    ssrc: int
    sender: Optional[SenderInfo]
    blocks: List[ReportBlock] = field(default_factory=list)


@dataclass
class Goodbye:
    """A BYE: the sources leaving and the reason, if given."""

    ssrcs: Tuple[int, ...]
    reason: str = ""


@dataclass
class SourceDescription:
    """The CNAMEs of an SDES packet, by SSRC (other items are skipped)."""

    cnames: List[Tuple[int, str]] = field(default_factory=list)


Packet = Union[Report, Goodbye, SourceDescription]


def ntp_time(unix_time: float) -> Tuple[int, int]:
    """The 64-bit NTP timestamp of C{unix_time}, as seconds and fraction."""
    seconds = int(unix_time)
    fraction = int((unix_time - seconds) * (1 << 32)) & 0xFFFFFFFF
    return (seconds + NTP_EPOCH_OFFSET) & 0xFFFFFFFF, fraction


def compact_ntp(unix_time: float) -> int:
    """The middle 32 bits of C{unix_time}'s NTP timestamp, in 1/65536 s."""
    seconds, fraction = ntp_time(unix_time)
    return ((seconds & 0xFFFF) << 16) | (fraction >> 16)


def _blocks(data: bytes, offset: int, count: int, end: int) -> List[ReportBlock]:
    if offset + count * _BLOCK.size > end:
        raise RTCPError(f"{count} report blocks run past the packet")
    blocks = []
    for i in range(count):
        ssrc, loss, highest, jitter, lsr, dlsr = _BLOCK.unpack_from(data, offset + i * 24)
        cumulative = loss & 0xFFFFFF
        if cumulative & 0x800000:
            cumulative -= 0x1000000
        blocks.append(ReportBlock(ssrc, loss >> 24, cumulative, highest, jitter, lsr, dlsr))
    return blocks


def _sdes(data: bytes, offset: int, count: int, end: int) -> SourceDescription:
    sdes = SourceDescription()
    for _ in range(count):
        if offset + 4 > end:
            raise RTCPError("SDES chunk runs past the packet")
        (ssrc,) = struct.unpack_from("!I", data, offset)
        offset += 4
        while True:
            if offset >= end:
                raise RTCPError("SDES items run past the packet")
            kind = data[offset]
            if kind == 0:  # end of the item list; pad to a word
                offset = (offset + 4) & ~3
                break
            if offset + 2 > end or offset + 2 + data[offset + 1] > end:
                raise RTCPError("SDES item runs past the packet")
            length = data[offset + 1]
            if kind == SDES_CNAME:
                text = bytes(data[offset + 2 : offset + 2 + length])
                sdes.cnames.append((ssrc, text.decode("utf-8", "replace")))
            offset += 2 + length
    return sdes


def _bye(data: bytes, offset: int, count: int, end: int) -> Goodbye:
    if offset + 4 * count > end:
        raise RTCPError("BYE sources run past the packet")
    ssrcs = struct.unpack_from(f"!{count}I", data, offset)
    offset += 4 * count
    reason = ""
    if offset < end:
        length = data[offset]
        if offset + 1 + length > end:
            raise RTCPError("BYE reason runs past the packet")
        reason = bytes(data[offset + 1 : offset + 1 + length]).decode("utf-8", "replace")
    return Goodbye(tuple(ssrcs), reason)


def parse_rtcp(data: bytes) -> List[Packet]:
    """
    Read a compound RTCP packet.

    @return: its SR/RR, SDES and BYE packets in order; other types are
        skipped.
    @raise RTCPError: not version 2, not an RTCP packet type, lengths
        that do not add up to the datagram, padding other than on the
        last packet, or a packet whose content runs past its length.
    """
    packets: List[Packet] = []
    offset = 0
    size = len(data)
    if size < _HEADER.size:
        raise RTCPError(f"{size} bytes is shorter than an RTCP header")
    if not 192 <= data[1] <= 223:
        raise RTCPError(f"packet type {data[1]} is not RTCP")
    while offset < size:
        if offset + _HEADER.size > size:
            raise RTCPError("truncated RTCP header")
        first, kind, words = _HEADER.unpack_from(data, offset)
        if first >> 6 != 2:
            raise RTCPError(f"RTCP version {first >> 6}, not 2")
        end = offset + 4 * (words + 1)
        if end > size:
            raise RTCPError(f"packet type {kind} runs past the datagram")
        if first & 0x20:
            if end != size or data[end - 1] == 0 or data[end - 1] > end - offset - 4:
                raise RTCPError("bad RTCP padding")
            end_content = end - data[end - 1]
        else:
            end_content = end
        count = first & 0x1F
        body = offset + 4
        if kind in (SR, RR):
            if body + 4 > end_content:
                raise RTCPError("report without SSRC")
            (ssrc,) = struct.unpack_from("!I", data, body)
            body += 4
            sender = None
            if kind == SR:
                if body + _SR_INFO.size > end_content:
                    raise RTCPError("SR without sender info")
                sender = SenderInfo(*_SR_INFO.unpack_from(data, body))
                body += _SR_INFO.size
            packets.append(Report(ssrc, sender, _blocks(data, body, count, end_content)))
        elif kind == SDES:
            packets.append(_sdes(data, body, count, end_content))
        elif kind == BYE:
            packets.append(_bye(data, body, count, end_content))
        offset = end
    return packets


def _header(kind: int, count: int, body_size: int) -> bytes:
    return _HEADER.pack(0x80 | count, kind, body_size // 4)


def _block_bytes(block: ReceptionReport, last_sr: int, delay: int) -> bytes:
    loss = ((block.fraction_lost & 0xFF) << 24) | (block.cumulative_lost & 0xFFFFFF)
    return _BLOCK.pack(block.ssrc, loss, block.highest_sequence, block.jitter, last_sr, delay)


def build_report(
    ssrc: int,
    sender: Optional[SenderInfo],
    blocks: Sequence[Tuple[ReceptionReport, int, int]] = (),
) -> bytes:
    """
    An SR (with C{sender}) or RR: C{blocks} are (report, LSR, DLSR)
    triples, at most 31.
    """
    body = struct.pack("!I", ssrc)
    if sender is not None:
        body += _SR_INFO.pack(
            sender.ntp_seconds,
            sender.ntp_fraction,
            sender.rtp_timestamp & 0xFFFFFFFF,
            sender.packets & 0xFFFFFFFF,
            sender.octets & 0xFFFFFFFF,
        )
    body += b"".join(_block_bytes(b, lsr, dlsr) for b, lsr, dlsr in blocks[:31])
    return _header(SR if sender is not None else RR, min(len(blocks), 31), len(body)) + body


def build_sdes(ssrc: int, cname: str) -> bytes:
    """An SDES packet with one chunk holding C{cname}."""
    text = cname.encode("utf-8")[:255]
    chunk = struct.pack("!IBB", ssrc, SDES_CNAME, len(text)) + text + b"\0"
    chunk += b"\0" * (-len(chunk) % 4)
    return _header(SDES, 1, len(chunk)) + chunk


def build_bye(ssrc: int, reason: str = "") -> bytes:
    """A BYE for C{ssrc}, with an optional reason."""
    body = struct.pack("!I", ssrc)
    if reason:
        text = reason.encode("utf-8")[:255]
        body += bytes([len(text)]) + text
        body += b"\0" * (-len(body) % 4)
    return _header(BYE, 1, len(body)) + body


__all__ = [
    "Goodbye",
    "RTCPError",
    "Report",
    "ReportBlock",
    "SenderInfo",
    "SourceDescription",
    "build_bye",
    "build_report",
    "build_sdes",
    "compact_ntp",
    "ntp_time",
    "parse_rtcp",
]
