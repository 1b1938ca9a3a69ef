# -*- test-case-name: tests.unit.smime.test_verify -*-
"""
What S/MIME processing reports: the signer with the identities its
certificate proves, the content it signed, and errors that carry the SIP
answer (400 for a malformed body, 403 for a signature we refuse, 493 for a
body we cannot decrypt) so the SIP layer never has to guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import FrozenSet, Optional, Tuple, Union

from cryptography import x509
from cryptography.x509.oid import NameOID

from conference.sip.errors import RemoteProtocolError
from conference.sip.headers import MediaType

__all__ = [
    "BAD_EXTENSION",
    "SMIMEError",
    "SMIMERefused",
    "SMIMEUndecipherable",
    "SignedContent",
    "SignerInfo",
    "Unwrapped",
    "certificate_identities",
    "utc",
]

#: What C{cryptography} raises when it decodes a certificate's extensions
#: (all at once, on first use of C{cert.extensions}) and one is bad: a
#: ValueError, or one of its own two exceptions that are not ValueErrors,
#: for an extension present twice and for an x400Address or ediPartyName
#: general name it cannot represent.
BAD_EXTENSION = (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType)


class SMIMEError(RemoteProtocolError):
    """
    An S/MIME body we cannot accept.  Raised as is (status 400) when the
    body is malformed: bad MIME framing, truncated or garbage CMS, missing
    parts.  The subclasses say why otherwise.
    """

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason, status)


class SMIMERefused(SMIMEError):
    """
    A well-formed signature that does not hold: bad signature, digest
    mismatch, untrusted chain, certificate expired or not yet valid, an
    algorithm we do not accept.  iSIP (section 3): a present but bad
    signature is always a refusal, answered 403 with a Warning quoting
    L{reason}.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason, 403)


class SMIMEUndecipherable(SMIMEError):
    """
    An encrypted body we cannot open: not addressed to this server's
    certificate, no key configured, a cipher we refuse (3DES) or do not
    know, or decryption failed.  RFC 3261 section 23.2: answered 493.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason, 493)


@dataclass(frozen=True)
class SignerInfo:
    """
    Who signed, as proven by a certificate chaining to a trusted CA.

    @ivar identities: the addresses the certificate vouches for:
        C{sip:}/C{sips:} URIs from subjectAltName URI entries, exactly as
        written there, and C{mailto:} addresses from rfc822Name entries
        (or, lacking any, the subject's emailAddress).  Compare with
        L{conference.calendar.itip.normalize_address} on both sides.
    @ivar certificate: the signer's certificate.
    @ivar chain: the validated chain, signer first, trust anchor last.
    @ivar signing_time: the signingTime attribute if the signer gave one
        (the signer's claim, not a proof).
    @ivar digest_algorithm: the digest used, e.g. C{"sha256"}.
    """

    identities: FrozenSet[str]
    certificate: x509.Certificate
    chain: Tuple[x509.Certificate, ...] = ()
    signing_time: Optional[datetime] = None
    digest_algorithm: str = "sha256"


@dataclass(frozen=True)
class SignedContent:
    """
    A verified signed MIME entity.

    @ivar content_type: the signed entity's Content-Type.
    @ivar body: its body, transfer encoding undone.
    @ivar signer: who signed it.
    @ivar entity: the exact bytes the signature covers (headers and body).
    """

    content_type: MediaType
    body: bytes
    signer: SignerInfo
    entity: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class Unwrapped:
    """
    A body with its S/MIME layers removed.

    @ivar content_type: the innermost entity's Content-Type.
    @ivar body: its body.
    @ivar signer: who signed it, or L{None} if no layer was signed.
    @ivar encrypted: whether some layer was encrypted to this server.
    """

    content_type: MediaType
    body: bytes
    signer: Optional[SignerInfo] = None
    encrypted: bool = False


def utc(now: Union[float, datetime]) -> datetime:
    """
    C{now} (POSIX seconds, or a datetime; naive means UTC) as an aware UTC
    datetime.
    """
    if isinstance(now, datetime):
        if now.tzinfo is None:
            return now.replace(tzinfo=timezone.utc)
        return now.astimezone(timezone.utc)
    return datetime.fromtimestamp(now, timezone.utc)


def certificate_identities(cert: x509.Certificate) -> FrozenSet[str]:
    """
    The calendar user addresses C{cert} vouches for: subjectAltName URIs
    with scheme C{sip} or C{sips} (kept as written), rfc822Names as
    C{mailto:}; the subject's emailAddress only when the certificate has
    no rfc822Name (RFC 8550 section 3).
    """
    out = set()
    emails = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    except BAD_EXTENSION as e:
        raise SMIMEError(f"S/MIME certificate has a bad subjectAltName: {e}") from None
    if san is not None:
        for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
            scheme = uri.partition(":")[0].lower()
            if scheme in ("sip", "sips") and ":" in uri:
                out.add(uri)
        emails = list(san.get_values_for_type(x509.RFC822Name))
    if not emails:
        for attr in cert.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS):
            if isinstance(attr.value, str):
                emails.append(attr.value)
    out.update(f"mailto:{email}" for email in emails if email)
    return frozenset(out)
