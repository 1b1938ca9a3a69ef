# -*- test-case-name: tests.unit.app.test_janusclient -*-
"""
A client of Janus's API over an L{IJanusTransport}: one Janus session,
kept alive, with handles attached to the AudioBridge.

Janus answers some requests at once and others (the AudioBridge's
C{join}) with an C{ack}, the result coming later on the session's long
poll; the client matches those events to their transaction.  Every
request has a timeout on the injected reactor, so a Janus that is down or
stuck fails a request instead of hanging it.
"""

from __future__ import annotations

import secrets
from typing import Any, Callable, Dict, List, Optional, cast

from twisted.internet.defer import Deferred, TimeoutError, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from conference.interfaces import IJanusTransport
from conference.janus import protocol
from conference.janus.protocol import JanusError
from conference.reactors import default_reactor

log = Logger()

DEFAULT_TIMEOUT = 5.0
# Janus answers an idle long poll after 30 s; wait a little longer.
POLL_TIMEOUT = 40.0


def _transaction_id() -> str:
    return secrets.token_hex(8)


class JanusClient:
    """
    One Janus session and the requests made in it.

    @ivar session: the Janus session id, or L{None} before one is created
        (or after Janus forgot it).
    """

    def __init__(
        self,
        transport: IJanusTransport,
        reactor: Optional[Any] = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        poll_timeout: float = POLL_TIMEOUT,
        transaction_ids: Callable[[], str] = _transaction_id,
    ) -> None:
        """
        @param transport: where requests go (HTTP, or a fake in tests).
        @param timeout: seconds before a request (or the event answering
            it) is given up.
        @param poll_timeout: seconds a long poll may take.
        """
        self.transport = transport
        self._reactor = cast(IReactorTime, default_reactor(reactor))
        self.timeout = timeout
        self.poll_timeout = poll_timeout
        self.transaction_ids = transaction_ids
        self.session: Optional[int] = None
        self._creating: List[Deferred[int]] = []
        self._waiters: Dict[str, Deferred[Dict[str, Any]]] = {}
        self._poll: Optional[Deferred[Any]] = None

    def _timed(self, d: Deferred[Any], timeout: float) -> Deferred[Any]:
        return d.addTimeout(timeout, self._reactor)

    def _post(self, path: str, body: Dict[str, Any]) -> Deferred[Any]:
        return self._timed(self.transport.post(path, body), self.timeout)

    def _forgotten(self, failure: Failure) -> Failure:
        """Janus no longer knows our session: the next request makes another."""
        if protocol.error_code(failure.value) == protocol.NO_SUCH_SESSION:
            self.reset()
        return failure

    # The session ---------------------------------------------------------

    def ensure_session(self) -> Deferred[int]:
        """A Deferred firing with the session id, creating the session if needed."""
        if self.session is not None:
            return succeed(self.session)
        waiter: Deferred[int] = Deferred()
        self._creating.append(waiter)
        if len(self._creating) == 1:
            tx = self.transaction_ids()
            d = self._post("", protocol.create_session(tx))
            d.addCallback(protocol.created_id, tx)
            d.addBoth(self._created)
        return waiter

    def _created(self, result: Any) -> None:
        waiters, self._creating = self._creating, []
        if not isinstance(result, Failure):
            self.session = result
            log.info("Janus session {session} created", session=result)
        for waiter in waiters:
            waiter.callback(result) if not isinstance(result, Failure) else waiter.errback(result)

    def reset(self) -> None:
        """Forget the session; events still awaited fail."""
        self.session = None
        waiters, self._waiters = self._waiters, {}
        for waiter in waiters.values():
            waiter.errback(JanusError("the Janus session was lost", protocol.NO_SUCH_SESSION))

    def keepalive(self) -> Deferred[Any]:
        """Keep the session alive (nothing to do without one)."""
        if self.session is None:
            return succeed(None)
        tx = self.transaction_ids()
        d = self._post(f"/{self.session}", protocol.keepalive(tx))
        d.addCallback(protocol.check_reply, tx)
        return d.addErrback(self._forgotten)

    def destroy(self) -> None:
        """Stop: forget the session and stop the long poll (Janus ends it on its timeout)."""
        if self._poll is not None:
            self._poll.cancel()
        self.reset()

    # Handles and requests ------------------------------------------------

    def attach(self) -> Deferred[int]:
        """A new AudioBridge handle in the session."""

        def attach(session: int) -> Deferred[int]:
            tx = self.transaction_ids()
            d = self._post(f"/{session}", protocol.attach(tx))
            return d.addCallback(protocol.created_id, tx)

        return self.ensure_session().addCallback(attach).addErrback(self._forgotten)

    def detach(self, handle: int) -> Deferred[Any]:
        """Detach a handle: its participant leaves its room."""
        if self.session is None:
            return succeed(None)
        tx = self.transaction_ids()
        d = self._post(f"/{self.session}/{handle}", protocol.detach(tx))
        return d.addCallback(protocol.check_reply, tx).addErrback(self._forgotten)

    def request(self, handle: int, body: Dict[str, Any], expected: str) -> Deferred[Dict[str, Any]]:
        """
        A synchronous AudioBridge request on C{handle}.

        @return: a Deferred firing with the plugin's data, whose
            C{audiobridge} is C{expected}; failing with L{JanusError},
            a timeout or the transport's error.
        """
        if self.session is None:
            raise JanusError("no Janus session", protocol.NO_SUCH_SESSION)
        tx = self.transaction_ids()
        d = self._post(f"/{self.session}/{handle}", protocol.message(tx, body))
        d.addCallback(protocol.plugin_result, tx, expected)
        return d.addErrback(self._forgotten)

    def request_event(self, handle: int, body: Dict[str, Any]) -> Deferred[Dict[str, Any]]:
        """
        An asynchronous AudioBridge request on C{handle}: Janus acks it and
        the result comes on the long poll.

        @return: a Deferred firing with that event (not yet checked for
            the plugin's error), failing as L{request} or when no event
            came within the timeout.
        """
        if self.session is None:
            raise JanusError("no Janus session", protocol.NO_SUCH_SESSION)
        tx = self.transaction_ids()

        def cancel(_: Deferred[Any]) -> None:
            self._waiters.pop(tx, None)

        waiter: Deferred[Dict[str, Any]] = Deferred(cancel)
        self._waiters[tx] = waiter

        def acked(reply: Dict[str, Any]) -> Deferred[Dict[str, Any]]:
            if reply.get("janus") == "success":  # answered at once after all
                self._waiters.pop(tx, None)
                return succeed(reply)
            self._start_poll()
            return waiter

        def failed(failure: Failure) -> Failure:
            self._waiters.pop(tx, None)
            return failure

        d = self._post(f"/{self.session}/{handle}", protocol.message(tx, body))
        d.addCallback(protocol.check_reply, tx)
        d.addCallback(acked)
        d.addErrback(failed)
        return self._timed(d, self.timeout).addErrback(self._forgotten)

    # The long poll -------------------------------------------------------

    def _start_poll(self) -> None:
        if self._poll is not None or self.session is None or not self._waiters:
            return
        d = self._timed(self.transport.get(f"/{self.session}?maxev=10"), self.poll_timeout)
        self._poll = d
        d.addCallbacks(self._polled, self._poll_failed)

    def _polled(self, payload: Any) -> None:
        self._poll = None
        if isinstance(payload, dict) and payload.get("janus") == "error":
            try:
                protocol.check_reply(payload, "")
            except JanusError as e:
                self._poll_failed(Failure(e))
            return
        found = protocol.events(payload)
        for event in found:
            tx = event.get("transaction")
            waiter = self._waiters.pop(tx, None) if isinstance(tx, str) else None
            if waiter is not None:
                waiter.callback(event)
        if found:
            self._start_poll()
        else:  # a poll that returned at once with nothing: do not spin
            self._reactor.callLater(1.0, self._start_poll)

    def _poll_failed(self, failure: Failure) -> None:
        self._poll = None
        if failure.check(TimeoutError):  # an idle poll: ask again
            self._start_poll()
            return
        if protocol.error_code(failure.value) == protocol.NO_SUCH_SESSION:
            self.reset()
            return
        log.warn("Janus long poll failed: {error}", error=failure.getErrorMessage())
        waiters, self._waiters = self._waiters, {}
        for waiter in waiters.values():
            waiter.errback(failure)
