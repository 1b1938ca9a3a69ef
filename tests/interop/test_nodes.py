# -*- test-case-name: tests.interop.test_nodes -*-
"""
Two server processes sharing one PostgreSQL schema, as two nodes behind a
front end: a BIND acknowledged by node A reaches the binding subscription
held by node B, through the store's change feed (LISTEN/NOTIFY), and the
NOTIFY carries the new binding; a dial-out conference calls its attendee
once, not once per node.
"""

from __future__ import annotations

import socket
import time
from typing import Any, Generator, List, Optional

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.trial.unittest import TestCase

from conference.records import ConferenceRecord, RegistrationBinding
from conference.sip.message import Request, Response, make_response
from conference.sip.parser import parse_datagram
from conference.store import open_stores
from tests.interop.harness import ServerProcess
from tests.interop.test_bind import CONF, USERS, SIPClient, binding_uris, make_database
from tests.loopback.test_postgresql import fresh_schema

# The node, its subscription and its first NOTIFY must all be ready by then.
WAIT = 10.0


class Subscriber(SIPClient):
    """
    A client that holds a SUBSCRIBE dialog: it answers the NOTIFYs it gets
    with 200 and keeps them.
    """

    def __init__(self, port: int) -> None:
        super().__init__(port)
        self.notifies: List[Request] = []

    def pump(self, seconds: float) -> Optional[Response]:
        """Read for up to C{seconds}: keep and answer NOTIFYs; the first response."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data, source = self.sock.recvfrom(65536)
            except socket.timeout:
                return None
            message = parse_datagram(data)
            if isinstance(message, Request) and message.method == "NOTIFY":
                self.notifies.append(message)
                self.sock.sendto(make_response(message, 200).to_bytes(), source)
            elif isinstance(message, Response) and message.code >= 200:
                return message
        return None

    def subscribe(self) -> Response:
        """SUBSCRIBE to CONF's bindings (answering the digest challenge)."""
        headers = [
            ("Event", "binding"),
            ("Expires", "600"),
            ("Contact", f"<sip:alice@127.0.0.1:{self.local_port}>"),
        ]
        for _ in range(2):
            _, data = self.build("SUBSCRIBE", CONF, headers, uri=CONF)
            self.sock.sendto(data, ("127.0.0.1", self.port))
            response = self.pump(WAIT)
            assert response is not None, "no answer to SUBSCRIBE"
            if response.code != 401:
                return response
            self.learn(response)
        assert response is not None
        return response

    def wait_for(self, uri: str) -> List[str]:
        """The binding URIs of the first NOTIFY naming C{uri} (empty if none came)."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            for notify in self.notifies:
                uris = binding_uris(notify)
                if uri in uris:
                    return uris
            self.pump(0.2)
        return []


class SharedStoreTests(TestCase):
    """
    Two nodes on one PostgreSQL schema.
    """

    timeout = 60

    @inlineCallbacks
    def test_bind_on_a_notifies_subscriber_of_b(self) -> Generator[Deferred[Any], Any, None]:
        """A BIND on node A is NOTIFYed by node B to the subscription B holds."""
        store = f"postgresql:{fresh_schema(self)}"
        yield make_database(store)
        args = ["--auth", USERS, "--domain", "example.com", "--store", store]
        node_a = ServerProcess(args)
        self.addCleanup(node_a.cleanup)
        node_b = ServerProcess(args)
        self.addCleanup(node_b.cleanup)
        watcher = Subscriber(node_b.port)
        self.addCleanup(watcher.close)
        answer = watcher.subscribe()
        self.assertEqual(answer.code, 200, node_b.log()[-2000:])
        before = len(watcher.notifies)
        binder = SIPClient(node_a.port)
        self.addCleanup(binder.close)
        uri = "http://node-a.example.com/floor"
        bound = binder.request("BIND", CONF, [("Binding", f"<{uri}>;disposition=web")])
        self.assertEqual(bound.code, 200, node_a.log()[-2000:])
        self.assertIn(uri, binding_uris(bound))
        self.assertEqual(watcher.wait_for(uri), [uri], node_b.log()[-3000:])
        self.assertGreater(len(watcher.notifies), before)
        self.assertEqual(node_a.tracebacks() + node_b.tracebacks(), [])


DIAL_OUT_CALENDAR = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//tests//EN
BEGIN:VEVENT
UID:interop-dialout@example.com
DTSTAMP:20261130T090000Z
DTSTART:{start}
DTEND:{end}
ORGANIZER:sip:alice@example.com
ATTENDEE;CUTYPE=ROOM:sip:dialout@example.com
ATTENDEE;PARTSTAT=ACCEPTED:sip:bob@example.com
X-CONFERENCE-DIAL-OUT:TRUE
END:VEVENT
END:VCALENDAR
"""
# Seconds from now to the dial-out conference's DTSTART: both nodes must
# be serving (and have armed their timers) by then.
DIAL_OUT_IN = 12


@inlineCallbacks
def seed_dial_out(store: str, contact: str, start: float) -> Generator[Deferred[Any], Any, None]:
    """
    A dial-out conference starting at C{start} in C{store}, and bob
    registered at C{contact}.
    """
    from conference.calendar import parse_ical_calendar, to_xcal

    def stamp(moment: float) -> str:
        return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(moment))

    text = DIAL_OUT_CALENDAR.format(start=stamp(start), end=stamp(start + 3600))
    stores = yield open_stores(store, reactor)
    try:
        record = ConferenceRecord(
            uri="sip:dialout@example.com",
            uid="interop-dialout@example.com",
            organizer="sip:alice@example.com",
            calendar=to_xcal(parse_ical_calendar(text.replace("\n", "\r\n"))),
        )
        yield stores.conferences.put(record, None)
        now = time.time()
        binding = RegistrationBinding(contact, now + 3600, None, "interop-bob", 1)
        yield stores.registrations.set_bindings("sip:bob@example.com", [binding], [], now)
    finally:
        yield stores.close()


class DialOutTests(TestCase):
    """
    Two nodes sharing a store, one dial-out conference: the attendee is
    called once, not once per node.
    """

    timeout = 90

    @inlineCallbacks
    def test_called_once(self) -> Generator[Deferred[Any], Any, None]:
        """At DTSTART both nodes fire; the one that claims the instance calls bob, alone."""
        store = f"postgresql:{fresh_schema(self)}"
        yield make_database(store)
        bob = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(bob.close)
        bob.bind(("127.0.0.1", 0))
        contact = f"sip:bob@127.0.0.1:{bob.getsockname()[1]}"
        start = float(int(time.time()) + DIAL_OUT_IN)
        yield seed_dial_out(store, contact, start)
        args = ["--auth", USERS, "--domain", "example.com", "--store", store]
        nodes = [ServerProcess(args), ServerProcess(args)]
        for node in nodes:
            self.addCleanup(node.cleanup)
        calls = set()
        deadline = start + 8
        while time.time() < deadline:
            bob.settimeout(max(0.05, deadline - time.time()))
            try:
                data, source = bob.recvfrom(65536)
            except socket.timeout:
                break
            message = parse_datagram(data)
            if isinstance(message, Request) and message.method == "INVITE":
                calls.add(message.call_id)
                bob.sendto(make_response(message, 486, to_tag="bob1").to_bytes(), source)
        logs = "\n".join(node.log()[-2000:] for node in nodes)
        self.assertEqual(len(calls), 1, logs)
        self.assertEqual([t for node in nodes for t in node.tracebacks()], [], logs)
