# -*- test-case-name: tests.unit.app.test_refer -*-
"""
Tests for L{conference.app.refer}: REFER with method=BYE (RFC 4579 section
5.5) and control commands in INFO, authorized by role; bad requests are
refused with nothing changed.
"""

from __future__ import annotations

from typing import Optional, Tuple

from conference.auth import SIPIdentity
from conference.sip.message import Response
from tests.builders import make_request
from tests.unit.app.controlfixture import ALICE, BOB, CAROL, CONF, EVE, ControlFixture
from tests.unit.app.test_confevents import document
from tests.unit.app.test_control import Q, endpoint_status


class ReferTests(ControlFixture):
    """
    REFER to the conference URI.
    """

    def setUp(self) -> None:
        super().setUp()
        self.alice = self.join(ALICE)
        self.bob = self.join(BOB)
        self.subscribe(CAROL)
        self.before = len(self.notifies())

    def refer(
        self,
        who: Optional[SIPIdentity],
        *refer_to: str,
        headers: Tuple[Tuple[str, str], ...] = (),
        uri: str = CONF,
    ) -> Response:
        self.cseq += 1
        request = make_request(
            "REFER",
            uri,
            call_id=f"refer-{self.cseq}",
            from_=f"<sip:{(who or EVE).username}@example.com>;tag=r1",
            to=f"<{uri}>",
            headers=[("Refer-To", r) for r in refer_to]
            + [("Contact", "<sip:mod@192.0.2.10:5062>"), *headers],
        )
        return self.dispatch(request, who)

    def test_remove(self) -> None:
        """The organizer's REFER method=BYE: 202, BYE to Bob, NOTIFY sipfrag 200, a partial."""
        response = self.refer(ALICE, "<sip:bob@example.com;method=BYE>")
        self.assertEqual(response.code, 202)
        self.assertEqual(len(self.sender.of("BYE")), 1)
        self.clock.advance(0)
        [notify] = [n for n in self.notifies() if n.header("event") == "refer"]
        self.assertEqual(notify.body, b"SIP/2.0 200 OK\r\n")
        self.assertEqual(notify.header("subscription-state"), "terminated;reason=noresource")
        root = document([n for n in self.notifies() if n.header("event") == "conference"][-1])
        users = [(u.get("entity"), u.get("state")) for u in root.findall(f"{Q}users/{Q}user")]
        self.assertEqual(users, [("sip:bob@example.com", "deleted")])
        self.assertEqual(self.moderation.watches(), [])

    def test_refer_sub_false(self) -> None:
        """With Refer-Sub: false the REFER is done without a NOTIFY (RFC 4488)."""
        response = self.refer(
            CAROL, "<sip:bob@example.com;method=BYE>", headers=(("Refer-Sub", "false"),)
        )
        self.assertEqual((response.code, response.header("refer-sub")), (202, "false"))
        self.assertEqual([n for n in self.notifies() if n.header("event") == "refer"], [])

    def assertNothingChanged(self, response: Response, status: int) -> None:
        self.assertEqual(response.code, status, response.phrase)
        self.assertEqual(self.sender.of("BYE"), [])
        self.assertEqual(self.focus.roster.count(CONF), 2)
        self.assertEqual(len(self.notifies()), self.before)

    def test_not_a_moderator(self) -> None:
        """An attendee who is no moderator, or a stranger, gets 403."""
        self.assertNothingChanged(self.refer(BOB, "<sip:alice@example.com;method=BYE>"), 403)
        self.assertNothingChanged(self.refer(EVE, "<sip:alice@example.com;method=BYE>"), 403)

    def test_anonymous(self) -> None:
        """An unauthenticated REFER gets 401."""
        self.assertNothingChanged(self.refer(None, "<sip:bob@example.com;method=BYE>"), 401)

    def test_bad_targets(self) -> None:
        """Malformed, foreign-scheme, absent or looping targets: 400, 404 or 482."""
        self.assertNothingChanged(self.refer(ALICE, "<sip:bob@example.com"), 400)
        self.assertNothingChanged(self.refer(ALICE, "<tel:+15551234;method=BYE>"), 400)
        self.assertNothingChanged(self.refer(ALICE), 400)
        self.assertNothingChanged(self.refer(ALICE, "<sip:eve@example.com;method=BYE>"), 404)
        self.assertNothingChanged(self.refer(ALICE, "<sip:bob@elsewhere.example;method=BYE>"), 404)
        self.assertNothingChanged(self.refer(ALICE, "<sip:conf@example.com;method=BYE>"), 482)

    def test_unknown_conference(self) -> None:
        """A REFER to an address with no conference is 404."""
        response = self.refer(ALICE, "<sip:bob@example.com;method=BYE>", uri="sip:none@example.com")
        self.assertNothingChanged(response, 404)

    def test_dial_out_not_available(self) -> None:
        """A REFER asking to dial out is answered 501 for now."""
        self.assertNothingChanged(self.refer(ALICE, "<sip:carol@example.com>"), 501)


class InfoTests(ControlFixture):
    """
    Control commands in INFO, in the moderator's call.
    """

    def setUp(self) -> None:
        super().setUp()
        self.alice = self.join(ALICE)
        self.bob = self.join(BOB)
        self.subscribe(CAROL)
        self.before = len(self.notifies())

    def test_mute_by_chair_in_call(self) -> None:
        """The organizer's call may mute Bob; the subscribers see it."""
        response = self.in_call(self.alice, "INFO", body=b"mute sip:bob@example.com")
        self.assertEqual(response.code, 200, response.phrase)
        root = document(self.notifies()[-1])
        self.assertEqual(
            endpoint_status(root, "sip:bob@example.com"), ("muted-via-focus", "recvonly")
        )

    def test_lock_unlock(self) -> None:
        """lock and unlock change the conference state."""
        self.assertEqual(self.in_call(self.alice, "INFO", body=b"lock").code, 200)
        self.assertTrue(self.focus.locks[CONF])
        self.assertEqual(self.in_call(self.alice, "INFO", body=b"unlock").code, 200)
        self.assertFalse(self.focus.locks[CONF])

    def test_participant_refused(self) -> None:
        """A participant's INFO is 403 and mutes nobody."""
        response = self.in_call(self.bob, "INFO", body=b"mute sip:alice@example.com")
        self.assertEqual(response.code, 403)
        self.assertFalse(any(p.muted for p in self.focus.roster.participants(CONF)))
        self.assertEqual(len(self.notifies()), self.before)

    def test_bad_command(self) -> None:
        """A command that makes no sense is 400."""
        self.assertEqual(self.in_call(self.alice, "INFO", body=b"explode").code, 400)

    def test_outside_a_call(self) -> None:
        """INFO outside a call is 400; in an unknown dialog, 481."""
        self.cseq += 1
        request = make_request(
            "INFO",
            CONF,
            call_id="lost",
            headers=[("Content-Type", "application/x-conference-control")],
            body=b"lock",
        )
        self.assertEqual(self.dispatch(request, ALICE).code, 400)
        request = make_request(
            "INFO",
            CONF,
            call_id="lost",
            to=f"<{CONF}>;tag=nope",
            headers=[("Content-Type", "application/x-conference-control")],
            body=b"lock",
        )
        self.assertEqual(self.dispatch(request, ALICE).code, 481)

    def test_refer_in_call(self) -> None:
        """A REFER in the organizer's call removes Bob; its NOTIFY goes in that call."""
        response = self.in_call(
            self.alice, "REFER", headers=(("Refer-To", "<sip:bob@example.com;method=BYE>"),)
        )
        self.assertEqual(response.code, 202)
        self.clock.advance(0)
        [notify] = [n for n in self.sender.of("NOTIFY") if n.header("event") == "refer"]
        self.assertEqual(notify.call_id, self.alice.call_id)
        self.assertEqual(len(self.sender.of("BYE")), 1)
