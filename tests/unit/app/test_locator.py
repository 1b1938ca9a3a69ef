# -*- test-case-name: tests.unit.app.test_locator -*-
"""
Tests for L{conference.app.locator}: Twisted's ILocator over a
registration store.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.protocols import sip
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from conference.app.locator import Locator, twisted_url
from conference.records import RegistrationBinding
from conference.sip.uri import SIPURI, AbsoluteURI, parse_uri
from conference.store.memory import MemoryRegistrationStore


class LocatorTests(SynchronousTestCase):
    """
    Where a user is registered, as Twisted's SIP code asks.
    """

    def setUp(self) -> None:
        self.store = MemoryRegistrationStore()
        self.clock = Clock()
        self.clock.advance(1000)
        self.locator = Locator(self.store, self.clock)

    def register(self, aor: str, contact: str, q: float, expires_at: float = 2000.0) -> None:
        binding = RegistrationBinding(contact, expires_at, q, "call", 1)
        self.successResultOf(self.store.set_bindings(aor, [binding], [], self.clock.seconds()))

    def test_interface(self) -> None:
        """The locator provides Twisted's ILocator."""
        self.assertTrue(verifyObject(sip.ILocator, self.locator))

    def test_preferred_contact(self) -> None:
        """The live contact with the highest q comes back as a Twisted URL."""
        self.register("sip:alice@example.com", "sip:alice@192.0.2.8:5070", 0.5)
        self.register("sip:alice@example.com", "sip:alice@192.0.2.9:5070;transport=tcp", 1.0)
        found = self.successResultOf(self.locator.getAddress(sip.URL("example.com", "alice")))
        self.assertIsInstance(found, sip.URL)
        self.assertEqual(
            (found.username, found.host, found.port, found.transport),
            ("alice", "192.0.2.9", 5070, "tcp"),
        )

    def test_not_registered(self) -> None:
        """A user with no live contact is a LookupError."""
        self.register("sip:bob@example.com", "sip:bob@192.0.2.7", 1.0, expires_at=1000.0)
        for user in ("nobody", "bob"):
            failure = self.failureResultOf(
                self.locator.getAddress(sip.URL("example.com", user)), LookupError
            )
            self.assertIn(f"sip:{user}@example.com", str(failure.value))

    def test_other_scheme(self) -> None:
        """A contact of another scheme is given as it was registered."""
        self.register("sip:carol@example.com", "tel:+15551234", 1.0)
        found = self.successResultOf(self.locator.getAddress(sip.URL("example.com", "carol")))
        self.assertEqual(found, AbsoluteURI("tel:+15551234"))

    def test_twisted_url(self) -> None:
        """twisted_url keeps user, password, port, parameters and headers."""
        uri = parse_uri("sip:bob:pw@h:5080;user=phone;maddr=239.1.1.1;ttl=5;lr;x=1?Subject=hi")
        assert isinstance(uri, SIPURI)
        url = twisted_url(uri)
        self.assertEqual(
            (url.username, url.password, url.host, url.port, url.usertype, url.maddr, url.ttl),
            ("bob", "pw", "h", 5080, "phone", "239.1.1.1", 5),
        )
        self.assertEqual((url.other, url.headers), (["lr", "x=1"], {"Subject": "hi"}))
