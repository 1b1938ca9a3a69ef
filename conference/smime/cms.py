# -*- test-case-name: tests.unit.smime.test_cms -*-
"""
CMS SignedData (RFC 5652) checked with C{asn1crypto} for the structure and
C{cryptography} for the mathematics: C{cryptography} can make PKCS#7
signatures but not verify them, and shelling out to C{openssl} is not an
option in a server.  This module proves that the signer's key signed the
content; whether that key is trusted is L{conference.smime.trust}'s job.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from asn1crypto import cms  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.utils import CryptographyDeprecationWarning

from conference.smime.model import SMIMEError, SMIMERefused

__all__ = [
    "DIGESTS",
    "VerifiedSignature",
    "cms_bytes",
    "load_content_info",
    "malformed",
    "verify_signed_data",
]

#: Digest algorithms accepted in signatures, by asn1crypto name.  MD5 and
#: SHA-1 are refused (RFC 8551 section 2.1: SHA-1 must not be trusted).
DIGESTS: Dict[str, hashes.HashAlgorithm] = {
    "sha224": hashes.SHA224(),
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
    "sha3_256": hashes.SHA3_256(),
    "sha3_384": hashes.SHA3_384(),
    "sha3_512": hashes.SHA3_512(),
}
_WEAK_DIGESTS = frozenset({"md2", "md5", "sha1"})
_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
_ID_DATA = "1.2.840.113549.1.7.1"
_PEM_RE = re.compile(rb"-----BEGIN [A-Z0-9 ]+-----(.*?)-----END [A-Z0-9 ]+-----", re.S)
# Every exception asn1crypto raises on bad input while decoding lazily.
_DECODE_ERRORS = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    OverflowError,
    RecursionError,
    UnicodeError,
    # cryptography reports a certificate's unknown version with its own
    # exception, which is no ValueError.
    x509.InvalidVersion,
)


@contextmanager
def malformed(what: str) -> Iterator[None]:
    """
    Turn whatever a decoder raises on bad input inside the block into an
    L{SMIMEError} (400) naming C{what}; L{SMIMEError}s pass unchanged.
    """
    try:
        yield
    except SMIMEError:
        raise
    except _DECODE_ERRORS as e:
        detail = " ".join(str(e).split())[:120]
        raise SMIMEError(f"Malformed {what}: {detail or type(e).__name__}") from None


def cms_bytes(body: bytes) -> bytes:
    """
    The DER of a CMS object sent as DER, base64 (what most mailers and
    C{openssl smime} send) or PEM.

    @raise SMIMEError: 400 if it is none of these.
    """
    stripped = body.strip()
    if not stripped:
        raise SMIMEError("Malformed CMS: empty body")
    if stripped[:1] == b"\x30":
        return body
    m = _PEM_RE.search(stripped)
    if m is not None:
        stripped = m.group(1)
    try:
        der = base64.b64decode(b"".join(stripped.split()), validate=True)
    except (binascii.Error, ValueError):
        raise SMIMEError("Malformed CMS: neither DER nor base64") from None
    if der[:1] != b"\x30":
        raise SMIMEError("Malformed CMS: not an ASN.1 SEQUENCE")
    return der


def load_content_info(body: bytes) -> Any:
    """
    Parse a CMS ContentInfo from C{body} (see L{cms_bytes}).

    @return: the C{asn1crypto.cms.ContentInfo}.
    @raise SMIMEError: 400 for garbage, truncation or trailing bytes.
    """
    der = cms_bytes(body)
    with malformed("CMS ContentInfo"):
        info = cms.ContentInfo.load(der, strict=True)
        info["content_type"].native  # noqa: B018 (forces the parse)
        info["content"]
    return info


@dataclass(frozen=True)
class VerifiedSignature:
    """
    A SignedData whose signature holds for the signer's own key.

    @ivar content: the signed content (the detached candidate that matched,
        or the encapsulated content).
    @ivar content_type: eContentType, dotted.
    @ivar certificate: the signer's certificate.
    @ivar certificates: the other certificates the message carried
        (candidate intermediates).
    @ivar digest_algorithm: e.g. C{"sha256"}.
    @ivar signing_time: the signingTime attribute, if any.
    """

    content: bytes
    content_type: str
    certificate: x509.Certificate
    certificates: Tuple[x509.Certificate, ...]
    digest_algorithm: str
    signing_time: Optional[datetime] = None


def _certificates(signed: Any) -> List[Tuple[Any, x509.Certificate]]:
    out = []
    with malformed("SignedData certificates"):
        choices = signed["certificates"]
        for choice in choices if choices.native is not None else ():
            if choice.name != "certificate":
                continue
            with warnings.catch_warnings():
                # A peer's odd serial number must not flood our logs.
                warnings.simplefilter("ignore", CryptographyDeprecationWarning)
                cert = x509.load_der_x509_certificate(choice.chosen.dump())
            out.append((choice.chosen, cert))
    return out


def _signer_certificate(
    sid: Any, certs: Sequence[Tuple[Any, x509.Certificate]]
) -> Tuple[x509.Certificate, Tuple[x509.Certificate, ...]]:
    with malformed("SignerIdentifier"):
        for parsed, cert in certs:
            if sid.name == "issuer_and_serial_number":
                wanted = sid.chosen
                hit = (
                    parsed.serial_number == wanted["serial_number"].native
                    and parsed.issuer == wanted["issuer"]
                )
            else:
                hit = parsed.key_identifier == sid.chosen.native
            if hit:
                others = tuple(c for p, c in certs if c is not cert)
                return cert, others
    raise SMIMERefused("signer certificate is not included in the signature")


def _digest_name(algorithm: Any) -> str:
    with malformed("digest algorithm"):
        name = algorithm["algorithm"].native
        dotted = algorithm["algorithm"].dotted
    if name in _WEAK_DIGESTS:
        raise SMIMERefused(f"weak digest algorithm {name} refused")
    if name not in DIGESTS:
        raise SMIMERefused(f"unsupported digest algorithm {dotted}")
    return str(name)


def _digest(name: str, data: bytes) -> bytes:
    h = hashes.Hash(DIGESTS[name])
    h.update(data)
    return h.finalize()


def _one_value(attrs: Any, name: str) -> Any:
    values = [a["values"] for a in attrs if a["type"].native == name]
    if not values:
        return None
    if len(values) > 1 or len(values[0]) != 1:
        raise SMIMEError(f"Malformed signed attributes: {name} must have exactly one value")
    return values[0][0]


def _check_signature(
    cert: x509.Certificate, algorithm: Any, digest: str, signature: bytes, data: bytes
) -> None:
    with malformed("signature algorithm"):
        dotted = str(algorithm["algorithm"].dotted)
        name = algorithm["algorithm"].native
    if dotted == _EC_PUBLIC_KEY:
        kind, implied = "ecdsa", None
    else:
        try:
            kind = algorithm.signature_algo
        except ValueError:
            raise SMIMERefused(f"unsupported signature algorithm {dotted}") from None
        implied = None
        if kind != "rsassa_pss":
            try:
                implied = algorithm.hash_algo
            except (ValueError, KeyError):
                implied = None
    if implied is not None and implied != digest:
        raise SMIMERefused(f"signature algorithm {name} disagrees with digest algorithm {digest}")
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        raise SMIMERefused("signer certificate has an unsupported public key") from None
    try:
        if kind == "rsassa_pkcs1v15" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), DIGESTS[digest])
        elif kind == "rsassa_pss" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, _pss(algorithm, digest), DIGESTS[digest])
        elif kind == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(DIGESTS[digest]))
        elif kind == "ed25519" and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        else:
            raise SMIMERefused(
                f"unsupported signature algorithm {dotted} for a "
                f"{type(key).__name__.replace('PublicKey', '').strip('_')} key"
            )
    except InvalidSignature:
        raise SMIMERefused("signature does not verify with the signer's certificate") from None


def _pss(algorithm: Any, digest: str) -> padding.PSS:
    with malformed("RSASSA-PSS parameters"):
        params = algorithm["parameters"]
        hash_name = params["hash_algorithm"]["algorithm"].native
        mgf = params["mask_gen_algorithm"]
        mgf_name = mgf["algorithm"].native
        mgf_hash = mgf["parameters"]["algorithm"].native
        salt = int(params["salt_length"].native)
        trailer = params["trailer_field"].native
    if hash_name != digest or mgf_hash != digest:
        raise SMIMERefused(
            f"RSASSA-PSS hash {hash_name} (MGF1 {mgf_hash}) differs from digest algorithm {digest}"
        )
    if mgf_name != "mgf1" or trailer not in ("trailer_field_bc", 1):
        raise SMIMERefused("unsupported RSASSA-PSS parameters")
    if salt < 0 or salt > 1024:
        raise SMIMEError("Malformed RSASSA-PSS parameters: salt length out of range")
    return padding.PSS(mgf=padding.MGF1(DIGESTS[digest]), salt_length=salt)


def verify_signed_data(info: Any, detached: Sequence[bytes] = ()) -> VerifiedSignature:
    """
    Check the one SignerInfo of a SignedData ContentInfo against its
    certificate: the digest algorithm, the messageDigest and contentType
    attributes when signed attributes are present (the signature then
    covers their DER as a SET OF), else the signature over the content.

    @param info: a ContentInfo from L{load_content_info}.
    @param detached: for a detached signature, the candidate encodings of
        the content (the bytes as received, then a canonical CRLF form);
        the first that matches is the content.  Must be empty for an
        encapsulating SignedData.
    @raise SMIMEError: 400 for a malformed structure, none or several
        signers, content both detached and encapsulated or neither.
    @raise SMIMERefused: the signature does not hold, or uses an algorithm
        refused or unknown, or the certificate is missing.
    """
    with malformed("SignedData"):
        if info["content_type"].native != "signed_data":
            raise SMIMEError(f"CMS content is {info['content_type'].native}, not signed-data")
        signed = info["content"]
        encap = signed["encap_content_info"]
        content_type = str(encap["content_type"].dotted)
        encapsulated = encap["content"].native if encap["content"].native is not None else None
        signer_infos = list(signed["signer_infos"])
    if encapsulated is not None and detached:
        raise SMIMEError("Malformed SignedData: multipart/signed with encapsulated content")
    if encapsulated is None and not detached:
        raise SMIMEError("Malformed SignedData: detached signature without content")
    if encapsulated is not None and not isinstance(encapsulated, bytes):
        raise SMIMEError("Malformed SignedData: encapsulated content is not an OCTET STRING")
    candidates = [encapsulated] if encapsulated is not None else list(detached)
    if len(signer_infos) != 1:
        raise SMIMEError(f"SignedData has {len(signer_infos)} signers; exactly one is supported")
    certs = _certificates(signed)
    with malformed("SignerInfo"):
        si = signer_infos[0]
        sid = si["sid"]
        digest_algorithm = si["digest_algorithm"]
        signature = si["signature"].native
        sig_algorithm = si["signature_algorithm"]
        attrs = si["signed_attrs"]
        has_attrs = attrs.native is not None
    cert, others = _signer_certificate(sid, certs)
    digest = _digest_name(digest_algorithm)
    signing_time = None
    if has_attrs:
        with malformed("signed attributes"):
            claimed_type = _one_value(attrs, "content_type")
            claimed_digest = _one_value(attrs, "message_digest")
            when = _one_value(attrs, "signing_time")
            if when is not None:
                signing_time = when.native
            claimed_type = None if claimed_type is None else claimed_type.dotted
            claimed_digest = None if claimed_digest is None else claimed_digest.native
            signed_bytes = b"\x31" + attrs.dump()[1:]
        if claimed_type is None or claimed_digest is None:
            raise SMIMERefused("signed attributes lack contentType or messageDigest")
        if claimed_type != content_type:
            raise SMIMERefused("signed contentType attribute differs from the content type")
        content = next(
            (c for c in candidates if hmac.compare_digest(_digest(digest, c), claimed_digest)),
            None,
        )
        if content is None:
            raise SMIMERefused("message digest mismatch: content altered after signing")
        _check_signature(cert, sig_algorithm, digest, signature, signed_bytes)
    else:
        if content_type != _ID_DATA:
            raise SMIMERefused("signature without signed attributes over non-data content")
        content = None
        last: Optional[SMIMERefused] = None
        for candidate in candidates:
            try:
                _check_signature(cert, sig_algorithm, digest, signature, candidate)
            except SMIMERefused as e:
                last = e
                continue
            content = candidate
            break
        if content is None:
            assert last is not None
            raise last
    return VerifiedSignature(content, content_type, cert, others, digest, signing_time)
