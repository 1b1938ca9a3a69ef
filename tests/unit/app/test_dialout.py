# -*- test-case-name: tests.unit.app.test_dialout -*-
"""
Tests for L{conference.app.dialout}: a moderator's REFER has the focus
INVITE an attendee (RFC 4579 section 5.4); strangers, absent or
unreachable callees and non-moderators are refused with nothing sent.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from twisted.internet.defer import Deferred
from twisted.names import dns

from conference.app.dialout import SDP, DialOut
from conference.auth import SIPIdentity
from conference.records import RegistrationBinding
from conference.sip.message import Request, Response, make_response
from conference.sip.transaction import Peer
from tests.builders import make_request
from tests.dnszone import srv
from tests.unit.app.controlfixture import ALICE, BOB, CAROL, CONF, ControlFixture
from tests.unit.app.test_confevents import document
from tests.unit.app.test_control import Q
from tests.unit.app.test_focus import ANSWER
from tests.unit.transport.fakenet import FakeNetwork

CAROL_CONTACT = "sip:carol@192.0.2.30:5070"


class DialOutTests(ControlFixture):
    """
    REFER without method=BYE, to the conference URI.
    """

    def setUp(self) -> None:
        super().setUp()
        self.invites: List[Tuple[Request, Peer, Deferred[Response]]] = []
        self.acks: List[Tuple[Request, Peer]] = []
        self.moderation.dialout = DialOut(
            self.control,
            send_request=self.send_invite,
            send_ack=lambda request, peer: self.acks.append((request, peer)),
            local_address=lambda peer: ("127.0.0.1", 5060),
            tag_factory=lambda: "dotag",
            branch_factory=lambda: "z9hG4bKdial",
        )
        self.alice = self.join(ALICE)
        self.subscribe(BOB)
        self.register("sip:carol@example.com", CAROL_CONTACT)

    def send_invite(self, request: Request, peer: Peer) -> Deferred[Response]:
        d: Deferred[Response] = Deferred()
        self.invites.append((request, peer, d))
        return d

    def register(self, aor: str, contact: str) -> None:
        now = self.clock.seconds()
        binding = RegistrationBinding(contact, now + 3600, None, "reg-1", 1)
        self.successResultOf(self.stores.registrations.set_bindings(aor, [binding], [], now))

    def refer(self, who: Optional[SIPIdentity], target: str) -> Response:
        self.cseq += 1
        request = make_request(
            "REFER",
            CONF,
            call_id=f"refer-{self.cseq}",
            from_=f"<sip:{(who or BOB).username}@example.com>;tag=r1",
            to=f"<{CONF}>",
            headers=[("Refer-To", target), ("Contact", "<sip:mod@192.0.2.10:5062>")],
        )
        return self.dispatch(request, who)

    def answer(self, code: int) -> None:
        request, _, d = self.invites[-1]
        response = make_response(
            request,
            code,
            to_tag="callee",
            headers=[("Contact", f"<{CAROL_CONTACT}>"), ("Content-Type", "application/sdp")],
            body=ANSWER if code < 300 else b"",
        )
        d.callback(response)

    def refer_notifies(self) -> List[Request]:
        return [n for n in self.notifies() if n.header("event") == "refer"]

    def test_dial_out(self) -> None:
        """202, an INVITE with our offer to Carol's contact; her 200 is ACKed and she joins."""
        response = self.refer(ALICE, "<sip:carol@example.com>")
        self.assertEqual(response.code, 202)
        [(invite, peer, _)] = self.invites
        self.assertEqual(str(invite.uri), CAROL_CONTACT)
        self.assertEqual((peer.host, peer.port), ("192.0.2.30", 5070))
        self.assertEqual(invite.header("referred-by"), "<sip:alice@example.com>")
        self.assertIn("isfocus", invite.header("contact") or "")
        self.assertTrue(invite.body.startswith(b"v=0"))
        [trying] = self.refer_notifies()
        self.assertEqual(trying.body, b"SIP/2.0 100 Trying\r\n")
        self.answer(200)
        [(ack, _)] = self.acks
        self.assertEqual((ack.method, ack.header("cseq")), ("ACK", "1 ACK"))
        last = self.refer_notifies()[-1]
        self.assertEqual(last.body, b"SIP/2.0 200 OK\r\n")
        self.assertEqual(last.header("subscription-state"), "terminated;reason=noresource")
        [carol] = [
            p for p in self.focus.roster.participants(CONF) if p.identity == "sip:carol@example.com"
        ]
        self.assertEqual((carol.joining_method, carol.referred_by), ("dialed-out", ALICE.aor))
        root = document([n for n in self.notifies() if n.header("event") == "conference"][-1])
        [user] = [u for u in root.findall(f"{Q}users/{Q}user") if u.get("entity") == carol.identity]
        self.assertEqual(user.findtext(f"{Q}endpoint/{Q}joining-method"), "dialed-out")
        self.assertEqual(user.findtext(f"{Q}endpoint/{Q}referred/{Q}by"), ALICE.aor)

    def test_callee_hangs_up(self) -> None:
        """The dialed-out call ends with the callee's BYE like any other."""
        self.refer(ALICE, "<sip:carol@example.com>")
        self.answer(200)
        bye = make_request(
            "BYE",
            "sip:conf@127.0.0.1:5060",
            call_id=self.invites[0][0].call_id,
            from_="<sip:carol@example.com>;tag=callee",
            to=f"<{CONF}>;tag=dotag",
            cseq=1,
        )
        self.assertEqual(self.dispatch(bye).code, 200)
        self.assertEqual(self.focus.roster.count(CONF), 1)

    def test_declined(self) -> None:
        """A callee's 486 is the last NOTIFY's sipfrag, and nobody joins."""
        self.refer(ALICE, "<sip:carol@example.com>")
        self.answer(486)
        self.assertEqual(self.refer_notifies()[-1].body, b"SIP/2.0 486 Busy Here\r\n")
        self.assertEqual(self.focus.roster.count(CONF), 1)
        self.assertTrue(self.media.sessions[-1].closed)

    def assertRefused(self, response: Response, code: int) -> None:
        self.assertEqual(response.code, code, response.phrase)
        self.assertEqual(self.invites, [])
        self.assertEqual(self.refer_notifies(), [])

    def test_only_attendees(self) -> None:
        """Someone not on the ATTENDEE list, here or elsewhere, is never called: 403."""
        self.register("sip:eve@example.com", "sip:eve@192.0.2.40")
        self.assertRefused(self.refer(ALICE, "<sip:eve@example.com>"), 403)
        self.assertRefused(self.refer(ALICE, "<sip:bob@elsewhere.example>"), 403)

    def test_not_a_moderator(self) -> None:
        """A participant's dial-out REFER is 403."""
        self.assertRefused(self.refer(BOB, "<sip:carol@example.com>"), 403)

    def test_unreachable(self) -> None:
        """An attendee with no registered contact the focus can call is 480."""
        self.assertRefused(self.refer(ALICE, "<sip:bob@example.com>"), 480)
        self.register("sip:bob@example.com", "sip:bob@phone.example.net")
        self.assertRefused(self.refer(ALICE, "<sip:bob@example.com>"), 480)

    def test_already_in(self) -> None:
        """Calling someone who is in already is 486."""
        self.assertRefused(self.refer(CAROL, "<sip:alice@example.com>"), 486)


class Route:
    """
    An outbound route (RFC 3263) that records what it is given and lets
    the test answer, naming the peer that answered.
    """

    def __init__(self) -> None:
        self.sent: List[Tuple[Request, str, Deferred[Tuple[Response, Peer]]]] = []

    def send_attempt(self, request: Request, uri: object) -> Deferred[Tuple[Response, Peer]]:
        d: Deferred[Tuple[Response, Peer]] = Deferred()
        self.sent.append((request, str(uri), d))
        return d


class RoutedDialOutTests(ControlFixture):
    """
    With the server's outbound route, dial-out reaches contacts of any
    transport and host, and attendees of other domains at their address.
    """

    extra = (
        "ATTENDEE;ROLE=REQ-PARTICIPANT:sips:erin@elsewhere.example\r\n"
        "ATTENDEE;ROLE=REQ-PARTICIPANT:sips:frank@example.com\r\n"
    )

    def setUp(self) -> None:
        super().setUp()
        self.route = Route()
        self.acks: List[Tuple[Request, Peer]] = []
        self.direct: List[Request] = []
        self.moderation.dialout = DialOut(
            self.control,
            send_request=self.send_direct,
            send_ack=lambda request, peer: self.acks.append((request, peer)),
            local_address=lambda peer: ("192.0.2.1", 5061),
            tag_factory=lambda: "dotag",
            branch_factory=lambda: "z9hG4bKdial",
            route=self.route,
            is_local=lambda aor: aor.endswith("@example.com"),
            contact_address=lambda: ("192.0.2.1", 5060),
        )
        self.join(ALICE)

    def send_direct(self, request: Request, peer: Peer) -> Deferred[Response]:
        self.direct.append(request)
        return Deferred()

    def refer(self, target: str) -> Response:
        self.cseq += 1
        request = make_request(
            "REFER",
            CONF,
            call_id=f"refer-{self.cseq}",
            from_="<sip:alice@example.com>;tag=r1",
            to=f"<{CONF}>",
            headers=[("Refer-To", target), ("Contact", "<sip:mod@192.0.2.10:5062>")],
        )
        return self.dispatch(request, ALICE)

    def answer(self, code: int, peer: Peer) -> None:
        request, _, d = self.route.sent[-1]
        response = make_response(
            request,
            code,
            to_tag="callee",
            headers=[("Contact", "<sips:erin@pc.elsewhere.example>"), ("Content-Type", SDP)],
            body=ANSWER if code < 300 else b"",
        )
        d.callback((response, peer))

    def test_foreign_attendee(self) -> None:
        """An attendee of another domain is INVITEd at their sips: address through the route."""
        self.assertEqual(self.refer("<sips:erin@elsewhere.example>").code, 202)
        [(invite, uri, _)] = self.route.sent
        self.assertEqual((uri, str(invite.uri)), ("sips:erin@elsewhere.example",) * 2)
        self.assertFalse(invite.has_header("via"))  # the route adds one per target
        self.assertIn("sip:conf@192.0.2.1:5060", invite.header("contact") or "")
        self.assertEqual(self.direct, [])
        peer = Peer("TLS", "203.0.113.9", 5061, "conn-1")
        self.answer(200, peer)
        [(ack, ack_peer)] = self.acks
        self.assertEqual(ack_peer, peer)
        self.assertTrue((ack.header("via") or "").startswith("SIP/2.0/TLS 192.0.2.1:5061;"))
        identities = [p.identity for p in self.focus.roster.participants(CONF)]
        self.assertIn("sip:erin@elsewhere.example", identities)

    def test_named_and_stream_contacts(self) -> None:
        """A served user's contact with a host name or over TCP is called through the route."""
        now = self.clock.seconds()
        contact = "sip:carol@phone.example.net;transport=tcp"
        binding = RegistrationBinding(contact, now + 3600, None, "reg-1", 1)
        registrations = self.stores.registrations
        self.successResultOf(
            registrations.set_bindings("sip:carol@example.com", [binding], [], now)
        )
        self.assertEqual(self.refer("<sip:carol@example.com>").code, 202)
        [(_, uri, _)] = self.route.sent
        self.assertEqual(uri, contact)

    def register_frank(self, *contacts: str) -> None:
        now = self.clock.seconds()
        bindings = [
            RegistrationBinding(c, now + 3600, None, f"reg-{i}", 1) for i, c in enumerate(contacts)
        ]
        registrations = self.stores.registrations
        self.successResultOf(registrations.set_bindings("sip:frank@example.com", bindings, [], now))

    def test_sips_user_not_downgraded(self) -> None:
        """A served attendee written sips: with only clear-text contacts is 480; nothing is sent."""
        self.register_frank("sip:frank@192.0.2.40:5060", "sip:frank@pc.example.com;transport=tcp")
        self.assertEqual(self.refer("<sip:frank@example.com>").code, 480)
        self.assertEqual((self.route.sent, self.direct), ([], []))

    def test_sips_user_at_tls_contact(self) -> None:
        """A served attendee written sips: is called at a contact over TLS only."""
        self.register_frank("sip:frank@192.0.2.40:5060", "sip:frank@pc.example.com;transport=tls")
        self.assertEqual(self.refer("<sip:frank@example.com>").code, 202)
        [(_, uri, _)] = self.route.sent
        self.assertEqual(uri, "sip:frank@pc.example.com;transport=tls")

    def test_unreachable(self) -> None:
        """A served attendee with no registration is still 480: served users are not guessed at."""
        self.assertEqual(self.refer("<sip:bob@example.com>").code, 480)
        self.assertEqual(self.route.sent, [])

    def test_route_fails(self) -> None:
        """A route that reaches nobody ends the call attempt (408 to the REFER's NOTIFY)."""
        self.refer("<sips:erin@elsewhere.example>")
        [(_, _, d)] = self.route.sent
        d.errback(RuntimeError("INVITE to sips:erin@elsewhere.example not delivered"))
        identities = [p.identity for p in self.focus.roster.participants(CONF)]
        self.assertNotIn("sip:erin@elsewhere.example", identities)


class NetworkDialOutTests(ControlFixture):
    """
    Dial-out over the real outbound path on a fake network: an attendee of
    example.net is found by SRV, and the INVITE fails over to the next
    target on 503 and on Timer B.
    """

    extra = "ATTENDEE;ROLE=REQ-PARTICIPANT:sip:erin@example.net\r\n"

    def setUp(self) -> None:
        super().setUp()
        zone = {
            "_sip._udp.example.net": [
                srv(1, 0, 5070, "a.example.net"),
                srv(2, 0, 5080, "b.example.net"),
            ],
            "a.example.net": [dns.Record_A("198.51.100.1")],
            "b.example.net": [dns.Record_A("198.51.100.2")],
        }
        self.net = FakeNetwork(self.clock, zone)
        self.moderation.dialout = self.net.dialout(self.control)
        self.join(ALICE)
        self.cseq += 1
        refer = make_request(
            "REFER",
            CONF,
            call_id="refer-net",
            from_="<sip:alice@example.com>;tag=r1",
            to=f"<{CONF}>",
            headers=[("Refer-To", "<sip:erin@example.net>"), ("Contact", "<sip:a@192.0.2.10>")],
        )
        self.assertEqual(self.dispatch(refer, ALICE).code, 202)

    def invites(self) -> List[Tuple[Request, str, int]]:
        return self.net.requests("INVITE")

    def accept(self, invite: Request, where: Tuple[str, int]) -> None:
        headers = [("Contact", "<sip:erin@198.51.100.2:5080>"), ("Content-Type", SDP)]
        self.net.answer(invite, where, 200, headers=headers, body=ANSWER)

    def assert_joined_via_b(self) -> None:
        [(ack, host, port)] = self.net.requests("ACK")[-1:]
        self.assertEqual((host, port, ack.header("cseq")), ("198.51.100.2", 5080, "1 ACK"))
        identities = [p.identity for p in self.focus.roster.participants(CONF)]
        self.assertIn("sip:erin@example.net", identities)

    def test_srv_then_503_failover(self) -> None:
        """The priority 1 target's 503 sends the INVITE to priority 2, whose 200 joins Erin."""
        [(first, host, port)] = self.invites()
        self.assertEqual(
            (str(first.uri), host, port), ("sip:erin@example.net", "198.51.100.1", 5070)
        )
        self.net.answer(first, (host, port), 503)
        second, host, port = self.invites()[-1]
        self.assertEqual((host, port), ("198.51.100.2", 5080))
        self.accept(second, (host, port))
        self.assert_joined_via_b()

    def test_timeout_failover(self) -> None:
        """A target that never answers (Timer B, 64*T1) is followed by the next one."""
        self.clock.advance(32.1)
        second, host, port = self.invites()[-1]
        self.assertEqual((host, port), ("198.51.100.2", 5080))
        self.accept(second, (host, port))
        self.assert_joined_via_b()
