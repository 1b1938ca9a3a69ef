# -*- test-case-name: tests.unit.sip.test_uri -*-
"""
Tests for L{conference.sip.uri}.
"""

from __future__ import annotations

from typing import Dict, Optional

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from conference.sip import uri as uri_module
from conference.sip.errors import RemoteProtocolError
from conference.sip.uri import SIPURI, AbsoluteURI, parse_host, parse_uri


def sipuri(text: str) -> SIPURI:
    """
    Parse text that must be a SIP URI.
    """
    uri = parse_uri(text)
    assert isinstance(uri, SIPURI)
    return uri


class ParseTests(SynchronousTestCase):
    """
    Parsing SIP and other URIs.
    """

    def test_full(self) -> None:
        """
        Every component of a SIP URI lands in its attribute.
        """
        uri = sipuri("sips:alice:secret@Example.COM:5061;transport=tcp;lr;x=1?Subject=hi&P=a%20b")
        self.assertEqual(uri.scheme, "sips")
        self.assertTrue(uri.secure)
        self.assertEqual((uri.username, uri.password), ("alice", "secret"))
        self.assertEqual((uri.host, uri.port), ("Example.COM", 5061))
        self.assertEqual(uri.params, {"transport": "tcp", "lr": None, "x": "1"})
        self.assertEqual(uri.headers, {"Subject": "hi", "P": "a b"})

    def test_twistedAttributes(self) -> None:
        """
        A SIPURI has the attributes of a Twisted URL, as views of its
        parameters.
        """
        uri = sipuri("sip:bob@h;user=phone;maddr=239.1.1.1;ttl=5;method=INVITE;foo=bar;baz")
        self.assertEqual(uri.usertype, "phone")
        self.assertEqual((uri.maddr, uri.ttl, uri.method), ("239.1.1.1", 5, "INVITE"))
        self.assertEqual(uri.other, ["foo=bar", "baz"])
        uri.transport = "udp"
        self.assertEqual(uri.params["transport"], "udp")
        uri.transport = None
        self.assertNotIn("transport", uri.params)
        uri.other = ["a=b"]
        self.assertEqual(uri.other, ["a=b"])
        self.assertIn("user", uri.params)

    def test_ipv6(self) -> None:
        """
        IPv6 references keep their brackets; host_address drops them.
        """
        uri = sipuri("sip:[2001:db8::10]:5070")
        self.assertEqual(
            (uri.host, uri.port, uri.host_address), ("[2001:db8::10]", 5070, "2001:db8::10")
        )
        self.assertEqual(str(uri), "sip:[2001:db8::10]:5070")

    def test_escapes(self) -> None:
        """
        Escapes are decoded when parsed and re-encoded only where needed.
        """
        uri = sipuri("sip:%61lice%20b@h;n%61me=v%25")
        self.assertEqual(uri.username, "alice b")
        self.assertEqual(uri.params, {"name": "v%"})
        self.assertEqual(str(uri), "sip:alice%20b@h;name=v%25")

    def test_schemeCaseInsensitive(self) -> None:
        """
        SIP: in upper case is still a SIP URI.
        """
        self.assertEqual(sipuri("SIP:a@b").scheme, "sip")

    def test_absolute(self) -> None:
        """
        Other schemes become AbsoluteURIs with the text kept.
        """
        for text in ("tel:+1-555-0100", "http://example.com/x?y=1", "urn:uuid:1234", "x-y:z"):
            uri = parse_uri(text)
            assert isinstance(uri, AbsoluteURI)
            self.assertEqual(str(uri), text)
            self.assertEqual(uri.scheme, text.split(":")[0])
        self.assertEqual(AbsoluteURI("mailto:a@b").opaque, "a@b")

    def test_bad(self) -> None:
        """
        Malformed URIs raise RemoteProtocolError (400) with a reason.
        """
        cases = {
            "": "empty",
            "sip:": "no host",
            "sip:a@": "no host",
            "sip:@h": "user",
            "sip:a b@h": "user",
            "sip:h:99999": "port",
            "sip:h:x": "port",
            "sip:[::1": "IPv6",
            "sip:[zz::]": "IPv6",
            "sip:-h.com": "host",
            "sip:1.2.3": "IPv4",
            "sip:1.2.3.400": "IPv4",
            "sip:h;=x": "parameter",
            "sip:h;a=": "parameter",
            "sip:h;a;a": "repeated",
            "sip:h;ttl=300": "ttl",
            "sip:h?x": "header",
            "sip:h;a=%zz": "parameter",
            "<sip:a@b>": "scheme",
            "nocolon": "scheme",
            "tel:": "characters",
            "tel:a b": "characters",
            "tel:%zz": "escape",
        }
        for text, words in cases.items():
            with self.assertRaises(RemoteProtocolError, msg=text) as cm:
                parse_uri(text)
            self.assertEqual(cm.exception.status, 400)
            self.assertIn(words, cm.exception.reason, text)

    def test_unchecked(self) -> None:
        """
        AbsoluteURI.unchecked wraps any text without validating it.
        """
        uri = AbsoluteURI.unchecked("<sip:a@b>")
        self.assertEqual((str(uri), uri.scheme), ("<sip:a@b>", "<sip"))


class CompareTests(SynchronousTestCase):
    """
    RFC 3261 section 19.1.4 comparison.
    """

    def test_equivalent(self) -> None:
        """
        The RFC's equivalent pairs compare equal.
        """
        pairs = [
            ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
            ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
            ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;newparam=5"),
            (
                "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
                "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
            ),
            (
                "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
                "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
            ),
        ]
        for a, b in pairs:
            self.assertEqual(parse_uri(a), parse_uri(b), (a, b))
            self.assertEqual(hash(parse_uri(a)), hash(parse_uri(b)))

    def test_different(self) -> None:
        """
        The RFC's non-equivalent pairs compare unequal.
        """
        pairs = [
            ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
            ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
            ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
            ("sip:bob@biloxi.com", "sips:bob@biloxi.com"),
            ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
            ("sip:a@h;x=1", "sip:a@h;x=2"),
        ]
        for a, b in pairs:
            self.assertNotEqual(parse_uri(a), parse_uri(b), (a, b))

    def test_absolute(self) -> None:
        """
        AbsoluteURIs compare by scheme (any case) and escapes (any case).
        """
        self.assertEqual(parse_uri("TEL:+1%2a"), parse_uri("tel:+1%2A"))
        self.assertNotEqual(parse_uri("tel:+1"), parse_uri("tel:+2"))
        self.assertNotEqual(parse_uri("tel:+1"), parse_uri("sip:+1@h"))

    def test_copy(self) -> None:
        """
        copy() gives an equal, independent URI.
        """
        uri = sipuri("sip:a@h;x=1?H=v")
        other = uri.copy()
        self.assertEqual(uri, other)
        other.params["x"] = "2"
        self.assertEqual(uri.params["x"], "1")


_TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Co"), max_codepoint=0x44F), min_size=1, max_size=12
)
_NAME = st.from_regex(r"[a-z][a-z0-9\-]{0,7}", fullmatch=True)
_HOST = st.one_of(
    st.from_regex(r"[a-z]{1,8}(\.[a-z]{1,8}){0,2}", fullmatch=True),
    st.sampled_from(["192.0.2.1", "[::1]", "[2001:db8::1]"]),
)


class RoundTripTests(SynchronousTestCase):
    """
    Serialized URIs parse back to equal URIs.
    """

    @settings(max_examples=200, deadline=None)
    @given(
        st.sampled_from(["sip", "sips"]),
        st.none() | _TEXT,
        st.none() | _TEXT,
        _HOST,
        st.none() | st.integers(0, 65535),
        st.dictionaries(_NAME.filter(lambda n: n != "ttl"), st.none() | _TEXT, max_size=4),
        st.dictionaries(_NAME, st.text(max_size=8), max_size=3),
    )
    def test_roundTrip(  # noqa: PLR0917 - hypothesis passes arguments positionally
        self,
        scheme: str,
        user: Optional[str],
        password: Optional[str],
        host: str,
        port: Optional[int],
        params: Dict[str, Optional[str]],
        headers: Dict[str, str],
    ) -> None:
        """
        toString then parse_uri gives the same components.
        """
        uri = SIPURI(
            host,
            user,
            password if user is not None else None,
            port,
            scheme=scheme,
            params=params,
            headers=headers,
        )
        back = sipuri(str(uri))
        self.assertEqual(
            (back.scheme, back.username, back.password, back.host, back.port),
            (uri.scheme, uri.username, uri.password, uri.host, uri.port),
        )
        self.assertEqual((back.params, back.headers), (uri.params, uri.headers))
        self.assertEqual(back, uri)


class CacheTests(SynchronousTestCase):
    """
    parse_uri remembers what it checked, never the objects it returns.
    """

    def test_independent_objects(self) -> None:
        """Parsing the same text twice gives equal but independent URIs."""
        a = parse_uri("sip:alice@example.com;transport=tcp?subject=x")
        b = parse_uri("sip:alice@example.com;transport=tcp?subject=x")
        assert isinstance(a, SIPURI) and isinstance(b, SIPURI)
        self.assertIsNot(a, b)
        a.params["lr"] = None
        a.headers.clear()
        a.port = 5070
        c = parse_uri("sip:alice@example.com;transport=tcp?subject=x")
        assert isinstance(c, SIPURI)
        self.assertEqual(
            (c.params, c.headers, c.port), ({"transport": "tcp"}, {"subject": "x"}, None)
        )

    def test_errors_every_time(self) -> None:
        """A bad URI is refused on every parse, with the same reason."""
        for _ in range(2):
            with self.assertRaises(RemoteProtocolError) as caught:
                parse_uri("sip:alice@300.1.2.3")
            self.assertIn("bad IPv4 address", caught.exception.reason)

    def test_ipv4_checks(self) -> None:
        """IPv4 hosts: four groups of at most 255, a trailing dot allowed."""
        self.assertEqual(parse_uri("sip:1.2.3.4.").host, "1.2.3.4.")  # type: ignore[union-attr]
        self.assertEqual(parse_uri("sip:a@255.0.0.1:5060").host, "255.0.0.1")  # type: ignore[union-attr]
        for bad in (
            "sip:1.2.3",
            "sip:1.2.3.4.5",
            "sip:1.2.3.256",
            "sip:1.2.3.4..",
            "sip:1234.1.1.1",
        ):
            self.assertRaises(RemoteProtocolError, parse_uri, bad)
        self.assertEqual(parse_uri("sip:host1.example.com").host, "host1.example.com")  # type: ignore[union-attr]

    def test_long_uris_not_cached(self) -> None:
        """A URI over the cache's length limit parses the same way."""
        user = "u" * 300
        uri = parse_uri(f"sip:{user}@example.com")
        assert isinstance(uri, SIPURI)
        self.assertEqual(uri.username, user)


class HostTests(SynchronousTestCase):
    """
    parse_host remembers the hosts it found valid, within a bound.
    """

    def setUp(self) -> None:
        saved = dict(uri_module._VALID_HOSTS)
        uri_module._VALID_HOSTS.clear()
        self.addCleanup(uri_module._VALID_HOSTS.update, saved)
        self.addCleanup(uri_module._VALID_HOSTS.clear)

    def test_valid_remembered(self) -> None:
        """A valid host is checked once and remembered; a bad one raises every time and is not."""
        self.assertEqual(parse_host("192.0.2.1"), "192.0.2.1")
        self.assertEqual(parse_host("[2001:db8::1]"), "[2001:db8::1]")
        for _ in range(2):
            self.assertRaises(RemoteProtocolError, parse_host, "192.0.2.300")
            self.assertRaises(RemoteProtocolError, parse_host, "-bad.example")
        self.assertEqual(set(uri_module._VALID_HOSTS), {"192.0.2.1", "[2001:db8::1]"})

    def test_bounded(self) -> None:
        """Past the bound, new hosts are still checked and answered, but not remembered."""
        self.patch(uri_module, "_MAX_VALID_HOSTS", 2)
        for n in range(4):
            self.assertEqual(parse_host(f"h{n}.example"), f"h{n}.example")
        self.assertEqual(len(uri_module._VALID_HOSTS), 2)
        self.assertRaises(RemoteProtocolError, parse_host, "h.-x")
