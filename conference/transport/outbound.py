# -*- test-case-name: tests.loopback.test_outbound,tests.unit.transport.test_outbound -*-
"""
Sending any request the server originates to any SIP URI (RFC 3263).

The URI is resolved by a L{Resolution} answered by L{DNSLookup}; each
target it yields gets its own client transaction, with a fresh branch and
a Via naming the transport and local address it leaves from, over the UDP
port or an outgoing stream connection.  A target that cannot be reached,
does not answer (Timer B/F) or answers 503 is followed by the next one
(RFC 3263 section 4.3); any other final response is the answer.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any, Callable, FrozenSet, List, Optional, Sequence, Set, Tuple, Union

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from conference.sip.errors import SIPProtocolError
from conference.sip.locate import Query, Resolution, Target
from conference.sip.message import Request, Response
from conference.sip.transaction import Peer
from conference.sip.transaction_model import new_branch
from conference.sip.uri import SIPURI, parse_uri
from conference.transport.connector import ConnectionFailed, Connector
from conference.transport.dns import DNSLookup, make_resolver
from conference.transport.server import SIPServer
from conference.transport.stream import SIPStreamFactory

log = Logger()

#: The UDP port requests leave from: its key in C{SIPServer.senders} and
#: the host and port for Via; L{None} while none listens.
UDPEndpoint = Tuple[Any, str, int]


#: The largest request sent over UDP when TCP could carry it (RFC 3261
#: section 18.1.1: 1300 bytes when the path MTU is unknown).
MAX_UDP_REQUEST = 1300


class Unreachable(Exception):
    """
    No target of a URI answered (or it has none); the message says why.
    """


class OutboundSender:
    """
    Sends requests to SIP URIs over whatever transport DNS names.

    @ivar transports: the transports used, in order of preference where
        DNS gives none: C{"udp"}, C{"tcp"}, C{"tls"}.
    """

    def __init__(
        self,
        server: SIPServer,
        lookup: DNSLookup,
        connector: Optional[Connector],
        *,
        udp: Callable[..., Optional[UDPEndpoint]],
        own: Callable[[], FrozenSet[Tuple[str, int]]] = frozenset,
        transports: Tuple[str, ...] = ("udp", "tcp", "tls"),
        branch_factory: Callable[[], str] = new_branch,
        rng: Callable[[], float] = random.random,
    ) -> None:
        """
        @param connector: opens TCP and TLS connections; L{None}: UDP only.
        @param udp: the UDP port to send from (L{None}: no UDP), called
            with the address to send to (the port must be of its family).
        @param own: our own addresses, never sent to.
        """
        self.server = server
        self.lookup = lookup
        self.connector = connector
        self.udp = udp
        self.own = own
        self.transports = transports if connector is not None else ("udp",)
        self.branch_factory = branch_factory
        self.rng = rng

    def send(self, request: Request, destination: Optional[Any] = None) -> Deferred[Response]:
        """
        Send C{request} (built without a Via) to C{destination}, by
        default its Request-URI; fire with the final response, or fail
        with L{Unreachable}.
        """
        return self.send_attempt(request, destination).addCallback(lambda answered: answered[0])

    def send_attempt(
        self, request: Request, destination: Optional[Any] = None
    ) -> Deferred[Tuple[Response, Peer]]:
        """
        L{send}, firing with the final response and the peer that gave it
        (where the ACK of a 2xx and the dialog's first requests go).
        """
        target = destination if destination is not None else request.uri
        return Deferred.fromCoroutine(self._send(request, target))

    def send_in_dialog(
        self,
        request: Request,
        hop: SIPURI,
        *,
        first: Optional[Peer] = None,
        last: Optional[Peer] = None,
    ) -> Deferred[Tuple[Response, Peer]]:
        """
        Send an in-dialog request (built without a Via) to its next hop
        C{hop} (L{conference.sip.dialog.Dialog.next_hop}): over C{first}
        while it is open (the peer that answered the dialog's last request,
        or the connection the subscriber opened), then to the RFC 3263
        targets of C{hop}, then over C{last} (where the dialog's request
        came from, which reaches a subscriber whose Contact does not
        resolve).  Peers over another transport than a C{sips:} hop allows
        (TLS) are left out, so a secure dialog never goes in the clear.
        Fires like L{send_attempt}.
        """
        peers = (first, last)
        return Deferred.fromCoroutine(self._send(request, hop, peers))

    def send_to(self, request: Request, uri: str) -> Deferred[Response]:
        """
        L{send} to a URI given as text (e.g. a registered contact).
        """
        try:
            parsed: Any = parse_uri(uri)
        except SIPProtocolError:
            parsed = uri
        return self.send(request, parsed)

    def close(self) -> None:
        """
        Close the outgoing connections (the service is stopping).
        """
        if self.connector is not None:
            self.connector.close()

    async def _send(
        self,
        request: Request,
        uri: Any,
        peers: Tuple[Optional[Peer], Optional[Peer]] = (None, None),
    ) -> Tuple[Response, Peer]:
        if not isinstance(uri, SIPURI):
            raise Unreachable(f"{uri} is not a SIP URI")
        resolution = Resolution(uri, transports=self.transports, own=self.own(), rng=self.rng)
        first, final = (self._usable(peer, uri) for peer in peers)
        tried: List[str] = []
        done: Set[Tuple[str, str, int]] = set()
        last: Optional[Tuple[Response, Peer]] = None
        while True:
            step: Union[Peer, Target, None]
            if first is not None:
                step, first = first, None
            else:
                step = await self._resolve(resolution)
                if step is None:
                    step, final = final, None
            if step is None:
                break
            where = (step.transport.upper(), step.host, step.port)
            if where in done or (isinstance(step, Peer) and self._usable(step, uri) is None):
                continue  # tried already, or closed while the DNS answered
            done.add(where)
            try:
                if isinstance(step, Peer):
                    answered = await self._over(request, step)
                else:
                    answered = await self._attempt(request, step)
            except Exception as e:
                tried.append(f"{_show(step)}: {str(e) or type(e).__name__}")
                continue
            if answered[0].code == 503:
                tried.append(f"{_show(step)}: 503")
                last = answered
                continue
            return answered
        for note in resolution.notes:
            log.info("Resolving {uri}: {note}", uri=str(uri), note=note)
        if last is not None:
            return last
        why = "; ".join(tried) or "; ".join(resolution.notes) or "no address found"
        raise Unreachable(f"{request.method} to {uri} not delivered: {why}")

    async def _resolve(self, resolution: Resolution) -> Optional[Target]:
        """
        The next target of C{resolution}, after the DNS queries it needs.
        """
        while True:
            step = resolution.next()
            if not isinstance(step, Query):
                return step
            resolution.answer(await self.lookup.query(step))

    def _usable(self, peer: Optional[Peer], uri: SIPURI) -> Optional[Peer]:
        """
        C{peer} if a request to C{uri} may go there now: its transport is
        still open, and it is TLS when C{uri} is C{sips:}.
        """
        if peer is None or peer.connection not in self.server.senders:
            return None
        if uri.scheme == "sips" and peer.transport.upper() != "TLS":
            return None
        return peer

    async def _over(self, request: Request, peer: Peer) -> Tuple[Response, Peer]:
        """
        Send C{request} to C{peer} over its open transport, with a Via
        naming the local address it leaves from (the UDP endpoint's host
        where the port listens on a wildcard address).
        """
        host, port = self.server.local_address(peer)
        if host in ("", "0.0.0.0", "::"):
            endpoint = self.udp(peer.host)
            host = endpoint[1] if endpoint is not None else host
        attempt = with_via(request, peer.transport, (host, port), self.branch_factory())
        return await self.server.send_request(attempt, peer), peer

    async def _attempt(self, request: Request, target: Target) -> Tuple[Response, Peer]:
        if target.transport == "udp":
            endpoint = self.udp(target.host)
            if endpoint is None:
                raise Unreachable("no UDP port listening")
            key, host, port = endpoint
            peer = Peer("UDP", target.host, target.port, key)
            attempt = with_via(request, "UDP", (host, port), self.branch_factory())
            if self._too_big(attempt):
                # RFC 3261 section 18.1.1: over TCP to the same address and
                # port; UDP again only when no connection can be made.
                try:
                    return await self._attempt(request, replace(target, transport="tcp"))
                except ConnectionFailed as e:
                    log.info(
                        "{method} of {size} bytes: no TCP to {host}:{port} ({why}), sent over UDP",
                        method=request.method,
                        size=len(attempt.to_bytes()),
                        host=target.host,
                        port=target.port,
                        why=str(e),
                    )
            return await self.server.send_request(attempt, peer), peer
        if self.connector is None:
            raise Unreachable(f"{target.transport} is not used")
        connection = await self.connector.connect(target)
        peer = Peer(target.transport.upper(), target.host, target.port, connection)
        local = connection.local_address()
        attempt = with_via(request, peer.transport, local, self.branch_factory())
        return await self.server.send_request(attempt, peer), peer

    def _too_big(self, request: Request) -> bool:
        """
        Whether C{request} is larger than UDP may carry with an unknown
        path MTU (RFC 3261 section 18.1.1) and TCP can be used instead.
        """
        if self.connector is None or "tcp" not in self.transports:
            return False
        return len(request.to_bytes()) > MAX_UDP_REQUEST


def with_via(request: Request, transport: str, local: Tuple[str, int], branch: str) -> Request:
    """
    A copy of C{request} with a new top Via (C{transport}, sent-by
    C{local}, C{branch}, asking for rport) above the ones it has.
    """
    host, port = local
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    copy = Request(request.method, request.uri, request.body)
    copy.add_header("Via", f"SIP/2.0/{transport.upper()} {shown}:{port};branch={branch};rport")
    for name, value in request.iter_headers():
        copy.add_header(name, value)
    return copy


def own_addresses(ports: Sequence[Any]) -> FrozenSet[Tuple[str, int]]:
    """
    The (address, port)s of listening C{ports}, a wildcard address
    standing for the loopback ones: a target there would be ourselves.
    """
    out: Set[Tuple[str, int]] = set()
    for port in ports:
        address = port.getHost()
        host, number = str(getattr(address, "host", "")), int(getattr(address, "port", 0) or 0)
        if host in ("0.0.0.0", "::", ""):
            out.update({("127.0.0.1", number), ("::1", number)})
        else:
            out.add((host, number))
    return frozenset(out)


def build_outbound(
    server: SIPServer,
    streams: SIPStreamFactory,
    reactor: Any,
    *,
    resolver: Optional[Tuple[str, int]],
    tls_peer_ca: Optional[str],
    udp: Callable[..., Optional[UDPEndpoint]],
    ports: Callable[[], Sequence[Any]],
    keepalive: Optional[float] = None,
) -> OutboundSender:
    """
    The server's L{OutboundSender}: DNS from C{resolver} (host, port) or
    the system's, TLS servers checked against the CAs of C{tls_peer_ca}
    (a PEM file) or the platform's, never sending to one of C{ports};
    outgoing connections get CRLF keep-alives every C{keepalive} seconds.

    @raise conference.tls.TLSConfigError: for a C{tls_peer_ca} that
        cannot be read.
    """
    trust_root = None
    if tls_peer_ca is not None:
        from OpenSSL import crypto
        from twisted.internet.ssl import Certificate, trustRootFromCertificates

        from conference.tls import load_certificates

        trust_root = trustRootFromCertificates(
            [Certificate(crypto.X509.from_cryptography(c)) for c in load_certificates(tls_peer_ca)]
        )
    lookup = DNSLookup(lambda: make_resolver(resolver, reactor))
    connector = Connector(streams, reactor, trust_root=trust_root, keepalive=keepalive)
    return OutboundSender(server, lookup, connector, udp=udp, own=lambda: own_addresses(ports()))


def _show(target: Union[Target, Peer]) -> str:
    return f"{target.transport.upper()} {target.host}:{target.port}"


__all__ = [
    "MAX_UDP_REQUEST",
    "OutboundSender",
    "UDPEndpoint",
    "Unreachable",
    "build_outbound",
    "own_addresses",
    "with_via",
]
