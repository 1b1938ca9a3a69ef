# -*- test-case-name: tests.unit.app.test_subscriptions -*-
"""
Subscriptions to an owner's bindings: the notifier side of the C{binding}
event package (RFC 6665), our answer to the BIND draft's open issue.

The dialogs, expiry timers and NOTIFY sending are the shared machinery of
L{conference.app.notifier}; this module says what a NOTIFY of the package
carries (the owner's full state, on subscribing, refreshing, every
committed change and every lapse of a binding); the package's rules (what
a NOTIFY shows, to whom) stay in L{conference.bindings.subscription}.
"""

from __future__ import annotations

from typing import Any, Callable, FrozenSet, Iterable, List, Optional

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from conference.app.bind import OwnerResolver, identity_of, store_failure
from conference.app.core import RequestContext
from conference.app.notifier import (
    Notifier,
    RequestSender,
    Watch,
    failed_answer,
    notify_peer,
    sent_by,
)
from conference.bindings.access import Owner, normalize_aor, visible_records
from conference.bindings.logic import without_one_time
from conference.bindings.subscription import (
    BindingSubscription,
    SubscriptionPolicy,
    decide_subscription,
    notify_content,
)
from conference.interfaces import IBindingStore, IRequestHandler
from conference.sip.errors import RemoteProtocolError, SIPProtocolError
from conference.sip.message import Request, Response
from conference.sip.transaction_model import new_branch, new_tag

__all__ = ["BindingSubscriptions", "RequestSender", "Watch"]

log = Logger()

# The names the tests (and older callers) know these helpers by.
_sent_by = sent_by
_notify_peer = notify_peer


@implementer(IRequestHandler)
class BindingSubscriptions(Notifier):
    """
    Answers SUBSCRIBE for the C{binding} package and sends the NOTIFYs.

    Call L{changed} with an owner URI after each committed change of its
    bindings (the BIND handler's listener).

    @ivar store: the L{IBindingStore} state is read from.
    @ivar owners: the L{OwnerResolver} (the same one BIND uses).
    @ivar dialogs: the subscription dialogs.
    """

    package = "the bindings"

    def __init__(
        self,
        store: IBindingStore,
        owners: OwnerResolver,
        sender: RequestSender,
        reactor: IReactorTime,
        *,
        policy: Optional[SubscriptionPolicy] = None,
        admins: Iterable[str] = (),
        challenge: Optional[Callable[[Request, float], Exception]] = None,
        tag_factory: Callable[[], str] = new_tag,
        branch_factory: Callable[[], str] = new_branch,
    ) -> None:
        """
        @param challenge: builds the 401 for C{(request, now)} when a
            SUBSCRIBE comes without an identity; without it, a plain 401.
        """
        super().__init__(sender, reactor, tag_factory=tag_factory, branch_factory=branch_factory)
        self.store = store
        self.owners = owners
        self.policy = policy if policy is not None else SubscriptionPolicy()
        self.admins: FrozenSet[str] = frozenset(normalize_aor(a) for a in admins)
        self._challenge = challenge

    # IRequestHandler -------------------------------------------------------

    def handle_request(self, request: Request, context: RequestContext) -> Deferred[Response]:
        """
        Accept, refresh or end a subscription; faults are their 4xx.
        """
        try:
            subscriber = identity_of(context)
            if subscriber is None:
                raise self._unauthenticated(request, context.now)
            terms = decide_subscription(
                request.header("event"),
                request.header("expires"),
                request.header_values("accept"),
                self.policy,
            )
            if request.to.tag is not None:
                return succeed(self._refresh(request, context, subscriber, terms))
        except SIPProtocolError as e:
            return failed_answer(e)
        d: Deferred[Any] = self.owners.resolve(request.uri)
        d.addCallback(self._subscribe, request, context, subscriber, terms)
        return d

    def _subscribe(
        self,
        owner: Owner,
        request: Request,
        context: RequestContext,
        subscriber: str,
        terms: BindingSubscription,
    ) -> Response:
        return self.accept(
            request,
            context,
            resource=owner.uri,
            target=owner,
            subscriber=subscriber,
            terms=terms,
            expires=terms.expires,
        )

    def _refresh(
        self,
        request: Request,
        context: RequestContext,
        subscriber: str,
        terms: BindingSubscription,
    ) -> Response:
        return self.refresh(
            request, context, subscriber, terms, terms.expires, same=_same_subscriber
        )

    def _unauthenticated(self, request: Request, now: float) -> Exception:
        if self._challenge is not None:
            return self._challenge(request, now)
        return RemoteProtocolError("Subscriptions need authentication", 401)

    # Notifier ----------------------------------------------------------------

    def notification(self, watch: Watch, now: float, final: Optional[str]) -> Deferred[Any]:
        """
        The owner's full state as Binding header fields, read from the
        store.
        """
        d: Deferred[Any] = self.store.bindings(watch.owner.uri, now, watch.terms.dispositions)
        d.addErrback(store_failure)
        d.addCallback(self._content, watch, now, final)
        return d

    def _content(self, records: List[Any], watch: Watch, now: float, final: Optional[str]) -> Any:
        content = notify_content(
            watch.terms,
            records,
            subscriber=watch.subscriber,
            owner=watch.owner,
            now=now,
            expires_at=now if final is not None else watch.expires_at,
            admins=self.admins,
            reason=final,
        )
        if final is None:
            self._watch_lapses(watch, records, now)
        return content.headers, content.body

    def _watch_lapses(self, watch: Watch, records: List[Any], now: float) -> None:
        """
        Arrange a NOTIFY for when the first binding the subscriber sees
        lapses, since expiry changes the state without any BIND.
        """
        _cancel(watch.lapse)
        watch.lapse = None
        shown = without_one_time(
            visible_records(records, watch.subscriber, watch.owner, self.admins)
        )
        ends = [r.expires_at for r in shown if watch.terms.matches(r) and r.expires_at > now]
        if ends and min(ends) < watch.expires_at:
            watch.lapse = self.reactor.callLater(min(ends) - now, self._lapsed, watch)

    def _lapsed(self, watch: Watch) -> None:
        watch.lapse = None
        self._kick(watch)


def _cancel(call: Any) -> None:
    if call is not None and call.active():
        call.cancel()


def _same_subscriber(one: str, other: str) -> bool:
    return normalize_aor(one) == normalize_aor(other)
