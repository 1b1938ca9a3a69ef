# -*- test-case-name: tests.unit.app.test_focus,tests.unit.app.test_admission -*-
"""
The conference focus (iSIP section 4.4, RFC 4579): joining a conference by
INVITE returns the SDP answer together with the conference's VEVENT; a
conference that cannot be joined now answers 486 with its free/busy; calls
to users of served domains are redirected or refused with theirs.

It keeps one dialog per participant, the roster, the media sessions, and
session timers (RFC 4028); requests within a dialog are answered by
L{conference.app.indialog}.  It ends calls with BYE when a session lapses,
a 2xx is never acknowledged or, with an admission policy, the media went
quiet.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Dict, Hashable, List, Optional, Sequence, Tuple

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from conference.app.admission import (
    DEFAULT_RETRY_AFTER,
    MediaAdmission,
    MediaRefused,
    MediaTicket,
)
from conference.app.busy import (
    SDP,
    BodyFormats,
    ClosedConferences,
    ConferenceBusyParts,
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
    calendar_of,
    current_instance,
    is_cancelled,
    is_over,
    next_instance,
    timeline_of,
    utc_datetime,
)
from conference.app.core import CoreRouter, RequestContext, caller_identity, request_target
from conference.app.indialog import ALLOW, Call, InDialog
from conference.app.joincalendar import JoinCalendars
from conference.app.roster import (
    DEFAULT_MIN_SE,
    ConferenceFullError,
    Participant,
    Roster,
    SessionTimer,
    negotiate_session_timer,
)
from conference.calendar.errors import CalendarError
from conference.control.policy import policy_of
from conference.deferreds import PENDING, fired_result, then
from conference.interfaces import IMediaService, IMediaSession, IRequestHandler
from conference.records import ConferenceRecord
from conference.sip.dialog import Dialog, DialogTable
from conference.sip.errors import RemoteProtocolError, SIPProtocolError
from conference.sip.message import Request, Response, make_response
from conference.sip.transaction import Peer
from conference.store.stores import Stores

log = Logger()

DEFAULT_MAX_PARTICIPANTS = 100
#: The /metrics outcome of each reason a conference refuses a join.
_OUTCOMES = {"not open yet": "not-open", "locked": "locked", "full": "full"}


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
    role: Any = None
    pin_entry: Any = None


def _log_participation(call: Call, why: str, now: float, roster: Roster) -> None:
    """
    The one info event of a participation, logged when it ends: who was
    in which conference, for how long, why it ended, how many are left in,
    and the Call-ID that finds the INVITE's and BYE's transaction lines.
    A join and its leave used to be a line each; a join costs less with
    one, and the INVITE's transaction line already says when it was.
    As in the transaction line, the text is formatted here in one step and
    the fields stay in the event for JSON logs.
    """
    participant = call.participant
    who, conference = participant.identity, participant.conference
    seconds = max(0.0, now - participant.joined)
    count = roster.count(conference)
    call_id = call.dialog.call_id
    log.info(
        "{participation}",
        participation=(
            f"{who} joined {conference} for {seconds:.1f} s, left ({why}); "
            f"{count} in; call-id={call_id}"
        ),
        who=who,
        conference=conference,
        seconds=seconds,
        why=why,
        count=count,
        call_id=call_id,
    )


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
        admission: Optional[MediaAdmission] = None,
        challenge: Optional[Callable[[Request, float], SIPProtocolError]] = None,
    ) -> None:
        """
        @param sign: wraps the calendar parts of 200 and 486 answers as
            C{multipart/signed} (L{conference.smime.Credentials.sign});
            L{None} sends them bare.
        @param admission: caps on media sessions and their inactivity
            timeout; L{None}: only the media service's limits.
        @param challenge: the 401 that lets an anonymous caller refused
            for a cap that attendees do not meet authenticate and try
            again (L{None}: no credentials configured, so 503).
        """
        self.admission = admission
        self._challenge = challenge
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
        #: The join calendars, rendered once per roster of attendees.
        self.calendars = JoinCalendars(self.roster, sign)
        self.dialogs = DialogTable()
        self.calls: Dict[Hashable, Call] = {}
        self.users = UserAvailability(
            conferences=stores.conferences,
            calendars=stores.calendars,
            registrations=stores.registrations,
            in_conference=InConference(self.roster, stores.conferences),
            sign=sign,
        )
        self._cancelled: Dict[int, bool] = {}
        #: Join outcomes by reason (joined, not-open, locked, full), for /metrics.
        self.outcomes: Counter[str] = Counter()
        #: Locks set or lifted by moderators, by conference URI.
        self.locks: Dict[str, bool] = {}
        self._timer: Optional[IDelayedCall] = None
        #: Told each conference URI whose participants changed.
        self.listeners: List[Callable[[str], None]] = []
        #: The VFREEBUSY parts of 486s, made once a second per conference.
        self.busy_parts = ConferenceBusyParts()
        #: Conferences not open yet, decided once per record version.
        self.closed = ClosedConferences()
        #: Decides who may join and as what (L{None}: anyone, no role).
        self.admit: Optional[Callable[[_Join, str], Optional[Any]]] = None
        #: Answers re-INVITE, UPDATE and the ACK of an offerless INVITE.
        self.in_dialog = InDialog(self)
        #: The Allow header field of our answers.
        self.allow = ALLOW

    def seconds(self) -> float:
        """The reactor's time now."""
        return self._reactor.seconds()

    def maximum(self, record: ConferenceRecord) -> int:
        """The most participants C{record}'s conference takes (setting or default)."""
        try:
            return int(record.settings.get("max_participants", self.max_participants))
        except ValueError:
            return self.max_participants

    def notify_listeners(self, conference: str) -> None:
        """
        Tell the listeners that C{conference}'s state changed.
        """
        for listener in self.listeners:
            listener(conference)

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
            return self.in_dialog.answer(request, context)
        if request.method == "UPDATE":
            raise RemoteProtocolError("Call/Transaction Does Not Exist", 481)
        return self._initial_invite(request, context)

    def handle_ack(self, request: Request, context: RequestContext) -> None:
        """
        An ACK for our 2xx: complete an offerless INVITE with its answer.
        """
        self.in_dialog.ack(request)

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
                self.end_call(call, "2xx never acknowledged")

    # Initial INVITE --------------------------------------------------------

    def _target(self, request: Request) -> str:
        return request_target(request, self.router.domain_of)

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

        def found(record: Optional[ConferenceRecord]) -> Response | Deferred[Response]:
            # The To tag is drawn once there is an answer to give it to: a
            # 404 (most INVITEs to an unknown address) is raised without
            # one, and the refusal gets its own.
            if record is None:
                return self.users.answer_now(request, target, context.now, formats, self._tag)
            # The session timer only matters to a session this INVITE may
            # set up (RFC 4028 section 9: 422 is a UAS's alternative to
            # accepting): not to a user's 404, 486 or 302.
            timer = negotiate_session_timer(request, min_se=self.min_se)
            return self._join(_Join(request, context, record, formats, timer, self._tag()))

        return then(self.stores.conferences.get(target), found)

    def _join(self, join: _Join) -> Response | Deferred[Response]:
        request, context, record = join.request, join.context, join.record
        opens = self.closed.until(record, context.now, self.early_join)
        if opens is not None:
            # Decided for this version of the record by an earlier INVITE.
            return self._refuse(join, opens, "not open yet", "BUSY-UNAVAILABLE", stable=True)
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
            opens = upcoming.start - self.early_join
            self.closed.remember(record, now, opens, self.early_join)
            return self._refuse(join, opens, "not open yet", "BUSY-UNAVAILABLE", stable=True)
        maximum = self.maximum(record)
        join.calendar, join.instance = calendar, instance
        who = caller_identity(request, context)
        role = self.admit(join, who) if self.admit is not None else None
        if self.is_locked(record) and not getattr(role, "moderator", False):
            return self._refuse(join, instance.end, "locked")
        if self.roster.count(record.uri) >= maximum:
            return self._refuse(join, instance.end, "full")
        join.role = role
        ticket = self._admit(join, who)
        offered = bool(request.body)
        session_d = (
            self.media.answer(record.uri, who, request.body)
            if offered
            else self.media.offer(record.uri, who)
        )

        def answered(session: IMediaSession) -> Response:
            try:
                if self._cancelled.pop(id(request), False):
                    raise RemoteProtocolError("Request Terminated", 487)
                return self._accept(join, session, who, awaiting_answer=not offered, ticket=ticket)
            except BaseException:
                self.media.close(session)
                self._release(ticket)
                raise

        def failed(failure: Any) -> Any:
            self._release(ticket)
            error = failure.value
            if (
                isinstance(error, SIPProtocolError)
                and error.status == 503
                and not any(name.lower() == "retry-after" for name, _ in error.headers)
            ):
                error.headers.append(("Retry-After", str(self._retry_after(context.now))))
            return failure

        # The media services answer at once (a fired Deferred): then the
        # 200 is built here, without a callback chain; a failure or a
        # pending answer goes through the callbacks.
        session = fired_result(session_d)
        if session is not PENDING:
            return answered(session)
        return session_d.addCallbacks(answered, failed)

    # --- media admission and inactivity ------------------------------

    def _admit(self, join: _Join, who: str) -> Optional[MediaTicket]:
        """
        Count the join against the media caps before any port is taken.

        @raise MediaRefused: 503 with Retry-After over a cap.
        @raise SIPProtocolError: the 401 challenge instead, for an
            anonymous caller over a cap that attendees do not meet.
        """
        admission = self.admission
        if admission is None:
            return None
        context = join.context
        identity = context.identity
        attendee = identity is not None and policy_of(join.calendar).is_member(str(identity.aor))
        try:
            return admission.admit(
                host=context.peer.host,
                caller=who,
                authenticated=identity is not None,
                attendee=attendee,
                now=context.now,
            )
        except MediaRefused as e:
            log.info(
                "Refusing media to {who} from {host}: {reason}",
                who=who,
                host=context.peer.host,
                reason=e.reason,
            )
            if identity is None and e.for_attendees and self._challenge is not None:
                raise self._challenge(join.request, context.now) from None
            raise

    def _release(self, ticket: Optional[MediaTicket]) -> None:
        if self.admission is not None:
            self.admission.release(ticket)

    def _retry_after(self, now: float) -> int:
        if self.admission is not None:
            return self.admission.retry_after(now)
        return DEFAULT_RETRY_AFTER

    def _reap_idle(self, now: float) -> None:
        """
        End the calls whose media went quiet for the inactivity timeout.
        """
        if self.admission is None:
            return
        for ticket in self.admission.idle(now):
            call = self.calls.get(ticket.owner)
            if call is None:
                self.admission.release(ticket)
                continue
            self.end_call(call, f"no media for {self.admission.timeout:g} s")

    def _refuse(
        self, join: _Join, until: Any, why: str, kind: str = "BUSY", *, stable: bool = False
    ) -> Response:
        """
        486 for a conference that cannot be joined now ("not open yet",
        "locked", "full"), with its unavailable time until C{until}.

        @param stable: whether the refusal stands until C{until} whoever
            asks (a conference not open yet, unlike a full or locked one):
            the answer says so (L{Response.stable_until}), and the SIP
            layer then sends it without a transaction when that covers the
            INVITE's retransmissions.
        """
        self.outcomes[_OUTCOMES.get(why) or why.replace(" ", "-")] += 1
        response = refuse_conference(
            join.request,
            join.record.uri,
            join.context.now,
            until,
            formats=join.formats,
            to_tag=join.tag,
            sign=self.calendars.sign,
            reason=f"Busy Here (conference {why})",
            kind=kind,
            parts=self.busy_parts,
        )
        if stable:
            response.stable_until = until.timestamp()
        return response

    def _accept(
        self,
        join: _Join,
        session: IMediaSession,
        who: str,
        *,
        awaiting_answer: bool,
        ticket: Optional[MediaTicket] = None,
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
            role=join.role,
            pin_entry=join.pin_entry,
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
            self.roster.add(participant, self.maximum(record))
        except ConferenceFullError:
            self.media.close(session)
            self._release(ticket)
            return self._refuse(join, instance.end, "full")
        self.dialogs.add(dialog)
        self.calls[dialog.key] = Call(participant, dialog, context.peer, awaiting_answer, ticket)
        if self.admission is not None and ticket is not None:
            self.admission.opened(ticket, session, dialog.key)
        self.rearm()
        # No line here: the participation's one line comes when it ends
        # (L{_leave}); the INVITE's transaction line shows the join.
        self.notify_listeners(record.uri)
        self.outcomes["joined"] += 1
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
        return self.calendars.with_sdp(
            record, calendar, instance, formats.calendar, self._reactor.seconds(), sdp=sdp
        )

    def _bye(self, request: Request) -> Response:
        dialog = self.dialogs.find(request)
        response = self.dialogs.answer_bye(request)
        if dialog is not None:
            self._leave(dialog.key, "BYE")
        return response

    # Leaving -------------------------------------------------------------

    def _leave(self, key: Hashable, why: str) -> Optional[Call]:
        call = self.calls.pop(key, None)
        self.roster.remove(key)
        if call is not None:
            if call.participant.session is not None:
                self.media.close(call.participant.session)
            self._release(call.ticket)
            self.dialogs.remove(call.dialog)
            _log_participation(call, why, self._reactor.seconds(), self.roster)
            self.notify_listeners(call.participant.conference)
        return call

    def end_call(self, call: Call, why: str) -> None:
        """
        End a call from our side: BYE in its dialog, then forget it.
        """
        self._leave(call.dialog.key, why)
        d = self._send_in_call(call, "BYE")
        if d is not None:
            d.addErrback(
                lambda f: log.info(
                    "BYE for {why} got no answer: {f}", why=why, f=f.getErrorMessage()
                )
            )

    def _send_in_call(
        self, call: Call, method: str, **request: Any
    ) -> Optional[Deferred[Response]]:
        """
        Send a request in a call's dialog (C{request}: the body, content
        type and header fields of L{Dialog.create_request}); L{None} when
        the dialog cannot take one.
        """
        try:
            host, port = self._local_address(call.peer)
            via = f"SIP/2.0/{call.peer.transport} {host}:{port};branch={self._branch()};rport"
            message = call.dialog.create_request(method, via=via, **request)
        except (KeyError, SIPProtocolError) as e:
            log.info("Could not send {method}: {e}", method=method, e=e)
            return None
        # Symmetric: requests go where the participant's requests came
        # from, which works behind NAT and needs no DNS (RFC 3581 spirit).
        return self._send_request(message, call.peer)

    def send_in_call(
        self, key: Hashable, method: str, **request: Any
    ) -> Optional[Deferred[Response]]:
        """
        Send a request (a NOTIFY about a REFER, ...) in the call of the
        dialog C{key}; L{None} when there is no such call.
        """
        call = self.calls.get(key)
        return self._send_in_call(call, method, **request) if call is not None else None

    def adopt(self, participant: Participant, peer: Peer) -> None:
        """
        Take in a call the focus made (dial-out): roster, dialog, listeners.
        """
        self.roster.add(participant)
        self.dialogs.add(participant.dialog)
        self.calls[participant.key] = Call(participant, participant.dialog, peer)
        self.rearm()
        self.notify_listeners(participant.conference)

    def hang_up(self, key: Hashable, why: str) -> bool:
        """
        End the call of the dialog C{key} from our side with BYE (a
        moderator removed them); whether there was such a call.
        """
        call = self.calls.get(key)
        if call is not None:
            self.end_call(call, why)
        return call is not None

    def is_locked(self, record: ConferenceRecord) -> bool:
        """
        Whether C{record}'s conference is locked: by a moderator now, else
        by its C{locked} setting.
        """
        live = self.locks.get(record.uri)
        if live is not None:
            return live
        return record.settings.get("locked", "").lower() in ("1", "true", "yes")

    def end_conference(self, uri: str, why: str) -> int:
        """
        Hang up everyone in C{uri} (it was cancelled); returns how many.
        """
        calls = [c for c in self.calls.values() if c.participant.conference == uri]
        for call in calls:
            self.end_call(call, why)
        return len(calls)

    # Session timers -------------------------------------------------------

    def rearm(self) -> None:
        """
        Set the one timer to the next session-timer or inactivity deadline.
        """
        deadline = self.roster.next_deadline()
        quiet = self.admission.next_check() if self.admission is not None else None
        if quiet is not None and (deadline is None or quiet < deadline):
            deadline = quiet
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if deadline is not None:
            delay = max(0.0, deadline - self._reactor.seconds())
            self._timer = self._reactor.callLater(delay, self._expire)

    def _expire(self) -> None:
        self._timer = None
        now = self._reactor.seconds()
        for participant in self.roster.expired(now):
            call = self.calls.get(participant.key)
            if call is not None:
                self.end_call(call, "session timer expired")
        self._reap_idle(now)
        self.rearm()

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


__all__ = ["ALLOW", "DEFAULT_MAX_PARTICIPANTS", "Focus"]
