# -*- test-case-name: tests.unit.smime.test_envelope -*-
"""
S/MIME encryption (CMS EnvelopedData, RFC 5652 section 6, and
AuthEnvelopedData with AES-GCM, RFC 5083/5084) with RSA key transport to
this server's certificate.  C{cryptography} 43 (PyPy) cannot decrypt CMS,
so the structure is read with C{asn1crypto} and only the primitives come
from C{cryptography}.  Encrypting is here too, so peers and tests can
send the server confidential calendar objects.
"""

from __future__ import annotations

import os
from typing import Any, Optional, Sequence, Tuple

from asn1crypto import algos, cms, core  # type: ignore[import-untyped]
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import Encoding

from conference.smime.cms import load_content_info, malformed
from conference.smime.model import SMIMEError, SMIMEUndecipherable

__all__ = ["CIPHERS", "decrypt", "encrypt", "envelope"]

#: Content-encryption algorithms we decrypt (and may encrypt with), by
#: asn1crypto name: key length in bytes.
CIPHERS = {
    "aes128_cbc": 16,
    "aes192_cbc": 24,
    "aes256_cbc": 32,
    "aes128_gcm": 16,
    "aes192_gcm": 24,
    "aes256_gcm": 32,
}
_REFUSED = {
    "tripledes_3key": "3DES",
    "des": "DES",
    "rc2": "RC2",
    "rc5": "RC5",
}
_OAEP_HASHES = {
    "sha1": hashes.SHA1(),
    "sha224": hashes.SHA224(),
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}


class _GCMParameters(core.Sequence):  # type: ignore[misc]
    # RFC 5084 section 3.2.
    _fields = [
        ("aes_nonce", core.OctetString),
        ("aes_icvlen", core.Integer, {"default": 12}),
    ]


def _matches(rid: Any, cert: x509.Certificate) -> bool:
    parsed = asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER))
    if rid.name == "issuer_and_serial_number":
        wanted = rid.chosen
        return bool(
            parsed.serial_number == wanted["serial_number"].native
            and parsed.issuer == wanted["issuer"]
        )
    return bool(parsed.key_identifier == rid.chosen.native)


def _oaep(algorithm: Any) -> padding.OAEP:
    params = algorithm["parameters"]
    hash_name = params["hash_algorithm"]["algorithm"].native
    mgf = params["mask_gen_algorithm"]
    mgf_hash = mgf["parameters"]["algorithm"].native
    label = params["p_source_algorithm"]["parameters"].native or None
    if mgf["algorithm"].native != "mgf1" or hash_name not in _OAEP_HASHES:
        raise SMIMEUndecipherable(f"unsupported RSA-OAEP parameters ({hash_name})")
    if mgf_hash not in _OAEP_HASHES:
        raise SMIMEUndecipherable(f"unsupported RSA-OAEP MGF1 hash {mgf_hash}")
    return padding.OAEP(
        mgf=padding.MGF1(_OAEP_HASHES[mgf_hash]), algorithm=_OAEP_HASHES[hash_name], label=label
    )


def _content_key(recipient_infos: Any, key: rsa.RSAPrivateKey, cert: x509.Certificate) -> bytes:
    for choice in recipient_infos:
        if choice.name != "ktri":
            continue
        ktri = choice.chosen
        if not _matches(ktri["rid"], cert):
            continue
        algorithm = ktri["key_encryption_algorithm"]
        name = algorithm["algorithm"].native
        if name == "rsaes_pkcs1v15":
            pad: Any = padding.PKCS1v15()
        elif name == "rsaes_oaep":
            pad = _oaep(algorithm)
        else:
            raise SMIMEUndecipherable(f"unsupported key transport algorithm {name}")
        try:
            return key.decrypt(ktri["encrypted_key"].native, pad)
        except ValueError:
            # One message for every failure: no padding oracle.
            raise SMIMEUndecipherable("decryption failed") from None
    raise SMIMEUndecipherable("not encrypted for this server's certificate")


def _cipher(algorithm: Any) -> Tuple[str, int]:
    name = algorithm["algorithm"].native
    if name in _REFUSED:
        raise SMIMEUndecipherable(
            f"{_REFUSED[name]} content encryption refused: it is not secure, use AES"
        )
    if name not in CIPHERS:
        raise SMIMEUndecipherable(
            f"unsupported content encryption algorithm {algorithm['algorithm'].dotted}"
        )
    return str(name), CIPHERS[name]


def decrypt(
    info: Any,
    *,
    key: Optional[rsa.RSAPrivateKey],
    cert: Optional[x509.Certificate],
) -> bytes:
    """
    Decrypt CMS EnvelopedData (AES-CBC) or AuthEnvelopedData (AES-GCM)
    whose KeyTransRecipientInfo (RSA PKCS#1 v1.5 or RSA-OAEP) names
    C{cert}, with C{key}.

    @param info: the DER (or base64) of the ContentInfo, or one parsed by
        L{load_content_info}.
    @return: the decrypted content: for S/MIME a MIME entity.
    @raise SMIMEError: 400 if malformed.
    @raise SMIMEUndecipherable: 493 without a key, when not addressed to
        C{cert}, for 3DES or another cipher we refuse or do not know, or
        when decryption fails.
    """
    if isinstance(info, (bytes, bytearray)):
        info = load_content_info(bytes(info))
    if key is None or cert is None:
        raise SMIMEUndecipherable("encrypted body but no S/MIME key configured")
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SMIMEUndecipherable("the S/MIME key is not an RSA key")
    with malformed("EnvelopedData"):
        kind = info["content_type"].native
        data = info["content"]
        if kind == "enveloped_data":
            encrypted = data["encrypted_content_info"]
        elif kind == "authenticated_enveloped_data":
            encrypted = data["auth_encrypted_content_info"]
        else:
            raise SMIMEError(f"CMS content is {kind}, not enveloped-data")
        algorithm = encrypted["content_encryption_algorithm"]
        name, length = _cipher(algorithm)
        ciphertext = encrypted["encrypted_content"].native
        if not isinstance(ciphertext, bytes):
            raise SMIMEError("Malformed EnvelopedData: no encrypted content")
        cek = _content_key(data["recipient_infos"], key, cert)
        if len(cek) != length:
            raise SMIMEUndecipherable("decryption failed")
        if name.endswith("_gcm"):
            if kind != "authenticated_enveloped_data":
                raise SMIMEError("Malformed EnvelopedData: AES-GCM outside AuthEnvelopedData")
            params = _GCMParameters.load(algorithm["parameters"].dump())
            nonce = params["aes_nonce"].native
            tag = data["mac"].native
            attrs = data["auth_attrs"]
            aad = b"\x31" + attrs.dump()[1:] if attrs.native is not None else b""
            if len(tag) != params["aes_icvlen"].native or not 12 <= len(tag) <= 16:
                raise SMIMEError("Malformed AuthEnvelopedData: bad GCM tag length")
            return _gcm_open(cek, nonce, tag, aad, ciphertext)
        if kind != "enveloped_data":
            raise SMIMEError("Malformed AuthEnvelopedData: not an authenticated cipher")
        iv = algorithm["parameters"].native
        if not isinstance(iv, bytes) or len(iv) != 16:
            raise SMIMEError("Malformed EnvelopedData: AES-CBC IV is not 16 bytes")
        return _cbc_open(cek, iv, ciphertext)


def _cbc_open(cek: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    if not ciphertext or len(ciphertext) % 16:
        raise SMIMEUndecipherable("decryption failed")
    decryptor = Cipher(algorithms.AES(cek), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = sym_padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise SMIMEUndecipherable("decryption failed") from None


def _gcm_open(cek: bytes, nonce: bytes, tag: bytes, aad: bytes, ciphertext: bytes) -> bytes:
    from cryptography.exceptions import InvalidTag

    if not nonce:
        raise SMIMEError("Malformed AuthEnvelopedData: empty GCM nonce")
    decryptor = Cipher(algorithms.AES(cek), modes.GCM(nonce, tag, min_tag_length=12)).decryptor()
    decryptor.authenticate_additional_data(aad)
    try:
        return decryptor.update(ciphertext) + decryptor.finalize()
    except InvalidTag:
        raise SMIMEUndecipherable("decryption failed: authentication tag mismatch") from None


def _recipient(cert: x509.Certificate, cek: bytes, oaep: bool) -> Any:
    public = cert.public_key()
    if not isinstance(public, rsa.RSAPublicKey):
        raise ValueError("S/MIME encryption needs an RSA recipient certificate")
    parsed = asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER))
    if oaep:
        sha256 = {"algorithm": "sha256"}
        algorithm = {
            "algorithm": "rsaes_oaep",
            "parameters": {
                "hash_algorithm": sha256,
                "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": sha256},
            },
        }
        pad: Any = padding.OAEP(
            mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None
        )
    else:
        algorithm = {"algorithm": "rsaes_pkcs1v15"}
        pad = padding.PKCS1v15()
    return cms.RecipientInfo(
        name="ktri",
        value={
            "version": "v0",
            "rid": cms.RecipientIdentifier(
                name="issuer_and_serial_number",
                value={"issuer": parsed.issuer, "serial_number": parsed.serial_number},
            ),
            "key_encryption_algorithm": algorithm,
            "encrypted_key": public.encrypt(cek, pad),
        },
    )


def encrypt(
    content: bytes,
    recipients: Sequence[x509.Certificate],
    *,
    cipher: str = "aes256_cbc",
    oaep: bool = False,
) -> bytes:
    """
    CMS EnvelopedData (AES-CBC) or AuthEnvelopedData (AES-GCM) DER of
    C{content} for RSA C{recipients}.

    @param cipher: a key of L{CIPHERS}.
    @param oaep: RSA-OAEP with SHA-256 for the key transport; by default
        RSA PKCS#1 v1.5, which every S/MIME agent reads (RFC 8551 section
        2.3 MUST; C{openssl smime} reads nothing else).
    @raise ValueError: no recipient, an unknown cipher or a non-RSA key.
    """
    if not recipients:
        raise ValueError("S/MIME encryption needs at least one recipient")
    if cipher not in CIPHERS:
        raise ValueError(f"unknown content encryption algorithm {cipher!r}")
    cek = os.urandom(CIPHERS[cipher])
    infos = [_recipient(cert, cek, oaep) for cert in recipients]
    if cipher.endswith("_gcm"):
        nonce = os.urandom(12)
        sealer = Cipher(algorithms.AES(cek), modes.GCM(nonce)).encryptor()
        sealer.authenticate_additional_data(b"")
        ciphertext = sealer.update(content) + sealer.finalize()
        params = _GCMParameters({"aes_nonce": nonce, "aes_icvlen": 16})
        algorithm = algos.EncryptionAlgorithm(
            {"algorithm": cipher, "parameters": core.Any.load(params.dump())}
        )
        data = cms.AuthEnvelopedData(
            {
                "version": "v0",
                "recipient_infos": infos,
                "auth_encrypted_content_info": {
                    "content_type": "data",
                    "content_encryption_algorithm": algorithm,
                    "encrypted_content": ciphertext,
                },
                "mac": sealer.tag,
            }
        )
        kind = "authenticated_enveloped_data"
    else:
        iv = os.urandom(16)
        padder = sym_padding.PKCS7(128).padder()
        padded = padder.update(content) + padder.finalize()
        encryptor = Cipher(algorithms.AES(cek), modes.CBC(iv)).encryptor()
        ciphertext = encryptor.update(padded) + encryptor.finalize()
        data = cms.EnvelopedData(
            {
                "version": "v0",
                "recipient_infos": infos,
                "encrypted_content_info": {
                    "content_type": "data",
                    "content_encryption_algorithm": {"algorithm": cipher, "parameters": iv},
                    "encrypted_content": ciphertext,
                },
            }
        )
        kind = "enveloped_data"
    return bytes(cms.ContentInfo({"content_type": kind, "content": data}).dump())


def envelope(
    entity: bytes,
    recipients: Sequence[x509.Certificate],
    *,
    cipher: str = "aes256_cbc",
    oaep: bool = False,
) -> Tuple[str, bytes]:
    """
    Encrypt a MIME entity (header fields, blank line, body; for example
    from L{conference.smime.sign.entity_bytes}) for C{recipients}.

    @return: the Content-Type value (C{application/pkcs7-mime} with its
        smime-type) and the body (binary DER, as SIP allows).
    """
    der = encrypt(entity, recipients, cipher=cipher, oaep=oaep)
    kind = "authEnveloped-data" if cipher.endswith("_gcm") else "enveloped-data"
    return f'application/pkcs7-mime; smime-type={kind}; name="smime.p7m"', der
