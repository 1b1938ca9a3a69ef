# -*- test-case-name: tests.unit.app.test_outbound -*-
"""
The iTIP messages the server itself originates (a conference's REPLY, the
REQUEST a REFRESH asks for, a forwarded COUNTER) travel in their own SIP
MESSAGE client transactions, as iSIP section 2.1 says.  This module finds
where each calendar user address is registered and sends them there, so
the scheduler never waits for them before answering.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Protocol, Tuple

from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from conference.app.calendarbody import render_calendar
from conference.app.core import is_ip_literal
from conference.calendar import Outgoing, normalize_address
from conference.interfaces import IRegistrationStore
from conference.records import StoreError
from conference.sip.errors import SIPProtocolError
from conference.sip.message import Request, Response
from conference.sip.transaction import Peer
from conference.sip.transaction_model import new_branch, new_tag
from conference.sip.uri import SIPURI, parse_uri

log = Logger()

#: Where UDP requests go out: the key of the UDP sender in
#: C{SIPServer.senders} (the datagram protocol) and the host and port it
#: listens on, for Via; L{None} while no UDP port listens.
UDPEndpoint = Tuple[Any, str, int]


class RequestSender(Protocol):
    """
    What sends a client transaction (L{conference.transport.server.SIPServer}).
    """

    def send_request(self, request: Request, peer: Peer) -> Deferred[Response]:
        """
        Send C{request} to C{peer}; fire with its final response.
        """


class URISender(Protocol):
    """
    What sends a request to any SIP URI, resolving it per RFC 3263
    (L{conference.transport.outbound.OutboundSender}); the request has no
    Via yet: each target it tries gets its own.
    """

    def send_to(self, request: Request, uri: str) -> Deferred[Response]:
        """
        Send C{request} to C{uri}; fire with its final response, or fail
        when no target answered.
        """


@dataclass(frozen=True)
class Delivery:
    """
    What became of one iTIP message for one recipient and contact.

    @ivar recipient: the calendar user address (normalised).
    @ivar contact: the registered contact it went to, or L{None}.
    @ivar status: the final SIP status, or L{None} if nothing was sent or no
        answer came.
    @ivar note: why it was not sent or what failed (empty when answered).
    """

    recipient: str
    contact: Optional[str]
    status: Optional[int]
    note: str = ""


def udp_endpoint_of(service: Any) -> Callable[..., Optional[UDPEndpoint]]:
    """
    A lookup of the first UDP port of a L{conference.service.ConferenceService}
    (made lazily: the ports listen only after the handlers are built); given
    the address a datagram goes to, the first port of that address's family
    (an IPv4 socket cannot send to an IPv6 address, nor the reverse).
    """

    def lookup(to: Optional[str] = None) -> Optional[UDPEndpoint]:
        ports = list(service.udp_ports)
        if not ports:
            return None
        if to is not None:
            v6 = ":" in to
            same = [p for p in ports if (":" in str(getattr(p.getHost(), "host", ""))) == v6]
            ports = same or ports
        port = ports[0]
        protocol = getattr(port, "protocol", None)
        address = port.getHost()
        host = str(getattr(address, "host", "") or "")
        if not host or host in ("0.0.0.0", "::"):
            host = service.router.default_domain
        return protocol, host, int(getattr(address, "port", 5060))

    return lookup


class Messenger:
    """
    Sends iTIP messages to calendar user addresses as SIP MESSAGEs.

    @ivar registrations: where the contacts of served users are looked up.
    @ivar domain_of: maps a host to the served domain it names, or L{None}.
    @ivar sign: signs each calendar body once per message, or L{None}.
    """

    def __init__(
        self,
        sender: RequestSender,
        registrations: IRegistrationStore,
        *,
        domain_of: Callable[[str], Optional[str]],
        endpoint: Callable[[], Optional[UDPEndpoint]],
        reactor: IReactorTime,
        default_domain: str = "localhost",
        tag_factory: Callable[[], str] = new_tag,
        branch_factory: Callable[[], str] = new_branch,
        sign: Optional[Callable[[str, bytes], Tuple[str, bytes]]] = None,
        route: Optional[URISender] = None,
    ) -> None:
        """
        @param route: sends to any SIP URI (DNS names, TCP and TLS
            contacts, and recipients in other domains, docs/federation.rst);
            L{None}: only registered UDP contacts with IP hosts are reached.
        @param sign: wraps each calendar body (Content-Type, body) as
            C{multipart/signed} with the server's S/MIME credentials
            (L{conference.smime.Credentials.sign}); L{None} sends it bare.
        """
        self.sign = sign
        self.route = route
        self.sender = sender
        self.registrations = registrations
        self.domain_of = domain_of
        self.endpoint = endpoint
        self._reactor = reactor
        self.default_domain = default_domain
        self.tag_factory = tag_factory
        self.branch_factory = branch_factory

    # Public ----------------------------------------------------------------

    def send(
        self, outgoing: Outgoing, originator: Optional[str] = None, *, as_xcal: bool = True
    ) -> Deferred[List[Delivery]]:
        """
        Send C{outgoing} to each of its recipients.

        @param originator: the From address (the conference URI);
            C{sip:conference@<default domain>} when L{None}.
        @return: a Deferred firing with one L{Delivery} per recipient and
            contact once every transaction ended; it never fails.
        """
        content_type, body = render_calendar(outgoing.calendar, as_xcal=as_xcal)
        if self.sign is not None:
            content_type, body = self.sign(content_type, body)
        sender = originator or f"sip:conference@{self.default_domain}"
        seen: List[str] = []
        waits: List[Deferred[List[Delivery]]] = []
        for recipient in outgoing.recipients:
            key = normalize_address(recipient)
            if key in seen:
                continue
            seen.append(key)
            address = target_address(recipient)
            waits.append(self._to_recipient(address, sender, content_type, body, outgoing.method))
        return _gather(waits)

    def send_later(
        self, outgoing: List[Outgoing], originator: Optional[str] = None, *, as_xcal: bool = True
    ) -> Deferred[List[Delivery]]:
        """
        L{send} each of C{outgoing} on the next turn of the reactor, after
        the response now being built has gone out (a peer then sees the 200
        before the iTIP answer).
        """
        result: Deferred[List[Delivery]] = Deferred()

        def go() -> None:
            waits = [self.send(o, originator, as_xcal=as_xcal) for o in outgoing]
            _gather(waits).chainDeferred(result)

        self._reactor.callLater(0, go)
        return result

    # Per recipient ----------------------------------------------------------

    def _to_recipient(
        self, address: str, originator: str, content_type: str, body: bytes, method: str
    ) -> Deferred[List[Delivery]]:
        return Deferred.fromCoroutine(
            self._deliver(address, originator, content_type, body, method)
        )

    async def _deliver(
        self, address: str, originator: str, content_type: str, body: bytes, method: str
    ) -> List[Delivery]:
        aor = self._served_aor(address)
        if aor is not None and address.startswith("sips:"):
            message = _Message(address, originator, content_type, body, method)
            return await self._to_secure_user(aor, message)
        if aor is None and self.route is not None and address.startswith(("sip:", "sips:")):
            message = _Message(address, originator, content_type, body, method)
            return await self._to_contact(message, address)
        if aor is None:
            return [self._undeliverable(address, None, "not in a served domain", method)]
        try:
            bindings = await self.registrations.get_bindings(aor, self._reactor.seconds())
        except StoreError as e:  # one line, no traceback (docs/stores.rst)
            log.error("Could not look up {aor}: {error}", aor=aor, error=e)
            return [Delivery(aor, None, None, "registration lookup failed")]
        except Exception:
            log.failure("Could not look up {aor}", aor=aor)
            return [Delivery(aor, None, None, "registration lookup failed")]
        if not bindings:
            return [self._undeliverable(aor, None, "not registered", method)]
        message = _Message(aor, originator, content_type, body, method)
        waits = [
            Deferred.fromCoroutine(self._to_contact(message, str(b.contact))) for b in bindings
        ]
        return await _gather(waits)

    async def _to_secure_user(self, aor: str, message: _Message) -> List[Delivery]:
        """
        A C{sips:} recipient of a served domain: only their contacts reached
        over TLS (C{sips:} or C{transport=tls}, through the route), since
        RFC 3261 section 26.2 lets no hop of a C{sips:} request go in the
        clear; with none, the message is undeliverable, never downgraded.
        """
        try:
            bindings = await self.registrations.get_bindings(aor, self._reactor.seconds())
        except Exception as e:
            log.error("Could not look up {aor}: {error}", aor=aor, error=str(e))
            return [Delivery(aor, None, None, "registration lookup failed")]
        secure = [str(b.contact) for b in bindings if over_tls(str(b.contact))]
        if self.route is None or not secure:
            why = "sips: recipient has no contact reachable over TLS"
            return [self._undeliverable(message.aor, None, why, message.method)]
        waits = [Deferred.fromCoroutine(self._to_contact(message, c)) for c in secure]
        return await _gather(waits)

    def _served_aor(self, address: str) -> Optional[str]:
        scheme, _, rest = address.partition(":")
        if scheme not in ("sip", "sips"):
            return None
        rest = rest.split(";", 1)[0]
        user, at, host = rest.rpartition("@")
        if not at or not user:
            return None
        domain = self.domain_of(host.split(":", 1)[0])
        return f"sip:{user}@{domain}" if domain is not None else None

    def _undeliverable(
        self, recipient: str, contact: Optional[str], why: str, method: str
    ) -> Delivery:
        log.info(
            "iTIP {method} to {recipient} undeliverable: {why}",
            method=method,
            recipient=recipient,
            why=why,
        )
        return Delivery(recipient, contact, None, why)

    async def _to_contact(self, message: _Message, contact: str) -> List[Delivery]:
        aor, method = message.aor, message.method
        try:
            uri = parse_uri(contact)
        except SIPProtocolError:
            return [self._undeliverable(aor, contact, "contact is not a URI", method)]
        if self.route is not None and isinstance(uri, SIPURI):
            return [await self._routed(message, contact, uri)]
        if not isinstance(uri, SIPURI) or uri.scheme != "sip":
            return [self._undeliverable(aor, contact, "contact is not sip:", method)]
        transport = (uri.params.get("transport") or "udp").lower()
        host = uri.params.get("maddr") or uri.host
        if transport != "udp":
            why = f"contact transport {transport} (only UDP is used for iTIP MESSAGEs)"
            return [self._undeliverable(aor, contact, why, method)]
        if not is_ip_literal(host):
            return [self._undeliverable(aor, contact, "contact host is not an IP address", method)]
        endpoint = self.endpoint()
        if endpoint is None:
            return [self._undeliverable(aor, contact, "no UDP port listening", method)]
        key, local_host, local_port = endpoint
        request = self.build_request(
            uri,
            aor,
            message.originator,
            message.content_type,
            message.body,
            local=(local_host, local_port),
        )
        peer = Peer("UDP", host.strip("[]"), uri.port or 5060, key)
        return [await self._outcome(message, contact, self.sender.send_request(request, peer))]

    async def _routed(self, message: _Message, contact: str, uri: SIPURI) -> Delivery:
        request = self.build_request(
            uri, message.aor, message.originator, message.content_type, message.body, local=None
        )
        assert self.route is not None
        return await self._outcome(message, contact, self.route.send_to(request, contact))

    async def _outcome(
        self, message: _Message, contact: str, sending: Deferred[Response]
    ) -> Delivery:
        aor, method = message.aor, message.method
        try:
            response = await sending
        except Exception as e:
            log.info(
                "iTIP {method} MESSAGE to {contact} failed: {why}",
                method=method,
                contact=contact,
                why=str(e) or type(e).__name__,
            )
            return Delivery(aor, contact, None, str(e) or type(e).__name__)
        log.info(
            "iTIP {method} MESSAGE to {contact} answered {code}",
            method=method,
            contact=contact,
            code=response.code,
        )
        return Delivery(aor, contact, response.code)

    def build_request(
        self,
        target: SIPURI,
        to: str,
        originator: str,
        content_type: str,
        body: bytes,
        *,
        local: Optional[Tuple[str, int]],
    ) -> Request:
        """
        A MESSAGE (RFC 3428) to C{target}, To C{to}, From C{originator},
        with a Via sent-by C{local} (host, port) asking for rport, or none
        when L{None} (the route adds one per target).
        """
        request = Request("MESSAGE", target, body)
        if local is not None:
            host, port = local
            shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
            request.add_header(
                "Via", f"SIP/2.0/UDP {shown}:{port};branch={self.branch_factory()};rport"
            )
        request.add_header("Max-Forwards", "70")
        request.add_header("From", f"<{originator}>;tag={self.tag_factory()}")
        request.add_header("To", f"<{to}>")
        domain = originator.rpartition("@")[2] or self.default_domain
        request.add_header("Call-ID", f"{secrets.token_hex(12)}@{domain}")
        request.add_header("CSeq", "1 MESSAGE")
        request.add_header("Content-Type", content_type)
        return request


@dataclass(frozen=True)
class _Message:
    aor: str
    originator: str
    content_type: str
    body: bytes
    method: str


def target_address(recipient: str) -> str:
    """
    Where to send a calendar user's message: the address as written, with
    the scheme and host lower-cased and URI headers dropped, but its
    C{sips:} scheme and URI parameters (C{transport}, C{maddr}) kept, since
    RFC 3263 resolves by them.  Other schemes are normalised
    (L{normalize_address}).
    """
    text = recipient.strip()
    scheme, sep, rest = text.partition(":")
    if not sep or scheme.lower() not in ("sip", "sips"):
        return normalize_address(text)
    rest = rest.split("?", 1)[0]
    head, semi, params = rest.partition(";")
    user, at, host = head.rpartition("@")
    return f"{scheme.lower()}:{user}{at}{host.lower()}{semi}{params}"


def over_tls(contact: str) -> bool:
    """
    Whether a registered contact is reached over TLS.
    """
    text = contact.strip().lower()
    return text.startswith("sips:") or ";transport=tls" in text


def _gather(waits: List[Deferred[List[Delivery]]]) -> Deferred[List[Delivery]]:
    if not waits:
        return succeed([])

    def flatten(results: List[Tuple[bool, Any]]) -> List[Delivery]:
        out: List[Delivery] = []
        for ok, value in results:
            if ok:
                out.extend(value)
        return out

    return DeferredList(waits, consumeErrors=True).addCallback(flatten)


def by_recipient(deliveries: List[Delivery]) -> Dict[str, List[Delivery]]:
    """
    Deliveries grouped by recipient (for logs and tests).
    """
    out: Dict[str, List[Delivery]] = {}
    for delivery in deliveries:
        out.setdefault(delivery.recipient, []).append(delivery)
    return out


__all__ = [
    "Delivery",
    "Messenger",
    "RequestSender",
    "UDPEndpoint",
    "URISender",
    "by_recipient",
    "over_tls",
    "udp_endpoint_of",
]
