# -*- test-case-name: tests.loopback.test_media -*-
"""
The null media service: the focus's media seam with no mixer behind it.

It negotiates PCMU, PCMA and telephone-event like a real media server,
opens an RTP/RTCP port pair per participant so peers have somewhere to
send, counts what arrives (each well-formed packet, from any source,
refreshes the session's C{last_activity}, which the focus's inactivity
timeout reads) and drops it.  The mixer (L{conference.app.mixer}) extends
it behind the same L{IMediaService} interface.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Sequence, Tuple, cast

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IReactorTime, IReactorUDP
from twisted.logger import Logger
from zope.interface import implementer

from conference.app.rtpports import PortPair, PortPairPool
from conference.interfaces import IMediaService, IMediaSession
from conference.media import srtp as _srtp
from conference.offeranswer import (
    SRTP_OFF,
    SRTP_OPTIONAL,
    SRTP_POLICIES,
    SUPPORTED_CODECS,
    Codec,
    OfferAnswer,
    Stream,
    choose_stream,
)
from conference.reactors import default_reactor
from conference.sdp import parse_sdp
from conference.sip.errors import RemoteProtocolError
from conference.sip.randomness import PooledSystemRandom

log = Logger()

DEFAULT_ADDRESS = "127.0.0.1"
DEFAULT_PORT_RANGE = (20000, 29999)
DEFAULT_MAX_SESSIONS = 1000


@implementer(IMediaSession)
class NullMediaSession:
    """
    One participant's media: the offer/answer state and the port pair.

    @ivar port: the RTP port (RTCP on C{port + 1}).
    @ivar pair: the L{PortPair} (back to the pool at close).
    @ivar rtp: the L{conference.app.rtpports.RTPSink} of the RTP port; C{rtcp} that of RTCP.
    @ivar negotiation: the L{OfferAnswer} state.
    @ivar closed: whether L{NullMediaService.close} released it.
    @ivar last_activity: when media last arrived (see
        L{NullMediaService.touch}); until then, when media was first
        expected (the session's start, the answer to our offer, or the
        end of a hold).
    """

    def __init__(
        self,
        conference: str,
        participant: str,
        negotiation: OfferAnswer,
        pair: PortPair,
        *,
        started: float = 0.0,
    ) -> None:
        self.conference = conference
        self.participant = participant
        self.negotiation = negotiation
        self.port = negotiation.port
        self.pair = pair
        self.rtp, self.rtcp = pair.sinks
        self.closed = False
        self.last_activity = started

    @property
    def local_sdp(self) -> bytes:
        """The SDP this side last sent (offer or answer)."""
        return self.negotiation.local_sdp

    @property
    def stream(self) -> Optional[Stream]:
        """The stream negotiated, or L{None} while an offer awaits its answer."""
        return self.negotiation.stream

    @property
    def expects_media(self) -> bool:
        """
        Whether media is expected from the participant: a stream is
        negotiated and the participant does not hold (L{Stream.expects_media}).
        """
        stream = self.negotiation.stream
        return stream is not None and stream.expects_media

    def __repr__(self) -> str:
        return f"<NullMediaSession {self.participant} in {self.conference} on port {self.port}>"


def srtp_policy(policy: Optional[str]) -> str:
    """
    The SRTP policy to negotiate with: C{policy}, or for L{None}
    C{optional} where SRTP is available (C{pylibsrtp} imports) and C{off}
    where it is not.

    @raise ValueError: an unknown policy, or one other than C{off} where
        SRTP is not available.
    """
    if policy is None:
        return SRTP_OPTIONAL if _srtp.available() else SRTP_OFF
    if policy not in SRTP_POLICIES:
        raise ValueError(f"unknown SRTP policy {policy!r}; use {', '.join(SRTP_POLICIES)}")
    if policy != SRTP_OFF and not _srtp.available():
        raise ValueError(f"SRTP {policy} needs pylibsrtp, which cannot be imported here")
    return policy


_RANDOM = PooledSystemRandom()


def random_session_id() -> str:
    """
    An SDP session id (RFC 4566 section 5.2): 62 random bits as decimal,
    from the pooled system randomness (no system call per session).
    """
    return str(_RANDOM.getrandbits(62))


@implementer(IMediaService)
class NullMediaService:
    """
    Answers offers with PCMU, PCMA and telephone-event, opens an RTP port
    per participant and drops the media.

    @ivar sessions: the open sessions, by RTP port.
    @ivar ports: the L{PortPairPool} of the port range.
    @ivar capacity: how many sessions it can hold: C{max_sessions} or the
        port pairs of the range, whichever is fewer.
    """

    def __init__(
        self,
        reactor: Optional[IReactorUDP] = None,
        *,
        address: str = DEFAULT_ADDRESS,
        port_range: Tuple[int, int] = DEFAULT_PORT_RANGE,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        warn_agent: Optional[str] = None,
        codecs: Sequence[Codec] = SUPPORTED_CODECS,
        session_ids: Callable[[], str] = random_session_id,
        srtp: Optional[str] = None,
    ) -> None:
        """
        @param reactor: where ports are opened and what C{last_activity}
            times are read from (it provides C{IReactorUDP} and
            C{IReactorTime}); the global reactor if L{None} (looked up
            here, once).
        @param address: the interface to listen on, also put in the SDP.
        @param port_range: the lowest and highest port (inclusive) to use;
            RTP takes the even ones, RTCP the odd one above.
        @param max_sessions: how many sessions may be open; beyond, 503.
        @param warn_agent: the host named in Warning headers (the address
            if L{None}).
        @param session_ids: makes the C{o=} session id of a new session.
        @param srtp: the SRTP policy (L{SRTP_POLICIES}, C{--srtp}); L{None}
            is C{optional} where SRTP is available, else C{off}.
        @raise ValueError: a bad range or cap, or SRTP asked for where it
            is not available.
        """
        reactor = default_reactor(reactor)
        low, high = port_range
        low += low % 2
        if not (low > 0 and high <= 65535 and low + 1 <= high):
            raise ValueError(f"port range {port_range!r} holds no RTP/RTCP port pair")
        if max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")
        self._reactor = reactor
        self.address = address
        self.max_sessions = max_sessions
        self.warn_agent = warn_agent or address
        self.codecs = tuple(codecs)
        self.session_ids = session_ids
        self.srtp = srtp_policy(srtp)
        self.sessions: Dict[int, NullMediaSession] = {}
        self.ports = PortPairPool(reactor, address, low, high)
        self.capacity = min(max_sessions, self.ports.pairs)

    def _now(self) -> float:
        return cast(IReactorTime, self._reactor).seconds()

    def _open(self, conference: str, participant: str) -> NullMediaSession:
        if len(self.sessions) >= self.max_sessions:
            raise RemoteProtocolError("Media sessions exhausted", 503)
        pair = self.ports.take(self.sessions)
        negotiation = OfferAnswer(
            address=self.address,
            port=pair.port,
            session_id=self.session_ids(),
            warn_agent=self.warn_agent,
            codecs=self.codecs,
            srtp=self.srtp,
        )
        session = NullMediaSession(conference, participant, negotiation, pair, started=self._now())
        for sink in pair.sinks:
            sink.on_activity = lambda: self.touch(session)
        self.sessions[pair.port] = session
        return session

    def _answer(self, conference: str, participant: str, offer: bytes) -> NullMediaSession:
        if len(self.sessions) >= self.max_sessions:
            raise RemoteProtocolError("Media sessions exhausted", 503)
        # Refuse what cannot be answered before taking any port.
        parsed = parse_sdp(offer)
        choice = choose_stream(parsed, self.codecs, self.warn_agent, srtp=self.srtp)
        session = self._open(conference, participant)
        try:
            session.negotiation.receive_offer(parsed, choice=choice)
        except BaseException:
            self.close(session)
            raise
        return session

    def answer(self, conference: str, participant: str, offer: bytes) -> Deferred[IMediaSession]:
        """
        Answer C{offer}; see L{IMediaService.answer}.  Fails with
        L{RemoteProtocolError}: 400 (malformed SDP), 488 with a Warning
        (nothing acceptable) or 503 (no session or port left).
        """
        return maybeDeferred(self._answer, conference, participant, offer)

    def _offer(self, conference: str, participant: str) -> NullMediaSession:
        session = self._open(conference, participant)
        session.negotiation.create_offer()
        return session

    def offer(self, conference: str, participant: str) -> Deferred[IMediaSession]:
        """
        Open a session and make its offer (PCMU, PCMA, telephone-event);
        fails with 503 like L{answer}.
        """
        return maybeDeferred(self._offer, conference, participant)

    def _session(self, session: IMediaSession) -> NullMediaSession:
        if not isinstance(session, NullMediaSession) or session.closed:
            raise RemoteProtocolError("Call/Transaction Does Not Exist", 481)
        return session

    def complete(self, session: IMediaSession, answer: bytes) -> None:
        """
        Take the answer to L{offer}; raises L{RemoteProtocolError} (400 or
        488, see L{OfferAnswer.receive_answer}; 481 for a closed session).
        """
        found = self._session(session)
        expected = found.expects_media
        found.negotiation.receive_answer(answer)
        self._expecting(found, expected)

    def _update(self, session: IMediaSession, offer: bytes) -> bytes:
        found = self._session(session)
        expected = found.expects_media
        answer = found.negotiation.receive_offer(offer)
        self._expecting(found, expected)
        return answer

    def _expecting(self, session: NullMediaSession, before: bool) -> None:
        """
        After a negotiation: when media is now expected and was not (the
        answer to our offer, the end of a hold), the inactivity count
        starts now.  Other renegotiations (a session-timer refresh) do not
        restart it, or a peer refreshing its session would never time out.
        """
        if session.expects_media and not before:
            self.touch(session)

    def update(self, session: IMediaSession, offer: bytes) -> Deferred[bytes]:
        """
        Answer a new offer in the session (re-INVITE, UPDATE); fails with
        400, 488, 491 (glare) or 481 (closed), leaving the session as it was.
        """
        return maybeDeferred(self._update, session, offer)

    def close(self, session: IMediaSession) -> None:
        """Give the session's ports back to the pool (see L{PortPairPool}); idempotent."""
        if not isinstance(session, NullMediaSession) or session.closed:
            return
        log.debug(
            "Closed media of {participant}: {packets} RTP packets dropped",
            participant=session.participant,
            packets=session.rtp.packets,
        )
        self._release_session(session)

    def _release_session(self, session: NullMediaSession) -> None:
        """Mark C{session} closed, forget it and give its ports back."""
        session.closed = True
        if self.sessions.get(session.port) is session:
            del self.sessions[session.port]
        self.ports.release(session.pair)  # the sinks forget the session: no cycle left

    def touch(self, session: IMediaSession) -> None:
        """
        Media arrived for C{session} now: refresh its C{last_activity}.
        """
        session.last_activity = self._now()  # type: ignore[attr-defined]

    def warn(self, session: IMediaSession, ends_at: float) -> None:
        """
        The end-of-conference warning: the null service carries no audio,
        so there is nothing to play (the conference-info update still tells
        subscribers).
        """

    def stop(self) -> None:
        """
        At shutdown, once the focus released its calls: close whatever is
        left and unbind every port, parked ones included.
        """
        self.close_all()

    def close_all(self) -> None:
        """Close every open session and unbind every port (at shutdown)."""
        for session in list(self.sessions.values()):
            self.close(session)
        self.ports.close_all()
