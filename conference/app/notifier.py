# -*- test-case-name: tests.unit.app.test_notifier,tests.unit.app.test_subscriptions -*-
"""
The notifier side of RFC 6665 that every event package shares: the dialogs
SUBSCRIBE creates, their expiry timers on the injected reactor, refreshes,
and NOTIFYs sent one at a time per dialog (a change during a NOTIFY in
flight is sent once it is answered, so NOTIFYs never overtake each other).

A package subclasses L{Notifier} and says what a NOTIFY carries
(L{Notifier.notification}); L{EventRouter} hands each SUBSCRIBE to the
package its Event header names, since the core routes by method only.
"""

from __future__ import annotations

from typing import (
    Any,
    Callable,
    Dict,
    Hashable,
    List,
    Optional,
    Protocol,
    Sequence,
    Set,
    Tuple,
)

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from conference.app.core import RequestContext, is_ip_literal
from conference.interfaces import IRequestHandler
from conference.sip.dialog import Dialog, DialogTable
from conference.sip.errors import RemoteProtocolError, SIPProtocolError
from conference.sip.events import parse_event_header
from conference.sip.message import Request, Response, make_response
from conference.sip.transaction import Peer
from conference.sip.transaction_model import new_branch, new_tag
from conference.sip.uri import SIPURI

__all__ = [
    "DialogRoute",
    "EventRouter",
    "Notification",
    "Notifier",
    "RequestSender",
    "Watch",
    "failed_answer",
    "notify_peer",
    "sent_by",
]

log = Logger()

#: What a NOTIFY carries besides the dialog's own header fields: its
#: header fields (Event, Subscription-State, Content-Type, ...) and body.
Notification = Tuple[Sequence[Tuple[str, str]], bytes]


class RequestSender(Protocol):
    """
    What sends the requests the server originates (L{SIPServer} does).
    """

    def send_request(self, request: Request, peer: Peer) -> Deferred[Response]:
        """
        Send C{request} to C{peer}; fire with its final response, fail
        with L{TimeoutError} when none comes.
        """


class DialogRoute(Protocol):
    """
    What sends in-dialog requests to their next hop, resolved per RFC 3263
    (L{conference.transport.outbound.OutboundSender}).
    """

    def send_in_dialog(
        self,
        request: Request,
        hop: SIPURI,
        *,
        first: Optional[Peer] = None,
        last: Optional[Peer] = None,
    ) -> Deferred[Tuple[Response, Peer]]:
        """
        Send C{request} (without a Via) over C{first} while it is open,
        else to the targets of C{hop}, else over C{last}; fire with the
        final response and the peer that gave it.
        """


class Watch:
    """
    One subscription: its dialog, the resource it watches, and the NOTIFY
    in flight.

    @ivar dialog: the dialog the SUBSCRIBE created.
    @ivar resource: the key of what is watched (an owner or conference URI).
    @ivar target: the package's view of the resource (an L{Owner}, ...).
    @ivar subscriber: the authenticated subscriber's address of record.
    @ivar terms: the package's accepted subscription.
    @ivar expires_at: when it lapses (reactor time).
    @ivar peer: where NOTIFYs go without an outbound route.
    @ivar source: where the SUBSCRIBE (or its last refresh) came from.
    @ivar answered_by: with an outbound route, the peer that answered the
        last NOTIFY (tried first for the next one while the next hop is
        still C{answered_hop}), or L{None}.
    @ivar final: the termination reason once it is ending, else L{None}.
    @ivar shown: what the package last sent (for partial notifications).
    @ivar version: how many documents the package has sent (RFC 4575
        versions are scoped to the subscription).
    """

    def __init__(
        self,
        dialog: Dialog,
        resource: str,
        *,
        target: Any,
        subscriber: str,
        terms: Any,
        expires_at: float,
        peer: Peer,
        sent_by: str,
    ) -> None:
        self.dialog = dialog
        self.resource = resource
        self.target = target
        self.subscriber = subscriber
        self.terms = terms
        self.expires_at = expires_at
        self.peer = peer
        self.source = peer
        self.answered_by: Optional[Peer] = None
        self.answered_hop = ""
        self.sent_by = sent_by
        self.final: Optional[str] = None
        self.busy = False
        self.dirty = False
        self.ended = False
        self.full = True
        self.notified = 0
        self.version = 0
        self.shown: Any = None
        self.timer: Optional[IDelayedCall] = None
        self.lapse: Optional[IDelayedCall] = None

    @property
    def owner(self) -> Any:
        """
        The watched owner (the C{binding} package's name for L{target}).
        """
        return self.target

    def __repr__(self) -> str:
        return f"<Watch {self.subscriber} -> {self.resource} {self.dialog.call_id}>"


def sent_by(peer: Peer, request: Request) -> str:
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


def notify_peer(dialog: Dialog, source: Peer) -> Peer:
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


def failed_answer(error: Exception) -> Deferred[Response]:
    """
    A Deferred already failed with C{error} (the router turns a protocol
    error into its response).
    """
    d: Deferred[Response] = Deferred()
    d.errback(Failure(error))
    return d


def _cancel(call: Optional[IDelayedCall]) -> None:
    if call is not None and call.active():
        call.cancel()


class Notifier:
    """
    Subscription dialogs and NOTIFY sending for one event package.

    Subclasses decide SUBSCRIBEs (calling L{accept} and L{refresh}) and
    implement L{notification}; call L{changed} when a resource's state
    changes.

    @ivar dialogs: the subscription dialogs.
    """

    methods: Tuple[str, ...] = ("SUBSCRIBE",)
    accepts: Dict[str, Sequence[str]] = {}
    #: What the subscriptions are about, for log lines.
    package = "event"
    #: Sends NOTIFYs to the dialog's next hop by RFC 3263 (the service sets
    #: its outbound path here, docs/federation.rst); L{None}: to
    #: L{notify_peer} directly.
    route: Optional[DialogRoute] = None

    def __init__(
        self,
        sender: RequestSender,
        reactor: IReactorTime,
        *,
        tag_factory: Callable[[], str] = new_tag,
        branch_factory: Callable[[], str] = new_branch,
    ) -> None:
        self.sender = sender
        self.reactor = reactor
        self.dialogs = DialogTable()
        self._tag_factory = tag_factory
        self._branch_factory = branch_factory
        self._by_resource: Dict[str, Set[Watch]] = {}
        self._by_dialog: Dict[Hashable, Watch] = {}

    # Inspection --------------------------------------------------------------

    def watches(self, resource: Optional[str] = None) -> List[Watch]:
        """
        The live subscriptions (to C{resource}, if given).
        """
        if resource is not None:
            return list(self._by_resource.get(resource, ()))
        return [w for ws in self._by_resource.values() for w in ws]

    # What a package provides -------------------------------------------------

    def notification(self, watch: Watch, now: float, final: Optional[str]) -> Deferred[Any]:
        """
        Fire with the L{Notification} for C{watch} now (C{final}: the
        termination reason of its last one), or with L{None} when there is
        nothing new to send.
        """
        raise NotImplementedError

    # IRequestHandler -------------------------------------------------------

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

    # Dialogs -----------------------------------------------------------------

    def accept(
        self,
        request: Request,
        context: RequestContext,
        *,
        resource: str,
        target: Any,
        subscriber: str,
        terms: Any,
        expires: int,
        status: int = 200,
        final: Optional[str] = None,
    ) -> Response:
        """
        Create the subscription an initial SUBSCRIBE asks for: the 200, the
        dialog, the expiry timer, and the first NOTIFY right after the 200.

        @param status: 202 for the implicit subscription of a REFER
            (RFC 3515), which has no Expires.
        @param final: a subscription that ends with its first NOTIFY, for
            this reason (a REFER whose outcome is already known).
        """
        via_host = sent_by(context.peer, request)
        scheme = "sips" if getattr(request.uri, "scheme", "sip") == "sips" else "sip"
        transport = context.peer.transport.lower()
        suffix = "" if transport == "udp" else f";transport={transport}"
        contact = f"<{scheme}:{via_host}{suffix}>"
        response = self._ok(request, expires, contact, status)
        dialog = Dialog.uas(request, response, contact)
        watch = Watch(
            dialog,
            resource,
            target=target,
            subscriber=subscriber,
            terms=terms,
            expires_at=context.now + expires,
            peer=notify_peer(dialog, context.peer),
            sent_by=via_host,
        )
        watch.source = context.peer
        self.dialogs.add(dialog)
        self._by_dialog[dialog.key] = watch
        self._by_resource.setdefault(resource, set()).add(watch)
        if final is not None or expires == 0:
            watch.final = final or "timeout"
        else:
            watch.timer = self.reactor.callLater(expires, self._expired, watch)
        log.info(
            "{subscriber} subscribed to {package} of {resource} for {expires} s",
            subscriber=subscriber,
            package=self.package,
            resource=resource,
            expires=expires,
        )
        # After the 200 has gone out (RFC 6665 section 4.2.1.1 allows either
        # order; this one suits every peer).
        self.reactor.callLater(0, self._kick, watch)
        return response

    def refresh(
        self,
        request: Request,
        context: RequestContext,
        subscriber: str,
        terms: Any,
        expires: int,
        *,
        same: Callable[[str, str], bool],
    ) -> Response:
        """
        Refresh (or, with C{expires} 0, end) the subscription of an
        in-dialog SUBSCRIBE; the next NOTIFY carries the full state.

        @param same: whether two subscriber addresses are the same one.
        @raise RemoteProtocolError: 481 for an unknown or ending
            subscription, 403 when another subscriber sent it.
        """
        dialog = self.dialogs.match(request)
        watch = self._by_dialog.get(dialog.key) if dialog is not None else None
        if dialog is None or watch is None or watch.final is not None:
            raise RemoteProtocolError("Subscription does not exist", 481)
        if not same(subscriber, watch.subscriber):
            raise RemoteProtocolError(f"{subscriber} does not hold this subscription", 403)
        watch.terms = terms
        watch.expires_at = context.now + expires
        watch.full = True
        if context.peer != watch.source:
            # The subscriber refreshed over another flow: the old one may be gone.
            watch.source = context.peer
            watch.answered_by = None
        _cancel(watch.timer)
        watch.timer = None
        if expires == 0:
            watch.final = "timeout"
            self._forget_resource(watch)
        else:
            watch.timer = self.reactor.callLater(expires, self._expired, watch)
        self.reactor.callLater(0, self._kick, watch)
        return self._ok(request, expires, dialog.local_contact)

    def _ok(self, request: Request, expires: int, contact: str, status: int = 200) -> Response:
        headers = [("Contact", contact)]
        if request.method == "SUBSCRIBE":
            headers.insert(0, ("Expires", str(expires)))
        return make_response(request, status, to_tag=self._tag_factory(), headers=headers)

    # Notifier ----------------------------------------------------------------

    def changed(self, resource: str) -> None:
        """
        The state of C{resource} changed: notify its subscribers, after the
        answer to the request that changed it has gone out.
        """
        for watch in self.watches(resource):
            self.reactor.callLater(0, self._kick, watch)

    def end_all(self, resource: str, reason: str = "noresource") -> None:
        """
        Terminate every subscription to C{resource} (it is gone) with a
        last NOTIFY saying C{reason}.
        """
        for watch in self.watches(resource):
            watch.final = reason
            _cancel(watch.timer)
            watch.timer = None
            self._forget_resource(watch)
            self.reactor.callLater(0, self._kick, watch)

    def _expired(self, watch: Watch) -> None:
        watch.timer = None
        if watch.ended or watch.final is not None:
            return
        watch.final = "timeout"
        self._forget_resource(watch)
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
        d = self.notification(watch, now, final)
        d.addCallback(self._send, watch)
        d.addCallbacks(
            self._answered, self._failed, callbackArgs=(watch, final), errbackArgs=(watch,)
        )

    def _send(self, content: Optional[Notification], watch: Watch) -> Any:
        if content is None:
            return None
        headers, body = content
        content_type = next((v for n, v in headers if n.lower() == "content-type"), None)
        hop = watch.dialog.next_hop() if self.route is not None else None
        via: Optional[str] = None
        if hop is None:
            via = f"SIP/2.0/{watch.peer.transport.upper()} {watch.sent_by};branch="
            via += self._branch_factory()
        request = watch.dialog.create_request(
            "NOTIFY",
            via=via,
            headers=[(n, v) for n, v in headers if n.lower() != "content-type"],
            body=body,
            content_type=content_type,
        )
        watch.notified += 1
        if hop is None:
            return self.sender.send_request(request, watch.peer)
        return self._routed(request, hop, watch)

    def _routed(self, request: Request, hop: SIPURI, watch: Watch) -> Deferred[Response]:
        """
        Send a NOTIFY through the outbound route (RFC 3263 on the dialog's
        next hop, docs/federation.rst): first to the peer that answered the
        last one, or, with no route set, over the stream connection the
        subscriber opened; the SUBSCRIBE's source is the last resort.
        """
        assert self.route is not None
        source = watch.source
        # The peer that answered is kept while the hop stays (a refresh
        # may name another Contact).
        first = watch.answered_by if watch.answered_hop == str(hop) else None
        if first is None and source.reliable and not watch.dialog.route_set:
            first = source
        d = self.route.send_in_dialog(request, hop, first=first, last=source)

        def answered(result: Tuple[Response, Peer]) -> Response:
            response, peer = result
            watch.answered_by, watch.answered_hop = peer, str(hop)
            return response

        return d.addCallback(answered)

    def _answered(self, response: Optional[Response], watch: Watch, final: Optional[str]) -> None:
        watch.busy = False
        if response is not None and response.code >= 300:
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

    def _forget_resource(self, watch: Watch) -> None:
        watchers = self._by_resource.get(watch.resource)
        if watchers is not None:
            watchers.discard(watch)
            if not watchers:
                del self._by_resource[watch.resource]
        _cancel(watch.lapse)
        watch.lapse = None

    def _end(self, watch: Watch) -> None:
        """
        Forget a subscription: its dialog, timers and resource entry.
        """
        watch.ended = True
        _cancel(watch.timer)
        watch.timer = None
        self._forget_resource(watch)
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


@implementer(IRequestHandler)
class EventRouter:
    """
    The one SUBSCRIBE handler: hands each SUBSCRIBE to the handler of the
    event package its Event header names, and answers 489 with
    Allow-Events for any other (RFC 6665 section 8.2.2).
    """

    methods = ("SUBSCRIBE",)
    accepts: Dict[str, Sequence[str]] = {}

    def __init__(self) -> None:
        self.packages: Dict[str, IRequestHandler] = {}

    def add(self, package: str, handler: IRequestHandler) -> None:
        """
        Serve C{package} with C{handler}.
        """
        self.packages[package] = handler

    def handle_request(
        self, request: Request, context: RequestContext
    ) -> Response | Deferred[Response]:
        """
        The package's answer, or 489/400 for a missing, unknown or
        malformed Event.
        """
        try:
            name, _ = parse_event_header(request.header("event"), sorted(self.packages))
        except SIPProtocolError as e:
            return failed_answer(e)
        return self.packages[name].handle_request(request, context)

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
