# -*- test-case-name: tests.loopback.test_outbound -*-
"""
Tests for L{conference.transport.outbound} with its DNS adapter and
connector, on loopback: a zone served by C{twisted.names}, and SIP servers
of a foreign domain (our own SIP core with a handler that answers MESSAGE)
over UDP, TCP and TLS.
"""

from __future__ import annotations

import datetime
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.ssl import CertificateOptions
from twisted.names import dns, server
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from conference.app.core import CoreRouter
from conference.interfaces import IRequestHandler, RequestContext
from conference.sip import transaction as txn
from conference.sip.message import Request, Response, make_response
from conference.sip.transaction_model import new_tag
from conference.sip.uri import SIPURI, parse_uri
from conference.transport.outbound import OutboundSender, Unreachable, build_outbound
from conference.transport.server import SIPServer
from conference.transport.stream import SIPStreamFactory
from conference.transport.udp import SIPDatagramProtocol
from tests.dnszone import LiveZone, naptr, srv
from tests.loopback.sameport import listen_same_port

reactor: Any = _reactor


@implementer(IRequestHandler)
class Answerer:
    """
    Answers MESSAGE with C{code}; keeps the requests and their transports.
    """

    methods = ("MESSAGE",)
    accepts: Any = {"MESSAGE": ("text/plain",)}

    def __init__(self, code: int) -> None:
        self.code = code
        self.received: List[Tuple[str, Request]] = []

    def handle_request(self, request: Request, context: RequestContext) -> Response:
        self.received.append((context.peer.transport, request))
        return make_response(request, self.code, to_tag=new_tag())

    def handle_ack(self, request: Request, context: RequestContext) -> None:
        """Nothing to do."""

    def handle_cancel(self, request: Request, context: RequestContext) -> None:
        """Nothing to do."""

    def handle_timeout(self, request: Request) -> None:
        """Nothing to do."""


def certificate(name: str, issuer: Optional[Tuple[Any, Any]] = None) -> Tuple[Any, Any]:
    """
    A certificate for DNS name C{name} signed by C{issuer}, or a CA when
    that is L{None}.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    signer_cert, signer_key = issuer if issuer is not None else (None, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(signer_cert.subject if signer_cert is not None else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is not None:
        san = x509.SubjectAlternativeName([x509.DNSName(name)])
        builder = builder.add_extension(san, critical=False)
    return builder.sign(signer_key, hashes.SHA256()), key


def clear_text_zone(udp: int, tcp: int, *, udp_order: int, tcp_order: int) -> Dict[str, List[Any]]:
    """
    example.net offering SIP over UDP and TCP (NAPTR of these orders, SRV)
    on sip1.example.net, 127.0.0.1.
    """
    return {
        "example.net": [
            naptr(udp_order, 10, "SIP+D2U", "_sip._udp.example.net"),
            naptr(tcp_order, 10, "SIP+D2T", "_sip._tcp.example.net"),
        ],
        "_sip._udp.example.net": [srv(0, 0, udp, "sip1.example.net")],
        "_sip._tcp.example.net": [srv(0, 0, tcp, "sip1.example.net")],
        "sip1.example.net": [dns.Record_A("127.0.0.1")],
    }


class Loopback(TestCase):
    """
    Our server (example.com) with a UDP port and the outbound sender, a
    DNS server for the foreign domain example.net, and its SIP servers.
    """

    zone: Dict[str, List[Any]]

    def setUp(self) -> None:
        self.zone = {}
        self.dns_port = self.listen_dns()
        self.server, self.udp_port = self.sip_server(["example.com"])
        protocol = self.udp_port.protocol
        self.ca = certificate("Test CA")
        folder = self.mktemp()
        os.makedirs(folder)
        self.ca_path = os.path.join(folder, "ca.pem")
        with open(self.ca_path, "wb") as f:
            f.write(self.ca[0].public_bytes(serialization.Encoding.PEM))
        self.streams = SIPStreamFactory(self.server, reactor, idle_timeout=30)
        self.sender = build_outbound(
            self.server,
            self.streams,
            reactor,
            resolver=("127.0.0.1", self.dns_port),
            tls_peer_ca=self.ca_path,
            udp=lambda to=None: (protocol, "127.0.0.1", self.udp_port.getHost().port),
            ports=lambda: [self.udp_port],
        )
        self.addCleanup(self.sender.close)

    def listen_dns(self) -> int:
        """
        Serve C{self.zone} (read at each query) on a loopback UDP port.
        """
        factory = server.DNSServerFactory(authorities=[LiveZone("example.net", lambda: self.zone)])
        port = reactor.listenUDP(0, dns.DNSDatagramProtocol(factory), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return int(port.getHost().port)

    def sip_server(
        self,
        domains: Sequence[str],
        code: Optional[int] = None,
        t1: float = 0.5,
        with_tcp: bool = False,
    ) -> Tuple[SIPServer, Any]:
        """
        A SIP core for C{domains} on a loopback UDP port (and TCP on the
        same port number if C{with_tcp}), answering MESSAGE with C{code}
        when given.
        """
        router = CoreRouter(domains, tag_factory=new_tag, accept_ip_literals=True)
        if code is not None:
            answerer = Answerer(code)
            router.add_handler(answerer)
            router.answerer = answerer  # type: ignore[attr-defined]
        sip = SIPServer(router, reactor=reactor, layer=txn.TransactionLayer(t1=t1))
        self.addCleanup(sip.stop, 0)
        if not with_tcp:
            port = reactor.listenUDP(0, SIPDatagramProtocol(sip), interface="127.0.0.1")
            self.addCleanup(port.stopListening)
            return sip, port
        port, stream = listen_same_port(
            lambda n: reactor.listenUDP(n, SIPDatagramProtocol(sip), interface="127.0.0.1"),
            lambda n: reactor.listenTCP(n, SIPStreamFactory(sip, reactor), interface="127.0.0.1"),
        )
        self.addCleanup(port.stopListening)
        self.addCleanup(stream.stopListening)
        return sip, port

    def foreign(self, code: int = 200, tls_name: Optional[str] = None) -> Tuple[Answerer, int, int]:
        """
        A SIP server of example.net answering C{code}: its answerer, UDP
        port and stream port (TLS with a certificate for C{tls_name}, else
        TCP).
        """
        sip, udp = self.sip_server(["example.net"], code)
        streams = SIPStreamFactory(sip, reactor, idle_timeout=30)
        if tls_name is None:
            stream = reactor.listenTCP(0, streams, interface="127.0.0.1")
        else:
            cert, key = certificate(tls_name, self.ca)
            from OpenSSL import crypto

            options = CertificateOptions(
                privateKey=crypto.PKey.from_cryptography_key(key),
                certificate=crypto.X509.from_cryptography(cert),
            )
            stream = reactor.listenSSL(0, streams, options, interface="127.0.0.1")
        self.addCleanup(stream.stopListening)
        return sip.router.answerer, int(udp.getHost().port), int(stream.getHost().port)  # type: ignore[attr-defined]

    def message(self, uri: str, body: bytes = b"hello") -> Request:
        """
        A MESSAGE from example.com to C{uri}, without a Via.
        """
        target = parse_uri(uri)
        assert isinstance(target, SIPURI)
        request = Request("MESSAGE", target, body)
        request.add_header("Max-Forwards", "70")
        request.add_header("From", f"<sip:conf@example.com>;tag={new_tag()}")
        request.add_header("To", f"<{uri}>")
        request.add_header("Call-ID", f"{new_tag()}@example.com")
        request.add_header("CSeq", "1 MESSAGE")
        request.add_header("Content-Type", "text/plain")
        return request

    def send(self, uri: str) -> Deferred[Response]:
        """
        Send a MESSAGE to C{uri} through the outbound sender.
        """
        return self.sender.send_to(self.message(uri), uri)


class ResolutionTests(Loopback):
    """
    NAPTR, SRV and A records lead requests to the foreign servers.
    """

    @inlineCallbacks
    def test_answering_peer(self) -> Any:
        """send_attempt names the target that answered (where a 2xx's ACK goes)."""
        _, udp, _ = self.foreign()
        self.zone = {
            "_sip._udp.example.net": [srv(0, 0, udp, "sip1.example.net")],
            "sip1.example.net": [dns.Record_A("127.0.0.1")],
        }
        uri = parse_uri("sip:bob@example.net;transport=udp")
        response, peer = yield self.sender.send_attempt(self.message(str(uri)), uri)
        self.assertEqual(response.code, 200)
        self.assertEqual((peer.transport, peer.host, peer.port), ("UDP", "127.0.0.1", udp))

    @inlineCallbacks
    def test_naptr_srv_udp(self) -> Any:
        """
        NAPTR -> SRV -> A reaches the foreign server over UDP.
        """
        answerer, udp, _ = self.foreign()
        self.zone = {
            "example.net": [naptr(10, 10, "SIP+D2U", "_sip._udp.example.net")],
            "_sip._udp.example.net": [srv(0, 0, udp, "sip1.example.net")],
            "sip1.example.net": [dns.Record_A("127.0.0.1")],
        }
        response = yield self.send("sip:bob@example.net")
        self.assertEqual(response.code, 200)
        ((transport, request),) = answerer.received
        self.assertEqual(transport, "UDP")
        self.assertTrue(str(request.header("via")).startswith("SIP/2.0/UDP 127.0.0.1:"))

    @inlineCallbacks
    def test_naptr_order_tcp_first(self) -> Any:
        """
        The NAPTR record of lower order (TCP here) is used first, and the
        TCP connection is reused for the next request.
        """
        answerer, udp, tcp = self.foreign()
        self.zone = clear_text_zone(udp, tcp, udp_order=20, tcp_order=10)
        first = yield self.send("sip:bob@example.net")
        second = yield self.send("sip:carol@example.net")
        self.assertEqual((first.code, second.code), (200, 200))
        self.assertEqual([t for t, _ in answerer.received], ["TCP", "TCP"])
        assert self.sender.connector is not None
        self.assertEqual(len(self.sender.connector._open), 1)

    @inlineCallbacks
    def test_failover_on_503(self) -> Any:
        """
        A 503 from the priority 1 target sends the request to priority 2.
        """
        busy, busy_udp, _ = self.foreign(503)
        good, good_udp, _ = self.foreign(200)
        self.zone = {
            "_sip._udp.example.net": [
                srv(2, 0, good_udp, "b.example.net"),
                srv(1, 0, busy_udp, "a.example.net"),
            ],
            "a.example.net": [dns.Record_A("127.0.0.1")],
            "b.example.net": [dns.Record_A("127.0.0.1")],
        }
        response = yield self.send("sip:bob@example.net;transport=udp")
        self.assertEqual(response.code, 200)
        self.assertEqual((len(busy.received), len(good.received)), (1, 1))

    @inlineCallbacks
    def test_all_503(self) -> Any:
        """
        When every target answers 503, that 503 is the answer.
        """
        _, busy_udp, _ = self.foreign(503)
        self.zone = {
            "_sip._udp.example.net": [srv(1, 0, busy_udp, "a.example.net")],
            "a.example.net": [dns.Record_A("127.0.0.1")],
        }
        response = yield self.send("sip:bob@example.net;transport=udp")
        self.assertEqual(response.code, 503)

    @inlineCallbacks
    def test_failover_connection_refused(self) -> Any:
        """
        A TCP target that refuses the connection is followed by the next.
        """
        closed = reactor.listenTCP(0, SIPStreamFactory(self.server, reactor))
        dead = int(closed.getHost().port)
        yield closed.stopListening()
        answerer, _, tcp = self.foreign()
        self.zone = {
            "_sip._tcp.example.net": [
                srv(1, 0, dead, "a.example.net"),
                srv(2, 0, tcp, "a.example.net"),
            ],
            "a.example.net": [dns.Record_A("127.0.0.1")],
        }
        response = yield self.send("sip:bob@example.net;transport=tcp")
        self.assertEqual(response.code, 200)
        self.assertEqual(len(answerer.received), 1)

    @inlineCallbacks
    def test_failover_on_timeout(self) -> Any:
        """
        A UDP target that never answers (Timer F, short T1 here) is
        followed by the next one.
        """
        self.server.layer.t1 = 0.01
        silent = reactor.listenUDP(0, DatagramProtocol(), interface="127.0.0.1")
        self.addCleanup(silent.stopListening)
        answerer, udp, _ = self.foreign()
        self.zone = {
            "_sip._udp.example.net": [
                srv(1, 0, int(silent.getHost().port), "a.example.net"),
                srv(2, 0, udp, "a.example.net"),
            ],
            "a.example.net": [dns.Record_A("127.0.0.1")],
        }
        response = yield self.send("sip:bob@example.net;transport=udp")
        self.assertEqual(response.code, 200)
        self.assertEqual(len(answerer.received), 1)

    @inlineCallbacks
    def test_no_such_domain(self) -> Any:
        """
        A domain without records is Unreachable, saying so.
        """
        error = yield self.assertFailure(self.send("sip:bob@nowhere.example.net"), Unreachable)
        self.assertIn("no address found", str(error))

    @inlineCallbacks
    def test_points_at_ourselves(self) -> Any:
        """
        SRV records naming our own port are skipped, never sent to.
        """
        self.zone = {
            "_sip._udp.example.net": [srv(1, 0, self.udp_port.getHost().port, "a.example.net")],
            "a.example.net": [dns.Record_A("127.0.0.1")],
        }
        error = yield self.assertFailure(
            self.send("sip:bob@example.net;transport=udp"), Unreachable
        )
        self.assertIn("this server", str(error))

    @inlineCallbacks
    def test_cname_loop(self) -> Any:
        """
        A CNAME loop ends as Unreachable.
        """
        self.zone = {
            "_sip._udp.example.net": [srv(1, 0, 5060, "a.example.net")],
            "a.example.net": [dns.Record_CNAME(b"b.example.net")],
            "b.example.net": [dns.Record_CNAME(b"a.example.net")],
        }
        yield self.assertFailure(self.send("sip:bob@example.net;transport=udp"), Unreachable)


class TLSTests(Loopback):
    """
    sips: and TLS: the certificate must name the URI's domain.
    """

    @inlineCallbacks
    def test_sips_name_matches(self) -> Any:
        """
        A sips: URI goes over TLS to a server whose certificate names the
        domain (not the SRV target).
        """
        answerer, _, tls = self.foreign(tls_name="example.net")
        self.zone = {
            "example.net": [naptr(10, 10, "SIPS+D2T", "_sips._tcp.example.net")],
            "_sips._tcp.example.net": [srv(0, 0, tls, "sip1.example.net")],
            "sip1.example.net": [dns.Record_A("127.0.0.1")],
        }
        response = yield self.send("sips:bob@example.net")
        self.assertEqual(response.code, 200)
        self.assertEqual([t for t, _ in answerer.received], ["TLS"])

    @inlineCallbacks
    def test_name_mismatch(self) -> Any:
        """
        A certificate for another name fails the handshake: nothing is
        sent, and the sender says why.
        """
        answerer, _, tls = self.foreign(tls_name="other.example.org")
        self.zone = {
            "_sips._tcp.example.net": [srv(0, 0, tls, "sip1.example.net")],
            "sip1.example.net": [dns.Record_A("127.0.0.1")],
        }
        error = yield self.assertFailure(self.send("sips:bob@example.net"), Unreachable)
        self.assertIn("TLS 127.0.0.1", str(error))
        self.assertEqual(answerer.received, [])


class SizeTests(Loopback):
    """
    RFC 3261 section 18.1.1: a request over 1300 bytes that DNS sends to a
    UDP target goes over TCP to the same address and port, and over UDP
    only when no TCP connection can be made.
    """

    def big(self, port: int) -> Deferred[Response]:
        self.zone = {
            "_sip._udp.example.net": [srv(0, 0, port, "sip1.example.net")],
            "sip1.example.net": [dns.Record_A("127.0.0.1")],
        }
        uri = "sip:bob@example.net"
        return self.sender.send_to(self.message(uri, b"x" * 2000), uri)

    @inlineCallbacks
    def test_big_over_tcp(self) -> Any:
        """A 2 kB MESSAGE to a UDP target reaches the TCP listener on its port."""
        sip, udp = self.sip_server(["example.net"], 200, with_tcp=True)
        port = int(udp.getHost().port)
        response = yield self.big(port)
        self.assertEqual(response.code, 200)
        [(transport, request)] = sip.router.answerer.received  # type: ignore[attr-defined]
        self.assertEqual(transport, "TCP")
        self.assertTrue(str(request.header("via")).startswith("SIP/2.0/TCP "))

    @inlineCallbacks
    def test_big_over_udp_without_tcp(self) -> Any:
        """With nothing listening on TCP there, the big MESSAGE goes over UDP after all."""
        answerer, udp, _ = self.foreign()
        response = yield self.big(udp)
        self.assertEqual(response.code, 200)
        self.assertEqual([t for t, _ in answerer.received], ["UDP"])

    @inlineCallbacks
    def test_small_stays_udp(self) -> Any:
        """A small request to a UDP target is sent over UDP."""
        sip, udp = self.sip_server(["example.net"], 200, with_tcp=True)
        port = int(udp.getHost().port)
        self.zone = {
            "_sip._udp.example.net": [srv(0, 0, port, "sip1.example.net")],
            "sip1.example.net": [dns.Record_A("127.0.0.1")],
        }
        response = yield self.send("sip:bob@example.net")
        self.assertEqual(response.code, 200)
        self.assertEqual([t for t, _ in sip.router.answerer.received], ["UDP"])  # type: ignore[attr-defined]


class SecureTests(Loopback):
    """
    A sips: URI is never downgraded: only TLS targets (SIPS+D2T,
    _sips._tcp) are used, however the zone offers clear-text ones.
    """

    @inlineCallbacks
    def test_clear_text_only(self) -> Any:
        """
        A zone offering only UDP and TCP (NAPTR and SRV) leaves a sips: URI
        unreachable: nothing reaches the clear-text server.
        """
        answerer, udp, tcp = self.foreign()
        self.zone = clear_text_zone(udp, tcp, udp_order=10, tcp_order=20)
        yield self.assertFailure(self.send("sips:bob@example.net"), Unreachable)
        self.assertEqual(answerer.received, [])

    @inlineCallbacks
    def test_sips_srv_without_naptr(self) -> Any:
        """
        Without NAPTR records, a sips: URI asks _sips._tcp only and goes over
        TLS, though _sip._udp names a server too; transport=tcp in a
        sips: URI still means TLS.
        """
        clear, udp, _ = self.foreign()
        secure, _, tls = self.foreign(tls_name="example.net")
        self.zone = {
            "_sip._udp.example.net": [srv(0, 0, udp, "sip1.example.net")],
            "_sips._tcp.example.net": [srv(0, 0, tls, "sip2.example.net")],
            "sip1.example.net": [dns.Record_A("127.0.0.1")],
            "sip2.example.net": [dns.Record_A("127.0.0.1")],
        }
        first = yield self.send("sips:bob@example.net")
        second = yield self.send("sips:bob@example.net;transport=tcp")
        self.assertEqual((first.code, second.code), (200, 200))
        self.assertEqual([t for t, _ in secure.received], ["TLS", "TLS"])
        self.assertEqual(clear.received, [])


class NotSIPTests(TestCase):
    """
    What is not a SIP URI is not sent.
    """

    def test_mailto(self) -> None:
        """A mailto: URI is Unreachable at once."""
        sender = OutboundSender(None, None, None, udp=lambda to=None: None)  # type: ignore[arg-type]
        request = Request("MESSAGE", parse_uri("sip:x@example.net"), b"")
        self.failureResultOf(sender.send_to(request, "mailto:a@example.net"), Unreachable)
