"""
Tests for L{conference.smime.sign}: our multipart/signed bodies checked by
C{openssl smime -verify} and C{openssl cms -verify}.
"""

from __future__ import annotations

from typing import Sequence

from twisted.trial.unittest import SynchronousTestCase

from conference.sip.errors import LocalProtocolError
from conference.sip.multipart import parse_multipart
from conference.smime.sign import entity_bytes, sign_entity, sign_part
from tests.unit.smime.pki import Identity, openssl, pki, write

XML = b"<icalendar>\r\n  <vcalendar/>\r\n</icalendar>\r\n"
TYPE = 'application/calendar+xml; method="REPLY"'
ENTITY = b'Content-Type: application/calendar+xml; method="REPLY"\r\n\r\n' + XML


class EntityTests(SynchronousTestCase):
    """
    Tests for L{entity_bytes}.
    """

    def test_entity(self) -> None:
        """Headers end in CRLF, a blank line, then the body unchanged."""
        self.assertEqual(
            entity_bytes("text/calendar", b"A\nB", [("Content-Disposition", "render")]),
            b"Content-Type: text/calendar\r\nContent-Disposition: render\r\n\r\nA\nB",
        )

    def test_line_break(self) -> None:
        """A header value holding a line break is our own error."""
        self.assertRaises(LocalProtocolError, entity_bytes, "text/plain\r\nX: y", b"")


class SignTests(SynchronousTestCase):
    """
    Tests for L{sign_part} and L{sign_entity}.
    """

    def verify_with_openssl(
        self, who: Identity, content_type: str, body: bytes, tools: Sequence[str] = ("smime", "cms")
    ) -> None:
        d = self.mktemp()
        ca = write(d, "ca.pem", pki().ca.cert_pem())
        message = write(
            d,
            "msg",
            b"MIME-Version: 1.0\r\nContent-Type: " + content_type.encode() + b"\r\n\r\n" + body,
        )
        for tool in tools:
            out = openssl(tool, "-verify", "-in", message, "-CAfile", ca)
            self.assertEqual(out, ENTITY, tool)

    def test_shape(self) -> None:
        """multipart/signed with protocol, micalg, the entity then a base64 signature."""
        alice = pki().alice
        content_type, body = sign_part(TYPE, XML, cert=alice.cert, key=alice.key)
        self.assertTrue(content_type.startswith("multipart/signed;"))
        self.assertIn('protocol="application/pkcs7-signature"', content_type)
        self.assertIn("micalg=sha-256", content_type)
        signed = parse_multipart(body, content_type)
        self.assertEqual(signed.parts[0].raw, ENTITY)
        self.assertEqual(signed.parts[1].media_type.mime, "application/pkcs7-signature")
        self.assertEqual(signed.parts[1].header("content-transfer-encoding"), "base64")

    def test_openssl_verifies_rsa(self) -> None:
        """openssl smime and cms -verify accept our RSA PKCS#1 v1.5 signature."""
        alice = pki().alice
        self.verify_with_openssl(alice, *sign_part(TYPE, XML, cert=alice.cert, key=alice.key))

    def test_openssl_verifies_pss_sha384(self) -> None:
        """openssl cms accepts our RSASSA-PSS SHA-384 signature (PKCS#7 smime has no PSS)."""
        alice = pki().alice
        content_type, body = sign_part(
            TYPE, XML, cert=alice.cert, key=alice.key, hash_name="sha384", pss=True
        )
        self.assertIn("micalg=sha-384", content_type)
        self.verify_with_openssl(alice, content_type, body, ["cms"])

    def test_canonical(self) -> None:
        """Bare LFs of an XML body are signed as CRLF, binary bodies untouched."""
        alice = pki().alice
        content_type, body = sign_part(
            TYPE, XML.replace(b"\r\n", b"\n"), cert=alice.cert, key=alice.key
        )
        self.verify_with_openssl(alice, content_type, body)
        _, raw = sign_part("application/octet-stream", b"a\nb", cert=alice.cert, key=alice.key)
        self.assertIn(b"\r\n\r\na\nb\r\n--", raw)

    def test_openssl_verifies_ecdsa_chain(self) -> None:
        """openssl accepts our ECDSA signature carrying the intermediate CA."""
        carol = pki().carol
        content_type, body = sign_part(
            TYPE, XML, cert=carol.cert, key=carol.key, intermediates=carol.chain[:1]
        )
        self.verify_with_openssl(carol, content_type, body)

    def test_openssl_refuses_tampering(self) -> None:
        """openssl rejects our signature once the body is changed."""
        alice = pki().alice
        content_type, body = sign_part(TYPE, XML, cert=alice.cert, key=alice.key)
        self.assertRaises(
            AssertionError,
            self.verify_with_openssl,
            alice,
            content_type,
            body.replace(b"vcalendar", b"vcalendaR"),
        )

    def test_sign_entity_boundary(self) -> None:
        """sign_entity signs exact bytes and uses a given boundary."""
        alice = pki().alice
        content_type, body = sign_entity(
            ENTITY, cert=alice.cert, key=alice.key, boundary="frontier"
        )
        self.assertIn("boundary=frontier", content_type)
        self.assertTrue(body.startswith(b"--frontier\r\n" + ENTITY + b"\r\n--frontier\r\n"))

    def test_bad_arguments(self) -> None:
        """An unknown hash or a non-signing key raises ValueError."""
        alice = pki().alice
        self.assertRaises(
            ValueError, sign_part, TYPE, XML, cert=alice.cert, key=alice.key, hash_name="md5"
        )
        self.assertRaises(
            ValueError,
            sign_part,
            TYPE,
            XML,
            cert=alice.cert,
            key=b"key",  # type: ignore[arg-type]
        )
