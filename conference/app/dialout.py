# -*- test-case-name: tests.unit.app.test_dialout -*-
"""
Dial-out (RFC 4579 section 5.4): a moderator's REFER with the URI of an
attendee has the focus INVITE them into the conference.

Only the organizer and the attendees of the conference's VEVENT can be
called, so a REFER cannot make the server call arbitrary addresses: a
served user at a contact they registered here, an attendee of another
domain at their address.  With the server's outbound route (RFC 3263,
L{conference.transport.outbound}) any contact or address is reached over
whatever transport DNS names, failing over between targets; without it,
only registered UDP contacts with IP addresses.  The focus offers SDP from
the media service; a 2xx creates the dialog, is acknowledged where the 2xx
came from, and the callee joins the roster as C{dialed-out}, C{referred}
by the moderator.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, List, Optional, Tuple

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from conference.app.conferences import calendar_of, master_events
from conference.app.control import ConferenceControl
from conference.app.core import is_ip_literal
from conference.app.outbound import over_tls, target_address
from conference.app.roster import Participant
from conference.calendar.errors import CalendarError
from conference.calendar.itip import normalize_address
from conference.interfaces import IMediaSession
from conference.records import ConferenceRecord
from conference.sip.dialog import Dialog
from conference.sip.errors import RemoteProtocolError, SIPProtocolError
from conference.sip.message import Request, Response
from conference.sip.transaction import Peer
from conference.sip.transaction_model import new_branch, new_tag
from conference.sip.uri import SIPURI, parse_uri

__all__ = ["DialOut"]

log = Logger()

SDP = "application/sdp"


class DialOut:
    """
    Calls attendees into a conference for its moderators.
    """

    def __init__(
        self,
        control: ConferenceControl,
        *,
        send_request: Callable[[Request, Peer], Deferred[Response]],
        send_ack: Callable[[Request, Peer], None],
        local_address: Callable[[Peer], Tuple[str, int]],
        tag_factory: Callable[[], str] = new_tag,
        branch_factory: Callable[[], str] = new_branch,
        route: Optional[Any] = None,
        is_local: Callable[[str], bool] = lambda address: True,
        contact_address: Optional[Callable[[], Optional[Tuple[str, int]]]] = None,
    ) -> None:
        """
        @param send_request: sends the INVITE (its client transaction).
        @param send_ack: sends an ACK for a 2xx (it has no transaction).
        @param local_address: our address towards a peer.
        @param route: sends to any SIP URI (RFC 3263), its C{send_attempt}
            firing with the final response and the peer that gave it;
            L{None}: registered UDP contacts with IP addresses only.
        @param is_local: whether an address belongs to a served domain
            (others are called at their address, through C{route}).
        @param contact_address: our address for the Contact of INVITEs
            sent through C{route} (the UDP port's).
        """
        self.control = control
        self.focus = control.focus
        self._send_request = send_request
        self._send_ack = send_ack
        self._local_address = local_address
        self._tag = tag_factory
        self._branch = branch_factory
        self.route = route
        self.is_local = is_local
        self._contact_address = contact_address

    def check(self, conference: str, target: str, by: Optional[str]) -> Deferred[Tuple[Any, ...]]:
        """
        Fire with what the call needs once C{by} may have C{target}
        called into C{conference}: the record, the contact URI and where to
        send.

        @raise RemoteProtocolError: (through the Deferred) 403 when C{by}
            is no moderator or C{target} no attendee, 404 for no such
            conference, 486 when they are in already, 480 when they have
            no contact the focus can reach.
        """
        d: Deferred[Any] = self.control.authorize(conference, by)
        d.addCallback(self._member, target)
        return d

    def _member(self, record: ConferenceRecord, target: str) -> Deferred[Tuple[Any, ...]]:
        try:
            calendar = calendar_of(record)
            policy = self.control.policy(record, calendar)
        except CalendarError:
            raise RemoteProtocolError("Conference unavailable", 500) from None
        if not policy.is_member(target):
            raise RemoteProtocolError(
                "Forbidden (only the conference's attendees can be called)", 403
            )
        address = normalize_address(target)
        if any(
            normalize_address(p.identity) == address
            for p in self.focus.roster.participants(record.uri)
        ):
            raise RemoteProtocolError(f"Busy Here ({address} is in already)", 486)
        d: Deferred[Any] = self.focus.stores.registrations.get_bindings(
            address, self.focus.seconds()
        )
        dialled = _as_written(calendar, address) or target_address(target)
        d.addCallback(self._reachable, record, (address, dialled), policy.role_of(address))
        return d

    def _reachable(
        self, bindings: List[Any], record: ConferenceRecord, names: Tuple[str, str], role: Any
    ) -> Tuple[Any, ...]:
        # The normalised address, and the one to dial (sips: kept).
        address, dialled = names
        routed: Optional[SIPURI] = None
        secure = dialled.startswith("sips:")
        if secure:
            # RFC 3261 section 26.2: a sips: callee only at contacts over TLS,
            # never downgraded (as the iTIP messages, docs/federation.rst).
            bindings = [b for b in bindings if over_tls(str(b.contact))]
        for binding in sorted(bindings, key=lambda b: -(b.q if b.q is not None else 1.0)):
            try:
                uri = parse_uri(binding.contact)
            except SIPProtocolError:
                continue
            if not isinstance(uri, SIPURI):
                continue
            transport = (uri.transport or "udp").upper()
            if self.route is None and is_ip_literal(uri.host) and transport == "UDP":
                peer = Peer("UDP", uri.host.strip("[]"), uri.port or 5060, None)
                return record, address, uri, peer, role
            if routed is None:
                routed = uri
        foreign = self.route is not None and not bindings and not self.is_local(address)
        if foreign and routed is None:
            with contextlib.suppress(SIPProtocolError):
                parsed = parse_uri(dialled)
                routed = parsed if isinstance(parsed, SIPURI) else None
        if self.route is not None and routed is not None:
            return record, address, routed, None, role
        why = "no contact reachable over TLS" if secure else "no contact the focus can call"
        raise RemoteProtocolError(f"Temporarily Unavailable ({address} has {why})", 480)

    def call(self, found: Tuple[Any, ...], by: Optional[str]) -> Deferred[int]:
        """
        INVITE the callee L{check} found; fire with the final status code.
        """
        record, address, contact, peer, role = found
        d: Deferred[Any] = self.focus.media.offer(record.uri, address)
        d.addCallback(self._invite, record, (address, contact, peer), (by, role))
        return d

    def _invite(
        self,
        session: IMediaSession,
        record: ConferenceRecord,
        callee: Tuple[str, SIPURI, Peer],
        asked: Tuple[Optional[str], Any],
    ) -> Deferred[int]:
        address, contact, peer = callee
        by, role = asked
        if peer is not None:
            host, port = self._local_address(peer)
        else:
            found = self._contact_address() if self._contact_address is not None else None
            if found is None:
                self.focus.media.close(session)
                raise RemoteProtocolError("Service Unavailable (no address to be called at)", 503)
            host, port = found
        user = record.uri.partition(":")[2].partition("@")[0]
        shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
        local_contact = f"<sip:{user}@{shown}:{port}>;isfocus"
        tag = self._tag()
        request = Request("INVITE", contact, session.local_sdp)
        if peer is not None:
            via = f"SIP/2.0/UDP {shown}:{port};branch={self._branch()};rport"
            request.add_header("Via", via)
        request.add_header("Max-Forwards", "70")
        request.add_header("From", f"<{record.uri}>;tag={tag}")
        request.add_header("To", f"<{address}>")
        request.add_header("Call-ID", f"{self._tag()}{self._tag()}@{host}")
        request.add_header("CSeq", "1 INVITE")
        request.add_header("Contact", local_contact)
        if by:
            request.add_header("Referred-By", f"<{by}>")
        request.add_header("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE")
        request.add_header("Content-Type", SDP)
        log.info("Calling {who} into {uri} for {by}", who=address, uri=record.uri, by=by)
        if peer is not None:
            d: Deferred[Any] = self._send_request(request, peer)
            d.addCallback(lambda response: (response, peer))
        else:
            # RFC 3263: the route adds the Via of the target it tries.
            d = self.route.send_attempt(request, contact)  # type: ignore[union-attr]

        def answered(result: Tuple[Response, Peer]) -> int:
            response, peer = result
            if response.code >= 300:
                self.focus.media.close(session)
                log.info("{who} answered {code}", who=address, code=response.code)
                return response.code
            try:
                self._joined(request, response, session, (peer, local_contact, by, role))
            except SIPProtocolError as e:
                log.info("Dial-out to {who} failed: {e}", who=address, e=e)
                self.focus.media.close(session)
                return 500
            return response.code

        def failed(failure: Any) -> int:
            self.focus.media.close(session)
            log.info("Dial-out to {who}: {f}", who=address, f=failure.getErrorMessage())
            return 408

        d.addCallbacks(answered, failed)
        return d

    def _joined(
        self,
        request: Request,
        response: Response,
        session: IMediaSession,
        who: Tuple[Peer, str, Optional[str], Any],
    ) -> None:
        peer, local_contact, by, role = who
        address = str(request.to.uri)
        remote = response.contacts
        if len(remote) != 1 or not response.to.tag:
            raise RemoteProtocolError("2xx without one Contact or a To tag", 502)
        dialog = Dialog(
            call_id=request.call_id,
            local_tag=request.from_.tag or "",
            remote_tag=response.to.tag,
            local_uri=str(request.from_.uri),
            remote_uri=str(request.to.uri),
            remote_target=remote[0].uri,
            route_set=list(reversed(response.header_values("record-route"))),
            local_cseq=1,
            local_contact=local_contact,
        )
        host, port = self._local_address(peer)
        shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
        via = f"SIP/2.0/{peer.transport} {shown}:{port};branch={self._branch()}"
        ack = dialog.create_request("ACK", via=via)
        ack.headers["cseq"] = ["1 ACK"]
        self._send_ack(ack, peer)
        if response.body:
            self.focus.media.complete(session, response.body)
        conference = str(request.from_.uri)
        participant = Participant(
            conference=conference,
            key=dialog.key,
            identity=address,
            joined=self.focus.seconds(),
            dialog=dialog,
            session=session,
            role=role,
            joining_method="dialed-out",
            referred_by=by,
        )
        self.focus.adopt(participant, peer)


def _as_written(calendar: Any, address: str) -> Optional[str]:
    """
    The calendar's own spelling of the attendee or organizer C{address}
    (a C{sips:} there is dialled as C{sips:}).
    """
    for event in master_events(calendar):
        for prop in [*event.get_all("ORGANIZER"), *event.get_all("ATTENDEE")]:
            value = prop.values[0] if prop.values else None
            if isinstance(value, str) and normalize_address(value) == address:
                return target_address(value)
    return None
