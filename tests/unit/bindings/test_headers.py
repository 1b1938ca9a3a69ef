# -*- test-case-name: tests.unit.bindings.test_headers -*-
"""
Tests for L{conference.bindings.headers}.
"""

from __future__ import annotations

from typing import Dict, Optional

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from conference.bindings.headers import (
    AcceptBinding,
    BindingValue,
    format_accept_binding,
    format_binding,
    parse_accept_binding,
    parse_binding,
    parse_bindings,
)
from conference.sip.errors import RemoteProtocolError


class BindingParseTests(SynchronousTestCase):
    """
    parse_binding and parse_bindings.
    """

    def test_full(self) -> None:
        """
        URI, disposition (lower-cased), expires, etag, public and other
        parameters are read.
        """
        [value] = parse_binding(
            '<http://example.com/floor>;disposition=Conference ;expires=3600;etag="v 1";public;q=1'
        )
        self.assertEqual(
            value,
            BindingValue("http://example.com/floor", "conference", 3600, "v 1", True, {"q": "1"}),
        )

    def test_several(self) -> None:
        """
        Several values per field and several fields are kept in order, and a
        data: URI's commas and semicolons stay inside its <>.
        """
        values = parse_bindings(
            [
                "<data:text/plain;charset=utf-8,a%2Cb>;disposition=boot, <sip:x@y>;disposition=web",
                "<cpl:x>;disposition=cpl;expires=0",
            ]
        )
        self.assertEqual(
            [(v.uri, v.disposition, v.expires) for v in values],
            [
                ("data:text/plain;charset=utf-8,a%2Cb", "boot", None),
                ("sip:x@y", "web", None),
                ("cpl:x", "cpl", 0),
            ],
        )

    def test_noURI(self) -> None:
        """
        A value with the disposition but no URI, written either way, has
        uri None; it serializes as the draft writes it.
        """
        for text in (
            ";disposition=conference",
            "<>;disposition=conference",
            " ; disposition=conference",
        ):
            [value] = parse_binding(text)
            self.assertIsNone(value.uri)
            self.assertEqual(value.disposition, "conference")
            self.assertEqual(format_binding(value), ";disposition=conference")

    def check(self, text: str, words: str) -> None:
        """
        Parsing C{text} raises a 400 whose reason holds C{words}.
        """
        e = self.assertRaises(RemoteProtocolError, parse_binding, text)
        self.assertEqual(e.status, 400)
        self.assertIn("Binding", e.reason)
        self.assertIn(words, e.reason)

    def test_refused(self) -> None:
        """
        Malformed values are 400s that name the fault.
        """
        self.check("<http://x>", "missing disposition")
        self.check("<http://x>;expires=10", "missing disposition")
        self.check("http://x;disposition=web", "enclosed in <>")
        self.check("<http://x;disposition=web", "missing '>'")
        self.check("< http://x>;disposition=web", "whitespace")
        self.check("<nonsense>;disposition=web", "no scheme")
        self.check("<http://x>;disposition=web;expires=soon", "expires")
        self.check("<http://x>;disposition=web;expires", "expires without a value")
        self.check("<http://x>;disposition=web;disposition=boot", "repeated")
        self.check("<http://x>;disposition=*", "'*' is not a disposition")
        self.check("<http://x>;disposition=web;etag", "etag without a value")
        self.check("<http://x>;disposition=web;public=yes", "flag")
        self.check("<http://x>;disposition=web junk", "malformed parameters")
        self.check("", "empty")

    def test_expiresRange(self) -> None:
        """
        expires may reach 2**32-1 but not beyond.
        """
        [value] = parse_binding(f"<http://x>;disposition=web;expires={2**32 - 1}")
        self.assertEqual(value.expires, 2**32 - 1)
        self.check(f"<http://x>;disposition=web;expires={2**32}", "larger")

    def test_format(self) -> None:
        """
        Known parameters come first, other ones after, quoted when needed.
        """
        value = BindingValue("sip:a@b", "web", 60, "e1", True, {"note": "two words"})
        self.assertEqual(
            format_binding(value),
            '<sip:a@b>;disposition=web;expires=60;etag=e1;public;note="two words"',
        )
        self.assertEqual(str(value), format_binding(value))


class AcceptBindingTests(SynchronousTestCase):
    """
    parse_accept_binding and format_accept_binding.
    """

    def test_list(self) -> None:
        """
        Dispositions from several fields are collected, lower-cased.
        """
        accept = parse_accept_binding(["conference, Web", "boot"])
        self.assertEqual(accept.dispositions, frozenset({"conference", "web", "boot"}))
        self.assertTrue(accept.accepts("WEB"))
        self.assertFalse(accept.accepts("cpl"))
        self.assertEqual(format_accept_binding(accept), "boot, conference, web")

    def test_star(self) -> None:
        """
        '*' accepts anything and serializes as '*'.
        """
        accept = parse_accept_binding(["*"])
        self.assertTrue(accept.any and accept.accepts("whatever"))
        self.assertEqual(str(accept), "*")
        self.assertEqual(AcceptBinding.of(None), accept)
        self.assertEqual(AcceptBinding.of({"*", "web"}), accept)

    def test_empty(self) -> None:
        """
        An empty Accept-Binding accepts nothing and serializes empty.
        """
        accept = parse_accept_binding([""])
        self.assertFalse(accept.accepts("conference"))
        self.assertEqual(format_accept_binding(accept), "")

    def test_refused(self) -> None:
        """
        '*' mixed with dispositions, or a non-token, is a 400.
        """
        e = self.assertRaises(RemoteProtocolError, parse_accept_binding, ["*, web"])
        self.assertIn("'*' mixed", e.reason)
        e = self.assertRaises(RemoteProtocolError, parse_accept_binding, ["we b"])
        self.assertIn("Accept-Binding", e.reason)


_token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.", min_size=1, max_size=12)
_uris = st.one_of(
    st.none(),
    st.builds(lambda h, p: f"http://{h}.example.com/{p}", _token, _token),
    st.builds(lambda u: f"sip:{u}@example.com", _token),
    st.builds(lambda d: f"data:text/plain,{d}", _token),
)
_params = st.dictionaries(
    _token.filter(lambda n: n not in ("disposition", "expires", "etag", "public")),
    st.one_of(st.none(), _token, st.text(alphabet="ab ,;<>", min_size=1, max_size=6)),
    max_size=3,
)


class PropertyTests(SynchronousTestCase):
    """
    Round trips.
    """

    @settings(max_examples=200, deadline=None)
    @given(
        st.lists(
            st.tuples(
                _uris,
                _token,
                st.one_of(st.none(), st.integers(0, 2**32 - 1)),
                st.one_of(st.none(), _token, st.text(alphabet='xy ,"\\', min_size=1, max_size=5)),
                st.booleans(),
                _params,
            ),
            min_size=1,
            max_size=4,
        )
    )
    def test_bindingRoundTrip(
        self,
        items: list[
            tuple[Optional[str], str, Optional[int], Optional[str], bool, Dict[str, Optional[str]]]
        ],
    ) -> None:
        """
        Formatting then parsing a list of bindings gives them back.
        """
        values = [BindingValue(*item) for item in items]
        text = ", ".join(format_binding(v) for v in values)
        self.assertEqual(parse_binding(text), values)

    @settings(max_examples=200, deadline=None)
    @given(st.one_of(st.none(), st.frozensets(_token, max_size=5)))
    def test_acceptRoundTrip(self, dispositions: Optional[frozenset[str]]) -> None:
        """
        Formatting then parsing an Accept-Binding gives it back.
        """
        accept = AcceptBinding.of(dispositions)
        self.assertEqual(parse_accept_binding([format_accept_binding(accept)]), accept)
