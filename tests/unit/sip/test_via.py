# -*- test-case-name: tests.unit.sip.test_via -*-
"""
Tests for L{conference.sip.via}.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from conference.sip.errors import RemoteProtocolError
from conference.sip.via import (
    Via,
    _fast_via,
    _general_vias,
    format_via,
    parse_via,
    with_received,
)
from tests.unit.sip.test_headers import PARAMS, outcome

HOSTS = st.sampled_from(["h", "example.com", "127.0.0.1", "1.2.3.999", "-x", "a..b", "[::1]"])


class ViaTests(SynchronousTestCase):
    """
    The Via value and its Twisted-compatible attributes.
    """

    def test_defaults(self) -> None:
        """
        A new Via has no port and no parameters.
        """
        via = Via("h.example.com")
        self.assertEqual((via.host, via.port, via.transport), ("h.example.com", None, "UDP"))
        self.assertEqual((via.branch, via.received, via.maddr, via.ttl), (None, None, None, None))
        self.assertEqual((via.rport, via.hidden, via.otherParams), (None, False, {}))
        self.assertEqual(via.toString(), "SIP/2.0/UDP h.example.com")

    def test_rport(self) -> None:
        """
        rport reads True when requested without a value; setting it records
        the source port and clears the request, as Twisted's Via does.
        """
        (via,) = parse_via("SIP/2.0/UDP h:5070;branch=z9hG4bKx;rport")
        self.assertEqual((via.rport, via.rportRequested, via.rportValue), (True, True, None))
        via.rport = 40000
        self.assertEqual((via.rport, via.rportRequested, via.rportValue), (40000, False, 40000))
        self.assertEqual(via.toString(), "SIP/2.0/UDP h:5070;branch=z9hG4bKx;rport=40000")

    def test_keywords(self) -> None:
        """
        Every parameter can be given when building one, and other
        parameters are copied rather than shared.
        """
        other = {"x": "1", "flag": None}
        via = Via(
            "[2001:db8::1]",
            5061,
            "TLS",
            branch="z9hG4bKa",
            received="192.0.2.1",
            rport_requested=True,
            maddr="224.0.0.1",
            ttl=3,
            hidden=True,
            other=other,
        )
        other["y"] = "2"
        self.assertEqual(
            via.toString(),
            "SIP/2.0/TLS [2001:db8::1]:5061;branch=z9hG4bKa;received=192.0.2.1;rport"
            ";maddr=224.0.0.1;ttl=3;hidden;x=1;flag",
        )
        self.assertEqual(repr(via), f"<Via {via.toString()}>")


def via_fields(vias: Any) -> Any:
    if isinstance(vias, tuple):
        return vias
    return [
        (
            v.transport,
            v.host,
            v.port,
            v.branch,
            v.received,
            v.rportValue,
            v.rportRequested,
            v.maddr,
            v.ttl,
            v.hidden,
            v.otherParams,
        )
        for v in vias
    ]


class ParseViaTests(SynchronousTestCase):
    """
    parse_via and format_via.
    """

    def test_several(self) -> None:
        """
        One field may hold several vias, with LWS anywhere allowed.
        """
        vias = parse_via(
            "SIP / 2.0 / udp  h1.example.com : 5070 ; branch = z9hG4bK1 ;rport,"
            ' SIP/2.0/TCP [2001:db8::1];received=192.0.2.1;rport=5060;ttl=3;maddr=224.0.0.1;x="y z"'
        )
        self.assertEqual(len(vias), 2)
        a, b = vias
        self.assertIsInstance(a, Via)
        self.assertEqual(
            (a.transport, a.host, a.port, a.branch), ("UDP", "h1.example.com", 5070, "z9hG4bK1")
        )
        self.assertTrue(a.rportRequested)
        self.assertEqual(
            (b.host, b.port, b.received, b.rportValue), ("[2001:db8::1]", None, "192.0.2.1", 5060)
        )
        self.assertEqual((b.ttl, b.maddr, b.otherParams), (3, "224.0.0.1", {"x": "y z"}))

    def test_bad(self) -> None:
        """
        Bad sent-protocols, hosts, ports and parameters raise.
        """
        cases = {
            "SIP/2.0/UDP": "malformed",
            "SIP/3.0/UDP h": "not SIP/2.0",
            "XIP/2.0/UDP h": "not SIP/2.0",
            "SIP/2.0/UDP h:70000": "port",
            "SIP/2.0/UDP -h": "host",
            "SIP/2.0/UDP h;;": "junk",
            "SIP/2.0/UDP h,": "malformed",
            "SIP/2.0/UDP h;received=host.com": "received",
            "SIP/2.0/UDP h;rport=0": "rport",
            "SIP/2.0/UDP h;ttl=256": "ttl",
            "SIP/2.0/UDP h;branch": "branch",
            "SIP/2.0/UDP h;maddr=-x": "maddr",
        }
        for text, words in cases.items():
            with self.assertRaises(RemoteProtocolError, msg=text) as cm:
                parse_via(text)
            self.assertIn(words, cm.exception.reason, text)

    def test_format(self) -> None:
        """
        format_via omits an absent port and keeps parameters.
        """
        text = 'SIP/2.0/UDP h;branch=z9hG4bKa;received=192.0.2.1;rport=1234;hidden;x;y="a b"'
        (via,) = parse_via(text)
        self.assertEqual(format_via(via), text)
        via.rportValue = None
        via.rportRequested = True
        via.port = 5060
        self.assertEqual(
            format_via(via),
            'SIP/2.0/UDP h:5060;branch=z9hG4bKa;received=192.0.2.1;rport;hidden;x;y="a b"',
        )


class FastViaTests(SynchronousTestCase):
    """
    The one-match parser of the usual Via form agrees with the general one.
    """

    @settings(max_examples=400, deadline=None)
    @given(
        st.sampled_from(["SIP/2.0/UDP", "SIP/2.0/tcp", "sip/2.0/UDP", "SIP/2.1/UDP"]),
        HOSTS,
        st.sampled_from(["", ":5060", ":0", ":65536", ":99999", ":"]),
        PARAMS,
        st.sampled_from(["", ";branch=z9hG4bK1", ";rport", ";received=10.0.0.1", ";ttl=300"]),
    )
    def test_via(self, protocol: str, host: str, port: str, params: str, extra: str) -> None:
        """
        Every Via the fast form accepts parses to what the general parser gives.
        """
        text = f"{protocol} {host}{port}{extra}{params}"
        fast = outcome(lambda: _fast_via(text))
        general = via_fields(outcome(lambda: _general_vias(text)))
        if fast is not None:
            self.assertEqual(via_fields(fast if isinstance(fast, tuple) else [fast]), general)
        self.assertEqual(via_fields(outcome(lambda: parse_via(text))), general, text)

    def test_usual(self) -> None:
        """
        The Via every peer writes is taken by the fast parser.
        """
        self.assertIsNotNone(_fast_via("SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1;rport"))


class WithReceivedTests(SynchronousTestCase):
    """
    The top Via's received and rport written into the field as it came.
    """

    def test_rport_filled(self) -> None:
        """A bare rport gets the port, with received just before it."""
        self.assertEqual(
            with_received("SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1;rport", "10.0.0.9", 40000),
            "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1;received=10.0.0.9;rport=40000",
        )
        self.assertEqual(
            with_received("SIP/2.0/UDP h ; RPORT ;branch=z9hG4bK-1", "::1", 5),
            "SIP/2.0/UDP h ;received=::1;rport=5 ;branch=z9hG4bK-1",
        )

    def test_received_only(self) -> None:
        """Without rport asked for, received is added last."""
        self.assertEqual(
            with_received("SIP/2.0/TCP h:5060;branch=z9hG4bKa;rport=7 ", "10.0.0.9", None),
            "SIP/2.0/TCP h:5060;branch=z9hG4bKa;rport=7;received=10.0.0.9",
        )

    def test_declines_unusual_fields(self) -> None:
        """Several values, quoted strings, a received already or no bare rport: L{None}."""
        for field, port in [
            ("SIP/2.0/UDP h;branch=z9hG4bKa;rport, SIP/2.0/UDP g", 1),
            ('SIP/2.0/UDP h;branch=z9hG4bKa;rport;x="a;rport"', 1),
            ("SIP/2.0/UDP h;branch=z9hG4bKa;received=10.0.0.1;rport", 1),
            ("SIP/2.0/UDP h;branch=z9hG4bKa;rport=5", 1),
            ("SIP/2.0/UDP h;branch=z9hG4bKa;rport;rport", 1),
            ("SIP/2.0/UDP h;branch=z9hG4bKa;xrport", 1),
        ]:
            self.assertIsNone(with_received(field, "10.0.0.9", port), field)

    @settings(max_examples=300, deadline=None)
    @given(
        HOSTS,
        st.sampled_from(["", ":5060"]),
        PARAMS,
        st.sampled_from([";rport", "; rport", ";RPort", ";rport=9", ""]),
        PARAMS,
    )
    def test_parses_as_set(self, host: str, port: str, before: str, rport: str, after: str) -> None:
        """Whatever it writes parses to the Via with received and rport set on it."""
        field = f"SIP/2.0/UDP {host}{port};branch=z9hG4bKa{before}{rport}{after}"
        try:
            (via,) = parse_via(field)
        except (RemoteProtocolError, ValueError):
            return
        source_port = 40000 if via.rportRequested else None
        edited = with_received(field, "192.0.2.7", source_port)
        if edited is None:
            return
        expected = via.copy()
        if source_port is not None:
            expected.rport = source_port
        expected.received = "192.0.2.7"
        self.assertEqual(via_fields(parse_via(edited)), via_fields([expected]), edited)
