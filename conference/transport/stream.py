# -*- test-case-name: tests.unit.transport.test_stream -*-
"""
The stream transports, TCP and TLS: framing by Content-Length, caps on
connections (in all and per source), idle connections closed after a
timeout, and deadlines a peer must meet whatever it sends: to finish the
TLS handshake, and to finish each message it starts, so that a
peer sending one byte at a time cannot hold a connection for ever.

Any Twisted stream server endpoint works (C{tcp:}, C{ssl:} through
pyOpenSSL, C{unix:}), so TLS is just C{ssl:5061:privateKey=...}.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

from twisted.internet.interfaces import (
    IDelayedCall,
    IHandshakeListener,
    IReactorTime,
    ISSLTransport,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure
from zope.interface import implementer

from conference.interfaces import ISIPIdentity
from conference.limits import address_key
from conference.sip.errors import RemoteProtocolError
from conference.sip.parser import StreamParser
from conference.sip.transaction import Peer
from conference.transport.server import SIPServer

log = Logger()


@implementer(IHandshakeListener)
class SIPStreamProtocol(Protocol, TimeoutMixin):
    """
    One TCP or TLS connection.

    @ivar tls_identity: the identity of the peer's verified TLS client
        certificate, set when the handshake completes on a
        factory with C{client_identities}; L{None} otherwise.
    """

    factory: SIPStreamFactory
    peer: Peer
    parser: StreamParser
    _open = False
    _source = ""
    _deadline: Optional[IDelayedCall] = None
    tls_identity: Optional[ISIPIdentity] = None

    def connectionMade(self) -> None:
        factory = self.factory
        address = self.transport.getPeer()  # type: ignore[union-attr]
        host = getattr(address, "host", "") or ""
        port = int(getattr(address, "port", 0) or 0)
        tls = ISSLTransport.providedBy(self.transport)
        name = "TLS" if tls else "TCP"
        self.peer = Peer(name, host, port, self)
        source = address_key(host)
        refusal = factory.admit(source)
        if refusal is not None:
            factory.warn_refusal(source, name, host, port, refusal)
            self.transport.abortConnection()  # type: ignore[union-attr]
            return
        self._open = True
        self._source = source
        self.parser = StreamParser(max_size=factory.server.max_message_size)
        factory.server.add_sender(self, self)
        self.setTimeout(factory.idle_timeout)
        if tls:
            # Twisted calls this at TCP accept, before the handshake: a
            # handshake not done by its deadline counts as a stalled peer.
            self._arm(factory.handshake_timeout, "TLS handshake not finished")
        else:
            self._arm(factory.message_timeout, "no complete message")

    def handshakeCompleted(self) -> None:
        """
        TLS is up: note the identity of a verified client certificate,
        and give the peer the message deadline for its first message.
        """
        if self._open:
            self._arm(self.factory.message_timeout, "no complete message")
        if self.factory.client_identities and self.transport is not None:
            from conference.tls import peer_identity

            self.tls_identity = peer_identity(self.transport)

    def dataReceived(self, data: bytes) -> None:
        if not self._open:
            return
        self.resetTimeout()
        completed = False
        while self._open:
            try:
                messages = self.parser.feed(data)
            except RemoteProtocolError as e:
                self.factory.server.refuse(e, self.peer)
                if self.parser.broken:
                    # The framing is lost: we answered if we could; close.
                    self._close()
                    self.transport.loseConnection()  # type: ignore[union-attr]
                    return
                messages = []
                completed = True  # a refused message is done with too
            completed = completed or bool(messages)
            for message in messages:
                self.factory.server.message_received(message, self.peer, validated=True)
            if not self.parser.pending:
                break
            data = b""
        if self._open:
            self._pace(completed)

    # --- deadlines -------------------------------------------------

    def _pace(self, completed: bool) -> None:
        """
        Keep the message deadline after a read: none while nothing is
        buffered; a fresh one when a message started after one completed;
        otherwise the one running (bytes trickling in do not extend it).
        """
        if not self.parser.buffered:
            self._arm(None, "")
        elif completed or self._deadline is None:
            self._arm(self.factory.message_timeout, "message not finished")

    def _arm(self, timeout: Optional[float], why: str) -> None:
        deadline, self._deadline = self._deadline, None
        if deadline is not None and deadline.active():
            deadline.cancel()
        if timeout is not None:
            self._deadline = self.factory.reactor.callLater(timeout, self._overdue, why, timeout)

    def _overdue(self, why: str, timeout: float) -> None:
        self._deadline = None
        log.info(
            "Closing {peer.transport} connection from {peer.host}:{peer.port}: {why} "
            "within {timeout:g} s",
            peer=self.peer,
            why=why,
            timeout=timeout,
        )
        # Abort rather than close: a peer this slow may not read either.
        self.transport.abortConnection()  # type: ignore[union-attr]

    def local_address(self) -> tuple[str, int]:
        """
        The local end of this connection.
        """
        host = self.transport.getHost()  # type: ignore[union-attr]
        return str(getattr(host, "host", "")), int(getattr(host, "port", 0) or 0)

    def send_bytes(self, data: bytes, host: str, port: int) -> None:
        """
        Write on this connection (responses go back where requests came).
        """
        if self.transport is not None:
            self.transport.write(data)
            self.resetTimeout()

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.setTimeout(None)
        self._close()

    def _close(self) -> None:
        """
        Stop reading and give back this connection's slots and timers.
        """
        self._arm(None, "")
        if self._open:
            self._open = False
            self.factory.release(self._source)
            self.factory.server.remove_sender(self)

    def timeoutConnection(self) -> None:
        log.info(
            "Closing idle {peer.transport} connection from {peer.host}:{peer.port}",
            peer=self.peer,
        )
        self.transport.loseConnection()  # type: ignore[union-attr]

    def callLater(self, period: float, func: Callable[[], Any]) -> IDelayedCall:
        """
        TimeoutMixin's timer, on the injected reactor.
        """
        return self.factory.reactor.callLater(period, func)


class SIPStreamFactory(Factory):
    """
    Makes L{SIPStreamProtocol}s and counts them against C{max_connections}
    and, per source address (IPv6: per /64), against C{max_per_source}.

    @ivar message_timeout: seconds a peer has to finish a message once it
        started sending it, and to send its first one once connected.
    @ivar handshake_timeout: seconds a TLS peer has to finish its handshake.
    @ivar log_interval: least seconds between two log lines about refused
        connections of one source (or of the total cap).
    """

    protocol = SIPStreamProtocol  # type: ignore[assignment]

    def __init__(
        self,
        server: SIPServer,
        reactor: IReactorTime,
        *,
        max_connections: int = 1024,
        idle_timeout: Optional[float] = 300.0,
        client_identities: bool = False,
        max_per_source: Optional[int] = 64,
        message_timeout: float = 10.0,
        handshake_timeout: float = 10.0,
        log_interval: float = 60.0,
    ) -> None:
        """
        @param client_identities: whether TLS listeners verify client
            certificates, so that one a peer presents names who it is.
        @param max_per_source: the most connections from one source;
            L{None}: no cap but C{max_connections}.  Sources exempt from
            rate limits are counted too.
        """
        self.server = server
        self.client_identities = client_identities
        self.reactor = reactor
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.max_per_source = max_per_source
        self.message_timeout = message_timeout
        self.handshake_timeout = handshake_timeout
        self.log_interval = log_interval
        self.active = 0
        self.per_source: Dict[str, int] = {}
        self._warned: Dict[str, float] = {}

    def admit(self, source: str) -> Optional[str]:
        """
        Count a new connection from C{source} (an L{address_key}).

        @return: L{None} if it was counted, else why it is refused.
        """
        if self.active >= self.max_connections:
            return f"{self.max_connections} connections open"
        count = self.per_source.get(source, 0)
        # A UNIX socket peer has no address (""): local, so not capped.
        if self.max_per_source is not None and source and count >= self.max_per_source:
            return f"{count} connections open from {source}"
        self.active += 1
        self.per_source[source] = count + 1
        return None

    def release(self, source: str) -> None:
        """
        A connection counted by L{admit} closed.
        """
        self.active -= 1
        count = self.per_source.pop(source, 0) - 1
        if count > 0:
            self.per_source[source] = count

    def warn_refusal(self, source: str, transport: str, host: str, port: int, why: str) -> None:
        """
        Log a refused connection, at most once per C{log_interval} for
        its source (so a flood of connections does not flood the log).
        """
        now = self.reactor.seconds()
        if now - self._warned.get(source, -self.log_interval) < self.log_interval:
            return
        if len(self._warned) >= 4096:
            self._warned.clear()
        self._warned[source] = now
        log.warn(
            "Refusing {transport} connection from {host}:{port}: {why} "
            "(further refusals from there not logged for {interval:g} s)",
            transport=transport,
            host=host,
            port=port,
            why=why,
            interval=self.log_interval,
        )
