"""
Tests for L{conference.smime.envelope}: decrypting what C{openssl smime
-encrypt} and C{openssl cms -encrypt} make, our encryption decrypted by
C{openssl}, and the refusals (3DES, wrong recipient, no key, tampering).
"""

from __future__ import annotations

from typing import Any, Sequence

from asn1crypto import cms  # type: ignore[import-untyped]
from cryptography.hazmat.primitives.asymmetric import rsa
from twisted.trial.unittest import SynchronousTestCase

from conference.smime.envelope import decrypt, encrypt, envelope
from conference.smime.model import SMIMEError, SMIMEUndecipherable
from conference.smime.sign import sign_then_encrypt
from conference.smime.verify import open_smime, parse_entity
from tests.unit.smime.pki import NOW, files, openssl, pki, write

XML = b"<icalendar/>\r\n"
ENTITY = b"Content-Type: application/calendar+xml\r\n\r\n" + XML


class OpenSSLEncryptedTests(SynchronousTestCase):
    """
    Decrypting bodies C{openssl} encrypted to the server.
    """

    def setUp(self) -> None:
        self.dir = self.mktemp()
        self.server = files(self.dir, pki().server, "server")
        self.entity = write(self.dir, "entity", ENTITY)

    def encrypted(self, tool: str, *extra: str, recip: Sequence[str] = ()) -> Any:
        if tool == "cms":
            out = openssl(
                "cms", "-encrypt", "-in", self.entity, *extra, "-recip", self.server[0], *recip
            )
        else:
            out = openssl(tool, "-encrypt", "-in", self.entity, *extra, self.server[0])
        return parse_entity(out)

    def open(self, media: Any, body: bytes) -> Any:
        key = pki().server.key
        assert isinstance(key, rsa.RSAPrivateKey)
        return open_smime(media, body, trust=pki().trust, now=NOW, key=key, cert=pki().server.cert)

    def test_smime_aes(self) -> None:
        """openssl smime -encrypt with AES-256 and AES-128 (PKCS#1 v1.5) opens."""
        for cipher in ("-aes256", "-aes128"):
            media, body = self.encrypted("smime", cipher)
            self.assertEqual(media.params["smime-type"], "enveloped-data")
            result = self.open(media, body)
            self.assertEqual(
                (result.content_type.mime, result.body), ("application/calendar+xml", XML)
            )
            self.assertTrue(result.encrypted)
            self.assertIsNone(result.signer)

    def test_cms_oaep_and_ski(self) -> None:
        """openssl cms with RSA-OAEP (SHA-256) and a subjectKeyIdentifier recipient opens."""
        media, body = self.encrypted(
            "cms", "-aes-192-cbc", "-keyid",
            recip=["-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256"],
        )  # fmt: skip
        self.assertEqual(self.open(media, body).body, XML)

    def test_cms_gcm(self) -> None:
        """openssl cms AES-256-GCM (AuthEnvelopedData) opens."""
        media, body = self.encrypted("cms", "-aes-256-gcm")
        self.assertEqual(self.open(media, body).body, XML)

    def test_3des_refused(self) -> None:
        """3DES content encryption is refused 493 with a clear reason."""
        media, body = self.encrypted("smime", "-des3")
        e = self.assertRaises(SMIMEUndecipherable, self.open, media, body)
        self.assertEqual(e.status, 493)
        self.assertEqual(e.reason, "3DES content encryption refused: it is not secure, use AES")

    def test_not_for_us(self) -> None:
        """A body encrypted to Bob is undecipherable here."""
        bob = files(self.dir, pki().bob, "bob")
        media, body = parse_entity(
            openssl("smime", "-encrypt", "-aes256", "-in", self.entity, bob[0])
        )
        e = self.assertRaises(SMIMEUndecipherable, self.open, media, body)
        self.assertEqual(e.reason, "not encrypted for this server's certificate")

    def test_no_key(self) -> None:
        """Without configured credentials, encrypted bodies are 493."""
        media, body = self.encrypted("smime", "-aes256")
        e = self.assertRaises(
            SMIMEUndecipherable, open_smime, media, body, trust=pki().trust, now=NOW
        )
        self.assertEqual(e.reason, "encrypted body but no S/MIME key configured")

    def test_signed_then_encrypted(self) -> None:
        """openssl sign then encrypt: open_smime reports Alice and encryption."""
        alice = files(self.dir, pki().alice, "alice")
        signed = openssl(
            "smime", "-sign", "-in", self.entity, "-signer", alice[0], "-inkey", alice[1]
        )
        signed_file = write(self.dir, "signed", signed)
        out = openssl("smime", "-encrypt", "-aes256", "-in", signed_file, self.server[0])
        result = self.open(*parse_entity(out))
        self.assertTrue(result.encrypted)
        self.assertEqual(result.body, XML)
        self.assertEqual(
            result.signer.identities, {"sip:alice@example.com", "mailto:alice@example.com"}
        )


class OurEncryptionTests(SynchronousTestCase):
    """
    L{encrypt}/L{envelope} read by C{openssl} and by L{decrypt}.
    """

    def test_openssl_decrypts(self) -> None:
        """openssl cms -decrypt opens our CBC (OAEP and v1.5) and GCM envelopes."""
        d = self.mktemp()
        cert, key, _ = files(d, pki().server, "server")
        for cipher, oaep in (("aes256_cbc", True), ("aes128_cbc", False), ("aes256_gcm", True)):
            der = encrypt(ENTITY, [pki().bob.cert, pki().server.cert], cipher=cipher, oaep=oaep)
            path = write(d, "enc.der", der)
            out = openssl(
                "cms", "-decrypt", "-inform", "DER", "-in", path, "-recip", cert, "-inkey", key
            )
            self.assertEqual(out, ENTITY, cipher)

    def test_openssl_smime_decrypts(self) -> None:
        """openssl smime (PKCS#7, no OAEP) opens our default envelope as base64 S/MIME."""
        import base64

        d = self.mktemp()
        cert, key, _ = files(d, pki().server, "server")
        content_type, der = envelope(ENTITY, [pki().server.cert])
        message = (
            f"MIME-Version: 1.0\r\nContent-Type: {content_type}\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n"
        ).encode() + base64.encodebytes(der)
        path = write(d, "msg", message)
        out = openssl("smime", "-decrypt", "-in", path, "-recip", cert, "-inkey", key)
        self.assertEqual(out, ENTITY)

    def test_round_trip(self) -> None:
        """decrypt opens encrypt for each cipher and key transport."""
        server = pki().server
        for cipher in ("aes128_cbc", "aes192_cbc", "aes256_cbc", "aes128_gcm", "aes256_gcm"):
            for oaep in (True, False):
                der = encrypt(ENTITY, [server.cert], cipher=cipher, oaep=oaep)
                self.assertEqual(decrypt(der, key=server.key, cert=server.cert), ENTITY)  # type: ignore[arg-type]

    def test_sign_then_encrypt(self) -> None:
        """Our sign-then-encrypt opens to the content, Alice and encrypted."""
        alice = pki().alice
        content_type, body = sign_then_encrypt(
            "application/calendar+xml", XML, cert=alice.cert, key=alice.key,
            recipients=[pki().server.cert], cipher="aes256_gcm",
        )  # fmt: skip
        self.assertIn("authEnveloped-data", content_type)
        result = open_smime(
            content_type, body, trust=pki().trust, now=NOW,
            key=pki().server.key, cert=pki().server.cert,  # type: ignore[arg-type]
        )  # fmt: skip
        assert result.signer is not None
        self.assertEqual((result.body, result.encrypted), (XML, True))
        self.assertIn("sip:alice@example.com", result.signer.identities)

    def test_tampered(self) -> None:
        """A changed ciphertext fails: GCM by its tag, CBC by padding or content."""
        server = pki().server
        der = encrypt(ENTITY, [server.cert], cipher="aes256_gcm")
        info = cms.ContentInfo.load(der)
        eci = info["content"]["auth_encrypted_content_info"]
        data = bytearray(eci["encrypted_content"].native)
        data[0] ^= 1
        eci["encrypted_content"] = bytes(data)
        e = self.assertRaises(
            SMIMEUndecipherable, decrypt, info.dump(force=True), key=server.key, cert=server.cert
        )
        self.assertIn("decryption failed", e.reason)

    def test_malformed(self) -> None:
        """Garbage and truncated envelopes are 400, never a traceback."""
        server = pki().server
        der = encrypt(ENTITY, [server.cert])
        for body in (der[:40], der[: len(der) - 5], b"\x30\x03\x02\x01\x01"):
            e = self.assertRaises(SMIMEError, decrypt, body, key=server.key, cert=server.cert)
            self.assertEqual(e.status, 400)

    def test_wrong_key(self) -> None:
        """Right certificate name, wrong private key: one opaque failure."""
        server = pki().server
        der = encrypt(ENTITY, [server.cert], oaep=False)
        e = self.assertRaises(
            SMIMEUndecipherable, decrypt, der, key=pki().bob.key, cert=server.cert
        )
        self.assertEqual(e.reason, "decryption failed")

    def test_encrypt_arguments(self) -> None:
        """No recipient, an unknown cipher or an EC recipient raise ValueError."""
        self.assertRaises(ValueError, encrypt, ENTITY, [])
        self.assertRaises(ValueError, encrypt, ENTITY, [pki().server.cert], cipher="des")
        self.assertRaises(ValueError, encrypt, ENTITY, [pki().carol.cert])
