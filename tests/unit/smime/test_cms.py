"""
Tests for L{conference.smime.cms}: CMS SignedData parsing and signature
checks, against signatures made by C{openssl cms} and crafted hostile ones.
"""

from __future__ import annotations

import base64
from typing import Any, Callable

from asn1crypto import cms  # type: ignore[import-untyped]
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from conference.smime.cms import cms_bytes, load_content_info, verify_signed_data
from conference.smime.model import SMIMEError, SMIMERefused
from tests.unit.smime.pki import Identity, files, openssl, pki, write

CONTENT = b"Content-Type: application/calendar+xml\r\n\r\n<icalendar/>\r\n"


def opaque(who: Identity, content: bytes = CONTENT, *options: pkcs7.PKCS7Options) -> bytes:
    """
    DER of an encapsulating SignedData of C{content} by C{who}.
    """
    builder = pkcs7.PKCS7SignatureBuilder().set_data(content)
    builder = builder.add_signer(who.cert, who.key, hashes.SHA256())
    return builder.sign(Encoding.DER, [pkcs7.PKCS7Options.Binary, *options])


def mutate(der: bytes, change: Callable[[Any], None]) -> bytes:
    """
    C{der} re-encoded after C{change} edited its parsed ContentInfo.
    """
    info = cms.ContentInfo.load(der)
    change(info)
    return bytes(info.dump(force=True))


def _signer_info(info: Any) -> Any:
    return info["content"]["signer_infos"][0]


class CMSBytesTests(SynchronousTestCase):
    """
    Tests for L{cms_bytes} and L{load_content_info}.
    """

    def test_forms(self) -> None:
        """DER, base64 with line breaks and PEM all give the same DER."""
        der = opaque(pki().alice)
        b64 = base64.encodebytes(der)
        pem = b"-----BEGIN PKCS7-----\n" + b64 + b"-----END PKCS7-----\n"
        self.assertEqual(cms_bytes(der), der)
        self.assertEqual(cms_bytes(b64), der)
        self.assertEqual(cms_bytes(pem), der)

    def test_garbage(self) -> None:
        """Empty, non-base64 and non-SEQUENCE bodies are 400 with a reason."""
        for body, why in [
            (b"", "empty"),
            (b"!!not base64!!", "neither DER nor base64"),
            (base64.b64encode(b"hello"), "not an ASN.1 SEQUENCE"),
        ]:
            e = self.assertRaises(SMIMEError, cms_bytes, body)
            self.assertEqual(e.status, 400)
            self.assertIn(why, e.reason)

    def test_truncated(self) -> None:
        """A truncated ContentInfo is a 400 SMIMEError, not a traceback."""
        der = opaque(pki().alice)
        for cut in (3, len(der) // 2, len(der) - 1):
            e = self.assertRaises(SMIMEError, load_content_info, der[:cut])
            self.assertEqual(type(e), SMIMEError)
            self.assertIn("Malformed CMS", e.reason)

    def test_trailing(self) -> None:
        """Bytes after the ContentInfo are refused."""
        e = self.assertRaises(SMIMEError, load_content_info, opaque(pki().alice) + b"\x00\x00")
        self.assertEqual(e.status, 400)

    def test_signer_info_digest_algorithm(self) -> None:
        """A SignerInfo digestAlgorithm that is no SEQUENCE is a 400, not a ValueError."""
        der = _DER()
        si = cms.ContentInfo.load(der)["content"]["signer_infos"][0]
        at = der.index(si.dump()) + si.dump().index(si["digest_algorithm"].dump())
        self.assertEqual(der[at], 0x30)
        # The three ways asn1crypto refuses the tag (a primitive, another
        # universal tag, another class), each once a distinct test_fuzz failure.
        for tag, why in [
            (0x00, "method should have been constructed"),
            (0x20, "tag should have been 16"),
            (0xF0, "class should have been universal"),
        ]:
            bad = der[:at] + bytes([tag]) + der[at + 1 :]
            e = self.assertRaises(SMIMEError, verify_signed_data, load_content_info(bad))
            self.assertEqual((type(e), e.status), (SMIMEError, 400))
            self.assertIn("Malformed SignerInfo", e.reason)
            self.assertIn(why, e.reason)

    @settings(max_examples=200, deadline=None)
    @given(st.data())
    def test_fuzz(self, data: st.DataObject) -> None:
        """Random corruption of a SignedData only ever raises SMIMEError."""
        der = bytearray(_DER())
        # Half the changes land in the SignerInfo, which holds far fewer
        # bytes than the certificate but most of what is checked.
        signer = len(der) - len(cms.ContentInfo.load(bytes(der))["content"]["signer_infos"].dump())
        for _ in range(data.draw(st.integers(1, 4))):
            at = data.draw(st.integers(0, len(der) - 1) | st.integers(signer, len(der) - 1))
            der[at] = data.draw(st.integers(0, 255))
        try:
            verify_signed_data(load_content_info(bytes(der)))
        except SMIMEError as e:
            self.assertIn(e.status, (400, 403))


_CACHE: dict[str, bytes] = {}


def _DER() -> bytes:
    if "der" not in _CACHE:
        _CACHE["der"] = opaque(pki().alice)
    return _CACHE["der"]


class VerifySignedDataTests(SynchronousTestCase):
    """
    Tests for L{verify_signed_data}.
    """

    def test_encapsulated(self) -> None:
        """An encapsulated signature gives the content and the signer."""
        result = verify_signed_data(load_content_info(opaque(pki().alice)))
        self.assertEqual(result.content, CONTENT)
        self.assertEqual(result.certificate, pki().alice.cert)
        self.assertEqual(result.digest_algorithm, "sha256")
        self.assertEqual(result.content_type, "1.2.840.113549.1.7.1")
        self.assertIsNotNone(result.signing_time)

    def test_detached_candidates(self) -> None:
        """The first detached candidate whose digest matches is the content."""
        der = opaque(pki().alice, CONTENT, pkcs7.PKCS7Options.DetachedSignature)
        result = verify_signed_data(load_content_info(der), [b"other", CONTENT])
        self.assertEqual(result.content, CONTENT)

    def test_detached_without_content(self) -> None:
        """A detached signature checked without content is malformed."""
        der = opaque(pki().alice, CONTENT, pkcs7.PKCS7Options.DetachedSignature)
        e = self.assertRaises(SMIMEError, verify_signed_data, load_content_info(der))
        self.assertIn("without content", e.reason)

    def test_both_contents(self) -> None:
        """Encapsulated content plus a detached one is malformed."""
        e = self.assertRaises(
            SMIMEError, verify_signed_data, load_content_info(opaque(pki().alice)), [CONTENT]
        )
        self.assertIn("encapsulated content", e.reason)

    def test_altered(self) -> None:
        """Content changed after signing is a digest mismatch refusal."""
        der = opaque(pki().alice, CONTENT, pkcs7.PKCS7Options.DetachedSignature)
        e = self.assertRaises(
            SMIMERefused, verify_signed_data, load_content_info(der), [CONTENT + b" "]
        )
        self.assertEqual(e.status, 403)
        self.assertEqual(e.reason, "message digest mismatch: content altered after signing")

    def test_bad_signature(self) -> None:
        """A flipped signature bit is refused."""

        def flip(info: Any) -> None:
            si = _signer_info(info)
            sig = bytearray(si["signature"].native)
            sig[10] ^= 1
            si["signature"] = bytes(sig)

        der = mutate(opaque(pki().alice), flip)
        e = self.assertRaises(SMIMERefused, verify_signed_data, load_content_info(der))
        self.assertEqual(e.reason, "signature does not verify with the signer's certificate")

    def test_wrong_digest_claim(self) -> None:
        """A SignerInfo claiming SHA-384 for a SHA-256 digest is refused."""

        def claim(info: Any) -> None:
            _signer_info(info)["digest_algorithm"] = {"algorithm": "sha384"}

        der = mutate(opaque(pki().alice), claim)
        e = self.assertRaises(SMIMERefused, verify_signed_data, load_content_info(der))
        self.assertIn("digest mismatch", e.reason)

    def test_signature_digest_disagree(self) -> None:
        """sha512WithRSA over a SHA-256 digest is refused as inconsistent."""

        def claim(info: Any) -> None:
            _signer_info(info)["signature_algorithm"] = {"algorithm": "sha512_rsa"}

        der = mutate(opaque(pki().alice), claim)
        e = self.assertRaises(SMIMERefused, verify_signed_data, load_content_info(der))
        self.assertIn("disagrees with digest algorithm sha256", e.reason)

    def test_weak_digest(self) -> None:
        """A SHA-1 signature from openssl is refused as weak."""
        d = self.mktemp()
        cert, key, _ = files(d, pki().alice, "alice")
        content = write(d, "content", CONTENT)
        der = openssl(
            "cms", "-sign", "-nodetach", "-binary", "-md", "sha1", "-outform", "DER",
            "-in", content, "-signer", cert, "-inkey", key,
        )  # fmt: skip
        e = self.assertRaises(SMIMERefused, verify_signed_data, load_content_info(der))
        self.assertEqual(e.reason, "weak digest algorithm sha1 refused")

    def test_openssl_variants(self) -> None:
        """openssl cms signatures: PSS, SHA-384, ECDSA, no attributes, SKI ids."""
        d = self.mktemp()
        alice = files(d, pki().alice, "alice")
        carol = files(d, pki().carol, "carol")
        content = write(d, "content", CONTENT)
        cases = [
            (alice, ["-keyopt", "rsa_padding_mode:pss", "-md", "sha384"], "sha384"),
            (alice, ["-noattr"], "sha256"),
            (alice, ["-keyid", "-md", "sha512"], "sha512"),
            (carol, ["-md", "sha256"], "sha256"),
            (carol, ["-noattr", "-md", "sha384"], "sha384"),
        ]
        for (cert, key, _), extra, digest in cases:
            der = openssl(
                "cms", "-sign", "-nodetach", "-binary", "-outform", "DER", "-in", content,
                "-signer", cert, "-inkey", key, *extra,
            )  # fmt: skip
            result = verify_signed_data(load_content_info(der))
            self.assertEqual((result.content, result.digest_algorithm), (CONTENT, digest), extra)

    def test_unknown_signature_algorithm(self) -> None:
        """An unknown signature algorithm OID is refused as unsupported."""

        def claim(info: Any) -> None:
            _signer_info(info)["signature_algorithm"] = {"algorithm": "1.2.3.4.5"}

        der = mutate(opaque(pki().alice), claim)
        e = self.assertRaises(SMIMERefused, verify_signed_data, load_content_info(der))
        self.assertEqual(e.reason, "unsupported signature algorithm 1.2.3.4.5")

    def test_no_attributes_altered(self) -> None:
        """Without signed attributes, altered content fails the signature."""
        der = opaque(
            pki().alice,
            CONTENT,
            pkcs7.PKCS7Options.DetachedSignature,
            pkcs7.PKCS7Options.NoAttributes,
        )
        e = self.assertRaises(
            SMIMERefused, verify_signed_data, load_content_info(der), [CONTENT + b"x"]
        )
        self.assertIn("signature does not verify", e.reason)

    def test_no_certificate(self) -> None:
        """A signature without the signer's certificate is refused."""
        der = opaque(pki().alice, CONTENT, pkcs7.PKCS7Options.NoCerts)
        e = self.assertRaises(SMIMERefused, verify_signed_data, load_content_info(der))
        self.assertEqual(e.reason, "signer certificate is not included in the signature")

    def test_two_signers(self) -> None:
        """More than one SignerInfo is malformed for us (400)."""
        builder = pkcs7.PKCS7SignatureBuilder().set_data(CONTENT)
        builder = builder.add_signer(pki().alice.cert, pki().alice.key, hashes.SHA256())
        builder = builder.add_signer(pki().bob.cert, pki().bob.key, hashes.SHA256())
        der = builder.sign(Encoding.DER, [pkcs7.PKCS7Options.Binary])
        e = self.assertRaises(SMIMEError, verify_signed_data, load_content_info(der))
        self.assertEqual(e.status, 400)
        self.assertIn("2 signers", e.reason)

    def test_not_signed_data(self) -> None:
        """An EnvelopedData given as SignedData is malformed."""
        from conference.smime.envelope import encrypt

        der = encrypt(CONTENT, [pki().server.cert])
        e = self.assertRaises(SMIMEError, verify_signed_data, load_content_info(der))
        self.assertIn("not signed-data", e.reason)

    def test_content_type_attribute(self) -> None:
        """A signed contentType differing from eContentType is refused."""

        def retype(info: Any) -> None:
            info["content"]["encap_content_info"]["content_type"] = "1.2.3.4"

        der = mutate(opaque(pki().alice), retype)
        e = self.assertRaises(SMIMERefused, verify_signed_data, load_content_info(der))
        self.assertIn("contentType", e.reason)
