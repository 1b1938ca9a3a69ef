# -*- test-case-name: tests.unit.smime.test_verify -*-
"""
S/MIME bodies as SIP carries them (RFC 3261 section 23, RFC 8551): a
detached RFC 1847 C{multipart/signed}, an opaque C{application/pkcs7-mime}
signed-data, or enveloped-data to decrypt, possibly nested
(sign-then-encrypt).  This module peels those layers and reports who
signed the innermost entity, which is who iSIP (section 3) says counts.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, List, Optional, Tuple, Union

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from conference.sip.errors import RemoteProtocolError
from conference.sip.headers import MediaType, parse_media_type
from conference.sip.multipart import Part, parse_multipart
from conference.smime.cms import load_content_info, malformed, verify_signed_data
from conference.smime.model import (
    SignedContent,
    SignerInfo,
    SMIMEError,
    Unwrapped,
    certificate_identities,
)
from conference.smime.trust import TrustStore

__all__ = [
    "MAX_LAYERS",
    "SIGNATURE_TYPES",
    "canonical_crlf",
    "is_smime",
    "open_smime",
    "parse_entity",
    "smime_kind",
    "verify_signed",
]

#: The most S/MIME layers one body may nest (sign, encrypt, sign again).
MAX_LAYERS = 4
#: The protocol / media types of a detached signature part.
SIGNATURE_TYPES = frozenset({"application/pkcs7-signature", "application/x-pkcs7-signature"})
_MIME_TYPES = frozenset({"application/pkcs7-mime", "application/x-pkcs7-mime"})
_BARE_LF = re.compile(rb"(?<!\r)\n")
_KINDS = {"signed_data": "signed-data", "enveloped_data": "enveloped-data"}


def _media(content_type: Union[str, MediaType]) -> MediaType:
    if isinstance(content_type, MediaType):
        return content_type
    try:
        return parse_media_type(content_type)
    except RemoteProtocolError as e:
        raise SMIMEError(e.reason) from None


def smime_kind(content_type: Union[str, MediaType]) -> Optional[str]:
    """
    C{"multipart-signed"}, C{"signed-data"}, C{"enveloped-data"},
    C{"authEnveloped-data"} or C{"pkcs7-mime"} (smime-type absent: look at
    the CMS) for an S/MIME Content-Type, L{None} for any other.
    """
    media = _media(content_type)
    if media.mime == "multipart/signed":
        return "multipart-signed"
    if media.mime in _MIME_TYPES:
        kind = media.params.get("smime-type", "").strip().lower()
        return kind or "pkcs7-mime"
    return None


def is_smime(content_type: Union[str, MediaType]) -> bool:
    """
    Whether C{content_type} is an S/MIME wrapper this module opens.
    """
    return smime_kind(content_type) is not None


def canonical_crlf(data: bytes) -> bytes:
    """
    C{data} with every bare LF made CRLF (RFC 8551 section 3.1.1 canonical
    form, which the signature covers when a mailer signed text).
    """
    return _BARE_LF.sub(b"\r\n", data)


def parse_entity(entity: bytes, default: str = "text/plain") -> Tuple[MediaType, bytes]:
    """
    Split a MIME entity (header fields, blank line, body) into its
    Content-Type and its body with any Content-Transfer-Encoding undone.

    @param default: the type of an entity without a Content-Type
        (RFC 2045: text/plain).
    @raise SMIMEError: 400 for bad header lines or encodings.
    """
    if entity.startswith((b"\r\n", b"\n")):
        head, body = b"", entity[2 if entity.startswith(b"\r\n") else 1 :]
    else:
        m = re.search(rb"\r?\n\r?\n", entity)
        if m is None:
            raise SMIMEError("Malformed S/MIME entity: no blank line after the header fields")
        head, body = entity[: m.start()], entity[m.end() :]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise SMIMEError("Malformed S/MIME entity: header is not UTF-8") from None
    headers: List[Tuple[str, str]] = []
    for line in re.split(r"\r?\n", text):
        if not line:
            continue
        if line[0] in " \t" and headers:
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip() or line[0] in " \t":
            raise SMIMEError(f"Malformed S/MIME entity: header line {line[:40]!r}")
        headers.append((name.strip().lower(), value.strip()))
    value = next((v for k, v in headers if k == "content-type"), default)
    media = _media(value)
    try:
        decoded = Part(tuple(headers), body, entity, media).decoded()
    except RemoteProtocolError as e:
        raise SMIMEError(e.reason.replace("multipart body", "S/MIME entity")) from None
    return media, decoded


def _signer(verified: Any, trust: TrustStore, now: Union[float, datetime]) -> SignerInfo:
    chain = trust.verify(verified.certificate, verified.certificates, now)
    return SignerInfo(
        identities=certificate_identities(verified.certificate),
        certificate=verified.certificate,
        chain=chain,
        signing_time=verified.signing_time,
        digest_algorithm=verified.digest_algorithm,
    )


def _verify_multipart(
    media: MediaType, body: bytes, trust: TrustStore, now: Union[float, datetime]
) -> SignedContent:
    protocol = media.params.get("protocol", "").strip().lower()
    if not protocol:
        raise SMIMEError("multipart/signed without a protocol parameter")
    if protocol not in SIGNATURE_TYPES:
        raise SMIMEError(f"multipart/signed protocol {protocol[:60]!r} is not S/MIME", 415)
    try:
        multipart = parse_multipart(body, media)
    except RemoteProtocolError as e:
        raise SMIMEError(e.reason, e.status) from None
    if len(multipart.parts) != 2:
        raise SMIMEError(f"multipart/signed has {len(multipart.parts)} parts, not 2")
    signed, signature = multipart.parts
    if signature.media_type.mime not in SIGNATURE_TYPES:
        raise SMIMEError(f"multipart/signed second part is {signature.media_type.mime}")
    try:
        der = signature.decoded()
    except RemoteProtocolError as e:
        raise SMIMEError(e.reason) from None
    info = load_content_info(der)
    candidates = [signed.raw]
    if _BARE_LF.search(signed.raw):
        candidates.append(canonical_crlf(signed.raw))
    verified = verify_signed_data(info, candidates)
    signer = _signer(verified, trust, now)
    content_type, content = parse_entity(verified.content)
    return SignedContent(content_type, content, signer, verified.content)


def _verify_opaque(info: Any, trust: TrustStore, now: Union[float, datetime]) -> SignedContent:
    verified = verify_signed_data(info)
    signer = _signer(verified, trust, now)
    content_type, content = parse_entity(verified.content)
    return SignedContent(content_type, content, signer, verified.content)


def _cms_kind(info: Any) -> str:
    with malformed("CMS ContentInfo"):
        name = str(info["content_type"].native)
    return _KINDS.get(name, name)


def verify_signed(
    content_type: Union[str, MediaType],
    body: bytes,
    *,
    trust: TrustStore,
    now: Union[float, datetime],
) -> SignedContent:
    """
    Verify a signed S/MIME body: RFC 1847 C{multipart/signed} with an
    C{application/pkcs7-signature} part (the signature covers the first
    part's exact bytes, headers included; a bare-LF form is also tried
    as canonical CRLF) or opaque C{application/pkcs7-mime} signed-data.

    The C{micalg} parameter is not trusted or checked: the SignerInfo's
    own digest algorithm is what the signature is checked with.

    @param now: POSIX seconds or a datetime, for certificate validity.
    @raise SMIMEError: 400 (415 for another protocol) when malformed.
    @raise SMIMERefused: 403 when the signature, the chain or the dates do
        not hold.
    """
    media = _media(content_type)
    kind = smime_kind(media)
    if kind == "multipart-signed":
        return _verify_multipart(media, body, trust, now)
    if kind not in ("signed-data", "pkcs7-mime"):
        raise SMIMEError(f"{media.mime} (smime-type {kind}) is not a signed S/MIME body", 415)
    info = load_content_info(body)
    actual = _cms_kind(info)
    if actual != "signed-data":
        raise SMIMEError(f"application/pkcs7-mime holds {actual}, not signed-data")
    return _verify_opaque(info, trust, now)


def open_smime(
    content_type: Union[str, MediaType],
    body: bytes,
    *,
    trust: TrustStore,
    now: Union[float, datetime],
    key: Optional[rsa.RSAPrivateKey] = None,
    cert: Optional[x509.Certificate] = None,
) -> Unwrapped:
    """
    Remove every S/MIME layer of a body: verify signatures (the innermost
    signer is reported: that is who signed the calendar object) and
    decrypt enveloped data addressed to C{cert} with C{key}.  A body that
    is not S/MIME comes back unchanged, unsigned and not encrypted.

    @raise SMIMEError: 400 malformed (or more than L{MAX_LAYERS} layers).
    @raise SMIMERefused: 403 for a signature that does not hold.
    @raise SMIMEUndecipherable: 493 for encrypted data we cannot open.
    """
    from conference.smime.envelope import decrypt

    media = _media(content_type)
    signer: Optional[SignerInfo] = None
    encrypted = False
    for _ in range(MAX_LAYERS):
        kind = smime_kind(media)
        if kind is None:
            return Unwrapped(media, body, signer, encrypted)
        if kind == "multipart-signed":
            signed = _verify_multipart(media, body, trust, now)
            media, body, signer = signed.content_type, signed.body, signed.signer
            continue
        info = load_content_info(body)
        actual = _cms_kind(info)
        if actual == "signed-data":
            signed = _verify_opaque(info, trust, now)
            media, body, signer = signed.content_type, signed.body, signed.signer
        elif actual in ("enveloped-data", "authenticated_enveloped_data"):
            media, body = parse_entity(decrypt(info, key=key, cert=cert))
            encrypted = True
        else:
            raise SMIMEError(f"unsupported S/MIME content {actual[:40]}", 415)
    if smime_kind(media) is not None:
        raise SMIMEError(f"S/MIME body nested more than {MAX_LAYERS} layers deep")
    return Unwrapped(media, body, signer, encrypted)
