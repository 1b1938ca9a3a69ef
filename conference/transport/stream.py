# -*- test-case-name: tests.transport.test_stream -*-
"""
The stream transports, TCP and TLS: framing by Content-Length, a cap on
connections, and idle connections closed after a timeout.

Any Twisted stream server endpoint works (C{tcp:}, C{ssl:} through
pyOpenSSL, C{unix:}), so TLS is just C{ssl:5061:privateKey=...}.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

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
        certificate (issue 6), set when the handshake completes on a
        factory with C{client_identities}; L{None} otherwise.
    """

    factory: SIPStreamFactory
    peer: Peer
    parser: StreamParser
    _open = False
    tls_identity: Optional[ISIPIdentity] = None

    def connectionMade(self) -> None:
        factory = self.factory
        address = self.transport.getPeer()  # type: ignore[union-attr]
        host = getattr(address, "host", "") or ""
        port = int(getattr(address, "port", 0) or 0)
        name = "TLS" if ISSLTransport.providedBy(self.transport) else "TCP"
        self.peer = Peer(name, host, port, self)
        if factory.active >= factory.max_connections:
            log.warn(
                "Refusing {transport} connection from {host}:{port}: {limit} connections open",
                transport=name,
                host=host,
                port=port,
                limit=factory.max_connections,
            )
            self.transport.abortConnection()  # type: ignore[union-attr]
            return
        self._open = True
        factory.active += 1
        self.parser = StreamParser(max_size=factory.server.max_message_size)
        factory.server.add_sender(self, self)
        self.setTimeout(factory.idle_timeout)

    def handshakeCompleted(self) -> None:
        """
        TLS is up: note the identity of a verified client certificate.
        """
        if self.factory.client_identities and self.transport is not None:
            from conference.tls import peer_identity

            self.tls_identity = peer_identity(self.transport)

    def dataReceived(self, data: bytes) -> None:
        if not self._open:
            return
        self.resetTimeout()
        while self._open:
            try:
                messages = self.parser.feed(data)
            except RemoteProtocolError as e:
                self.factory.server.refuse(e, self.peer)
                if self.parser.broken:
                    # The framing is lost: we answered if we could; close.
                    self._open = False
                    self.transport.loseConnection()  # type: ignore[union-attr]
                    return
                messages = []
            for message in messages:
                self.factory.server.message_received(message, self.peer, validated=True)
            if not self.parser.pending:
                return
            data = b""

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
        if self._open:
            self._open = False
            self.factory.active -= 1
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
    Makes L{SIPStreamProtocol}s and counts them against C{max_connections}.
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
    ) -> None:
        """
        @param client_identities: whether TLS listeners verify client
            certificates, so that one a peer presents names who it is.
        """
        self.server = server
        self.client_identities = client_identities
        self.reactor = reactor
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.active = 0
