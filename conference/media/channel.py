# -*- test-case-name: tests.unit.media.test_channel -*-
"""
One participant's media as the mixer sees it, sans-I/O: what may come in
(the latch rule, the SSRC in use, the payload types negotiated), the
jitter buffer it feeds, the RTP stream sent back, RTCP both ways, DTMF
both ways, mute and gain.  C{last_heard} tells when the channel last
accepted a packet (the service's activity; the focus times calls out).

The latch rule (symmetric RTP, RFC 4961 in spirit): until a packet is
accepted, the RTP port takes packets only from the address and port the
SDP names or, when a NAT changed the port, from the first packet coming
from the SDP's host; that address is then latched and every other
source is dropped as a stranger.  RTCP latches alike, on its own port.
Media is sent to the latched address (where the peer's packets really
come from), or to the SDP's address before anything was latched.  A new
SDP from the peer (re-INVITE, UPDATE) naming another address unlatches.

With SRTP (L{conference.media.srtp}) nothing latches before it
authenticated: a packet from the SDP's host is unprotected first, and
only one whose tag verifies latches the port, so a stranger who guesses
the port and forges the source cannot capture it.  Forged, tampered and
replayed packets are counted (C{unauthenticated}, C{replayed}) and dropped.

Within the latched source one SSRC is followed; a different SSRC takes
over only after L{MIN_SEQUENTIAL} packets in sequence with no packet of
the current one between them, so a storm of random SSRCs never reaches
the jitter buffer.

Each negotiated payload type has its own decoder (Opus and G.722 keep
state per stream); a payload it refuses is dropped and counted as
malformed.  RTP timestamps, in the codec's clock (48 kHz for Opus, 8 kHz
for G.711 and G.722), are unwrapped and scaled to the internal rate
before the jitter buffer; what we send is encoded by one encoder, made
for the send codec and the peer's C{a=fmtp}, and stamped in its clock.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Dict, Hashable, List, Mapping, NamedTuple, Optional, Tuple

import numpy as np
import numpy.typing as npt

from conference.media.codecs import (
    FRAME_SAMPLES,
    INTERNAL_RATE,
    AudioCodec,
    CodecError,
    Decoder,
    Encoder,
    Samples,
)
from conference.media.dtmf import DTMFError, DTMFReceiver, DTMFSender
from conference.media.jitter import JitterBuffer
from conference.media.rtcp import (
    Goodbye,
    Report,
    RTCPError,
    SenderInfo,
    build_bye,
    build_report,
    build_sdes,
    compact_ntp,
    ntp_time,
    parse_rtcp,
)
from conference.media.rtp import (
    MIN_SEQUENTIAL,
    RTPError,
    SourceStatistics,
    build_rtp,
    parse_rtp,
    timestamp_delta,
)
from conference.media.srtp import SRTPContext, SRTPError, SRTPKeys
from conference.sip.randomness import PooledSystemRandom

Address = Tuple[str, int]

# Bigger than any sane audio packet (60 ms of G.711 or G.722 is 492 bytes,
# Opus at most 1275 bytes a frame): refused.
MAX_PACKET_SIZE = 1500
# Datagrams (RTP and RTCP) one participant may send per tick; the rest of
# a flood is dropped before it is parsed.
MAX_PACKETS_PER_TICK = 25
RTCP_INTERVAL = 5.0
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


class Datagram(NamedTuple):
    """Something to send: for which participant, on which port, where."""

    key: Hashable
    rtcp: bool
    data: bytes
    address: Address


@dataclass
class Counters:
    """
    What a participant's ports saw and sent.  Every datagram received is
    counted once more: as C{accepted} (RTP), C{rtcp_accepted}, or under
    exactly one reason for dropping it (see L{dropped}).
    """

    received: int = 0
    accepted: int = 0
    malformed: int = 0
    oversized: int = 0
    strangers: int = 0
    flood: int = 0
    wrong_payload: int = 0
    ssrc_mismatch: int = 0
    ssrc_changes: int = 0
    unconfirmed: int = 0
    ignored: int = 0
    unauthenticated: int = 0
    replayed: int = 0
    rtcp_received: int = 0
    rtcp_accepted: int = 0
    rtcp_malformed: int = 0
    dtmf: int = 0
    sent: int = 0
    sent_octets: int = 0

    @property
    def dropped(self) -> int:
        """RTP and RTCP datagrams not used, whatever the reason."""
        return (
            self.malformed
            + self.oversized
            + self.strangers
            + self.flood
            + self.wrong_payload
            + self.ssrc_mismatch
            + self.unconfirmed
            + self.ignored
            + self.unauthenticated
            + self.replayed
            + self.rtcp_malformed
        )

    def add(self, other: Counters) -> None:
        """Add C{other}'s counts to these (totals over closed channels)."""
        for name in _COUNTER_NAMES:
            setattr(self, name, getattr(self, name) + getattr(other, name))


#: The names of the L{Counters} (read once: C{fields} is costly per call).
_COUNTER_NAMES = tuple(field.name for field in fields(Counters))


@lru_cache(maxsize=1024)
def _canonical(host: str) -> Optional[str]:
    """
    The canonical text of an IP address (IPv6 compressed); L{None} for a
    host name or the unspecified address (C{0.0.0.0}: RFC 2543 hold).
    Remembered for the last addresses: each join's SDP and each source a
    port has not latched yet names one, and they repeat.
    """
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    return None if address.is_unspecified else str(address)


class Latch:
    """
    The source a port accepts: see the module's latch rule.

    @ivar expected: the address the SDP names, or L{None} (unknown yet,
        or not an IP address: then nothing is accepted).
    @ivar latched: the source accepted, once one was.
    """

    def __init__(self, expected: Optional[Address] = None) -> None:
        host = _canonical(expected[0]) if expected is not None else None
        self.expected = (host, expected[1]) if host is not None and expected is not None else None
        self.latched: Optional[Address] = None

    def allows(self, source: Address) -> bool:
        """Whether a datagram from C{source} would be taken; latches nothing."""
        if self.latched is not None:
            return source == self.latched
        expected = self.expected
        return expected is not None and _canonical(source[0]) == expected[0]

    def accept(self, source: Address) -> bool:
        """Whether a datagram from C{source} is taken (latching if first)."""
        if not self.allows(source):
            return False
        self.latched = source
        return True

    @property
    def destination(self) -> Optional[Address]:
        """Where to send: the latched source, else the SDP's address."""
        return self.latched if self.latched is not None else self.expected


class Channel:
    """
    One participant in the mixer.

    @ivar key: identifies the participant to the caller.
    @ivar mute_in: nobody hears this participant; C{mute_out}: this
        participant hears nothing (silence is still sent).
    @ivar gain_in: linear gain of what this participant says, C{gain_out}
        of what they hear.
    @ivar last_heard: when an acceptable RTP or RTCP packet last came.
    @ivar srtp: the SRTP context when the stream is SRTP, else L{None}.
    @ivar remote_loss: (fraction lost of 256, cumulative lost, jitter) the
        participant last reported about our stream; C{round_trip} the
        round-trip time their last report gave, in seconds.
    """

    def __init__(
        self,
        key: Hashable,
        *,
        now: float,
        cname: str,
        rng: Optional[random.Random] = None,
        frame: int = FRAME_SAMPLES,
        jitter: Optional[JitterBuffer] = None,
    ) -> None:
        rng = rng or PooledSystemRandom()
        self.key = key
        self.cname = cname
        self.frame = frame
        # One draw (one read of the system's entropy) for the three.
        bits = rng.getrandbits(80)
        self.ssrc = bits >> 48
        self._sequence = (bits >> 32) & 0xFFFF
        self._timestamp = bits & 0xFFFFFFFF
        self._rng = rng
        self.jitter = jitter or JitterBuffer(frame=frame)
        self.counters = Counters()
        self.rtp = Latch()
        self.rtcp = Latch()
        self.codecs: Mapping[int, AudioCodec] = {}
        self.srtp: Optional[SRTPContext] = None
        self.fmtp: Mapping[int, str] = {}
        self.encoder: Optional[Encoder] = None
        self._decoders: Dict[int, Decoder] = {}
        # The RTP clock's advance per frame: 8 kHz until configured.
        self._step = frame * 8000 // INTERNAL_RATE
        self._rtp_last: Optional[int] = None
        self._rtp_unwrapped = 0
        self.send_pt: Optional[int] = None
        self.event_pt: Optional[int] = None
        self.direction = "inactive"
        self.mute_in = self.mute_out = False
        self.gain_in = self.gain_out = 1.0
        self.last_heard: Optional[float] = None
        self._source: Optional[SourceStatistics] = None
        self._candidate: Optional[SourceStatistics] = None
        self._budget = 0
        self._started = False
        self._dtmf_in = DTMFReceiver()
        self._dtmf_out = DTMFSender(self._step)
        self._next_rtcp = now + RTCP_INTERVAL * rng.uniform(0.5, 1.5)
        self._sent_since_report = False
        #: Whether an RTCP report went out (RTP sent is C{counters.sent}).
        self._reported = False
        self._last_sr: Optional[Tuple[int, float]] = None
        self.remote_loss: Optional[Tuple[int, int, int]] = None
        self.round_trip: Optional[float] = None
        self.bye_received = False
        self._tone: Optional[npt.NDArray[np.float32]] = None
        self._tone_at = 0

    # Negotiation ---------------------------------------------------------

    def configure(
        self,
        *,
        remote: Optional[Address],
        codecs: Mapping[int, AudioCodec],
        send_pt: int,
        event_pt: Optional[int] = None,
        direction: str = "sendrecv",
        rtcp_remote: Optional[Address] = None,
        srtp: Optional[SRTPKeys] = None,
        fmtp: Optional[Mapping[int, str]] = None,
    ) -> None:
        """
        Apply the outcome of an offer/answer exchange.  Decoders and the
        encoder whose codec and parameters did not change are kept (a
        session refresh does not restart Opus).

        @param remote: the peer's RTP address from its SDP; RTCP is
            C{rtcp_remote}, by default the next port.
        @param codecs: the voice payload types the peer may send, by
            number; we send with C{send_pt}, one of them.
        @param direction: what this side does, as in the SDP answer.
        @param srtp: the SDES keys when the stream is SRTP; a context that
            exists keeps the state of each direction whose key is unchanged.
        @param fmtp: the peer's C{a=fmtp} parameters, by payload type.
        """
        if send_pt not in codecs:
            raise ValueError(f"payload type {send_pt} is not among the codecs")
        if direction not in DIRECTIONS:
            raise ValueError(f"unknown direction {direction!r}")
        if rtcp_remote is None and remote is not None:
            rtcp_remote = (remote[0], remote[1] + 1)
        if remote != self.rtp.expected or self.rtp.expected is None:
            self.rtp = Latch(remote)
            self.rtcp = Latch(rtcp_remote)
        if srtp is None:
            self.srtp = None
        elif self.srtp is None:
            self.srtp = SRTPContext(srtp)
        else:
            self.srtp.rekey(srtp)
        fmtp = dict(fmtp or {})
        for pt in list(self._decoders):
            if codecs.get(pt) is not self.codecs.get(pt) or fmtp.get(pt) != self.fmtp.get(pt):
                del self._decoders[pt]
        codec = codecs[send_pt]
        old = self.encoder
        old_fmtp = self.fmtp.get(self.send_pt) if self.send_pt is not None else None
        if old is None or old.codec is not codec or fmtp.get(send_pt) != old_fmtp:
            self.encoder = codec.encoder(fmtp.get(send_pt))
        self.codecs = dict(codecs)
        self.fmtp = fmtp
        self._step = self._dtmf_out.frame = codec.frame_step()
        self.send_pt = send_pt
        self.event_pt = event_pt
        self.direction = direction

    @property
    def clock(self) -> int:
        """The RTP clock rate of what we send (8000 until configured)."""
        codec = self.codecs.get(self.send_pt) if self.send_pt is not None else None
        return codec.clock if codec is not None else 8000

    @property
    def sends(self) -> bool:
        """Whether we send media to this participant."""
        return self.direction in ("sendrecv", "sendonly") and self.send_pt is not None

    @property
    def receives(self) -> bool:
        """Whether we take media from this participant."""
        return self.direction in ("sendrecv", "recvonly")

    def set_gain(
        self, incoming_db: Optional[float] = None, outgoing_db: Optional[float] = None
    ) -> None:
        """Set the gains in decibels (L{None} leaves one as it is)."""
        if incoming_db is not None:
            self.gain_in = 10.0 ** (incoming_db / 20.0)
        if outgoing_db is not None:
            self.gain_out = 10.0 ** (outgoing_db / 20.0)

    # Receiving -----------------------------------------------------------

    def _admit(self, data: bytes, source: Address, rtcp: bool) -> Optional[bytes]:
        """
        The flood, size and latch rules, and SRTP: the datagram to parse
        (decrypted), or L{None} when it is dropped (and counted).
        """
        counters = self.counters
        if self._budget >= MAX_PACKETS_PER_TICK:
            counters.flood += 1
            return None
        self._budget += 1
        if len(data) > MAX_PACKET_SIZE:
            counters.oversized += 1
            return None
        latch = self.rtcp if rtcp else self.rtp
        srtp = self.srtp
        if srtp is None:
            if not latch.accept(source):
                counters.strangers += 1
                return None
            return data
        if not latch.allows(source):
            counters.strangers += 1
            return None
        try:
            data = srtp.unprotect_rtcp(data) if rtcp else srtp.unprotect(data)
        except SRTPError as e:
            if e.reason == "replayed":
                counters.replayed += 1
            elif e.reason == "unauthenticated":
                counters.unauthenticated += 1
            elif rtcp:
                counters.rtcp_malformed += 1
            else:
                counters.malformed += 1
            return None
        latch.accept(source)
        return data

    def receive_rtp(self, data: bytes, source: Address, now: float) -> Optional[str]:
        """
        Take a datagram from the RTP port.

        @return: a DTMF digit (or C{flash}) when it starts an event.
        """
        counters = self.counters
        counters.received += 1
        plain = self._admit(data, source, False)
        if plain is None:
            return None
        try:
            packet = parse_rtp(plain)
        except RTPError:
            counters.malformed += 1
            return None
        self.last_heard = now
        if not self.receives:
            counters.ignored += 1
            return None
        if not self._follow(packet.ssrc, packet.sequence):
            return None
        assert self._source is not None
        pt = packet.payload_type
        codec = self.codecs.get(pt)
        if codec is not None:
            self._source.clock_rate = codec.clock
        self._source.update_jitter(packet.timestamp, now)
        if pt == self.event_pt:
            try:
                digit = self._dtmf_in.receive(packet.timestamp, packet.payload)
            except DTMFError:
                counters.malformed += 1
                return None
            counters.accepted += 1
            if digit is not None:
                counters.dtmf += 1
            return digit
        if codec is None:
            counters.wrong_payload += 1
            return None
        decoder = self._decoders.get(pt)
        if decoder is None:
            decoder = self._decoders[pt] = codec.decoder(self.fmtp.get(pt))
        try:
            samples = decoder.decode(packet.payload)
        except CodecError:
            counters.malformed += 1
            return None
        counters.accepted += 1
        timestamp = self._internal_timestamp(packet.timestamp, codec)
        self.jitter.push(timestamp, samples, now, packet.marker)
        return None

    def _internal_timestamp(self, timestamp: int, codec: AudioCodec) -> int:
        """
        A packet's RTP timestamp in samples at the internal rate: unwrapped
        (near the last one seen), scaled from the codec's clock, and
        wrapped again to 32 bits for the jitter buffer.
        """
        last = self._rtp_last
        if last is None:
            unwrapped = timestamp
        else:
            unwrapped = self._rtp_unwrapped + timestamp_delta(timestamp, last)
        self._rtp_last, self._rtp_unwrapped = timestamp, unwrapped
        return (unwrapped * INTERNAL_RATE // codec.clock) & 0xFFFFFFFF

    def _follow(self, ssrc: int, sequence: int) -> bool:
        """The SSRC rule: whether this packet belongs to the source followed."""
        counters = self.counters
        source = self._source
        if source is None:
            source = self._source = SourceStatistics(ssrc, sequence, self.clock)
        elif ssrc != source.ssrc:
            candidate = self._candidate
            if candidate is None or candidate.ssrc != ssrc:
                self._candidate = SourceStatistics(ssrc, sequence)
                self._candidate.update(sequence)
                counters.ssrc_mismatch += 1
                return False
            if not candidate.update(sequence):
                counters.ssrc_mismatch += 1
                return False
            self._source, self._candidate = candidate, None
            self.jitter.reset()
            self._rtp_last = None
            for decoder in self._decoders.values():
                decoder.reset()
            counters.ssrc_changes += 1
            return True
        self._candidate = None
        if not source.update(sequence):
            counters.unconfirmed += 1
            return False
        return True

    def receive_rtcp(self, data: bytes, source: Address, now: float) -> None:
        """Take a datagram from the RTCP port: reports about our stream, BYE."""
        counters = self.counters
        counters.rtcp_received += 1
        plain = self._admit(data, source, True)
        if plain is None:
            return
        try:
            packets = parse_rtcp(plain)
        except RTCPError:
            counters.rtcp_malformed += 1
            return
        counters.rtcp_accepted += 1
        self.last_heard = now
        for packet in packets:
            if isinstance(packet, Report):
                if packet.sender is not None:
                    self._last_sr = (packet.sender.compact_ntp, now)
                for block in packet.blocks:
                    if block.ssrc != self.ssrc:
                        continue
                    self.remote_loss = (block.fraction_lost, block.cumulative_lost, block.jitter)
                    if block.last_sr:
                        delay = compact_ntp(now) - block.last_sr - block.delay_since_last_sr
                        self.round_trip = (delay & 0xFFFFFFFF) / 65536.0
            elif (
                isinstance(packet, Goodbye)
                and self._source is not None
                and self._source.ssrc in packet.ssrcs
            ):
                self.bye_received = True

    # Quality, for /metrics -------------------------------------------------

    def inbound_quality(self) -> Optional[Tuple[float, float]]:
        """
        (fraction lost, interarrival jitter in seconds) of the participant's
        stream as we receive it, since it started; L{None} before it is valid.
        """
        source = self._source
        if source is None or not source.valid or source.expected <= 0:
            return None
        lost = max(0, source.lost) / source.expected
        return lost, source.jitter / source.clock_rate

    def outbound_quality(self) -> Optional[Tuple[float, float]]:
        """
        (fraction lost, jitter in seconds) of our stream as the participant
        last reported it in RTCP; L{None} before any report.
        """
        if self.remote_loss is None:
            return None
        fraction, _, jitter = self.remote_loss
        return fraction / 256.0, jitter / self.clock

    # The mixer's tick ------------------------------------------------------

    def pop(self) -> Optional[Samples]:
        """This tick's frame from the participant (None: silence); resets the flood budget."""
        self._budget = 0
        if not self.receives:
            return None
        return self.jitter.pop()

    def play(self, tone: npt.NDArray[np.float32]) -> None:
        """
        Mix C{tone} (int16-scale samples) over what the participant hears,
        from the next tick on; it replaces a tone still playing.
        """
        self._tone = tone
        self._tone_at = 0

    @property
    def playing(self) -> bool:
        """Whether a tone is being played to the participant."""
        return self._tone is not None

    def overlay(self) -> Optional[npt.NDArray[np.float32]]:
        """This tick's frame of the tone being played (L{None}: no tone)."""
        tone = self._tone
        if tone is None:
            return None
        start = self._tone_at
        chunk = tone[start : start + self.frame]
        self._tone_at = start + self.frame
        if self._tone_at >= len(tone):
            self._tone = None
        if len(chunk) < self.frame:
            chunk = np.pad(chunk, (0, self.frame - len(chunk)))
        return chunk

    def packets(self, payload: Optional[bytes]) -> List[Datagram]:
        """
        This tick's RTP packets to the participant: C{payload} (a frame
        encoded by L{encoder}), or telephone events while DTMF is being
        sent.  The RTP clock advances one frame either way.
        """
        timestamp = self._timestamp
        self._timestamp = (timestamp + self._step) & 0xFFFFFFFF
        destination = self.rtp.destination
        send_pt = self.send_pt
        if not self.sends or destination is None or send_pt is None:
            return []
        out: List[Datagram] = []
        events = self._dtmf_out.next_packets(timestamp) if self.event_pt is not None else []
        if events:
            for event, start, marker in events:
                out.append(self._datagram(self.event_pt or 0, start, event, marker, destination))
        elif payload is not None:
            out.append(self._datagram(send_pt, timestamp, payload, not self._started, destination))
            self._started = True
        return out

    def _datagram(
        self, pt: int, timestamp: int, payload: bytes, marker: bool, destination: Address
    ) -> Datagram:
        data = build_rtp(pt, self._sequence, timestamp, self.ssrc, payload, marker=marker)
        self._sequence = (self._sequence + 1) & 0xFFFF
        if self.srtp is not None:
            data = self.srtp.protect(data)
        self.counters.sent += 1
        self.counters.sent_octets += len(payload)
        self._sent_since_report = True
        return Datagram(self.key, False, data, destination)

    def skip(self, frames: int) -> None:
        """Frames the clock missed: advance the RTP clock and the jitter buffer."""
        self._timestamp = (self._timestamp + frames * self._step) & 0xFFFFFFFF
        for _ in range(min(frames, 50)):
            self.jitter.pop()

    def send_dtmf(self, digits: str, duration: int = 800) -> None:
        """
        Queue RFC 4733 events to this participant, each C{duration} units
        of the RTP clock (L{clock}: telephone-event is sent on the audio's
        timestamps).

        @raise DTMFError: a bad digit or duration, a full queue, or no
            telephone-event negotiated.
        """
        if self.event_pt is None:
            raise DTMFError("the participant did not negotiate telephone-event")
        self._dtmf_out.queue(digits, duration)

    # RTCP out ------------------------------------------------------------

    def _compound(self, now: float) -> bytes:
        blocks = []
        if self._source is not None and self._source.valid:
            lsr, dlsr = 0, 0
            if self._last_sr is not None:
                lsr = self._last_sr[0]
                dlsr = int((now - self._last_sr[1]) * 65536) & 0xFFFFFFFF
            blocks.append((self._source.report(), lsr, dlsr))
        sender = None
        if self._sent_since_report:
            seconds, fraction = ntp_time(now)
            c = self.counters
            sender = SenderInfo(seconds, fraction, self._timestamp, c.sent, c.sent_octets)
        self._sent_since_report = False
        return build_report(self.ssrc, sender, blocks) + build_sdes(self.ssrc, self.cname)

    def rtcp_report(self, now: float) -> List[Datagram]:
        """The SR or RR compound packet to send if one is due (every ~5 s)."""
        destination = self.rtcp.destination
        if now < self._next_rtcp or destination is None:
            return []
        self._next_rtcp = now + RTCP_INTERVAL * self._rng.uniform(0.5, 1.5)
        self._reported = True
        return [Datagram(self.key, True, self._seal(self._compound(now)), destination)]

    def goodbye(self, now: float, reason: str = "") -> List[Datagram]:
        """
        The compound packet with a BYE, to send when the session ends;
        none when we never sent RTP or RTCP in it (RFC 3550 section 6.3.7:
        such a participant must not send a BYE, the peer never learnt our
        SSRC), as for calls that end before the first frame.
        """
        destination = self.rtcp.destination
        if destination is None or not (self.counters.sent or self._reported):
            return []
        compound = self._compound(now) + build_bye(self.ssrc, reason)
        return [Datagram(self.key, True, self._seal(compound), destination)]

    def _seal(self, compound: bytes) -> bytes:
        """C{compound} RTCP as sent: SRTCP-protected when the stream is SRTP."""
        return compound if self.srtp is None else self.srtp.protect_rtcp(compound)


__all__ = [
    "MAX_PACKETS_PER_TICK",
    "MAX_PACKET_SIZE",
    "MIN_SEQUENTIAL",
    "Channel",
    "Counters",
    "Datagram",
    "Latch",
]
