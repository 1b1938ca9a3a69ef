# -*- test-case-name: tests.unit.sip.test_quick -*-
"""
Tests for L{conference.sip.quick}: reading a request's few lines without
the parser, and the stateless refusal built from them.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from conference.sip.message import Request
from conference.sip.parser import parse_datagram
from conference.sip.quick import peek, refusal, reply_port
from tests.builders import parse_response, request_bytes

INVITE = request_bytes(
    "INVITE",
    "sip:room@example.com",
    branch="z9hG4bKq1",
    via_host="192.0.2.7:5070",
    headers=[("Contact", "<sip:a@192.0.2.7:5070>")],
    body=b"v=0\r\n",
)


class PeekTests(SynchronousTestCase):
    """
    What the quick reader takes from a request, and what it declines.
    """

    def test_request(self) -> None:
        """Method, branch, no To tag, and the lines a response copies."""
        found = peek(INVITE)
        assert found is not None
        self.assertEqual((found.method, found.branch, found.to_tag), ("INVITE", "z9hG4bKq1", None))
        self.assertEqual(len(found.vias), 1)
        self.assertTrue(found.lines[3].startswith(b"CSeq: 1 INVITE"))

    def test_compact_and_tag(self) -> None:
        """Compact header names are read, and a To tag is found."""
        data = (
            b"BYE sip:a@x SIP/2.0\r\nv: SIP/2.0/UDP h:1;branch=z9hG4bKc\r\n"
            b"f: <sip:b@x>;tag=1\r\nt: <sip:a@x>;tag=2\r\ni: c\r\nCSeq: 2 BYE\r\n\r\n"
        )
        found = peek(data)
        assert found is not None
        self.assertEqual((found.method, found.branch, found.to_tag), ("BYE", "z9hG4bKc", "2"))

    def test_declined(self) -> None:
        """Responses, folded or repeated headers, missing ones and RFC 2543 branches: None."""
        declined = [
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKr\r\n\r\n",
            INVITE.replace(b"Call-ID: call-1@test\r\n", b""),
            INVITE.replace(b"Call-ID: call-1@test\r\n", b"Call-ID: a\r\n b\r\n"),
            INVITE.replace(b"CSeq: 1 INVITE\r\n", b"CSeq: 1 INVITE\r\nCSeq: 2 INVITE\r\n"),
            INVITE.replace(b"branch=z9hG4bKq1", b"branch=old2543"),
            INVITE.replace(b"\r\n\r\n", b"\r\n"),
            b"INVITE sip:x SIP/2.0",
            b"",
        ]
        for data in declined:
            self.assertIsNone(peek(data), data)

    @given(st.binary(max_size=600))
    @settings(max_examples=300)
    def test_never_raises(self, data: bytes) -> None:
        """Any bytes give a Peek or None, never an exception."""
        peek(data)
        peek(INVITE[: len(data) % len(INVITE)] + data)


class RefusalTests(SynchronousTestCase):
    """
    The 503 built from a peek.
    """

    def test_refusal_parses(self) -> None:
        """The refusal is a valid response matching the request, with our To tag."""
        found = peek(INVITE)
        assert found is not None
        data = refusal(
            found, 503, "Service Unavailable", to_tag="qt", headers=[("Retry-After", "7")]
        )
        response = parse_response(data)
        request = parse_datagram(INVITE)
        assert isinstance(request, Request)
        self.assertEqual(response.code, 503)
        self.assertEqual(response.header("retry-after"), "7")
        self.assertEqual(response.top_via.branch, "z9hG4bKq1")
        self.assertEqual((response.call_id, response.cseq.number), (request.call_id, 1))
        self.assertEqual((response.to.tag, response.from_.tag), ("qt", request.from_.tag))
        self.assertEqual(response.body, b"")

    def test_existing_tag_kept(self) -> None:
        """A request already tagged keeps its To tag."""
        data = request_bytes("MESSAGE", "sip:a@x", to="<sip:a@x>;tag=theirs")
        found = peek(data)
        assert found is not None
        self.assertEqual(parse_response(refusal(found, 503, "X", to_tag="qt")).to.tag, "theirs")

    def test_reply_port(self) -> None:
        """With rport the source port, else the Via's sent-by port, else 5060."""
        cases = [
            (request_bytes("MESSAGE", via_host="192.0.2.7:5070", rport=True), 40000),
            (request_bytes("MESSAGE", via_host="192.0.2.7:5070"), 5070),
            (request_bytes("MESSAGE", via_host="192.0.2.7"), 5060),
            (request_bytes("MESSAGE", via_host="[2001:db8::1]:5072"), 5072),
            (request_bytes("MESSAGE", via_host="[2001:db8::1]"), 5060),
        ]
        for data, port in cases:
            found = peek(data)
            assert found is not None
            self.assertEqual(reply_port(found, 40000), port, data)
