# -*- test-case-name: tests.unit.smime.test_sign -*-
"""
Signing what the server sends (200 and 486 calendar parts, iTIP MESSAGEs)
as an RFC 1847 C{multipart/signed} with a detached CMS signature that
carries the server's certificate, so any S/MIME agent (C{openssl smime
-verify} included) can check it.  C{cryptography}'s PKCS7SignatureBuilder
does the signing over the exact CRLF bytes we put in the first part.
"""

from __future__ import annotations

import base64
import re
from typing import Dict, Optional, Sequence, Tuple, Type, Union

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from conference.sip.errors import LocalProtocolError
from conference.sip.multipart import BodyPart, Part, build_multipart
from conference.smime.envelope import envelope

__all__ = ["MICALG", "SigningKey", "entity_bytes", "sign_entity", "sign_part", "sign_then_encrypt"]

#: RFC 5751 section 3.4.3.2 micalg names, by hash name.
MICALG = {"sha224": "sha-224", "sha256": "sha-256", "sha384": "sha-384", "sha512": "sha-512"}
_HASHES: Dict[str, Type[hashes.HashAlgorithm]] = {
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}

#: The private keys the server can sign with.
SigningKey = Union[rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey]


def entity_bytes(content_type: str, body: bytes, headers: Sequence[Tuple[str, str]] = ()) -> bytes:
    """
    A MIME entity in canonical form: C{Content-Type} and C{headers}, each
    line ending in CRLF, a blank line, then C{body} unchanged (calendar
    bodies are sent binary: iSIP section 2.5 forbids transfer encodings).

    @raise LocalProtocolError: a header value holding a line break.
    """
    lines = [("Content-Type", content_type), *headers]
    out = []
    for name, value in lines:
        if any(c in name + value for c in "\r\n"):
            raise LocalProtocolError(f"S/MIME entity header {name} holds a line break")
        out.append(f"{name}: {value}\r\n")
    return "".join(out).encode("utf-8") + b"\r\n" + body


def sign_entity(
    entity: bytes,
    *,
    cert: x509.Certificate,
    key: SigningKey,
    intermediates: Sequence[x509.Certificate] = (),
    hash_name: str = "sha256",
    pss: bool = False,
    boundary: Optional[str] = None,
) -> Tuple[str, bytes]:
    """
    Sign the MIME entity C{entity} (its exact bytes) detached, as an
    RFC 1847 C{multipart/signed} whose second part is the base64 CMS
    SignedData carrying C{cert} and C{intermediates}.

    @param key: the private key of C{cert} (RSA, EC or Ed25519).
    @param hash_name: C{sha256} (default), C{sha384}, C{sha512} or C{sha224}.
    @param pss: RSASSA-PSS rather than PKCS#1 v1.5 for an RSA key (PKCS#1
        v1.5 is what every S/MIME agent reads).
    @return: the Content-Type value and the body, ready for a SIP message.
    @raise ValueError: an unknown hash, a key that does not fit.
    """
    if hash_name not in _HASHES:
        raise ValueError(f"unknown S/MIME digest {hash_name!r}")
    if not isinstance(
        key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)
    ):
        raise ValueError("S/MIME signing needs an RSA, EC or Ed25519 private key")
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else _HASHES[hash_name]()
    rsa_padding: Optional[padding.AsymmetricPadding] = None
    if isinstance(key, rsa.RSAPrivateKey):
        if pss:
            rsa_padding = padding.PSS(
                mgf=padding.MGF1(_HASHES[hash_name]()), salt_length=padding.PSS.DIGEST_LENGTH
            )
        else:
            rsa_padding = padding.PKCS1v15()
    builder = pkcs7.PKCS7SignatureBuilder().set_data(entity)
    if rsa_padding is not None:
        builder = builder.add_signer(cert, key, algorithm, rsa_padding=rsa_padding)  # type: ignore[arg-type]
    else:
        builder = builder.add_signer(cert, key, algorithm)  # type: ignore[arg-type]
    for extra in intermediates:
        builder = builder.add_certificate(extra)
    der = builder.sign(
        Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary]
    )
    encoded = base64.encodebytes(der).replace(b"\n", b"\r\n")
    signature = BodyPart(
        'application/pkcs7-signature; name="smime.p7s"',
        encoded,
        disposition='attachment; filename="smime.p7s"',
        headers=(("Content-Transfer-Encoding", "base64"),),
    )
    micalg = "sha-512" if isinstance(key, ed25519.Ed25519PrivateKey) else MICALG[hash_name]
    return _signed_multipart(entity, signature, micalg, boundary)


def _signed_multipart(
    entity: bytes, signature: BodyPart, micalg: str, boundary: Optional[str]
) -> Tuple[str, bytes]:
    first = Part((), b"", entity)  # serialised exactly as given
    return build_multipart(
        [first, signature],
        "signed",
        boundary=boundary,
        params=(("protocol", "application/pkcs7-signature"), ("micalg", micalg)),
    )


def sign_part(
    content_type: str,
    body: bytes,
    *,
    cert: x509.Certificate,
    key: SigningKey,
    intermediates: Sequence[x509.Certificate] = (),
    hash_name: str = "sha256",
    pss: bool = False,
    headers: Sequence[Tuple[str, str]] = (),
    canonical: Optional[bool] = None,
) -> Tuple[str, bytes]:
    """
    L{sign_entity} of the entity made of C{content_type}, C{headers} and
    C{body} (see L{entity_bytes}): the usual way to sign a calendar body.

    @param canonical: make bare LFs in C{body} CRLF first (RFC 8551
        section 3.1.1), so agents that canonicalize text before checking
        (C{openssl smime -verify} without C{-binary}) agree on the digest;
        by default for text/*, XML and calendar types, never for others.
    """
    if canonical is None:
        media = content_type.split(";", 1)[0].strip().lower()
        canonical = media.startswith("text/") or media.endswith(("+xml", "/xml"))
    if canonical:
        body = re.sub(rb"(?<!\r)\n", b"\r\n", body)
    return sign_entity(
        entity_bytes(content_type, body, headers),
        cert=cert,
        key=key,
        intermediates=intermediates,
        hash_name=hash_name,
        pss=pss,
    )


def sign_then_encrypt(
    content_type: str,
    body: bytes,
    *,
    cert: x509.Certificate,
    key: SigningKey,
    recipients: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate] = (),
    cipher: str = "aes256_cbc",
) -> Tuple[str, bytes]:
    """
    Sign as L{sign_part}, then encrypt the C{multipart/signed} entity for
    C{recipients} (RFC 8551 section 3.7: sign, then encrypt).
    """
    signed_type, signed_body = sign_part(
        content_type, body, cert=cert, key=key, intermediates=intermediates
    )
    return envelope(entity_bytes(signed_type, signed_body), recipients, cipher=cipher)
