# -*- test-case-name: tests.app.test_focus -*-
"""
The conference focus (iSIP section 4.4, RFC 4579): joining a conference by
INVITE returns the SDP answer together with the conference's VEVENT; a
conference that cannot be joined now answers 486 with its free/busy; calls
to users of served domains are redirected or refused with theirs.

It keeps one dialog per participant, the roster, the media sessions, and
session timers (RFC 4028), and ends calls with BYE when a session lapses
or a 2xx is never acknowledged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Dict, Hashable, List, Optional, Sequence, Tuple

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from conference.app.busy import (
    SDP,
    XCAL,
    BodyFormats,
    InConference,
    Signer,
    UserAvailability,
    body_formats,
    check_formats,
    refuse_conference,
)
from conference.app.conferences import (
    DEFAULT_EARLY_JOIN,
    Instance,
    attendees_of,
    calendar_of,
    current_instance,
    is_cancelled,
    is_over,
    join_calendar,
    next_instance,
    timeline_of,
    utc_datetime,
)
from conference.app.core import CoreRouter, RequestContext, then
from conference.app.roster import (
    DEFAULT_MIN_SE,
    ConferenceFullError,
    Participant,
    Roster,
    SessionTimer,
    negotiate_session_timer,
)
from conference.calendar import to_ical, to_xcal
from conference.calendar.errors import CalendarError
from conference.calendar.itip import normalize_address
from conference.interfaces import IMediaService, IMediaSession, IRequestHandler
from conference.sip.dialog import Dialog, DialogTable
from conference.sip.errors import RemoteProtocolError, SIPProtocolError
from conference.sip.message import Request, Response, make_response
from conference.sip.multipart import BodyPart, build_multipart
from conference.sip.transaction import Peer
from conference.store.records import ConferenceRecord
from conference.store.stores import Stores

log = Logger()

DEFAULT_MAX_PARTICIPANTS = 100
ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, MESSAGE, BIND"


@dataclass
class _Join:
    """
    What an initial INVITE to a conference carries through the join.
    """

    request: Request
    context: RequestContext
    record: ConferenceRecord
    formats: BodyFormats
    timer: Optional[SessionTimer]
    tag: str
    calendar: Any = None
    instance: Optional[Instance] = None


@dataclass
class _Call:
    """
    A participant's call as the focus tracks it between INVITE and BYE.
    """

    participant: Participant
    dialog: Dialog
    peer: Peer
    awaiting_answer: bool = False


@implementer(IRequestHandler)
class Focus:
    """
    Answers INVITE (join, re-INVITE), UPDATE and BYE for conferences, and
    INVITEs to users through L{UserAvailability}.

    @ivar roster: who is in which conference.
    @ivar dialogs: the dialogs of the participants.
    """

    methods = ("INVITE", "BYE", "UPDATE")
    accepts: Dict[str, Sequence[str]] = {"INVITE": (SDP,), "UPDATE": (SDP,)}

    def __init__(
        self,
        *,
        stores: Stores,
        media: IMediaService,
        router: CoreRouter,
        reactor: IReactorTime,
        send_request: Callable[[Request, Peer], Deferred[Response]],
        local_address: Callable[[Peer], Tuple[str, int]],
        tag_factory: Callable[[], str],
        branch_factory: Callable[[], str],
        early_join: timedelta = DEFAULT_EARLY_JOIN,
        max_participants: int = DEFAULT_MAX_PARTICIPANTS,
        min_se: int = DEFAULT_MIN_SE,
        roster: Optional[Roster] = None,
        sign: Optional[Signer] = None,
    ) -> None:
        """
        @param sign: wraps the calendar parts of 200 and 486 answers as
            C{multipart/signed} (L{conference.smime.Credentials.sign});
            L{None} sends them bare.
        """
        self.sign = sign
        self.stores = stores
        self.media = media
        self.router = router
        self._reactor = reactor
        self._send_request = send_request
        self._local_address = local_address
        self._tag = tag_factory
        self._branch = branch_factory
        self.early_join = early_join
        self.max_participants = max_participants
        self.min_se = min_se
        self.roster = roster if roster is not None else Roster()
        self.dialogs = DialogTable()
        self.calls: Dict[Hashable, _Call] = {}
        self.users = UserAvailability(
            conferences=stores.conferences,
            calendars=stores.calendars,
            registrations=stores.registrations,
            in_conference=InConference(self.roster, stores.conferences),
            sign=sign,
        )
        self._cancelled: Dict[int, bool] = {}
        self._calendar_cache: Dict[Tuple[Any, ...], Tuple[str, bytes]] = {}
        self._timer: Optional[IDelayedCall] = None

    # Dispatch ---------------------------------------------------------------

    def handle_request(
        self, request: Request, context: RequestContext
    ) -> Response | Deferred[Response]:
        """
        INVITE (initial or re-INVITE), UPDATE or BYE.
        """
        if request.method == "BYE":
            return self._bye(request)
        if request.to.tag is not None:
            return self._in_dialog(request, context)
        if request.method == "UPDATE":
            raise RemoteProtocolError("Call/Transaction Does Not Exist", 481)
        return self._initial_invite(request, context)

    def handle_ack(self, request: Request, context: RequestContext) -> None:
        """
        An ACK for our 2xx: complete an offerless INVITE with its answer.
        """
        dialog = self.dialogs.find(request)
        if dialog is None:
            return
        call = self.calls.get(dialog.key)
        if call is None or not call.awaiting_answer:
            return
        call.awaiting_answer = False
        try:
            if not request.body:
                raise RemoteProtocolError("ACK carried no SDP answer", 400)
            self.media.complete(call.participant.session, request.body)
        except SIPProtocolError as e:
            log.info("Ending call {key}: bad answer in ACK: {why}", key=dialog.key, why=e.reason)
            self._hang_up(call, "bad answer in ACK")

    def handle_cancel(self, request: Request, context: RequestContext) -> None:
        """
        The INVITE was cancelled (487 sent): drop what it set up.
        """
        self._cancelled[id(request)] = True

    def handle_timeout(self, request: Request) -> None:
        """
        Our 2xx to C{request} was never acknowledged (RFC 3261 section
        13.3.1.4): end the call.
        """
        for call in list(self.calls.values()):
            if (
                call.dialog.call_id == request.call_id
                and call.dialog.remote_tag == request.from_.tag
            ):
                self._hang_up(call, "2xx never acknowledged")

    # Initial INVITE --------------------------------------------------------

    def _target(self, request: Request) -> str:
        uri = request.uri
        user = getattr(uri, "username", None)
        host = getattr(uri, "host", "") or ""
        domain = self.router.domain_of(host) or host.lower()
        if not user:
            raise RemoteProtocolError("Not Found (no conference or user named)", 404)
        return f"sip:{user}@{domain}"

    def _initial_invite(
        self, request: Request, context: RequestContext
    ) -> Response | Deferred[Response]:
        """
        Join the conference the INVITE names, else answer for the user it
        names.  The answer comes at once when the stores answer at once
        (the memory store does), and refusals are raised then rather than
        sent through failed Deferreds, which are costly for the common
        404 to an unknown address.
        """
        formats = body_formats(request)
        check_formats(formats)
        target = self._target(request)
        timer = negotiate_session_timer(request, min_se=self.min_se)
        tag = self._tag()

        def found(record: Optional[ConferenceRecord]) -> Response | Deferred[Response]:
            if record is None:
                return self.users.answer_now(request, target, context.now, formats, tag)
            return self._join(_Join(request, context, record, formats, timer, tag))

        return then(self.stores.conferences.get(target), found)

    def _join(self, join: _Join) -> Response | Deferred[Response]:
        request, context, record = join.request, join.context, join.record
        now = utc_datetime(context.now)
        try:
            calendar = calendar_of(record)
        except CalendarError as e:
            log.error("Conference {uri} has a bad stored calendar: {e}", uri=record.uri, e=e)
            raise RemoteProtocolError("Conference unavailable", 500) from None
        if is_cancelled(record, calendar):
            raise RemoteProtocolError("Gone (conference cancelled)", 410)
        try:  # bounded and cached per record version (docs/limits.rst)
            timeline = timeline_of(record, now)
        except CalendarError as e:
            log.error("Conference {uri} cannot be expanded: {e}", uri=record.uri, e=e)
            raise RemoteProtocolError("Conference unavailable", 500) from None
        instance = current_instance(timeline, now, self.early_join)
        if instance is None:
            upcoming = next_instance(timeline, now)
            if upcoming is None or is_over(timeline, now):
                raise RemoteProtocolError("Gone (conference ended)", 410)
            return self._refuse(
                join, upcoming.start - self.early_join, "not open yet", "BUSY-UNAVAILABLE"
            )
        maximum = _int_setting(record, "max_participants", self.max_participants)
        if record.settings.get("locked", "").lower() in ("1", "true", "yes"):
            return self._refuse(join, instance.end, "locked")
        if self.roster.count(record.uri) >= maximum:
            return self._refuse(join, instance.end, "full")
        join.calendar, join.instance = calendar, instance
        who = _participant_identity(request, context)
        offered = bool(request.body)
        session_d = (
            self.media.answer(record.uri, who, request.body)
            if offered
            else self.media.offer(record.uri, who)
        )

        def answered(session: IMediaSession) -> Response:
            if self._cancelled.pop(id(request), False):
                self.media.close(session)
                raise RemoteProtocolError("Request Terminated", 487)
            return self._accept(join, session, who, awaiting_answer=not offered)

        return session_d.addCallback(answered)

    def _refuse(self, join: _Join, until: Any, why: str, kind: str = "BUSY") -> Response:
        """
        486 for a conference that cannot be joined now ("not open yet",
        "locked", "full"), with its unavailable time until C{until}.
        """
        return refuse_conference(
            join.request,
            join.record.uri,
            join.context.now,
            until,
            formats=join.formats,
            to_tag=join.tag,
            sign=self.sign,
            reason=f"Busy Here (conference {why})",
            kind=kind,
        )

    def _accept(
        self, join: _Join, session: IMediaSession, who: str, *, awaiting_answer: bool
    ) -> Response:
        request, context, record, formats, timer, tag = (
            join.request,
            join.context,
            join.record,
            join.formats,
            join.timer,
            join.tag,
        )
        calendar, instance = join.calendar, join.instance
        assert instance is not None
        contact = self._contact(request, context.peer)
        headers: List[Tuple[str, str]] = [
            ("Contact", contact),
            ("Allow", ALLOW),
            ("Supported", "timer"),
        ]
        if timer is not None:
            headers.append(("Session-Expires", timer.header()))
            if timer.refresher == "uac":
                headers.append(("Require", "timer"))
        content_type, body = self._body(record, calendar, instance, formats, session)
        headers.append(("Content-Type", content_type))
        response = make_response(request, 200, to_tag=tag, headers=headers, body=body)
        dialog = Dialog.uas(request, response, contact)
        participant = Participant(
            conference=record.uri,
            key=dialog.key,
            identity=who,
            joined=context.now,
            dialog=dialog,
            session=session,
        )
        if timer is not None:
            participant.interval = timer.interval
            participant.refresher = timer.refresher
            # The focus does not send refreshes itself: when the caller
            # cannot refresh either, nobody does, and the session lives
            # until BYE.
            if timer.refresher == "uac":
                participant.expires_at = context.now + timer.interval
        try:
            self.roster.add(
                participant, _int_setting(record, "max_participants", self.max_participants)
            )
        except ConferenceFullError:
            self.media.close(session)
            return self._refuse(join, instance.end, "full")
        self.dialogs.add(dialog)
        self.calls[dialog.key] = _Call(participant, dialog, context.peer, awaiting_answer)
        self._rearm()
        log.info(
            "{who} joined {conference} ({count} in)",
            who=who,
            conference=record.uri,
            count=self.roster.count(record.uri),
        )
        return response

    def _contact(self, request: Request, peer: Peer) -> str:
        """
        The focus's Contact: the conference URI at the address the request
        reached, marked C{isfocus} (RFC 4579).
        """
        user = getattr(request.uri, "username", None) or "conference"
        try:
            host, port = self._local_address(peer)
        except KeyError:
            host, port = getattr(request.uri, "host", "localhost"), 5060
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        scheme = "sips" if getattr(request.uri, "scheme", "sip") == "sips" else "sip"
        transport = "" if peer.transport == "UDP" else f";transport={peer.transport.lower()}"
        return f"<{scheme}:{user}@{host}:{port}{transport}>;isfocus"

    def _body(
        self,
        record: ConferenceRecord,
        calendar: Any,
        instance: Instance,
        formats: BodyFormats,
        session: IMediaSession,
    ) -> Tuple[str, bytes]:
        sdp: bytes = session.local_sdp
        if formats.calendar is None:
            return SDP, sdp
        content_type, body = self._calendar_part(record, calendar, instance, formats.calendar)
        return build_multipart(
            [
                BodyPart(SDP, sdp, disposition="session"),
                BodyPart(content_type, body, disposition="render;handling=optional"),
            ],
            "mixed",
        )

    def _calendar_part(
        self, record: ConferenceRecord, calendar: Any, instance: Instance, fmt: str
    ) -> Tuple[str, bytes]:
        """
        The serialized VEVENT for this instance, cached per conference
        version, instance and which attendees are in, so a join does no XML
        (or signing) work in the common case.
        """
        attendees = {a for a, _, _ in attendees_of(calendar)}
        present = frozenset(
            p.identity for p in self.roster.participants(record.uri) if p.identity in attendees
        )
        key = (record.uri, record.version, instance.start, present, fmt)
        cached = self._calendar_cache.get(key)
        if cached is None:
            vcal = join_calendar(
                record, calendar, instance, utc_datetime(self._reactor.seconds()), sorted(present)
            )
            params = ";method=REQUEST;component=VEVENT"
            if fmt == XCAL:
                cached = (XCAL + params + ';charset="utf-8"', to_xcal(vcal))
            else:
                cached = (
                    "text/calendar" + params + ";charset=utf-8",
                    to_ical([vcal]).encode("utf-8"),
                )
            if self.sign is not None:  # signed once per cache entry
                cached = self.sign(*cached)
            if len(self._calendar_cache) > 4096:
                self._calendar_cache.clear()
            self._calendar_cache[key] = cached
        return cached

    # In-dialog requests --------------------------------------------------

    def _in_dialog(
        self, request: Request, context: RequestContext
    ) -> Response | Deferred[Response]:
        dialog = self.dialogs.match(request)
        if dialog is None:
            raise RemoteProtocolError("Call/Transaction Does Not Exist", 481)
        call = self.calls.get(dialog.key)
        if call is None:
            raise RemoteProtocolError("Call/Transaction Does Not Exist", 481)
        timer = negotiate_session_timer(request, min_se=self.min_se)
        self.roster.refresh(dialog.key, context.now, timer.interval if timer else None)
        self._rearm()
        headers: List[Tuple[str, str]] = [("Contact", dialog.local_contact or ""), ("Allow", ALLOW)]
        if timer is not None:
            headers.append(("Session-Expires", timer.header()))
        if not request.body:
            if request.method == "INVITE":
                # A re-INVITE without offer gets our current description.
                sdp = call.participant.session.local_sdp
                headers.append(("Content-Type", SDP))
                return make_response(request, 200, headers=headers, body=sdp)
            return make_response(request, 200, headers=headers)

        def updated(answer: bytes) -> Response:
            headers.append(("Content-Type", SDP))
            return make_response(request, 200, headers=headers, body=answer)

        return self.media.update(call.participant.session, request.body).addCallback(updated)

    def _bye(self, request: Request) -> Response:
        dialog = self.dialogs.find(request)
        response = self.dialogs.answer_bye(request)
        if dialog is not None:
            self._leave(dialog.key, "BYE")
        return response

    # Leaving -------------------------------------------------------------

    def _leave(self, key: Hashable, why: str) -> Optional[_Call]:
        call = self.calls.pop(key, None)
        self.roster.remove(key)
        if call is not None:
            if call.participant.session is not None:
                self.media.close(call.participant.session)
            self.dialogs.remove(call.dialog)
            log.info(
                "{who} left {conference} ({why})",
                who=call.participant.identity,
                conference=call.participant.conference,
                why=why,
            )
        return call

    def _hang_up(self, call: _Call, why: str) -> None:
        """
        End a call from our side: BYE in its dialog, then forget it.
        """
        self._leave(call.dialog.key, why)
        try:
            host, port = self._local_address(call.peer)
            via = f"SIP/2.0/{call.peer.transport} {host}:{port};branch={self._branch()};rport"
            bye = call.dialog.create_request("BYE", via=via)
        except (KeyError, SIPProtocolError) as e:
            log.info("Could not send BYE: {e}", e=e)
            return
        # Symmetric: the BYE goes where the participant's requests came
        # from, which works behind NAT and needs no DNS (RFC 3581 spirit).
        self._send_request(bye, call.peer).addErrback(
            lambda f: log.info("BYE for {why} got no answer: {f}", why=why, f=f.getErrorMessage())
        )

    def end_conference(self, uri: str, why: str) -> int:
        """
        Hang up everyone in C{uri} (it was cancelled); returns how many.
        """
        calls = [c for c in self.calls.values() if c.participant.conference == uri]
        for call in calls:
            self._hang_up(call, why)
        return len(calls)

    # Session timers -------------------------------------------------------

    def _rearm(self) -> None:
        deadline = self.roster.next_deadline()
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if deadline is not None:
            delay = max(0.0, deadline - self._reactor.seconds())
            self._timer = self._reactor.callLater(delay, self._expire)

    def _expire(self) -> None:
        self._timer = None
        for participant in self.roster.expired(self._reactor.seconds()):
            call = self.calls.get(participant.key)
            if call is not None:
                self._hang_up(call, "session timer expired")
        self._rearm()

    def stop(self) -> None:
        """
        On service stop: cancel the session timer and release the media of
        every call (their dialogs end with the process).
        """
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        for key in list(self.calls):
            self._leave(key, "server stopping")


def _int_setting(record: ConferenceRecord, name: str, default: int) -> int:
    value = record.settings.get(name)
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _participant_identity(request: Request, context: RequestContext) -> str:
    """
    Who is joining: the authenticated address of record, else the From
    URI (for display only, never for authorization).
    """
    if context.identity is not None:
        return str(context.identity.aor)
    uri = request.from_.uri
    user = getattr(uri, "username", None)
    host = getattr(uri, "host", None)
    if user and host:
        return normalize_address(f"sip:{user}@{host}")
    return normalize_address(str(uri))


__all__ = ["ALLOW", "DEFAULT_MAX_PARTICIPANTS", "Focus"]
