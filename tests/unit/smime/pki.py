"""
A small PKI made with C{cryptography} for the S/MIME tests: a trusted CA
with an intermediate, users with C{sip:} and email identities, an expired
one, one from a CA nobody trusts, and the server itself; plus helpers to
run Debian's C{openssl} as the independent peer.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Dict, List, Optional, Sequence, Union

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from conference.smime.trust import TrustStore

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=timezone.utc)
START = datetime(2024, 1, 1, tzinfo=timezone.utc)
END = datetime(2040, 1, 1, tzinfo=timezone.utc)

Key = Union[rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey]


@dataclass(frozen=True)
class Identity:
    """
    A certificate, its key and the CAs between it and its anchor.
    """

    cert: x509.Certificate
    key: Key
    chain: Sequence[x509.Certificate] = ()

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self, password: Optional[bytes] = None) -> bytes:
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password)
            if password
            else serialization.NoEncryption()
        )
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_ca(common: str, issuer: Optional[Identity] = None, key: Optional[Key] = None) -> Identity:
    key = key or _rsa()
    signer = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(issuer.cert.subject if issuer else _name(common))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(START)
        .not_valid_after(END)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), False
        )
    )
    cert = builder.sign(signer, hashes.SHA256())
    return Identity(cert, key, ([issuer.cert, *issuer.chain] if issuer else []))


def make_user(
    issuer: Identity,
    uris: Sequence[str] = (),
    emails: Sequence[str] = (),
    *,
    key: Optional[Key] = None,
    start: datetime = START,
    end: datetime = END,
    eku: Optional[List[x509.ObjectIdentifier]] = None,
    common: str = "user",
) -> Identity:
    key = key or _rsa()
    names: List[x509.GeneralName] = [x509.UniformResourceIdentifier(u) for u in uris]
    names += [x509.RFC822Name(e) for e in emails]
    usages = [ExtendedKeyUsageOID.EMAIL_PROTECTION] if eku is None else eku
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, True, True, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), False
        )
    )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(issuer.key, hashes.SHA256())
    return Identity(cert, key, [issuer.cert, *issuer.chain])


#: DER of the keyUsage, extKeyUsage and basicConstraints extension OIDs.
KEY_USAGE_OID = bytes.fromhex("0603551d0f")
EXTENDED_KEY_USAGE_OID = bytes.fromhex("0603551d25")
BASIC_CONSTRAINTS_OID = bytes.fromhex("0603551d13")


def edited(cert: x509.Certificate, old: bytes, new: bytes) -> x509.Certificate:
    """
    C{cert} with the first C{old} in its DER replaced by C{new}, as a
    hostile peer may send it (its signature no longer holds).
    """
    der = cert.public_bytes(serialization.Encoding.DER)
    if old not in der:
        raise AssertionError(f"{old.hex()} is not in the certificate")
    return x509.load_der_x509_certificate(der.replace(old, new, 1))


def duplicate_extension(cert: x509.Certificate, renamed: bytes = KEY_USAGE_OID) -> x509.Certificate:
    """
    C{cert} with its C{renamed} extension renamed basicConstraints, which
    it already has: C{cryptography} raises L{x509.DuplicateExtension}.
    """
    return edited(cert, renamed, BASIC_CONSTRAINTS_OID)


def x400_address(cert: x509.Certificate, uri: str) -> x509.Certificate:
    """
    C{cert} with its subjectAltName URI C{uri} retagged as an x400Address,
    which C{cryptography} refuses with L{x509.UnsupportedGeneralNameType}.
    """
    raw = uri.encode()
    return edited(cert, bytes([0x86, len(raw)]) + raw, bytes([0xA3, len(raw)]) + raw)


class PKI:
    """
    Every certificate the tests use, made once per process.
    """

    def __init__(self) -> None:
        self.ca = make_ca("Test S/MIME CA")
        self.intermediate = make_ca(
            "Test EC Intermediate", self.ca, ec.generate_private_key(ec.SECP256R1())
        )
        self.alice = make_user(
            self.ca, ["sip:alice@example.com"], ["alice@example.com"], common="Alice"
        )
        self.bob = make_user(self.ca, ["sip:bob@example.org", "https://bob.example.org/"])
        self.carol = make_user(
            self.intermediate,
            ["sips:Carol@Example.COM;transport=tls"],
            key=ec.generate_private_key(ec.SECP256R1()),
        )
        self.expired = make_user(
            self.ca,
            ["sip:alice@example.com"],
            key=self.alice.key,
            end=datetime(2025, 1, 1, tzinfo=timezone.utc),
        )
        self.rogue_ca = make_ca("Rogue CA")
        self.mallory = make_user(self.rogue_ca, ["sip:alice@example.com"])
        self.server = make_user(self.ca, ["sip:conference@example.com"], ["conference@example.com"])
        self.trust = TrustStore((self.ca.cert,))


_PKI: Dict[str, PKI] = {}


def pki() -> PKI:
    """
    The shared PKI.
    """
    if "pki" not in _PKI:
        _PKI["pki"] = PKI()
    return _PKI["pki"]


def write(directory: str, name: str, data: bytes) -> str:
    """
    Write C{data} to C{directory}/C{name}; return the path.
    """
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def openssl(*args: str, data: bytes = b"") -> bytes:
    """
    Run C{openssl args}, feeding C{data}; its standard output.

    @raise AssertionError: with its standard error if it fails.
    """
    from tests.interop.harness import require_tool

    tool = require_tool("openssl")
    done = subprocess.run([tool, *args], input=data, capture_output=True, check=False)
    if done.returncode != 0:
        raise AssertionError(f"openssl {' '.join(args)} failed: {done.stderr.decode()[-800:]}")
    return done.stdout


def files(directory: str, who: Identity, name: str) -> List[str]:
    """
    Write C{who}'s certificate, key and chain as PEM files named after
    C{name}; return their paths (cert, key, chain).
    """
    chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in who.chain)
    return [
        write(directory, f"{name}.pem", who.cert_pem()),
        write(directory, f"{name}.key", who.key_pem()),
        write(directory, f"{name}-chain.pem", chain),
    ]
