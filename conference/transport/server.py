# -*- test-case-name: tests.unit.transport.test_server -*-
"""
The glue between the Twisted transports and the sans-I/O SIP core.

Transports hand bytes here; this module parses them, applies RFC 3581, feeds
the transaction layer, runs the actions it returns (send, deliver to the
application, log) and keeps one reactor timer at the layer's next deadline.
It is the only place where the core meets the reactor.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence, Tuple

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from conference.deferreds import PENDING, fired_result, is_deferred
from conference.interfaces import IRouter, RequestContext
from conference.limits import BodyLimits, RateLimiter
from conference.overload import (
    OverloadControl,
    Overloaded,
    ProportionalShedding,
)
from conference.overload_feedback import OverloadFeedback
from conference.reactors import default_reactor
from conference.sip import stateless
from conference.sip import transaction as txn
from conference.sip.errors import LocalProtocolError, RemoteProtocolError, SIPProtocolError
from conference.sip.message import Message, Request, Response, error_response, make_response
from conference.sip.parser import parse_datagram, validate
from conference.sip.rawmatch import raw_branch, raw_server_key
from conference.sip.transaction_model import new_branch, new_tag
from conference.transport.refusals import Refusals

log = Logger()


def _emit(level: LogLevel, format: str, **fields: Any) -> None:
    """
    What L{log}'s C{emit} does for the one event of each transaction, less
    its check that C{level} is a L{LogLevel} (which walks every level at
    every event): the same event, with the keys L{twisted.logger} defines,
    to the same observer.
    """
    fields.update(
        log_logger=log,
        log_level=level,
        log_namespace=log.namespace,
        log_source=log.source,
        log_format=format,
        log_time=time.time(),
    )
    log.observer(fields)


# How late the timers that only end a transaction (Timer J, I, H...) may
# fire, seconds; the retransmission timers fire on time.
TIMER_SLACK = 0.05


class Sender(Protocol):
    """
    What a transport offers the server for sending bytes.
    """

    def send_bytes(self, data: bytes, host: str, port: int) -> None:
        """
        Send C{data} to (host, port), or on this connection for streams.
        """

    def local_address(self) -> Tuple[str, int]:
        """
        The address and port this transport sends from (for Contact and
        Via of what the server originates).
        """


Authenticate = Callable[..., "Optional[Deferred[Any]]"]
"""
Called as C{(request, now)}, or C{(request, now, tls_identity)} when the
request came over a TLS connection with a verified client certificate;
fires with the caller's identity (or L{None} when the request needs none and
brought none), or fails with a L{SIPProtocolError} such as a 401 challenge.
It returns a Deferred, or L{None} itself when it knows at once that the
request needs no identity and brought none (no Deferred to build and read
for every request of a server without accounts).
"""


class SIPServer(Refusals):
    """
    Runs the SIP core for a set of transports.

    @ivar layer: the sans-I/O transaction layer.
    @ivar router: the UAS core and application dispatch.
    @ivar senders: the live transports by peer connection key.
    """

    def __init__(
        self,
        router: IRouter,
        *,
        reactor: Optional[IReactorTime] = None,
        authenticate: Optional[Authenticate] = None,
        max_message_size: int = 65536,
        layer: Optional[txn.TransactionLayer] = None,
        limiter: Optional[RateLimiter] = None,
        body_limits: Optional[BodyLimits] = None,
        max_transactions: Optional[int] = None,
        answer_statelessly: bool = True,
    ) -> None:
        """
        @param limiter: per-source and per-identity rate limits.
        @param body_limits: body size caps by content type.
        @param max_transactions: the most live server transactions of the
            layer made here; new requests past it are answered
            503 statelessly.
        @param answer_statelessly: whether answers that need no
            transaction (OPTIONS, 404 and the core's refusals out of
            dialog: L{conference.sip.stateless}) are sent without one.
        """
        self._reactor: IReactorTime = default_reactor(reactor)
        self.router = router
        self.authenticate = authenticate
        self.max_message_size = max_message_size
        self.limiter = limiter
        self.body_limits = body_limits
        self.layer = (
            layer
            if layer is not None
            else txn.TransactionLayer(branch_factory=new_branch, max_server=max_transactions)
        )
        self.senders: Dict[Any, Sender] = {}
        self._timer: Optional[IDelayedCall] = None
        self._stopping: Optional[Deferred[None]] = None
        self._stop_waiters: List[Deferred[None]] = []
        self.stats: Dict[str, int] = {
            "received": 0,
            "sent": 0,
            "refused": 0,
            "dropped": 0,
            "limited": 0,
            "shed": 0,
            "overloaded": 0,
            "stateless": 0,
        }
        self._shed_noted = -60.0
        self._pending_clients: Dict[int, Deferred[Response]] = {}
        # Overload shedding (set by the service): the lag-based control and
        # the queue-wait signal.
        self.overload: Optional[OverloadControl] = None
        self.queue: Optional[ProportionalShedding] = None
        # RFC 7339 feedback in the responses to clients that ask for it.
        self.feedback: Optional[OverloadFeedback] = None
        # Stateless answers (section 8.2.7), the refusals before parsing
        # included, carry these To tags, so their ACKs are known unparsed.
        self.uas = stateless.StatelessUAS(self.layer)
        self.answer_statelessly = answer_statelessly
        # Whether the debug event of an OPTIONS answered 2xx is emitted at
        # all: the service turns it off when its log level writes no debug
        # events, since building thousands a minute that every observer
        # then drops is a twentieth of a keep-alive's cost.
        self.log_keepalives = True

    def now(self) -> float:
        """
        The injected reactor's time.
        """
        return self._reactor.seconds()

    # Transports -----------------------------------------------------------

    def add_sender(self, key: Any, sender: Sender) -> None:
        """
        Register a transport (a UDP port or a stream connection) under
        C{key}, the value it puts in L{txn.Peer.connection}.
        """
        self.senders[key] = sender

    def remove_sender(self, key: Any) -> None:
        """
        Forget a transport (a closed connection or a stopped port).
        """
        self.senders.pop(key, None)

    # Receiving ------------------------------------------------------------

    def datagram_received(
        self, data: bytes, peer: txn.Peer, arrival: Optional[float] = None
    ) -> None:
        """
        Take one UDP datagram; bad ones are answered or dropped, never raise.

        @param arrival: when the kernel received it (L{time.time}'s clock),
            if the transport knows: with L{queue}, while it sheds, its
            share of new requests is refused before parsing.
        """
        if data[:1] in b"\r\n" and not data.strip(b"\r\n"):
            return  # RFC 5626 keep-alive (a message starts with a letter)
        queue = self.queue
        if arrival is not None and queue is not None:
            now = self.now()
            waited = max(0.0, now - arrival)
            if queue.observe(waited, now) and self._refuse_unparsed(data, peer, waited):
                return
        if self._absorbed(data, peer):
            return
        try:
            message = parse_datagram(data, max_size=self.max_message_size)
        except RemoteProtocolError as e:
            self.refuse(e, peer)
            return
        if message is None:
            return
        self.message_received(message, peer, validated=True)

    def _absorbed(self, data: bytes, peer: txn.Peer) -> bool:
        """
        Absorb the ACK of a non-2xx final, or answer a retransmission of a
        request whose transaction lives, from the datagram's request line
        and top Via alone (L{conference.sip.rawmatch}); whether it was
        done.  Anything else, and any datagram from a source over its rate
        limit, takes the full path (which treats those the same way).
        """
        if len(data) > self.max_message_size:
            return False
        if stateless.raw_stateless_ack(data):
            # The ACK of a stateless answer: no transaction, no dialog.
            self.stats["received"] += 1
            return True
        branch = raw_branch(data)
        if branch is None or not self.layer.serving(branch):
            return False  # a new request (most are): straight to the parser
        found = raw_server_key(data)
        if found is None:
            return False
        method, key = found
        transaction = self.layer.absorbable(method, key)
        if transaction is None:
            return False
        now = self.now()
        limiter = self.limiter
        if limiter is not None and limiter.check_source(peer.host, method, now) is not None:
            return False  # nothing charged: the full path refuses it
        self.stats["received"] += 1
        self.run(self.layer.absorb(method, transaction, peer, now))
        return True

    def message_received(
        self, message: Message, peer: txn.Peer, *, validated: bool = False
    ) -> None:
        """
        Take one framed message from any transport.

        @param validated: whether the message comes straight from
            L{parse_datagram} or L{StreamParser}, which already
            L{validate}d it (so it is not checked twice).
        """
        self.stats["received"] += 1
        try:
            if not validated:
                validate(message)
            if isinstance(message, Request):
                self._fix_via(message, peer)
                if self._over_limits(message, peer):
                    return
                if self._stateless(message, peer):
                    return
            actions = self.layer.receive(message, peer, self.now())
        except txn.TransactionsExhausted as e:
            self._shed(message, e, peer)
            return
        except Overloaded as e:
            # Counted by method in the overload control; one log line per
            # transition into overload (conference.transport.lag), none here.
            self.stats["overloaded"] += 1
            if isinstance(message, Request):
                self.send(error_response(message, e, new_tag()), peer)
            return
        except RemoteProtocolError as e:
            if e.message is None:
                e.message = message
            self.refuse(e, peer)
            return
        except Exception:
            self.stats["dropped"] += 1
            log.failure("Unexpected error receiving {message!r}", message=message)
            return
        self.run(actions)

    def _stateless(self, request: Request, peer: txn.Peer) -> bool:
        """
        Answer a new out-of-dialog request without a transaction if its
        answer allows (RFC 3261 section 8.2.7, L{stateless.StatelessUAS}
        decides), drop the ACK and answer the CANCEL of such an answer;
        whether it was taken care of here (statelessly, or through the
        transaction made for it when its answer did not allow).
        """
        uas, now = self.uas, self.now()
        if request.method == "ACK":
            return uas.drops(request)  # streams; what the raw reader declined
        if request.method == "CANCEL":
            response = uas.cancel_answer(request, now)
            if response is not None:
                self._send_statelessly(request, peer, response, 0.0)
            return response is not None
        if not self.answer_statelessly or self._stopping is not None:
            return False
        pending = uas.start(request, peer, now)
        if pending is None:
            return False
        self._dispatch(request, pending)
        if pending.open:
            # The answer is still to come: from now on it is a transaction's.
            self._adopt(pending)
        return True

    def _adopt(self, pending: stateless.Pending) -> None:
        """
        Give C{pending} the server transaction its answer needs after all
        (refused 503 when the server is at its transaction cap).
        """
        try:
            pending.transaction = self.layer.adopt(pending.request, pending.peer, pending.arrived)
        except txn.TransactionsExhausted as e:
            pending.refused = True
            self._shed(pending.request, e, pending.peer)
            return
        self._rearm()

    def _send_statelessly(
        self, request: Request, peer: txn.Peer, response: Response, duration: float
    ) -> None:
        """
        Send C{response} without a transaction, and log it as a
        transaction's outcome is logged.
        """
        self.stats["stateless"] += 1
        if self.feedback is not None:
            self._add_feedback(response)
        host, port = response_destination(response, peer)
        self._send_bytes(response.to_bytes(), peer, host, port, response)
        self._log_outcome(request, peer, response.code, duration, "from")

    # Running actions ------------------------------------------------------

    def run(self, actions: Sequence[Any]) -> None:
        """
        Carry out the transaction layer's actions, then re-arm the timer.
        """
        for action in actions:
            try:
                self._run_one(action)
            except Exception:
                log.failure("Error running {action!r}", action=action)
        layer = self.layer
        for action in actions:
            # A server transaction that completed is done with here: its
            # request and response are held as bytes alone, and once it
            # only waits for its timer the layer retires it to a table row.
            # After every action, since later ones may read them (the
            # outcome line, a CancelReceived after the 487 it made).
            if isinstance(action, txn.TransactionCompleted) and isinstance(
                action.transaction, txn.ServerTransaction
            ):
                layer.hold(action.transaction)
        if self._stopping is not None and layer.pending() == 0:
            # A graceful stop ends with the last transaction, however it
            # went: terminated, retired, or its row expired (no action).
            self._stopped()
        self._rearm()

    def _run_one(self, action: Any) -> None:
        if isinstance(action, txn.SendMessage):
            self.send(action.message, action.peer)
        elif isinstance(action, txn.RequestReceived):
            self._dispatch(action.request, action.transaction)
        elif isinstance(action, txn.AckReceived):
            self._notify("handle_ack", action.request, action.peer)
        elif isinstance(action, txn.CancelReceived):
            # Only a CANCEL that ended the INVITE concerns its handler: after
            # the final response it changes nothing (RFC 3261 section 9.2).
            if action.terminated:
                self._notify("handle_cancel", action.transaction.request, action.transaction.peer)
        elif isinstance(action, txn.ResponseReceived):
            self._client_response(action.response, action.transaction)
        elif isinstance(action, txn.TransactionTimedOut):
            log.info(
                "Transaction {method} timed out: {reason}",
                method=action.transaction.request.method,
                reason=action.reason,
            )
            self._client_timeout(action.transaction)
            if action.transaction.request.method == "INVITE" and isinstance(
                action.transaction, txn.ServerTransaction
            ):
                handler = self.router.handler_for("INVITE")
                if handler is not None:
                    handler.handle_timeout(action.transaction.request)
        elif isinstance(action, txn.TransactionCompleted):
            self._log_transaction(action.transaction)

    def _log_transaction(self, transaction: txn.Transaction) -> None:
        """
        The one info event of a transaction, logged when its outcome is
        known: the final response sent (a request we answer, C{from} its
        peer) or received (a request we sent, C{to} its peer), else
        C{timeout}; C{duration_ms} is the latency from the request's
        arrival (or sending) to that moment.
        """
        code = transaction.final_code
        self._log_outcome(
            transaction.request,
            transaction.peer,
            code if code is not None else "timeout",
            transaction.duration,
            "to" if isinstance(transaction, txn.ClientTransaction) else "from",
        )

    def _log_outcome(
        self,
        request: Request,
        peer: txn.Peer,
        status: Any,
        duration: Optional[float],
        direction: str,
    ) -> None:
        """
        The event of one transaction (or stateless answer): C{status} is the
        final code or C{"timeout"}, C{duration} seconds from the request's
        arrival (or sending) to it.  Info, but debug for an OPTIONS answered
        2xx: keep-alives and a front end's health probes, thousands a minute
        that would bury every other line (the metrics count them all the
        same: docs/transactions.rst); not emitted at all unless
        L{log_keepalives}.
        """
        method = request.method
        keepalive = method == "OPTIONS" and isinstance(status, int) and 200 <= status < 300
        if keepalive and not self.log_keepalives:
            return
        uri = str(request.uri)
        duration_ms = duration * 1000 if duration is not None else 0.0
        call_id = request.header("call-id")
        # One event per transaction, so it must be cheap: the text is
        # formatted here in one step and the format only names it, since
        # the log formatter's per-field lookups ({peer.host}, {x:.1f}) cost
        # more than the rest of the event.  The fields stay in the event
        # for JSON logs and observers that read them.
        _emit(
            LogLevel.debug if keepalive else LogLevel.info,
            "{transaction_summary}",
            transaction_summary=(
                f"{method} {uri} {direction} {peer.host}:{peer.port}/{peer.transport} -> "
                f"{status} ({duration_ms:.1f} ms) call-id={call_id}"
            ),
            method=method,
            uri=uri,
            peer=peer,
            status=status,
            duration_ms=duration_ms,
            call_id=call_id,
            outbound=direction == "to",
        )

    def _rearm(self) -> None:
        # Timers that only end transactions may wait TIMER_SLACK, so that
        # one wake-up ends all those due by then (TransactionLayer.wake_time).
        deadline = self.layer.wake_time(TIMER_SLACK)
        if deadline is None:
            if self._timer is not None and self._timer.active():
                self._timer.cancel()
            self._timer = None
            return
        delay = max(0.0, deadline - self.now())
        if self._timer is not None and self._timer.active():
            if abs(self._timer.getTime() - deadline) < 1e-6:
                return
            self._timer.reset(delay)
            return
        self._timer = self._reactor.callLater(delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self.run(self.layer.advance(self.now()))

    # Application ----------------------------------------------------------

    def _dispatch(self, request: Request, transaction: Any) -> None:
        """
        Authenticate C{request}, let the router answer it, and send the
        answer through C{transaction}.

        Each step that answers at once (a plain value or a Deferred that
        already fired) is followed at once; the Deferred chain is only built
        from the first step that really has to wait.  Both ways give the
        same answers and the same logs.
        """
        peer = transaction.peer
        pending = transaction if isinstance(transaction, stateless.Pending) else None
        context = RequestContext(
            peer=peer,
            now=self.now(),
            transaction=transaction,
            send_provisional=lambda r: self.respond(transaction, r),
            to_tag=pending.tag if pending is not None else None,
            refusal_tag=pending.refusal_tag if pending is not None else None,
        )
        d: Optional[Deferred[Any]] = None
        identity: Any = None
        if self.authenticate is not None and request.method not in ("ACK", "CANCEL"):
            # A verified TLS client certificate names the caller.
            tls_identity = getattr(peer.connection, "tls_identity", None)
            if tls_identity is not None:
                d = self.authenticate(request, context.now, tls_identity)
            else:
                d = self.authenticate(request, context.now)
            if d is not None:
                identity = fired_result(d)
                if identity is not PENDING:
                    d = None
        if d is None:
            try:
                answer = self._authenticated(request, context, identity)
            except SIPProtocolError as e:
                answer = error_response(request, e, new_tag())
            except Exception:
                answer = self._crashed(Failure(), request)
            if is_deferred(answer):
                result = fired_result(answer)
                if result is PENDING:
                    self._answer_later(answer, request, transaction)
                    return
                answer = result
            try:
                self.respond(transaction, answer)
            except Exception:
                log.failure("Could not answer")
            return
        d.addCallback(lambda identity: self._authenticated(request, context, identity))
        self._answer_later(d, request, transaction)

    def _authenticated(self, request: Request, context: RequestContext, identity: Any) -> Any:
        """
        The answer to C{request} once its caller is known: a Response or a
        Deferred firing with one.
        """
        context.identity = identity
        # Per-identity rate limit.
        if self.limiter is not None and identity is not None:
            aor = str(getattr(identity, "aor", identity))
            retry = self.limiter.check_identity(aor, request.method, context.now)
            if retry is not None:
                self.stats["limited"] += 1
                if self.limiter.should_log_identity(aor, context.now):
                    log.warn(
                        "Rate limiting {aor}: answering 503 (Retry-After {retry})",
                        aor=aor,
                        retry=retry,
                    )
                return self._limited(request, retry)
        if self._stopping is not None:
            return make_response(
                request, 503, "Shutting Down", to_tag=new_tag(), headers=[("Retry-After", "30")]
            )
        return self.router.dispatch(request, context)

    @staticmethod
    def _crashed(failure: Failure, request: Request) -> Response:
        log.failure("Handler failed on {method}", failure, method=request.method)
        return make_response(request, 500, "Server Internal Error", to_tag=new_tag())

    def _answer_later(self, d: Deferred[Any], request: Request, transaction: Any) -> None:
        """
        Send what C{d} fires with through C{transaction}: protocol errors
        become their responses, anything else a 500.
        """

        def refused(failure: Failure) -> Response:
            failure.trap(SIPProtocolError)
            error: SIPProtocolError = failure.value  # type: ignore[assignment]
            return error_response(request, error, new_tag())

        d.addErrback(refused)
        d.addErrback(self._crashed, request)
        d.addCallback(lambda response: self.respond(transaction, response))
        d.addErrback(lambda f: log.failure("Could not answer", f))

    def respond(self, transaction: Any, response: Response) -> None:
        """
        Send C{response} through C{transaction}; late answers to a
        transaction that already ended (cancelled, timed out) are dropped.
        A L{stateless.Pending} in place of a transaction is answered
        statelessly when the answer allows, else given its transaction.
        """
        if isinstance(transaction, stateless.Pending):
            pending, now = transaction, self.now()
            if self.uas.finish(pending, response, now):
                self._send_statelessly(
                    pending.request, pending.peer, response, now - pending.arrived
                )
                return
            if pending.open:
                self._adopt(pending)
            if transaction.transaction is None:
                log.debug("Late response {code} dropped", code=response.code)
                return
            transaction = transaction.transaction
        try:
            actions = self.layer.respond(transaction, response, self.now())
        except LocalProtocolError as e:
            log.debug("Late response {code} dropped: {why}", code=response.code, why=e.reason)
            return
        self.run(actions)

    def _notify(self, hook: str, request: Request, peer: txn.Peer) -> None:
        handler = self.router.handler_for(request.method if hook == "handle_ack" else "INVITE")
        if handler is None:
            return
        context = RequestContext(peer=peer, now=self.now())
        # Called directly (every join's ACK comes here): a Deferred is only
        # made when the handler returns one.
        try:
            result = getattr(handler, hook)(request, context)
        except Exception:
            log.failure("{hook} failed", hook=hook)
            return
        if is_deferred(result):
            result.addErrback(lambda f: log.failure("{hook} failed", f, hook=hook))

    # Client transactions -------------------------------------------------

    def send_request(self, request: Request, peer: txn.Peer) -> Deferred[Response]:
        """
        Send a request the server originates (NOTIFY, MESSAGE, BYE) and fire
        with its final response; fail with L{TimeoutError} on Timer B/F.
        """
        transaction, actions = self.layer.send_request(request, peer, self.now())
        d: Deferred[Response] = Deferred()
        self._pending_clients[id(transaction)] = d
        self.run(actions)
        return d

    def _client_response(self, response: Response, transaction: Any) -> None:
        if response.code < 200:
            return
        d = self._pending_clients.pop(id(transaction), None)
        if d is not None:
            d.callback(response)

    def _client_timeout(self, transaction: Any) -> None:
        d = self._pending_clients.pop(id(transaction), None)
        if d is not None:
            d.errback(TimeoutError(f"no answer to {transaction.request.method}"))

    # Sending --------------------------------------------------------------

    def send(self, message: Message, peer: txn.Peer) -> None:
        """
        Serialize and send C{message}: requests to C{peer}, responses per
        RFC 3261 section 18.2.2 and RFC 3581.
        """
        if self.feedback is not None and isinstance(message, Response):
            self._add_feedback(message)
        data = message.to_bytes()
        if isinstance(message, Response):
            host, port = response_destination(message, peer)
            # A final response stays with its transaction (for
            # retransmissions) long after this: held compactly, as these
            # bytes, without the parsed views (parsed again if ever needed),
            # it gives the garbage collector next to nothing to visit.
            message.compact(data)
        else:
            host, port = peer.host, peer.port
        self._send_bytes(data, peer, host, port, message)

    def _send_bytes(self, data: bytes, peer: txn.Peer, host: str, port: int, what: Any) -> None:
        """Send C{data} over C{peer}'s transport to C{host}:C{port}, counted."""
        sender = self.senders.get(peer.connection)
        if sender is None:
            self.stats["dropped"] += 1
            log.info(
                "No transport left to send {what} to {host}:{port}",
                what=what,
                host=host,
                port=port,
            )
            return
        self.stats["sent"] += 1
        sender.send_bytes(data, host, port)

    def local_address(self, peer: txn.Peer) -> Tuple[str, int]:
        """
        The local address of the transport C{peer} is reached through.

        @raise KeyError: if that transport is gone.
        """
        return self.senders[peer.connection].local_address()

    # Stopping -------------------------------------------------------------

    def stop(self, timeout: float = 5.0) -> Deferred[None]:
        """
        Let transactions in progress finish, up to C{timeout} seconds, then
        cancel the timer.  Fires when done.
        """
        d: Deferred[None] = Deferred()
        self._stop_waiters.append(d)
        if self._stopping is None:
            self._stopping = Deferred()
            if self.layer.pending() == 0:
                self._stopped()
            else:
                self._reactor.callLater(timeout, self._stopped)
        elif self._stopping.called:
            d.callback(None)
        return d

    def _stopped(self) -> None:
        if self._stopping is None or self._stopping.called:
            return
        self._stopping.callback(None)
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        waiters, self._stop_waiters = self._stop_waiters, []
        for waiter in waiters:
            waiter.callback(None)


def response_destination(response: Response, peer: txn.Peer) -> tuple[str, int]:
    """
    Where a response goes (RFC 3261 section 18.2.2, RFC 3581 section 4):
    the connection it came on for streams, else received/rport, else the
    Via's sent-by.
    """
    try:
        via = response.top_via
    except (SIPProtocolError, ValueError):
        return peer.host, peer.port
    if peer.reliable:
        return peer.host, peer.port
    if via.maddr:
        return via.maddr, via.port or 5060
    host = via.received or via.host
    port = via.rportValue if via.rportValue else (via.port or 5060)
    return host.strip("[]"), int(port)
