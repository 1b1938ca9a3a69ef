# -*- test-case-name: tests.unit.sip.test_rfc4475 -*-
"""
Every RFC 4475 torture message gets the outcome the RFC describes.

Which layer answers each message (the parser raises, the others accept and
leave the answer to a later layer):

  parser, 400 (or dropped if a response): badinv01, clerr, ncl, scalar02,
      scalarlg (response: dropped), quotbal, ltgtruri, lwsruri, lwsstart,
      trws, escruri, baddate, regbadct, badaspec, baddn, mismatch01,
      mismatch02 (400 is allowed; 501 is the alternative), bigcode
      (response: dropped), insuf (3.3.1), multi01 (3.3.8), mcl01 (3.3.9),
      test.dat (no SIP-Version).
  parser, 505: badvers.
  transaction layer: badbranch (branch is only the magic cookie: RFC 2543
      matching), inv2543 (no branch: RFC 2543 matching), bcast (a response
      with no matching transaction is dropped).
  application: unkscm and novelsc (416), unksm2 (registrar refuses non-SIP
      To), bext01 (420 with Unsupported; Proxy-Require ignored by a UAS),
      invut (415 with Accept), regaut01 (401 challenge), zeromf (a UAS
      answers OPTIONS normally; 483 only where it would forward), cparam01,
      cparam02 and regescrt (registrar semantics of parameters and escaped
      headers), sdp01 (406).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from conference.sip.errors import RemoteProtocolError
from conference.sip.headers import (
    media_acceptable,
    parse_accept,
    parse_int_header,
    parse_option_tags,
)
from conference.sip.message import Message, Request, Response
from conference.sip.parser import StreamParser, error_message, parse_datagram
from conference.sip.uri import SIPURI, AbsoluteURI
from tests.builders import mutated
from tests.shared import corpus

# name -> (status, words of the reason, whether the partial message exists)
REFUSED: Dict[str, Tuple[int, str, bool]] = {
    "badinv01": (400, "Via", True),
    "clerr": (400, "Content-Length larger", True),
    "ncl": (400, "Content-Length", True),
    "scalar02": (400, "CSeq", True),
    "scalarlg": (400, "CSeq", True),
    "quotbal": (400, "unterminated quoted string", True),
    "ltgtruri": (400, "Request-URI", True),
    "lwsruri": (400, "single SP", True),
    "lwsstart": (400, "single SP", True),
    "trws": (400, "single SP", True),
    "escruri": (400, "Request-URI holds URI headers", True),
    "baddate": (400, "Date", True),
    "regbadct": (400, "enclosed in <>", True),
    "badaspec": (400, "whitespace inside <>", True),
    "baddn": (400, "display name", True),
    "badvers": (505, "version", True),
    "mismatch01": (400, "CSeq method", True),
    "mismatch02": (400, "CSeq method", True),
    "bigcode": (400, "Status code", False),
    "insuf": (400, "Missing To, From, Call-ID", True),
    "multi01": (400, "Multiple", True),
    "mcl01": (400, "Multiple Content-Length", True),
    "test": (400, "start line", False),
}

ACCEPTED = {
    "wsinv",
    "intmeth",
    "esc01",
    "escnull",
    "esc02",
    "lwsdisp",
    "longreq",
    "dblreq",
    "semiuri",
    "transports",
    "mpart01",
    "unreason",
    "noreason",
    "badbranch",
    "unkscm",
    "novelsc",
    "unksm2",
    "bext01",
    "invut",
    "regaut01",
    "bcast",
    "zeromf",
    "cparam01",
    "cparam02",
    "regescrt",
    "sdp01",
    "inv2543",
}

_CACHE: Dict[str, bytes] = {}


def torture(*parts: str) -> Path:
    """
    A path in the RFC 4475 corpus (C{shared/corpora/rfc4475}, or
    C{shared/rfc4475} if that is where it lives).
    """
    try:
        return corpus("corpora", "rfc4475", *parts)
    except SkipTest:
        return corpus("rfc4475", *parts)


def data(name: str) -> bytes:
    """
    The bytes of a torture message (C{name} without C{.dat}).
    """
    if name not in _CACHE:
        _CACHE[name] = torture(name + ".dat").read_bytes()
    return _CACHE[name]


def index() -> List[Dict[str, str]]:
    """
    The rows of the corpus index.
    """
    with torture("index.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def parse(name: str) -> Message:
    """
    Parse a torture message that must be accepted.
    """
    message = parse_datagram(data(name))
    assert message is not None
    return message


def request(name: str) -> Request:
    """
    Parse a torture request that must be accepted.
    """
    message = parse(name)
    assert isinstance(message, Request)
    return message


def refusal(name: str) -> RemoteProtocolError:
    """
    Parse a torture message that must be refused; return the error.
    """
    try:
        parse_datagram(data(name))
    except RemoteProtocolError as e:
        return e
    raise AssertionError(f"{name} was accepted")


class OutcomeTests(SynchronousTestCase):
    """
    Each of the 50 messages is accepted or refused as the RFC says.
    """

    def test_indexCovered(self) -> None:
        """
        The index lists 50 messages and each has an expected outcome here.
        """
        names = {row["name"] for row in index()}
        self.assertEqual(len(names), 50)
        self.assertEqual(names, ACCEPTED | set(REFUSED))

    def test_validAccepted(self) -> None:
        """
        Every message the index calls valid parses.
        """
        for row in index():
            if row["validity"] == "valid":
                self.assertIn(row["name"], ACCEPTED)
                self.assertIsNotNone(parse_datagram(data(row["name"])), row["name"])

    def test_invalidRefused(self) -> None:
        """
        Every message the index calls invalid is refused.
        """
        for row in index():
            if row["validity"] == "invalid":
                self.assertIn(row["name"], REFUSED)

    def test_accepted(self) -> None:
        """
        The accepted messages parse and their basic headers are usable.
        """
        for name in sorted(ACCEPTED):
            message = parse(name)
            self.assertTrue(message.call_id, name)
            self.assertGreater(len(message.vias), 0, name)
            message.to  # noqa: B018 - must not raise
            message.from_  # noqa: B018

    def test_refused(self) -> None:
        """
        The refused messages raise the status and reason expected, with the
        partial message when the start line was read.
        """
        for name, (status, words, has_message) in sorted(REFUSED.items()):
            e = refusal(name)
            self.assertEqual(e.status, status, name)
            self.assertIn(words, e.reason, name)
            partial = error_message(e)
            self.assertEqual(partial is not None, has_message, name)

    def test_partialMessageCanBeAnswered(self) -> None:
        """
        A refused request carries the headers a 400 must copy.
        """
        for name in ("badaspec", "ltgtruri", "escruri", "lwsstart", "badvers"):
            partial = error_message(refusal(name))
            assert isinstance(partial, Request)
            self.assertTrue(partial.call_id, name)
            self.assertTrue(partial.header("via"), name)
            self.assertTrue(partial.header("cseq"), name)

    def test_baddnVariant(self) -> None:
        """
        Both copies of baddn (with and without the final empty line) are
        refused for the display name.
        """
        variant = torture("variants", "baddn.dat.rtckit-php-sip").read_bytes()
        for raw in (data("baddn"), variant):
            with self.assertRaises(RemoteProtocolError) as cm:
                parse_datagram(raw)
            self.assertEqual(cm.exception.status, 400)
            self.assertIn("display name", cm.exception.reason)
            self.assertIsNotNone(error_message(cm.exception))

    def test_refusedResponses(self) -> None:
        """
        scalarlg and bigcode are responses: refused, so the transport drops
        them.
        """
        partial = error_message(refusal("scalarlg"))
        self.assertIsInstance(partial, Response)
        self.assertIsNone(error_message(refusal("bigcode")))


class ValidMessageTests(SynchronousTestCase):
    """
    Fields of the valid messages (RFC 4475 section 3.1.1).
    """

    def test_wsinvRequestURI(self) -> None:
        """
        wsinv's Request-URI keeps its user and valueless parameter.
        """
        uri = request("wsinv").uri
        assert isinstance(uri, SIPURI)
        self.assertEqual(uri.username, "vivekg")
        self.assertEqual(uri.host, "chair-dnrc.example.com")
        self.assertEqual(uri.params, {"unknownparam": None})

    def test_wsinvHeaders(self) -> None:
        """
        wsinv's folded, spaced and oddly-cased headers parse.
        """
        m = request("wsinv")
        self.assertEqual(m.to.tag, "1918181833n")
        self.assertEqual(m.from_.display_name, 'J Rosenberg \\"')
        self.assertEqual(m.from_.tag, "98asjd8")
        self.assertEqual(parse_int_header(m.header("max-forwards") or "", "Max-Forwards"), 68)
        self.assertEqual((m.cseq.number, m.cseq.method), (9, "INVITE"))
        vias = m.vias
        self.assertEqual(
            [(v.transport, v.host, v.branch) for v in vias],
            [
                ("UDP", "192.0.2.2", "390skdjuw"),
                ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
                ("UDP", "192.168.255.111", "z9hG4bK30239"),
            ],
        )
        self.assertEqual(m.header("subject"), "")
        self.assertEqual(
            m.header("newfangledheader"), "newfangled value continued newfangled value"
        )
        self.assertEqual(m.header("unknownheaderwithunusualvalue"), ";;,,;;,;")
        contact = m.contacts[0]
        self.assertEqual(contact.display_name, 'Quoted string ""')
        self.assertEqual(contact.params, {"newparam": "newvalue", "secondparam": None, "q": "0.33"})
        self.assertEqual(len(m.body), 150)

    def test_intmeth(self) -> None:
        """
        intmeth's method, URI user/password, escaped display name and UTF-8
        parameter survive.
        """
        m = request("intmeth")
        self.assertEqual(m.method, "!interesting-Method0123456789_*+`.%indeed'~")
        self.assertEqual(m.cseq.method, m.method)
        uri = m.uri
        assert isinstance(uri, SIPURI)
        self.assertEqual(uri.username, "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
        self.assertEqual(uri.password, "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
        self.assertEqual(m.to.display_name, "BEL:\x07 NUL:\x00 DEL:\x7f")
        from_ = m.from_
        self.assertEqual(from_.display_name, "token1~` token2'+_ token3*%!.-")
        self.assertEqual(
            from_.params["fromparam''~+*_!.-%"],
            "\u0440\u0430\u0431\u043e\u0442\u0430\u044e\u0449\u0438\u0439",
        )
        self.assertEqual(from_.tag, "_token~1'+`*%!-.")
        self.assertEqual(m.call_id, "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{")

    def test_esc01(self) -> None:
        """
        esc01's escapes are decoded in user parts and URI parameters.
        """
        m = request("esc01")
        uri = m.uri
        assert isinstance(uri, SIPURI)
        self.assertEqual(uri.username, "sips:user@example.com")
        self.assertEqual(uri.host, "example.net")
        to_uri = m.to.uri
        assert isinstance(to_uri, SIPURI)
        self.assertEqual(to_uri.username, "user")
        from_uri = m.from_.uri
        assert isinstance(from_uri, SIPURI)
        self.assertEqual(from_uri.username, "I have spaces")
        contact = m.contacts[0].uri
        assert isinstance(contact, SIPURI)
        self.assertEqual(contact.username, "caller")
        self.assertEqual(contact.params, {"lr": None, "name": "value%41"})

    def test_escnull(self) -> None:
        """
        escnull's %00 decodes to NUL characters.
        """
        m = request("escnull")
        users = [c.uri.username for c in m.contacts if isinstance(c.uri, SIPURI)]
        self.assertEqual(users, ["\x00", "\x00\x00"])
        to_uri = m.to.uri
        assert isinstance(to_uri, SIPURI)
        self.assertEqual(to_uri.username, "null-\x00-null")

    def test_esc02(self) -> None:
        """
        esc02's % that are not escapes stay literal.
        """
        m = request("esc02")
        self.assertEqual(m.method, "RE%47IST%45R")
        self.assertEqual(m.to.display_name, "%Z%45")
        self.assertEqual(m.top_via.branch, "z9hG4bK209%fzsnel234")
        hosts = [c.uri.host for c in m.contacts if isinstance(c.uri, SIPURI)]
        self.assertEqual(hosts, ["host1.example.com", "host3.example.com"])
        self.assertEqual(m.header("c%6fntact"), "<sip:alias2@host2.example.com>")

    def test_lwsdisp(self) -> None:
        """
        lwsdisp's display name needs no space before '<'.
        """
        self.assertEqual(request("lwsdisp").from_.display_name, "caller")

    def test_longreq(self) -> None:
        """
        longreq's 34 Vias and long values parse.
        """
        m = request("longreq")
        vias = m.vias
        self.assertEqual(len(vias), 34)
        self.assertEqual(vias[0].host, "sip33.example.com")
        self.assertEqual(vias[-1].received, "192.0.2.5")
        self.assertEqual(len(m.from_.tag or ""), 155)
        self.assertEqual(len(m.body), 150)

    def test_dblreq(self) -> None:
        """
        dblreq: only the first request counts; its body is empty.
        """
        m = request("dblreq")
        self.assertEqual(m.method, "REGISTER")
        self.assertEqual(m.body, b"")
        self.assertEqual(m.call_id, "dblreq.0ha0isndaksdj99sdfafnl3lk233412")

    def test_semiuri(self) -> None:
        """
        semiuri's user part holds a semicolon; the folded Accept has six
        elements.
        """
        m = request("semiuri")
        uri = m.uri
        assert isinstance(uri, SIPURI)
        self.assertEqual(uri.username, "user;par=u@example.net")
        self.assertEqual(uri.host, "example.com")
        self.assertEqual(uri.params, {})
        self.assertEqual(len(parse_accept(m.header("accept") or "")), 6)

    def test_transports(self) -> None:
        """
        transports' Vias keep each transport, known or not.
        """
        self.assertEqual(
            [v.transport for v in request("transports").vias],
            ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"],
        )

    def test_mpart01(self) -> None:
        """
        mpart01's binary body stays bytes, exactly.
        """
        raw = data("mpart01")
        m = request("mpart01")
        self.assertEqual(len(m.body), 553)
        self.assertEqual(m.body, raw[-553:])
        content_type = m.content_type
        assert content_type is not None
        self.assertEqual(content_type.mime, "multipart/mixed")
        self.assertEqual(content_type.params, {"boundary": "7a9cbec02ceef655"})

    def test_unreason(self) -> None:
        """
        unreason's UTF-8 reason phrase is decoded.
        """
        m = parse("unreason")
        assert isinstance(m, Response)
        self.assertEqual(m.code, 200)
        self.assertEqual(
            m.phrase,
            "= 2**3 * 5**2 \u043d\u043e \u0441\u0442\u043e \u0434\u0435\u0432\u044f"
            "\u043d\u043e\u0441\u0442\u043e \u0434\u0435\u0432\u044f\u0442\u044c - "
            "\u043f\u0440\u043e\u0441\u0442\u043e\u0435",
        )

    def test_noreason(self) -> None:
        """
        noreason's reason phrase is empty.
        """
        m = parse("noreason")
        assert isinstance(m, Response)
        self.assertEqual((m.code, m.phrase), (100, ""))


class SemanticMessageTests(SynchronousTestCase):
    """
    What later layers see of the messages they must answer (RFC 4475
    sections 3.2 to 3.4).
    """

    def test_badbranch(self) -> None:
        """
        badbranch's branch is just the magic cookie.
        """
        self.assertEqual(request("badbranch").top_via.branch, "z9hG4bK")

    def test_unknownSchemes(self) -> None:
        """
        unkscm and novelsc have AbsoluteURI Request-URIs (416 is the
        application's).
        """
        uri = request("unkscm").uri
        assert isinstance(uri, AbsoluteURI)
        self.assertEqual(uri.scheme, "nobodyknowsthisscheme")
        uri = request("novelsc").uri
        assert isinstance(uri, AbsoluteURI)
        self.assertEqual((uri.scheme, str(uri)), ("soap.beep", "soap.beep://192.0.2.103:3002"))

    def test_unksm2(self) -> None:
        """
        unksm2's header URIs of unknown schemes are AbsoluteURIs.
        """
        m = request("unksm2")
        schemes = [m.to.uri.scheme, m.from_.uri.scheme, m.contacts[0].uri.scheme]
        self.assertEqual(schemes, ["isbn", "http", "name"])
        self.assertEqual(m.from_.tag, "3234233")

    def test_bext01(self) -> None:
        """
        bext01's Require tags are what the 420's Unsupported must list.
        """
        m = request("bext01")
        self.assertEqual(
            parse_option_tags(m.header("require") or ""),
            ["nothingSupportsThis", "nothingSupportsThisEither"],
        )
        self.assertEqual(
            m.header_values("proxy-require"),
            ["noProxiesSupportThis", "norDoAnyProxiesSupportThis"],
        )

    def test_invut(self) -> None:
        """
        invut's Content-Type is the unknown one (415 is the application's).
        """
        content_type = request("invut").content_type
        assert content_type is not None
        self.assertEqual(content_type.mime, "application/unknownformat")

    def test_regaut01(self) -> None:
        """
        regaut01's Authorization reaches the application untouched.
        """
        self.assertEqual(
            request("regaut01").header("authorization"), "NoOneKnowsThisScheme opaque-data=here"
        )

    def test_bcast(self) -> None:
        """
        bcast's second Via is the broadcast address.
        """
        self.assertEqual(parse("bcast").vias[1].host, "255.255.255.255")

    def test_zeromf(self) -> None:
        """
        zeromf's Max-Forwards is 0.
        """
        value = request("zeromf").header("max-forwards") or ""
        self.assertEqual(parse_int_header(value, "Max-Forwards", 255), 0)

    def test_cparam(self) -> None:
        """
        cparam01's parameter belongs to the header, cparam02's to the URI.
        """
        c1 = request("cparam01").contacts[0]
        assert isinstance(c1.uri, SIPURI)
        self.assertEqual((c1.params, c1.uri.params), ({"unknownparam": None}, {}))
        c2 = request("cparam02").contacts[0]
        assert isinstance(c2.uri, SIPURI)
        self.assertEqual((c2.params, c2.uri.params), ({}, {"unknownparam": None}))

    def test_regescrt(self) -> None:
        """
        regescrt's Contact URI holds an unescaped Route header.
        """
        uri = request("regescrt").contacts[0].uri
        assert isinstance(uri, SIPURI)
        self.assertEqual(uri.headers, {"Route": "<sip:sip.example.com>"})

    def test_sdp01(self) -> None:
        """
        sdp01 accepts nothing the server could send (406 is the
        application's).
        """
        ranges = parse_accept(request("sdp01").header("accept") or "")
        self.assertFalse(media_acceptable(ranges, "application/sdp"))
        self.assertTrue(media_acceptable(ranges, "text/nobodyknowsthis"))

    def test_inv2543(self) -> None:
        """
        inv2543 (RFC 2543 syntax): no branch, no port, no Max-Forwards, no
        Content-Length, so the body is the rest of the datagram.
        """
        m = request("inv2543")
        via = m.top_via
        self.assertEqual((via.branch, via.port), (None, None))
        self.assertFalse(m.has_header("max-forwards"))
        self.assertIsNone(m.from_.tag)
        self.assertTrue(m.body.startswith(b"v=0\r\n"))
        self.assertTrue(m.body.endswith(b"RTP/AVP 0\r\n"))


_NAMES = sorted(ACCEPTED | set(REFUSED))


class RobustnessTests(SynchronousTestCase):
    """
    Mutated torture messages only ever raise RemoteProtocolError, and
    streams give the same messages however they are cut.
    """

    @settings(max_examples=200, deadline=None)
    @given(
        st.sampled_from(_NAMES),
        st.lists(
            st.tuples(
                st.integers(0, 4000),
                st.sampled_from(["flip", "del", "ins"]),
                st.binary(min_size=1, max_size=3),
            ),
            min_size=1,
            max_size=4,
        ),
    )
    def test_mutations(self, name: str, edits: List[Tuple[int, str, bytes]]) -> None:
        """
        A mutated message parses (and its core headers are usable) or raises
        RemoteProtocolError with a 400, 505 or 513.
        """
        raw = mutated(data(name), edits)
        try:
            message = parse_datagram(raw)
        except RemoteProtocolError as e:
            self.assertIn(e.status, (400, 505, 513))
            self.assertFalse(e.reason.startswith("Internal"), e.reason)
            return
        if message is not None:
            self.assertTrue(message.call_id)
            message.to  # noqa: B018 - must not raise
            message.from_  # noqa: B018
            self.assertTrue(message.vias)
            message.to_bytes()

    @settings(max_examples=100, deadline=None)
    @given(st.lists(st.integers(1, 400), min_size=1, max_size=30))
    def test_streamChunking(self, cuts: List[int]) -> None:
        """
        The framed valid messages fed in any chunking give the same
        messages as whole datagrams.
        """
        names = ["wsinv", "esc01", "longreq", "mpart01", "transports", "unreason", "noreason"]
        stream = b"\r\n".join(data(n) for n in names)
        parser = StreamParser()
        got: List[Message] = []
        pos = 0
        for cut in cuts:
            got.extend(parser.feed(stream[pos : pos + cut]))
            pos += cut
        got.extend(parser.feed(stream[pos:]))
        expected: List[Optional[Message]] = [parse_datagram(data(n)) for n in names]
        self.assertEqual(len(got), len(expected))
        for mine, theirs in zip(got, expected):
            assert theirs is not None
            self.assertEqual(mine.to_bytes(), theirs.to_bytes())
