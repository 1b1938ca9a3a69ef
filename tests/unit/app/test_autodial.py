# -*- test-case-name: tests.unit.app.test_autodial -*-
"""
Tests for L{conference.app.autodial}: the attendees of a conference that
says X-CONFERENCE-DIAL-OUT:TRUE are called at each DTSTART.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any, List, Optional, Tuple

from twisted.internet.defer import Deferred
from twisted.names import dns

from conference.app.autodial import CLAIM, NUDGE_HEADER, NUDGE_LATE, AutoDialOut
from conference.app.dialout import DialOut
from conference.calendar.recurrence import MAX_STEPS, Budget
from conference.records import ConferenceRecord, RegistrationBinding
from conference.sip.message import Request, Response, make_response
from conference.sip.transaction import Peer
from tests.builders import make_request
from tests.dnszone import srv
from tests.unit.app.calendars import T0
from tests.unit.app.controlfixture import CONF, ControlFixture
from tests.unit.transport.fakenet import FakeNetwork


class DialOutFixture(ControlFixture):
    """
    A conference store, bob and carol registered, INVITEs recorded.
    """

    def setUp(self) -> None:
        super().setUp()
        self.clock.advance(T0.timestamp() - 3600 - self.clock.seconds())  # an hour before
        self.invites: List[Tuple[Request, Peer]] = []
        dialout = DialOut(
            self.control,
            send_request=self.send_invite,
            send_ack=lambda request, peer: None,
            local_address=lambda peer: ("127.0.0.1", 5060),
        )
        self.autodial = AutoDialOut(dialout, self.clock)
        now = self.clock.seconds()
        for user, host in (("bob", "192.0.2.20"), ("carol", "192.0.2.30")):
            binding = RegistrationBinding(f"sip:{user}@{host}", now + 86400 * 3, None, "r", 1)
            self.successResultOf(
                self.stores.registrations.set_bindings(
                    f"sip:{user}@example.com", [binding], [], now
                )
            )

    def send_invite(self, request: Request, peer: Peer) -> Deferred[Response]:
        self.invites.append((request, peer))
        return Deferred()


class AutoDialOutTests(DialOutFixture):
    """
    Calls at DTSTART.
    """

    def test_calls_at_start(self) -> None:
        """At DTSTART the registered attendees are called, on behalf of the organizer."""
        self.store("X-CONFERENCE-DIAL-OUT:TRUE")
        self.successResultOf(self.autodial.start())
        self.clock.advance(3599)
        self.assertEqual(self.invites, [])
        self.clock.advance(1)
        self.assertEqual(
            sorted(str(r.uri) for r, _ in self.invites),
            ["sip:bob@192.0.2.20", "sip:carol@192.0.2.30"],
        )
        self.assertEqual(
            {r.header("referred-by") for r, _ in self.invites}, {"<sip:alice@example.com>"}
        )

    def test_recurring(self) -> None:
        """Each instance of a recurring conference is called again."""
        self.store("X-CONFERENCE-DIAL-OUT:TRUE\r\nRRULE:FREQ=DAILY;COUNT=2")
        self.successResultOf(self.autodial.start())
        self.clock.advance(3600)
        self.assertEqual(len(self.invites), 2)
        self.clock.advance(timedelta(days=1).total_seconds())
        self.assertEqual(len(self.invites), 4)

    def test_not_asked(self) -> None:
        """A conference that does not say so arms no timer and calls nobody."""
        self.successResultOf(self.autodial.start())
        self.assertEqual(self.autodial.timers, {})
        self.clock.advance(7200)
        self.assertEqual(self.invites, [])

    def test_cancelled(self) -> None:
        """Cancelling the conference disarms it."""
        record = self.store("X-CONFERENCE-DIAL-OUT:TRUE")
        self.successResultOf(self.autodial.start())
        cancelled = ConferenceRecord(**{**record.__dict__, "state": "cancelled"})
        self.successResultOf(self.stores.conferences.put(cancelled, record.version))
        self.autodial.changed(CONF)
        self.assertEqual(self.autodial.timers, {})
        self.clock.advance(7200)
        self.assertEqual(self.invites, [])

    def test_unexpandable_calendar(self) -> None:
        """A stored calendar past the expansion budget arms nothing and logs one error,
        within one bounded expansion a day."""
        self.store("X-CONFERENCE-DIAL-OUT:TRUE\r\nRRULE:FREQ=SECONDLY")
        errors = self.watch_errors()
        before = Budget.total
        self.successResultOf(self.autodial.start())
        self.assertEqual(self.autodial.timers, {})
        self.assertEqual(len(errors), 1, errors)
        self.assertNotIn("log_failure", errors[0])
        spent = Budget.total - before
        self.assertLessEqual(spent, MAX_STEPS + 1)
        self.autodial.changed(CONF)
        self.assertEqual(Budget.total - before, spent)  # the failure is cached
        self.clock.advance(7200)
        self.assertEqual(self.invites, [])

    def node(self) -> AutoDialOut:
        """Another node's dial-out over the same stores, calling through the same network."""
        dialout = DialOut(
            self.control,
            send_request=self.send_invite,
            send_ack=lambda request, peer: None,
            local_address=lambda peer: ("127.0.0.1", 5060),
        )
        return AutoDialOut(dialout, self.clock)

    def test_claim_recorded(self) -> None:
        """The node that calls writes the instance's start into the record first."""
        self.store("X-CONFERENCE-DIAL-OUT:TRUE")
        self.successResultOf(self.autodial.start())
        self.clock.advance(3600)
        record = self.successResultOf(self.stores.conferences.get(CONF))
        assert record is not None
        self.assertEqual(record.settings[CLAIM], str(int(T0.timestamp())))
        self.assertEqual(len(self.invites), 2)

    def test_two_nodes_call_once(self) -> None:
        """Two nodes sharing the store both fire at DTSTART; the attendees are called once."""
        self.store("X-CONFERENCE-DIAL-OUT:TRUE\r\nRRULE:FREQ=DAILY;COUNT=2")
        other = self.node()
        self.successResultOf(self.autodial.start())
        self.successResultOf(other.start())
        self.clock.advance(3600)
        self.assertEqual(len(self.invites), 2)
        self.assertEqual(len(other.timers), 1)  # the node that lost waits for the next one
        self.clock.advance(timedelta(days=1).total_seconds())
        self.assertEqual(len(self.invites), 4)

    def test_lost_race(self) -> None:
        """A node whose claim is overtaken by another node's (a version conflict) calls nobody."""
        self.store("X-CONFERENCE-DIAL-OUT:TRUE")
        conferences = self.stores.conferences
        real_put = conferences.put
        stamp = str(int(T0.timestamp()))

        def overtaken(record: ConferenceRecord, expected: Optional[int], **kw: Any) -> Any:
            conferences.put = real_put  # type: ignore[method-assign]
            current = self.successResultOf(conferences.get(CONF))
            assert current is not None
            theirs = replace(current, settings={**current.settings, CLAIM: stamp})
            self.successResultOf(real_put(theirs, current.version))
            return real_put(record, expected, **kw)  # now stale: ConflictError

        conferences.put = overtaken  # type: ignore[method-assign,assignment]
        self.successResultOf(self.autodial.start())
        self.clock.advance(3600)
        self.assertEqual(self.invites, [])


class NetworkAutoDialOutTests(ControlFixture):
    """
    Calls at DTSTART over the real outbound path on a fake network: a
    served attendee at a contact with a host name, an attendee of
    example.net at their address, both located by DNS (RFC 3263).
    """

    extra = "ATTENDEE;ROLE=REQ-PARTICIPANT:sip:erin@example.net\r\nX-CONFERENCE-DIAL-OUT:TRUE\r\n"

    def setUp(self) -> None:
        super().setUp()
        self.clock.advance(T0.timestamp() - 3600 - self.clock.seconds())
        zone = {
            "_sip._udp.example.net": [srv(1, 0, 5070, "a.example.net")],
            "a.example.net": [dns.Record_A("198.51.100.1")],
            "bob-pc.example.net": [dns.Record_A("198.51.100.20")],
        }
        self.net = FakeNetwork(self.clock, zone)
        self.autodial = AutoDialOut(self.net.dialout(self.control), self.clock)
        now = self.clock.seconds()
        binding = RegistrationBinding("sip:bob@bob-pc.example.net", now + 86400, None, "r", 1)
        registrations = self.stores.registrations
        self.successResultOf(registrations.set_bindings("sip:bob@example.com", [binding], [], now))

    def test_called_by_dns(self) -> None:
        """At DTSTART Bob's named contact and Erin's domain are resolved and INVITEd."""
        self.successResultOf(self.autodial.start())
        self.clock.advance(3600)
        sent = sorted((str(r.uri), host, port) for r, host, port in self.net.requests("INVITE"))
        self.assertEqual(
            sent,
            [
                ("sip:bob@bob-pc.example.net", "198.51.100.20", 5060),
                ("sip:erin@example.net", "198.51.100.1", 5070),
            ],
        )


class FrontEndSender:
    """
    Records the hand-overs sent to the front end; each is answered by the
    test.
    """

    def __init__(self) -> None:
        self.sent: List[Tuple[Request, Any, Deferred[Response]]] = []

    def send_to(self, request: Request, uri: str) -> Deferred[Response]:
        d: Deferred[Response] = Deferred()
        self.sent.append((request, uri, d))
        return d


class HandOverTests(DialOutFixture):
    """
    Behind a front end, each instance is handed to the node the front end
    routes the conference to.
    """

    def setUp(self) -> None:
        super().setUp()
        self.front = FrontEndSender()
        self.autodial = AutoDialOut(
            self.autodial.dialout, self.clock, front_end="sip:127.0.0.1:5090", sender=self.front
        )
        self.store("X-CONFERENCE-DIAL-OUT:TRUE")
        self.start = str(int(T0.timestamp()))
        self.successResultOf(self.autodial.start())

    def test_handed_over(self) -> None:
        """At DTSTART an OPTIONS naming the start goes to the front end; on 200 no call is made."""
        self.clock.advance(3600)
        [(request, destination, answer)] = self.front.sent
        self.assertEqual((request.method, str(request.uri)), ("OPTIONS", CONF))
        self.assertEqual(request.header(NUDGE_HEADER), self.start)
        self.assertEqual(str(destination), "sip:127.0.0.1:5090")
        taken = [(NUDGE_HEADER, "taken")]
        answer.callback(make_response(request, 200, to_tag="n", headers=taken))
        self.assertEqual(self.invites, [])

    def test_not_taken(self) -> None:
        """A front end answering 503, 200 without "taken", or nothing: this node calls itself."""
        answers: List[Any] = [
            (503, []),
            (200, [(NUDGE_HEADER, "declined")]),
            (200, []),
            TimeoutError("no answer"),
        ]
        for outcome in answers:
            self.setUp()
            self.clock.advance(3600)
            [(request, _, answer)] = self.front.sent
            if isinstance(outcome, Exception):
                answer.errback(outcome)
            else:
                code, headers = outcome
                answer.callback(make_response(request, code, to_tag="n", headers=headers))
            self.assertEqual(len(self.invites), 2, outcome)

    def test_taken(self) -> None:
        """The node hand-overs reach claims the instance and calls, once for any number of them."""
        self.clock.advance(3599)
        for _ in range(3):
            request = make_request("OPTIONS", CONF, headers=[(NUDGE_HEADER, self.start)])
            said = self.autodial.options_hook(request, None)
            assert isinstance(said, Deferred)
            self.assertEqual(self.successResultOf(said), [(NUDGE_HEADER, "taken")])
        self.assertEqual(self.autodial.options_hook(make_request("OPTIONS", CONF), None), [])
        self.assertEqual(len(self.invites), 2)
        record = self.successResultOf(self.stores.conferences.get(CONF))
        assert record is not None
        self.assertEqual(record.settings[CLAIM], self.start)

    def test_only_what_is_due(self) -> None:
        """A hand-over of anything but a dial-out instance due now starts nothing."""
        start = int(self.start)
        early = self.autodial.take(CONF, self.start)  # an hour before it starts
        self.assertFalse(self.successResultOf(early))
        self.clock.advance(3600)
        for text in (str(start + 1), "x", "1" * 20, ""):
            self.assertFalse(self.successResultOf(self.autodial.take(CONF, text)), text)
        self.assertFalse(
            self.successResultOf(self.autodial.take("sip:other@example.com", self.start))
        )
        late = make_request("OPTIONS", CONF, headers=[(NUDGE_HEADER, str(start + 1))])
        said = self.autodial.options_hook(late, None)
        assert isinstance(said, Deferred)
        self.assertEqual(self.successResultOf(said), [(NUDGE_HEADER, "declined")])
        self.assertEqual(self.invites, [])
        self.clock.advance(NUDGE_LATE + 1)
        self.assertFalse(self.successResultOf(self.autodial.take(CONF, self.start)))
        self.assertEqual(self.invites, [])

    def test_bad_front_end(self) -> None:
        """A front end that is not a SIP URI, or no sender, is refused at once."""
        dialout = self.autodial.dialout
        self.assertRaises(ValueError, AutoDialOut, dialout, self.clock, front_end="tel:+1")
        self.assertRaises(ValueError, AutoDialOut, dialout, self.clock, front_end="sip:h")
