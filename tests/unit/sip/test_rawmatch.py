# -*- test-case-name: tests.unit.sip.test_rawmatch -*-
"""
Tests for L{conference.sip.rawmatch}.
"""

from __future__ import annotations

from typing import Optional

from twisted.trial.unittest import SynchronousTestCase

from conference.sip.message import Request
from conference.sip.parser import parse_datagram
from conference.sip.rawmatch import raw_branch, raw_server_key
from conference.sip.transaction_model import server_key


def wire(
    method: str = "OPTIONS", via: str = "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKa1"
) -> bytes:
    """A request with the given method and Via line value (the line named C{Via})."""
    lines = [
        f"{method} sip:room@example.com SIP/2.0",
        "Max-Forwards: 70",
        f"Via: {via}",
        "From: <sip:alice@example.com>;tag=f1",
        "To: <sip:room@example.com>",
        "Call-ID: c1@example.com",
        f"CSeq: 1 {method}",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def parsed_key(data: bytes) -> object:
    """The key the transaction layer gives the fully parsed request."""
    message = parse_datagram(data)
    assert isinstance(message, Request)
    return server_key(message, "INVITE" if message.method == "ACK" else message.method)


class RawServerKeyTests(SynchronousTestCase):
    """
    raw_server_key gives the parsed message's key, or declines.
    """

    def test_same_as_parsed(self) -> None:
        """For plainly written requests the key is the one the parsed message gets."""
        cases = [
            wire(),
            wire("INVITE"),
            wire("ACK"),
            wire("CANCEL"),
            wire(via="SIP/2.0/UDP Client.Example.COM;rport;branch=z9hG4bKa2;received=192.0.2.9"),
            wire(via="SIP/2.0/tls host.example.com;branch=z9hG4bKa3"),
            wire(via="SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bKa4 , SIP/2.0/UDP 192.0.2.2"),
            wire(via="SIP/2.0/TCP 192.0.2.1;BRANCH=z9hG4bK.x!%*_+`'~-"),
            wire().replace(b"\r\nVia:", b"\r\nv:"),
            wire().replace(b"\r\nVia:", b"\r\nVIA :"),
        ]
        for data in cases:
            found = raw_server_key(data)
            assert found is not None, data
            method, key = found
            self.assertEqual(key, parsed_key(data), data)
            self.assertEqual(method, data.split(b" ")[0].decode())

    def test_declines(self) -> None:
        """Responses and anything unusually written give None."""
        cases = [
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKa\r\n\r\n",
            wire(via="SIP/2.0/UDP 192.0.2.1;branch=old2543"),
            wire(via="SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK"),
            wire(via="SIP/2.0/UDP 192.0.2.1 ; branch=z9hG4bKa"),
            wire(via="SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKa"),
            wire(via='SIP/2.0/UDP h;x="q";branch=z9hG4bKa'),
            wire(via="SIP/2.0/UDP h;branch=z9hG4bKa;branch=z9hG4bKb"),
            wire(via="SIP/2.0/UDP h:99999;branch=z9hG4bKa"),
            wire(via="SIP/2.0/UDP h;branch=z9hG4bKa\r\n more"),
            wire().replace(b"OPTIONS sip", b"options sip"),
            wire().replace(b"\r\nVia:", b"\r\nX-Via:"),
            wire()[:-4],
            b"OPTIONS sip:a@b SIP/2.0\r\n\r\n",
        ]
        for data in cases:
            self.assertIsNone(raw_server_key(data), data)

    def test_first_via_only(self) -> None:
        """Only the top Via counts, even when another Via line follows."""
        data = wire().replace(
            b"\r\nFrom:", b"\r\nVia: SIP/2.0/UDP other.example.com;branch=z9hG4bKz\r\nFrom:"
        )
        found: Optional[object] = raw_server_key(data)
        assert found is not None
        self.assertEqual(found[1], parsed_key(data))  # type: ignore[index]


class RawBranchTests(SynchronousTestCase):
    """
    raw_branch: the first lower-case branch parameter, or None.
    """

    def test_branch(self) -> None:
        """The top Via's branch is found up to the next separator; none gives None."""
        self.assertEqual(raw_branch(wire()), "z9hG4bKa1")
        self.assertEqual(raw_branch(wire(via="SIP/2.0/UDP h;branch=z9hG4bKb;rport")), "z9hG4bKb")
        self.assertEqual(
            raw_branch(wire(via="SIP/2.0/UDP h;branch=z9hG4bKc, SIP/2.0/UDP g")), "z9hG4bKc"
        )
        self.assertIsNone(raw_branch(wire(via="SIP/2.0/UDP h;BRANCH=z9hG4bKd")))
