# -*- test-case-name: tests.unit.sip.test_multipart -*-
"""
Tests for L{conference.sip.multipart}.
"""

from __future__ import annotations

from typing import List

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from conference.sip.errors import LocalProtocolError, RemoteProtocolError
from conference.sip.headers import parse_media_type
from conference.sip.multipart import (
    BodyPart,
    build_multipart,
    envelope,
    find_content_id,
    parse_multipart,
    serialize_part,
)
from conference.sip.parser import parse_datagram
from tests.shared import corpus

SIMPLE = (
    b"preamble text\r\n"
    b"--xyz\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-ID: <sdp@example.com>\r\n"
    b"\r\n"
    b"v=0\r\n"
    b"\r\n--xyz  \r\n"
    b"Content-Type: text/plain;\r\n charset=utf-8\r\n"
    b"\r\n"
    b"hello\r\n"
    b"--xyz--\r\n"
    b"epilogue"
)


class ParseTests(SynchronousTestCase):
    """
    parse_multipart on well-formed bodies.
    """

    def test_parts(self) -> None:
        """
        Parts, their headers and bodies, the preamble and epilogue come out.
        """
        m = parse_multipart(SIMPLE, "multipart/mixed; boundary=xyz")
        self.assertEqual(m.boundary, "xyz")
        self.assertEqual(m.preamble, b"preamble text")
        self.assertEqual(m.epilogue, b"epilogue")
        self.assertEqual(len(m.parts), 2)
        sdp, text = m.parts
        self.assertEqual(sdp.content_type, "application/sdp")
        self.assertEqual(sdp.content_id, "sdp@example.com")
        self.assertEqual(sdp.body, b"v=0\r\n")
        self.assertEqual(text.media_type.params, {"charset": "utf-8"})
        self.assertEqual(text.body, b"hello")
        self.assertEqual(text.header("CONTENT-TYPE"), "text/plain; charset=utf-8")

    def test_raw(self) -> None:
        """
        Each part's raw bytes are exactly those between its delimiters.
        """
        m = parse_multipart(SIMPLE, "multipart/mixed; boundary=xyz")
        self.assertEqual(
            m.parts[0].raw,
            b"Content-Type: application/sdp\r\nContent-ID: <sdp@example.com>\r\n\r\nv=0\r\n",
        )
        self.assertEqual(serialize_part(m.parts[0]), m.parts[0].raw)

    def test_defaults(self) -> None:
        """
        A part with no headers is text/plain; charset=us-ascii, or
        message/rfc822 inside multipart/digest.
        """
        body = b"--b\r\n\r\nplain\r\n--b--"
        self.assertEqual(
            parse_multipart(body, "multipart/mixed;boundary=b").parts[0].content_type,
            "text/plain;charset=us-ascii",
        )
        self.assertEqual(
            parse_multipart(body, "multipart/digest;boundary=b").parts[0].content_type,
            "message/rfc822",
        )

    def test_nested(self) -> None:
        """
        A nested multipart is parsed into the part's parts, found by walk
        and find_content_id.
        """
        inner_type, inner = build_multipart(
            [BodyPart("text/plain", b"a"), BodyPart("text/html", b"<b>a</b>", content_id="h@x")],
            "alternative",
        )
        outer_type, outer = build_multipart(
            [BodyPart(inner_type, inner), BodyPart("application/sdp", b"v=0\r\n")]
        )
        m = parse_multipart(outer, outer_type)
        self.assertTrue(m.parts[0].is_multipart)
        self.assertEqual([p.body for p in m.parts[0].parts], [b"a", b"<b>a</b>"])
        self.assertEqual(len(m.walk()), 4)
        found = find_content_id(m, "h@x")
        assert found is not None
        self.assertEqual(found.content_type, "text/html")
        self.assertIsNone(find_content_id(m, "nope"))

    def test_bareLF(self) -> None:
        """
        Bodies written with bare LF line ends still parse.
        """
        m = parse_multipart(
            b"--b\nContent-Type: text/x\n\nhi\n--b--\n", "multipart/mixed;boundary=b"
        )
        self.assertEqual((m.parts[0].content_type, m.parts[0].body), ("text/x", b"hi"))

    def test_boundaryPrefix(self) -> None:
        """
        A line that merely starts with the boundary is not a delimiter.
        """
        body = b"--b\r\n\r\n--bx\r\n--b--"
        self.assertEqual(parse_multipart(body, "multipart/mixed;boundary=b").parts[0].body, b"--bx")

    def test_decoded(self) -> None:
        """
        base64 and quoted-printable transfer encodings are undone; unknown
        ones are a 400.
        """
        body = (
            b"--b\r\nContent-Transfer-Encoding: base64\r\n\r\naGk=\r\n"
            b"--b\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\na=3Db\r\n"
            b"--b\r\nContent-Transfer-Encoding: x-rot13\r\n\r\nuv\r\n--b--"
        )
        parts = parse_multipart(body, "multipart/mixed;boundary=b").parts
        self.assertEqual(parts[0].decoded(), b"hi")
        self.assertEqual(parts[1].decoded(), b"a=b")
        e = self.assertRaises(RemoteProtocolError, parts[2].decoded)
        self.assertIn("x-rot13", e.reason)

    def test_mpart01(self) -> None:
        """
        RFC 4475's mpart01 splits into its text and binary parts, bytes kept.
        """
        message = parse_datagram(corpus("rfc4475", "mpart01.dat").read_bytes())
        assert message is not None and message.content_type is not None
        m = parse_multipart(message.body, message.content_type)
        self.assertEqual(
            [p.content_type for p in m.parts], ["text/plain", "application/octet-stream"]
        )
        self.assertEqual(m.parts[0].body, b"Hello")
        binary = m.parts[1].body
        self.assertEqual(len(binary), 342)
        self.assertTrue(binary.startswith(b"0\x82\x01R\x06\t*\x86H\x86\xf7\r\x01\x07\x02"))
        self.assertIn(m.parts[1].raw, message.body)


class RefusalTests(SynchronousTestCase):
    """
    parse_multipart refuses bad bodies with a 400 naming the fault.
    """

    def check(self, body: bytes, content_type: str, words: str, status: int = 400) -> None:
        """
        Parsing raises RemoteProtocolError with C{status} and C{words}.
        """
        e = self.assertRaises(RemoteProtocolError, parse_multipart, body, content_type)
        self.assertEqual(e.status, status)
        self.assertIn(words, e.reason)

    def test_notMultipart(self) -> None:
        """
        A non-multipart type is refused.
        """
        self.check(b"x", "text/plain", "not a multipart type")

    def test_noBoundary(self) -> None:
        """
        A multipart type without boundary is refused.
        """
        self.check(b"x", "multipart/mixed", "without a boundary")

    def test_badBoundary(self) -> None:
        """
        A boundary over 70 characters is refused.
        """
        self.check(b"x", "multipart/mixed;boundary=" + "a" * 71, "1 to 70")

    def test_noDelimiter(self) -> None:
        """
        A body without any delimiter is refused.
        """
        self.check(b"hello", "multipart/mixed;boundary=b", "no delimiter")

    def test_noClose(self) -> None:
        """
        A body without the close delimiter is refused.
        """
        self.check(b"--b\r\n\r\nx\r\n--b\r\n\r\ny", "multipart/mixed;boundary=b", "close delimiter")

    def test_noParts(self) -> None:
        """
        A body that closes at once has no parts and is refused.
        """
        self.check(b"--b--\r\n", "multipart/mixed;boundary=b", "no body parts")

    def test_badHeader(self) -> None:
        """
        A part header line without a colon is refused, naming the part.
        """
        self.check(
            b"--b\r\n\r\nx\r\n--b\r\nnonsense\r\n\r\ny\r\n--b--",
            "multipart/mixed;boundary=b",
            "part 2",
        )

    def test_badPartType(self) -> None:
        """
        A part with a malformed Content-Type is refused.
        """
        self.check(
            b"--b\r\nContent-Type: nonsense\r\n\r\nx\r\n--b--",
            "multipart/mixed;boundary=b",
            "Content-Type",
        )

    def test_tooLarge(self) -> None:
        """
        A body over the size cap is a 413.
        """
        e = self.assertRaises(
            RemoteProtocolError,
            parse_multipart,
            b"--b\r\n\r\nxx\r\n--b--",
            "multipart/mixed;boundary=b",
            max_size=5,
        )
        self.assertEqual(e.status, 413)

    def test_tooDeep(self) -> None:
        """
        Nesting deeper than max_depth is refused.
        """
        content_type, body = build_multipart([BodyPart("text/plain", b"x")])
        for _ in range(3):
            content_type, body = build_multipart([BodyPart(content_type, body)])
        parse_multipart(body, content_type, max_depth=3)
        e = self.assertRaises(RemoteProtocolError, parse_multipart, body, content_type, max_depth=2)
        self.assertIn("nested deeper", e.reason)

    def test_tooManyParts(self) -> None:
        """
        More parts than max_parts are refused.
        """
        content_type, body = build_multipart([BodyPart("text/plain", b"x")] * 3)
        e = self.assertRaises(RemoteProtocolError, parse_multipart, body, content_type, max_parts=2)
        self.assertIn("more than 2 parts", e.reason)


class BuildTests(SynchronousTestCase):
    """
    build_multipart.
    """

    def test_headers(self) -> None:
        """
        Content-Type, Content-ID, Content-Disposition and extra headers are
        written, and the Content-Type carries the boundary and parameters.
        """
        content_type, body = build_multipart(
            [
                BodyPart(
                    "application/sdp",
                    b"v=0\r\n",
                    content_id="a@b",
                    disposition="session",
                    headers=(("X-Extra", "1"),),
                )
            ],
            "related",
            boundary="bnd",
            params=(("type", "application/sdp"),),
        )
        self.assertEqual(content_type, 'multipart/related;boundary=bnd;type="application/sdp"')
        self.assertEqual(
            body,
            b"--bnd\r\nContent-Type: application/sdp\r\nContent-ID: <a@b>\r\n"
            b"Content-Disposition: session\r\nX-Extra: 1\r\n\r\nv=0\r\n\r\n--bnd--\r\n",
        )

    def test_boundaryAvoidsContent(self) -> None:
        """
        A given boundary that occurs in a part is refused; a random one never
        occurs in any part.
        """
        parts = [BodyPart("text/plain", b"--bnd")]
        self.assertRaises(LocalProtocolError, build_multipart, parts, boundary="bnd")
        self.assertRaises(LocalProtocolError, build_multipart, [])
        content_type, body = build_multipart(parts)
        boundary = parse_media_type(content_type).params["boundary"]
        self.assertNotIn(boundary.encode(), b"--bnd")
        self.assertEqual(parse_multipart(body, content_type).parts[0].body, b"--bnd")

    def test_lineBreak(self) -> None:
        """
        A part header holding a line break is refused.
        """
        self.assertRaises(
            LocalProtocolError, build_multipart, [BodyPart("text/plain\r\nX: y", b"")]
        )

    def test_keepsParsedParts(self) -> None:
        """
        Parsed parts are re-sent byte for byte (signatures stay valid).
        """
        m = parse_multipart(SIMPLE, "multipart/mixed; boundary=xyz")
        content_type, body = build_multipart(m.parts, boundary="other")
        again = parse_multipart(body, content_type)
        self.assertEqual([p.raw for p in again.parts], [p.raw for p in m.parts])


_bytes = st.binary(max_size=60)
_types = st.sampled_from(["text/plain", "application/sdp", "application/octet-stream"])


class EnvelopeTests(SynchronousTestCase):
    """
    envelope: a multipart built once, its first part's content filled per message.
    """

    def test_fill_matches_build(self) -> None:
        """A filled envelope is what build_multipart writes with the same boundary."""
        made = envelope(
            BodyPart("application/sdp", b"", disposition="session"),
            [BodyPart("text/plain", b"fixed", disposition="render")],
        )
        filled = made.fill(b"v=0\r\n")
        assert filled is not None
        content_type, body = filled
        boundary = parse_media_type(content_type).params["boundary"]
        self.assertEqual(
            (content_type, body),
            build_multipart(
                [
                    BodyPart("application/sdp", b"v=0\r\n", disposition="session"),
                    BodyPart("text/plain", b"fixed", disposition="render"),
                ],
                boundary=boundary,
            ),
        )
        parsed = parse_multipart(body, parse_media_type(content_type))
        self.assertEqual([p.body for p in parsed.parts], [b"v=0\r\n", b"fixed"])

    def test_content_holding_delimiter(self) -> None:
        """Content that holds the delimiter is refused (None): the caller builds anew."""
        made = envelope(BodyPart("text/plain", b""), [BodyPart("text/plain", b"x")])
        self.assertIsNone(made.fill(b"a" + made.delimiter + b"b"))


class PropertyTests(SynchronousTestCase):
    """
    Round trips and robustness on random input.
    """

    @settings(max_examples=200, deadline=None)
    @given(
        st.lists(st.tuples(_types, _bytes), min_size=1, max_size=5),
        st.sampled_from(["mixed", "alternative"]),
    )
    def test_roundTrip(self, parts: List[tuple[str, bytes]], subtype: str) -> None:
        """
        Whatever the bodies, building then parsing gives them back exactly.
        """
        content_type, body = build_multipart([BodyPart(t, b) for t, b in parts], subtype)
        m = parse_multipart(body, content_type)
        self.assertEqual([(p.content_type, p.body) for p in m.parts], parts)

    @settings(max_examples=200, deadline=None)
    @given(st.binary(max_size=200))
    def test_randomBodies(self, body: bytes) -> None:
        """
        Random bodies either parse or raise RemoteProtocolError, nothing else.
        """
        try:
            m = parse_multipart(b"--b\r\n" + body + b"\r\n--b--", "multipart/mixed;boundary=b")
        except RemoteProtocolError as e:
            self.assertEqual(e.status, 400)
        else:
            self.assertGreaterEqual(len(m.parts), 1)
