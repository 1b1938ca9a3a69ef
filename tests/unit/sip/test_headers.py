# -*- test-case-name: tests.unit.sip.test_headers -*-
"""
Tests for L{conference.sip.headers}.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable, Dict, Optional

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from conference.sip.errors import RemoteProtocolError
from conference.sip.headers import (
    Address,
    CSeq,
    _fast_address,
    _general_address,
    contact_is_star,
    format_params,
    media_acceptable,
    parse_accept,
    parse_address,
    parse_call_id,
    parse_cseq,
    parse_date,
    parse_int_header,
    parse_media_type,
    parse_option_tags,
    parse_params,
    parse_qvalue,
    parse_retry_after,
    parse_warning,
    shared_method,
    split_list,
)
from conference.sip.uri import SIPURI, AbsoluteURI, parse_uri


class SplitAndParamsTests(SynchronousTestCase):
    """
    split_list and parse_params.
    """

    def test_splitList(self) -> None:
        """
        Commas inside quotes and <> do not split; empty elements go.
        """
        self.assertEqual(split_list("a, b,,c ,"), ["a", "b", "c"])
        self.assertEqual(
            split_list('"x, y" <sip:a@b;p=1,2>;q=1, <sip:c@d>'),
            ['"x, y" <sip:a@b;p=1,2>;q=1', "<sip:c@d>"],
        )
        self.assertEqual(split_list('"a\\", b" <sip:x@y>, z'), ['"a\\", b" <sip:x@y>', "z"])

    def test_params(self) -> None:
        """
        Parameters parse with LWS, quoted values and no-value names.
        """
        self.assertEqual(
            parse_params(' ;  A = 1 ;b; c="x;\\"y" ;d=[::1]'),
            {"a": "1", "b": None, "c": 'x;"y', "d": "[::1]"},
        )
        self.assertEqual(parse_params(""), {})

    def test_badParams(self) -> None:
        """
        Empty, repeated or junk parameters raise.
        """
        for text in (";", ";;", ";a=", ";a;a", "x", ';a="open'):
            with self.assertRaises(RemoteProtocolError, msg=text):
                parse_params(text)

    def test_formatParams(self) -> None:
        """
        Values that are not tokens are quoted.
        """
        self.assertEqual(format_params({"a": "1", "b": None, "c": 'x y"'}), ';a=1;b;c="x y\\""')


class AddressTests(SynchronousTestCase):
    """
    parse_address and Address.
    """

    def test_nameAddr(self) -> None:
        """
        A quoted display name, URI and parameters parse.
        """
        a = parse_address('"A \\"B\\"" <sip:a@b;lr> ;tag=x; expires=60')
        self.assertEqual(a.display_name, 'A "B"')
        self.assertEqual(str(a.uri), "sip:a@b;lr")
        self.assertEqual(a.params, {"tag": "x", "expires": "60"})
        self.assertEqual(a.tag, "x")

    def test_tokenDisplayName(self) -> None:
        """
        Unquoted display names are tokens separated by LWS.
        """
        self.assertEqual(parse_address("Bob  Smith <sip:b@c>").display_name, "Bob  Smith")
        self.assertIsNone(parse_address("<sip:b@c>").display_name)

    def test_addrSpec(self) -> None:
        """
        In an addr-spec the parameters belong to the header.
        """
        a = parse_address("sip:a@b;tag=1;foo")
        uri = a.uri
        assert isinstance(uri, SIPURI)
        self.assertEqual((uri.params, a.params), ({}, {"tag": "1", "foo": None}))
        self.assertIsInstance(parse_address("tel:+1555").uri, AbsoluteURI)

    def test_bad(self) -> None:
        """
        The RFC 4475 faults and others raise with a precise reason.
        """
        cases = {
            "": "empty",
            '"open <sip:a@b>': "unterminated",
            "Bell, Alex <sip:a@b>": "non-token",
            "< sip:a@b >": "whitespace inside <>",
            "<sip:a@b": "missing '>'",
            "sip:a@b?x=y": "enclosed in <>",
            "sip:a@b, sip:c@d": "enclosed in <>",
            "sip:a b@c": "whitespace",
            "*": "'*'",
            '"x" sip:a@b': "not followed by <URI>",
            "<sip:a@b>;;": "malformed parameters",
            "<sip:a@b> junk": "malformed parameters",
            "<nope>": "scheme",
        }
        for text, words in cases.items():
            with self.assertRaises(RemoteProtocolError, msg=text) as cm:
                parse_address(text, "To")
            self.assertIn(words, cm.exception.reason, text)
            self.assertTrue(cm.exception.reason.startswith("Bad To"), text)

    def test_withTag(self) -> None:
        """
        with_tag returns a tagged copy; the original is unchanged.
        """
        a = parse_address("<sip:a@b>")
        b = a.with_tag("t1")
        self.assertEqual((a.tag, b.tag), (None, "t1"))
        self.assertEqual(b.to_string(), "<sip:a@b>;tag=t1")
        self.assertNotEqual(a, b)

    def test_toString(self) -> None:
        """
        to_string quotes the display name and keeps the URI in <>.
        """
        a = Address(parse_uri("sip:a@b;lr"), 'x "y"', {"q": "0.5"})
        self.assertEqual(a.to_string(), '"x \\"y\\"" <sip:a@b;lr>;q=0.5')
        self.assertEqual(parse_address(str(a)), a)

    def test_contactStar(self) -> None:
        """
        '*' alone is the wildcard; mixed with contacts it is an error.
        """
        self.assertTrue(contact_is_star(["*"]))
        self.assertFalse(contact_is_star(["<sip:a@b>"]))
        self.assertRaises(RemoteProtocolError, contact_is_star, ["*", "<sip:a@b>"])

    @settings(max_examples=200, deadline=None)
    @given(
        st.none() | st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1),
        st.dictionaries(
            st.from_regex(r"[a-z][a-z0-9]{0,5}", fullmatch=True),
            st.none() | st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=8),
            max_size=4,
        ),
    )
    def test_roundTrip(self, name: Optional[str], params: Dict[str, Optional[str]]) -> None:
        """
        to_string then parse_address gives an equal address.
        """
        a = Address(parse_uri("sip:u@h;lr"), name, params)
        self.assertEqual(parse_address(a.to_string()), a)


def outcome(parse: Callable[[], Any]) -> Any:
    """
    What a parse gives: its result, or the reason it raised.
    """
    try:
        return parse()
    except RemoteProtocolError as e:
        return ("raised", e.reason)


# Pieces the fast forms are made of, with near misses mixed in.
_PIECE = st.sampled_from(["a", "Bob", "x-y", "1", "", " ", "\t", '"', "\\", "<", ">", ";", "="])
_TOKENISH = st.text(st.sampled_from("aZ9-.!%*_+`'~ ;=\"<>@:[]\t"), max_size=8)
PARAMS = st.lists(
    st.tuples(st.sampled_from(["tag", "TAG", "q", "expires", "lr", "x", "branch"]), _TOKENISH),
    max_size=3,
).map(lambda ps: "".join(f";{n}={v}" if v else f";{n}" for n, v in ps))
_URIS = st.sampled_from(
    ["sip:a@example.com", "sip:a@127.0.0.1:5061;transport=UDP", "sips:h", "tel:+1", "sip:", "x"]
)


class FastFormsTests(SynchronousTestCase):
    """
    The one-match parsers of the usual forms agree with the general ones.
    """

    @settings(max_examples=400, deadline=None)
    @given(
        st.sampled_from(["", "Bob ", "Bob  Smith ", '"Bob" ', '"B\\"b" ', '"" ', "<x> "]),
        _URIS,
        PARAMS,
        st.lists(_PIECE, max_size=2).map("".join),
    )
    def test_address(self, display: str, uri: str, params: str, junk: str) -> None:
        """
        Every address the fast form accepts parses to what the general parser gives.
        """
        text = f"{display}<{uri}>{params}{junk}".strip(" \t")
        fast = outcome(lambda: _fast_address(text, "To"))
        general = outcome(lambda: _general_address(text, "To"))
        if fast is not None:
            self.assertEqual(fast, general, text)
        self.assertEqual(outcome(lambda: parse_address(text, "To")), general, text)

    def test_usual(self) -> None:
        """
        The forms every peer writes are taken by the fast parsers.
        """
        self.assertIsNotNone(_fast_address('"Bob" <sip:b@example.com>;tag=1', "From"))
        self.assertIsNotNone(_fast_address("<sip:b@127.0.0.1:5061;transport=UDP>", "Contact"))


class ScalarTests(SynchronousTestCase):
    """
    CSeq, integers, Call-ID and Date.
    """

    def test_cseq(self) -> None:
        """
        CSeq parses number and method; overflow and junk raise.
        """
        self.assertEqual(parse_cseq(" 0009  INVITE "), CSeq(9, "INVITE"))
        self.assertEqual(str(CSeq(1, "BYE")), "1 BYE")
        self.assertEqual(parse_cseq("2147483647 A").number, 2**31 - 1)
        for bad in ("2147483648 A", "36893488147419103232 A", "1", "x A", "-1 A", "1 A B"):
            self.assertRaises(RemoteProtocolError, parse_cseq, bad)

    def test_known_methods_shared(self) -> None:
        """A known method is one string object wherever it is parsed; others are kept as written."""
        written = "".join(["INV", "ITE"])
        self.assertIsNot(written, "INVITE")
        self.assertIs(parse_cseq("1 " + written).method, shared_method("INVITE"))
        self.assertIs(shared_method(written), shared_method("INVITE"))
        self.assertIs(parse_cseq(" 01 " + written).method, shared_method("INVITE"))
        self.assertEqual(parse_cseq("1 FOO").method, "FOO")
        self.assertEqual(shared_method("invite"), "invite")

    def test_int(self) -> None:
        """
        Integers are range-checked without converting huge digit strings.
        """
        self.assertEqual(parse_int_header(" 0068 ", "Max-Forwards", 255), 68)
        self.assertEqual(parse_int_header("4294967295", "Expires"), 2**32 - 1)
        for bad in ("256", "-1", "", "1 2", "9" * 10000):
            with self.assertRaises(RemoteProtocolError, msg=bad[:10]) as cm:
                parse_int_header(bad, "Max-Forwards", 255)
            self.assertIn("Max-Forwards", cm.exception.reason)

    def test_callId(self) -> None:
        """
        Call-IDs are word[@word].
        """
        self.assertEqual(parse_call_id(" a.b@c "), "a.b@c")
        for bad in ("", "a b", "a@b@c"):
            self.assertRaises(RemoteProtocolError, parse_call_id, bad)

    def test_date(self) -> None:
        """
        Dates must be RFC 1123 in GMT.
        """
        self.assertEqual(
            parse_date("Sat, 13 Nov 2010 23:29:00 GMT"),
            datetime(2010, 11, 13, 23, 29, tzinfo=timezone.utc),
        )
        for bad in ("Fri, 01 Jan 2010 16:00:00 EST", "Fri, 31 Feb 2010 16:00:00 GMT", "x"):
            self.assertRaises(RemoteProtocolError, parse_date, bad)


class MediaAndListTests(SynchronousTestCase):
    """
    Content-Type, Accept, option tags, Warning and Retry-After.
    """

    def test_mediaType(self) -> None:
        """
        Types are lower-cased and quoted parameter values unquoted.
        """
        mt = parse_media_type('Application / SDP ; Charset="UTF-8";x=y')
        self.assertEqual((mt.type, mt.subtype, mt.mime), ("application", "sdp", "application/sdp"))
        self.assertEqual(mt.params, {"charset": "UTF-8", "x": "y"})
        self.assertEqual(str(mt), "application/sdp;charset=UTF-8;x=y")
        for bad in ("application", "a/b;c", "a/b junk", "/b"):
            self.assertRaises(RemoteProtocolError, parse_media_type, bad)

    def test_accept(self) -> None:
        """
        Accept ranges carry q-values; wildcards and q=0 are honoured.
        """
        ranges = parse_accept("application/sdp;q=0.5, text/*;q=0, */*;level=1")
        self.assertEqual(
            [(r.mime, r.q) for r in ranges],
            [("application/sdp", 0.5), ("text/*", 0.0), ("*/*", 1.0)],
        )
        self.assertEqual(ranges[2].params, {"level": "1"})
        self.assertFalse(media_acceptable(ranges, "text/plain"))
        self.assertTrue(media_acceptable(ranges, "Image/PNG"))
        self.assertEqual(parse_accept(""), [])
        self.assertRaises(RemoteProtocolError, parse_accept, "a/b;q=2")

    def test_qvalue(self) -> None:
        """
        q-values are 0..1 with at most three decimals.
        """
        self.assertEqual(parse_qvalue("0.333"), 0.333)
        self.assertEqual(parse_qvalue("1.000"), 1.0)
        for bad in ("1.5", "0.1234", "", "-0"):
            self.assertRaises(RemoteProtocolError, parse_qvalue, bad)

    def test_optionTags(self) -> None:
        """
        Option tags are tokens; an empty value is an empty list.
        """
        self.assertEqual(parse_option_tags("100rel, timer"), ["100rel", "timer"])
        self.assertEqual(parse_option_tags(""), [])
        self.assertRaises(RemoteProtocolError, parse_option_tags, "a b")

    def test_warning(self) -> None:
        """
        Warnings have a 3-digit code, an agent and quoted text.
        """
        (w,) = parse_warning('307 isi.edu "Session parameter \\"foo\\" not understood"')
        self.assertEqual(
            (w.code, w.agent, w.text), (307, "isi.edu", 'Session parameter "foo" not understood')
        )
        self.assertEqual(len(parse_warning('301 a "x, y", 302 b "z"')), 2)
        self.assertRaises(RemoteProtocolError, parse_warning, '1812 overture "In Progress"')

    def test_retryAfter(self) -> None:
        """
        Retry-After has seconds, an optional comment and parameters.
        """
        r = parse_retry_after("18000 (in a meeting) ;duration=3600")
        self.assertEqual(
            (r.seconds, r.comment, r.params), (18000, "in a meeting", {"duration": "3600"})
        )
        self.assertRaises(RemoteProtocolError, parse_retry_after, "949302838503028349304023988")
        self.assertRaises(RemoteProtocolError, parse_retry_after, "5;duration=x")
