"""
Tests for L{conference.smime.verify} and L{conference.smime.model}: signed
S/MIME bodies as SIP carries them, made by C{openssl smime} and by us,
and the hostile ones iSIP must refuse.
"""

from __future__ import annotations

import base64
from typing import Tuple

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from conference.sip.headers import MediaType
from conference.smime.model import SMIMEError, SMIMERefused, certificate_identities, utc
from conference.smime.sign import sign_part
from conference.smime.verify import (
    canonical_crlf,
    is_smime,
    open_smime,
    parse_entity,
    smime_kind,
    verify_signed,
)
from tests.unit.smime.pki import (
    BASIC_CONSTRAINTS_OID,
    EXTENDED_KEY_USAGE_OID,
    NOW,
    Identity,
    duplicate_extension,
    files,
    make_user,
    openssl,
    pki,
    write,
    x400_address,
)

XML = b'<?xml version="1.0"?>\r\n<icalendar xmlns="urn:ietf:params:xml:ns:icalendar-2.0"/>\r\n'
ENTITY = b'Content-Type: application/calendar+xml; method="REQUEST"\r\n\r\n' + XML


def signed(who: Identity) -> Tuple[str, bytes]:
    """
    Our multipart/signed of the calendar body by C{who}.
    """
    return sign_part(
        'application/calendar+xml; method="REQUEST"', XML, cert=who.cert, key=who.key,
        intermediates=who.chain[:-1],
    )  # fmt: skip


class EntityTests(SynchronousTestCase):
    """
    Tests for L{parse_entity}, L{canonical_crlf} and the type predicates.
    """

    def test_entity(self) -> None:
        """Headers are parsed, folded lines joined, the body kept exactly."""
        media, body = parse_entity(
            b"Content-Type: application/calendar+xml;\r\n method=REPLY\r\nX-A: b\r\n\r\nbody\n"
        )
        self.assertEqual(media, MediaType("application", "calendar+xml", {"method": "REPLY"}))
        self.assertEqual(body, b"body\n")

    def test_defaults_and_encoding(self) -> None:
        """No Content-Type means text/plain; base64 is decoded; LF lines work."""
        media, body = parse_entity(b"\r\nhi")
        self.assertEqual((media.mime, body), ("text/plain", b"hi"))
        media, body = parse_entity(
            b"Content-Type: text/calendar\nContent-Transfer-Encoding: base64\n\n"
            + base64.b64encode(b"BEGIN:VCALENDAR")
        )
        self.assertEqual((media.mime, body), ("text/calendar", b"BEGIN:VCALENDAR"))

    def test_bad_entities(self) -> None:
        """Missing blank line, bad header, bad base64 are 400 SMIMEErrors."""
        for entity in (
            b"Content-Type: text/plain",
            b"no colon here\r\n\r\nx",
            b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!",
            b"Content-Type: \xff\r\n\r\nx",
            b"Content-Type: nonsense\r\n\r\nx",
        ):
            e = self.assertRaises(SMIMEError, parse_entity, entity)
            self.assertEqual(e.status, 400, entity)

    def test_canonical(self) -> None:
        """Bare LFs become CRLF, existing CRLFs stay."""
        self.assertEqual(canonical_crlf(b"a\nb\r\nc\n"), b"a\r\nb\r\nc\r\n")

    def test_kinds(self) -> None:
        """S/MIME types are recognised with their smime-type; others are not."""
        self.assertEqual(smime_kind("multipart/signed; boundary=x"), "multipart-signed")
        self.assertEqual(
            smime_kind("application/x-pkcs7-mime; smime-type=Enveloped-Data"), "enveloped-data"
        )
        self.assertEqual(smime_kind("application/pkcs7-mime"), "pkcs7-mime")
        self.assertFalse(is_smime("application/calendar+xml"))
        self.assertTrue(is_smime("application/pkcs7-mime; smime-type=signed-data"))


class IdentityTests(SynchronousTestCase):
    """
    Tests for L{certificate_identities} and L{utc}.
    """

    def test_identities(self) -> None:
        """sip/sips URIs exactly as written and rfc822Names as mailto."""
        self.assertEqual(
            certificate_identities(pki().alice.cert),
            {"sip:alice@example.com", "mailto:alice@example.com"},
        )
        self.assertEqual(certificate_identities(pki().bob.cert), {"sip:bob@example.org"})
        self.assertEqual(
            certificate_identities(pki().carol.cert), {"sips:Carol@Example.COM;transport=tls"}
        )
        self.assertEqual(certificate_identities(pki().ca.cert), frozenset())

    def test_subject_email(self) -> None:
        """The subject emailAddress counts only without rfc822Names."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.x509.oid import NameOID

        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.EMAIL_ADDRESS, "d@example.com")]))
            .issuer_name(pki().ca.cert.subject)
            .public_key(pki().alice.key.public_key())
            .serial_number(7)
            .not_valid_before(NOW)
            .not_valid_after(NOW)
            .sign(pki().ca.key, hashes.SHA256())  # type: ignore[arg-type]
        )
        self.assertEqual(certificate_identities(cert), {"mailto:d@example.com"})

    def test_undecodable_subject_alt_name(self) -> None:
        """Extensions cryptography cannot decode make a 400, not a traceback."""
        for cert, why in [
            (duplicate_extension(pki().bob.cert), "Duplicate 2.5.29.19"),
            (x400_address(pki().bob.cert, "sip:bob@example.org"), "x400Address"),
        ]:
            e = self.assertRaises(SMIMEError, certificate_identities, cert)
            self.assertEqual((type(e), e.status), (SMIMEError, 400))
            self.assertIn("bad subjectAltName", e.reason)
            self.assertIn(why, e.reason)

    def test_utc(self) -> None:
        """utc accepts seconds and datetimes."""
        self.assertEqual(utc(NOW.timestamp()), NOW)
        self.assertEqual(utc(NOW.replace(tzinfo=None)), NOW)


class OurSignatureTests(SynchronousTestCase):
    """
    Verifying multipart/signed bodies we made.
    """

    def test_round_trip(self) -> None:
        """The signed type, body, signer identities and chain come back."""
        content_type, body = signed(pki().alice)
        result = verify_signed(content_type, body, trust=pki().trust, now=NOW)
        self.assertEqual(result.content_type.mime, "application/calendar+xml")
        self.assertEqual(result.content_type.params, {"method": "REQUEST"})
        self.assertEqual(result.body, XML)
        self.assertEqual(result.entity, ENTITY)
        self.assertEqual(
            result.signer.identities, {"sip:alice@example.com", "mailto:alice@example.com"}
        )
        self.assertEqual(result.signer.chain, (pki().alice.cert, pki().ca.cert))

    def test_other_identity(self) -> None:
        """Bob's valid signature verifies and reports exactly Bob's identity."""
        result = verify_signed(*signed(pki().bob), trust=pki().trust, now=NOW)
        self.assertEqual(result.signer.identities, frozenset({"sip:bob@example.org"}))
        self.assertEqual(result.signer.certificate, pki().bob.cert)

    def test_ecdsa_with_intermediate(self) -> None:
        """An ECDSA signer under an intermediate CA verifies."""
        result = verify_signed(*signed(pki().carol), trust=pki().trust, now=NOW)
        self.assertEqual(len(result.signer.chain), 3)

    def test_altered_body(self) -> None:
        """A body altered after signing is refused 403."""
        content_type, body = signed(pki().alice)
        tampered = body.replace(b"icalendar-2.0", b"icalendar-2.1")
        e = self.assertRaises(
            SMIMERefused, verify_signed, content_type, tampered, trust=pki().trust, now=NOW
        )
        self.assertEqual(
            (e.status, e.reason), (403, "message digest mismatch: content altered after signing")
        )

    def test_altered_header(self) -> None:
        """The signed part's headers are covered too."""
        content_type, body = signed(pki().alice)
        tampered = body.replace(b'method="REQUEST"', b'method="CANCEL"', 1)
        self.assertRaises(
            SMIMERefused, verify_signed, content_type, tampered, trust=pki().trust, now=NOW
        )

    def test_expired(self) -> None:
        """A signature by an expired certificate is refused."""
        e = self.assertRaises(
            SMIMERefused, verify_signed, *signed(pki().expired), trust=pki().trust, now=NOW
        )
        self.assertEqual(e.reason, "signer certificate expired (2025-01-01T00:00:00Z)")

    def test_untrusted(self) -> None:
        """Mallory's certificate claiming Alice, from a rogue CA, is refused."""
        e = self.assertRaises(
            SMIMERefused, verify_signed, *signed(pki().mallory), trust=pki().trust, now=NOW
        )
        self.assertIn("untrusted signer certificate", e.reason)

    def test_malformed_multipart(self) -> None:
        """Wrong protocol, part count, signature type or CMS: 400/415, never a traceback."""
        content_type, body = signed(pki().alice)
        boundary = content_type.split("boundary=")[1].split(";")[0]
        one_part = f"--{boundary}\r\n".encode() + ENTITY + f"\r\n--{boundary}--\r\n".encode()
        garbage = body.replace(b"MII", b"AAA")
        cases = [
            (content_type.replace("pkcs7-signature", "pgp-signature"), body, 415),
            (content_type, one_part, 400),
            (content_type, body.replace(b"application/pkcs7-signature", b"text/plain"), 400),
            (content_type, garbage, 400),
            (content_type, b"no delimiters", 400),
            ("multipart/signed", body, 400),
        ]
        for ct, b, status in cases:
            e = self.assertRaises(SMIMEError, verify_signed, ct, b, trust=pki().trust, now=NOW)
            self.assertEqual(e.status, status, (ct, e.reason))

    def test_not_signed(self) -> None:
        """verify_signed on a plain or enveloped type is a 415/400."""
        e = self.assertRaises(
            SMIMEError, verify_signed, "application/calendar+xml", XML, trust=pki().trust, now=NOW
        )
        self.assertEqual(e.status, 415)

    @settings(max_examples=150, deadline=None)
    @given(st.integers(0, 10_000), st.integers(0, 255))
    def test_fuzz(self, at: int, value: int) -> None:
        """Any one-byte change of a signed body is refused or malformed, never accepted."""
        content_type, body = _SIGNED()
        data = bytearray(body)
        at %= len(data)
        if data[at] == value:
            return
        data[at] = value
        try:
            result = verify_signed(content_type, bytes(data), trust=pki().trust, now=NOW)
        except SMIMEError as e:
            self.assertIn(e.status, (400, 403, 415))
        else:
            # Only bytes outside the signed part and the signature may change
            # (preamble, base64 whitespace); the content is then intact.
            self.assertEqual(result.body, XML)


_CACHE: dict[str, Tuple[str, bytes]] = {}


def _SIGNED() -> Tuple[str, bytes]:
    if "s" not in _CACHE:
        _CACHE["s"] = signed(pki().alice)
    return _CACHE["s"]


class OpenSSLSignatureTests(SynchronousTestCase):
    """
    Verifying what C{openssl smime -sign} and C{openssl cms -sign} make.
    """

    def setUp(self) -> None:
        self.dir = self.mktemp()
        self.alice = files(self.dir, pki().alice, "alice")
        self.entity = write(self.dir, "entity", ENTITY)

    def sign(self, *extra: str, tool: str = "smime") -> Tuple[MediaType, bytes]:
        cert, key, _ = self.alice
        out = openssl(tool, "-sign", "-in", self.entity, "-signer", cert, "-inkey", key, *extra)
        return parse_entity(out)

    def test_detached_lf(self) -> None:
        """openssl's default output (bare LF lines) verifies as canonical CRLF."""
        media, body = self.sign()
        self.assertEqual(media.mime, "multipart/signed")
        self.assertIn(b"\n", body.replace(b"\r\n", b""))
        result = verify_signed(media, body, trust=pki().trust, now=NOW)
        self.assertEqual((result.body, result.entity), (XML, ENTITY))
        self.assertEqual(
            result.signer.identities, {"sip:alice@example.com", "mailto:alice@example.com"}
        )

    def test_detached_crlf(self) -> None:
        """openssl -crlfeol output verifies byte for byte."""
        media, body = self.sign("-crlfeol")
        result = verify_signed(media, body, trust=pki().trust, now=NOW)
        self.assertEqual(result.body, XML)

    def test_cms_detached(self) -> None:
        """openssl cms -sign detached multipart/signed verifies."""
        media, body = self.sign("-md", "sha384", tool="cms")
        result = verify_signed(media, body, trust=pki().trust, now=NOW)
        self.assertEqual((result.body, result.signer.digest_algorithm), (XML, "sha384"))

    def test_opaque(self) -> None:
        """openssl -nodetach signed-data verifies, as S/MIME base64 and as DER."""
        media, body = self.sign("-nodetach")
        self.assertEqual(media.params.get("smime-type"), "signed-data")
        result = verify_signed(media, body, trust=pki().trust, now=NOW)
        self.assertEqual(result.body, XML)
        cert, key, _ = self.alice
        der = openssl(
            "cms", "-sign", "-nodetach", "-outform", "DER", "-in", self.entity,
            "-signer", cert, "-inkey", key,
        )  # fmt: skip
        result = verify_signed(
            "application/pkcs7-mime; smime-type=signed-data", der, trust=pki().trust, now=NOW
        )
        self.assertEqual(result.content_type.params, {"method": "REQUEST"})
        unwrapped = open_smime("application/pkcs7-mime", der, trust=pki().trust, now=NOW)
        self.assertEqual((unwrapped.body, unwrapped.encrypted), (XML, False))
        self.assertIsNotNone(unwrapped.signer)

    def test_altered_after_openssl(self) -> None:
        """openssl's signature over a body changed afterwards is refused."""
        media, body = self.sign("-crlfeol")
        tampered = body.replace(b"icalendar", b"icalendaR", 1)
        self.assertRaises(SMIMERefused, verify_signed, media, tampered, trust=pki().trust, now=NOW)

    def test_opaque_holds_envelope(self) -> None:
        """signed-data smime-type on enveloped content is malformed."""
        from conference.smime.envelope import encrypt

        der = encrypt(ENTITY, [pki().server.cert])
        e = self.assertRaises(
            SMIMEError, verify_signed, "application/pkcs7-mime; smime-type=signed-data", der,
            trust=pki().trust, now=NOW,
        )  # fmt: skip
        self.assertIn("holds enveloped-data", e.reason)

    def test_certificate_outside_signature(self) -> None:
        """Without signed attributes a carried certificate may be edited: refused."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

        alice = pki().alice
        der = (
            pkcs7.PKCS7SignatureBuilder()
            .set_data(ENTITY)
            .add_signer(alice.cert, alice.key, hashes.SHA256())  # type: ignore[arg-type]
            .sign(Encoding.DER, [pkcs7.PKCS7Options.Binary, pkcs7.PKCS7Options.NoAttributes])
        )
        # The certificate's extKeyUsage renamed a second basicConstraints: a
        # SEQUENCE that asn1crypto reads as one, but cryptography refuses.
        bad = der.replace(EXTENDED_KEY_USAGE_OID, BASIC_CONSTRAINTS_OID, 1)
        e = self.assertRaises(
            SMIMERefused, open_smime, "application/pkcs7-mime", bad, trust=pki().trust, now=NOW
        )
        self.assertIn("malformed extension: Duplicate", e.reason)

    def test_unsigned_passthrough(self) -> None:
        """open_smime leaves a plain body alone."""
        result = open_smime("application/calendar+xml", XML, trust=pki().trust, now=NOW)
        self.assertEqual((result.body, result.signer, result.encrypted), (XML, None, False))

    def test_layers_limit(self) -> None:
        """Signatures nested deeper than the limit are refused as malformed."""
        alice = pki().alice
        content_type, body = "application/calendar+xml", XML
        for _ in range(5):
            content_type, body = sign_part(content_type, body, cert=alice.cert, key=alice.key)
        e = self.assertRaises(
            SMIMEError, open_smime, content_type, body, trust=pki().trust, now=NOW
        )
        self.assertIn("more than 4 layers", e.reason)

    def test_innermost_signer(self) -> None:
        """With two signatures, the innermost signer is reported."""
        bob, alice = pki().bob, pki().alice
        inner = sign_part("application/calendar+xml", XML, cert=bob.cert, key=bob.key)
        outer = sign_part(inner[0], inner[1], cert=alice.cert, key=alice.key)
        result = open_smime(*outer, trust=pki().trust, now=NOW)
        assert result.signer is not None
        self.assertEqual(result.signer.identities, {"sip:bob@example.org"})

    def test_no_eku_accepted(self) -> None:
        """A signer certificate without extended key usage is accepted."""
        plain = make_user(pki().ca, ["sip:dave@example.com"], key=pki().alice.key, eku=[])
        result = verify_signed(*signed(plain), trust=pki().trust, now=NOW)
        self.assertEqual(result.signer.identities, {"sip:dave@example.com"})
