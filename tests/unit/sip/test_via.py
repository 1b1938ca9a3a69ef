# -*- test-case-name: tests.unit.sip.test_via -*-
"""
Tests for L{conference.sip.via}.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from conference.sip.headers import parse_via
from conference.sip.via import Via


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
