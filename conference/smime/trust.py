# -*- test-case-name: tests.unit.smime.test_trust -*-
"""
Whether a signer's certificate chains to a CA the operator trusts
(C{--smime-ca}) and is valid now, with an S/MIME rather than a TLS policy:
the end-entity certificate may carry the emailProtection extended key
usage, or anyExtendedKeyUsage, or none at all; TLS-only (serverAuth or
clientAuth without emailProtection) certificates are refused.

With C{cryptography} 45 or later the chain is built and checked by
C{cryptography.x509.verification} with that extension policy; older
versions (PyPy runs C{cryptography} 43, whose client verifier insists on
clientAuth) use a small path builder of our own with the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from conference.smime.model import BAD_EXTENSION, SMIMERefused, utc

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "MIN_RSA_BITS",
    "TrustStore",
    "check_end_entity",
    "has_extension_policies",
]

DEFAULT_MAX_DEPTH = 8
#: The shortest RSA signer key accepted (RFC 8551 section 4.1: 2048).
MIN_RSA_BITS = 2048
_EXTENSION_POLICY: Any = getattr(verification, "ExtensionPolicy", None)
_CRITICALITY: Any = getattr(verification, "Criticality", None)
# Extensions the fallback path builder understands (a critical one it does
# not understand makes it refuse the certificate, RFC 5280 section 4.2).
_KNOWN = frozenset(
    {
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
    }
)


def has_extension_policies() -> bool:
    """
    Whether this C{cryptography} lets a custom extension policy drive
    C{x509.verification} (45 and later), so it is used for chains.
    """
    return _EXTENSION_POLICY is not None


def _extension(cert: x509.Certificate, kind: Any) -> Any:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None
    except BAD_EXTENSION as e:
        raise SMIMERefused(f"certificate has a malformed extension: {e}") from None


def _check_eku(eku: Optional[x509.ExtendedKeyUsage]) -> None:
    if eku is None:
        return
    usages = list(eku)
    if (
        ExtendedKeyUsageOID.EMAIL_PROTECTION not in usages
        and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in usages
    ):
        raise SMIMERefused("signer certificate is not for email protection (extended key usage)")


def _check_ku(ku: Optional[x509.KeyUsage]) -> None:
    if ku is not None and not (ku.digital_signature or ku.content_commitment):
        raise SMIMERefused("signer certificate key usage does not allow signing")


def check_end_entity(cert: x509.Certificate, now: Union[float, datetime]) -> None:
    """
    The checks on the signer's own certificate, each with its own reason:
    validity at C{now}, key usage (digitalSignature or nonRepudiation if
    present), extended key usage (emailProtection or any, if present), not
    a CA, an RSA key of at least L{MIN_RSA_BITS} bits.

    @raise SMIMERefused: naming the first that fails.
    """
    when = utc(now)
    if when < cert.not_valid_before_utc:
        start = f"{cert.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ}"
        raise SMIMERefused(f"signer certificate not yet valid (valid from {start})")
    if when > cert.not_valid_after_utc:
        raise SMIMERefused(
            f"signer certificate expired ({cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ})"
        )
    try:
        public = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        raise SMIMERefused("signer certificate has an unsupported public key") from None
    if isinstance(public, rsa.RSAPublicKey) and public.key_size < MIN_RSA_BITS:
        raise SMIMERefused(f"signer RSA key of {public.key_size} bits is too short")
    _check_ku(_extension(cert, x509.KeyUsage))
    _check_eku(_extension(cert, x509.ExtendedKeyUsage))
    bc = _extension(cert, x509.BasicConstraints)
    if bc is not None and bc.ca:
        raise SMIMERefused("signer certificate is a CA certificate")


def _policy_validator(check: Callable[[Any], None]) -> Callable[[Any, Any, Any], None]:
    def validate(policy: Any, cert: Any, value: Any) -> None:
        try:
            check(value)
        except SMIMERefused as e:
            raise ValueError(e.reason) from None

    return validate


@dataclass(frozen=True)
class TrustStore:
    """
    The CAs whose S/MIME certificates we believe.

    @ivar anchors: the trusted CA certificates.
    @ivar max_depth: the most intermediates between signer and anchor.
    """

    anchors: Tuple[x509.Certificate, ...]
    max_depth: int = DEFAULT_MAX_DEPTH

    @classmethod
    def from_pem(cls, data: bytes, max_depth: int = DEFAULT_MAX_DEPTH) -> TrustStore:
        """
        A store of every certificate in a PEM bundle.

        @raise ValueError: if it holds no certificate or a bad one.
        """
        if b"-----BEGIN CERTIFICATE-----" not in data:
            raise ValueError("no certificate in the PEM bundle")
        try:
            anchors = x509.load_pem_x509_certificates(data)
        except ValueError as e:
            raise ValueError(f"not a PEM certificate bundle ({e})") from None
        if not anchors:
            raise ValueError("no certificate in the PEM bundle")
        return cls(tuple(anchors), max_depth)

    def verify(
        self,
        leaf: x509.Certificate,
        intermediates: Sequence[x509.Certificate],
        now: Union[float, datetime],
    ) -> Tuple[x509.Certificate, ...]:
        """
        Check that C{leaf} is a valid S/MIME signer certificate at C{now}
        chaining to one of our anchors through C{intermediates}.

        @return: the chain, leaf first, anchor last.
        @raise SMIMERefused: expired or not yet valid, wrong usage,
            untrusted or broken chain.
        """
        check_end_entity(leaf, now)
        if has_extension_policies():
            return self._verify_library(leaf, intermediates, now)
        return self.verify_fallback(leaf, intermediates, now)

    def _verify_library(
        self,
        leaf: x509.Certificate,
        intermediates: Sequence[x509.Certificate],
        now: Union[float, datetime],
    ) -> Tuple[x509.Certificate, ...]:
        agnostic = _CRITICALITY.AGNOSTIC
        ee = (
            _EXTENSION_POLICY.permit_all()
            .may_be_present(x509.KeyUsage, agnostic, _policy_validator(_check_ku))
            .may_be_present(x509.ExtendedKeyUsage, agnostic, _policy_validator(_check_eku))
        )
        builder = (
            verification.PolicyBuilder()
            .store(verification.Store(list(self.anchors)))
            .time(utc(now))
            .max_chain_depth(self.max_depth)
            .extension_policies(ca_policy=_EXTENSION_POLICY.webpki_defaults_ca(), ee_policy=ee)
        )
        try:
            verified = builder.build_client_verifier().verify(leaf, list(intermediates))
        except verification.VerificationError as e:
            raise SMIMERefused(f"untrusted signer certificate: {_short(e)}") from None
        return tuple(verified.chain)

    def verify_fallback(
        self,
        leaf: x509.Certificate,
        intermediates: Sequence[x509.Certificate],
        now: Union[float, datetime],
    ) -> Tuple[x509.Certificate, ...]:
        """
        The path builder used where C{cryptography} has no extension
        policies: issuer by name and signature, each CA with
        basicConstraints CA and keyCertSign (if key usage is present),
        path length constraints, validity at C{now}, no unknown critical
        extension; the first path that reaches an anchor wins.
        """
        check_end_entity(leaf, now)
        when = utc(now)
        found = self._build([leaf], list(intermediates), when)
        if found is None:
            raise SMIMERefused("untrusted signer certificate: no valid chain to a trusted CA")
        return tuple(found)

    def _build(
        self, path: List[x509.Certificate], pool: List[x509.Certificate], when: datetime
    ) -> Optional[List[x509.Certificate]]:
        tip = path[-1]
        if len(path) > self.max_depth + 1:
            return None
        for candidate in [*self.anchors, *pool]:
            if candidate in path or candidate.subject != tip.issuer:
                continue
            if not _usable_ca(candidate, len(path) - 1, when):
                continue
            try:
                tip.verify_directly_issued_by(candidate)
            except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
                continue
            if candidate in self.anchors:
                return [*path, candidate]
            found = self._build([*path, candidate], pool, when)
            if found is not None:
                return found
        return None


def _usable_ca(cert: x509.Certificate, below: int, when: datetime) -> bool:
    if not cert.not_valid_before_utc <= when <= cert.not_valid_after_utc:
        return False
    try:
        extensions = list(cert.extensions)
    except BAD_EXTENSION:
        return False
    if any(e.critical and e.oid not in _KNOWN for e in extensions):
        return False
    bc = _extension_or_none(cert, x509.BasicConstraints)
    if bc is None or not bc.ca:
        return False
    if bc.path_length is not None and below > bc.path_length:
        return False
    ku = _extension_or_none(cert, x509.KeyUsage)
    return ku is None or bool(ku.key_cert_sign)


def _extension_or_none(cert: x509.Certificate, kind: Any) -> Any:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except (x509.ExtensionNotFound, *BAD_EXTENSION):
        return None


def _short(error: Exception) -> str:
    text = " ".join(str(error).split())
    return text[:160] or type(error).__name__
