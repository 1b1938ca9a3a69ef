# -*- test-case-name: tests.unit.app.test_scheduler -*-
"""
Scheduling by MESSAGE (iSIP sections 2 and 4.1-4.3): an authenticated
calendar user sends an iTIP message to a conference URI, to the factory
URI C{sip:conference@DOMAIN}, or (PUBLISH) to their own address; the
iTIP engine decides, this module stores the outcome (conferences, and the
calendar entries free/busy is computed from) and hands the iTIP answers to
L{conference.app.outbound}, which sends them as MESSAGEs of their own.

Our reading of each open point is in docs/scheduling.rst.
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass, field
from datetime import timedelta, timezone
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from conference.app.bookings import (
    DEFAULT_MAX_ATTENDEES,
    DEFAULT_MAX_ORGANIZER_BYTES,
    Bookings,
)
from conference.app.calendarbody import (
    ACCEPTED_TYPES,
    ICAL,
    CalendarBody,
    parse_calendar_body,
    warning_value,
)
from conference.app.conferences import (
    CONFERENCE_CUTYPES,
    calendar_of,
    decline,
    is_conference_attendee,
    lists_conference,
    overlaps,
    overlaps_busy,
    prune,
    record_for,
    scheduling_components,
    subset,
    uids_of,
    utc_datetime,
)
from conference.app.core import CoreRouter, RequestContext
from conference.app.federation import Federation
from conference.app.outbound import Messenger, RequestSender, UDPEndpoint, URISender
from conference.app.ownership import UserDirectory, release_when_cancelled
from conference.app.trust import SMIME_TYPES, TrustSettings, authority, open_body
from conference.calendar import (
    CalendarError,
    Component,
    Outgoing,
    RequestStatus,
    new_calendar,
    normalize_address,
    parse_xcal_calendar,
    process,
    to_xcal,
)
from conference.calendar import values as cv
from conference.interfaces import (
    IAccounts,
    IBindingStore,
    ICalendarStore,
    IConferenceStore,
    IDelegationPolicy,
    IRegistrationStore,
    IRequestHandler,
)
from conference.records import (
    CalendarEntry,
    ConferenceRecord,
    ConflictError,
    LimitExceededError,
)
from conference.sip.errors import RemoteProtocolError, SIPProtocolError
from conference.sip.message import Request, Response, make_response
from conference.sip.transaction_model import new_branch, new_tag
from conference.store.cache import uncached
from conference.store.stores import Stores

log = Logger()

UTC = timezone.utc
PRODID = "-//conference//iSIP scheduler//EN"
#: The user part of the factory URI: a REQUEST to it creates a conference
#: at a URI the server picks.
FACTORY_USER = "conference"
#: Methods that, sent to the organizer's own address, keep published time.
PUBLISHING_METHODS = frozenset(["PUBLISH", "CANCEL", "ADD"])
#: How often a write lost to a concurrent writer is retried.
MAX_ATTEMPTS = 3
#: Entry sources in the calendar store.
SOURCE_PUBLISH = "publish"
SOURCE_CONFERENCE = "conference"


# Delegation --------------------------------------------------------------


@implementer(IDelegationPolicy)
class SentByApprovals:
    """
    Answers L{IDelegationPolicy} from the C{sent-by} BIND bindings of the
    principals a message names, fetched beforehand (the iTIP engine asks
    synchronously, the binding store answers with Deferreds): a live
    binding of C{principal} whose URI is the delegate means approved.
    """

    def __init__(self, approvals: Optional[Dict[str, List[Tuple[str, float]]]] = None) -> None:
        #: principal -> [(delegate address, expires at)], addresses normalised.
        self.approvals: Dict[str, List[Tuple[str, float]]] = approvals or {}

    def is_delegate_approved(self, principal: str, delegate: str, now: float) -> bool:
        """
        See L{IDelegationPolicy.is_delegate_approved}.
        """
        wanted = normalize_address(delegate)
        return any(
            uri == wanted and expires > now
            for uri, expires in self.approvals.get(normalize_address(principal), ())
        )

    @classmethod
    async def load(
        cls, store: IBindingStore, principals: Iterable[str], now: float
    ) -> SentByApprovals:
        """
        Fetch the C{sent-by} bindings of C{principals}.
        """
        approvals: Dict[str, List[Tuple[str, float]]] = {}
        committed = uncached(store)  # a withdrawn approval counts at once, on every node
        for principal in sorted({normalize_address(p) for p in principals}):
            records = await committed.bindings(principal, now, {"sent-by"})
            approvals[principal] = [
                (normalize_address(r.uri), r.expires_at) for r in records if r.expires_at > now
            ]
        return cls(approvals)


def delegating_principals(calendar: Component) -> List[str]:
    """
    The ORGANIZER and ATTENDEE addresses of C{calendar} that name a
    SENT-BY delegate (the ones whose approvals the engine may ask for).
    """
    out: List[str] = []
    for comp in calendar.components:
        for prop in comp.get_all("ORGANIZER") + comp.get_all("ATTENDEE"):
            if prop.param("SENT-BY") and isinstance(prop.value, str):
                address = normalize_address(prop.value)
                if address not in out:
                    out.append(address)
    return out


# Outcomes ----------------------------------------------------------------


@dataclass
class Outcome:
    """
    What a scheduling message led to.

    @ivar warning: a fault to report in a Warning of the 200 (a stale
        message that was ignored), else L{None}.
    @ivar outgoing: iTIP messages to send once the 200 is out.
    @ivar originator: the From of those messages (the conference URI).
    @ivar conference: the conference URI concerned, if any.
    """

    warning: Optional[str] = None
    outgoing: List[Outgoing] = field(default_factory=list)
    originator: Optional[str] = None
    conference: Optional[str] = None


def refusal(status: RequestStatus, agent: str) -> SIPProtocolError:
    """
    The SIP answer to a message the iTIP engine refused: 403 for who may
    not do it (3.7 invalid calendar user, 3.8 no authority), 400 for any
    other fault of the body, each with a Warning quoting the
    REQUEST-STATUS.
    """
    text = f"{status.code} {status.reason}" + (f": {status.data}" if status.data else "")
    code = 403 if status.code in ("3.7", "3.8") else 400
    reason = "Forbidden" if code == 403 else "Bad Request"
    return RemoteProtocolError(
        f"{reason} (iTIP {status.code})", code, [("Warning", warning_value(agent, text))]
    )


def _forbidden(agent: str, fault: str) -> SIPProtocolError:
    return RemoteProtocolError("Forbidden", 403, [("Warning", warning_value(agent, fault))])


def _not_found(agent: str, fault: str) -> SIPProtocolError:
    return RemoteProtocolError(
        "Not Found (no such conference)", 404, [("Warning", warning_value(agent, fault))]
    )


def _bad(agent: str, fault: str) -> SIPProtocolError:
    return RemoteProtocolError("Bad Request", 400, [("Warning", warning_value(agent, fault))])


@dataclass(frozen=True)
class _Ask:
    """
    One scheduling message being processed: its body, the authenticated
    identity, the time and the delegation answers fetched for it.
    """

    body: CalendarBody
    who: str
    now: float
    policy: IDelegationPolicy


# Calendar helpers -----------------------------------------------------------


def assign_uri(calendar: Component, factory: str, uri: str, *, add_room: bool) -> None:
    """
    Put the conference URI the server picked into a REQUEST sent to the
    factory: every ATTENDEE naming the factory now names C{uri}; with
    C{add_room}, components without a conference attendee get one (ROOM,
    NON-PARTICIPANT), and every component without CONFERENCE gets one
    (RFC 7986) so the organizer learns the URI from the REPLY too.
    """
    for comp in scheduling_components(calendar):
        for prop in comp.get_all("ATTENDEE"):
            if isinstance(prop.value, str) and normalize_address(prop.value) == factory:
                prop.values = [uri]
                if (prop.param("CUTYPE") or "").upper() not in CONFERENCE_CUTYPES:
                    prop.params["CUTYPE"] = ("ROOM",)
        if add_room and not any(is_conference_attendee(a, uri) for a in comp.get_all("ATTENDEE")):
            comp.add(
                "ATTENDEE",
                uri,
                {"CUTYPE": "ROOM", "ROLE": "NON-PARTICIPANT", "PARTSTAT": "NEEDS-ACTION"},
            )
        if add_room and comp.get("CONFERENCE") is None:
            comp.add("CONFERENCE", uri, {"FEATURE": ("AUDIO",), "LABEL": "Join by SIP"}, cv.URI)


def new_conference_uri(domain: str) -> str:
    """
    An unguessable conference URI (80 random bits) in C{domain}.
    """
    return f"sip:conf-{secrets.token_hex(10)}@{domain}"


# The handler ------------------------------------------------------------------


@implementer(IRequestHandler)
class SchedulingHandler:
    """
    Answers MESSAGE requests carrying iTIP (see the module docstring).

    @ivar messenger: sends the iTIP answers; L{None} drops them (logged).
    @ivar max_per_organizer: the most conferences one organizer may have
        stored (L{None}: no limit).
    @ivar bookings: how outcomes are stored, with the attendee and
        organizer byte caps (L{conference.app.bookings}).
    """

    methods = ("MESSAGE",)
    accepts: Dict[str, Tuple[str, ...]] = {"MESSAGE": ACCEPTED_TYPES}

    def __init__(
        self,
        conferences: IConferenceStore,
        calendars: ICalendarStore,
        bindings: IBindingStore,
        registrations: IRegistrationStore,
        messenger: Optional[Messenger],
        *,
        domain_of: Callable[[str], Optional[str]],
        default_domain: str,
        tag_factory: Callable[[], str] = new_tag,
        uri_factory: Callable[[str], str] = new_conference_uri,
        max_per_organizer: Optional[int] = None,
        trust: Optional[TrustSettings] = None,
        accounts: Optional[IAccounts] = None,
        max_attendees: Optional[int] = DEFAULT_MAX_ATTENDEES,
        max_organizer_bytes: Optional[int] = DEFAULT_MAX_ORGANIZER_BYTES,
    ) -> None:
        """
        @param trust: the S/MIME settings (docs/trust.rst); by default none:
            S/MIME bodies are 415 and the digest or TLS identity counts.
        @param accounts: the L{IAccounts} whose addresses never become conferences.
        @param max_attendees: and C{max_organizer_bytes}: the caps of
            L{Bookings} (L{None}: none).
        """
        self.trust = trust if trust is not None else TrustSettings()
        self.federation: Optional[Federation] = None
        if self.trust.enabled:
            self.accepts = {"MESSAGE": ACCEPTED_TYPES + SMIME_TYPES}
        self.conferences = conferences
        self.calendars = calendars
        self.bindings = bindings
        self.registrations = registrations
        self.messenger = messenger
        self.domain_of = domain_of
        self.default_domain = default_domain
        self.tag_factory = tag_factory
        self.uri_factory = uri_factory
        self.max_per_organizer = max_per_organizer
        self.bookings = Bookings(
            conferences,
            calendars,
            domain_of,
            max_attendees=max_attendees,
            max_organizer_bytes=max_organizer_bytes,
        )
        self.users = UserDirectory(registrations, bindings, calendars, accounts)
        self.listeners: List[Callable[[str], None]] = []  # told of released bindings
        #: Told the address of each conference whose record an iTIP message
        #: changed (the focus's conference control).
        self.applied: List[Callable[[str], None]] = []
        #: The room's busy time from outside (CalDAV, docs/caldav.rst):
        #: C{(uri, now)} -> Deferred of (FBTYPE, interval)s, never failing.
        self.external_busy: Optional[Callable[[str, float], Deferred[Any]]] = None
        self.external_window = timedelta(days=7)

    async def _busy_outside(self, uri: str, uid: str, state: Any, stored: Any, now: float) -> bool:
        """
        Whether a new booking (UID) of C{uri} overlaps its outside busy time;
        updates are not checked (the outside calendar may hold this booking).
        """
        if self.external_busy is None or (stored is not None and uid in uids_of(stored)):
            return False
        busy = await self.external_busy(uri, now)
        mine = subset(state, lambda u: u == uid)
        return overlaps_busy(mine, busy, utc_datetime(now), self.external_window)

    # IRequestHandler --------------------------------------------------------

    def handle_request(self, request: Request, context: RequestContext) -> Deferred[Response]:
        """
        Process an iTIP MESSAGE; the answer is 200 once it is applied (the
        iTIP answer follows in a MESSAGE of its own), else the error.
        """
        return Deferred.fromCoroutine(self._handle(request, context))

    def handle_ack(self, request: Request, context: RequestContext) -> None:
        """
        MESSAGE has no ACK.
        """

    def handle_cancel(self, request: Request, context: RequestContext) -> None:
        """
        MESSAGE is not cancelled (it is answered at once).
        """

    def handle_timeout(self, request: Request) -> None:
        """
        MESSAGE is not INVITE; nothing awaits an ACK.
        """

    # Steps ---------------------------------------------------------------------

    def target_of(self, request: Request) -> Tuple[Optional[str], str]:
        """
        The address a MESSAGE is for, and its served domain: the
        Request-URI, or when it names no user (C{sip:example.com}, as in
        the iSIP examples) the To URI; L{None} for the factory (user
        C{conference}, or no user anywhere).
        """
        host = str(getattr(request.uri, "host", "") or "")
        domain = self.domain_of(host) or self.default_domain
        candidates: List[Any] = [request.uri]
        with contextlib.suppress(SIPProtocolError):
            candidates.append(request.to.uri)
        for uri in candidates:
            user = getattr(uri, "username", None)
            uri_host = str(getattr(uri, "host", "") or "")
            if not user or getattr(uri, "scheme", "") not in ("sip", "sips"):
                continue
            served = self.domain_of(uri_host)
            if served is None:
                continue
            if user == FACTORY_USER:
                return None, served
            return normalize_address(f"sip:{user}@{served}"), served
        return None, domain

    async def _handle(self, request: Request, context: RequestContext) -> Response:
        identity = context.identity
        target, domain = self.target_of(request)
        if identity is None and (self.federation is None or not self.trust.enabled):
            raise _forbidden(domain, "scheduling needs an authenticated identity")
        authenticated = normalize_address(str(identity.aor)) if identity is not None else ""
        ctype, now, peer = request.header("content-type"), context.now, context.peer.host
        if self.trust.enabled:  # docs/trust.rst: the signer, not the SIP sender, counts
            opened = open_body(self.trust, request.body, ctype, agent=domain, now=now, source=peer)
            body = parse_calendar_body(opened.body, opened.content_type or ctype, agent=domain)
            if identity is None and self.federation is not None:  # docs/federation.rst
                signed = self.federation.admit(body, opened, request.body, agent=domain, now=now)
                if signed is None:  # a replay of a message applied before
                    return make_response(request, 200, to_tag=self.tag_factory())
                who = signed
            else:
                who = authority(self.trust, body, opened.signer, authenticated, agent=domain)
        else:
            body = parse_calendar_body(request.body, ctype, agent=domain)
            who = authenticated
        for attempt in range(MAX_ATTEMPTS):
            try:
                outcome = await self._schedule(target, domain, body, who, context.now)
                break
            except ConflictError as e:
                if attempt + 1 < MAX_ATTEMPTS:
                    log.info("Retrying after a concurrent update: {error}", error=e)
                    continue
                raise SIPProtocolError(
                    "Concurrent update, try again", 503, [("Retry-After", "1")]
                ) from None
            except LimitExceededError as e:
                raise _forbidden(domain, str(e)) from None
        if identity is None and self.federation is not None:
            self.federation.remember(request.body, now)
        headers: List[Tuple[str, str]] = []
        if outcome.warning is not None:
            headers.append(("Warning", warning_value(domain, outcome.warning)))
        if outcome.outgoing:
            self._send(outcome, as_xcal=body.mime != ICAL)
        return make_response(request, 200, to_tag=self.tag_factory(), headers=headers)

    def _send(self, outcome: Outcome, *, as_xcal: bool) -> None:
        if self.messenger is None:
            for message in outcome.outgoing:
                log.info(
                    "iTIP {method} to {to} not sent (no messenger)",
                    method=message.method,
                    to=",".join(message.recipients),
                )
            return
        d = self.messenger.send_later(outcome.outgoing, outcome.originator, as_xcal=as_xcal)
        d.addErrback(lambda f: log.failure("Sending iTIP answers failed", f))

    async def _schedule(
        self, target: Optional[str], domain: str, body: CalendarBody, who: str, now: float
    ) -> Outcome:
        method = body.method or ""
        calendar = body.calendar
        self.bookings.check(calendar, domain)
        uids = uids_of(calendar)
        policy = await SentByApprovals.load(self.bindings, delegating_principals(calendar), now)
        ask = _Ask(body, who, now, policy)
        record: Optional[ConferenceRecord] = None
        if target is None:
            if method == "PUBLISH":
                raise _forbidden(domain, "PUBLISH goes to the organizer's own address")
            if len(uids) != 1:
                raise _bad(domain, f"a conference is one event (UID), not {len(uids)}")
            record = await self.conferences.get_by_uid(uids[0])
            if record is None:
                if method != "REQUEST":
                    raise _not_found(domain, f"no conference has UID {uids[0]}")
                uri = self.uri_factory(domain)
                return await self._conference(uri, None, ask, created=True)
            return await self._conference(record.uri, record, ask)
        record = await self.conferences.get(target)
        if record is not None:
            if method == "PUBLISH":
                raise _forbidden(domain, "PUBLISH to a conference; send REQUEST")
            return await self._conference(target, record, ask)
        if method in PUBLISHING_METHODS and self._organized_by(calendar, target):
            return await self._publish(target, domain, ask)
        if method == "PUBLISH":
            raise _forbidden(domain, "PUBLISH goes to the organizer's own address")
        if method != "REQUEST" or not lists_conference(calendar, target):
            raise _not_found(domain, f"no conference {target}")
        await self._check_new_uri(target, domain, uids, who, now)
        return await self._conference(target, None, ask)

    @staticmethod
    def _organized_by(calendar: Component, address: str) -> bool:
        comps = scheduling_components(calendar)
        return bool(comps) and all(
            isinstance(c.value("ORGANIZER"), str)
            and normalize_address(str(c.value("ORGANIZER"))) == address
            for c in comps
        )

    async def _check_new_uri(
        self, uri: str, domain: str, uids: Sequence[str], who: str, now: float
    ) -> None:
        """
        Refuse to create a conference at a named URI that is a user's:
        the sender's own address or any L{UserDirectory.why_user} names.
        """
        if uri == who:
            raise _forbidden(domain, f"{uri} is your own address, not a conference")
        reason = await self.users.why_user(uri, now)
        if reason is not None:
            raise _forbidden(domain, f"{uri} {reason}, not a conference")
        if len(uids) != 1:
            raise _bad(domain, f"a conference is one event (UID), not {len(uids)}")
        other = await self.conferences.get_by_uid(uids[0])
        if other is not None:
            raise _forbidden(domain, f"UID {uids[0]} is already the conference {other.uri}")

    # Conferences ---------------------------------------------------------------------

    async def _conference(
        self,
        uri: str,
        record: Optional[ConferenceRecord],
        ask: _Ask,
        *,
        created: bool = False,
    ) -> Outcome:
        body, who, now, policy = ask.body, ask.who, ask.now, ask.policy
        domain = uri.rpartition("@")[2]
        method = body.method or ""
        incoming = body.calendar.copy()
        uids = uids_of(incoming)
        if len(uids) > 1:
            raise _bad(domain, f"a conference is one event (UID), not {len(uids)}")
        if method == "REQUEST":
            factory = f"sip:{FACTORY_USER}@{domain}"
            assign_uri(incoming, factory, uri, add_room=created)
            if not lists_conference(incoming, uri):
                raise _bad(domain, f"{uri} is not an ATTENDEE with CUTYPE ROOM or RESOURCE")
        try:
            stored = calendar_of(record) if record is not None else None
        except CalendarError as e:
            log.error("Stored conference {uri} unreadable: {error}", uri=uri, error=e)
            raise SIPProtocolError("Stored conference unreadable", 500) from None
        result = process(
            stored, incoming, who, body.params, policy=policy, now=now, server_addresses=[uri]
        )
        outcome = Outcome(outgoing=list(result.outgoing), originator=uri, conference=uri)
        if not result.accepted:
            if result.status.code == "3.4":
                outcome.warning = f"ignored: {result.code} {result.reason}"
                log.info("Stale iTIP {method} for {uri} ignored", method=method, uri=uri)
                if record is not None and stored is not None:
                    await self.bookings.repair(record, stored, now)
                return outcome
            if outcome.outgoing:
                # RFC 5546 3.2.4: an ADD for an unknown event asks for a REFRESH.
                self._send(outcome, as_xcal=body.mime != ICAL)
            raise refusal(result.status, domain)
        if method in ("REFRESH", "COUNTER", "DECLINECOUNTER") or result.state is None:
            return outcome
        state = result.state
        uid = uids[0] if uids else ""
        if method == "REQUEST":
            others = subset(state, lambda u: u != uid)
            if scheduling_components(others) and overlaps(
                subset(state, lambda u: u == uid), others, utc_datetime(now)
            ):
                log.info("Conference {uri} is booked; declined {uid}", uri=uri, uid=uid)
                outcome.outgoing = [decline(incoming, uri, now)]
                return outcome
            if await self._busy_outside(uri, uid, state, stored, now):
                log.info(
                    "Conference {uri} is busy in its CalDAV calendar; declined {uid}",
                    uri=uri,
                    uid=uid,
                )
                outcome.outgoing = [decline(incoming, uri, now)]
                return outcome
            if stored is not None and uid not in uids_of(stored):
                state = prune(state, uid, now)
        self.bookings.check(state, domain)
        new = record_for(uri, state, record, now)
        await self.bookings.store(new, record, state, max_per_organizer=self.max_per_organizer)
        log.info("iTIP {method} applied to {uri} by {who}", method=method, uri=uri, who=who)
        for hook in self.applied:
            hook(uri)
        await release_when_cancelled(self.bindings, record, new, now, self.listeners)
        return outcome

    # Publishing -----------------------------------------------------------------------

    async def _publish(self, owner: str, domain: str, ask: _Ask) -> Outcome:
        """
        PUBLISH (or CANCEL/ADD of what was published) to the organizer's own
        address: kept as C{publish} calendar entries, one per UID.
        """
        body, who, now, policy = ask.body, ask.who, ask.now, ask.policy
        uids = uids_of(body.calendar)
        entries = {e.uid: e for e in await self.calendars.entries(owner) if e.uid in uids}
        stored: Optional[Component] = None
        for uid in uids:
            entry = entries.get(uid)
            if entry is None:
                continue
            if entry.source != SOURCE_PUBLISH:
                raise _forbidden(domain, f"UID {uid} is a conference; send it to the conference")
            try:
                parsed = parse_xcal_calendar(entry.calendar)
            except CalendarError:
                log.error("Published entry {uid} of {owner} unreadable", uid=uid, owner=owner)
                continue
            if stored is None:
                stored = new_calendar(PRODID)
            stored.components.extend(parsed.components)
        result = process(stored, body.calendar, who, body.params, policy=policy, now=now)
        if not result.accepted:
            if result.status.code == "3.4":
                return Outcome(warning=f"ignored: {result.code} {result.reason}")
            raise refusal(result.status, domain)
        state = result.state
        assert state is not None
        self.bookings.check(state, domain)
        published = []
        for uid in uids:
            part = subset(state, lambda u, uid=uid: u == uid, "PUBLISH")  # type: ignore[misc]
            published.append(CalendarEntry(owner, uid, to_xcal(part), SOURCE_PUBLISH, now))
        await self.bookings.publish(owner, published)
        log.info("{who} published {n} object(s) for {owner}", who=who, n=len(uids), owner=owner)
        return Outcome()


def install_scheduler(
    router: CoreRouter,
    sender: RequestSender,
    stores: Stores,
    *,
    reactor: IReactorTime,
    endpoint: Callable[[], Optional[UDPEndpoint]],
    route: Optional[URISender] = None,
    federation: Optional[Federation] = None,
    max_per_organizer: Optional[int] = None,
    trust: Optional[TrustSettings] = None,
    accounts: Optional[IAccounts] = None,
    listeners: Sequence[Callable[[str], None]] = (),
    max_attendees: Optional[int] = DEFAULT_MAX_ATTENDEES,
    max_organizer_bytes: Optional[int] = DEFAULT_MAX_ORGANIZER_BYTES,
) -> SchedulingHandler:
    """
    Build the scheduler over C{stores}, with a L{Messenger} that sends
    through C{sender}, and register it with C{router}.

    @param reactor: the reactor of the outgoing MESSAGEs.
    @param endpoint: where outgoing UDP requests leave from
        (L{conference.app.outbound.udp_endpoint_of}).
    @param route: sends to any SIP URI (RFC 3263), so answers reach
        other domains and TCP/TLS contacts; L{None}: registered UDP only.
    @param federation: admits signed organizers of other domains
        (docs/federation.rst); L{None}: only authenticated users schedule.
    @param max_per_organizer: the per-organizer conference cap.
    @param trust: the S/MIME settings, if any: outgoing bodies are signed
        with their credentials.
    @param accounts: the server's accounts, whose addresses no conference
        may take (docs/scheduling.rst).
    @param listeners: told the address of each conference whose bindings a
        cancellation released (the binding subscriptions).
    @param max_attendees: and C{max_organizer_bytes}: the caps of
        L{Bookings} (L{None}: none).
    """
    messenger = Messenger(
        sender,
        stores.registrations,
        domain_of=router.domain_of,
        endpoint=endpoint,
        reactor=reactor,
        default_domain=router.default_domain,
        tag_factory=new_tag,
        branch_factory=new_branch,
        sign=trust.signer if trust is not None else None,
        route=route,
    )
    handler = SchedulingHandler(
        stores.conferences,
        stores.calendars,
        stores.bindings,
        stores.registrations,
        messenger,
        domain_of=router.domain_of,
        default_domain=router.default_domain,
        tag_factory=new_tag,
        max_per_organizer=max_per_organizer,
        trust=trust,
        accounts=accounts,
        max_attendees=max_attendees,
        max_organizer_bytes=max_organizer_bytes,
    )
    handler.listeners.extend(listeners)
    handler.federation = federation
    router.add_handler(handler)
    return handler


__all__ = [
    "FACTORY_USER",
    "Outcome",
    "SchedulingHandler",
    "SentByApprovals",
    "assign_uri",
    "delegating_principals",
    "install_scheduler",
    "new_conference_uri",
    "refusal",
]
