# -*- test-case-name: tests.unit.app.test_janus -*-
"""
The Janus AudioBridge media backend behind L{IMediaService}
(C{--media janus:http://127.0.0.1:8088/janus}).

Each conference is an AudioBridge room, created with its first
participant and destroyed with its last; each SIP participant joins it as
a plain-RTP participant on a handle of its own, so the phone sends its
media straight to Janus (the SDP answer names Janus's RTP address and
port) and browsers in the same room hear it.  When Janus is down, slow or
refuses, the join fails with 503 and a Retry-After, never a hang.  Janus
reports no per-packet activity: a periodic check refreshes the
C{last_activity} of the participants Janus still lists (so the focus's
inactivity timeout ends the calls Janus dropped, not silent ones).
"""

from __future__ import annotations

import secrets
from typing import Any, Callable, Dict, Optional, Sequence, Set, Tuple, cast

from twisted.internet.defer import Deferred, fail, maybeDeferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from conference.app.janusclient import DEFAULT_TIMEOUT, JanusClient
from conference.app.media import random_session_id
from conference.interfaces import IJanusTransport, IMediaService, IMediaSession
from conference.janus import protocol
from conference.janus.protocol import JANUS_CODECS, JanusError, Joined
from conference.offeranswer import Codec, OfferAnswer, Stream, codec_of, select_stream
from conference.reactors import default_reactor
from conference.sdp import parse_sdp
from conference.sip.errors import RemoteProtocolError

log = Logger()

DEFAULT_MAX_SESSIONS = 1000
DEFAULT_RETRY_AFTER = 30
DEFAULT_CHECK_INTERVAL = 20.0


def unavailable(retry_after: int) -> RemoteProtocolError:
    """The 503 a join gets when Janus cannot take it."""
    return RemoteProtocolError("Service Unavailable", 503, [("Retry-After", str(retry_after))])


@implementer(IMediaSession)
class JanusMediaSession:
    """
    One participant in an AudioBridge room.

    @ivar room: the room id; C{handle} the participant's Janus handle;
        C{janus_id} its participant id in the room.
    @ivar port: Janus's RTP port for it (RTCP on the next).
    @ivar codec: the codec it joined with (fixed for the session).
    """

    def __init__(
        self,
        conference: str,
        participant: str,
        negotiation: OfferAnswer,
        *,
        room: int,
        handle: int,
        joined: Joined,
        codec: Codec,
        started: float,
    ) -> None:
        self.conference = conference
        self.participant = participant
        self.negotiation = negotiation
        self.room = room
        self.handle = handle
        self.janus_id = joined.participant
        self.port = joined.port
        self.codec = codec
        self.closed = False
        self.last_activity = started

    @property
    def local_sdp(self) -> bytes:
        """The SDP this side last sent."""
        return self.negotiation.local_sdp

    @property
    def stream(self) -> Optional[Stream]:
        """The stream negotiated, or L{None} while our offer awaits its answer."""
        return self.negotiation.stream

    @property
    def expects_media(self) -> bool:
        """Whether media is expected from the participant (a stream, not on hold)."""
        stream = self.negotiation.stream
        return stream is not None and stream.expects_media

    def __repr__(self) -> str:
        return f"<JanusMediaSession {self.participant} in room {self.room}>"


class _Room:
    """A room we created (or found) for a conference, and who is in it."""

    def __init__(self, room: int, secret: str) -> None:
        self.id = room
        self.secret = secret
        self.sessions: Set[JanusMediaSession] = set()
        self.joining = 0


@implementer(IMediaService)
class JanusMediaService:
    """
    Answers offers with Janus's RTP address and mixes in AudioBridge rooms.

    @ivar capacity: how many sessions it holds at once (C{max_sessions}).
    @ivar sessions: the open sessions.
    @ivar rooms: the rooms in use, by conference URI.
    """

    def __init__(
        self,
        transport: IJanusTransport,
        reactor: Optional[Any] = None,
        *,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        warn_agent: str = "conference",
        codecs: Sequence[Codec] = JANUS_CODECS,
        timeout: float = DEFAULT_TIMEOUT,
        retry_after: int = DEFAULT_RETRY_AFTER,
        check_interval: float = DEFAULT_CHECK_INTERVAL,
        sampling_rate: int = 16000,
        session_ids: Callable[[], str] = random_session_id,
        room_secrets: Callable[[], str] = lambda: secrets.token_hex(16),
        client: Optional[JanusClient] = None,
    ) -> None:
        """
        @param transport: how Janus is reached (L{conference.app.janushttp}).
        @param max_sessions: how many participants at once; beyond, 503.
        @param codecs: what participants may use (AudioBridge's: PCMU,
            PCMA, Opus), preferred in the offer's order.
        @param timeout: seconds each request to Janus may take.
        @param retry_after: the Retry-After of a 503 when Janus fails.
        @param check_interval: seconds between keepalives and checks of
            who is still in each room.
        @param sampling_rate: the rooms' mixing rate (Hz).
        """
        if max_sessions < 1:
            raise ValueError("max_sessions must be at least 1")
        for codec in codecs:
            protocol.janus_codec_name(codec)  # raises for what Janus lacks
        self._reactor = cast(IReactorTime, default_reactor(reactor))
        self.client = client or JanusClient(transport, self._reactor, timeout=timeout)
        self.max_sessions = max_sessions
        self.capacity = max_sessions
        self.warn_agent = warn_agent
        self.codecs = tuple(codecs)
        self.retry_after = retry_after
        self.sampling_rate = sampling_rate
        self.session_ids = session_ids
        self.room_secrets = room_secrets
        self.sessions: Set[JanusMediaSession] = set()
        self.rooms: Dict[str, _Room] = {}
        self._control: Optional[int] = None
        self._pending = 0
        self._check = LoopingCall(self._checkup)
        self._check.clock = self._reactor
        self.check_interval = check_interval

    def _now(self) -> float:
        return self._reactor.seconds()

    # Joining -------------------------------------------------------------

    def _room(self, conference: str) -> _Room:
        room = self.rooms.get(conference)
        if room is None:
            room = self.rooms[conference] = _Room(
                protocol.room_id_for(conference), self.room_secrets()
            )
        return room

    def _control_handle(self) -> Deferred[int]:
        if self._control is not None and self.client.session is not None:
            return succeed(self._control)

        def attached(handle: int) -> int:
            self._control = handle
            if not self._check.running and self.check_interval > 0:
                self._check.start(self.check_interval, now=False)
            return handle

        return self.client.attach().addCallback(attached)

    def _create_room(self, conference: str, room: _Room) -> Deferred[Any]:
        def create(handle: int) -> Deferred[Any]:
            body = protocol.create_room(
                room.id, room.secret, sampling_rate=self.sampling_rate, description=conference
            )
            return self.client.request(handle, body, "created")

        def exists(failure: Failure) -> Any:
            if protocol.error_code(failure.value) == protocol.ROOM_EXISTS:
                return None  # made by an earlier join, or before a restart
            return failure

        return self._control_handle().addCallback(create).addErrback(exists)

    def _join(
        self, conference: str, participant: str, codec: Codec, rtp: Dict[str, Any]
    ) -> Deferred[Tuple[int, int, Joined]]:
        """
        Make sure the room exists, attach a handle and join it; fires with
        (room id, handle, what Janus answered).
        """
        room = self._room(conference)
        room.joining += 1
        handle: Dict[str, int] = {}

        def attach(_: Any) -> Deferred[int]:
            return self.client.attach()

        def join(h: int) -> Deferred[Dict[str, Any]]:
            handle["id"] = h
            body = protocol.join_rtp(room.id, codec, display=participant, **rtp)
            return self.client.request_event(h, body)

        def done(result: Any) -> Any:
            room.joining -= 1
            if not isinstance(result, Failure):
                try:
                    return (room.id, handle["id"], protocol.parse_joined(result))
                except JanusError:
                    result = Failure()
            if "id" in handle:
                self._detach(handle["id"])
            self._forget_room(conference)
            return result

        d = self._create_room(conference, room)
        d.addCallback(attach).addCallback(join)
        return d.addBoth(done)

    def _failed(self, failure: Failure, participant: str) -> Failure:
        if failure.check(RemoteProtocolError):
            return failure
        log.warn(
            "Janus cannot take {participant}: {error}",
            participant=participant,
            error=failure.getErrorMessage() or repr(failure.value),
        )
        return Failure(unavailable(self.retry_after))

    def _reserve(self) -> None:
        if len(self.sessions) + self._pending >= self.max_sessions:
            raise RemoteProtocolError("Media sessions exhausted", 503)
        self._pending += 1

    def _session(
        self,
        conference: str,
        participant: str,
        codec: Codec,
        joined: Tuple[int, int, Joined],
    ) -> JanusMediaSession:
        room_id, handle, answer = joined
        negotiation = OfferAnswer(
            address=answer.address,
            port=answer.port,
            session_id=self.session_ids(),
            warn_agent=self.warn_agent,
            codecs=(codec,),
        )
        session = JanusMediaSession(
            conference,
            participant,
            negotiation,
            room=room_id,
            handle=handle,
            joined=answer,
            codec=codec,
            started=self._now(),
        )
        self.sessions.add(session)
        self._room(conference).sessions.add(session)
        return session

    def answer(self, conference: str, participant: str, offer: bytes) -> Deferred[IMediaSession]:
        """
        Join the participant to the conference's room as an RTP participant
        at the offer's address, in the first offered codec Janus carries.
        Fails with 400 or 488 (as L{NullMediaService.answer}) before asking
        Janus anything, and with 503 and a Retry-After when Janus fails.
        """
        try:
            parsed = parse_sdp(offer)
            media = parsed.media[select_stream(parsed, self.codecs, self.warn_agent)]
            connection = parsed.connection_for(media)
            assert connection is not None  # parse_sdp insists on one for a live stream
            codec, pt = next(
                (c, int(fmt))
                for fmt in media.formats
                for c in [codec_of(media, fmt, self.codecs)]
                if c is not None and not c.is_event
            )
            self._reserve()
        except RemoteProtocolError as e:
            return fail(e)
        rtp = {"address": connection.address, "port": media.port, "payload_type": pt}

        def joined(result: Tuple[int, int, Joined]) -> IMediaSession:
            session = self._session(conference, participant, codec, result)
            try:
                session.negotiation.receive_offer(parsed)
            except BaseException:
                self.close(session)
                raise
            return session

        d: Deferred[Any] = self._join(conference, participant, codec, rtp)
        d.addBoth(self._unreserve)
        d.addCallback(joined)
        return d.addErrback(self._failed, participant)

    def _unreserve(self, result: Any) -> Any:
        self._pending -= 1
        return result

    def offer(self, conference: str, participant: str) -> Deferred[IMediaSession]:
        """
        Join the room before the peer's address is known and offer PCMU
        only (the AudioBridge fixes a participant's codec when it joins);
        503 when Janus fails.
        """
        codec = self.codecs[0]
        try:
            self._reserve()
        except RemoteProtocolError as e:
            return fail(e)
        pt = codec.static_pt

        def joined(result: Tuple[int, int, Joined]) -> IMediaSession:
            session = self._session(conference, participant, codec, result)
            session.negotiation.create_offer()
            return session

        d: Deferred[Any] = self._join(conference, participant, codec, {"payload_type": pt})
        d.addBoth(self._unreserve)
        d.addCallback(joined)
        return d.addErrback(self._failed, participant)

    # Within a session ----------------------------------------------------

    def _open(self, session: IMediaSession) -> JanusMediaSession:
        if not isinstance(session, JanusMediaSession) or session.closed:
            raise RemoteProtocolError("Call/Transaction Does Not Exist", 481)
        return session

    def _expecting(self, session: JanusMediaSession, before: bool) -> None:
        if session.expects_media and not before:
            self.touch(session)

    def complete(self, session: IMediaSession, answer: bytes) -> None:
        """Take the answer to L{offer}: 400 or 488 (see L{OfferAnswer}), 481 if closed."""
        found = self._open(session)
        before = found.expects_media
        found.negotiation.receive_answer(answer)
        self._expecting(found, before)

    def _update(self, session: IMediaSession, offer: bytes) -> bytes:
        found = self._open(session)
        before = found.expects_media
        old = found.stream
        answer = found.negotiation.receive_offer(offer)
        new = found.stream
        if (
            old is not None
            and new is not None
            and (old.address, old.port) != (new.address, new.port)
        ):
            log.info(
                "{participant} moved its media; Janus keeps sending to where it joined",
                participant=found.participant,
            )
        self._expecting(found, before)
        return answer

    def update(self, session: IMediaSession, offer: bytes) -> Deferred[bytes]:
        """
        Answer a new offer (hold, resume, refresh) in the codec joined
        with; 400, 488, 491 or 481 leave the session as it was.
        """
        return maybeDeferred(self._update, session, offer)

    def close(self, session: IMediaSession) -> None:
        """Leave the room (detach the handle); the last one out destroys it.  Idempotent."""
        if not isinstance(session, JanusMediaSession) or session.closed:
            return
        session.closed = True
        self.sessions.discard(session)
        room = self.rooms.get(session.conference)
        if room is not None:
            room.sessions.discard(session)
        self._detach(session.handle)
        self._forget_room(session.conference)

    def _detach(self, handle: int) -> None:
        self.client.detach(handle).addErrback(self._logged, "leave")

    def _forget_room(self, conference: str) -> None:
        room = self.rooms.get(conference)
        if room is None or room.sessions or room.joining:
            return
        del self.rooms[conference]
        if self._control is not None and self.client.session is not None:
            d = self.client.request(
                self._control, protocol.destroy_room(room.id, room.secret), "destroyed"
            )
            d.addErrback(self._logged, "destroy the room")

    def _logged(self, failure: Failure, what: str) -> None:
        log.info("Janus could not {what}: {error}", what=what, error=failure.getErrorMessage())

    def touch(self, session: IMediaSession) -> None:
        """Note activity for the session now."""
        session.last_activity = self._now()  # type: ignore[attr-defined]

    def warn(self, session: IMediaSession, ends_at: float) -> None:
        """
        The AudioBridge plays only Opus files into a whole room, so no
        per-participant warning tone: nothing is played (the
        conference-info update still tells subscribers).
        """

    def mute(
        self,
        session: IMediaSession,
        *,
        incoming: Optional[bool] = None,
        outgoing: Optional[bool] = None,
    ) -> None:
        """
        Mute what the participant says (C{incoming}), through the room's
        manager; the AudioBridge cannot mute what one participant hears,
        so C{outgoing} is ignored.

        @raise RemoteProtocolError: 481 for a closed session.
        """
        found = self._open(session)
        if incoming is None or self._control is None:
            return
        room = self.rooms.get(found.conference)
        if room is None:
            return
        body = protocol.mute(room.id, room.secret, found.janus_id, incoming)
        self.client.request(self._control, body, "success").addErrback(self._logged, "mute")

    # Liveness ------------------------------------------------------------

    def _checkup(self) -> Deferred[Any]:
        """
        Keep the Janus session alive and refresh the activity of the
        participants each room still lists; never fails.
        """
        d = self.client.keepalive()
        d.addCallback(lambda _: self._list_rooms())
        return d.addErrback(self._logged, "be reached")

    def _list_rooms(self) -> Any:
        if self._control is None:
            return None
        for room in list(self.rooms.values()):
            d = self.client.request(
                self._control, protocol.list_participants(room.id), "participants"
            )
            d.addCallback(self._present, room)
            d.addErrback(self._logged, "list a room")
        return None

    def _present(self, data: Dict[str, Any], room: _Room) -> None:
        present = set(protocol.participant_ids(data))
        for session in list(room.sessions):
            if session.janus_id in present and session.expects_media:
                self.touch(session)

    def stop(self) -> None:
        """Stop the checks and the client (at shutdown; sessions are closed by the focus)."""
        if self._check.running:
            self._check.stop()
        self.client.destroy()

    def close_all(self) -> None:
        """Close every open session."""
        for session in list(self.sessions):
            self.close(session)
