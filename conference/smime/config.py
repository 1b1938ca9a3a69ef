# -*- test-case-name: tests.unit.smime.test_config -*-
"""
The operator's S/MIME settings (C{--smime-ca}, C{--smime-cert},
C{--smime-key}) read once at start-up into objects the sans-I/O code
takes, with errors that name the file and the fault so a misconfigured
server refuses to start instead of failing every signed request.  This is
the only module of L{conference.smime} that reads files.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Optional, Tuple, Union

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from conference.smime.model import utc
from conference.smime.sign import SigningKey, sign_part
from conference.smime.trust import TrustStore

__all__ = [
    "Credentials",
    "SMIMEConfigError",
    "load_credentials",
    "load_trust_store",
]


class SMIMEConfigError(Exception):
    """
    An S/MIME setting that cannot be used; the message names the file and
    the fault.
    """


@dataclass(frozen=True)
class Credentials:
    """
    The server's own S/MIME certificate and key: it signs with them and
    is the recipient of encrypted bodies.

    @ivar certificate: the server's certificate.
    @ivar key: its private key (RSA needed for decryption).
    @ivar intermediates: CA certificates sent along with signatures.
    """

    certificate: x509.Certificate
    key: SigningKey
    intermediates: Tuple[x509.Certificate, ...] = ()

    @classmethod
    def from_pem(
        cls, cert_pem: bytes, key_pem: bytes, password: Optional[bytes] = None
    ) -> Credentials:
        """
        Credentials from a PEM certificate (the first certificate; any
        more are intermediates) and a PEM private key.

        @raise SMIMEConfigError: bad PEM, wrong or missing password, an
            unsupported key type, or a key that does not match.
        """
        if b"-----BEGIN CERTIFICATE-----" not in cert_pem:
            raise SMIMEConfigError("no certificate in the PEM data")
        try:
            certs = x509.load_pem_x509_certificates(cert_pem)
        except ValueError as e:
            raise SMIMEConfigError(f"not a PEM certificate ({e})") from None
        if not certs:
            raise SMIMEConfigError("no certificate in the PEM data")
        try:
            key = serialization.load_pem_private_key(key_pem, password)
        except TypeError as e:
            raise SMIMEConfigError(f"key password problem: {e}") from None
        except ValueError as e:
            raise SMIMEConfigError(
                f"cannot load the private key (bad PEM or password): {e}"
            ) from None
        except Exception as e:  # UnsupportedAlgorithm
            raise SMIMEConfigError(f"unsupported private key: {e}") from None
        if not isinstance(
            key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)
        ):
            raise SMIMEConfigError(f"unsupported private key type {type(key).__name__}")
        public = serialization.PublicFormat.SubjectPublicKeyInfo
        der = serialization.Encoding.DER
        if key.public_key().public_bytes(der, public) != certs[0].public_key().public_bytes(
            der, public
        ):
            raise SMIMEConfigError("the private key does not match the certificate")
        return cls(certs[0], key, tuple(certs[1:]))

    @property
    def rsa_key(self) -> Optional[rsa.RSAPrivateKey]:
        """
        The key if it can decrypt (RSA), else L{None}.
        """
        return self.key if isinstance(self.key, rsa.RSAPrivateKey) else None

    def valid_at(self, now: Union[float, datetime]) -> bool:
        """
        Whether the certificate is within its validity dates at C{now}.
        """
        when = utc(now)
        return self.certificate.not_valid_before_utc <= when <= self.certificate.not_valid_after_utc

    def sign(self, content_type: str, body: bytes) -> Tuple[str, bytes]:
        """
        A C{multipart/signed} (Content-Type value, body) of this calendar
        part, signed with these credentials (see
        L{conference.smime.sign.sign_part}).
        """
        return sign_part(
            content_type,
            body,
            cert=self.certificate,
            key=self.key,
            intermediates=self.intermediates,
        )


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise SMIMEConfigError(f"{what} {path}: {e.strerror or e}") from None


def load_trust_store(path: str) -> TrustStore:
    """
    The trust store of the PEM CA bundle at C{path} (C{--smime-ca}).

    @raise SMIMEConfigError: unreadable, or not a PEM bundle.
    """
    try:
        return TrustStore.from_pem(_read(path, "--smime-ca"))
    except ValueError as e:
        raise SMIMEConfigError(f"--smime-ca {path}: {e}") from None


def load_credentials(
    cert_path: str, key_path: str, password: Optional[Union[str, bytes]] = None
) -> Credentials:
    """
    The server's credentials from C{--smime-cert} and C{--smime-key} (PEM;
    C{password} for an encrypted key).

    @raise SMIMEConfigError: naming the file and the fault.
    """
    cert_pem = _read(cert_path, "--smime-cert")
    key_pem = _read(key_path, "--smime-key")
    secret = password.encode("utf-8") if isinstance(password, str) else password
    try:
        return Credentials.from_pem(cert_pem, key_pem, secret)
    except SMIMEConfigError as e:
        raise SMIMEConfigError(f"--smime-cert {cert_path} / --smime-key {key_path}: {e}") from None
