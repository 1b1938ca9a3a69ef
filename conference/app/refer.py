# -*- test-case-name: tests.unit.app.test_refer -*-
"""
The moderator's SIP requests to a focus (RFC 4579): REFER to the
conference URI with a Refer-To of C{method=BYE} removes a participant
(section 5.5), one with the URI of an attendee has the focus call them
(section 5.4, L{conference.app.dialout}); control commands (mute, unmute, lock, unlock, remove) come
as INFO in the moderator's own call, since RFC 4579 has no request for
them (docs/focus.rst).

Each is authorized by the sender's role (L{conference.app.control}); a
REFER's outcome is reported by NOTIFY with a C{message/sipfrag} body
(RFC 3515) through the shared notifier, unless C{Refer-Sub: false}
(RFC 4488) asked for none.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from conference.app.bind import identity_of
from conference.app.control import ConferenceControl
from conference.app.core import RequestContext, request_target
from conference.app.dialout import DialOut
from conference.app.notifier import Notifier, RequestSender, Watch, failed_answer
from conference.control.actions import (
    CONTROL_TYPE,
    DIAL_OUT,
    LOCK,
    MUTE,
    REMOVE,
    UNLOCK,
    UNMUTE,
    Action,
    parse_command,
    refer_action,
)
from conference.interfaces import IRequestHandler
from conference.sip.errors import RemoteProtocolError, SIPProtocolError, reason_phrase
from conference.sip.events import subscription_state
from conference.sip.message import Request, Response, make_response
from conference.sip.transaction_model import new_branch, new_tag

__all__ = ["ModeratorRequests"]

log = Logger()

SIPFRAG = "message/sipfrag;version=2.0"


@implementer(IRequestHandler)
class ModeratorRequests(Notifier):
    """
    Answers REFER and INFO for conferences, and sends the NOTIFYs of the
    REFERs' implicit subscriptions.
    """

    methods = ("REFER", "INFO")
    accepts: Dict[str, Sequence[str]] = {"INFO": (CONTROL_TYPE,)}
    package = "a REFER's outcome"

    def __init__(
        self,
        control: ConferenceControl,
        domain_of: Callable[[str], Optional[str]],
        sender: RequestSender,
        reactor: IReactorTime,
        *,
        challenge: Optional[Callable[[Request, float], Exception]] = None,
        tag_factory: Callable[[], str] = new_tag,
        branch_factory: Callable[[], str] = new_branch,
    ) -> None:
        super().__init__(sender, reactor, tag_factory=tag_factory, branch_factory=branch_factory)
        #: Calls attendees in for dial-out REFERs (L{None}: answered 501).
        self.dialout: Optional[DialOut] = None
        self.control = control
        self.domain_of = domain_of
        self._challenge = challenge

    # Requests ----------------------------------------------------------------

    def handle_request(self, request: Request, context: RequestContext) -> Deferred[Response]:
        """
        Decide and carry out the moderator's request; faults are their 4xx
        and change nothing.
        """
        try:
            conference, by = self._who(request, context)
            if request.method == "INFO":
                action = parse_command(request.body, conference, self._is_conference)
            else:
                action = refer_action(
                    request.header_values("refer-to"), conference, self._is_conference
                )
                if action.verb == DIAL_OUT and self.dialout is None:
                    raise RemoteProtocolError(
                        "Not Implemented (dial-out by REFER is not available)", 501
                    )
        except SIPProtocolError as e:
            return failed_answer(e)
        if action.verb == DIAL_OUT:
            assert self.dialout is not None and action.target is not None
            checked: Deferred[Any] = self.dialout.check(conference, action.target, by)
            checked.addCallback(self._dial, request, context, (conference, by))
            return checked
        d = self._act(conference, action, by)
        d.addCallback(lambda _: self._answer(request, context, conference, action, by))
        return d

    def _who(self, request: Request, context: RequestContext) -> Tuple[str, Optional[str]]:
        """
        The conference a request is about and who asks (an authenticated
        address, or the identity a moderator's call was admitted with).

        @raise SIPProtocolError: 481 for an unknown dialog, 400 for INFO
            outside a call, the 401 challenge for an anonymous REFER.
        """
        by = identity_of(context)
        if request.to.tag is not None:
            focus = self.control.focus
            dialog = focus.dialogs.match(request)
            call = focus.calls.get(dialog.key) if dialog is not None else None
            if call is None:
                raise RemoteProtocolError("Call/Transaction Does Not Exist", 481)
            participant = call.participant
            if by is None and getattr(participant.role, "moderator", False):
                # Moderator roles are only given to authenticated callers.
                by = participant.identity
            return participant.conference, by
        if request.method == "INFO":
            raise RemoteProtocolError("Bad Request (INFO only in a call with the focus)", 400)
        if by is None:
            if self._challenge is not None:
                raise self._challenge(request, context.now)
            raise RemoteProtocolError("REFER needs authentication", 401)
        return request_target(request, self.domain_of), by

    def _is_conference(self, address: str) -> bool:
        return self.control.focus.roster.count(address) > 0 or address in self.control.focus.locks

    def _act(self, conference: str, action: Action, by: Optional[str]) -> Deferred[Any]:
        control = self.control
        target = action.target or ""
        if action.verb in (MUTE, UNMUTE):
            return control.set_muted(conference, target, by, action.verb == MUTE)
        if action.verb in (LOCK, UNLOCK):
            return control.set_locked(conference, by, action.verb == LOCK)
        assert action.verb == REMOVE
        return control.remove(conference, target, by)

    def _answer(
        self,
        request: Request,
        context: RequestContext,
        conference: str,
        action: Action,
        by: Optional[str],
    ) -> Response:
        log.info(
            "{by} asked {conference} to {verb} {target}: done",
            by=by,
            conference=conference,
            verb=action.verb,
            target=action.target or "",
        )
        if request.method == "INFO":
            return make_response(request, 200)
        if (request.header("refer-sub") or "").strip().lower() == "false":
            return make_response(
                request, 202, to_tag=self._tag_factory(), headers=[("Refer-Sub", "false")]
            )
        if request.to.tag is not None:
            # Inside the moderator's call: the NOTIFY goes in that dialog.
            dialog = self.control.focus.dialogs.find(request)
            if dialog is not None:
                key = dialog.key
                self.reactor.callLater(0, self._notify_in_call, key)
            return make_response(request, 202)
        return self.accept(
            request,
            context,
            resource=conference,
            target=conference,
            subscriber=by or "",
            terms=None,
            expires=60,
            status=202,
            final="noresource",
        )

    def _dial(
        self,
        found: Tuple[Any, ...],
        request: Request,
        context: RequestContext,
        asked: Tuple[str, Optional[str]],
    ) -> Response:
        """
        Answer a dial-out REFER that passed the checks (202) and call; the
        INVITE's final status is the sipfrag of the last NOTIFY.
        """
        conference, by = asked
        assert self.dialout is not None
        if (request.header("refer-sub") or "").strip().lower() == "false":
            self.dialout.call(found, by)
            return make_response(
                request, 202, to_tag=self._tag_factory(), headers=[("Refer-Sub", "false")]
            )
        if request.to.tag is not None:
            dialog = self.control.focus.dialogs.find(request)
            key = dialog.key if dialog is not None else None
            self.dialout.call(found, by).addCallback(lambda code: self._notify_in_call(key, code))
            return make_response(request, 202)
        response = self.accept(
            request,
            context,
            resource=conference,
            target=conference,
            subscriber=by or "",
            terms=None,
            expires=180,
            status=202,
        )
        [watch] = [w for w in self.watches(conference) if w.dialog.call_id == request.call_id]
        self.dialout.call(found, by).addCallback(self._dialed, watch)
        return response

    def _dialed(self, code: int, watch: Watch) -> None:
        if watch.ended:
            return
        watch.shown = code
        watch.final = "noresource"
        self._forget_resource(watch)
        self._kick(watch)

    # NOTIFY ------------------------------------------------------------------

    def _notify_in_call(self, key: Any, code: int = 200) -> None:
        headers, body = _outcome("noresource", code)
        d = self.control.focus.send_in_call(
            key,
            "NOTIFY",
            headers=[h for h in headers if h[0] != "Content-Type"],
            body=body,
            content_type=SIPFRAG,
        )
        if d is not None:
            d.addErrback(lambda f: log.info("NOTIFY of a REFER failed: {f}", f=f.getErrorMessage()))

    def notification(self, watch: Watch, now: float, final: Optional[str]) -> Deferred[Any]:
        """
        The outcome (done when we answered 202), then the subscription ends.
        """
        d: Deferred[Any] = Deferred()
        if final is None:
            # A dial-out under way: its first NOTIFY (RFC 3515 section 2.4.4).
            remaining = max(1, int(watch.expires_at - now))
            state = subscription_state("active", expires=remaining)
            d.callback(
                (
                    [("Event", "refer"), ("Subscription-State", state), ("Content-Type", SIPFRAG)],
                    b"SIP/2.0 100 Trying\r\n",
                )
            )
        else:
            code = watch.shown if isinstance(watch.shown, int) else 200
            d.callback(_outcome(final, code))
        return d


def _outcome(reason: str, code: int = 200) -> Tuple[Sequence[Tuple[str, str]], bytes]:
    """
    The last NOTIFY of a REFER: its sipfrag is the outcome (200 for what
    the focus did itself, the INVITE's final status for a dial-out), and
    the implicit subscription ends with it.
    """
    headers = [
        ("Event", "refer"),
        ("Subscription-State", subscription_state("terminated", reason=reason)),
        ("Content-Type", SIPFRAG),
    ]
    return headers, f"SIP/2.0 {code} {reason_phrase(code)}\r\n".encode("ascii")
