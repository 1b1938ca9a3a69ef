# -*- test-case-name: tests.unit.app.test_bind -*-
"""
Tests for L{conference.app.bind}: BIND queries, updates, refusals and
authorization over the memory stores, through the real UAS core, plus the
OPTIONS and REGISTER discovery hooks and the service wiring.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence, Tuple

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from conference.app import bind as bind_module
from conference.app.bind import BindHandler, OwnerResolver, conference_owner, store_failure
from conference.app.core import CoreRouter, RequestContext
from conference.app.registrar import Registrar
from conference.auth import CheckerAccounts, SIPIdentity
from conference.bindings.access import CONFERENCE, USER
from conference.bindings.headers import parse_binding
from conference.bindings.logic import BindingPolicy
from conference.calendar import parse_ical_calendar, to_xcal
from conference.records import BindingRecord, ConferenceRecord, LimitExceededError, StoreError
from conference.sip.errors import SIPProtocolError
from conference.sip.message import Request, Response
from conference.sip.multipart import BodyPart, build_multipart
from conference.sip.transaction import Peer
from conference.sip.uri import parse_uri
from conference.store.cache import CachedBindingStore
from conference.testing import memory_stores
from tests.builders import make_request

ALICE = SIPIdentity("alice", "example.com")
BOB = SIPIdentity("bob", "example.com")
CAROL = SIPIdentity("carol", "example.com")
ROOT = SIPIdentity("root", "example.com")
CONF = "sip:conf@example.com"
PEER = Peer("UDP", "192.0.2.1", 5060, "udp")


def calendar_xcal(organizer: str, attendees: Sequence[str]) -> bytes:
    """
    An xCal VCALENDAR with one VEVENT of C{organizer} and C{attendees}, the
    room as a ROOM attendee.
    """
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//tests//EN",
        "BEGIN:VEVENT",
        "UID:conf-1@example.com",
        "DTSTAMP:20261130T090000Z",
        "DTSTART:20261201T090000Z",
        "DTEND:20261201T100000Z",
        f"ORGANIZER:{organizer}",
        f"ATTENDEE;CUTYPE=ROOM:{CONF}",
        *(f"ATTENDEE;PARTSTAT=NEEDS-ACTION:{a}" for a in attendees),
        "END:VEVENT",
        "END:VCALENDAR",
        "",
    ]
    return to_xcal(parse_ical_calendar("\r\n".join(lines)))


def conference_record() -> ConferenceRecord:
    """
    The conference C{sip:conf@example.com}: alice organizes, bob attends.
    """
    return ConferenceRecord(
        uri=CONF,
        uid="conf-1@example.com",
        organizer="sip:alice@example.com",
        calendar=calendar_xcal("sip:alice@example.com", ["sip:bob@example.com"]),
    )


def result_of(d: Any) -> Any:
    """
    The result of an already fired Deferred (or a plain value).
    """
    if not isinstance(d, Deferred):
        return d
    out: List[Any] = []
    d.addBoth(out.append)
    assert out, "Deferred has not fired"
    return out[0]


class Harness:
    """
    A router with a BIND handler over memory stores and a fake clock.
    """

    def __init__(self, policy: Optional[BindingPolicy] = None, store: Any = None) -> None:
        self.clock = Clock()
        self.clock.advance(1_000_000)
        self.stores = memory_stores()
        self.store = store if store is not None else self.stores.bindings
        result_of(self.stores.conferences.put(conference_record(), None))
        self.router = CoreRouter(
            ["example.com"], ["127.0.0.1"], tag_factory=lambda: "t", accept_ip_literals=True
        )
        self.owners = OwnerResolver(self.stores.conferences, self.router.domain_of)
        self.changes: List[str] = []
        self.bind = BindHandler(
            self.store, self.owners, policy=policy, admins=["sip:root@example.com"]
        )
        self.bind.listeners.append(self.changes.append)
        self.router.add_handler(self.bind)
        self.router.options_hooks.append(self.bind.options_hook)

    def send(
        self,
        method: str,
        to: str,
        identity: Optional[SIPIdentity] = ALICE,
        *,
        bindings: Sequence[str] = (),
        body: bytes = b"",
        content_type: Optional[str] = None,
        uri: str = "sip:example.com",
    ) -> Response:
        headers: List[Tuple[str, str]] = [("Binding", b) for b in bindings]
        if content_type is not None:
            headers.append(("Content-Type", content_type))
        request = make_request(method, uri, to=f"<{to}>", headers=headers, body=body)
        context = RequestContext(PEER, self.clock.seconds(), identity=identity)
        response = result_of(self.router.dispatch(request, context))
        assert isinstance(response, Response), response
        return response

    def records(self, owner: str) -> List[Any]:
        return list(result_of(self.store.bindings(owner, self.clock.seconds())))


def uris(response: Response) -> List[Optional[str]]:
    """
    The URIs of the Binding headers of C{response}, in order.
    """
    return [v.uri for f in response.header_fields("binding") for v in parse_binding(f)]


class UpdateTests(SynchronousTestCase):
    """
    Adding, refreshing and removing bindings.
    """

    def setUp(self) -> None:
        self.h = Harness()

    def test_add_user_binding(self) -> None:
        """A user binds a URI to their own address: 200 lists it with its real expiry."""
        r = self.h.send(
            "BIND",
            "sip:alice@example.com",
            bindings=["<http://cfg.example.com/a>;disposition=configuration;expires=600"],
        )
        self.assertEqual(r.code, 200)
        value = parse_binding(r.header("binding") or "")[0]
        self.assertEqual(
            (value.uri, value.disposition, value.expires),
            ("http://cfg.example.com/a", "configuration", 600),
        )
        self.assertTrue(value.etag)
        self.assertIn("configuration", r.header("accept-binding") or "")
        self.assertEqual(len(self.h.records("sip:alice@example.com")), 1)
        self.assertEqual(self.h.changes, ["sip:alice@example.com"])

    def test_long_expiry_clamped(self) -> None:
        """A lifetime over the maximum is cut to it in the answer."""
        r = self.h.send(
            "BIND",
            "sip:alice@example.com",
            bindings=["<http://x>;disposition=web;expires=999999999"],
        )
        self.assertEqual(parse_binding(r.header("binding") or "")[0].expires, 30 * 86400)

    def test_short_expiry_423(self) -> None:
        """A too short lifetime is 423 with Min-Expires and stores nothing."""
        r = self.h.send(
            "BIND", "sip:alice@example.com", bindings=["<http://x>;disposition=web;expires=5"]
        )
        self.assertEqual((r.code, r.header("min-expires")), (423, "60"))
        self.assertEqual(self.h.records("sip:alice@example.com"), [])

    def test_remove_and_remove_all(self) -> None:
        """expires=0 removes one binding; the disposition alone removes all of it."""
        self.h.send(
            "BIND",
            "sip:alice@example.com",
            bindings=[
                "<http://a>;disposition=web, <http://b>;disposition=web, <http://c>;disposition=boot"
            ],
        )
        r = self.h.send(
            "BIND", "sip:alice@example.com", bindings=["<http://a>;disposition=web;expires=0"]
        )
        self.assertEqual(uris(r), ["http://c", "http://b"])
        r = self.h.send("BIND", "sip:alice@example.com", bindings=[";disposition=web"])
        self.assertEqual(uris(r), ["http://c"])

    def test_refused_disposition_changes_nothing(self) -> None:
        """An unaccepted disposition is 403 Binding Refused with Accept-Binding; nothing changes."""
        r = self.h.send(
            "BIND",
            "sip:alice@example.com",
            bindings=["<http://ok>;disposition=web", "<http://no>;disposition=weird"],
        )
        self.assertEqual((r.code, r.phrase), (403, "Binding Refused"))
        self.assertEqual(
            r.header("accept-binding"),
            "boot, conference, configuration, cpl, presence, sent-by, web",
        )
        self.assertEqual(self.h.records("sip:alice@example.com"), [])
        self.assertEqual(self.h.changes, [])

    def test_owner_dispositions_from_store(self) -> None:
        """The owner's own accepted set from the store replaces the configured one."""
        result_of(self.h.store.set_owner_dispositions("sip:alice@example.com", ["boot"]))
        r = self.h.send("BIND", "sip:alice@example.com", bindings=["<http://x>;disposition=web"])
        self.assertEqual((r.code, r.header("accept-binding")), (403, "boot"))

    def test_other_user_refused(self) -> None:
        """Bob may not change alice's bindings: 403 naming the owner."""
        r = self.h.send(
            "BIND", "sip:alice@example.com", identity=BOB, bindings=["<http://x>;disposition=web"]
        )
        self.assertEqual(r.code, 403)
        self.assertIn("sip:alice@example.com", r.phrase)

    def test_admin_may_update(self) -> None:
        """A server admin may bind for any user."""
        r = self.h.send(
            "BIND", "sip:alice@example.com", identity=ROOT, bindings=["<http://x>;disposition=web"]
        )
        self.assertEqual(r.code, 200)

    def test_unauthenticated_challenged(self) -> None:
        """A BIND without identity is answered by the challenge hook (401)."""
        challenges: List[Request] = []

        def challenge(request: Request, now: float) -> Exception:
            challenges.append(request)
            return SIPProtocolError("Unauthorized", 401, [("WWW-Authenticate", "Digest x")])

        self.h.bind._challenge = challenge
        r = self.h.send("BIND", "sip:alice@example.com", identity=None)
        self.assertEqual((r.code, r.header("www-authenticate")), (401, "Digest x"))
        self.assertEqual(len(challenges), 1)

    def test_unauthenticated_without_hook(self) -> None:
        """Without a challenge hook an anonymous BIND is a plain 401."""
        r = self.h.send("BIND", "sip:alice@example.com", identity=None)
        self.assertEqual(r.code, 401)

    def test_bad_binding_400(self) -> None:
        """A malformed Binding is a 400 naming the fault."""
        r = self.h.send("BIND", "sip:alice@example.com", bindings=["<http://x>"])
        self.assertEqual(r.code, 400)
        self.assertIn("missing disposition", r.phrase)

    def test_unknown_domain_404(self) -> None:
        """A To in a domain not served here is 404."""
        r = self.h.send("BIND", "sip:alice@elsewhere.org", bindings=["<http://x>;disposition=web"])
        self.assertEqual(r.code, 404)
        self.assertIn("elsewhere.org", r.phrase)

    def test_to_without_user_404(self) -> None:
        """A To naming only the domain is neither conference nor user: 404."""
        r = self.h.send("BIND", "sip:example.com")
        self.assertEqual(r.code, 404)

    def test_server_address_maps_to_domain(self) -> None:
        """An address of the server itself names the default domain's user."""
        self.h.send("BIND", "sip:alice@127.0.0.1", bindings=["<http://x>;disposition=web"])
        self.assertEqual(len(self.h.records("sip:alice@example.com")), 1)

    def test_limit(self) -> None:
        """More bindings than the limit is 403 Too many bindings; nothing stored."""
        h = Harness(BindingPolicy(max_bindings=2))
        r = h.send(
            "BIND",
            "sip:alice@example.com",
            bindings=[f"<http://{n}>;disposition=web" for n in "abc"],
        )
        self.assertEqual(r.code, 403)
        self.assertIn("at most 2", r.phrase)
        self.assertEqual(h.records("sip:alice@example.com"), [])

    def test_uri_too_long(self) -> None:
        """A URI over the length limit is 403."""
        r = self.h.send(
            "BIND", "sip:alice@example.com", bindings=[f"<http://x/{'a' * 600}>;disposition=web"]
        )
        self.assertEqual(r.code, 403)
        self.assertIn("longer than 512", r.phrase)

    def test_data_uri_too_large(self) -> None:
        """Inline data over the limit is 413."""
        h = Harness(BindingPolicy(max_data_size=10))
        r = h.send(
            "BIND", "sip:alice@example.com", bindings=["<data:,0123456789abc>;disposition=boot"]
        )
        self.assertEqual(r.code, 413)

    def test_cid_part_stored_as_data(self) -> None:
        """A cid: URI naming a body part is stored and handed back as a data: URI."""
        ctype, body = build_multipart(
            [BodyPart("text/plain", b"boot now", content_id="part1@example.com")]
        )
        r = self.h.send(
            "BIND",
            "sip:alice@example.com",
            bindings=["<cid:part1@example.com>;disposition=boot"],
            body=body,
            content_type=ctype,
        )
        self.assertEqual(r.code, 200, r.phrase)
        self.assertEqual(uris(r), ["data:text/plain,boot%20now"])
        self.assertEqual(self.h.records("sip:alice@example.com")[0].data, b"boot now")

    def test_cid_without_body_400(self) -> None:
        """A cid: URI with no multipart body is a 400."""
        r = self.h.send("BIND", "sip:alice@example.com", bindings=["<cid:x@y>;disposition=boot"])
        self.assertEqual(r.code, 400)

    def test_non_multipart_body_415(self) -> None:
        """A BIND body that is not multipart is 415."""
        r = self.h.send("BIND", "sip:alice@example.com", body=b"x", content_type="text/plain")
        self.assertEqual(r.code, 415)

    def test_store_limit_error(self) -> None:
        """The store's LimitExceededError (a concurrent BIND) is the same 403."""

        class Limited:
            def __getattr__(self, name: str) -> Any:
                return getattr(inner, name)

            def apply(self, *a: Any, **k: Any) -> Deferred[Any]:
                return fail(LimitExceededError("over"))

        inner = memory_stores().bindings
        h = Harness(store=Limited())
        r = h.send("BIND", "sip:alice@example.com", bindings=["<http://x>;disposition=web"])
        self.assertEqual(r.code, 403)
        self.assertIn("Too many bindings", r.phrase)
        self.assertEqual(h.changes, [])

    def test_store_failure_503(self) -> None:
        """Any other store failure is 503 with Retry-After, not a crash."""

        class Broken:
            def bindings(self, *a: Any, **k: Any) -> Deferred[Any]:
                return fail(StoreError("disk on fire"))

            def owner_dispositions(self, owner: str) -> Deferred[Any]:
                return succeed(None)

        h = Harness(store=Broken())
        r = h.send("BIND", "sip:alice@example.com", bindings=["<http://x>;disposition=web"])
        self.assertEqual((r.code, r.header("retry-after")), (503, "5"))
        r = h.send("BIND", "sip:alice@example.com")
        self.assertEqual(r.code, 503)

    def test_ok_only_after_commit(self) -> None:
        """The 200 is not sent before the store's apply has fired."""
        pending: List[Deferred[Any]] = []

        class Slow:
            def __getattr__(self, name: str) -> Any:
                return getattr(inner, name)

            def apply(self, *a: Any, **k: Any) -> Deferred[Any]:
                d: Deferred[Any] = Deferred()
                pending.append(d)
                return d

        inner = memory_stores().bindings
        h = Harness(store=Slow())
        request = make_request(
            "BIND",
            "sip:example.com",
            to="<sip:alice@example.com>",
            headers=[("Binding", "<http://x>;disposition=web")],
        )
        answer = h.router.dispatch(request, RequestContext(PEER, h.clock.seconds(), identity=ALICE))
        assert isinstance(answer, Deferred)
        self.assertNoResult(answer)
        self.assertEqual(h.changes, [])
        pending[0].callback([])
        self.assertEqual(self.successResultOf(answer).code, 200)
        self.assertEqual(h.changes, ["sip:alice@example.com"])

    def test_store_failure_helper(self) -> None:
        """store_failure leaves protocol errors and unknown failures as they are."""
        from twisted.python.failure import Failure

        error = SIPProtocolError("x", 404)
        self.assertIs(store_failure(Failure(error)).value, error)
        self.assertIsInstance(store_failure(Failure(KeyError("k"))).value, KeyError)


class QueryTests(SynchronousTestCase):
    """
    Queries, visibility, one-time bindings and expiry.
    """

    def setUp(self) -> None:
        self.h = Harness()
        self.h.send(
            "BIND",
            "sip:alice@example.com",
            bindings=[
                "<http://private>;disposition=configuration;expires=120",
                "<http://public>;disposition=web;public;expires=3600",
            ],
        )

    def test_owner_sees_all(self) -> None:
        """The owner's query lists every binding and the Accept-Binding."""
        r = self.h.send("BIND", "sip:alice@example.com")
        self.assertEqual((r.code, uris(r)), (200, ["http://private", "http://public"]))
        self.assertTrue(r.header("accept-binding"))

    def test_others_see_public(self) -> None:
        """Another user's query shows only the public binding."""
        r = self.h.send("BIND", "sip:alice@example.com", identity=BOB)
        self.assertEqual(uris(r), ["http://public"])

    def test_expiry_on_clock(self) -> None:
        """A binding is gone from queries once the clock passes its expiry."""
        self.h.clock.advance(121)
        r = self.h.send("BIND", "sip:alice@example.com")
        self.assertEqual(uris(r), ["http://public"])
        value = parse_binding(r.header("binding") or "")[0]
        self.assertEqual(value.expires, 3600 - 121)

    def test_one_time_handed_out_once(self) -> None:
        """A one-time binding is shown to its issuer, then handed out by one query only."""
        r = self.h.send(
            "BIND", "sip:alice@example.com", bindings=["<http://once>;disposition=boot;expires=1"]
        )
        self.assertIn("http://once", uris(r))
        first = self.h.send("BIND", "sip:alice@example.com")
        second = self.h.send("BIND", "sip:alice@example.com")
        self.assertIn("http://once", uris(first))
        self.assertNotIn("http://once", uris(second))

    def test_conference_rights(self) -> None:
        """The organizer binds for a conference; an attendee sees all; others see public."""
        r = self.h.send("BIND", CONF, bindings=["<http://floor>;disposition=conference"])
        self.assertEqual(r.code, 200)
        self.h.send("BIND", CONF, bindings=["<http://pub>;disposition=web;public"])
        self.assertEqual(
            uris(self.h.send("BIND", CONF, identity=BOB)), ["http://floor", "http://pub"]
        )
        self.assertEqual(uris(self.h.send("BIND", CONF, identity=CAROL)), ["http://pub"])
        denied = self.h.send("BIND", CONF, identity=BOB, bindings=["<http://x>;disposition=web"])
        self.assertEqual(denied.code, 403)

    def test_conference_owner(self) -> None:
        """A stored conference is an owner with its organizer and attendees, not the room."""
        owner = conference_owner(conference_record())
        self.assertEqual(owner.kind, CONFERENCE)
        self.assertEqual(owner.organizer, "sip:alice@example.com")
        self.assertEqual(owner.attendees, frozenset(["sip:bob@example.com"]))

    def test_unreadable_calendar(self) -> None:
        """A conference whose calendar cannot be read keeps its record's organizer."""
        record = ConferenceRecord(CONF, "u", "sip:alice@example.com", b"<not xcal")
        owner = conference_owner(record)
        self.assertEqual((owner.organizer, owner.attendees), ("sip:alice@example.com", frozenset()))

    def test_resolver_user(self) -> None:
        """A user part in a served domain that is no conference is a user owner."""
        from conference.sip.uri import parse_uri

        owner = result_of(self.h.owners.resolve(parse_uri("sips:dave@EXAMPLE.com;transport=tcp")))
        self.assertEqual((owner.uri, owner.kind), ("sip:dave@example.com", USER))


def booking(uid: str, organizer: str, attendees: Sequence[str], status: str = "CONFIRMED") -> str:
    """
    One booking of the room C{CONF} (a VEVENT in iCalendar text).
    """
    return "\r\n".join(
        [
            "BEGIN:VEVENT",
            f"UID:{uid}",
            "DTSTAMP:20261130T090000Z",
            "DTSTART:20261201T090000Z",
            "DTEND:20261201T100000Z",
            f"STATUS:{status}",
            f"ORGANIZER:{organizer}",
            f"ATTENDEE;CUTYPE=ROOM:{CONF}",
            *(f"ATTENDEE;PARTSTAT=NEEDS-ACTION:{a}" for a in attendees),
            "END:VEVENT",
        ]
    )


def room_record(*bookings: str, organizer: str, owner: str) -> ConferenceRecord:
    """
    The room C{CONF} holding C{bookings}, whose record names C{organizer}
    (its first booking's) and C{owner}.
    """
    text = "\r\n".join(
        ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//tests//EN", *bookings, "END:VCALENDAR", ""]
    )
    calendar = to_xcal(parse_ical_calendar(text))
    return ConferenceRecord(CONF, "b-1", organizer, calendar, owner=owner)


class ConferenceOwnershipTests(SynchronousTestCase):
    """
    A conference's bindings are its owner's (the organizer who created
    it), seen by the attendees of the owner's own live bookings only.
    """

    ALICE = "sip:alice@example.com"
    CAROL = "sip:carol@example.com"

    def test_owner_not_current_organizer(self) -> None:
        """Another organizer's booking gives neither rights nor sight."""
        record = room_record(
            booking("b-2", self.CAROL, [self.CAROL, "sip:dave@example.com"]),
            booking("b-1", self.ALICE, ["sip:bob@example.com"]),
            organizer=self.CAROL,
            owner=self.ALICE,
        )
        owner = conference_owner(record)
        self.assertEqual(owner.organizer, self.ALICE)
        self.assertEqual(owner.attendees, frozenset(["sip:bob@example.com"]))

    def test_cancelled_booking_attendees(self) -> None:
        """The attendees of the owner's cancelled booking see nothing private."""
        record = room_record(
            booking("b-1", self.ALICE, ["sip:bob@example.com"], status="CANCELLED"),
            organizer=self.ALICE,
            owner=self.ALICE,
        )
        self.assertEqual(conference_owner(record).attendees, frozenset())

    def test_record_without_owner(self) -> None:
        """A record stored without an owner is its organizer's."""
        record = room_record(booking("b-1", self.ALICE, []), organizer=self.ALICE, owner="")
        self.assertEqual(conference_owner(record).organizer, self.ALICE)

    def test_room_at_an_account(self) -> None:
        """A conference whose address is a known account's is that user's owner."""
        h = Harness()
        accounts = CheckerAccounts([InMemoryUsernamePasswordDatabaseDontUse(conf=b"x")])
        h.owners.accounts = accounts
        owner = result_of(h.owners.resolve(parse_uri(CONF)))
        self.assertEqual((owner.uri, owner.kind), (CONF, USER))
        denied = h.send("BIND", CONF, bindings=["<http://x>;disposition=web"])
        self.assertEqual(denied.code, 403)
        mine = h.send(
            "BIND",
            CONF,
            SIPIdentity("conf", "example.com"),
            bindings=["<http://x>;disposition=web"],
        )
        self.assertEqual(mine.code, 200)


class DiscoveryTests(SynchronousTestCase):
    """
    OPTIONS and REGISTER answers carry bindings; Allow lists BIND.
    """

    def setUp(self) -> None:
        self.h = Harness()
        self.h.send(
            "BIND",
            "sip:alice@example.com",
            bindings=[
                "<http://private>;disposition=boot",
                "<http://public>;disposition=web;public",
            ],
        )

    def test_options_to_user(self) -> None:
        """Anonymous OPTIONS to a user shows public bindings and Accept-Binding."""
        r = self.h.send(
            "OPTIONS", "sip:alice@example.com", identity=None, uri="sip:alice@example.com"
        )
        self.assertEqual(r.code, 200)
        self.assertEqual(uris(r), ["http://public"])
        self.assertTrue(r.header("accept-binding"))
        self.assertIn("BIND", r.header("allow") or "")

    def test_options_by_owner(self) -> None:
        """An authenticated owner's OPTIONS shows everything."""
        r = self.h.send("OPTIONS", "sip:alice@example.com", uri="sip:alice@example.com")
        self.assertEqual(uris(r), ["http://private", "http://public"])

    def test_accept_binding_per_caller_and_policy(self) -> None:
        """Accept-Binding shows sent-by to the owner, not to bob; it follows a policy change."""
        bob = SIPIdentity("bob", "example.com")

        def accept(identity: Optional[SIPIdentity]) -> Optional[str]:
            return self.h.send(
                "OPTIONS", "sip:alice@example.com", identity=identity, uri="sip:alice@example.com"
            ).header("accept-binding")

        for _ in range(2):  # the second time from what was worked out the first
            self.assertNotIn("sent-by", accept(bob) or "")
            self.assertIn("sent-by", accept(ALICE) or "")
        self.h.bind.policy = BindingPolicy(dispositions=frozenset({"web"}))
        self.assertEqual((accept(bob), accept(ALICE)), ("web", "web"))

    def test_accept_binding_values_bounded(self) -> None:
        """The Accept-Binding values remembered stay under their bound, answers unchanged."""
        self.patch(bind_module, "MAX_ACCEPT_VALUES", 2)
        values = set()
        for user in ("u1", "u2", "u3", "u4", "u5"):
            uri = f"sip:{user}@example.com"
            r = self.h.send("OPTIONS", uri, identity=None, uri=uri)
            values.add(r.header("accept-binding"))
            self.assertLessEqual(len(self.h.bind._accept_values), 2)
        self.assertEqual(len(values), 1)

    def test_options_to_server(self) -> None:
        """OPTIONS to the server itself carries no Binding header."""
        r = self.h.send("OPTIONS", "sip:example.com", identity=None)
        self.assertEqual(
            (r.code, r.header("binding"), r.header("accept-binding")), (200, None, None)
        )

    def test_register_carries_bindings(self) -> None:
        """The REGISTER 200 carries the address of record's Binding headers."""
        registrar = Registrar(
            self.h.stores.registrations,
            domain_of=self.h.router.domain_of,
            bindings=self.h.bind.register_hook,
        )
        self.h.router.add_handler(registrar)
        request = make_request(
            "REGISTER",
            "sip:example.com",
            to="<sip:alice@example.com>",
            headers=[("Contact", "<sip:alice@192.0.2.1>"), ("Expires", "300")],
        )
        r = result_of(
            self.h.router.dispatch(request, RequestContext(PEER, self.h.clock.seconds(), ALICE))
        )
        self.assertEqual(r.code, 200)
        self.assertEqual(uris(r), ["http://private", "http://public"])
        self.assertTrue(r.header("contact"))

    def test_register_hook_quiet_on_store_failure(self) -> None:
        """A store failure gives the REGISTER no Binding headers rather than failing it."""

        class Broken:
            def bindings(self, *a: Any, **k: Any) -> Deferred[Any]:
                return fail(StoreError("down"))

        bind = BindHandler(Broken(), self.h.owners)  # type: ignore[arg-type]
        self.assertEqual(result_of(bind.register_hook("sip:alice@example.com", None, 0.0)), [])
        self.flushLoggedErrors()


class RobustnessTests(SynchronousTestCase):
    """
    No Binding header value crashes the handler.
    """

    @settings(max_examples=200, deadline=None)
    @given(
        st.lists(
            st.text(alphabet=st.sampled_from(list("<>;=,:/\"' abcdehpstx019*-%@")), max_size=40),
            min_size=1,
            max_size=3,
        )
    )
    def test_any_binding_value(self, values: List[str]) -> None:
        """Whatever the Binding values, the answer is a 200 or a 4xx, never a crash."""
        h = Harness()
        values = [" ".join(v.split()) or ";" for v in values]
        r = h.send("BIND", "sip:alice@example.com", bindings=values)
        self.assertTrue(r.code == 200 or 400 <= r.code < 500, (r.code, r.phrase))


class WiringTests(SynchronousTestCase):
    """
    The options and the service build the BIND and SUBSCRIBE handlers.
    """

    def test_options_mapped(self) -> None:
        """The BIND options (dispositions, admins, limits) reach the config."""
        from conference.tap import Options, config_from_options

        options = Options()
        options.parseOptions(
            [
                "--binding-dispositions",
                "Web, boot",
                "--admin",
                "<sip:Root@EXAMPLE.com>",
                "--max-bindings",
                "4",
                "--max-binding-data",
                "100",
            ]
        )
        config = config_from_options(options)
        self.assertEqual(config.binding_dispositions, ["web", "boot"])
        self.assertEqual(config.admins, ["sip:Root@example.com"])
        self.assertEqual((config.max_bindings, config.max_binding_data), (4, 100))

    def test_option_errors(self) -> None:
        """Bad dispositions and admins are usage errors naming the option."""
        from twisted.python.usage import UsageError

        from conference.tap import Options

        for args in (
            ["--binding-dispositions", "*,web"],
            ["--binding-dispositions", "we b"],
            ["--admin", "example.com"],
            ["--max-bindings", "0"],
        ):
            with self.assertRaises(UsageError) as caught:
                Options().parseOptions(args)
            self.assertIn(args[0], str(caught.exception))

    def test_default_dispositions(self) -> None:
        """Without the option the documented default set is configured."""
        from conference.tap import Options, config_from_options

        options = Options()
        options.parseOptions([])
        self.assertIn("conference", config_from_options(options).binding_dispositions or [])

    def test_service_registers_handlers(self) -> None:
        """The service answers BIND and SUBSCRIBE and lists BIND in Allow."""
        from conference.service import ConferenceService, ServerConfig

        clock = Clock()
        service = ConferenceService(
            ServerConfig(listen=[], binding_dispositions=["*"], admins=["sip:root@localhost"]),
            reactor=clock,
            stores=memory_stores(),
        )
        service._applications(memory_stores())
        self.assertIn("BIND", service.router.allow)
        self.assertIn("SUBSCRIBE", service.router.allow)
        self.assertIsNone(service.binder.policy.dispositions)
        challenge = service.challenge(make_request("BIND"), 0.0)
        self.assertEqual(challenge.status, 403)


class SlowStore:
    """
    A binding store whose reads wait until the test releases them.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.waiting: List[Tuple[Deferred[Any], Any]] = []

    def _later(self, d: Deferred[Any]) -> Deferred[Any]:
        held: Deferred[Any] = Deferred()
        self.waiting.append((held, d))
        return held

    def bindings(self, *args: Any, **kwargs: Any) -> Deferred[Any]:
        return self._later(self.inner.bindings(*args, **kwargs))

    def owner_dispositions(self, *args: Any, **kwargs: Any) -> Deferred[Any]:
        return self._later(self.inner.owner_dispositions(*args, **kwargs))

    def release(self) -> None:
        while self.waiting:
            held, d = self.waiting.pop(0)
            held.callback(result_of(d))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class BrokenBindings:
    """
    A binding store whose reads fail at once.
    """

    def bindings(self, *a: Any, **k: Any) -> Deferred[Any]:
        return fail(StoreError("down"))


def assert_slow_same(test: SynchronousTestCase, ask: Callable[[Harness], Any]) -> None:
    """
    C{ask} (an OPTIONS or a BIND query of alice) waits on a store that
    answers later, then gives the same Binding and Accept-Binding headers
    as over the memory store.
    """
    fast = Harness()
    fast.send("BIND", "sip:alice@example.com", bindings=["<http://public>;disposition=web;public"])
    slow_store = SlowStore(fast.stores.bindings)
    answer = ask(Harness(store=slow_store))
    test.assertNoResult(answer)
    slow_store.release()
    slow_store.release()
    response = test.successResultOf(answer)
    expected = ask(fast)
    test.assertEqual(
        [(n, v) for n, v in response.iter_headers() if n in ("binding", "accept-binding")],
        [(n, v) for n, v in expected.iter_headers() if n in ("binding", "accept-binding")],
    )


class SynchronousOptionsTests(SynchronousTestCase):
    """
    OPTIONS is answered at once when the stores answer at once, and the
    same way through Deferreds when they do not.
    """

    def options(self, h: Harness, identity: Optional[SIPIdentity] = None) -> Any:
        request = make_request("OPTIONS", "sip:alice@example.com", to="<sip:alice@example.com>")
        return h.router.dispatch(request, RequestContext(PEER, h.clock.seconds(), identity))

    def test_memory_store_answers_at_once(self) -> None:
        """With the memory store the answer is a Response, not a Deferred."""
        h = Harness()
        h.send("BIND", "sip:alice@example.com", bindings=["<http://public>;disposition=web;public"])
        answer = self.options(h)
        self.assertIsInstance(answer, Response)
        self.assertEqual(uris(answer), ["http://public"])
        self.assertTrue(answer.header("accept-binding"))

    def test_no_user_part_needs_no_store(self) -> None:
        """OPTIONS to the server itself gives no headers without touching any store."""
        h = Harness(store=object())
        self.assertEqual(h.bind.options_hook(make_request("OPTIONS", "sip:example.com"), None), [])  # type: ignore[arg-type]

    def test_slow_store_same_answer(self) -> None:
        """A store that answers later gives the same headers, once it answers."""
        assert_slow_same(self, self.options)

    def test_store_failure_is_503(self) -> None:
        """A store that fails at once still makes the OPTIONS a 503 with Retry-After."""
        h = Harness(store=BrokenBindings())
        answer = result_of(self.options(h))
        self.assertEqual((answer.code, answer.header("retry-after")), (503, "5"))
        self.flushLoggedErrors()


class SynchronousQueryTests(SynchronousTestCase):
    """
    A BIND query is answered at once when the stores answer at once, and
    the same way through Deferreds when they do not.
    """

    def query(self, h: Harness, to: str = "sip:alice@example.com") -> Any:
        request = make_request("BIND", "sip:example.com", to=f"<{to}>")
        return h.router.dispatch(request, RequestContext(PEER, h.clock.seconds(), ALICE))

    def test_memory_store_answers_at_once(self) -> None:
        """With the memory store the answer to a query is a Response, not a Deferred."""
        h = Harness()
        h.send("BIND", "sip:alice@example.com", bindings=["<http://public>;disposition=web;public"])
        answer = self.query(h)
        self.assertIsInstance(answer, Response)
        self.assertEqual((answer.code, uris(answer)), (200, ["http://public"]))
        self.assertTrue(answer.header("accept-binding"))

    def test_slow_store_same_answer(self) -> None:
        """A store that answers later gives the same 200, once it answers."""
        assert_slow_same(self, self.query)

    def test_store_failure_is_503(self) -> None:
        """A binding store failing at once makes the query a 503 with Retry-After."""
        answer = result_of(self.query(Harness(store=BrokenBindings())))
        self.assertEqual((answer.code, answer.header("retry-after")), (503, "5"))
        self.flushLoggedErrors()

    def test_no_owner_is_404(self) -> None:
        """A query of a URI without a user part is a 404, answered at once."""
        answer = result_of(self.query(Harness(), to="sip:example.com"))
        self.assertEqual(answer.code, 404)


class CachedStoreTests(SynchronousTestCase):
    """
    The handler over the binding cache: queries answered from it, updates
    planned on what the store holds.
    """

    def setUp(self) -> None:
        clock = Clock()
        clock.advance(1_000_000)
        inner = memory_stores().bindings
        self.inner = inner
        self.cache = CachedBindingStore(inner, None, clock.seconds)
        self.h = Harness(store=self.cache)
        self.h.clock = clock

    def test_query_sees_update(self) -> None:
        """A query after an update through the handler shows the update."""
        self.assertEqual(uris(self.h.send("BIND", "sip:alice@example.com")), [])
        self.h.send("BIND", "sip:alice@example.com", bindings=["<http://a>;disposition=web"])
        self.assertEqual(uris(self.h.send("BIND", "sip:alice@example.com")), ["http://a"])

    def test_update_plans_on_store(self) -> None:
        """An update reads the store, not a cached read older than a change it missed."""
        self.assertEqual(uris(self.h.send("BIND", "sip:alice@example.com")), [])
        now = self.h.clock.seconds()
        record = BindingRecord(
            "sip:alice@example.com", "web", "http://a", now + 600, "e-old", False, "x"
        )
        result_of(self.inner.apply(record.owner, [], [record], now, max_bindings=9))
        r = self.h.send("BIND", "sip:alice@example.com", bindings=["<http://a>;disposition=web"])
        self.assertEqual(parse_binding(r.header("binding") or "")[0].etag, "e-old")


class DiscoveryMemoTests(SynchronousTestCase):
    """
    Discovery answers behind the binding cache are kept and given again
    while what they were made from stands, and never past a change.
    """

    def setUp(self) -> None:
        self.h = Harness()
        self.cache = CachedBindingStore(self.h.stores.bindings, None, self.h.clock.seconds)
        self.h.bind.store = self.cache

    def options(self, identity: Optional[SIPIdentity] = None) -> Response:
        return self.h.send(
            "OPTIONS", "sip:alice@example.com", identity, uri="sip:alice@example.com"
        )

    def no_reads(self) -> None:
        """Make every read of the cache fail the test."""

        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("the cache was read")

        self.patch(self.cache, "bindings", refuse)
        self.patch(self.cache, "owner_dispositions", refuse)

    def test_repeat_without_reads(self) -> None:
        """A repeated OPTIONS gets the same headers without a read, counted as two cache hits."""
        self.h.send("BIND", "sip:alice@example.com", bindings=["<http://p>;disposition=web;public"])
        first = self.options()
        hits = self.cache.hits
        self.no_reads()
        again = self.options()
        self.assertEqual(list(again.iter_headers())[5:], list(first.iter_headers())[5:])
        self.assertEqual(uris(again), ["http://p"])
        self.assertEqual(self.cache.hits, hits + 2)

    def test_update_seen(self) -> None:
        """An update through the handler is in the next answer."""
        self.assertEqual(uris(self.options()), [])
        self.h.send("BIND", "sip:alice@example.com", bindings=["<http://p>;disposition=web;public"])
        self.assertEqual(uris(self.options()), ["http://p"])

    def test_update_seen_after_another_read(self) -> None:
        """An update is in the next answer even when another caller's read refilled the cache."""
        self.assertEqual(uris(self.options()), [])
        self.h.send("BIND", "sip:alice@example.com", bindings=["<http://p>;disposition=web;public"])
        self.assertEqual(uris(self.options(BOB)), ["http://p"])
        self.assertEqual(uris(self.options()), ["http://p"])

    def test_change_elsewhere_seen(self) -> None:
        """A change of another process, once noticed, is in the next answer."""
        self.assertEqual(uris(self.options()), [])
        now = self.h.clock.seconds()
        record = BindingRecord(
            "sip:alice@example.com", "web", "http://p", now + 600, "e", False, "x", public=True
        )
        result_of(self.h.stores.bindings.apply(record.owner, [], [record], now, max_bindings=9))
        self.assertEqual(uris(self.options()), [])  # not noticed yet: the cache answers
        self.cache.changed("binding", "sip:alice@example.com")
        self.assertEqual(uris(self.options()), ["http://p"])

    def test_expires_counts_down(self) -> None:
        """The expires shown goes down with the clock, as if worked out afresh."""
        self.cache = CachedBindingStore(
            self.h.stores.bindings, None, self.h.clock.seconds, max_age=60
        )
        self.h.bind.store = self.cache
        self.h.send(
            "BIND",
            "sip:alice@example.com",
            bindings=["<http://p>;disposition=web;public;expires=3600"],
        )
        shown = []
        for step in (0.0, 0.4, 0.7, 0.5, 2.0):
            self.h.clock.advance(step)
            shown.append(parse_binding(self.options().header("binding") or "")[0].expires)
        self.assertEqual(shown, [3600, 3600, 3599, 3599, 3597])

    def test_callers_apart(self) -> None:
        """Each caller gets what it may see, however the answers alternate."""
        self.h.send(
            "BIND",
            "sip:alice@example.com",
            bindings=["<http://priv>;disposition=web", "<http://pub>;disposition=web;public"],
        )
        for _ in range(2):
            self.assertEqual(uris(self.options()), ["http://pub"])
            self.assertEqual(uris(self.options(ALICE)), ["http://priv", "http://pub"])
            self.assertEqual(uris(self.options(BOB)), ["http://pub"])

    def test_one_time_not_kept(self) -> None:
        """A one-time binding is handed out once, then never again from a kept answer."""
        self.h.send(
            "BIND", "sip:alice@example.com", bindings=["<http://once>;disposition=boot;expires=1"]
        )
        self.assertEqual(uris(self.options(ALICE)), ["http://once"])
        self.assertEqual(uris(self.options(ALICE)), [])
        self.assertEqual(uris(self.options(ALICE)), [])

    def test_policy_change(self) -> None:
        """A new policy gives a new Accept-Binding at once."""
        self.assertIn("web", self.options().header("accept-binding") or "")
        self.h.bind.policy = BindingPolicy(dispositions=frozenset({"boot"}))
        self.assertEqual(self.options().header("accept-binding"), "boot")

    def test_bounded(self) -> None:
        """At most MAX_DISCOVERIES answers are kept; answers stay right past it."""
        self.patch(bind_module, "MAX_DISCOVERIES", 2)
        for _ in range(2):
            for identity in (None, ALICE, BOB, CAROL):
                self.assertEqual(self.options(identity).code, 200)
        self.assertLessEqual(len(self.h.bind._discoveries), 2)
