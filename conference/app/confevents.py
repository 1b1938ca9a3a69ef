# -*- test-case-name: tests.unit.app.test_confevents -*-
"""
The conference event package (RFC 4575) on every conference URI: SUBSCRIBE
with C{Event: conference} gets the full C{application/conference-info+xml}
document first, then partial ones (versioned per subscription) whenever
who is in the conference, or how, changes.

Dialogs, timers and NOTIFY sending are the shared machinery of
L{conference.app.notifier}; documents are built by
L{conference.control.confinfo} from the snapshots of
L{conference.app.control.ConferenceControl}.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, FrozenSet, Iterable, Optional, Tuple

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from conference.app.bind import identity_of
from conference.app.conferences import calendar_of
from conference.app.control import ConferenceControl
from conference.app.core import RequestContext, request_target
from conference.app.notifier import Notifier, RequestSender, Watch, failed_answer
from conference.calendar.errors import CalendarError
from conference.calendar.itip import normalize_address
from conference.control.confinfo import (
    CONTENT_TYPE,
    EVENT_PACKAGE,
    ConferenceState,
    full_document,
    partial_document,
)
from conference.interfaces import IRequestHandler
from conference.records import ConferenceRecord
from conference.sip.errors import RemoteProtocolError, SIPProtocolError
from conference.sip.events import (
    SubscriptionPolicy,
    grant_expires,
    parse_event_header,
    subscription_state,
)
from conference.sip.headers import format_params, media_acceptable, parse_accept
from conference.sip.message import Request, Response
from conference.sip.transaction_model import new_branch, new_tag

__all__ = ["ConferenceSubscriptions"]

log = Logger()

#: Most live subscriptions one subscriber may hold (over all conferences),
#: and one conference may have: a SUBSCRIBE storm gets 503, not memory.
MAX_PER_SUBSCRIBER = 16
MAX_PER_CONFERENCE = 1000
RETRY_AFTER = 60


def _accepts_conference_info(values: Iterable[str]) -> bool:
    """
    Whether the Accept values allow C{application/conference-info+xml} (no
    Accept means the package's default type, RFC 6665 section 8.1.3).
    """
    listed = list(values)
    if not listed:
        return True
    return media_acceptable([r for v in listed for r in parse_accept(v)], CONTENT_TYPE)


@implementer(IRequestHandler)
class ConferenceSubscriptions(Notifier):
    """
    Answers SUBSCRIBE for the C{conference} package and sends the NOTIFYs.

    Who may subscribe: the organizer and the attendees of the conference's
    VEVENT and the server's admins; anyone else gets 403.
    """

    package = "the conference state"

    def __init__(
        self,
        control: ConferenceControl,
        domain_of: Callable[[str], Optional[str]],
        sender: RequestSender,
        reactor: IReactorTime,
        *,
        policy: Optional[SubscriptionPolicy] = None,
        admins: Iterable[str] = (),
        challenge: Optional[Callable[[Request, float], Exception]] = None,
        max_per_subscriber: int = MAX_PER_SUBSCRIBER,
        max_per_conference: int = MAX_PER_CONFERENCE,
        tag_factory: Callable[[], str] = new_tag,
        branch_factory: Callable[[], str] = new_branch,
    ) -> None:
        super().__init__(sender, reactor, tag_factory=tag_factory, branch_factory=branch_factory)
        self.control = control
        self.domain_of = domain_of
        self.policy = policy if policy is not None else SubscriptionPolicy(max_expires=7200)
        self.admins: FrozenSet[str] = frozenset(normalize_address(a) for a in admins)
        self.max_per_subscriber = max_per_subscriber
        self.max_per_conference = max_per_conference
        self._challenge = challenge
        control.focus.listeners.append(self.changed)

    # SUBSCRIBE ---------------------------------------------------------------

    def handle_request(self, request: Request, context: RequestContext) -> Deferred[Response]:
        """
        Accept, refresh or end a subscription; faults are their 4xx.
        """
        try:
            subscriber = identity_of(context)
            if subscriber is None:
                if self._challenge is not None:
                    raise self._challenge(request, context.now)
                raise RemoteProtocolError("Subscriptions need authentication", 401)
            _, params = parse_event_header(request.header("event"), (EVENT_PACKAGE,))
            if not _accepts_conference_info(request.header_values("accept")):
                raise RemoteProtocolError("Not Acceptable", 406, [("Accept", CONTENT_TYPE)])
            expires = grant_expires(request.header("expires"), self.policy)
            terms = params.get("id")
            if request.to.tag is not None:
                return succeed(
                    self.refresh(request, context, subscriber, terms, expires, same=_same_address)
                )
            uri = self._target(request)
        except SIPProtocolError as e:
            return failed_answer(e)
        d: Deferred[Any] = self.control.focus.stores.conferences.get(uri)
        d.addCallback(self._subscribe, request, context, (subscriber, terms, expires))
        return d

    def _target(self, request: Request) -> str:
        return request_target(request, self.domain_of)

    def _subscribe(
        self,
        record: Optional[ConferenceRecord],
        request: Request,
        context: RequestContext,
        asked: Tuple[str, Optional[str], int],
    ) -> Response:
        subscriber, event_id, expires = asked
        if record is None:
            raise RemoteProtocolError("Not Found (no such conference)", 404)
        address = normalize_address(subscriber)
        if address not in self.admins:
            try:
                policy = self.control.policy(record, calendar_of(record))
            except CalendarError:
                raise RemoteProtocolError("Conference unavailable", 500) from None
            if not policy.is_member(address):
                raise RemoteProtocolError(
                    "Forbidden (only the organizer and attendees may subscribe)", 403
                )
        mine = [w for w in self.watches() if normalize_address(w.subscriber) == address]
        if len(mine) >= self.max_per_subscriber or (
            len(self.watches(record.uri)) >= self.max_per_conference
        ):
            raise RemoteProtocolError(
                "Service Unavailable (too many subscriptions)",
                503,
                [("Retry-After", str(RETRY_AFTER))],
            )
        return self.accept(
            request,
            context,
            resource=record.uri,
            target=record.uri,
            subscriber=subscriber,
            terms=event_id,
            expires=expires,
        )

    # NOTIFY ------------------------------------------------------------------

    def notification(self, watch: Watch, now: float, final: Optional[str]) -> Deferred[Any]:
        """
        The full document first (and after a refresh), then what changed;
        nothing when nothing did.  A conference that is gone ends the
        subscription (C{noresource}).
        """
        d = self.control.state(watch.resource, now)
        d.addCallback(self._content, watch, now, final)
        return d

    def _content(
        self, state: Optional[ConferenceState], watch: Watch, now: float, final: Optional[str]
    ) -> Any:
        if state is None and final is None:
            final = watch.final = "noresource"
            self._forget_resource(watch)
        body: Optional[bytes] = None
        if state is not None:
            if watch.full or watch.shown is None:
                body = full_document(state, watch.version + 1)
            else:
                body = partial_document(watch.shown, state, watch.version + 1)
            if body is not None:
                watch.version += 1
                watch.full = False
                watch.shown = state
        if body is None and final is None:
            return None
        remaining = int(watch.expires_at - now + 0.999)
        if final is None and remaining > 0:
            status = subscription_state("active", expires=remaining)
        else:
            status = subscription_state("terminated", reason=final or "timeout")
        params: Dict[str, Optional[str]] = {}
        if watch.terms is not None:
            params["id"] = watch.terms
        headers = [
            ("Event", EVENT_PACKAGE + format_params(params)),
            ("Subscription-State", status),
        ]
        if body is not None:
            headers.append(("Content-Type", CONTENT_TYPE))
        return headers, body or b""


def _same_address(one: str, other: str) -> bool:
    return normalize_address(one) == normalize_address(other)
