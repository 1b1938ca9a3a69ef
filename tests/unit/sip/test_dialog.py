# -*- test-case-name: tests.unit.sip.test_dialog -*-
"""
Tests for L{conference.sip.dialog}: UAS dialog creation (section 12.1.1),
in-dialog checks (12.2.2), requests the server sends inside its dialogs
(12.2.1.1, loose and strict routing), re-INVITE glare (section 14) and the
dialog table's 481 and BYE rules.
"""

from __future__ import annotations

from typing import Optional

from twisted.trial.unittest import SynchronousTestCase

from conference.sip.dialog import CONFIRMED, EARLY, TERMINATED, Dialog, DialogTable
from conference.sip.errors import LocalProtocolError, RemoteProtocolError
from conference.sip.message import Request, make_response
from conference.sip.parser import parse_datagram
from conference.sip.uri import parse_uri

LOCAL_CONTACT = "<sip:conf@198.51.100.1:5060>"
VIA = "SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKout1"


def incoming(
    method: str = "INVITE",
    *,
    cseq: int = 10,
    to_tag: Optional[str] = None,
    from_tag: str = "alice1",
    call_id: str = "dlg-1@client",
    contact: Optional[str] = "<sip:alice@192.0.2.1:5070;transport=udp>",
    record_route: str = (
        "Record-Route: <sip:p1.example.com;lr>\nRecord-Route: <sip:p2.example.com;lr>\n"
    ),
    ruri: str = "sip:conf@example.com",
) -> Request:
    """
    Parse a request from the peer (Alice) to the conference server.
    """
    ttag = f";tag={to_tag}" if to_tag else ""
    text = (
        f"{method} {ruri} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bKin1\r\n"
        "Max-Forwards: 70\r\n"
        f'From: "Alice" <sip:alice@example.com>;tag={from_tag}\r\n'
        f"To: <sip:conf@example.com>{ttag}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {method}\r\n"
        + (f"Contact: {contact}\r\n" if contact else "")
        + record_route.replace("\n", "\r\n")
        + "Content-Length: 0\r\n\r\n"
    )
    message = parse_datagram(text.encode("utf-8"))
    assert isinstance(message, Request)
    return message


def dialog(
    code: int = 200, *, ruri: str = "sip:conf@example.com", record_route: Optional[str] = None
) -> Dialog:
    """
    The dialog a 200 (or C{code}) to a parsed INVITE creates.
    """
    if record_route is None:
        invite = incoming(ruri=ruri)
    else:
        invite = incoming(ruri=ruri, record_route=record_route)
    return Dialog.uas(invite, make_response(invite, code, to_tag="conf1"), LOCAL_CONTACT)


class CreateTests(SynchronousTestCase):
    """
    L{Dialog.uas} (section 12.1.1).
    """

    def test_fields(self) -> None:
        """A 200 creates a confirmed dialog with ids, URIs, target and routes."""
        d = dialog()
        self.assertEqual(d.call_id, "dlg-1@client")
        self.assertEqual(d.local_tag, "conf1")
        self.assertEqual(d.remote_tag, "alice1")
        self.assertEqual(d.key, ("dlg-1@client", "conf1", "alice1"))
        self.assertEqual(d.local_uri, "sip:conf@example.com")
        self.assertEqual(d.remote_uri, "sip:alice@example.com")
        self.assertEqual(str(d.remote_target), "sip:alice@192.0.2.1:5070;transport=udp")
        self.assertEqual(d.route_set, ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"])
        self.assertEqual(d.remote_cseq, 10)
        self.assertEqual(d.local_cseq, 0)
        self.assertFalse(d.secure)
        self.assertEqual(d.state, CONFIRMED)

    def test_early(self) -> None:
        """A 1xx with a To tag creates an early dialog, confirmed later."""
        d = dialog(180)
        self.assertEqual(d.state, EARLY)
        d.confirm()
        self.assertEqual(d.state, CONFIRMED)

    def test_secure(self) -> None:
        """A sips: Request-URI makes the dialog secure."""
        self.assertTrue(dialog(ruri="sips:conf@example.com").secure)

    def test_no_tag(self) -> None:
        """A response without a To tag creates no dialog."""
        invite = incoming()
        response = make_response(invite, 200)
        self.assertRaises(LocalProtocolError, Dialog.uas, invite, response, LOCAL_CONTACT)

    def test_failure_response(self) -> None:
        """Neither a 100 nor a failure creates a dialog."""
        invite = incoming()
        for code in (100, 486):
            response = make_response(invite, code, to_tag="x")
            self.assertRaises(LocalProtocolError, Dialog.uas, invite, response, LOCAL_CONTACT)

    def test_no_contact(self) -> None:
        """A dialog-creating request without Contact is a 400."""
        invite = incoming(contact=None)
        response = make_response(invite, 200, to_tag="x")
        error = self.assertRaises(RemoteProtocolError, Dialog.uas, invite, response, LOCAL_CONTACT)
        self.assertEqual(error.status, 400)


class CheckRequestTests(SynchronousTestCase):
    """
    L{Dialog.check_request} (section 12.2.2).
    """

    def test_in_order(self) -> None:
        """A higher CSeq is accepted and recorded."""
        d = dialog()
        d.check_request(incoming("INFO", cseq=11, to_tag="conf1"))
        self.assertEqual(d.remote_cseq, 11)

    def test_out_of_order(self) -> None:
        """A lower CSeq is a 500 naming the fault, and changes nothing."""
        d = dialog()
        error = self.assertRaises(
            RemoteProtocolError, d.check_request, incoming("INFO", cseq=9, to_tag="conf1")
        )
        self.assertEqual((error.status, error.reason), (500, "CSeq out of order"))
        self.assertEqual(d.remote_cseq, 10)

    def test_ack_not_checked(self) -> None:
        """ACK reuses the INVITE's CSeq and passes."""
        d = dialog()
        d.check_request(incoming("INFO", cseq=12, to_tag="conf1"))
        d.check_request(incoming("ACK", cseq=10, to_tag="conf1"))
        self.assertEqual(d.remote_cseq, 12)

    def test_target_refresh(self) -> None:
        """A re-INVITE or UPDATE with a Contact replaces the remote target."""
        d = dialog()
        for cseq, method, host in ((11, "INVITE", "192.0.2.9"), (12, "UPDATE", "192.0.2.10")):
            contact = f"<sip:alice@{host}>"
            d.check_request(incoming(method, cseq=cseq, to_tag="conf1", contact=contact))
            self.assertEqual(str(d.remote_target), f"sip:alice@{host}")

    def test_not_target_refresh(self) -> None:
        """An INFO's Contact does not change the remote target."""
        d = dialog()
        d.check_request(incoming("INFO", cseq=11, to_tag="conf1", contact="<sip:alice@192.0.2.99>"))
        self.assertEqual(str(d.remote_target), "sip:alice@192.0.2.1:5070;transport=udp")

    def test_terminated(self) -> None:
        """A request for a terminated dialog is a 481."""
        d = dialog()
        d.terminate()
        error = self.assertRaises(
            RemoteProtocolError, d.check_request, incoming("INFO", cseq=11, to_tag="conf1")
        )
        self.assertEqual(error.status, 481)


class InviteGlareTests(SynchronousTestCase):
    """
    Overlapping INVITEs in one dialog (sections 14.1 and 14.2).
    """

    def test_remote_while_local(self) -> None:
        """A re-INVITE while our own INVITE is pending is a 491."""
        d = dialog()
        d.begin_invite(remote=False)
        error = self.assertRaises(RemoteProtocolError, d.begin_invite)
        self.assertEqual(error.status, 491)
        d.end_invite(remote=False)
        d.begin_invite()
        self.assertTrue(d.invite_pending)

    def test_remote_while_remote(self) -> None:
        """A second re-INVITE while the first is unanswered is a 500 with Retry-After."""
        d = dialog()
        d.begin_invite()
        error = self.assertRaises(RemoteProtocolError, d.begin_invite)
        self.assertEqual(error.status, 500)
        (name, value), *_ = error.headers
        self.assertEqual(name, "Retry-After")
        self.assertIn(int(value), range(11))
        d.end_invite()
        self.assertFalse(d.invite_pending)
        d.begin_invite()

    def test_local_while_pending(self) -> None:
        """We may not start an INVITE while one is pending."""
        d = dialog()
        d.begin_invite()
        self.assertRaises(LocalProtocolError, d.begin_invite, remote=False)


class CreateRequestTests(SynchronousTestCase):
    """
    L{Dialog.create_request} (section 12.2.1.1).
    """

    def test_loose_routing(self) -> None:
        """With loose routers the target is the Request-URI and the routes Route."""
        d = dialog()
        bye = d.create_request("BYE", via=VIA)
        self.assertEqual(str(bye.uri), "sip:alice@192.0.2.1:5070;transport=udp")
        self.assertEqual(
            bye.header_values("route"), ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
        )
        self.assertEqual((bye.cseq.number, bye.cseq.method), (1, "BYE"))
        self.assertEqual(bye.from_.tag, "conf1")
        self.assertEqual(str(bye.from_.uri), "sip:conf@example.com")
        self.assertEqual(bye.to.tag, "alice1")
        self.assertEqual(str(bye.to.uri), "sip:alice@example.com")
        self.assertEqual(bye.call_id, "dlg-1@client")
        self.assertEqual(bye.top_via.branch, "z9hG4bKout1")
        self.assertEqual(bye.header("max-forwards"), "70")
        self.assertFalse(bye.has_header("contact"))

    def test_wire_round_trip(self) -> None:
        """A created NOTIFY with a body serializes and parses back the same."""
        d = dialog()
        d.create_request("INFO", via=VIA)
        notify = d.create_request(
            "NOTIFY",
            via=VIA,
            body=b"hello",
            content_type="text/plain",
            headers=[("Event", "conference")],
        )
        parsed = parse_datagram(notify.to_bytes())
        assert isinstance(parsed, Request)
        self.assertEqual((parsed.cseq.number, parsed.cseq.method), (2, "NOTIFY"))
        self.assertEqual(parsed.body, b"hello")
        self.assertEqual(parsed.header("event"), "conference")
        self.assertEqual(parsed.header("contact"), LOCAL_CONTACT)
        content_type = parsed.content_type
        assert content_type is not None
        self.assertEqual(content_type.mime, "text/plain")

    def test_strict_routing(self) -> None:
        """A strict first route becomes the Request-URI; the target ends Route."""
        strict = "<sip:p1.example.com;method=INVITE>, <sip:p2.example.com;lr>"
        d = dialog(record_route=f"Record-Route: {strict}\n")
        bye = d.create_request("BYE", via=VIA)
        self.assertEqual(str(bye.uri), "sip:p1.example.com")
        self.assertEqual(
            bye.header_values("route"),
            ["<sip:p2.example.com;lr>", "<sip:alice@192.0.2.1:5070;transport=udp>"],
        )

    def test_no_routes(self) -> None:
        """Without a route set there is no Route header."""
        d = dialog(record_route="")
        request = d.create_request("BYE", via=VIA)
        self.assertFalse(request.has_header("route"))

    def test_ack_reuses_cseq(self) -> None:
        """ACK for our re-INVITE carries the INVITE's CSeq number."""
        d = dialog()
        d.create_request("INVITE", via=VIA, body=b"v=0\r\n", content_type="application/sdp")
        ack = d.create_request("ACK", via=VIA)
        self.assertEqual((ack.cseq.number, ack.cseq.method), (1, "ACK"))
        self.assertEqual(d.local_cseq, 1)

    def test_refusals(self) -> None:
        """CANCEL, BYE on an early dialog, a body without type, a terminated dialog."""
        d = dialog(180)
        self.assertRaises(LocalProtocolError, d.create_request, "CANCEL", via=VIA)
        self.assertRaises(LocalProtocolError, d.create_request, "BYE", via=VIA)
        self.assertRaises(LocalProtocolError, d.create_request, "INFO", via=VIA, body=b"x")
        d.terminate()
        self.assertEqual(d.state, TERMINATED)
        self.assertRaises(LocalProtocolError, d.create_request, "INFO", via=VIA)
        self.assertRaises(LocalProtocolError, d.confirm)


class NextHopTests(SynchronousTestCase):
    """
    L{Dialog.next_hop}: where RFC 3263 resolution of the dialog's requests
    starts (sections 8.1.2 and 12.2.1.1).
    """

    def test_first_route(self) -> None:
        """With a route set, the first route's URI; a request built without a Via has none."""
        d = dialog()
        self.assertEqual(str(d.next_hop()), "sip:p1.example.com;lr")
        self.assertFalse(d.create_request("NOTIFY", via=None).has_header("via"))

    def test_strict_first_route(self) -> None:
        """A strict router is the next hop too (it is the Request-URI)."""
        d = dialog(record_route="Record-Route: <sip:strict.example.com>\n")
        self.assertEqual(str(d.next_hop()), "sip:strict.example.com")
        self.assertEqual(str(d.create_request("BYE", via=VIA).uri), "sip:strict.example.com")

    def test_remote_target(self) -> None:
        """Without a route set, the remote target."""
        d = dialog(record_route="")
        self.assertEqual(str(d.next_hop()), "sip:alice@192.0.2.1:5070;transport=udp")

    def test_secure(self) -> None:
        """A dialog a sips: request made has a sips: next hop, so only TLS reaches it."""
        d = dialog(ruri="sips:conf@example.com", record_route="")
        hop = d.next_hop()
        assert hop is not None
        self.assertEqual(hop.scheme, "sips")
        self.assertEqual(d.remote_target.scheme, "sip")  # the dialog's own is left alone

    def test_not_sip(self) -> None:
        """A remote target of another scheme has no next hop to resolve."""
        d = dialog(record_route="")
        d.remote_target = parse_uri("tel:+15550100")
        self.assertIsNone(d.next_hop())


class DialogTableTests(SynchronousTestCase):
    """
    L{DialogTable}.
    """

    def test_add_find_remove(self) -> None:
        """Dialogs are found by Call-ID, our To tag and their From tag."""
        table = DialogTable()
        d = dialog()
        table.add(d)
        self.assertEqual(len(table), 1)
        self.assertEqual(list(table), [d])
        self.assertIs(table.find(incoming("INFO", cseq=11, to_tag="conf1")), d)
        self.assertIsNone(table.find(incoming("INFO", cseq=11, to_tag="other")))
        self.assertIsNone(table.find(incoming("INFO", to_tag="conf1", from_tag="eve")))
        self.assertIsNone(table.find(incoming("INFO")))
        self.assertRaises(LocalProtocolError, table.add, d)
        table.remove(d)
        table.remove(d)
        self.assertEqual(len(table), 0)

    def test_match(self) -> None:
        """No To tag: outside dialogs; known: checked; unknown: 481; stray ACK: none."""
        table = DialogTable()
        d = dialog()
        table.add(d)
        self.assertIsNone(table.match(incoming("INVITE", call_id="new")))
        self.assertIs(table.match(incoming("INFO", cseq=11, to_tag="conf1")), d)
        self.assertEqual(d.remote_cseq, 11)
        error = self.assertRaises(RemoteProtocolError, table.match, incoming("INFO", to_tag="gone"))
        self.assertEqual(error.status, 481)
        self.assertIsNone(table.match(incoming("ACK", to_tag="gone")))

    def test_bye(self) -> None:
        """BYE gets 200, terminates and forgets its dialog; again it is 481."""
        table = DialogTable()
        d = dialog()
        table.add(d)
        bye = incoming("BYE", cseq=11, to_tag="conf1")
        response = table.answer_bye(bye)
        self.assertEqual(response.code, 200)
        self.assertEqual(response.to.tag, "conf1")
        self.assertEqual(d.state, TERMINATED)
        self.assertEqual(len(table), 0)
        error = self.assertRaises(RemoteProtocolError, table.answer_bye, bye)
        self.assertEqual(error.status, 481)

    def test_bye_without_tag(self) -> None:
        """A BYE without a To tag is a 481."""
        error = self.assertRaises(RemoteProtocolError, DialogTable().answer_bye, incoming("BYE"))
        self.assertEqual(error.status, 481)

    def test_bye_out_of_order(self) -> None:
        """A BYE with a stale CSeq is a 500 and leaves the dialog up."""
        table = DialogTable()
        d = dialog()
        table.add(d)
        bye = incoming("BYE", cseq=5, to_tag="conf1")
        error = self.assertRaises(RemoteProtocolError, table.answer_bye, bye)
        self.assertEqual(error.status, 500)
        self.assertEqual(d.state, CONFIRMED)
        self.assertEqual(len(table), 1)
