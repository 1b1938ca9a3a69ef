# -*- test-case-name: tests.unit.app.test_registrar -*-
"""
Tests for L{conference.app.registrar}: RFC 3261 section 10.3.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Iterable, Tuple

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from conference.app.core import CoreRouter, RequestContext
from conference.app.registrar import Binding, MemoryRegistrationStore, Registrar, aor_of
from conference.auth import SIPIdentity
from conference.interfaces import IRegistrationStore, IRequestHandler
from conference.records import StoreError
from conference.sip.errors import RemoteProtocolError
from conference.sip.message import Response
from conference.sip.transaction import Peer
from conference.store.database import Cursor
from conference.store.sqlite import open_sqlite
from conference.store.stores import Stores
from tests.builders import make_request
from tests.unit.store.faults import Faults, faulty

PEER = Peer("UDP", "192.0.2.1", 5060)


class RegistrarTests(SynchronousTestCase):
    """
    REGISTER handling against the memory store.
    """

    def setUp(self) -> None:
        self.store = MemoryRegistrationStore()
        self.registrar = Registrar(self.store, tag_factory=lambda: "rt")
        self.cseq = 0

    def register(
        self,
        contacts: Iterable[str],
        *,
        expires: Any = None,
        now: float = 1000.0,
        identity: Any = None,
        call_id: str = "reg-1",
        to: str = "<sip:alice@example.com>",
    ) -> Response:
        self.cseq += 1
        headers: list[Tuple[str, str]] = [("Contact", c) for c in contacts]
        if expires is not None:
            headers.append(("Expires", str(expires)))
        request = make_request(
            "REGISTER", "sip:example.com", to=to, headers=headers, call_id=call_id, cseq=self.cseq
        )
        context = RequestContext(peer=PEER, now=now, identity=identity)
        d = self.registrar.handle_request(request, context)
        outcomes: list[Any] = []
        d.addBoth(outcomes.append)
        [outcome] = outcomes
        if isinstance(outcome, Response):
            return outcome
        raise outcome.value

    def test_interfaces(self) -> None:
        """The store and the registrar provide their interfaces."""
        self.assertTrue(verifyObject(IRegistrationStore, self.store))
        self.assertTrue(verifyObject(IRequestHandler, self.registrar))

    def test_register_and_list(self) -> None:
        """A REGISTER binds its contacts; the 200 lists them with expires."""
        response = self.register(["<sip:alice@192.0.2.1:5060>;q=0.5", "<sip:alice@192.0.2.2>"])
        self.assertEqual(response.code, 200)
        contacts = response.header_values("contact")
        self.assertEqual(contacts[0], "<sip:alice@192.0.2.2>;expires=3600")
        self.assertEqual(contacts[1], "<sip:alice@192.0.2.1:5060>;expires=3600;q=0.5")
        self.assertTrue(response.has_header("date"))

    def test_date_from_request_time(self) -> None:
        """The 200's Date is the time the request was received, not the host's clock."""
        response = self.register(["<sip:alice@192.0.2.1>"], now=86400.0)
        self.assertEqual(response.header("date"), "Fri, 02 Jan 1970 00:00:00 GMT")

    def test_expires_header_and_param(self) -> None:
        """A contact's expires parameter wins over the Expires header."""
        response = self.register(
            ["<sip:a@192.0.2.1>;expires=120", "<sip:a@192.0.2.3>"], expires=300
        )
        values = sorted(response.header_values("contact"))
        self.assertEqual(values, ["<sip:a@192.0.2.1>;expires=120", "<sip:a@192.0.2.3>;expires=300"])

    def test_too_brief(self) -> None:
        """An expiry under the minimum gets 423 with Min-Expires."""
        with self.assertRaises(RemoteProtocolError) as caught:
            self.register(["<sip:a@192.0.2.1>"], expires=5)
        self.assertEqual(caught.exception.status, 423)
        self.assertEqual(caught.exception.headers, [("Min-Expires", "60")])

    def test_too_brief_applies_nothing(self) -> None:
        """One contact under the minimum refuses the whole REGISTER; nothing is bound."""
        with self.assertRaises(RemoteProtocolError) as caught:
            self.register(["<sip:a@192.0.2.1>;expires=3600", "<sip:a@192.0.2.2>;expires=15"])
        self.assertEqual(caught.exception.status, 423)
        self.assertEqual(
            self.successResultOf(self.store.get_bindings("sip:alice@example.com", 1000.0)), []
        )

    def test_minimum_granted_as_asked(self) -> None:
        """The minimum itself is granted as asked: lifetimes are never lengthened."""
        response = self.register(["<sip:a@192.0.2.1>"], expires=60)
        self.assertEqual(response.header_values("contact"), ["<sip:a@192.0.2.1>;expires=60"])

    def test_clamped(self) -> None:
        """A very long expiry is clamped to the maximum."""
        response = self.register(["<sip:a@192.0.2.1>"], expires=10**9)
        self.assertEqual(response.header_values("contact"), ["<sip:a@192.0.2.1>;expires=86400"])

    def test_remove_one(self) -> None:
        """expires=0 removes that contact only."""
        self.register(["<sip:a@192.0.2.1>", "<sip:a@192.0.2.2>"])
        response = self.register(["<sip:a@192.0.2.1>;expires=0"])
        self.assertEqual(response.header_values("contact"), ["<sip:a@192.0.2.2>;expires=3600"])

    def test_star_removes_all(self) -> None:
        """Contact: * with Expires: 0 removes every binding."""
        self.register(["<sip:a@192.0.2.1>", "<sip:a@192.0.2.2>"])
        response = self.register(["*"], expires=0)
        self.assertEqual(response.header_values("contact"), [])

    def test_star_needs_expires_zero(self) -> None:
        """Contact: * without Expires: 0 is a 400."""
        with self.assertRaises(RemoteProtocolError) as caught:
            self.register(["*"], expires=60)
        self.assertEqual(caught.exception.status, 400)

    def test_query(self) -> None:
        """A REGISTER without Contact lists the bindings and changes nothing."""
        self.register(["<sip:a@192.0.2.1>"])
        response = self.register([], now=1100.0)
        self.assertEqual(response.header_values("contact"), ["<sip:a@192.0.2.1>;expires=3500"])

    def test_expiry_on_clock(self) -> None:
        """Bindings lapse at their expiry and purge forgets them."""
        self.register(["<sip:a@192.0.2.1>"], expires=60)
        self.assertEqual(self.register([], now=1061.0).header_values("contact"), [])
        self.assertEqual(self.successResultOf(self.store.purge(2000.0)), 0)

    def test_purge_counts(self) -> None:
        """purge removes expired bindings and says how many."""
        self.register(["<sip:a@192.0.2.1>", "<sip:a@192.0.2.2>"], expires=60)
        self.assertEqual(self.successResultOf(self.store.purge(5000.0)), 2)

    def test_out_of_order(self) -> None:
        """A REGISTER with the same Call-ID and an older CSeq is refused."""
        self.register(["<sip:a@192.0.2.1>"])
        self.cseq = 0
        with self.assertRaises(RemoteProtocolError) as caught:
            self.register(["<sip:a@192.0.2.1>"])
        self.assertEqual(caught.exception.status, 500)

    def test_identity_must_match(self) -> None:
        """An authenticated user may register only their own address of record."""
        bob = SIPIdentity("bob", "example.com")
        with self.assertRaises(RemoteProtocolError) as caught:
            self.register(["<sip:a@192.0.2.1>"], identity=bob)
        self.assertEqual(caught.exception.status, 403)
        alice = SIPIdentity("alice", "example.com")
        self.assertEqual(self.register(["<sip:a@192.0.2.1>"], identity=alice).code, 200)

    def test_bad_q(self) -> None:
        """A q value out of range is a 400."""
        with self.assertRaises(RemoteProtocolError):
            self.register(["<sip:a@192.0.2.1>;q=1.5"])

    def test_too_many_contacts(self) -> None:
        """More contacts than the limit are refused."""
        registrar = Registrar(self.store, max_contacts=2)
        self.registrar = registrar
        with self.assertRaises(RemoteProtocolError) as caught:
            self.register([f"<sip:a@192.0.2.{i}>" for i in range(1, 4)])
        self.assertEqual(caught.exception.status, 403)

    def test_aor(self) -> None:
        """The address of record drops parameters, port and the sips scheme."""
        request = make_request(
            "REGISTER", "sip:example.com", to="<sips:Alice@EXAMPLE.com:5061;x=y>"
        )
        self.assertEqual(aor_of(request.to), "sip:Alice@example.com")

    def test_aor_domain_mapping(self) -> None:
        """An address of the server itself maps to the default domain; others are 404."""
        domains = {"example.com": "example.com", "127.0.0.1": "example.com"}
        request = make_request("REGISTER", "sip:127.0.0.1", to="<sip:alice@127.0.0.1:5070>")
        self.assertEqual(aor_of(request.to, domains.get), "sip:alice@example.com")
        request = make_request("REGISTER", "sip:127.0.0.1", to="<sip:alice@elsewhere.org>")
        with self.assertRaises(RemoteProtocolError) as caught:
            aor_of(request.to, domains.get)
        self.assertEqual(caught.exception.status, 404)


class DiskFullTests(TestCase):
    """
    REGISTER on a SQLite store whose disk is full or whose pages are
    damaged.
    """

    async def test_disk_full(self) -> None:
        """
        With the disk full, REGISTER is one 503 with Retry-After and one
        log line (no traceback), not a 500.
        """
        path = self.mktemp()
        database = await open_sqlite(path, reactor)
        self.addCleanup(database.close)
        stores = Stores.sql(database, path)

        def full(cursor: Cursor) -> None:  # the file may not grow any more
            cursor.execute("PRAGMA max_page_count = 1")

        await database.write_statement(full)
        long = "sip:phone@192.0.2.1;x=" + "a" * 1000
        with self.assertRaises(StoreError):
            for i in range(1000):  # fill the last pages with 1 KB contacts
                binding = Binding(long, 10**10, None, "c", 1)
                await stores.registrations.set_bindings(
                    f"sip:f{i:04d}@example.com", [binding], [], 0
                )
        router = CoreRouter(["example.com"], tag_factory=lambda: "t")
        router.add_handler(Registrar(stores.registrations, tag_factory=lambda: "rt"))
        events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        request = make_request(
            "REGISTER",
            "sip:example.com",
            to="<sip:alice@example.com>",
            headers=[("Contact", f"<{long}>")],
        )
        answer = router.dispatch(request, RequestContext(peer=PEER, now=1000.0))
        assert isinstance(answer, Deferred)
        response = await answer
        self.assertEqual((response.code, response.header("retry-after")), (503, "5"))
        errors = [e for e in events if e["log_level"] >= LogLevel.warn]
        self.assertEqual(len(errors), 1, errors)
        self.assertIn("full", formatEvent(errors[0]))
        self.assertNotIn("log_failure", errors[0])

    async def test_damaged_pages(self) -> None:
        """
        A page found damaged while serving (SQLite's "malformed") is a 503
        with Retry-After as well.
        """
        database = await open_sqlite(self.mktemp(), reactor)
        self.addCleanup(database.close)
        faults = Faults()
        faults.fail("SELECT", sqlite3.DatabaseError("database disk image is malformed"))
        stores = Stores.sql(faulty(database, faults), "damaged")
        router = CoreRouter(["example.com"], tag_factory=lambda: "t")
        router.add_handler(Registrar(stores.registrations, tag_factory=lambda: "rt"))
        request = make_request(
            "REGISTER",
            "sip:example.com",
            to="<sip:alice@example.com>",
            headers=[("Contact", "<sip:a@192.0.2.1>")],
        )
        answer = router.dispatch(request, RequestContext(peer=PEER, now=1000.0))
        response = await answer if isinstance(answer, Deferred) else answer
        self.assertEqual((response.code, response.header("retry-after")), (503, "5"))
        self.assertTrue(faults.hits)
