# -*- test-case-name: tests.unit.sip.test_parser -*-
"""
Tests for L{conference.sip.parser}.
"""

from __future__ import annotations

from typing import Dict, List, Optional

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from conference.sip.errors import LocalProtocolError, MessageTooLarge, RemoteProtocolError
from conference.sip.headers import Address, shared_method
from conference.sip.message import Message, Request, Response
from conference.sip.parser import (
    StreamParser,
    error_message,
    parse_datagram,
    parse_wire,
    validate,
)
from conference.sip.uri import SIPURI
from conference.sip.via import format_via, parse_via

HEAD = (
    "OPTIONS sip:bob@example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP h.example.com;branch=z9hG4bK1\r\n"
    "Max-Forwards: 70\r\n"
    "To: <sip:bob@example.com>\r\n"
    "From: <sip:alice@example.com>;tag=1\r\n"
    "Call-ID: c1\r\n"
    "CSeq: 1 OPTIONS\r\n"
)


def raw(
    extra: str = "", body: bytes = b"", length: Optional[int] = None, head: str = HEAD
) -> bytes:
    """
    A request with extra header lines, a body and a Content-Length (the
    body's length unless given; -1 leaves it out).
    """
    if length is None:
        length = len(body)
    cl = f"Content-Length: {length}\r\n" if length >= 0 else ""
    return (head + extra + cl + "\r\n").encode() + body


def refused(data: bytes) -> RemoteProtocolError:
    """
    The error parse_datagram raises for C{data}.
    """
    try:
        parse_datagram(data)
    except RemoteProtocolError as e:
        return e
    raise AssertionError("accepted")


class DatagramTests(SynchronousTestCase):
    """
    parse_datagram framing and header parsing.
    """

    def test_simple(self) -> None:
        """
        A plain request parses to a Request with typed views.
        """
        m = parse_datagram(raw(body=b"hi"))
        assert isinstance(m, Request)
        self.assertEqual((m.method, str(m.uri), m.body), ("OPTIONS", "sip:bob@example.com", b"hi"))
        self.assertEqual(m.cseq.number, 1)

    def test_known_method_shared(self) -> None:
        """A request's known method is the one shared string of that method, as its CSeq's is."""
        m = parse_datagram(raw())
        assert isinstance(m, Request)
        self.assertIs(m.method, shared_method("OPTIONS"))
        self.assertIs(m.cseq.method, m.method)

    def test_keepAlive(self) -> None:
        """
        A datagram of CRLFs is not a message.
        """
        self.assertIsNone(parse_datagram(b"\r\n\r\n"))

    def test_leadingCRLF(self) -> None:
        """
        CRLFs before the start line are skipped.
        """
        self.assertIsNotNone(parse_datagram(b"\r\n\r\n" + raw()))

    def test_compactAndFolding(self) -> None:
        """
        Compact names, odd case, folding and empty values are handled.
        """
        m = parse_datagram(raw("s:\r\nX-Long: a\r\n  b\r\n\tc\r\nSUPPORTED : timer\r\n"))
        assert m is not None
        self.assertEqual(m.header("subject"), "")
        self.assertEqual(m.header("x-long"), "a b c")
        self.assertEqual(m.header("k"), "timer")

    def test_noContentLength(self) -> None:
        """
        Over UDP, without Content-Length the rest is the body.
        """
        m = parse_datagram(raw(body=b"abc", length=-1))
        assert m is not None
        self.assertEqual(m.body, b"abc")

    def test_extraOctets(self) -> None:
        """
        Octets after Content-Length are discarded.
        """
        m = parse_datagram(raw(body=b"abcdef", length=2))
        assert m is not None
        self.assertEqual(m.body, b"ab")

    def test_binaryBody(self) -> None:
        """
        Bodies stay bytes, whatever they hold.
        """
        m = parse_datagram(raw(body=b"\xff\x00\r\n\r\n\xfe"))
        assert m is not None
        self.assertEqual(m.body, b"\xff\x00\r\n\r\n\xfe")

    def test_response(self) -> None:
        """
        Status lines parse, with UTF-8 or empty reason phrases.
        """
        head = HEAD.replace("OPTIONS sip:bob@example.com SIP/2.0", "SIP/2.0 486 Occupé")
        m = parse_datagram(raw(head=head))
        assert isinstance(m, Response)
        self.assertEqual((m.code, m.phrase), (486, "Occupé"))
        m = parse_datagram(raw(head=head.replace(" 486 Occupé", " 180")))
        assert isinstance(m, Response)
        self.assertEqual((m.code, m.phrase), (180, ""))

    def test_faults(self) -> None:
        """
        Framing and syntax faults raise 400 naming them, with the message.
        """
        cases = {
            raw("Bad Line\r\n"): "Malformed header line",
            raw("X: \xe9\r\n").replace(b"\xc3\xa9", b"\xe9"): "not UTF-8",
            raw("X: a\nb\r\n"): "Bare CR or LF",
            raw(length=10): "larger than the datagram",
            raw("Content-Length: 0\r\n"): "Multiple Content-Length",
            raw(length=-1)[:-4]: "not terminated",
            raw("Max-Forwards: 1\r\n"): "Multiple Max-Forwards",
        }
        for data, words in cases.items():
            e = refused(data)
            self.assertEqual(e.status, 400, words)
            self.assertIn(words, e.reason)
            self.assertIsInstance(error_message(e), Request, words)

    def test_version(self) -> None:
        """
        Another SIP version is 505; a garbled one 400.
        """
        e = refused(raw(head=HEAD.replace("SIP/2.0\r\n", "SIP/3.0\r\n", 1)))
        self.assertEqual(e.status, 505)
        self.assertIsNotNone(error_message(e))
        self.assertEqual(refused(raw(head=HEAD.replace("SIP/2.0\r\n", "SIPX\r\n", 1))).status, 400)

    def test_badStartLine(self) -> None:
        """
        Unreadable start lines raise 400 without a message.
        """
        for line in ("GARBAGE", "SIP/2.0 2000 OK", "SIP/2.0 099 x", "IN(VITE sip:a@b SIP/2.0"):
            e = refused(raw(head=line + "\r\n" + HEAD.split("\r\n", 1)[1]))
            self.assertEqual(e.status, 400, line)
            self.assertIsNone(error_message(e), line)

    def test_tooLarge(self) -> None:
        """
        Datagrams over max_size raise MessageTooLarge (513) with the message.
        """
        with self.assertRaises(MessageTooLarge) as cm:
            parse_datagram(raw(body=b"x" * 100), max_size=200)
        self.assertEqual(cm.exception.status, 513)
        self.assertIsNotNone(error_message(cm.exception))


class StreamTests(SynchronousTestCase):
    """
    StreamParser framing.
    """

    def test_bytewise(self) -> None:
        """
        Messages split at every byte and separated by CRLFs come out whole.
        """
        stream = b"\r\n" + raw(body=b"one") + b"\r\n\r\n" + raw(body=b"two")
        parser = StreamParser()
        got: List[Message] = []
        for i in range(len(stream)):
            got.extend(parser.feed(stream[i : i + 1]))
        self.assertEqual([m.body for m in got], [b"one", b"two"])
        self.assertEqual(parser.buffered, 0)

    def test_contentLengthRequired(self) -> None:
        """
        Without Content-Length the stream is broken; later feeds raise.
        """
        parser = StreamParser()
        with self.assertRaises(RemoteProtocolError) as cm:
            parser.feed(raw(length=-1))
        self.assertIn("Content-Length required", cm.exception.reason)
        self.assertIsNotNone(error_message(cm.exception))
        self.assertTrue(parser.broken)
        self.assertRaises(RemoteProtocolError, parser.feed, raw())

    def test_tooLarge(self) -> None:
        """
        A header section or message over max_size raises MessageTooLarge.
        """
        parser = StreamParser(max_size=300)
        self.assertRaises(MessageTooLarge, parser.feed, b"OPTIONS " + b"x" * 400)
        parser = StreamParser(max_size=300)
        self.assertRaises(MessageTooLarge, parser.feed, raw(length=1000))
        self.assertTrue(parser.broken)

    def test_badMessageDeferred(self) -> None:
        """
        A bad but framed message after a good one is raised on the next
        feed, and the stream goes on.
        """
        bad = raw(body=b"x").replace(b"CSeq: 1 OPTIONS", b"CSeq: 1 INVITE")
        parser = StreamParser()
        got = parser.feed(raw(body=b"a") + bad + raw(body=b"b"))
        self.assertEqual([m.body for m in got], [b"a"])
        self.assertTrue(parser.pending)
        with self.assertRaises(RemoteProtocolError) as cm:
            parser.feed(b"")
        self.assertIn("CSeq method", cm.exception.reason)
        self.assertEqual([m.body for m in parser.feed(b"")], [b"b"])
        self.assertFalse(parser.pending)
        self.assertFalse(parser.broken)


class ValidateTests(SynchronousTestCase):
    """
    validate on messages built in code.
    """

    def request(self) -> Request:
        """
        A valid request.
        """
        m = parse_datagram(raw())
        assert isinstance(m, Request)
        return m

    def test_valid(self) -> None:
        """
        A complete request validates.
        """
        validate(self.request())

    def test_faults(self) -> None:
        """
        Each missing or bad required header raises 400 naming it.
        """
        changes = {
            "to": (None, "Missing To"),
            "via": (None, "Missing Via"),
            "max-forwards": ("256", "Max-Forwards"),
            "cseq": ("1 BYE", "CSeq method"),
            "expires": ("99999999999", "Expires"),
            "content-length": ("5", "Content-Length does not match"),
            "content-type": ("text", "Content-Type"),
            "contact": ("*, <sip:a@b>", "'*' mixed"),
            "call-id": ("a b", "Call-ID"),
        }
        for name, (value, words) in changes.items():
            m = self.request()
            if value is None:
                m.remove_header(name)
            else:
                m.set_header(name, value)
            with self.assertRaises(RemoteProtocolError, msg=name) as cm:
                validate(m)
            self.assertIn(words, cm.exception.reason)

    def test_uriHeaders(self) -> None:
        """
        A Request-URI with headers is refused.
        """
        m = self.request()
        m.uri = SIPURI("h", headers={"Route": "x"})
        self.assertRaises(RemoteProtocolError, validate, m)


_TOKEN = st.from_regex(r"[A-Za-z0-9\-.!%*_+`'~]{1,10}", fullmatch=True)
_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=10)


class RoundTripTests(SynchronousTestCase):
    """
    Generated messages survive to_bytes and parsing.
    """

    @settings(max_examples=200, deadline=None)
    @given(
        st.from_regex(r"[A-Z]{3,9}", fullmatch=True),
        st.text(st.characters(blacklist_categories=("Cs", "Co")), min_size=1, max_size=10),
        st.dictionaries(
            st.from_regex(r"[a-z]{1,5}", fullmatch=True), st.none() | _TOKEN, max_size=3
        ),
        st.none() | _TEXT.filter(bool),
        _TOKEN,
        st.integers(0, 2**31 - 1),
        st.sampled_from(["UDP", "TCP", "TLS", "SCTP"]),
        st.none() | st.integers(1, 65535),
        st.binary(max_size=100),
        st.booleans(),
    )
    def test_request(  # noqa: PLR0917 - hypothesis passes arguments positionally
        self,
        method: str,
        user: str,
        params: Dict[str, Optional[str]],
        display: Optional[str],
        tag: str,
        number: int,
        transport: str,
        port: Optional[int],
        body: bytes,
        stream: bool,
    ) -> None:
        """
        Method, URI, addresses, CSeq, Via and body come back the same,
        over datagrams and streams, and from a compacted message's bytes.
        """
        uri = SIPURI("example.com", user, params=params)
        m = Request(method, uri, body)
        (via,) = parse_via(f"SIP/2.0/{transport} h.example.com;branch=z9hG4bK{tag}")
        via.port = port
        m.add_header("via", format_via(via))
        m.add_header("to", Address(uri, display).to_string())
        m.add_header("from", Address(SIPURI("b.example", "alice"), None, {"tag": tag}).to_string())
        m.add_header("call-id", f"{tag}@h")
        m.add_header("cseq", f"{number} {method}")
        data = m.to_bytes()
        if stream:
            (back,) = StreamParser().feed(data)
        else:
            parsed = parse_datagram(data)
            assert parsed is not None
            back = parsed
        assert isinstance(back, Request)
        self.assertEqual((back.method, back.uri, back.body), (method, uri, body))
        self.assertEqual(str(back.uri), str(uri))
        self.assertEqual(back.to, Address(uri, display))
        self.assertEqual(back.from_.tag, tag)
        self.assertEqual(
            (back.cseq.number, back.cseq.method, back.call_id), (number, method, f"{tag}@h")
        )
        v = back.top_via
        self.assertEqual((v.transport, v.port, v.branch), (transport, port, f"z9hG4bK{tag}"))
        self.assertEqual(back.to_bytes(), data)
        fields = {name: list(values) for name, values in m.headers.items()}
        m.compact(data)
        self.assertIs(m.to_bytes(), data)
        self.assertEqual((m.headers, m.uri, m.body), (fields, uri, body))
        self.assertEqual(m.to_bytes(), data)

    @settings(max_examples=100, deadline=None)
    @given(st.integers(100, 699), _TEXT.map(str.strip))
    def test_response(self, code: int, phrase: str) -> None:
        """
        Status code and reason phrase come back the same.
        """
        m = Response(code, phrase)
        for line in HEAD.split("\r\n")[1:]:
            if line:
                name, _, value = line.partition(": ")
                m.add_header(name, value)
        back = parse_datagram(m.to_bytes())
        assert isinstance(back, Response)
        self.assertEqual((back.code, back.phrase), (code, phrase))


class WireTests(SynchronousTestCase):
    """
    parse_wire reads back what this element serialized.
    """

    def test_unchecked(self) -> None:
        """A message is read back as written, without the checks a peer's message gets."""
        data = b"SIP/2.0 200 OK\r\nCSeq: not a number\r\nContent-Length: 2\r\n\r\nhi"
        back = parse_wire(data)
        assert isinstance(back, Response)
        self.assertEqual((back.code, back.header("cseq"), back.body), (200, "not a number", b"hi"))

    def test_no_start_line(self) -> None:
        """Bytes without a start line are a local error, not a peer's."""
        self.assertRaises(LocalProtocolError, parse_wire, b"\r\n\r\n")


class HeaderNameCacheTests(SynchronousTestCase):
    """
    Header names already seen are remembered, and still checked per spelling.
    """

    def test_spellings(self) -> None:
        """Compact, long and spaced spellings map to the same key; bad names are refused."""
        for _ in range(2):
            message = parse_datagram(
                b"OPTIONS sip:a@b SIP/2.0\r\nv : SIP/2.0/UDP h;branch=z9hG4bKx\r\n"
                b"f: <sip:a@b>;tag=1\r\nTO:<sip:a@b>\r\ni:c\r\nCSeq: 1 OPTIONS\r\n\r\n"
            )
            assert message is not None
            self.assertEqual(message.header("to"), "<sip:a@b>")
            self.assertEqual(message.top_via.host, "h")
        data = b"OPTIONS sip:a@b SIP/2.0\r\nBad Name: x\r\n\r\n"
        for _ in range(2):
            with self.assertRaises(RemoteProtocolError) as caught:
                parse_datagram(data)
            self.assertIn("Malformed header line", caught.exception.reason)

    def test_bare_line_breaks(self) -> None:
        """A bare CR or LF inside the header section is refused."""
        for junk in (b"X: a\rb", b"X: a\nb"):
            data = b"OPTIONS sip:a@b SIP/2.0\r\n" + junk + b"\r\n\r\n"
            with self.assertRaises(RemoteProtocolError) as caught:
                parse_datagram(data)
            self.assertIn("Bare CR or LF", caught.exception.reason)
