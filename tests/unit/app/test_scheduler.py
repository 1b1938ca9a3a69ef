# -*- test-case-name: tests.unit.app.test_scheduler -*-
"""
Tests for L{conference.app.scheduler}: iTIP by MESSAGE through the real
UAS core over memory stores, with a fake clock and a sender that records
the iTIP answers the server sends as MESSAGEs of their own.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, List, Optional, Sequence, Tuple

from twisted.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from conference.app.bind import BindHandler, OwnerResolver
from conference.app.calendarbody import parse_calendar_body
from conference.app.conferences import attendees_of, calendar_of, instances
from conference.app.core import CoreRouter, RequestContext
from conference.app.outbound import Messenger
from conference.app.scheduler import (
    SchedulingHandler,
    SentByApprovals,
    delegating_principals,
    install_scheduler,
)
from conference.auth import CheckerAccounts, SIPIdentity
from conference.bindings.headers import parse_binding
from conference.calendar import Component, parse_ical_calendar, to_xcal
from conference.interfaces import IAccounts
from conference.records import (
    BindingRecord,
    CalendarEntry,
    ConferenceRecord,
    ConflictError,
    RegistrationBinding,
)
from conference.sip.headers import parse_warning
from conference.sip.message import Request, Response, make_response
from conference.sip.multipart import BodyPart, build_multipart
from conference.sip.transaction import Peer
from conference.store.cache import CachedBindingStore
from conference.store.memory import MemoryConferenceStore
from conference.testing import memory_stores
from tests.builders import make_request
from tests.unit.app.calendars import T0, conference_ical, stamp

ALICE = SIPIdentity("alice", "example.com")
BOB = SIPIdentity("bob", "example.com")
CAROL = SIPIdentity("carol", "example.com")
DAVE = SIPIdentity("dave", "example.com")
ROOM = "sip:conf@example.com"
FACTORY = "sip:conference@example.com"
PEER = Peer("UDP", "192.0.2.1", 5060, "udp")
XCAL = "application/calendar+xml"


def reply_ical(
    attendee: str,
    partstat: str,
    *,
    uid: str = "conf-1@example.com",
    when: datetime = T0,
    rid: Optional[datetime] = None,
    method: str = "REPLY",
) -> str:
    """
    An attendee's REPLY (or REFRESH/COUNTER) for C{uid}, DTSTAMP C{when}.
    """
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//tests//EN",
        f"METHOD:{method}",
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"DTSTAMP:{stamp(when)}",
        "ORGANIZER:sip:alice@example.com",
        f"ATTENDEE;PARTSTAT={partstat}:{attendee}",
    ]
    if rid is not None:
        lines.append(f"RECURRENCE-ID:{stamp(rid)}")
    lines += ["END:VEVENT", "END:VCALENDAR", ""]
    return "\r\n".join(lines)


def xcal(text: str) -> bytes:
    """
    iCalendar text as an RFC 6321 body.
    """
    return to_xcal(parse_ical_calendar(text))


class RecordingSender:
    """
    Keeps the requests the messenger sends and answers them 200.
    """

    def __init__(self) -> None:
        self.sent: List[Tuple[Request, Peer]] = []

    def send_request(self, request: Request, peer: Peer) -> Deferred[Response]:
        self.sent.append((request, peer))
        d: Deferred[Response] = Deferred()
        d.callback(make_response(request, 200))
        return d


class Harness:
    """
    A UAS core with the scheduler over memory stores; the clock stands ten
    days before the conferences of L{tests.unit.app.calendars}.
    """

    def __init__(
        self,
        max_per_organizer: Optional[int] = None,
        *,
        accounts: Optional[IAccounts] = None,
        registered: Sequence[str] = ("alice", "bob", "carol", "dave"),
    ) -> None:
        self.clock = Clock()
        self.clock.advance((T0 - timedelta(days=10)).timestamp())
        self.stores = memory_stores()
        self.router = CoreRouter(["example.com"], tag_factory=lambda: "t", accept_ip_literals=True)
        self.sender = RecordingSender()
        self.messenger = Messenger(
            self.sender,
            self.stores.registrations,
            domain_of=self.router.domain_of,
            endpoint=lambda: ("udp-key", "192.0.2.100", 5060),
            reactor=self.clock,
            default_domain="example.com",
        )
        self.handler = SchedulingHandler(
            self.stores.conferences,
            self.stores.calendars,
            self.stores.bindings,
            self.stores.registrations,
            self.messenger,
            domain_of=self.router.domain_of,
            default_domain="example.com",
            tag_factory=lambda: "t",
            uri_factory=lambda domain: f"sip:conf-fixed@{domain}",
            max_per_organizer=max_per_organizer,
            accounts=accounts,
        )
        self.router.add_handler(self.handler)
        owners = OwnerResolver(self.stores.conferences, self.router.domain_of, accounts)
        self.binder = BindHandler(self.stores.bindings, owners, tag_factory=lambda: "t")
        self.router.add_handler(self.binder)
        self.released: List[str] = []
        self.handler.listeners.append(self.released.append)
        for n, user in enumerate(["alice", "bob", "carol", "dave"]):
            if user in registered:
                self.register(f"sip:{user}@example.com", f"sip:{user}@192.0.2.{10 + n}:5062")

    def register(self, aor: str, contact: str) -> None:
        now = self.clock.seconds()
        binding = RegistrationBinding(contact, now + 3600 * 24 * 400, None, "c", 1)
        self.stores.registrations.set_bindings(aor, [binding], [], now)

    def deliver(
        self,
        body: bytes,
        identity: Optional[SIPIdentity] = ALICE,
        uri: str = ROOM,
        content_type: str = XCAL,
        to: Optional[str] = None,
    ) -> Deferred[Response]:
        """
        Dispatch a MESSAGE; the answer, which may come later.
        """
        request = make_request(
            "MESSAGE",
            uri,
            body=body,
            headers=[("Content-Type", content_type)],
            to=to,
        )
        context = RequestContext(PEER, self.clock.seconds(), identity=identity)
        answer = self.router.dispatch(request, context)
        return answer if isinstance(answer, Deferred) else succeed(answer)

    def message(self, body: bytes, *args: Any, **kwargs: Any) -> Response:
        """
        L{deliver}, answered at once.
        """
        out: List[Any] = []
        self.deliver(body, *args, **kwargs).addBoth(out.append)
        assert out and isinstance(out[0], Response), out
        return out[0]

    def bind(self, to: str, identity: SIPIdentity, *bindings: str) -> Response:
        """
        A BIND by C{identity} to the owner C{to}: a query, or an update
        with C{bindings}.
        """
        headers = [("Binding", b) for b in bindings]
        request = make_request("BIND", "sip:example.com", to=f"<{to}>", headers=headers)
        context = RequestContext(PEER, self.clock.seconds(), identity=identity)
        answer = self.router.dispatch(request, context)
        out: List[Any] = []
        if isinstance(answer, Deferred):
            answer.addBoth(out.append)
        else:
            out.append(answer)
        assert out and isinstance(out[0], Response), out
        return out[0]

    def schedule(self, identity: SIPIdentity = ALICE, uri: str = ROOM, **kwargs: Any) -> Response:
        kwargs.setdefault("room", uri)
        return self.message(xcal(conference_ical(**kwargs)), identity, uri)

    def outgoing(self) -> List[Tuple[Request, Component]]:
        """
        The MESSAGEs sent since the last call, with their calendars.
        """
        self.clock.advance(0)
        sent, self.sender.sent[:] = list(self.sender.sent), []
        return [
            (r, parse_calendar_body(r.body, r.header("content-type"), agent="x").calendar)
            for r, _ in sent
        ]

    def record(self, uri: str = ROOM) -> Optional[ConferenceRecord]:
        found: List[Optional[ConferenceRecord]] = []
        self.stores.conferences.get(uri).addCallback(found.append)
        return found[0]

    def entries(self, owner: str) -> List[CalendarEntry]:
        found: List[List[CalendarEntry]] = []
        self.stores.calendars.entries(owner).addCallback(found.append)
        return found[0]


def warning(response: Response) -> str:
    """
    The text of a response's Warning.
    """
    value = response.header("warning")
    assert value is not None, response
    return parse_warning(value)[0].text


def partstat(record: Optional[ConferenceRecord], address: str) -> str:
    """
    The PARTSTAT of C{address} in a stored conference.
    """
    assert record is not None
    return {a: p for a, p, _ in attendees_of(calendar_of(record))}[address]


def attendee_of_reply(calendar: Component) -> Tuple[str, str]:
    """
    (address, PARTSTAT) of the one ATTENDEE of a REPLY.
    """
    (event,) = calendar.subcomponents("VEVENT")
    (att,) = event.get_all("ATTENDEE")
    return str(att.value), str(att.param("PARTSTAT"))


class RequestTests(SynchronousTestCase):
    """
    REQUEST creates and updates conferences.
    """

    def setUp(self) -> None:
        self.h = Harness()

    def test_create(self) -> None:
        """A REQUEST to a conference URI creates it; the room REPLYs ACCEPTED."""
        response = self.h.schedule(room=ROOM)
        self.assertEqual(response.code, 200)
        record = self.h.record()
        assert record is not None
        self.assertEqual(
            (record.uid, record.organizer, record.state),
            ("conf-1@example.com", "sip:alice@example.com", "scheduled"),
        )
        self.assertEqual(partstat(record, ROOM), "ACCEPTED")
        ((request, calendar),) = self.h.outgoing()
        self.assertEqual(str(request.uri), "sip:alice@192.0.2.10:5062")
        self.assertEqual(request.from_.uri.toString(), ROOM)
        self.assertEqual(calendar.value("METHOD"), "REPLY")
        self.assertEqual(attendee_of_reply(calendar), (ROOM, "ACCEPTED"))

    def test_applied_hook(self) -> None:
        """Each applied iTIP message tells the applied hooks its conference."""
        seen: List[str] = []
        self.h.handler.applied.append(seen.append)
        self.h.schedule(room=ROOM)
        self.assertEqual(seen, [ROOM])

    def test_reply_follows_the_200(self) -> None:
        """The iTIP REPLY is sent only after the 200 (on the next reactor turn)."""
        self.h.schedule()
        self.assertEqual(self.h.sender.sent, [])
        self.assertEqual(len(self.h.outgoing()), 1)

    def test_legacy_body(self) -> None:
        """The legacy xCal of iSIP 4.1 schedules its conference."""
        from tests.unit.app.test_calendarbody import LEGACY

        john = SIPIdentity("john.doe", "example.com")
        response = self.h.message(LEGACY, john, "sip:conference-ds76fhzxq3@example.com")
        self.assertEqual(response.code, 200)
        record = self.h.record("sip:conference-ds76fhzxq3@example.com")
        assert record is not None
        self.assertEqual(record.organizer, "sip:john.doe@example.com")

    def test_text_calendar(self) -> None:
        """A text/calendar REQUEST is applied and answered in text/calendar."""
        response = self.h.message(
            conference_ical().encode(), ALICE, content_type="text/calendar;method=REQUEST"
        )
        self.assertEqual(response.code, 200)
        ((request, _),) = self.h.outgoing()
        self.assertTrue(str(request.header("content-type")).startswith("text/calendar"))

    def test_multipart_alternative(self) -> None:
        """A multipart/alternative REQUEST (iSIP 4.2) is applied."""
        ctype, body = build_multipart(
            [
                BodyPart("text/plain", b"Weekly sync, 1 Dec 09:00 UTC"),
                BodyPart(f"{XCAL};method=REQUEST;component=VEVENT", xcal(conference_ical())),
            ],
            "alternative",
        )
        self.assertEqual(self.h.message(body, ALICE, content_type=ctype).code, 200)
        self.assertIsNotNone(self.h.record())

    def test_factory(self) -> None:
        """The factory URI creates a conference at a URI the server picks."""
        response = self.h.schedule(uri=FACTORY, room=FACTORY)
        self.assertEqual(response.code, 200)
        record = self.h.record("sip:conf-fixed@example.com")
        assert record is not None
        self.assertEqual(partstat(record, "sip:conf-fixed@example.com"), "ACCEPTED")
        ((_, calendar),) = self.h.outgoing()
        self.assertEqual(attendee_of_reply(calendar)[0], "sip:conf-fixed@example.com")
        (event,) = calendar.subcomponents("VEVENT")
        self.assertEqual(event.value("CONFERENCE"), "sip:conf-fixed@example.com")

    def test_factory_without_room(self) -> None:
        """A REQUEST to the factory naming no room gets the new URI as ROOM."""
        text = conference_ical().replace(
            "ATTENDEE;CUTYPE=ROOM;ROLE=NON-PARTICIPANT;PARTSTAT=NEEDS-ACTION:sip:conf@example.com\r\n",
            "",
        )
        self.assertEqual(self.h.message(xcal(text), ALICE, FACTORY).code, 200)
        record = self.h.record("sip:conf-fixed@example.com")
        self.assertEqual(partstat(record, "sip:conf-fixed@example.com"), "ACCEPTED")

    def test_factory_update_by_uid(self) -> None:
        """A later REQUEST to the factory with the same UID updates that conference."""
        self.h.schedule(uri=FACTORY, room=FACTORY)
        self.h.handler.uri_factory = lambda domain: "sip:conf-other@example.com"
        response = self.h.schedule(uri=FACTORY, room=FACTORY, sequence=1)
        self.assertEqual(response.code, 200)
        record = self.h.record("sip:conf-fixed@example.com")
        assert record is not None
        self.assertEqual((record.sequence, record.version), (1, 2))
        self.assertIsNone(self.h.record("sip:conf-other@example.com"))

    def test_request_uri_without_user(self) -> None:
        """A Request-URI naming only the host addresses the To URI (iSIP 4.1)."""
        body = xcal(conference_ical(room=ROOM))
        response = self.h.message(body, ALICE, "sip:example.com", to=f"<{ROOM}>")
        self.assertEqual(response.code, 200)
        self.assertIsNotNone(self.h.record())

    def test_update(self) -> None:
        """A REQUEST with a higher SEQUENCE updates the conference."""
        self.h.schedule()
        response = self.h.schedule(sequence=1, start=T0 + timedelta(hours=2))
        self.assertEqual(response.code, 200)
        record = self.h.record()
        assert record is not None
        self.assertEqual((record.sequence, record.version), (1, 2))

    def test_stale_ignored(self) -> None:
        """A stale REQUEST (same SEQUENCE and DTSTAMP) is 200 with a Warning, ignored."""
        self.h.schedule(sequence=2)
        self.h.outgoing()
        response = self.h.schedule(sequence=2)
        self.assertEqual(response.code, 200)
        self.assertIn("3.4", warning(response))
        record = self.h.record()
        assert record is not None
        self.assertEqual(record.version, 1)
        self.assertEqual(self.h.outgoing(), [])

    def test_non_organizer_update(self) -> None:
        """Bob may not update Alice's conference: 403 with the iTIP reason."""
        self.h.schedule()
        response = self.h.schedule(BOB, sequence=1)
        self.assertEqual(response.code, 403)
        self.assertIn("3.8", warning(response))

    def test_organizer_mismatch(self) -> None:
        """Bob, authenticated, may not send a REQUEST whose ORGANIZER is Alice."""
        response = self.h.schedule(BOB)
        self.assertEqual(response.code, 403)
        self.assertIn("not the ORGANIZER", warning(response))
        self.assertIsNone(self.h.record())

    def test_from_is_ignored(self) -> None:
        """The From header does not count: Bob's From with Alice's body and identity works."""
        request = make_request(
            "MESSAGE",
            ROOM,
            body=xcal(conference_ical()),
            headers=[("Content-Type", XCAL)],
            from_="<sip:bob@example.com>;tag=x",
        )
        answer = self.h.router.dispatch(
            request, RequestContext(PEER, self.h.clock.seconds(), identity=ALICE)
        )
        self.assertEqual(self.successResultOf(answer).code, 200)  # type: ignore[arg-type]

    def test_not_a_room(self) -> None:
        """A REQUEST to a URI the body does not invite as ROOM/RESOURCE is 404."""
        response = self.h.schedule(room="sip:elsewhere@example.com")
        self.assertEqual(response.code, 404)

    def test_registered_user_uri(self) -> None:
        """A conference cannot be created at a registered user's address."""
        response = self.h.schedule(uri="sip:bob@example.com", room="sip:bob@example.com")
        self.assertEqual(response.code, 403)
        self.assertIn("registered user", warning(response))

    def test_several_uids_refused(self) -> None:
        """A conference is one event: two UIDs to one conference URI are 400."""
        first = parse_ical_calendar(conference_ical())
        second = parse_ical_calendar(conference_ical(uid="other@example.com"))
        first.components.extend(second.components)
        response = self.h.message(to_xcal(first))
        self.assertEqual(response.code, 400)

    def test_master_and_override(self) -> None:
        """Several components of one METHOD (a master and an override) apply together."""
        calendar = parse_ical_calendar(conference_ical(rrule="FREQ=WEEKLY;COUNT=4"))
        override = parse_ical_calendar(
            conference_ical(
                start=T0 + timedelta(days=7, hours=3),
                extra=f"RECURRENCE-ID:{stamp(T0 + timedelta(days=7))}",
            )
        ).components[0]
        calendar.components.append(override)
        self.assertEqual(self.h.message(to_xcal(calendar)).code, 200)
        record = self.h.record()
        assert record is not None
        found = instances(calendar_of(record), T0, T0 + timedelta(days=30))
        self.assertEqual(
            [i.start for i in found],
            [T0, T0 + timedelta(days=7, hours=3), T0 + timedelta(days=14), T0 + timedelta(days=21)],
        )

    def test_bad_body(self) -> None:
        """A malformed body is 400 with a Warning."""
        response = self.h.message(b"<not-xcal/>")
        self.assertEqual(response.code, 400)
        self.assertTrue(warning(response))

    def test_other_type_415(self) -> None:
        """A body type the scheduler does not read is 415 with Accept."""
        response = self.h.message(b"hello", content_type="text/plain")
        self.assertEqual(response.code, 415)
        self.assertIn("application/calendar+xml", str(response.header("accept")))

    def test_unauthenticated(self) -> None:
        """Without an identity nothing is scheduled (403)."""
        self.assertEqual(self.h.schedule(None).code, 403)  # type: ignore[arg-type]

    def test_organizer_cap(self) -> None:
        """The per-organizer cap refuses one conference too many with 403."""
        h = Harness(max_per_organizer=1)
        self.assertEqual(h.schedule().code, 200)
        response = h.schedule(uri="sip:room2@example.com", room="sip:room2@example.com", uid="u2")
        self.assertEqual(response.code, 403)

    def test_concurrent_write_retried(self) -> None:
        """A write lost to a concurrent writer is retried and succeeds."""
        store = self.h.stores.conferences
        assert isinstance(store, MemoryConferenceStore)
        real = store.put
        calls: List[int] = []

        def flaky(record: ConferenceRecord, expected: Optional[int], **kw: Any) -> Any:
            calls.append(1)
            if len(calls) == 1:
                return fail(ConflictError("raced"))
            return real(record, expected, **kw)

        self.h.handler.conferences = store
        store.put = flaky  # type: ignore[method-assign,assignment]
        self.assertEqual(self.h.schedule().code, 200)
        self.assertEqual(len(calls), 2)


class OutsideBusyTests(SynchronousTestCase):
    """
    A conference address with busy time outside (its CalDAV calendar):
    new bookings over it are DECLINED, others and updates are not checked
    against it.
    """

    def setUp(self) -> None:
        self.h = Harness()
        self.asked: List[Tuple[str, float]] = []
        self.busy: List[Tuple[str, Tuple[datetime, datetime]]] = [
            ("BUSY", (T0 + timedelta(minutes=10), T0 + timedelta(minutes=20)))
        ]

        def external(uri: str, now: float) -> Deferred[Any]:
            self.asked.append((uri, now))
            return succeed(list(self.busy))

        self.h.handler.external_busy = external
        self.h.handler.external_window = timedelta(days=30)

    def test_busy_declined(self) -> None:
        """A new booking over the room's outside busy time gets REPLY DECLINED; nothing stored."""
        self.assertEqual(self.h.schedule(room=ROOM).code, 200)
        ((_, calendar),) = self.h.outgoing()
        self.assertEqual(attendee_of_reply(calendar), (ROOM, "DECLINED"))
        self.assertIsNone(self.h.record())
        self.assertEqual([uri for uri, _ in self.asked], [ROOM])

    def test_free_accepted(self) -> None:
        """Busy time at another hour, or marked FREE, lets the booking in."""
        self.busy = [
            ("BUSY", (T0 + timedelta(hours=3), T0 + timedelta(hours=4))),
            ("FREE", (T0, T0 + timedelta(hours=1))),
        ]
        self.assertEqual(self.h.schedule(room=ROOM).code, 200)
        ((_, calendar),) = self.h.outgoing()
        self.assertEqual(attendee_of_reply(calendar), (ROOM, "ACCEPTED"))
        self.assertIsNotNone(self.h.record())

    def test_update_not_checked(self) -> None:
        """An update of a stored booking is not declined by outside busy time (it may be itself)."""
        self.busy = []
        self.h.schedule(room=ROOM)
        self.h.outgoing()
        self.busy = [("BUSY", (T0, T0 + timedelta(hours=1)))]
        self.asked.clear()
        self.assertEqual(self.h.schedule(room=ROOM, sequence=1).code, 200)
        self.assertEqual(self.asked, [])
        record = self.h.record()
        assert record is not None
        self.assertEqual(record.version, 2)


class BookingTests(SynchronousTestCase):
    """
    A conference URI is a resource: overlapping bookings are DECLINED.
    """

    def setUp(self) -> None:
        self.h = Harness()
        self.h.schedule(room=ROOM)
        self.h.outgoing()

    def test_conflict_declined(self) -> None:
        """Another organizer's overlapping booking gets REPLY DECLINED, 4.0."""
        response = self.h.schedule(
            CAROL,
            uid="carol-1@example.com",
            organizer="sip:carol@example.com",
            start=T0 + timedelta(minutes=30),
        )
        self.assertEqual(response.code, 200)
        ((request, calendar),) = self.h.outgoing()
        self.assertEqual(str(request.uri), "sip:carol@192.0.2.12:5062")
        self.assertEqual(attendee_of_reply(calendar), (ROOM, "DECLINED"))
        (event,) = calendar.subcomponents("VEVENT")
        self.assertEqual(event.get("REQUEST-STATUS").values[0], "4.0")  # type: ignore[union-attr]
        record = self.h.record()
        assert record is not None
        self.assertEqual((record.uid, record.version), ("conf-1@example.com", 1))

    def test_free_slot_accepted(self) -> None:
        """A booking of the same room at another time is accepted beside the first."""
        response = self.h.schedule(
            CAROL,
            uid="carol-1@example.com",
            organizer="sip:carol@example.com",
            start=T0 + timedelta(days=1),
        )
        self.assertEqual(response.code, 200)
        ((_, calendar),) = self.h.outgoing()
        self.assertEqual(attendee_of_reply(calendar), (ROOM, "ACCEPTED"))
        record = self.h.record()
        assert record is not None
        self.assertEqual(record.uid, "conf-1@example.com")
        self.assertEqual(len(instances(calendar_of(record), T0, T0 + timedelta(days=3))), 2)

    def test_reschedule_into_conflict(self) -> None:
        """Moving a booking onto another one is DECLINED too."""
        self.h.schedule(
            CAROL,
            uid="carol-1@example.com",
            organizer="sip:carol@example.com",
            start=T0 + timedelta(days=1),
        )
        self.h.outgoing()
        self.h.schedule(
            CAROL,
            uid="carol-1@example.com",
            organizer="sip:carol@example.com",
            start=T0,
            sequence=1,
        )
        ((_, calendar),) = self.h.outgoing()
        self.assertEqual(attendee_of_reply(calendar), (ROOM, "DECLINED"))

    def test_cancelled_booking_frees_the_room(self) -> None:
        """Once the first booking is cancelled, an overlapping one is accepted."""
        self.h.schedule(method="CANCEL", sequence=1, status="CANCELLED")
        response = self.h.schedule(
            CAROL, uid="carol-1@example.com", organizer="sip:carol@example.com"
        )
        self.assertEqual(response.code, 200)
        ((_, calendar),) = self.h.outgoing()
        self.assertEqual(attendee_of_reply(calendar), (ROOM, "ACCEPTED"))
        record = self.h.record()
        assert record is not None
        self.assertEqual(
            (record.uid, record.organizer), ("carol-1@example.com", "sip:carol@example.com")
        )


ALICE_AOR = "sip:alice@example.com"
PRIVATE = "<http://cfg.example.com/private>;disposition=configuration"
ACCOUNTS = CheckerAccounts(
    [InMemoryUsernamePasswordDatabaseDontUse(alice=b"a", bob=b"b", carol=b"c", dave=b"d")]
)


def bound(response: Response) -> List[Optional[str]]:
    """
    The URIs of the Binding headers of a BIND answer.
    """
    assert response.code == 200, response
    return [v.uri for f in response.header_fields("binding") for v in parse_binding(f)]


class AddressTakeoverTests(SynchronousTestCase):
    """
    A conference is never created at a user's address: not at a known account's, a
    registered one's, or an address with bindings or calendar entries of its own.
    """

    def setUp(self) -> None:
        self.h = Harness(accounts=ACCOUNTS, registered=("bob", "carol", "dave"))

    def takeover(self, uri: str = ALICE_AOR) -> Response:
        """
        Bob's REQUEST that invites C{uri} as the room.
        """
        return self.h.schedule(
            BOB, uri=uri, organizer="sip:bob@example.com", attendees=("sip:carol@example.com",)
        )

    def test_unregistered_account(self) -> None:
        """Alice's address is no room while she is offline, and her bindings stay hers."""
        response = self.takeover()
        self.assertEqual(response.code, 403)
        self.assertIn(f"{ALICE_AOR} is a user's account", warning(response))
        self.assertIsNone(self.h.record(ALICE_AOR))
        self.assertEqual(self.h.outgoing(), [])
        evil = "<http://evil.example.com/cfg>;disposition=configuration"
        self.assertEqual(self.h.bind(ALICE_AOR, BOB, evil).code, 403)
        self.assertEqual(self.h.bind(ALICE_AOR, ALICE, PRIVATE).code, 200)
        self.assertEqual(bound(self.h.bind(ALICE_AOR, BOB)), [])
        self.assertEqual(bound(self.h.bind(ALICE_AOR, ALICE)), ["http://cfg.example.com/private"])

    def test_address_with_bindings(self) -> None:
        """Without accounts to ask, an address with bindings of its own is a user's."""
        self.h = Harness(registered=("bob", "carol"))
        self.assertEqual(self.h.bind(ALICE_AOR, ALICE, PRIVATE).code, 200)
        response = self.takeover()
        self.assertEqual(response.code, 403)
        self.assertIn("is a user's address (it has bindings)", warning(response))
        self.assertIsNone(self.h.record(ALICE_AOR))

    def test_address_with_calendar_entries(self) -> None:
        """An address with published calendar objects is a user's."""
        self.h = Harness(registered=("bob", "carol"))
        published = conference_ical(method="PUBLISH", attendees=(), uid="busy-1")
        self.assertEqual(self.h.message(xcal(published), ALICE, ALICE_AOR).code, 200)
        response = self.takeover()
        self.assertEqual(response.code, 403)
        self.assertIn("it has calendar entries", warning(response))

    def test_room_names_stay_free(self) -> None:
        """A name no user has becomes a conference, owned by the organizer who created it."""
        response = self.takeover("sip:weekly@example.com")
        self.assertEqual(response.code, 200)
        record = self.h.record("sip:weekly@example.com")
        assert record is not None
        self.assertEqual(record.owner, "sip:bob@example.com")

    def test_accounts_cannot_tell(self) -> None:
        """When accounts cannot be checked, only conf-... names (and the factory) are free."""
        accounts = CheckerAccounts([], complete=False)
        self.h = Harness(accounts=accounts, registered=("bob", "carol"))
        response = self.takeover("sip:weekly@example.com")
        self.assertEqual(response.code, 403)
        self.assertIn("conf-...@domain", warning(response))
        self.assertEqual(self.takeover(ALICE_AOR).code, 403)
        self.assertEqual(self.takeover("sip:conf-weekly@example.com").code, 200)


class BindingOwnershipTests(SynchronousTestCase):
    """
    A conference's bindings belong to its owner, the organizer who created
    it, not to whoever organizes its current booking; cancelling releases
    them.
    """

    def setUp(self) -> None:
        self.h = Harness()
        self.h.schedule(attendees=("sip:bob@example.com",))
        self.assertEqual(self.h.bind(ROOM, ALICE, PRIVATE).code, 200)
        self.h.outgoing()

    def carol_books(self, start: datetime) -> None:
        """
        Carol books Alice's room at C{start}, with herself and Dave as attendees.
        """
        response = self.h.schedule(
            CAROL,
            uid="carol-1@example.com",
            organizer="sip:carol@example.com",
            attendees=("sip:carol@example.com", "sip:dave@example.com"),
            start=start,
        )
        self.assertEqual(response.code, 200)
        ((_, calendar),) = self.h.outgoing()
        self.assertEqual(attendee_of_reply(calendar), (ROOM, "ACCEPTED"))

    def test_other_booking_sees_no_private_bindings(self) -> None:
        """Carol's booking of a free slot gives her and her attendees no sight or say."""
        self.carol_books(T0 + timedelta(days=1))
        self.assertEqual(bound(self.h.bind(ROOM, CAROL)), [])
        self.assertEqual(bound(self.h.bind(ROOM, DAVE)), [])
        self.assertEqual(bound(self.h.bind(ROOM, BOB)), ["http://cfg.example.com/private"])
        evil = "<http://evil.example.com/cfg>;disposition=configuration"
        self.assertEqual(self.h.bind(ROOM, CAROL, evil).code, 403)
        record = self.h.record()
        assert record is not None
        self.assertEqual(record.owner, "sip:alice@example.com")

    def test_cancel_releases_bindings(self) -> None:
        """Alice's CANCEL releases the room's bindings; Carol's later booking gets none of hers."""
        response = self.h.schedule(method="CANCEL", sequence=1, status="CANCELLED")
        self.assertEqual(response.code, 200)
        self.assertEqual(self.h.released, [ROOM])
        self.assertEqual(self.successResultOf(self.h.stores.bindings.bindings(ROOM, 0)), [])
        self.carol_books(T0)
        record = self.h.record()
        assert record is not None
        self.assertEqual(
            (record.organizer, record.owner), ("sip:carol@example.com", "sip:alice@example.com")
        )
        evil = "<http://evil.example.com/cfg>;disposition=configuration"
        self.assertEqual(self.h.bind(ROOM, CAROL, evil).code, 403)
        self.assertEqual(bound(self.h.bind(ROOM, CAROL)), [])
        self.assertEqual(self.h.bind(ROOM, ALICE, PRIVATE).code, 200)

    def test_room_in_use_keeps_bindings(self) -> None:
        """Cancelling one booking while another is live releases nothing."""
        self.carol_books(T0 + timedelta(days=1))
        self.h.schedule(method="CANCEL", sequence=1, status="CANCELLED")
        self.assertEqual(self.h.released, [])
        self.assertEqual(bound(self.h.bind(ROOM, ALICE)), ["http://cfg.example.com/private"])


class AttendeeTests(SynchronousTestCase):
    """
    CANCEL, REPLY, REFRESH and COUNTER on a stored conference.
    """

    def setUp(self) -> None:
        self.h = Harness()
        self.h.schedule(attendees=("sip:bob@example.com",))
        self.h.outgoing()

    def test_cancel(self) -> None:
        """The organizer's CANCEL cancels the conference."""
        response = self.h.schedule(method="CANCEL", sequence=1, status="CANCELLED")
        self.assertEqual(response.code, 200)
        record = self.h.record()
        assert record is not None
        self.assertEqual(record.state, "cancelled")

    def test_cancel_by_other(self) -> None:
        """An attendee's CANCEL is refused with 403."""
        response = self.h.schedule(BOB, method="CANCEL", sequence=1, status="CANCELLED")
        self.assertEqual(response.code, 403)
        record = self.h.record()
        assert record is not None
        self.assertEqual(record.state, "scheduled")

    def test_cancel_unknown(self) -> None:
        """A CANCEL for a conference that does not exist is 404."""
        response = self.h.schedule(uri="sip:nothing@example.com", method="CANCEL")
        self.assertEqual(response.code, 404)

    def test_reply(self) -> None:
        """Bob's REPLY sets his PARTSTAT and gives him a calendar entry."""
        response = self.h.message(xcal(reply_ical("sip:bob@example.com", "ACCEPTED")), BOB)
        self.assertEqual(response.code, 200)
        self.assertEqual(partstat(self.h.record(), "sip:bob@example.com"), "ACCEPTED")
        (entry,) = self.h.entries("sip:bob@example.com")
        self.assertEqual((entry.uid, entry.source), ("conf-1@example.com", "conference"))

    def test_reply_declined_removes_entry(self) -> None:
        """A later DECLINED takes the conference out of Bob's calendar."""
        self.h.message(xcal(reply_ical("sip:bob@example.com", "ACCEPTED")), BOB)
        self.h.message(
            xcal(reply_ical("sip:bob@example.com", "DECLINED", when=T0 + timedelta(minutes=1))),
            BOB,
        )
        self.assertEqual(partstat(self.h.record(), "sip:bob@example.com"), "DECLINED")
        self.assertEqual(self.h.entries("sip:bob@example.com"), [])

    def test_reply_for_someone_else(self) -> None:
        """Carol may not answer for Bob: 403."""
        response = self.h.message(xcal(reply_ical("sip:bob@example.com", "DECLINED")), CAROL)
        self.assertEqual(response.code, 403)
        self.assertEqual(partstat(self.h.record(), "sip:bob@example.com"), "NEEDS-ACTION")

    def test_reply_from_uninvited(self) -> None:
        """A REPLY from someone not invited is 403."""
        response = self.h.message(xcal(reply_ical("sip:carol@example.com", "ACCEPTED")), CAROL)
        self.assertEqual(response.code, 403)

    def test_organizer_entry(self) -> None:
        """The organizer's calendar holds the conference; cancelling removes it."""
        (entry,) = self.h.entries("sip:alice@example.com")
        self.assertEqual(entry.source, "conference")
        self.h.schedule(method="CANCEL", sequence=1, status="CANCELLED")
        self.assertEqual(self.h.entries("sip:alice@example.com"), [])

    def test_refresh(self) -> None:
        """Bob's REFRESH gets the current REQUEST sent to him."""
        body = xcal(reply_ical("sip:bob@example.com", "NEEDS-ACTION", method="REFRESH"))
        self.assertEqual(self.h.message(body, BOB).code, 200)
        ((request, calendar),) = self.h.outgoing()
        self.assertEqual(str(request.uri), "sip:bob@192.0.2.11:5062")
        self.assertEqual(calendar.value("METHOD"), "REQUEST")
        (event,) = calendar.subcomponents("VEVENT")
        self.assertEqual(event.value("UID"), "conf-1@example.com")

    def test_refresh_by_stranger(self) -> None:
        """A REFRESH from someone not invited is 403 and sends nothing."""
        body = xcal(reply_ical("sip:carol@example.com", "NEEDS-ACTION", method="REFRESH"))
        self.assertEqual(self.h.message(body, CAROL).code, 403)
        self.assertEqual(self.h.outgoing(), [])

    def test_counter(self) -> None:
        """Bob's COUNTER is forwarded to the organizer."""
        body = xcal(reply_ical("sip:bob@example.com", "NEEDS-ACTION", method="COUNTER"))
        self.assertEqual(self.h.message(body, BOB).code, 200)
        ((request, calendar),) = self.h.outgoing()
        self.assertEqual(str(request.uri), "sip:alice@192.0.2.10:5062")
        self.assertEqual(calendar.value("METHOD"), "COUNTER")

    def test_reply_unknown_conference(self) -> None:
        """A REPLY to a conference that does not exist is 404."""
        body = xcal(reply_ical("sip:bob@example.com", "ACCEPTED"))
        self.assertEqual(self.h.message(body, BOB, "sip:gone@example.com").code, 404)


class RecurringTests(SynchronousTestCase):
    """
    Recurring conferences: RRULE, EXDATE, instance CANCEL and REPLY.
    """

    def setUp(self) -> None:
        self.h = Harness()
        self.h.schedule(
            rrule="FREQ=WEEKLY;COUNT=4",
            exdate=T0 + timedelta(days=14),
            attendees=("sip:bob@example.com",),
        )

    def starts(self) -> List[datetime]:
        record = self.h.record()
        assert record is not None
        return [i.start for i in instances(calendar_of(record), T0, T0 + timedelta(days=60))]

    def test_rrule_exdate(self) -> None:
        """The stored conference has the RRULE's instances minus the EXDATE."""
        self.assertEqual(self.starts(), [T0, T0 + timedelta(days=7), T0 + timedelta(days=21)])

    def test_cancel_one_instance(self) -> None:
        """CANCEL with a RECURRENCE-ID takes out just that instance."""
        text = conference_ical(
            method="CANCEL",
            sequence=1,
            status="CANCELLED",
            extra=f"RECURRENCE-ID:{stamp(T0 + timedelta(days=7))}",
            start=T0 + timedelta(days=7),
        )
        self.assertEqual(self.h.message(xcal(text)).code, 200)
        self.assertEqual(self.starts(), [T0, T0 + timedelta(days=21)])
        record = self.h.record()
        assert record is not None
        self.assertEqual(record.state, "scheduled")

    def test_reply_one_instance(self) -> None:
        """A REPLY for one instance creates its override with Bob's PARTSTAT."""
        rid = T0 + timedelta(days=7)
        body = xcal(reply_ical("sip:bob@example.com", "ACCEPTED", rid=rid))
        self.assertEqual(self.h.message(body, BOB).code, 200)
        record = self.h.record()
        assert record is not None
        override = [
            e for e in calendar_of(record).subcomponents("VEVENT") if e.get("RECURRENCE-ID")
        ]
        self.assertEqual(len(override), 1)
        self.assertEqual(len(self.h.entries("sip:bob@example.com")), 1)


class PublishTests(SynchronousTestCase):
    """
    PUBLISH to one's own address keeps published busy time.
    """

    def setUp(self) -> None:
        self.h = Harness()

    def publish_body(self, organizer: str = "sip:alice@example.com") -> bytes:
        first = parse_ical_calendar(
            conference_ical(method="PUBLISH", uid="p1", organizer=organizer, attendees=())
        )
        second = parse_ical_calendar(
            conference_ical(
                method="PUBLISH",
                uid="p2",
                organizer=organizer,
                attendees=(),
                start=T0 + timedelta(days=2),
            )
        )
        first.components.extend(second.components)
        return to_xcal(first)

    def test_publish_two(self) -> None:
        """Two published events become two entries of source publish."""
        response = self.h.message(self.publish_body(), ALICE, "sip:alice@example.com")
        self.assertEqual(response.code, 200)
        entries = self.h.entries("sip:alice@example.com")
        self.assertEqual(
            [(e.uid, e.source) for e in entries], [("p1", "publish"), ("p2", "publish")]
        )
        self.assertEqual(self.h.outgoing(), [])

    def test_publish_for_someone_else(self) -> None:
        """Bob may not publish Alice's busy time to Alice's address: 403."""
        response = self.h.message(self.publish_body(), BOB, "sip:alice@example.com")
        self.assertEqual(response.code, 403)
        self.assertEqual(self.h.entries("sip:alice@example.com"), [])

    def test_publish_to_other_address(self) -> None:
        """Alice's PUBLISH to Bob's address is refused."""
        response = self.h.message(self.publish_body(), ALICE, "sip:bob@example.com")
        self.assertEqual(response.code, 403)
        self.assertEqual(self.h.entries("sip:bob@example.com"), [])

    def test_publish_update_stale(self) -> None:
        """Publishing the same objects again is ignored (stale) with a Warning."""
        self.h.message(self.publish_body(), ALICE, "sip:alice@example.com")
        response = self.h.message(self.publish_body(), ALICE, "sip:alice@example.com")
        self.assertEqual(response.code, 200)
        self.assertIn("3.4", warning(response))


class DelegationTests(SynchronousTestCase):
    """
    SENT-BY delegates approved by C{sent-by} BIND bindings.
    """

    def setUp(self) -> None:
        self.h = Harness()

    def approve(self, principal: str, delegate: str) -> None:
        now = self.h.clock.seconds()
        record = BindingRecord(principal, "sent-by", delegate, now + 3600, "e1")
        self.h.stores.bindings.apply(principal, [], [record], now, max_bindings=10)

    def delegated(self) -> bytes:
        return xcal(
            conference_ical().replace(
                "ORGANIZER;CN=Alice:", 'ORGANIZER;CN=Alice;SENT-BY="sip:dave@example.com":'
            )
        )

    def test_approved(self) -> None:
        """Dave, Alice's approved delegate, may schedule for her."""
        self.approve("sip:alice@example.com", "sip:dave@example.com")
        self.assertEqual(self.h.message(self.delegated(), DAVE).code, 200)
        record = self.h.record()
        assert record is not None
        self.assertEqual(record.organizer, "sip:alice@example.com")

    def test_not_approved(self) -> None:
        """Without a sent-by binding Dave's REQUEST is 403."""
        self.approve("sip:alice@example.com", "sip:carol@example.com")
        response = self.h.message(self.delegated(), DAVE)
        self.assertEqual(response.code, 403)
        self.assertIn("approved delegate", warning(response))

    def test_principals(self) -> None:
        """Only properties with SENT-BY name principals to look up."""
        calendar = parse_ical_calendar(conference_ical())
        self.assertEqual(delegating_principals(calendar), [])
        calendar = parse_ical_calendar(
            conference_ical().replace("ORGANIZER;", 'ORGANIZER;SENT-BY="sip:d@x";')
        )
        self.assertEqual(delegating_principals(calendar), ["sip:alice@example.com"])

    def test_approval_read_behind_cache(self) -> None:
        """Approvals are read from the store itself, not from a binding cache's older read."""
        store = memory_stores().bindings
        cached = CachedBindingStore(store, None, lambda: 50.0)
        self.assertEqual(self.successResultOf(cached.bindings("sip:a@x", 50.0)), [])
        approval = BindingRecord("sip:a@x", "sent-by", "sip:d@x", 100.0, "e", False, "sip:a@x")
        self.successResultOf(store.apply("sip:a@x", [], [approval], 50.0, max_bindings=9))
        policy = self.successResultOf(
            Deferred.fromCoroutine(SentByApprovals.load(cached, ["sip:a@x"], 50.0))
        )
        self.assertTrue(policy.is_delegate_approved("sip:a@x", "sip:d@x", 60.0))

    def test_expired_approval(self) -> None:
        """An approval is only good until it expires."""
        policy = SentByApprovals({"sip:a@x": [("sip:d@x", 100.0)]})
        self.assertTrue(policy.is_delegate_approved("sip:a@x", "sip:d@x", 99.0))
        self.assertFalse(policy.is_delegate_approved("sip:a@x", "sip:d@x", 100.0))
        self.assertFalse(policy.is_delegate_approved("sip:a@x", "sip:e@x", 99.0))


class UndeliverableTests(SynchronousTestCase):
    """
    iTIP answers to addresses that cannot be reached.
    """

    def test_unregistered_organizer(self) -> None:
        """A REPLY to an unregistered organizer is not sent; the 200 stands."""
        h = Harness()
        body = conference_ical(organizer="sip:zed@example.com")
        self.assertEqual(h.message(xcal(body), SIPIdentity("zed", "example.com")).code, 200)
        self.assertEqual(h.outgoing(), [])
        self.assertIsNotNone(h.record())

    def test_foreign_organizer(self) -> None:
        """A REPLY to an organizer of another domain is not sent; the 200 stands."""
        h = Harness()
        body = conference_ical(organizer="sip:zed@elsewhere.org")
        self.assertEqual(h.message(xcal(body), SIPIdentity("zed", "elsewhere.org")).code, 200)
        self.assertEqual(h.outgoing(), [])


class InstallTests(SynchronousTestCase):
    """
    Wiring into a service.
    """

    def test_install(self) -> None:
        """install_scheduler registers a MESSAGE handler with the router."""

        router = CoreRouter(["example.com"], tag_factory=lambda: "t")
        sender = RecordingSender()
        handler = install_scheduler(
            router,
            sender,
            memory_stores(),
            reactor=Clock(),
            endpoint=lambda: None,
            max_per_organizer=3,
        )
        self.assertIs(router.handler_for("MESSAGE"), handler)
        self.assertEqual(handler.max_per_organizer, 3)
        assert handler.messenger is not None
        self.assertIs(handler.messenger.sender, sender)
        self.assertIsNone(handler.messenger.endpoint())
        self.assertIsNone(handler.messenger.sign)
