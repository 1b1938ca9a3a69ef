# -*- test-case-name: tests.unit.sip.test_message -*-
"""
Tests for L{conference.sip.message}.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from conference.sip import message as message_module
from conference.sip.errors import LocalProtocolError, RemoteProtocolError
from conference.sip.message import (
    Request,
    Response,
    canonical_name,
    display_name,
    error_response,
    make_response,
)
from conference.sip.uri import SIPURI, parse_uri


def invite() -> Request:
    """
    A request with the headers a response copies.
    """
    r = Request("INVITE", parse_uri("sip:bob@example.com"), b"v=0\r\n")
    r.add_header("Via", "SIP/2.0/UDP h;branch=z9hG4bK1")
    r.add_header("v", "SIP/2.0/TCP g;branch=z9hG4bK2, SIP/2.0/UDP f")
    r.add_header("f", '"Alice" <sip:alice@example.com>;tag=a1')
    r.add_header("t", "<sip:bob@example.com>")
    r.add_header("i", "call-1")
    r.add_header("CSeq", "7 INVITE")
    r.add_header("m", "<sip:alice@h1>, <sip:alice@h2>;q=0.5")
    r.add_header("c", "application/sdp")
    return r


class NameTests(SynchronousTestCase):
    """
    Header name normalisation.
    """

    def test_canonical(self) -> None:
        """
        Compact and odd-case names map to the lower-case long form.
        """
        self.assertEqual(canonical_name(" V "), "via")
        self.assertEqual(canonical_name("Call-ID"), "call-id")

    def test_canonical_remembered_boundedly(self) -> None:
        """
        Names are remembered up to the bound; past it they are still mapped
        right, only not remembered.
        """
        self.patch(message_module, "_CANONICAL_NAMES", {})
        self.patch(message_module, "_MAX_CANONICAL_NAMES", 2)
        names = ["X-A", "x-b", "I", "Content-Type"]
        self.assertEqual(
            [canonical_name(n) for n in names * 2], ["x-a", "x-b", "call-id", "content-type"] * 2
        )
        self.assertEqual(message_module._CANONICAL_NAMES, {"X-A": "x-a", "x-b": "x-b"})

    def test_display(self) -> None:
        """
        Long forms get their conventional capitalisation.
        """
        self.assertEqual(display_name("call-id"), "Call-ID")
        self.assertEqual(display_name("x-foo-bar"), "X-Foo-Bar")


class MessageTests(SynchronousTestCase):
    """
    Header storage, typed views and serialization.
    """

    def test_twistedNames(self) -> None:
        """
        Requests and responses answer to the names of Twisted's classes:
        headers by long lower-case name, addHeader, toString.
        """
        r = invite()
        r.addHeader("l", "5")
        self.assertEqual(r.headers["content-length"], ["5"])
        self.assertEqual(r.headers["from"], ['"Alice" <sip:alice@example.com>;tag=a1'])
        self.assertTrue(r.toString().startswith("INVITE sip:bob@example.com SIP/2.0\r\n"))
        response = Response(486)
        self.assertEqual((response.code, response.phrase), (486, "Busy Here"))
        self.assertTrue(response.toString().startswith("SIP/2.0 486 Busy Here\r\n"))

    def test_defaultPhrase(self) -> None:
        """
        A response without a reason phrase gets the registered one, or
        Unknown.
        """
        self.assertEqual(Response(202).phrase, "Accepted")
        self.assertEqual(Response(500).phrase, "Internal Server Error")
        self.assertEqual(Response(299).phrase, "Unknown")

    def test_headers(self) -> None:
        """
        Fields are stored under long names, in order, and list values split.
        """
        r = invite()
        self.assertEqual(r.header("i"), "call-1")
        self.assertEqual(len(r.header_fields("via")), 2)
        self.assertEqual(len(r.header_values("via")), 3)
        self.assertTrue(r.has_header("contact"))
        r.set_header("contact", ["<sip:x@y>"])
        self.assertEqual(r.header_values("m"), ["<sip:x@y>"])
        r.remove_header("contact")
        r.remove_header("contact")
        self.assertFalse(r.has_header("m"))
        self.assertIsNone(r.header("contact"))

    def test_lineBreakRefused(self) -> None:
        """
        A header value with CR or LF is refused.
        """
        self.assertRaises(LocalProtocolError, invite().add_header, "X", "a\r\nB: c")

    def test_typedViews(self) -> None:
        """
        Call-ID, CSeq, Via, From/To, Contact and Content-Type parse lazily.
        """
        r = invite()
        self.assertEqual(r.call_id, "call-1")
        self.assertEqual(tuple(r.cseq), (7, "INVITE"))
        self.assertEqual([v.host for v in r.vias], ["h", "g", "f"])
        self.assertEqual(r.top_via.branch, "z9hG4bK1")
        self.assertEqual((r.from_.display_name, r.from_.tag), ("Alice", "a1"))
        self.assertIsNone(r.to.tag)
        self.assertEqual([c.params.get("q") for c in r.contacts], [None, "0.5"])
        content_type = r.content_type
        assert content_type is not None
        self.assertEqual(content_type.mime, "application/sdp")

    def test_missing(self) -> None:
        """
        Typed views of absent required headers raise LocalProtocolError.
        """
        r = Request("OPTIONS", SIPURI("h"))
        for name in ("call_id", "cseq", "top_via", "from_", "to"):
            self.assertRaises(LocalProtocolError, getattr, r, name)
        self.assertIsNone(r.content_type)

    def test_toBytes(self) -> None:
        """
        Serialization sets Content-Length from the body, last.
        """
        data = invite().to_bytes()
        self.assertTrue(data.startswith(b"INVITE sip:bob@example.com SIP/2.0\r\nVia: "))
        self.assertIn(b"\r\nCall-ID: call-1\r\n", data)
        self.assertTrue(data.endswith(b"Content-Length: 5\r\n\r\nv=0\r\n"))

    def test_responseChecks(self) -> None:
        """
        Status codes outside 100..699 and phrases with line breaks are
        refused; a missing phrase comes from the status code.
        """
        self.assertRaises(LocalProtocolError, Response, 99)
        self.assertRaises(LocalProtocolError, Response, 200, "a\nb")
        self.assertEqual(Response(404).phrase, "Not Found")

    def test_bodyDataReceived(self) -> None:
        """
        Twisted's body API appends bytes or UTF-8 text.
        """
        r = Request("MESSAGE", SIPURI("h"))
        r.bodyDataReceived("é")
        r.bodyDataReceived(b"\x00")
        self.assertEqual(r.body, b"\xc3\xa9\x00")
        self.assertIn("MESSAGE sip:h SIP/2.0", r.toString())


class MakeResponseTests(SynchronousTestCase):
    """
    make_response (RFC 3261 section 8.2.6).
    """

    def test_copies(self) -> None:
        """
        Via, From, To, Call-ID and CSeq are copied; To gets the tag.
        """
        r = invite()
        resp = make_response(r, 486, to_tag="b2", headers=[("Retry-After", "60")])
        self.assertEqual(resp.header_fields("via"), r.header_fields("via"))
        self.assertEqual(resp.header("from"), r.header("from"))
        self.assertEqual(resp.to.tag, "b2")
        self.assertEqual((resp.call_id, resp.cseq), (r.call_id, r.cseq))
        self.assertEqual(resp.header("retry-after"), "60")
        self.assertFalse(resp.has_header("contact"))

    def test_noTagOn100(self) -> None:
        """
        A 100 never gets a To tag, and an existing tag is kept.
        """
        r = invite()
        self.assertIsNone(make_response(r, 100, to_tag="x").to.tag)
        r.set_header("to", "<sip:bob@example.com>;tag=old")
        self.assertEqual(make_response(r, 200, to_tag="new").to.tag, "old")

    def test_record_route(self) -> None:
        """A 18x/2xx to a dialog-creating request copies Record-Route in order; others do not."""
        r = invite()
        r.add_header("record-route", "<sip:p1.example.com;lr>")
        r.add_header("record-route", "<sip:p2.example.com;lr>, <sip:p3.example.com;lr>")
        for code in (180, 200):
            self.assertEqual(
                make_response(r, code, to_tag="b2").header_values("record-route"),
                ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>", "<sip:p3.example.com;lr>"],
            )
        for code in (100, 404):
            self.assertFalse(make_response(r, code, to_tag="b2").has_header("record-route"))
        self.assertFalse(make_response(invite(), 200, to_tag="b2").has_header("record-route"))
        message = invite()
        message.method = "MESSAGE"
        message.add_header("record-route", "<sip:p1.example.com;lr>")
        self.assertFalse(make_response(message, 200, to_tag="b2").has_header("record-route"))

    def test_errorResponse(self) -> None:
        """
        error_response answers with the error's status, reason and headers.
        """
        error = RemoteProtocolError("Bad Extension", 420, [("Unsupported", "foo")])
        resp = error_response(invite(), error, "t9")
        self.assertEqual((resp.code, resp.phrase, resp.to.tag), (420, "Bad Extension", "t9"))
        self.assertEqual(resp.header("unsupported"), "foo")
        self.assertEqual(resp.call_id, "call-1")


class ViewCacheTests(SynchronousTestCase):
    """
    The typed views are remembered, and parsed again whenever the fields
    they came from change, however they were changed.
    """

    def test_same_object_while_unchanged(self) -> None:
        """Two reads of an unchanged header give the same parsed object."""
        r = invite()
        self.assertIs(r.to, r.to)
        self.assertIs(r.top_via, r.top_via)
        self.assertIs(r.cseq, r.cseq)

    def test_set_header_refreshes(self) -> None:
        """After set_header the view describes the new value."""
        r = invite()
        self.assertIsNone(r.to.tag)
        r.set_header("to", "<sip:carol@example.com>;tag=z")
        self.assertEqual((r.to.tag, str(r.to.uri)), ("z", "sip:carol@example.com"))
        r.set_header("cseq", "8 INVITE")
        self.assertEqual(r.cseq.number, 8)

    def test_direct_edit_refreshes(self) -> None:
        """Editing the header lists directly (as received/rport does) refreshes the views."""
        r = invite()
        self.assertEqual(r.top_via.host, "h")
        r.headers["via"][0] = "SIP/2.0/UDP h;branch=z9hG4bK1;received=192.0.2.9"
        self.assertEqual(r.top_via.received, "192.0.2.9")
        r.headers["via"].append("SIP/2.0/UDP e")
        self.assertEqual([v.host for v in r.vias], ["h", "g", "f", "e"])
        r.headers["contact"] = ["<sip:dave@h3>"]
        self.assertEqual([str(c.uri) for c in r.contacts], ["sip:dave@h3"])
        del r.headers["to"]
        self.assertRaises(LocalProtocolError, lambda: r.to)

    def test_add_and_remove_refresh(self) -> None:
        """add_header and remove_header refresh list views and single ones."""
        r = invite()
        self.assertEqual(len(r.vias), 3)
        r.add_header("via", "SIP/2.0/UDP d")
        self.assertEqual(len(r.vias), 4)
        r.remove_header("content-type")
        self.assertIsNone(r.content_type)
        r.add_header("content-type", "text/plain")
        ctype = r.content_type
        assert ctype is not None
        self.assertEqual(ctype.mime, "text/plain")

    def test_vias_list_is_a_copy(self) -> None:
        """Changing the list vias returns does not change the message's view."""
        r = invite()
        r.vias.clear()
        self.assertEqual(len(r.vias), 3)

    def test_forget_views(self) -> None:
        """Forgotten views are parsed again, to equal values."""
        r = invite()
        before = r.top_via
        r.forget_views()
        self.assertIsNot(r.top_via, before)
        self.assertEqual(r.top_via.branch, before.branch)

    def test_views_shared_between_messages(self) -> None:
        """Two messages with the same To, Contact and Content-Type text share those views."""
        first, second = invite(), invite()
        self.assertIs(first.to, second.to)
        self.assertIs(first.parsed_contacts(), second.parsed_contacts())
        self.assertIs(first.content_type, second.content_type)
        self.assertIsNot(first.top_via, second.top_via)  # Vias are never shared

    def test_shared_view_follows_the_text(self) -> None:
        """A message whose field differs gets its own view, not another message's."""
        first, second = invite(), invite()
        second.set_header("to", "<sip:carol@example.com>")
        self.assertEqual(str(first.to.uri), "sip:bob@example.com")
        self.assertEqual(str(second.to.uri), "sip:carol@example.com")

    def test_shared_views_bounded(self) -> None:
        """The shared views are forgotten all at once when the bound is reached."""
        message = message_module
        self.patch(message, "_MAX_SHARED_VIEWS", 3)
        self.addCleanup(message._SHARED_VIEWS.clear)
        message._SHARED_VIEWS.clear()
        for n in range(3):
            r = invite()
            r.set_header("to", f"<sip:u{n}@example.com>")
            _ = r.to
        self.assertEqual(len(message._SHARED_VIEWS), 3)
        r = invite()
        r.set_header("to", "<sip:u3@example.com>")
        _ = r.to
        self.assertEqual(list(message._SHARED_VIEWS), [("to", "<sip:u3@example.com>")])

    def test_shared_views_keep_no_fault(self) -> None:
        """A malformed field raises at every message that holds it."""
        for _ in range(2):
            r = invite()
            r.set_header("to", "<sip:bob@example.com")
            self.assertRaises(RemoteProtocolError, getattr, r, "to")

    def test_make_response_remembers_to(self) -> None:
        """A response's tagged To view is the address it was built from, and survives edits."""
        r = invite()
        resp = make_response(r, 404, to_tag="b3")
        self.assertEqual(resp.to.tag, "b3")
        self.assertEqual(resp.header("to"), "<sip:bob@example.com>;tag=b3")
        self.assertEqual(resp.top_via.branch, "z9hG4bK1")
        resp.set_header("to", "<sip:bob@example.com>;tag=other")
        self.assertEqual(resp.to.tag, "other")
        self.assertIsNone(r.to.tag)

    def test_make_response_header_order(self) -> None:
        """The copied fields come in the same order as before: To (tagged) after CSeq."""
        resp = make_response(invite(), 486, to_tag="b2")
        self.assertEqual(
            [name for name, _ in resp.iter_headers()][:6],
            ["via", "via", "from", "call-id", "cseq", "to"],
        )

    def test_make_response_tag_appended(self) -> None:
        """The tagged To is the request's To as written, with the tag appended; it parses."""
        r = invite()
        r.set_header("to", '"Bob  B." <sip:bob@example.com;transport=udp> ;x=1')
        resp = make_response(r, 404, to_tag="t9")
        self.assertEqual(
            resp.header("to"), '"Bob  B." <sip:bob@example.com;transport=udp> ;x=1;tag=t9'
        )
        self.assertEqual(resp.to.tag, "t9")
        resp.forget_views()
        self.assertEqual((resp.to.tag, resp.to.params.get("x")), ("t9", "1"))

    def test_make_response_refuses_line_breaks(self) -> None:
        """A request field holding a line break (set directly) is still refused."""
        r = invite()
        r.headers["call-id"] = ["a\r\nX: y"]
        self.assertRaises(LocalProtocolError, make_response, r, 200)
