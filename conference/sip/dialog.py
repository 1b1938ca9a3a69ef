# -*- test-case-name: tests.unit.sip.test_dialog -*-
"""
RFC 3261 section 12 dialogs, seen from the UAS that the conference server
is: the state an INVITE or SUBSCRIBE creates, the checks every in-dialog
request passes, and the requests (BYE, NOTIFY, re-INVITE) the server sends
inside the dialogs it accepted.

Keeping the tags, route set, remote target and sequence numbers in one
sans-I/O object means the application never builds in-dialog requests by
hand and never mis-orders their CSeq.
"""

from __future__ import annotations

import secrets
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

from conference.sip.errors import LocalProtocolError, RemoteProtocolError
from conference.sip.message import Request, Response, make_response
from conference.sip.uri import SIPURI, URI

__all__ = ["EARLY", "CONFIRMED", "TERMINATED", "Dialog", "DialogTable", "TARGET_REFRESH"]

EARLY = "early"
CONFIRMED = "confirmed"
TERMINATED = "terminated"

# Requests that replace the remote target with their Contact (RFC 3261
# section 12.2; RFC 3311 for UPDATE, 6665 for SUBSCRIBE/NOTIFY, 3515 REFER).
TARGET_REFRESH = frozenset(["INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"])

# URI parts a strict router's Request-URI must not carry (section 12.2.1.1
# and 19.1.1: "method" and headers are not allowed in a Request-URI).
_NOT_IN_REQUEST_URI = ("method",)

_DialogKey = Tuple[str, str, Optional[str]]


def _no_dialog() -> RemoteProtocolError:
    return RemoteProtocolError("Call/Transaction Does Not Exist", 481)


def _is_loose(route: str) -> bool:
    """
    Whether a route set entry names a loose router (has C{;lr}).
    """
    from conference.sip.headers import parse_address

    uri = parse_address(route).uri
    return not isinstance(uri, SIPURI) or "lr" in uri.params


def _request_uri(route: str) -> URI:
    """
    The Request-URI for a strict router: its URI without the parts a
    Request-URI may not carry.
    """
    from conference.sip.headers import parse_address

    uri = parse_address(route).uri
    if isinstance(uri, SIPURI):
        uri = uri.copy()
        for name in _NOT_IN_REQUEST_URI:
            uri.params.pop(name, None)
        uri.headers.clear()
    return uri


class Dialog:
    """
    One dialog: a peer-to-peer relationship identified by Call-ID, local
    tag and remote tag (section 12).

    @ivar call_id: the Call-ID.
    @ivar local_tag: our tag (the To tag of our responses).
    @ivar remote_tag: the peer's tag (the From tag of its requests), or
        L{None} for an RFC 2543 peer that sent none.
    @ivar local_uri: our URI (the To URI of the creating request), text.
    @ivar remote_uri: the peer's URI (its From URI), text.
    @ivar remote_target: where requests go: the peer's Contact URI.
    @ivar route_set: the Record-Route values, in the order of the request
        (a UAS keeps them as received).
    @ivar local_cseq: the CSeq number of the last request we sent (0 before
        the first, so the first uses 1).
    @ivar remote_cseq: the highest CSeq number seen from the peer.
    @ivar secure: whether the dialog was created by a C{sips:} request.
    @ivar local_contact: our Contact, for the target refresh requests we send.
    @ivar state: C{"early"}, C{"confirmed"} or C{"terminated"}.
    """

    def __init__(
        self,
        *,
        call_id: str,
        local_tag: str,
        remote_tag: Optional[str],
        local_uri: str,
        remote_uri: str,
        remote_target: URI,
        route_set: Iterable[str] = (),
        local_cseq: int = 0,
        remote_cseq: Optional[int] = None,
        secure: bool = False,
        local_contact: str = "",
        state: str = CONFIRMED,
    ) -> None:
        self.call_id = call_id
        self.local_tag = local_tag
        self.remote_tag = remote_tag
        self.local_uri = local_uri
        self.remote_uri = remote_uri
        self.remote_target = remote_target
        self.route_set: List[str] = list(route_set)
        self.local_cseq = local_cseq
        self.remote_cseq = remote_cseq
        self.secure = secure
        self.local_contact = local_contact
        self.state = state
        self._remote_invite = False
        self._local_invite = False

    @classmethod
    def uas(cls, request: Request, response: Response, local_contact: str) -> Dialog:
        """
        The dialog a UAS creates when it answers C{request} with
        C{response} (section 12.1.1): a 1xx makes it early, a 2xx confirmed.

        @raise LocalProtocolError: if C{response} is not 101-299 or has no
            To tag.
        @raise RemoteProtocolError: (400) if the request has no usable
            Contact.
        """
        if not 101 <= response.code < 300:
            raise LocalProtocolError(f"a {response.code} response creates no dialog")
        local_tag = response.to.tag
        if not local_tag:
            raise LocalProtocolError("a dialog-creating response needs a To tag")
        contacts = request.contacts
        if len(contacts) != 1:
            raise RemoteProtocolError("Dialog-creating request needs exactly one Contact", 400)
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=request.from_.tag,
            local_uri=str(request.to.uri),
            remote_uri=str(request.from_.uri),
            remote_target=contacts[0].uri,
            route_set=request.header_values("record-route"),
            remote_cseq=request.cseq.number,
            secure=getattr(request.uri, "scheme", "") == "sips",
            local_contact=local_contact,
            state=EARLY if response.code < 200 else CONFIRMED,
        )

    @property
    def key(self) -> _DialogKey:
        """
        The dialog id: (Call-ID, local tag, remote tag).
        """
        return (self.call_id, self.local_tag, self.remote_tag)

    def __repr__(self) -> str:
        return f"<Dialog {self.call_id} {self.local_tag}/{self.remote_tag} {self.state}>"

    # State -----------------------------------------------------------------

    def confirm(self) -> None:
        """
        Move an early dialog to confirmed (a 2xx was sent).
        """
        if self.state == TERMINATED:
            raise LocalProtocolError("cannot confirm a terminated dialog")
        self.state = CONFIRMED

    def terminate(self) -> None:
        """
        End the dialog (BYE sent or received, or the session failed).
        """
        self.state = TERMINATED

    # Incoming requests -----------------------------------------------------

    def check_request(self, request: Request) -> None:
        """
        Apply section 12.2.2 to a request inside this dialog: refuse it if
        out of order, else record its CSeq and, for target refresh
        requests, the new remote target.

        ACK and CANCEL reuse their INVITE's CSeq number and are not
        checked.

        @raise RemoteProtocolError: 481 if the dialog is terminated, 500
            (C{CSeq out of order}) if the CSeq is lower than the last one.
        """
        if self.state == TERMINATED:
            raise _no_dialog()
        if request.method in ("ACK", "CANCEL"):
            return
        number = request.cseq.number
        if self.remote_cseq is not None and number < self.remote_cseq:
            raise RemoteProtocolError("CSeq out of order", 500)
        if request.method in TARGET_REFRESH and request.has_header("contact"):
            contacts = request.contacts
            if len(contacts) != 1:
                raise RemoteProtocolError("Target refresh needs exactly one Contact", 400)
            self.remote_target = contacts[0].uri
        self.remote_cseq = number

    def begin_invite(self, *, remote: bool = True) -> None:
        """
        Note that an INVITE transaction starts in this dialog, refusing it
        per section 14 when another is in progress.

        @param remote: L{True} for a re-INVITE the peer sent, L{False} for
            one we send.
        @raise RemoteProtocolError: for a remote INVITE: 491 while our own
            INVITE is in progress (section 14.1), 500 with a random 0-10 s
            Retry-After while the peer's previous INVITE is unanswered
            (section 14.2).
        @raise LocalProtocolError: for a local INVITE while any is pending.
        """
        if not remote:
            if self._local_invite or self._remote_invite:
                raise LocalProtocolError("an INVITE is already in progress in this dialog")
            self._local_invite = True
            return
        if self._local_invite:
            raise RemoteProtocolError("Request Pending", 491)
        if self._remote_invite:
            raise RemoteProtocolError(
                "Previous INVITE still in progress",
                500,
                [("Retry-After", str(secrets.randbelow(11)))],
            )
        self._remote_invite = True

    def end_invite(self, *, remote: bool = True) -> None:
        """
        Note that the INVITE begun with L{begin_invite} got its final
        response (sent for a remote one, received for a local one).
        """
        if remote:
            self._remote_invite = False
        else:
            self._local_invite = False

    @property
    def invite_pending(self) -> bool:
        """
        Whether an INVITE transaction is in progress in this dialog.
        """
        return self._remote_invite or self._local_invite

    # Outgoing requests -----------------------------------------------------

    def next_hop(self) -> Optional[SIPURI]:
        """
        The URI the requests of this dialog are sent to (sections 8.1.2 and
        12.2.1.1), which RFC 3263 then resolves: the first route's URI, or
        the remote target when there is no route set.  In a secure dialog
        it is a C{sips:} URI, so only TLS reaches it (section 26.2.2).

        @return: L{None} when that is no SIP URI (nothing to resolve).
        """
        from conference.sip.headers import parse_address

        uri: URI = self.remote_target
        if self.route_set:
            try:
                uri = parse_address(self.route_set[0]).uri
            except RemoteProtocolError:
                return None
        if not isinstance(uri, SIPURI):
            return None
        if self.secure and uri.scheme != "sips":
            uri = uri.copy()
            uri.scheme = "sips"
        return uri

    def create_request(
        self,
        method: str,
        *,
        via: Optional[str],
        body: bytes = b"",
        content_type: Optional[str] = None,
        headers: Iterable[Tuple[str, str]] = (),
    ) -> Request:
        """
        Build a request inside this dialog (section 12.2.1.1).

        The Request-URI is the remote target and the route set becomes
        Route headers when the first route is a loose router; for a strict
        router the first route is the Request-URI and the remote target
        ends the Route list.  CSeq is one more than the last we sent (ACK
        reuses the INVITE's).  A target refresh request carries our Contact.

        @param via: the complete top Via value (the caller knows its
            sent-by and makes the branch), or L{None} for none: the
            outbound path adds one for each target it tries (RFC 3263).
        @raise LocalProtocolError: if the dialog is terminated, the method is
            CANCEL (built from its INVITE, not the dialog), or a BYE is
            asked for on an early dialog (section 15).
        """
        if self.state == TERMINATED:
            raise LocalProtocolError(f"cannot send {method} in a terminated dialog")
        if method == "CANCEL":
            raise LocalProtocolError("CANCEL is built from its INVITE, not from the dialog")
        if method == "BYE" and self.state == EARLY:
            raise LocalProtocolError("a UAS cannot send BYE on an early dialog")
        if method != "ACK":
            self.local_cseq += 1
        routes = list(self.route_set)
        target: URI = self.remote_target
        if routes and not _is_loose(routes[0]):
            target = _request_uri(routes[0])
            routes = [*routes[1:], f"<{self.remote_target}>"]
        request = Request(method, target, body)
        if via is not None:
            request.add_header("via", via)
        request.add_header("max-forwards", "70")
        for route in routes:
            request.add_header("route", route)
        request.add_header("from", f"<{self.local_uri}>;tag={self.local_tag}")
        to = f"<{self.remote_uri}>"
        if self.remote_tag is not None:
            to += f";tag={self.remote_tag}"
        request.add_header("to", to)
        request.add_header("call-id", self.call_id)
        request.add_header("cseq", f"{self.local_cseq} {method}")
        if method in TARGET_REFRESH and self.local_contact:
            request.add_header("contact", self.local_contact)
        if content_type is not None:
            request.add_header("content-type", content_type)
        elif body:
            raise LocalProtocolError("a body needs a Content-Type")
        for name, value in headers:
            request.add_header(name, value)
        return request


class DialogTable:
    """
    The dialogs of one element, found by their id, with the UAS core rules
    that involve them (481 for unknown dialogs, BYE).
    """

    def __init__(self) -> None:
        self._dialogs: Dict[_DialogKey, Dialog] = {}

    def __len__(self) -> int:
        return len(self._dialogs)

    def __iter__(self) -> Iterator[Dialog]:
        return iter(list(self._dialogs.values()))

    def add(self, dialog: Dialog) -> None:
        """
        File a dialog under its id.

        @raise LocalProtocolError: if a dialog with that id exists.
        """
        if dialog.key in self._dialogs:
            raise LocalProtocolError(f"dialog {dialog.key} already exists")
        self._dialogs[dialog.key] = dialog

    def remove(self, dialog: Dialog) -> None:
        """
        Forget a dialog (nothing happens if it is not filed).
        """
        if self._dialogs.get(dialog.key) is dialog:
            del self._dialogs[dialog.key]

    def find(self, request: Request) -> Optional[Dialog]:
        """
        The dialog a request from the peer belongs to: its Call-ID, its To
        tag (ours) and its From tag (theirs).
        """
        local_tag = request.to.tag
        if local_tag is None:
            return None
        return self._dialogs.get((request.call_id, local_tag, request.from_.tag))

    def match(self, request: Request) -> Optional[Dialog]:
        """
        Route a request per section 12.2.2: L{None} for a request outside
        any dialog (no To tag), else its dialog, checked with
        L{Dialog.check_request}.  An ACK matching no dialog also gives
        L{None} (an ACK is never answered).

        @raise RemoteProtocolError: 481 for a To tag naming no dialog we
            have; what L{Dialog.check_request} raises.
        """
        if request.to.tag is None:
            return None
        dialog = self.find(request)
        if dialog is None:
            if request.method == "ACK":
                return None
            raise _no_dialog()
        dialog.check_request(request)
        return dialog

    def answer_bye(self, request: Request) -> Response:
        """
        Handle a BYE (section 15.1.2): end and forget its dialog and return
        the 200 to send.

        @raise RemoteProtocolError: 481 if it matches no dialog (with or
            without a To tag); 500 if out of order.
        """
        dialog = self.match(request)
        if dialog is None:
            raise _no_dialog()
        dialog.terminate()
        self.remove(dialog)
        return make_response(request, 200)
