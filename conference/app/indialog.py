# -*- test-case-name: tests.unit.app.test_indialog -*-
"""
Requests within a participant's dialog with the focus: re-INVITE and
UPDATE (RFC 3311), and the ACK that completes an offerless INVITE.

A new offer is answered by the media service without taking the
participant out of the mix: hold (C{a=sendonly} or C{a=inactive} from the
participant, answered C{recvonly} or C{inactive}), resume, a codec change
or a new address keeps the same roster entry, dialog and media session.
What the participant now does with the media (their side of the answer)
is kept on their L{Participant} so the conference-info document shows a
hold, and the focus's listeners are told when it changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, List, Optional, Tuple

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from conference.app.admission import MediaTicket
from conference.app.busy import SDP
from conference.app.core import RequestContext
from conference.app.roster import Participant, negotiate_session_timer
from conference.sdp import SDPError, direction_of, parse_sdp
from conference.sip.dialog import Dialog
from conference.sip.errors import RemoteProtocolError, SIPProtocolError
from conference.sip.message import Request, Response, make_response
from conference.sip.transaction import Peer

if TYPE_CHECKING:  # pragma: no cover
    from conference.app.focus import Focus

log = Logger()

ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, MESSAGE, BIND, SUBSCRIBE, REFER, INFO"

#: The direction a participant takes when ours is the one given (RFC 3264).
_THEIRS = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}


@dataclass
class Call:
    """
    A participant's call as the focus tracks it between INVITE and BYE.

    @ivar awaiting_answer: an offerless INVITE's 2xx carried our offer and
        its ACK must bring the answer.
    @ivar ticket: the media admission ticket, if any.
    """

    participant: Participant
    dialog: Dialog
    peer: Peer
    awaiting_answer: bool = False
    ticket: Optional[MediaTicket] = None


def participant_direction(local_sdp: bytes) -> str:
    """
    What the participant does with the audio, read from the description
    we last sent (offer or answer): the reverse of our direction on the
    first live audio stream (our C{recvonly} means they only send: a
    hold).  C{sendrecv} when there is none or it cannot be read.
    """
    try:
        sdp = parse_sdp(local_sdp)
    except SDPError:
        return "sendrecv"
    for media in sdp.media:
        if media.media == "audio" and media.port != 0:
            return _THEIRS.get(direction_of(sdp, media), "sendrecv")
    return "sendrecv"


def holds(direction: str) -> bool:
    """Whether a participant doing C{direction} holds (does not hear the mix)."""
    return direction in ("sendonly", "inactive")


class InDialog:
    """
    Answers re-INVITE and UPDATE in the participants' dialogs and takes
    the answer an ACK brings, for one L{Focus}.
    """

    def __init__(self, focus: Focus) -> None:
        self.focus = focus

    def _call(self, request: Request) -> Tuple[Dialog, Call]:
        dialog = self.focus.dialogs.match(request)
        call = self.focus.calls.get(dialog.key) if dialog is not None else None
        if dialog is None or call is None:
            raise RemoteProtocolError("Call/Transaction Does Not Exist", 481)
        return dialog, call

    def answer(self, request: Request, context: RequestContext) -> Response | Deferred[Response]:
        """
        A re-INVITE or UPDATE: refresh the session timer, answer a new
        offer (hold, resume, codec change, new address) or, for an
        offerless re-INVITE, send our current description.

        @raise RemoteProtocolError: 481 outside a known call, 422 for a
            Session-Expires under Min-SE; a failed answer (400, 488, 491)
            leaves the session as it was.
        """
        focus = self.focus
        dialog, call = self._call(request)
        timer = negotiate_session_timer(request, min_se=focus.min_se)
        focus.roster.refresh(dialog.key, context.now, timer.interval if timer else None)
        focus.rearm()
        headers: List[Tuple[str, str]] = [
            ("Contact", dialog.local_contact or ""),
            ("Allow", focus.allow),
        ]
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
            self.settled(call, answer)
            headers.append(("Content-Type", SDP))
            return make_response(request, 200, headers=headers, body=answer)

        return focus.media.update(call.participant.session, request.body).addCallback(updated)

    def settled(self, call: Call, local_sdp: bytes) -> None:
        """
        An exchange completed with C{local_sdp} ours: note what the
        participant now does, and tell the listeners when that changed
        (a hold or its end shows in the conference-info).
        """
        participant = call.participant
        direction = participant_direction(local_sdp)
        if direction == participant.direction:
            return
        log.info(
            "{who} in {conference}: {before} -> {after}{hold}",
            who=participant.identity,
            conference=participant.conference,
            before=participant.direction,
            after=direction,
            hold=" (on hold)" if holds(direction) else "",
        )
        participant.direction = direction
        self.focus.notify_listeners(participant.conference)

    def ack(self, request: Request) -> None:
        """
        An ACK for our 2xx: complete an offerless INVITE with its answer;
        a missing or bad answer ends the call with BYE.
        """
        focus = self.focus
        dialog = focus.dialogs.find(request)
        if dialog is None:
            return
        call = focus.calls.get(dialog.key)
        if call is None or not call.awaiting_answer:
            return
        call.awaiting_answer = False
        try:
            if not request.body:
                raise RemoteProtocolError("ACK carried no SDP answer", 400)
            focus.media.complete(call.participant.session, request.body)
        except SIPProtocolError as e:
            log.info("Ending call {key}: bad answer in ACK: {why}", key=dialog.key, why=e.reason)
            focus.end_call(call, "bad answer in ACK")
            return
        self.settled(call, call.participant.session.local_sdp)


__all__ = ["ALLOW", "Call", "InDialog", "holds", "participant_direction"]
