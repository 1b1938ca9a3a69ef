# -*- test-case-name: tests.unit.test_offeranswer -*-
"""
The offer/answer model of RFC 3264 for the focus's audio, sans-I/O.

A media service holds one L{OfferAnswer} per participant: it answers their
offers (choosing among the codecs we speak, rejecting with port 0 what we
cannot do), makes an offer when an INVITE carried none, checks the answer
that comes back in the ACK, and keeps the C{o=} version counting.

SDES-SRTP (RFC 4568): under the C{srtp} policy (L{SRTP_POLICIES}, the
C{--srtp} option) an C{RTP/SAVP} offer is answered in C{RTP/SAVP} with
the first usable C{a=crypto} line's tag and suite and a fresh key of
ours, kept for the session's later answers; an C{RTP/AVP} offer that
carries a usable C{a=crypto} (best-effort SRTP, as baresip's C{srtp}
offers) is answered with a key too, so its media is SRTP.  The keys end
up in the L{Stream}; the media service keys libsrtp with them.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

from conference.sdp import (
    SRTP_SUITES,
    Attribute,
    Connection,
    Crypto,
    Media,
    Origin,
    SDPError,
    SessionDescription,
    Timing,
    addrtype_of,
    cryptos_of,
    direction_of,
    fmtp_of,
    parse_sdp,
    rtpmap_of,
    serialize_sdp,
)
from conference.sip.errors import RemoteProtocolError

AUDIO_PROTO = "RTP/AVP"
SECURE_PROTO = "RTP/SAVP"
DEFAULT_TELEPHONE_EVENT_PT = 101
DEFAULT_TELEPHONE_EVENT_FMTP = "0-16"
# Where our offers number codecs without a static payload type.
FIRST_DYNAMIC_PT = 96

# The state of an OfferAnswer (RFC 3264 section 4; RFC 6337 section 3).
IDLE = "idle"
OFFER_SENT = "offer-sent"
STABLE = "stable"

# Warning codes of RFC 3261 section 20.43.
WARN_TRANSPORT = (302, "Incompatible transport protocol")
WARN_MEDIA_TYPE = (304, "Media type not available")
WARN_FORMAT = (305, "Incompatible media format")
WARN_MISC = (399, "Miscellaneous warning")
WARN_SRTP_OFF = (302, "Incompatible transport protocol: SRTP is off here")
WARN_SRTP_REQUIRED = (302, "Incompatible transport protocol: SRTP (RTP/SAVP) required")

# The SRTP policies (--srtp): never (SAVP offers refused), when offered
# (the default), always (plain RTP offers refused).
SRTP_OFF = "off"
SRTP_OPTIONAL = "optional"
SRTP_REQUIRED = "required"
SRTP_POLICIES = (SRTP_OFF, SRTP_OPTIONAL, SRTP_REQUIRED)

Warning = Tuple[int, str]


@dataclass(frozen=True)
class Codec:
    """
    An RTP payload format we speak: encoding name, clock rate, static type.

    @ivar fmtp: the C{a=fmtp} parameters we put in our offers and answers
        for it (what we prefer to receive, as RFC 7587 has it for Opus);
        L{None} echoes an offer's parameters in the answer and offers none.
    """

    name: str
    clock: int
    static_pt: Optional[int] = None
    channels: int = 1
    fmtp: Optional[str] = None

    @property
    def is_event(self) -> bool:
        """Whether this is RFC 4733 telephone-event (not a voice codec)."""
        return self.name.lower() == "telephone-event"

    def matches(self, name: str, clock: int, channels: int) -> bool:
        """Whether an C{a=rtpmap} of C{name/clock/channels} names this codec."""
        return (
            name.lower() == self.name.lower() and clock == self.clock and channels == self.channels
        )


PCMU = Codec("PCMU", 8000, 0)
PCMA = Codec("PCMA", 8000, 8)
#: G.722's RTP clock is 8 kHz although it samples at 16 kHz (RFC 3551 4.5.2).
G722 = Codec("G722", 8000, 9)
#: Opus is always C{opus/48000/2} in SDP, whatever is sent (RFC 7587 section 7).
OPUS = Codec("opus", 48000, None, 2)
TELEPHONE_EVENT = Codec("telephone-event", 8000)
#: telephone-event on Opus's clock, as WebRTC offers it beside Opus.
TELEPHONE_EVENT_48K = Codec("telephone-event", 48000)
SUPPORTED_CODECS: Tuple[Codec, ...] = (PCMU, PCMA, TELEPHONE_EVENT)


@dataclass
class Stream:
    """
    The audio stream an exchange settled on.

    @ivar index: which m-line (from 0).
    @ivar address: the peer's RTP address; C{port} its RTP port.
    @ivar codecs: (payload type, codec) the peer accepted, preferred
        first, telephone-event excluded; send with the first.
    @ivar telephone_event: the telephone-event payload type, or L{None}.
    @ivar direction: what this side does (C{sendrecv}, C{sendonly},
        C{recvonly}, C{inactive}).
    @ivar local_crypto: for SRTP, the C{a=crypto} we send with (our
        key); C{remote_crypto} the peer's.  Both L{None} for plain RTP.
    @ivar fmtp: the peer's C{a=fmtp} parameters of those payload types
        that have some (what it prefers to receive).
    """

    index: int
    address: str
    port: int
    codecs: List[Tuple[int, Codec]] = field(default_factory=list)
    telephone_event: Optional[int] = None
    direction: str = "sendrecv"
    local_crypto: Optional[Crypto] = field(default=None, repr=False)
    remote_crypto: Optional[Crypto] = field(default=None, repr=False)
    fmtp: Dict[int, str] = field(default_factory=dict)

    @property
    def secure(self) -> bool:
        """Whether the stream is SRTP."""
        return self.local_crypto is not None and self.remote_crypto is not None

    @property
    def expects_media(self) -> bool:
        """
        Whether the peer is to send us media: this side receives
        (C{sendrecv}, C{recvonly}) and the peer's address is not the
        unspecified one (C{c=0.0.0.0}, how RFC 2543 held a call).  A
        participant who holds sends nothing, so no inactivity timeout runs.
        """
        if self.direction not in ("sendrecv", "recvonly"):
            return False
        try:
            return not ipaddress.ip_address(self.address.strip("[]")).is_unspecified
        except ValueError:  # a host name: media is still expected from it
            return True


def not_acceptable(warning: Warning, agent: str) -> RemoteProtocolError:
    """A 488 Not Acceptable Here carrying C{Warning: code agent "text"}."""
    code, text = warning
    return RemoteProtocolError(
        "Not Acceptable Here", 488, [("Warning", f'{code} {agent} "{text}"')]
    )


def codec_of(media: Media, fmt: str, codecs: Sequence[Codec]) -> Optional[Codec]:
    """
    Which of C{codecs} payload type C{fmt} of C{media} carries: by its
    C{a=rtpmap}, else by the static assignments of RFC 3551.
    """
    rtpmap = rtpmap_of(media, fmt)
    if rtpmap is not None:
        for codec in codecs:
            if codec.matches(*rtpmap):
                return codec
        return None
    if fmt.isdigit():
        for codec in codecs:
            if codec.static_pt is not None and codec.static_pt == int(fmt):
                return codec
    return None


def answer_direction(offered: str, ours: str) -> str:
    """
    The direction to answer C{offered} with, when this side is able to do
    C{ours} (RFC 3264 section 6.1).
    """
    can_send = ours in ("sendrecv", "sendonly")
    can_receive = ours in ("sendrecv", "recvonly")
    if offered == "sendrecv":
        return ours
    if offered == "sendonly":
        return "recvonly" if can_receive else "inactive"
    if offered == "recvonly":
        return "sendonly" if can_send else "inactive"
    return "inactive"


_REVERSE = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}
# For each direction offered, the directions an answer may take.
_ALLOWED_ANSWERS = {
    "sendrecv": ("sendrecv", "sendonly", "recvonly", "inactive"),
    "sendonly": ("recvonly", "inactive"),
    "recvonly": ("sendonly", "inactive"),
    "inactive": ("inactive",),
}


def _choose(media: Media, codecs: Sequence[Codec]) -> List[Tuple[str, Codec]]:
    """
    The offered formats we speak, in the offer's order; one telephone-event
    at most, preferably at the clock rate of the first voice codec (RFC
    4733 section 2.1).
    """
    offered = [(fmt, codec_of(media, fmt, codecs)) for fmt in media.formats]
    voices = [(fmt, codec) for fmt, codec in offered if codec is not None and not codec.is_event]
    if not voices:
        return []
    events = [(fmt, codec) for fmt, codec in offered if codec is not None and codec.is_event]
    clock = voices[0][1].clock
    event = next((e for e in events if e[1].clock == clock), events[0] if events else None)
    return [
        (fmt, codec)
        for fmt, codec in offered
        if codec is not None and (fmt, codec) in (*voices, event)
    ]


def _no_crypto(reason: Optional[str]) -> Warning:
    return (399, f"No usable crypto attribute: {reason or 'none given'}")


def _judge(media: Media, codecs: Sequence[Codec], srtp: str) -> Tuple[Optional[Crypto], Warning]:
    """
    Whether an offered m-line can be taken under the C{srtp} policy: the
    offered crypto line to key SRTP with (L{None}: plain RTP) and, when it
    cannot be taken, the Warning saying why (code 0 when it can).
    """
    proto = media.proto.upper()
    if media.media != "audio" or media.port == 0:
        return None, WARN_MEDIA_TYPE
    if proto not in (AUDIO_PROTO, SECURE_PROTO):
        return None, WARN_TRANSPORT
    if not _choose(media, codecs):
        return None, WARN_FORMAT
    if srtp == SRTP_OFF:
        return None, WARN_SRTP_OFF if proto == SECURE_PROTO else (0, "")
    usable, reason = cryptos_of(media)
    if usable:
        return usable[0], (0, "")
    if proto == SECURE_PROTO:
        return None, _no_crypto(reason)
    if srtp == SRTP_REQUIRED:
        return None, WARN_SRTP_REQUIRED
    return None, (0, "")


def choose_stream(
    offer: SessionDescription,
    codecs: Sequence[Codec],
    warn_agent: str,
    prefer: Optional[int] = None,
    srtp: str = SRTP_OFF,
) -> Tuple[int, Optional[Crypto]]:
    """
    The m-line to accept and, for SRTP, the offered crypto line to key
    it with: C{prefer} if acceptable, else the first acceptable SRTP
    stream, else the first acceptable one.  An audio stream is acceptable
    when it offers a voice codec we speak over C{RTP/AVP} or C{RTP/SAVP},
    as the C{srtp} policy (L{SRTP_POLICIES}) allows.

    @raise RemoteProtocolError: 488 with a Warning when none fits: the
        reason of the first audio stream over a profile we know (305 no
        common codec, 302 SRTP off or required, 399 no usable
        C{a=crypto}), else 302 (a profile we lack) or 304 (no audio).
    """
    judged = [_judge(media, codecs, srtp) for media in offer.media]
    if prefer is not None and prefer < len(judged) and not judged[prefer][1][0]:
        return prefer, judged[prefer][0]
    fits = [i for i, (_, warning) in enumerate(judged) if not warning[0]]
    secure = [i for i in fits if judged[i][0] is not None]
    if secure or fits:
        index = (secure or fits)[0]
        return index, judged[index][0]
    for media, (_, warning) in zip(offer.media, judged):
        if media.media == "audio" and media.port != 0 and warning != WARN_TRANSPORT:
            raise not_acceptable(warning, warn_agent)
    if any(m.media == "audio" and m.port != 0 for m in offer.media):
        raise not_acceptable(WARN_TRANSPORT, warn_agent)
    raise not_acceptable(WARN_MEDIA_TYPE, warn_agent)


def select_stream(
    offer: SessionDescription,
    codecs: Sequence[Codec],
    warn_agent: str,
    prefer: Optional[int] = None,
    srtp: str = SRTP_OFF,
) -> int:
    """
    The index of the m-line to accept; see L{choose_stream}.

    @raise RemoteProtocolError: 488 with a Warning when none fits.
    """
    return choose_stream(offer, codecs, warn_agent, prefer, srtp)[0]


def _parameters(media: Media, chosen: Sequence[Tuple[str, Codec]]) -> Dict[int, str]:
    """The C{a=fmtp} values of C{media} for the chosen voice formats."""
    found: Dict[int, str] = {}
    for fmt, codec in chosen:
        value = fmtp_of(media, fmt)
        if value is not None and not codec.is_event:
            found[int(fmt)] = value
    return found


def _rejected(media: Media) -> Media:
    return Media(media.media, 0, media.proto, list(media.formats))


def _rtpmap_value(fmt: str, codec: Codec) -> str:
    suffix = f"/{codec.channels}" if codec.channels != 1 else ""
    return f"{fmt} {codec.name}/{codec.clock}{suffix}"


def _as_sdp(data: Union[bytes, SessionDescription]) -> SessionDescription:
    return data if isinstance(data, SessionDescription) else parse_sdp(data)


class OfferAnswer:
    """
    The offer/answer state of one media session (one participant).

    @ivar state: L{IDLE} before any exchange, L{OFFER_SENT} while our
        offer awaits its answer, L{STABLE} after a completed exchange.
    @ivar local: the description we last sent, or L{None}; read-only
        (replace it, never change it in place: L{local_sdp} keeps its
        serialized form).
    @ivar remote: the peer's description of the last completed exchange.
    @ivar stream: the audio stream settled on, or L{None}.
    @ivar version: the C{o=} session version of C{local}.
    """

    def __init__(
        self,
        *,
        address: str,
        port: int,
        session_id: str,
        warn_agent: str,
        codecs: Sequence[Codec] = SUPPORTED_CODECS,
        direction: str = "sendrecv",
        username: str = "-",
        session_name: str = "-",
        initial_version: int = 1,
        telephone_event_pt: int = DEFAULT_TELEPHONE_EVENT_PT,
        srtp: str = SRTP_OFF,
        keygen: Callable[[int], bytes] = os.urandom,
    ) -> None:
        """
        @param address: our media address (for C{o=} and C{c=}).
        @param port: our RTP port (RTCP is on C{port + 1}).
        @param session_id: the C{o=} session id, digits.
        @param warn_agent: the host named in Warning headers.
        @param direction: what this side is able to do.
        @param initial_version: the C{o=} version of our first description.
        @param srtp: the SRTP policy, one of L{SRTP_POLICIES}.
        @param keygen: makes our SRTP master keys (that many random bytes).
        """
        if not session_id.isdigit():
            raise ValueError(f"session id {session_id!r} is not digits")
        if srtp not in SRTP_POLICIES:
            raise ValueError(f"unknown SRTP policy {srtp!r}")
        self.srtp = srtp
        self.keygen = keygen
        self.address = address
        self.port = port
        self.session_id = session_id
        self.warn_agent = warn_agent
        self.codecs = tuple(codecs)
        self.direction = direction
        self.username = username
        self.session_name = session_name
        self.telephone_event_pt = telephone_event_pt
        self.state = IDLE
        self.version = initial_version - 1
        self.local: Optional[SessionDescription] = None
        # L{local} as serialized by L{_publish}: a join's answer is
        # serialized once, not again for the 200's body.
        self._local_wire: Optional[Tuple[SessionDescription, bytes]] = None
        self.remote: Optional[SessionDescription] = None
        self.stream: Optional[Stream] = None

    @property
    def local_sdp(self) -> bytes:
        """The serialized L{local}, or C{b""} before we sent any."""
        local = self.local
        if local is None:
            return b""
        wire = self._local_wire
        if wire is not None and wire[0] is local:
            return wire[1]
        return serialize_sdp(local)

    def _skeleton(self, timings: Optional[SessionDescription] = None) -> SessionDescription:
        addrtype = addrtype_of(self.address)
        sdp = SessionDescription(
            origin=Origin(self.username, self.session_id, 0, "IN", addrtype, self.address),
            name=self.session_name,
            connection=Connection("IN", addrtype, self.address),
        )
        if timings is not None:
            # The answer's t= must equal the offer's (RFC 3264 section 6).
            sdp.timings = [Timing(t.start, t.stop, list(t.repeats)) for t in timings.timings]
        return sdp

    def _publish(self, sdp: SessionDescription) -> bytes:
        """
        Stamp C{sdp} with the version and keep it as L{local}.  The
        version goes up only when the description changed: an unchanged
        one must keep its version (RFC 3264 section 8), as session refresh
        re-INVITEs expect.
        """
        if self.local is not None:
            sdp.origin.session_version = self.local.origin.session_version
            if sdp == self.local:
                return self.local_sdp
        self.version += 1
        sdp.origin.session_version = self.version
        self.local = sdp
        wire = serialize_sdp(sdp)
        self._local_wire = (sdp, wire)
        return wire

    def check_offer(self, offer: Union[bytes, SessionDescription]) -> SessionDescription:
        """
        Parse C{offer} and check that it can be answered, changing nothing.

        @raise RemoteProtocolError: 400 (malformed), 491 (our own offer is
            pending: glare, RFC 3261 section 14.2) or 488 with a Warning.
        """
        return self._checked(offer)[0]

    def _checked(
        self,
        offer: Union[bytes, SessionDescription],
        chosen: Optional[Tuple[int, Optional[Crypto]]] = None,
    ) -> Tuple[SessionDescription, Tuple[int, Optional[Crypto]]]:
        """L{check_offer}, also returning what L{choose_stream} chose (C{chosen} if given)."""
        if self.state == OFFER_SENT:
            raise RemoteProtocolError("Request Pending", 491)
        sdp = _as_sdp(offer)
        if self.local is not None and len(sdp.media) < len(self.local.media):
            # RFC 3264 section 8: m-lines are never removed, only disabled.
            raise not_acceptable(WARN_MISC, self.warn_agent)
        if chosen is None or self.stream is not None:
            chosen = choose_stream(sdp, self.codecs, self.warn_agent, self._preferred(), self.srtp)
        return sdp, chosen

    def _preferred(self) -> Optional[int]:
        return self.stream.index if self.stream is not None else None

    def receive_offer(
        self,
        offer: Union[bytes, SessionDescription],
        *,
        choice: Optional[Tuple[int, Optional[Crypto]]] = None,
    ) -> bytes:
        """
        Answer C{offer} (the first or a new one in the session) and settle
        on its stream.

        @param choice: what L{choose_stream} (with our codecs and SRTP
            policy, no preference) returned for C{offer}, when the caller
            already checked it, so a join chooses once; ignored once a
            stream is settled (a new offer prefers the current stream).
        @return: the answer, serialized.
        @raise RemoteProtocolError: as L{check_offer}; the state is then
            unchanged.
        """
        sdp, (index, crypto) = self._checked(offer, choice)
        answer = self._skeleton(sdp)
        local = self._our_crypto(crypto) if crypto is not None else None
        offered = sdp.media[index]
        chosen = _choose(offered, self.codecs)
        ours = answer_direction(direction_of(sdp, offered), self.direction)
        for i, media in enumerate(sdp.media):
            if i != index:
                answer.media.append(_rejected(media))
                continue
            m = Media("audio", self.port, offered.proto, [fmt for fmt, _ in chosen])
            for fmt, codec in chosen:
                m.attributes.append(Attribute("rtpmap", _rtpmap_value(fmt, codec)))
                fmtp = codec.fmtp if codec.fmtp is not None else fmtp_of(offered, fmt)
                if fmtp is not None:
                    m.attributes.append(Attribute("fmtp", f"{fmt} {fmtp}"))
            if local is not None:
                m.attributes.append(local.attribute())
            m.attributes.append(Attribute(ours))
            answer.media.append(m)
        connection = sdp.connection_for(offered)
        assert connection is not None  # parse_sdp insists on one for a live stream
        self.stream = Stream(
            index,
            connection.address,
            offered.port,
            [(int(fmt), codec) for fmt, codec in chosen if not codec.is_event],
            next((int(fmt) for fmt, codec in chosen if codec.is_event), None),
            ours,
            local_crypto=local,
            remote_crypto=crypto,
            fmtp=_parameters(offered, chosen),
        )
        self.remote = sdp
        self.state = STABLE
        return self._publish(answer)

    def _new_key(self, suite: str) -> bytes:
        return self.keygen(sum(SRTP_SUITES[suite]))

    def _our_crypto(self, theirs: Crypto) -> Crypto:
        """
        Our C{a=crypto} answering C{theirs}: its tag and suite, with the key
        we already send with in this session if the suite is the same (our
        stream goes on, so its SRTP context does), else a new one.
        """
        current = self.stream.local_crypto if self.stream is not None else None
        if current is not None and current.suite == theirs.suite:
            key = current.key
        else:
            key = self._new_key(theirs.suite)
        return Crypto(theirs.tag, theirs.suite, key)

    def create_offer(self, direction: Optional[str] = None) -> bytes:
        """
        Make an offer: one audio stream with every codec we speak for a new
        session; for a later one, the same m-lines with our stream offered
        again (in C{direction} if given, to hold or resume) and the rest
        disabled.

        @raise RemoteProtocolError: 491 if an offer of ours is pending.
        """
        if self.state == OFFER_SENT:
            raise RemoteProtocolError("Request Pending", 491)
        if direction is not None:
            self.direction = direction
        offer = self._skeleton()
        audio = self._audio_media()
        index = self.stream.index if self.stream is not None else 0
        if self.local is not None:
            offer.media = [_rejected(m) for m in self.local.media]
        if index < len(offer.media):
            offer.media[index] = audio
        else:
            offer.media.append(audio)
        self.state = OFFER_SENT
        return self._publish(offer)

    def _audio_media(self) -> Media:
        """
        Our audio m-line: SRTP when the stream is already (with our key)
        or the policy requires it (one line per suite, each its own key),
        else plain RTP (a peer that cannot do SRTP could not answer).
        """
        current = self.stream.local_crypto if self.stream is not None else None
        cryptos: List[Crypto] = []
        if current is not None:
            cryptos.append(current)
        elif self.srtp == SRTP_REQUIRED:
            for tag, suite in enumerate(SRTP_SUITES, start=1):
                cryptos.append(Crypto(tag, suite, self._new_key(suite)))
        m = Media("audio", self.port, SECURE_PROTO if cryptos else AUDIO_PROTO)
        dynamic = (pt for pt in range(FIRST_DYNAMIC_PT, 128) if pt != self.telephone_event_pt)
        event_offered = False
        for codec in self.codecs:
            if codec.static_pt is not None:
                fmt = str(codec.static_pt)
            elif codec.is_event and not event_offered:
                fmt = str(self.telephone_event_pt)
                event_offered = True
            elif not codec.is_event:
                fmt = str(next(dynamic))
            else:
                continue
            m.formats.append(fmt)
            m.attributes.append(Attribute("rtpmap", _rtpmap_value(fmt, codec)))
            if codec.is_event:
                m.attributes.append(Attribute("fmtp", f"{fmt} {DEFAULT_TELEPHONE_EVENT_FMTP}"))
            elif codec.fmtp is not None:
                m.attributes.append(Attribute("fmtp", f"{fmt} {codec.fmtp}"))
        m.attributes.extend(crypto.attribute() for crypto in cryptos)
        m.attributes.append(Attribute(self.direction))
        return m

    def receive_answer(self, answer: Union[bytes, SessionDescription]) -> Stream:
        """
        Take the answer to our pending offer (for example from an ACK).

        @return: the stream settled on.
        @raise RemoteProtocolError: 400 when no offer is pending, the SDP
            is malformed or does not answer the offer (m-line count, media
            types, profile, direction), 488 when it accepts no codec we
            offered or rejects our audio stream.  The offer stays pending.
        """
        if self.state != OFFER_SENT or self.local is None:
            raise RemoteProtocolError("Bad SDP: no offer of ours awaits an answer")
        sdp = _as_sdp(answer)
        offer = self.local
        if len(sdp.media) != len(offer.media):
            raise SDPError(f"the answer has {len(sdp.media)} m-lines, the offer {len(offer.media)}")
        stream: Optional[Stream] = None
        for index, (ours, theirs) in enumerate(zip(offer.media, sdp.media)):
            n = index + 1
            if theirs.media != ours.media:
                raise SDPError(f"m-line {n} answers {ours.media} with {theirs.media}")
            if theirs.port == 0:
                continue
            if ours.port == 0:
                raise SDPError(f"m-line {n} accepts a stream the offer disabled")
            if theirs.proto != ours.proto:
                raise SDPError(f"m-line {n} answers {ours.proto} with {theirs.proto}")
            offered_dir = direction_of(offer, ours)
            their_dir = direction_of(sdp, theirs)
            if their_dir not in _ALLOWED_ANSWERS[offered_dir]:
                raise SDPError(f"m-line {n} answers {offered_dir} with {their_dir}")
            stream = self._answered_stream(index, sdp, ours, theirs, _REVERSE[their_dir])
        if stream is None:
            raise not_acceptable(WARN_MEDIA_TYPE, self.warn_agent)
        self.stream = stream
        self.remote = sdp
        self.state = STABLE
        return stream

    def _answered_stream(
        self, index: int, sdp: SessionDescription, ours: Media, theirs: Media, direction: str
    ) -> Stream:
        codecs: List[Tuple[int, Codec]] = []
        event: Optional[int] = None
        for fmt in theirs.formats:
            # A dynamic type the answer does not map keeps the offer's map.
            codec = codec_of(theirs, fmt, self.codecs)
            if codec is None and rtpmap_of(theirs, fmt) is None:
                codec = codec_of(ours, fmt, self.codecs)
            if codec is None or fmt not in ours.formats:
                continue
            if codec.is_event:
                event = int(fmt) if event is None else event
            else:
                codecs.append((int(fmt), codec))
        if not codecs:
            raise not_acceptable(WARN_FORMAT, self.warn_agent)
        local, remote = self._answered_crypto(ours, theirs)
        connection = sdp.connection_for(theirs)
        assert connection is not None  # parse_sdp insists on one for a live stream
        fmtp = _parameters(theirs, [(str(pt), codec) for pt, codec in codecs])
        return Stream(
            index, connection.address, theirs.port, codecs, event, direction, local, remote, fmtp
        )

    def _answered_crypto(
        self, ours: Media, theirs: Media
    ) -> Tuple[Optional[Crypto], Optional[Crypto]]:
        """
        For an SRTP offer of ours, (our offered line, the peer's line)
        matched by tag and suite (RFC 4568 section 7.1.3).

        @raise RemoteProtocolError: 488 when the answer keys none.
        """
        if ours.proto.upper() != SECURE_PROTO:
            return None, None
        offered, _ = cryptos_of(ours)
        answered, reason = cryptos_of(theirs)
        for remote in answered:
            for local in offered:
                if local.tag == remote.tag and local.suite == remote.suite:
                    return local, remote
        raise not_acceptable(_no_crypto(reason), self.warn_agent)
