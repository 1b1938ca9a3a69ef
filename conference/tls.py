# -*- test-case-name: tests.loopback.test_tls -*-
"""
TLS for the SIP listeners: hardened server contexts (TLS 1.2 or later,
Twisted's forward-secret cipher list), optional or required client
certificates verified against a CA bundle, and the identity a verified
client certificate proves, so it can authenticate a request like digest.

The C{tls:} listen form lives here so that every TLS listener the server
opens gets the same hardening, whatever Twisted's defaults are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL, crypto
from twisted.internet.endpoints import SSL4ServerEndpoint
from twisted.internet.ssl import CertificateOptions, TLSVersion

from conference.auth import SIPIdentity
from conference.sip.errors import RemoteProtocolError
from conference.sip.uri import SIPURI, parse_uri
from conference.smime.model import BAD_EXTENSION

__all__ = [
    "CLIENT_CERT_MODES",
    "MINIMUM_TLS_VERSION",
    "TLSConfigError",
    "TLSListen",
    "identity_from_certificate",
    "load_certificates",
    "parse_tls_description",
    "peer_identity",
    "server_options",
    "tls_endpoint",
]

#: C{--tls-client-cert} values: never ask for a client certificate; ask and
#: verify one if sent; refuse the handshake without a trusted one.
CLIENT_CERT_MODES = ("none", "optional", "required")

#: The oldest protocol version a listener accepts.
MINIMUM_TLS_VERSION = TLSVersion.TLSv1_2


class TLSConfigError(ValueError):
    """
    A TLS setting that cannot work (bad description, unreadable file, a
    client certificate mode without a CA); the message says which.
    """


# Loading -------------------------------------------------------------------


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise TLSConfigError(f"cannot read the {what} {path!r}: {e.strerror}") from None


def load_certificates(path: str, what: str = "certificate file") -> List[x509.Certificate]:
    """
    Every PEM certificate in C{path}, in order.

    @raise TLSConfigError: if the file cannot be read or holds none.
    """
    data = _read(path, what)
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise TLSConfigError(f"no PEM certificate in the {what} {path!r}") from None
    return certificates


def _load_key(path: str) -> crypto.PKey:
    data = _read(path, "private key file")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise TLSConfigError(f"no unencrypted PEM private key in {path!r}: {e}") from None
    return crypto.PKey.from_cryptography_key(key)  # type: ignore[arg-type]


def server_options(
    cert_file: str,
    key_file: Optional[str] = None,
    *,
    chain_file: Optional[str] = None,
    ca_file: Optional[str] = None,
    client_cert: str = "none",
) -> CertificateOptions:
    """
    A server TLS context factory: TLS 1.2 or later, Twisted's default
    cipher list (AEAD and forward-secret suites first, no RC4, 3DES or
    export suites), no session resumption (so every connection's client
    certificate is verified by its own handshake).

    @param cert_file: PEM with the server certificate first, optionally
        followed by its intermediates.
    @param key_file: PEM private key (default: C{cert_file}).
    @param chain_file: more intermediates, PEM.
    @param ca_file: PEM bundle of the CAs client certificates must chain
        to (C{--tls-ca}).
    @param client_cert: one of L{CLIENT_CERT_MODES}; C{optional} and
        C{required} need C{ca_file}.
    @raise TLSConfigError: for an unusable setting or file.
    """
    if client_cert not in CLIENT_CERT_MODES:
        raise TLSConfigError(
            f"client certificate mode must be one of {', '.join(CLIENT_CERT_MODES)}, "
            f"got {client_cert!r}"
        )
    verify = client_cert != "none"
    if verify and not ca_file:
        raise TLSConfigError(f"client certificates {client_cert} need a CA bundle (--tls-ca)")
    chain = load_certificates(cert_file)
    if chain_file:
        chain.extend(load_certificates(chain_file, "certificate chain file"))
    try:
        key = _load_key(key_file or cert_file)
    except TLSConfigError:
        if key_file:
            raise
        raise TLSConfigError(
            f"no private key in the certificate file {cert_file!r}: "
            "add it there, or name its file with privateKey=FILE"
        ) from None
    ca: Optional[List[crypto.X509]] = None
    if verify and ca_file:
        ca = [crypto.X509.from_cryptography(c) for c in load_certificates(ca_file, "CA file")]
    try:
        options = CertificateOptions(
            privateKey=key,
            certificate=crypto.X509.from_cryptography(chain[0]),
            extraCertChain=[crypto.X509.from_cryptography(c) for c in chain[1:]],
            verify=verify,
            caCerts=ca,
            requireCertificate=client_cert == "required",
            raiseMinimumTo=MINIMUM_TLS_VERSION,
        )
        options.getContext()  # checks that the key belongs to the certificate
    except (ValueError, crypto.Error, SSL.Error) as e:
        raise TLSConfigError(f"unusable TLS certificate or key: {e}") from None
    return options


# The tls: listen form ------------------------------------------------------


@dataclass(frozen=True)
class TLSListen:
    """
    A parsed C{tls:PORT:certKey=FILE[:privateKey=FILE][:extraCertChain=FILE]
    [:interface=ADDR][:backlog=N]} description.
    """

    port: int
    cert_file: str
    key_file: Optional[str] = None
    chain_file: Optional[str] = None
    interface: str = ""
    backlog: int = 50


_TLS_KEYS = {
    "port": "port",
    "certkey": "cert_file",
    "privatekey": "key_file",
    "extracertchain": "chain_file",
    "interface": "interface",
    "backlog": "backlog",
}


def _split(text: str) -> List[str]:
    """
    Split an endpoint description on colons not escaped with a backslash.
    """
    parts: List[str] = []
    current: List[str] = []
    chars = iter(text)
    for c in chars:
        if c == "\\":
            current.append(next(chars, ""))
        elif c == ":":
            parts.append("".join(current))
            current = []
        else:
            current.append(c)
    parts.append("".join(current))
    return parts


def parse_tls_description(text: str) -> TLSListen:
    """
    Read a C{tls:} listen description (colons in values escaped as in
    Twisted endpoint strings: C{interface=\\:\\:1}).

    @raise TLSConfigError: naming what is wrong.
    """
    parts = _split(text.strip())
    if len(parts) < 2 or parts[0].lower() != "tls":
        raise TLSConfigError(f"not a tls:PORT:certKey=FILE description: {text!r}")
    values: Dict[str, Any] = {}
    positional: List[str] = []
    for part in parts[1:]:
        name, sep, value = part.partition("=")
        if not sep:
            positional.append(part)
            continue
        field = _TLS_KEYS.get(name.lower())
        if field is None:
            known = "certKey, privateKey, extraCertChain, interface, backlog"
            raise TLSConfigError(f"tls: unknown parameter {name!r} (known: {known})")
        values[field] = value
    if "port" not in values and positional:
        values["port"] = positional.pop(0)
    if positional:
        raise TLSConfigError(f"tls: unexpected {':'.join(positional)!r}")
    try:
        port = int(values.pop("port", ""))
        backlog = int(values.pop("backlog", 50))
    except ValueError:
        raise TLSConfigError(f"tls: port and backlog must be numbers: {text!r}") from None
    if not 0 <= port <= 65535 or backlog < 1:
        raise TLSConfigError(f"tls: port out of range or bad backlog: {text!r}")
    if not values.get("cert_file"):
        raise TLSConfigError(f"tls: certKey=FILE is required: {text!r}")
    return TLSListen(port=port, backlog=backlog, **values)


def tls_endpoint(
    reactor: Any, description: str, *, ca_file: Optional[str] = None, client_cert: str = "none"
) -> SSL4ServerEndpoint:
    """
    The server endpoint of a C{tls:} description, with L{server_options}.

    @raise TLSConfigError: for a bad description or unusable files.
    """
    listen = parse_tls_description(description)
    options = server_options(
        listen.cert_file,
        listen.key_file,
        chain_file=listen.chain_file,
        ca_file=ca_file,
        client_cert=client_cert,
    )
    return SSL4ServerEndpoint(
        reactor, listen.port, options, backlog=listen.backlog, interface=listen.interface
    )


# Identities ----------------------------------------------------------------


def _sip_identity(text: str) -> Optional[Tuple[str, str]]:
    try:
        uri = parse_uri(text)
    except RemoteProtocolError:
        return None
    if not isinstance(uri, SIPURI) or not uri.username or not uri.host:
        return None
    return uri.username, uri.host.lower()


def identity_from_certificate(certificate: x509.Certificate) -> Optional[SIPIdentity]:
    """
    The identity a certificate names: its first subjectAltName URI with
    the C{sip:} or C{sips:} scheme and a user part, else its first
    rfc822Name (C{user@domain}).  The subject's common name is never used
    (RFC 5922 section 7.1 leaves it out for SIP identities).

    @return: an identity with mechanism C{"tls"}, or L{None} when the
        certificate names none, or its extensions cannot be decoded (the
        exceptions C{cryptography} raises for those are in
        L{BAD_EXTENSION}).
    """
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, *BAD_EXTENSION):
        return None
    for uri in names.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.lower().startswith(("sip:", "sips:")):
            found = _sip_identity(uri)
            if found is not None:
                return SIPIdentity(found[0], found[1], mechanism="tls")
    for email in names.get_values_for_type(x509.RFC822Name):
        user, at, domain = email.rpartition("@")
        if at and user and domain and "@" not in user:
            return SIPIdentity(user, domain.lower(), mechanism="tls")
    return None


def peer_identity(transport: Any) -> Optional[SIPIdentity]:
    """
    The identity of the verified client certificate on a TLS transport
    (L{twisted.protocols.tls.TLSMemoryBIOProtocol}), if any.

    Only call this for listeners whose context verifies client
    certificates (L{server_options} with C{client_cert} other than
    C{none}): OpenSSL then completes a handshake only with a certificate
    that chains to the configured CAs, so one that is present is trusted.
    """
    get = getattr(transport, "getPeerCertificate", None)
    if get is None:
        return None
    try:
        certificate = get()
    except Exception:
        return None
    if certificate is None:
        return None
    return identity_from_certificate(certificate.to_cryptography())
