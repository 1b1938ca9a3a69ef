"""
Tests for L{conference.smime.trust}: S/MIME chain and end-entity checks,
through C{cryptography.x509.verification} where it has extension policies
and through the fallback path builder everywhere.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable, List, Sequence, Tuple

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from twisted.trial.unittest import SynchronousTestCase

from conference.smime.model import SMIMERefused
from conference.smime.trust import TrustStore, check_end_entity, has_extension_policies
from tests.unit.smime.pki import (
    NOW,
    duplicate_extension,
    edited,
    make_ca,
    make_user,
    pki,
    x400_address,
)

Verify = Callable[
    [TrustStore, x509.Certificate, Sequence[x509.Certificate]], Tuple[x509.Certificate, ...]
]


def _ways() -> List[Tuple[str, Verify]]:
    ways: List[Tuple[str, Verify]] = [
        ("fallback", lambda store, leaf, pool: store.verify_fallback(leaf, pool, NOW))
    ]
    if has_extension_policies():
        ways.append(("library", lambda store, leaf, pool: store.verify(leaf, pool, NOW)))
    return ways


class EndEntityTests(SynchronousTestCase):
    """
    Tests for L{check_end_entity}.
    """

    def test_dates(self) -> None:
        """Expired and not-yet-valid certificates are refused with the date."""
        e = self.assertRaises(SMIMERefused, check_end_entity, pki().expired.cert, NOW)
        self.assertEqual(e.reason, "signer certificate expired (2025-01-01T00:00:00Z)")
        early = datetime(2023, 1, 1, tzinfo=timezone.utc)
        e = self.assertRaises(SMIMERefused, check_end_entity, pki().alice.cert, early)
        self.assertEqual(
            e.reason, "signer certificate not yet valid (valid from 2024-01-01T00:00:00Z)"
        )

    def test_now_forms(self) -> None:
        """now may be POSIX seconds, an aware or a naive UTC datetime."""
        for now in (NOW.timestamp(), NOW, NOW.replace(tzinfo=None)):
            check_end_entity(pki().alice.cert, now)
        self.assertRaises(SMIMERefused, check_end_entity, pki().expired.cert, NOW.timestamp())

    def test_usages(self) -> None:
        """A TLS-only EKU and a CA certificate are refused; no EKU is fine."""
        tls = make_user(
            pki().ca, ["sip:x@example.com"], key=pki().alice.key,
            eku=[ExtendedKeyUsageOID.CLIENT_AUTH],
        )  # fmt: skip
        e = self.assertRaises(SMIMERefused, check_end_entity, tls.cert, NOW)
        self.assertIn("not for email protection", e.reason)
        e = self.assertRaises(SMIMERefused, check_end_entity, pki().ca.cert, NOW)
        self.assertIn("key usage does not allow signing", e.reason)
        from cryptography.hazmat.primitives.asymmetric import rsa

        short = make_user(
            pki().ca, ["sip:x@example.com"],
            key=rsa.generate_private_key(public_exponent=65537, key_size=1024),
        )  # fmt: skip
        e = self.assertRaises(SMIMERefused, check_end_entity, short.cert, NOW)
        self.assertEqual(e.reason, "signer RSA key of 1024 bits is too short")
        bare = make_user(pki().ca, ["sip:x@example.com"], key=pki().alice.key, eku=[])
        check_end_entity(bare.cert, NOW)

    def test_undecodable_extensions(self) -> None:
        """Extensions cryptography cannot decode (no ValueError) are refused."""
        for cert, why in [
            (duplicate_extension(pki().alice.cert), "Duplicate 2.5.29.19"),
            (x400_address(pki().alice.cert, "sip:alice@example.com"), "x400Address"),
        ]:
            e = self.assertRaises(SMIMERefused, check_end_entity, cert, NOW)
            self.assertIn("certificate has a malformed extension", e.reason)
            self.assertIn(why, e.reason)
            self.assertRaises(SMIMERefused, pki().trust.verify, cert, [], NOW)


class ChainTests(SynchronousTestCase):
    """
    Tests for L{TrustStore.verify} and L{TrustStore.verify_fallback}.
    """

    def test_direct(self) -> None:
        """A user certificate issued by the CA chains to it."""
        for name, verify in _ways():
            chain = verify(pki().trust, pki().alice.cert, [])
            self.assertEqual(chain, (pki().alice.cert, pki().ca.cert), name)

    def test_intermediate(self) -> None:
        """An intermediate carried along completes the chain; without it, refused."""
        carol = pki().carol
        for name, verify in _ways():
            chain = verify(pki().trust, carol.cert, [pki().bob.cert, carol.chain[0]])
            self.assertEqual(chain, (carol.cert, carol.chain[0], pki().ca.cert), name)
            e = self.assertRaises(SMIMERefused, verify, pki().trust, carol.cert, [])
            self.assertIn("untrusted signer certificate", e.reason, name)

    def test_untrusted(self) -> None:
        """A certificate from an unknown CA is refused, even with its CA sent."""
        for name, verify in _ways():
            e = self.assertRaises(
                SMIMERefused, verify, pki().trust, pki().mallory.cert, [pki().rogue_ca.cert]
            )
            self.assertIn("untrusted signer certificate", e.reason, name)

    def test_forged_issuer(self) -> None:
        """A CA with the trusted CA's name but another key does not count."""
        fake = make_ca("Test S/MIME CA", key=pki().rogue_ca.key)
        forged = make_user(fake, ["sip:alice@example.com"], key=pki().alice.key)
        for name, verify in _ways():
            self.assertRaises(SMIMERefused, verify, pki().trust, forged.cert, [fake.cert])
            self.assertTrue(name)

    def test_not_a_ca(self) -> None:
        """A user certificate cannot issue another one."""
        under_bob = make_user(pki().bob, ["sip:eve@example.com"], key=pki().alice.key)
        for name, verify in _ways():
            e = self.assertRaises(
                SMIMERefused, verify, pki().trust, under_bob.cert, [pki().bob.cert]
            )
            self.assertIn("untrusted", e.reason, name)

    def test_undecodable_intermediate(self) -> None:
        """An intermediate with a bad extension or an unknown curve is no CA."""
        carol = pki().carol
        prime256v1 = bytes.fromhex("06082a8648ce3d030107")
        unknown_curve = bytes.fromhex("0608008648ce3d030107")
        for bad in (
            duplicate_extension(carol.chain[0]),
            edited(carol.chain[0], prime256v1, unknown_curve),
        ):
            for name, verify in _ways():
                e = self.assertRaises(SMIMERefused, verify, pki().trust, carol.cert, [bad])
                self.assertIn("untrusted signer certificate", e.reason, name)

    def test_verify_checks_dates(self) -> None:
        """verify refuses an expired signer before building any chain."""
        e = self.assertRaises(SMIMERefused, pki().trust.verify, pki().expired.cert, [], NOW)
        self.assertIn("expired", e.reason)

    def test_from_pem(self) -> None:
        """A PEM bundle loads every CA; garbage and empty bundles raise ValueError."""
        from cryptography.hazmat.primitives.serialization import Encoding

        pem = pki().ca.cert.public_bytes(Encoding.PEM) + pki().rogue_ca.cert.public_bytes(
            Encoding.PEM
        )
        store = TrustStore.from_pem(pem)
        self.assertEqual(store.anchors, (pki().ca.cert, pki().rogue_ca.cert))
        self.assertRaises(ValueError, TrustStore.from_pem, b"")
        self.assertRaises(ValueError, TrustStore.from_pem, b"-----BEGIN CERTIFICATE-----\nxx\n")
