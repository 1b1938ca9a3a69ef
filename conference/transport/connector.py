# -*- test-case-name: tests.loopback.test_connector -*-
"""
Outgoing TCP and TLS connections for requests the server originates.

One connection per (transport, address, port, TLS name) is opened on
demand and reused while it stays open (RFC 3261 section 18.1.1); it is a
L{SIPStreamProtocol} of the listeners' factory, so its responses (and any
request the peer sends back on it) take the same path as on accepted
connections, and the same caps and idle timeout apply.  A TLS connection
is handed out only after its handshake, in which the server's certificate
must chain to the trusted CAs and name the domain the URI named (RFC 5922
section 4), so a request never goes to a server that failed the check.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint, wrapClientTLS
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import Factory
from twisted.internet.ssl import optionsForClientTLS
from twisted.logger import Logger
from twisted.python.failure import Failure

from conference.sip.locate import Target
from conference.transport.stream import SIPStreamFactory, SIPStreamProtocol

log = Logger()

_Key = Tuple[str, str, int, str]


class ConnectionFailed(Exception):
    """
    An outgoing connection could not be opened or its TLS handshake
    failed.
    """


class OutgoingStreamProtocol(SIPStreamProtocol):
    """
    A connection we opened: L{ready} fires once it can carry requests
    (at once for TCP, after the handshake for TLS) and fails if it is
    lost before that.
    """

    ready: Deferred[OutgoingStreamProtocol]
    tls = False
    #: The next keep-alive, when the connector sends them.
    ping: Optional[IDelayedCall] = None

    def connectionMade(self) -> None:
        super().connectionMade()
        if not self.tls and not self.ready.called:
            self.ready.callback(self)

    def handshakeCompleted(self) -> None:
        super().handshakeCompleted()
        if not self.ready.called:
            self.ready.callback(self)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        super().connectionLost(reason)
        if not self.ready.called:
            why = reason.getErrorMessage() if reason is not None else "connection lost"
            self.ready.errback(ConnectionFailed(why))

    @property
    def usable(self) -> bool:
        """
        Whether requests can still be sent on this connection.
        """
        return self._open and self.transport is not None and self.ready.called


class _Builder(Factory):
    def __init__(self, streams: SIPStreamFactory, tls: bool) -> None:
        self.streams = streams
        self.tls = tls
        self.built: Optional[OutgoingStreamProtocol] = None

    def buildProtocol(self, addr: Any) -> OutgoingStreamProtocol:  # type: ignore[override]
        protocol = OutgoingStreamProtocol()
        protocol.factory = self.streams
        protocol.tls = self.tls
        protocol.ready = Deferred()
        self.built = protocol
        return protocol


class Connector:
    """
    Opens and reuses outgoing stream connections.

    @ivar trust_root: the CAs TLS servers must chain to
        (L{twisted.internet.ssl.IOpenSSLTrustRoot}); L{None}: the
        platform's.
    """

    def __init__(
        self,
        streams: SIPStreamFactory,
        reactor: Any,
        *,
        trust_root: Any = None,
        timeout: float = 5.0,
        keepalive: Optional[float] = None,
    ) -> None:
        """
        @param keepalive: seconds between RFC 5626 (section 4.4.1) CRLF
            keep-alives on each open connection, which keep NAT bindings
            and the peer's idle timeout from closing it; L{None}: none.
        """
        self.keepalive = keepalive
        self.streams = streams
        self._reactor = reactor
        self.trust_root = trust_root
        self.timeout = timeout
        self._open: Dict[_Key, OutgoingStreamProtocol] = {}
        self._opening: Dict[_Key, List[Deferred[OutgoingStreamProtocol]]] = {}

    def connect(self, target: Target) -> Deferred[OutgoingStreamProtocol]:
        """
        A ready connection to C{target} (C{"tcp"} or C{"tls"}): an open
        one, or a new one.  Fails with L{ConnectionFailed}.
        """
        key = (target.transport, target.host, target.port, target.tls_name)
        existing = self._open.get(key)
        if existing is not None and existing.usable:
            return Deferred.fromCoroutine(_now(existing))
        self._open.pop(key, None)
        waiting: Deferred[OutgoingStreamProtocol] = Deferred()
        if key in self._opening:
            self._opening[key].append(waiting)
            return waiting
        self._opening[key] = [waiting]
        Deferred.fromCoroutine(self._dial(key, target))
        return waiting

    async def _dial(self, key: _Key, target: Target) -> None:
        tls = target.transport == "tls"
        endpoint_type = TCP6ClientEndpoint if ":" in target.host else TCP4ClientEndpoint
        endpoint: Any = endpoint_type(self._reactor, target.host, target.port, timeout=self.timeout)
        if tls:
            options = optionsForClientTLS(target.tls_name, trustRoot=self.trust_root)
            endpoint = wrapClientTLS(options, endpoint)
        builder = _Builder(self.streams, tls)
        outcome: Any
        try:
            await endpoint.connect(builder)
            protocol = builder.built
            assert protocol is not None
            outcome = await _bounded(protocol.ready, self._reactor, self.timeout)
        except Exception as e:
            built = builder.built
            if built is not None and built.transport is not None:
                built.transport.abortConnection()  # type: ignore[attr-defined]
            why = str(e) or type(e).__name__
            log.info(
                "Cannot connect over {transport} to {host}:{port}: {why}",
                transport=target.transport.upper(),
                host=target.host,
                port=target.port,
                why=why,
            )
            outcome = Failure(ConnectionFailed(why))
        else:
            self._open[key] = outcome
            if self.keepalive is not None:
                self._keep_alive(outcome)
        for waiting in self._opening.pop(key, []):
            if isinstance(outcome, Failure):
                waiting.errback(outcome)
            else:
                waiting.callback(outcome)

    def _keep_alive(self, protocol: OutgoingStreamProtocol) -> None:
        def ping() -> None:
            if not protocol.usable:
                return
            assert protocol.transport is not None
            # Written directly: a ping does not reset our idle timeout.
            protocol.transport.write(b"\r\n\r\n")
            protocol.ping = self._reactor.callLater(self.keepalive, ping)

        protocol.ping = self._reactor.callLater(self.keepalive, ping)

    def close(self) -> None:
        """
        Close every connection opened here.
        """
        for protocol in list(self._open.values()):
            if protocol.ping is not None and protocol.ping.active():
                protocol.ping.cancel()
            if protocol.transport is not None:
                protocol.transport.loseConnection()
        self._open.clear()


async def _now(protocol: OutgoingStreamProtocol) -> OutgoingStreamProtocol:
    return protocol


def _bounded(d: Deferred[Any], reactor: Any, seconds: float) -> Deferred[Any]:
    """
    C{d}, failed with L{ConnectionFailed} after C{seconds}.
    """
    result: Deferred[Any] = Deferred()

    def overdue() -> None:
        if not result.called:
            result.errback(ConnectionFailed("TLS handshake timed out"))

    timer = reactor.callLater(seconds, overdue)

    def done(value: Any) -> None:
        if timer.active():
            timer.cancel()
        if not result.called:
            if isinstance(value, Failure):
                result.errback(value)
            else:
                result.callback(value)

    d.addBoth(done)
    return result


__all__ = ["ConnectionFailed", "Connector", "OutgoingStreamProtocol"]
