# -*- test-case-name: tests.unit.test_unauthenticated -*-
"""
Nothing an unauthenticated peer sends makes the server store
anything.  Every method, to the server, a user and a conference, without
credentials and with forged ones, through the real service and handlers
over memory stores; the stores must be exactly as before.
"""

from __future__ import annotations

import copy
from typing import Any, Dict, Iterable, List, Optional, Tuple

from twisted.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
from twisted.trial.unittest import SynchronousTestCase

from conference.records import BindingRecord, CalendarEntry, RegistrationBinding
from conference.service import ConferenceService, ServerConfig
from conference.sip.headers import KNOWN_METHODS
from conference.sip.message import Response
from conference.sip.transaction import Peer
from conference.store.cache import CachedBindingStore
from conference.store.conferencecache import CachedConferenceStore
from conference.store.stores import Stores
from conference.store.timing import TimedStore
from conference.testing import memory_stores
from tests.builders import parse_response, request_bytes
from tests.unit.app.calendars import T0, conference_calendar, conference_record
from tests.unit.test_service import UDPMemoryReactor

STRANGER = Peer("UDP", "192.0.2.50", 5062)
CONFERENCE = "sip:conf@example.com"
ALICE = "sip:alice@example.com"
BOB = "sip:bob@example.com"
TARGETS = ("sip:example.com", ALICE, CONFERENCE)

SDP = (
    b"v=0\r\no=- 1 1 IN IP4 192.0.2.50\r\ns=-\r\nc=IN IP4 192.0.2.50\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)
ITIP = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nMETHOD:REQUEST\r\n"
    "BEGIN:VEVENT\r\nUID:evil@example.com\r\nDTSTAMP:20261201T080000Z\r\n"
    "DTSTART:20261202T090000Z\r\nDTEND:20261202T100000Z\r\n"
    f"ORGANIZER:{ALICE}\r\nATTENDEE:{CONFERENCE}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
).encode()
FORGED = (
    'Digest username="alice", realm="example.com", nonce="bm9ub25jZQ", '
    'uri="sip:example.com", response="00000000000000000000000000000000", algorithm=MD5'
)


def extras(method: str, target: str) -> Tuple[List[Tuple[str, str]], bytes]:
    """
    The headers and body that make C{method} to C{target} a request its
    handler would act on if it were authenticated.
    """
    contact = ("Contact", "<sip:mallory@192.0.2.50:5062>")
    if method == "INVITE":
        return [contact, ("Content-Type", "application/sdp")], SDP
    if method == "REGISTER":
        return [contact, ("Expires", "3600")], b""
    if method == "BIND":
        return [
            contact,
            ("Binding", "<http://evil.example/>;disposition=web;expires=3600"),
        ], b""
    if method == "SUBSCRIBE":
        return [contact, ("Event", "binding"), ("Expires", "600")], b""
    if method == "MESSAGE":
        return [("Content-Type", "text/calendar; method=REQUEST")], ITIP
    if method == "PUBLISH":
        return [("Event", "presence"), ("Expires", "60")], b""
    if method == "REFER":
        return [contact, ("Refer-To", f"<{BOB}>")], b""
    return [contact], b""


def snapshot(stores: Stores) -> Dict[str, Any]:
    """
    A deep copy of every memory store's contents (behind the service's
    timing proxies and caches, whose reads change nothing stored).
    """
    state: Dict[str, Any] = {}
    for name in ("conferences", "calendars", "registrations", "bindings"):
        store = getattr(stores, name)
        while isinstance(store, (CachedConferenceStore, CachedBindingStore, TimedStore)):
            store = store._target if isinstance(store, TimedStore) else store.store
        state[name] = copy.deepcopy(
            {k: v for k, v in vars(store).items() if isinstance(v, (dict, list, set))}
        )
    return state


class RecordingSender:
    """
    The UDP transport, keeping what the server sends.
    """

    def __init__(self) -> None:
        self.sent: List[bytes] = []

    def send_bytes(self, data: bytes, host: str, port: int) -> None:
        self.sent.append(data)

    def local_address(self) -> Tuple[str, int]:
        return ("192.0.2.10", 5060)

    def responses(self) -> List[Response]:
        return [parse_response(d) for d in self.sent if d.startswith(b"SIP/2.0")]


class UnauthenticatedTests(SynchronousTestCase):
    """
    Requests from a stranger leave every store unchanged.
    """

    def make(self, checkers: Iterable[Any]) -> None:
        self.reactor = UDPMemoryReactor()
        self.reactor.advance(T0.timestamp())  # the seeded conference is open
        self.stores = memory_stores()
        config = ServerConfig(
            listen=["tcp:0:interface=192.0.2.10"],
            domains=["example.com"],
            store="memory",
            checkers=list(checkers),
        )
        self.service = ConferenceService(config, reactor=self.reactor, stores=self.stores)
        self.service.startService()
        self.successResultOf(self.service.ready)
        self.sender = RecordingSender()
        self.service.sip.add_sender(None, self.sender)
        self.seed()
        self.before = snapshot(self.stores)

    def seed(self) -> None:
        """
        Something in every store for the requests to aim at.
        """
        now = self.reactor.seconds()
        record = conference_record(conference_calendar(), CONFERENCE)
        self.successResultOf(self.stores.conferences.put(record, None))
        self.successResultOf(
            self.stores.calendars.put_entry(CalendarEntry(BOB, "busy-1", b"<x/>", updated=now))
        )
        self.successResultOf(
            self.stores.registrations.set_bindings(
                BOB, [RegistrationBinding("<sip:bob@192.0.2.9>", now + 3600, None, "c", 1)], [], now
            )
        )
        for owner in (ALICE, CONFERENCE):
            records = [
                BindingRecord(
                    owner, "web", f"http://{n}.example/", now + 3600, f"e-{n}", public=True
                )
                for n in ("a", "b")
            ]
            self.successResultOf(
                self.stores.bindings.apply(owner, [], records, now, max_bindings=32)
            )

    def send_all(self, authorization: Optional[str] = None) -> List[Tuple[str, str, int]]:
        """
        Every known method to every target; the final answers.
        """
        answers: List[Tuple[str, str, int]] = []
        counter = 0
        for target in TARGETS:
            for method in sorted(KNOWN_METHODS):
                counter += 1
                headers, body = extras(method, target)
                if authorization is not None:
                    headers = [*headers, ("Authorization", authorization)]
                to = f"<{target}>" if method != "BYE" else f"<{target}>;tag=dialog"
                data = request_bytes(
                    method,
                    target,
                    branch=f"z9hG4bKstranger{counter}",
                    call_id=f"stranger-{counter}",
                    via_host="192.0.2.50:5062",
                    from_="<sip:mallory@evil.example>;tag=m1",
                    to=to,
                    headers=headers,
                    body=body,
                )
                count = len(self.sender.sent)
                self.service.sip.datagram_received(data, STRANGER)
                finals = [r.code for r in self.sender.responses()[count:] if r.code >= 200] or [0]
                answers.append((method, target, finals[-1]))
        self.reactor.advance(1)
        return answers

    def check(self, answers: List[Tuple[str, str, int]]) -> None:
        self.assertEqual(snapshot(self.stores), self.before)
        by_method: Dict[str, List[int]] = {}
        for method, _, code in answers:
            by_method.setdefault(method, []).append(code)
        self.assertEqual(by_method["ACK"], [0, 0, 0])  # never answered
        # The handlers did run: OPTIONS is answered (401 for forged credentials).
        self.assertEqual(len(set(by_method["OPTIONS"])), 1)
        self.assertIn(by_method["OPTIONS"][0], (200, 401))
        for method in ("REGISTER", "BIND", "MESSAGE"):
            for code in by_method[method]:
                self.assertIn(code, (401, 403, 404, 405), method)
        self.assertNotIn(500, [code for _, _, code in answers])
        self.service.stopService()

    def test_no_credentials_configured(self) -> None:
        """With no --auth, no method from a stranger changes any store."""
        self.make([])
        self.check(self.send_all())

    def test_no_credentials_sent(self) -> None:
        """With users configured, requests without credentials change no store."""
        self.make([InMemoryUsernamePasswordDatabaseDontUse(alice=b"secret")])
        self.check(self.send_all())

    def test_forged_credentials(self) -> None:
        """Requests with a forged digest response change no store."""
        self.make([InMemoryUsernamePasswordDatabaseDontUse(alice=b"secret")])
        self.check(self.send_all(FORGED))

    def test_one_time_binding_not_consumed(self) -> None:
        """An anonymous OPTIONS query does not consume a public one-time binding."""
        self.make([])
        now = self.reactor.seconds()
        once = BindingRecord(
            ALICE, "web", "http://once.example/", now + 3600, "e-once", one_time=True, public=True
        )
        self.successResultOf(self.stores.bindings.apply(ALICE, [], [once], now, max_bindings=32))
        self.before = snapshot(self.stores)
        self.service.sip.datagram_received(
            request_bytes("OPTIONS", ALICE, via_host="192.0.2.50:5062"), STRANGER
        )
        self.assertEqual(self.sender.responses()[-1].code, 200)
        self.assertEqual(snapshot(self.stores), self.before)
        self.service.stopService()
