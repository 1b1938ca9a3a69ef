# -*- test-case-name: tests.app.test_subscriptions -*-
"""
Subscriptions to an owner's bindings: the notifier side of the C{binding}
event package (RFC 6665), our answer to the BIND draft's open issue.

It keeps the dialogs SUBSCRIBE creates, their expiry timers on the injected
reactor, and sends a NOTIFY with the owner's full state on subscribing,
refreshing, every committed change and every lapse of a binding; the
package's rules (what a NOTIFY shows, to whom) stay in
L{conference.bindings.subscription}.
"""

from __future__ import annotations

from typing import (
    Any,
    Callable,
    Dict,
    FrozenSet,
    Iterable,
    List,
    Optional,
    Protocol,
    Sequence,
    Set,
    Tuple,
)

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from conference.app.bind import OwnerResolver, identity_of, store_failure
from conference.app.core import RequestContext, is_ip_literal
from conference.bindings.access import Owner, normalize_aor, visible_records
from conference.bindings.logic import without_one_time
from conference.bindings.subscription import (
    BindingSubscription,
    SubscriptionPolicy,
    decide_subscription,
    notify_content,
)
from conference.interfaces import IBindingStore, IRequestHandler
from conference.sip.dialog import Dialog, DialogTable
from conference.sip.errors import RemoteProtocolError, SIPProtocolError
from conference.sip.message import Request, Response, make_response
from conference.sip.transaction import Peer
from conference.sip.transaction_model import new_branch, new_tag
from conference.sip.uri import SIPURI

__all__ = ["BindingSubscriptions", "RequestSender", "Watch"]

log = Logger()


class RequestSender(Protocol):
    """
    What sends the requests the server originates (L{SIPServer} does).
    """

    def send_request(self, request: Request, peer: Peer) -> Deferred[Response]:
        """
        Send C{request} to C{peer}; fire with its final response, fail
        with L{TimeoutError} when none comes.
        """


class Watch:
    """
    One subscription: its dialog, whom it watches, what it may see, and
    the NOTIFY in flight.

    @ivar dialog: the dialog the SUBSCRIBE created.
    @ivar owner: the owner whose bindings are watched.
    @ivar subscriber: the authenticated subscriber's address of record.
    @ivar terms: the accepted L{BindingSubscription}.
    @ivar expires_at: when it lapses (reactor time).
    @ivar peer: where NOTIFYs go.
    @ivar final: the termination reason once it is ending, else L{None}.
    """

    def __init__(
        self,
        dialog: Dialog,
        owner: Owner,
        *,
        subscriber: str,
        terms: BindingSubscription,
        expires_at: float,
        peer: Peer,
        sent_by: str,
    ) -> None:
        self.dialog = dialog
        self.owner = owner
        self.subscriber = subscriber
        self.terms = terms
        self.expires_at = expires_at
        self.peer = peer
        self.sent_by = sent_by
        self.final: Optional[str] = None
        self.busy = False
        self.dirty = False
        self.ended = False
        self.notified = 0
        self.timer: Optional[IDelayedCall] = None
        self.lapse: Optional[IDelayedCall] = None

    def __repr__(self) -> str:
        return f"<Watch {self.subscriber} -> {self.owner.uri} {self.dialog.call_id}>"


def _sent_by(peer: Peer, request: Request) -> str:
    """
    Our address for the Via and Contact of requests to C{peer}: the local
    address of the socket the SUBSCRIBE came on, unless it is a wildcard,
    then the host the subscriber addressed.
    """
    transport = getattr(peer.connection, "transport", None)
    get_host = getattr(transport, "getHost", None)
    host: Optional[str] = None
    port: Optional[int] = None
    if get_host is not None:
        address = get_host()
        host, port = getattr(address, "host", None), getattr(address, "port", None)
    if not host or host in ("0.0.0.0", "::"):
        host = getattr(request.uri, "host", None) or "localhost"
        port = port or getattr(request.uri, "port", None)
    assert host is not None
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"{shown}:{port}" if port else shown


def _notify_peer(dialog: Dialog, source: Peer) -> Peer:
    """
    Where the NOTIFYs of C{dialog} go: the subscriber's Contact when it is
    an IP address and no proxy is on the route, else where the SUBSCRIBE
    came from (on the same connection for streams).
    """
    target = dialog.remote_target
    if (
        source.reliable
        or dialog.route_set
        or not isinstance(target, SIPURI)
        or not is_ip_literal(target.host)
    ):
        return source
    return Peer(source.transport, target.host.strip("[]"), target.port or 5060, source.connection)


@implementer(IRequestHandler)
class BindingSubscriptions:
    """
    Answers SUBSCRIBE for the C{binding} package and sends the NOTIFYs.

    Call L{changed} with an owner URI after each committed change of its
    bindings (the BIND handler's listener).

    @ivar store: the L{IBindingStore} state is read from.
    @ivar owners: the L{OwnerResolver} (the same one BIND uses).
    @ivar dialogs: the subscription dialogs.
    """

    methods = ("SUBSCRIBE",)
    accepts: Dict[str, Sequence[str]] = {}

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
        self.store = store
        self.owners = owners
        self.sender = sender
        self.reactor = reactor
        self.policy = policy if policy is not None else SubscriptionPolicy()
        self.admins: FrozenSet[str] = frozenset(normalize_aor(a) for a in admins)
        self.dialogs = DialogTable()
        self._challenge = challenge
        self._tag_factory = tag_factory
        self._branch_factory = branch_factory
        self._by_owner: Dict[str, Set[Watch]] = {}
        self._by_dialog: Dict[Tuple[str, str, Optional[str]], Watch] = {}

    # Inspection --------------------------------------------------------------

    def watches(self, owner: Optional[str] = None) -> List[Watch]:
        """
        The live subscriptions (of C{owner}, if given).
        """
        if owner is not None:
            return list(self._by_owner.get(owner, ()))
        return [w for ws in self._by_owner.values() for w in ws]

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
            return _failed(e)
        d: Deferred[Any] = self.owners.resolve(request.uri)
        d.addCallback(self._subscribe, request, context, subscriber, terms)
        return d

    def handle_ack(self, request: Request, context: RequestContext) -> None:
        """
        SUBSCRIBE has no ACK; nothing to do.
        """

    def handle_cancel(self, request: Request, context: RequestContext) -> None:
        """
        SUBSCRIBE is answered at once; nothing to cancel.
        """

    def handle_timeout(self, request: Request) -> None:
        """
        SUBSCRIBE is not INVITE; nothing awaits an ACK.
        """

    def _subscribe(
        self,
        owner: Owner,
        request: Request,
        context: RequestContext,
        subscriber: str,
        terms: BindingSubscription,
    ) -> Response:
        sent_by = _sent_by(context.peer, request)
        scheme = "sips" if getattr(request.uri, "scheme", "sip") == "sips" else "sip"
        transport = context.peer.transport.lower()
        suffix = "" if transport == "udp" else f";transport={transport}"
        contact = f"<{scheme}:{sent_by}{suffix}>"
        response = self._ok(request, terms.expires, contact)
        dialog = Dialog.uas(request, response, contact)
        watch = Watch(
            dialog,
            owner,
            subscriber=subscriber,
            terms=terms,
            expires_at=context.now + terms.expires,
            peer=_notify_peer(dialog, context.peer),
            sent_by=sent_by,
        )
        self.dialogs.add(dialog)
        self._by_dialog[dialog.key] = watch
        self._by_owner.setdefault(owner.uri, set()).add(watch)
        if terms.expires == 0:
            watch.final = "timeout"
        else:
            watch.timer = self.reactor.callLater(terms.expires, self._expired, watch)
        log.info(
            "{subscriber} subscribed to the bindings of {owner} for {expires} s",
            subscriber=subscriber,
            owner=owner.uri,
            expires=terms.expires,
        )
        # After the 200 has gone out (RFC 6665 section 4.2.1.1 allows either
        # order; this one suits every peer).
        self.reactor.callLater(0, self._kick, watch)
        return response

    def _refresh(
        self,
        request: Request,
        context: RequestContext,
        subscriber: str,
        terms: BindingSubscription,
    ) -> Response:
        dialog = self.dialogs.match(request)
        watch = self._by_dialog.get(dialog.key) if dialog is not None else None
        if dialog is None or watch is None or watch.final is not None:
            raise RemoteProtocolError("Subscription does not exist", 481)
        if normalize_aor(subscriber) != normalize_aor(watch.subscriber):
            raise RemoteProtocolError(f"{subscriber} does not hold this subscription", 403)
        watch.terms = terms
        watch.expires_at = context.now + terms.expires
        _cancel(watch.timer)
        watch.timer = None
        if terms.expires == 0:
            watch.final = "timeout"
            self._forget_owner(watch)
        else:
            watch.timer = self.reactor.callLater(terms.expires, self._expired, watch)
        self.reactor.callLater(0, self._kick, watch)
        return self._ok(request, terms.expires, dialog.local_contact)

    def _ok(self, request: Request, expires: int, contact: str) -> Response:
        return make_response(
            request,
            200,
            to_tag=self._tag_factory(),
            headers=[("Expires", str(expires)), ("Contact", contact)],
        )

    def _unauthenticated(self, request: Request, now: float) -> Exception:
        if self._challenge is not None:
            return self._challenge(request, now)
        return RemoteProtocolError("Subscriptions need authentication", 401)

    # Notifier ----------------------------------------------------------------

    def changed(self, owner: str) -> None:
        """
        The bindings of C{owner} changed (committed): notify its
        subscribers, after the BIND's 200 has gone out.
        """
        for watch in self.watches(owner):
            self.reactor.callLater(0, self._kick, watch)

    def _expired(self, watch: Watch) -> None:
        watch.timer = None
        if watch.ended or watch.final is not None:
            return
        watch.final = "timeout"
        self._forget_owner(watch)
        self._kick(watch)

    def _kick(self, watch: Watch) -> None:
        """
        Send the current state now, or once the NOTIFY in flight is
        answered (so NOTIFYs of one dialog never overtake each other).
        """
        if watch.ended:
            return
        if watch.busy:
            watch.dirty = True
            return
        watch.busy = True
        watch.dirty = False
        final = watch.final
        now = self.reactor.seconds()
        d: Deferred[Any] = self.store.bindings(watch.owner.uri, now, watch.terms.dispositions)
        d.addErrback(store_failure)
        d.addCallback(self._send, watch, now, final)
        d.addCallbacks(
            self._answered, self._failed, callbackArgs=(watch, final), errbackArgs=(watch,)
        )

    def _send(self, records: List[Any], watch: Watch, now: float, final: Optional[str]) -> Any:
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
        via = f"SIP/2.0/{watch.peer.transport.upper()} {watch.sent_by};branch="
        request = watch.dialog.create_request(
            "NOTIFY", via=via + self._branch_factory(), headers=content.headers
        )
        watch.notified += 1
        return self.sender.send_request(request, watch.peer)

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

    def _answered(self, response: Response, watch: Watch, final: Optional[str]) -> None:
        watch.busy = False
        if response.code >= 300:
            log.info(
                "NOTIFY to {subscriber} got {code}: subscription ended",
                subscriber=watch.subscriber,
                code=response.code,
            )
            self._end(watch)
            return
        if final is not None:
            self._end(watch)
        elif watch.dirty or watch.final is not None:
            self._kick(watch)

    def _failed(self, failure: Failure, watch: Watch) -> None:
        watch.busy = False
        log.info(
            "NOTIFY to {subscriber} failed ({error}): subscription ended",
            subscriber=watch.subscriber,
            error=failure.getErrorMessage(),
        )
        self._end(watch)

    def _forget_owner(self, watch: Watch) -> None:
        watchers = self._by_owner.get(watch.owner.uri)
        if watchers is not None:
            watchers.discard(watch)
            if not watchers:
                del self._by_owner[watch.owner.uri]
        _cancel(watch.lapse)
        watch.lapse = None

    def _end(self, watch: Watch) -> None:
        """
        Forget a subscription: its dialog, timers and owner entry.
        """
        watch.ended = True
        _cancel(watch.timer)
        watch.timer = None
        self._forget_owner(watch)
        watch.dialog.terminate()
        self.dialogs.remove(watch.dialog)
        self._by_dialog.pop(watch.dialog.key, None)

    def stop(self) -> None:
        """
        Forget every subscription and cancel its timers (the server is
        stopping; subscribers will see their subscriptions lapse).
        """
        for watch in list(self._by_dialog.values()):
            self._end(watch)


def _cancel(call: Optional[IDelayedCall]) -> None:
    if call is not None and call.active():
        call.cancel()


def _failed(error: Exception) -> Deferred[Response]:
    d: Deferred[Response] = Deferred()
    d.errback(Failure(error))
    return d
