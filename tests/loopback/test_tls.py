# -*- test-case-name: tests.loopback.test_tls -*-
"""
Tests for L{conference.tls}: real TLS handshakes on loopback between the
server (pyOpenSSL) and Python's C{ssl} module as an independent client,
with certificates made here by C{cryptography}.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import warnings
from typing import Any, Generator, List, Optional, Sequence, Tuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.internet.task import Clock, deferLater
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer

from conference.app.core import CoreRouter, RequestContext
from conference.interfaces import IRequestHandler, ISIPIdentity
from conference.service import ConferenceService, ServerConfig
from conference.sip.message import Request, Response, make_response
from conference.sip.transaction import Peer
from conference.sip.transaction_model import new_tag
from conference.testing import memory_stores
from conference.tls import (
    TLSConfigError,
    identity_from_certificate,
    parse_tls_description,
    server_options,
    tls_endpoint,
)
from conference.transport.server import SIPServer
from conference.transport.stream import SIPStreamFactory
from tests.builders import parse_response, request_bytes
from tests.unit.smime.pki import duplicate_extension, x400_address

# The subjectKeyIdentifier OID in DER, renamed to basicConstraints to make a duplicate.
SKI_OID = bytes.fromhex("0603551d0e")

reactor: Any = _reactor

Issuer = Tuple[x509.Certificate, ec.EllipticCurvePrivateKey]


def make_certificate(
    name: str,
    issuer: Optional[Issuer] = None,
    *,
    ca: bool = False,
    uris: Sequence[str] = (),
    emails: Sequence[str] = (),
    hosts: Sequence[str] = (),
) -> Issuer:
    """
    A certificate for C{name} signed by C{issuer} (self-signed without),
    with the given subjectAltNames (C{hosts} are IP addresses).
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
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    names: List[x509.GeneralName] = [x509.UniformResourceIdentifier(u) for u in uris]
    names.extend(x509.RFC822Name(e) for e in emails)
    names.extend(x509.IPAddress(ipaddress.ip_address(h)) for h in hosts)
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if ca:
        usage = x509.KeyUsage(True, False, False, False, False, True, True, False, False)
        builder = builder.add_extension(usage, critical=True)
    else:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()),
            critical=False,
        )
    return builder.sign(signer_key, hashes.SHA256()), key


def pem(certificate: x509.Certificate, key: Optional[ec.EllipticCurvePrivateKey] = None) -> bytes:
    """
    PEM of a certificate, followed by its key when given.
    """
    out = certificate.public_bytes(serialization.Encoding.PEM)
    if key is not None:
        out += key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    return out


class Files:
    """
    A CA, a server certificate, trusted client certificates and an
    untrusted one, written to C{directory}.
    """

    def __init__(self, directory: str) -> None:
        import os

        os.makedirs(directory)
        self.ca = make_certificate("Test CA", ca=True)
        rogue = make_certificate("Rogue CA", ca=True)
        self.paths = {
            "ca": pem(self.ca[0]),
            "server": pem(*make_certificate("server", self.ca, hosts=["127.0.0.1"])),
            "alice": pem(*make_certificate("alice", self.ca, uris=["sip:alice@example.com"])),
            "mallory": pem(*make_certificate("mallory", rogue, uris=["sip:alice@example.com"])),
        }
        for name, data in list(self.paths.items()):
            path = os.path.join(directory, name + ".pem")
            with open(path, "wb") as f:
                f.write(data)
            self.paths[name] = path  # type: ignore[assignment]

    def __getitem__(self, name: str) -> str:
        return str(self.paths[name])


def exchange(
    port: int,
    data: bytes,
    ca: str,
    *,
    version: Optional[ssl.TLSVersion] = None,
    cert: Optional[str] = None,
) -> Tuple[str, bytes]:
    """
    In a thread: connect with Python's ssl module, send C{data}, read one
    response head; return (protocol version, bytes read).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(ca)
        if version is not None:
            context.minimum_version = context.maximum_version = version
            if version < ssl.TLSVersion.TLSv1_2:
                context.set_ciphers("DEFAULT:@SECLEVEL=0")
    if cert is not None:
        context.load_cert_chain(cert)
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with raw, context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        tls.sendall(data)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = tls.recv(4096)
            if not chunk:
                break
            received += chunk
        return str(tls.version()), received


def options(uri: str = "sip:example.com", method: str = "OPTIONS") -> bytes:
    """
    A request as sent over TLS.
    """
    return request_bytes(method, uri, transport="TLS", via_host="127.0.0.1:5061")


@implementer(IRequestHandler)
class IdentityHandler:
    """
    Answers MESSAGE 200 and keeps the identity each request came with.
    """

    methods = ("MESSAGE",)
    accepts: Any = {"MESSAGE": ("text/plain",)}

    def __init__(self) -> None:
        self.identities: List[Optional[ISIPIdentity]] = []

    def handle_request(self, request: Request, context: RequestContext) -> Response:
        self.identities.append(context.identity)
        return make_response(request, 200, to_tag=new_tag())

    def handle_ack(self, request: Request, context: RequestContext) -> None:
        """Nothing to do."""

    def handle_cancel(self, request: Request, context: RequestContext) -> None:
        """Nothing to do."""

    def handle_timeout(self, request: Request) -> None:
        """Nothing to do."""


class IdentityTests(SynchronousTestCase):
    """
    Which identity a certificate names.
    """

    def test_sip_uri(self) -> None:
        """A sip: subjectAltName URI gives user and domain, with mechanism tls."""
        cert, _ = make_certificate("x", uris=["https://example.com/", "sip:Alice@Example.COM"])
        identity = identity_from_certificate(cert)
        assert identity is not None
        self.assertEqual(
            (identity.aor, identity.username, identity.mechanism),
            ("sip:Alice@example.com", "Alice", "tls"),
        )

    def test_sips_escaped(self) -> None:
        """A sips: URI with an escaped user part gives the unescaped user."""
        cert, _ = make_certificate("x", uris=["sips:j%40doe@example.com"])
        identity = identity_from_certificate(cert)
        assert identity is not None
        self.assertEqual(identity.username, "j@doe")

    def test_email_fallback(self) -> None:
        """Without a usable sip URI (none, or one without user) the rfc822Name is used."""
        cert, _ = make_certificate("x", uris=["sip:example.com"], emails=["bob@Example.com"])
        identity = identity_from_certificate(cert)
        assert identity is not None
        self.assertEqual(identity.aor, "sip:bob@example.com")

    def test_none(self) -> None:
        """A certificate with only a common name, or only other URIs, names no one."""
        self.assertIsNone(identity_from_certificate(make_certificate("sip:alice@example.com")[0]))
        cert, _ = make_certificate("x", uris=["https://example.com/"], emails=["not-an-address"])
        self.assertIsNone(identity_from_certificate(cert))

    def test_undecodable_extensions(self) -> None:
        """Extensions cryptography cannot decode (an x400Address, a duplicate) name no one."""
        cert, _ = make_certificate("x", uris=["sip:alice@example.com"])
        self.assertIsNone(identity_from_certificate(x400_address(cert, "sip:alice@example.com")))
        self.assertIsNone(identity_from_certificate(duplicate_extension(cert, SKI_OID)))


class OptionTests(SynchronousTestCase):
    """
    Building contexts and reading tls: descriptions.
    """

    def setUp(self) -> None:
        self.files = Files(self.mktemp())

    def test_description(self) -> None:
        """tls: descriptions give port, files, interface (escaped colons) and backlog."""
        listen = parse_tls_description(
            "tls:5061:certKey=/c.pem:privateKey=/k.pem:interface=\\:\\:1:backlog=9"
        )
        self.assertEqual(
            (listen.port, listen.cert_file, listen.key_file, listen.interface, listen.backlog),
            (5061, "/c.pem", "/k.pem", "::1", 9),
        )
        self.assertEqual(parse_tls_description("tls:port=1:certKey=c").port, 1)

    def test_bad_descriptions(self) -> None:
        """Bad tls: descriptions say what is wrong."""
        for text in (
            "tls:5061",
            "tcp:5061:certKey=c",
            "tls:x:certKey=c",
            "tls:70000:certKey=c",
            "tls:1:certKey=c:bogus=1",
            "tls:1:2:certKey=c",
        ):
            with self.assertRaises(TLSConfigError, msg=text):
                parse_tls_description(text)

    def test_bad_settings(self) -> None:
        """Unknown modes, client certificates without a CA and unreadable files are refused."""
        server = self.files["server"]
        with self.assertRaises(TLSConfigError):
            server_options(server, client_cert="sometimes")
        with self.assertRaises(TLSConfigError):
            server_options(server, client_cert="required")
        with self.assertRaises(TLSConfigError):
            server_options(server + ".missing")
        with self.assertRaises(TLSConfigError):
            server_options(server, key_file=self.files["ca"])  # no key in it
        with self.assertRaises(TLSConfigError):
            server_options(server, self.files["alice"])  # key of another certificate

    def test_certificate_without_key(self) -> None:
        """A certificate file without its key and no privateKey= says how to fix it."""
        with self.assertRaises(TLSConfigError) as caught:
            server_options(self.files["ca"])
        self.assertIn("no private key in the certificate file", str(caught.exception))
        self.assertIn("privateKey=FILE", str(caught.exception))

    def test_sips_needs_tls(self) -> None:
        """A sips: Request-URI over UDP or TCP is answered 416; over TLS it is served."""
        router = CoreRouter(["example.com"], tag_factory=new_tag)
        router.add_handler(IdentityHandler())
        server = SIPServer(router, reactor=Clock())
        sent: List[bytes] = []

        class Sender:
            def send_bytes(self, data: bytes, host: str, port: int) -> None:
                sent.append(data)

            def local_address(self) -> Tuple[str, int]:
                return ("127.0.0.1", 5060)

        server.add_sender(None, Sender())
        for transport, branch in (("UDP", "z9hG4bK1"), ("TCP", "z9hG4bK2"), ("TLS", "z9hG4bK3")):
            server.datagram_received(
                request_bytes("MESSAGE", "sips:conf@example.com", branch=branch, call_id=branch),
                Peer(transport, "192.0.2.1", 5060),
            )
        codes = [parse_response(d).code for d in sent]
        self.assertEqual(codes, [416, 416, 200])
        self.assertIn(b"sips: over UDP", sent[0])


class HandshakeTests(TestCase):
    """
    Real handshakes on loopback.
    """

    def setUp(self) -> None:
        self.files = Files(self.mktemp())
        router = CoreRouter(["example.com"], tag_factory=new_tag, accept_ip_literals=True)
        self.handler = IdentityHandler()
        router.add_handler(self.handler)

        def authenticate(request: Request, now: float, tls: Any = None) -> Deferred[Any]:
            return succeed(tls)

        self.server = SIPServer(router, reactor=reactor, authenticate=authenticate)
        self.factory = SIPStreamFactory(self.server, reactor, client_identities=True)
        self.addCleanup(self.server.stop)

    @inlineCallbacks
    def listen(self, mode: str = "optional") -> Generator[Deferred[Any], Any, int]:
        endpoint = tls_endpoint(
            reactor,
            f"tls:0:interface=127.0.0.1:certKey={self.files['server']}",
            ca_file=self.files["ca"],
            client_cert=mode,
        )
        port = yield endpoint.listen(self.factory)
        self.addCleanup(self.closed)
        self.addCleanup(port.stopListening)
        return int(port.getHost().port)

    @inlineCallbacks
    def closed(self) -> Generator[Deferred[Any], Any, None]:
        """
        Wait until the server side of every connection has closed.
        """
        for _ in range(500):
            if self.factory.active == 0:
                return
            yield deferLater(reactor, 0.01, lambda: None)
        self.fail("connections left open")

    def send(self, port: int, data: bytes, **kwargs: Any) -> Deferred[Tuple[str, bytes]]:
        return deferToThread(exchange, port, data, self.files["ca"], **kwargs)

    @inlineCallbacks
    def refused(self, port: int, **kwargs: Any) -> Generator[Deferred[Any], Any, None]:
        """
        Assert that the request gets no SIP answer: the handshake fails.
        """
        try:
            _, data = yield self.send(port, options(method="MESSAGE"), **kwargs)
        except (ssl.SSLError, OSError):
            data = b""
        self.assertNotIn(b"SIP/2.0", data)
        self.assertEqual(self.handler.identities, [])

    @inlineCallbacks
    def test_tls12_and_13(self) -> Generator[Deferred[Any], Any, None]:
        """TLS 1.2 and 1.3 clients are served."""
        port = yield self.listen()
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            got, data = yield self.send(port, options(), version=version)
            self.assertEqual(got, version.name.replace("v1_", "v1."))
            self.assertEqual(parse_response(data).code, 200)

    @inlineCallbacks
    def test_tls11_refused(self) -> Generator[Deferred[Any], Any, None]:
        """A TLS 1.1 client is refused (the client can speak 1.1: see the control test)."""
        port = yield self.listen()
        yield self.refused(port, version=ssl.TLSVersion.TLSv1_1)

    def test_tls11_control(self) -> Deferred[Any]:
        """Control: the same TLS 1.1 client completes a handshake with a server that allows it."""
        from OpenSSL import SSL, crypto

        from conference.tls import load_certificates

        context = SSL.Context(SSL.TLS_METHOD)
        context.set_min_proto_version(SSL.TLS1_1_VERSION)
        context.set_cipher_list(b"DEFAULT:@SECLEVEL=0")
        context.use_certificate(
            crypto.X509.from_cryptography(load_certificates(self.files["server"])[0])
        )
        context.use_privatekey_file(self.files["server"])
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        self.addCleanup(listener.close)

        def serve() -> None:
            raw, _ = listener.accept()
            raw.setblocking(True)
            connection = SSL.Connection(context, raw)
            connection.set_accept_state()
            try:
                connection.do_handshake()
                connection.send(b"SIP/2.0 200 OK\r\n\r\n")
            finally:
                raw.close()

        served = deferToThread(serve)
        client = self.send(listener.getsockname()[1], b"hello", version=ssl.TLSVersion.TLSv1_1)

        def check(result: Tuple[str, bytes]) -> Deferred[Any]:
            self.assertEqual(result, ("TLSv1.1", b"SIP/2.0 200 OK\r\n\r\n"))
            return served

        return client.addCallback(check)

    @inlineCallbacks
    def test_client_identity(self) -> Generator[Deferred[Any], Any, None]:
        """A trusted client certificate authenticates its requests as its sip: identity."""
        port = yield self.listen()
        _, data = yield self.send(port, options(method="MESSAGE"), cert=self.files["alice"])
        self.assertEqual(parse_response(data).code, 200)
        [identity] = self.handler.identities
        assert identity is not None
        self.assertEqual((identity.aor, identity.mechanism), ("sip:alice@example.com", "tls"))

    @inlineCallbacks
    def test_no_certificate_optional(self) -> Generator[Deferred[Any], Any, None]:
        """Without a client certificate (optional mode) requests are served with no identity."""
        port = yield self.listen()
        _, data = yield self.send(port, options(method="MESSAGE"))
        self.assertEqual(parse_response(data).code, 200)
        self.assertEqual(self.handler.identities, [None])

    @inlineCallbacks
    def test_untrusted_required(self) -> Generator[Deferred[Any], Any, None]:
        """A client certificate from an untrusted CA is refused when certificates are required."""
        port = yield self.listen("required")
        yield self.refused(port, cert=self.files["mallory"])

    @inlineCallbacks
    def test_untrusted_optional(self) -> Generator[Deferred[Any], Any, None]:
        """An untrusted client certificate is refused even when certificates are optional."""
        port = yield self.listen("optional")
        yield self.refused(port, cert=self.files["mallory"])

    @inlineCallbacks
    def test_missing_required(self) -> Generator[Deferred[Any], Any, None]:
        """No client certificate at all is refused when certificates are required."""
        port = yield self.listen("required")
        yield self.refused(port)


class ServiceTLSTests(TestCase):
    """
    The service's tls: listener and TLS identities end to end.
    """

    @inlineCallbacks
    def test_register_with_certificate(self) -> Generator[Deferred[Any], Any, None]:
        """A REGISTER over TLS with Alice's certificate, no digest, registers Alice."""
        files = Files(self.mktemp())
        stores = memory_stores()
        config = ServerConfig(
            listen=[f"tls:0:interface=127.0.0.1:certKey={files['server']}"],
            domains=["example.com"],
            store="memory",
            tls_ca=files["ca"],
            tls_client_cert="optional",
        )
        service = ConferenceService(config, reactor=reactor, stores=stores)
        service.startService()
        yield service.ready
        self.addCleanup(service.stopService)
        [listening] = service.stream_ports
        port = int(getattr(listening.getHost(), "port", 0))
        register = request_bytes(
            "REGISTER",
            "sip:example.com",
            transport="TLS",
            via_host="127.0.0.1:5061",
            from_="<sip:alice@example.com>;tag=r1",
            to="<sip:alice@example.com>",
            headers=[("Contact", "<sip:alice@127.0.0.1:5099;transport=tls>"), ("Expires", "60")],
        )
        _, data = yield deferToThread(exchange, port, register, files["ca"], cert=files["alice"])
        self.assertEqual(parse_response(data).code, 200)
        bindings = yield stores.registrations.get_bindings("sip:alice@example.com", 0.0)
        self.assertEqual(len(bindings), 1)
        # Without the certificate the same REGISTER is not accepted.
        _, data = yield deferToThread(exchange, port, register, files["ca"])
        self.assertEqual(parse_response(data).code, 403)
        for _ in range(500):
            if service.stream_factory.active == 0:
                break
            yield deferLater(reactor, 0.01, lambda: None)
