"""
Tests for L{conference.smime.config}: loading C{--smime-ca},
C{--smime-cert} and C{--smime-key} with errors that name the fault.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from conference.smime.config import (
    Credentials,
    SMIMEConfigError,
    load_credentials,
    load_trust_store,
)
from conference.smime.verify import verify_signed
from tests.unit.smime.pki import NOW, pki, write


class TrustStoreFileTests(SynchronousTestCase):
    """
    Tests for L{load_trust_store}.
    """

    def test_load(self) -> None:
        """A PEM bundle file becomes a trust store of its CAs."""
        path = write(self.mktemp(), "ca.pem", pki().ca.cert_pem() + pki().rogue_ca.cert_pem())
        self.assertEqual(load_trust_store(path).anchors, (pki().ca.cert, pki().rogue_ca.cert))

    def test_errors(self) -> None:
        """A missing file and a non-PEM file name the option and the path."""
        d = self.mktemp()
        e = self.assertRaises(SMIMEConfigError, load_trust_store, d + "/none.pem")
        self.assertIn("--smime-ca", str(e))
        self.assertIn("No such file", str(e))
        path = write(d, "junk.pem", b"not a certificate\n")
        e = self.assertRaises(SMIMEConfigError, load_trust_store, path)
        self.assertIn(f"--smime-ca {path}: no certificate", str(e))


class CredentialsTests(SynchronousTestCase):
    """
    Tests for L{Credentials} and L{load_credentials}.
    """

    def setUp(self) -> None:
        self.dir = self.mktemp()
        server = pki().server
        self.cert = write(self.dir, "server.pem", server.cert_pem() + pki().ca.cert_pem())
        self.key = write(self.dir, "server.key", server.key_pem())
        self.locked = write(self.dir, "locked.key", server.key_pem(b"s3cret"))

    def test_load(self) -> None:
        """Certificate, key and the extra certificates as intermediates load."""
        creds = load_credentials(self.cert, self.key)
        self.assertEqual(creds.certificate, pki().server.cert)
        self.assertEqual(creds.intermediates, (pki().ca.cert,))
        self.assertIs(creds.rsa_key, creds.key)
        self.assertTrue(creds.valid_at(NOW))

    def test_password(self) -> None:
        """An encrypted key loads with its password, str or bytes."""
        for password in ("s3cret", b"s3cret"):
            creds = load_credentials(self.cert, self.locked, password)
            self.assertEqual(creds.certificate, pki().server.cert)

    def test_password_errors(self) -> None:
        """Wrong or missing passwords are clear errors naming the files."""
        for password in (None, "wrong"):
            e = self.assertRaises(
                SMIMEConfigError, load_credentials, self.cert, self.locked, password
            )
            self.assertIn("--smime-key", str(e))
            self.assertIn("password", str(e))

    def test_mismatch(self) -> None:
        """A key that is not the certificate's is refused."""
        other = write(self.dir, "bob.key", pki().bob.key_pem())
        e = self.assertRaises(SMIMEConfigError, load_credentials, self.cert, other)
        self.assertIn("does not match the certificate", str(e))

    def test_bad_files(self) -> None:
        """Missing and non-PEM certificate files are named."""
        e = self.assertRaises(SMIMEConfigError, load_credentials, self.dir + "/x.pem", self.key)
        self.assertIn("--smime-cert", str(e))
        junk = write(self.dir, "junk", b"junk")
        e = self.assertRaises(SMIMEConfigError, load_credentials, junk, self.key)
        self.assertIn("no certificate", str(e))
        e = self.assertRaises(SMIMEConfigError, load_credentials, self.cert, junk)
        self.assertIn("cannot load the private key", str(e))

    def test_sign(self) -> None:
        """Credentials sign a calendar part that verifies as the server."""
        creds = Credentials.from_pem(pki().server.cert_pem(), pki().server.key_pem())
        result = verify_signed(
            *creds.sign("text/calendar", b"BEGIN:VCALENDAR\r\n"), trust=pki().trust, now=NOW
        )
        self.assertEqual(
            result.signer.identities,
            {"sip:conference@example.com", "mailto:conference@example.com"},
        )

    def test_ec_key(self) -> None:
        """An EC key signs but cannot decrypt."""
        carol = pki().carol
        creds = Credentials.from_pem(carol.cert_pem(), carol.key_pem())
        self.assertIsNone(creds.rsa_key)
        self.assertFalse(creds.valid_at(0.0))
