# -*- test-case-name: tests.unit.transport.test_outbound -*-
"""
Tests for L{conference.transport.outbound} on a fake network (a fake
clock, a recording UDP port, an in-memory zone): RFC 3263 order and
failover on 503 and on Timer F, and in-dialog requests with the peers
they prefer (L{OutboundSender.send_in_dialog}).
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.names import dns
from twisted.trial.unittest import SynchronousTestCase

from conference.sip.message import Request, Response
from conference.sip.transaction import Peer
from conference.sip.uri import SIPURI, parse_uri
from conference.transport.outbound import Unreachable
from tests.dnszone import srv
from tests.unit.transport.fakenet import LOCAL, FakeNetwork

#: Two SIP servers of example.net over UDP, priority 1 then 2.
ZONE: Dict[str, List[Any]] = {
    "_sip._udp.example.net": [srv(2, 0, 5080, "b.example.net"), srv(1, 0, 5070, "a.example.net")],
    "a.example.net": [dns.Record_A("198.51.100.1")],
    "b.example.net": [dns.Record_A("198.51.100.2")],
}


def sipuri(text: str) -> SIPURI:
    uri = parse_uri(text)
    assert isinstance(uri, SIPURI)
    return uri


def notify(uri: str) -> Request:
    """
    An in-dialog NOTIFY to C{uri}, without a Via.
    """
    request = Request("NOTIFY", sipuri(uri), b"")
    request.add_header("Max-Forwards", "70")
    request.add_header("From", "<sip:conf@example.com>;tag=ours")
    request.add_header("To", "<sip:bob@example.net>;tag=theirs")
    request.add_header("Call-ID", "dialog-1@example.com")
    request.add_header("CSeq", "2 NOTIFY")
    request.add_header("Event", "conference")
    request.add_header("Subscription-State", "active;expires=600")
    return request


class Sink:
    """
    A stream connection's stand-in: a transport the server sends through.
    """

    def __init__(self, local: Tuple[str, int]) -> None:
        self.local = local
        self.sent: List[bytes] = []

    def send_bytes(self, data: bytes, host: str, port: int) -> None:
        self.sent.append(data)

    def local_address(self) -> Tuple[str, int]:
        return self.local


class FailoverTests(SynchronousTestCase):
    """
    Out-of-dialog requests try the SRV targets in order.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.net = FakeNetwork(self.clock, dict(ZONE))

    def send(self) -> Deferred[Tuple[Response, Peer]]:
        request = notify("sip:bob@example.net")
        return self.net.sender.send_attempt(request, request.uri)

    def test_timeout_then_next(self) -> None:
        """A target that stays silent past Timer F (64*T1) is followed by the next by priority."""
        d = self.send()
        [(first, host, port)] = self.net.requests()
        self.assertEqual((host, port), ("198.51.100.1", 5070))
        self.assertTrue(
            (first.header("via") or "").startswith(f"SIP/2.0/UDP {LOCAL[0]}:{LOCAL[1]};")
        )
        self.clock.advance(31.9)
        self.assertEqual(len(self.net.requests()), 1)
        self.assertNoResult(d)
        self.clock.advance(0.2)
        second, host, port = self.net.requests()[-1]
        self.assertEqual((host, port), ("198.51.100.2", 5080))
        self.assertNotEqual(second.header("via"), first.header("via"))  # a new branch
        self.net.answer(second, (host, port), 200)
        response, peer = self.successResultOf(d)
        self.assertEqual((response.code, peer.host, peer.port), (200, "198.51.100.2", 5080))

    def test_503_then_next(self) -> None:
        """A 503 moves on to the next target at once; its 200 is the answer."""
        d = self.send()
        [(first, host, port)] = self.net.requests()
        self.net.answer(first, (host, port), 503)
        second, host, port = self.net.requests()[-1]
        self.assertEqual(host, "198.51.100.2")
        self.net.answer(second, (host, port), 200)
        self.assertEqual(self.successResultOf(d)[0].code, 200)


class InDialogTests(SynchronousTestCase):
    """
    L{OutboundSender.send_in_dialog}: the preferred peer, then RFC 3263,
    then the last resort; never a clear-text peer for a sips: hop.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.net = FakeNetwork(self.clock, dict(ZONE))
        self.stream = Sink(("192.0.2.1", 5061))
        self.net.server.add_sender(self.stream, self.stream)
        self.flow = Peer("TLS", "203.0.113.5", 40123, self.stream)

    def test_first_peer_without_dns(self) -> None:
        """An open connection given first carries the request; DNS is not asked."""
        self.net.zone.clear()
        d = self.net.sender.send_in_dialog(
            notify("sips:bob@example.net"), sipuri("sips:bob@example.net"), first=self.flow
        )
        [data] = self.stream.sent
        self.assertIn(b"Via: SIP/2.0/TLS 192.0.2.1:5061;branch=", data)
        self.assertNoResult(d)

    def test_closed_first_peer_resolves(self) -> None:
        """A connection that is gone is skipped: the hop's RFC 3263 targets come next."""
        self.net.server.remove_sender(self.stream)
        self.net.sender.send_in_dialog(
            notify("sip:bob@example.net"), sipuri("sip:bob@example.net"), first=self.flow
        )
        [(_, host, _)] = self.net.requests()
        self.assertEqual(host, "198.51.100.1")

    def test_last_resort(self) -> None:
        """When the hop resolves to nothing, the last peer (the request's source) is used."""
        source = Peer("UDP", "203.0.113.7", 5062, self.net.udp)
        d = self.net.sender.send_in_dialog(
            notify("sip:bob@pc.example.net"), sipuri("sip:bob@pc.example.net"), last=source
        )
        [(request, host, port)] = self.net.requests()
        self.assertEqual((host, port), ("203.0.113.7", 5062))
        self.net.answer(request, (host, port), 200)
        self.assertEqual(self.successResultOf(d)[1], source)

    def test_sips_never_in_clear(self) -> None:
        """A sips: hop goes to no UDP peer, given first or last: nothing is sent."""
        self.net.zone.clear()
        source = Peer("UDP", "203.0.113.7", 5062, self.net.udp)
        d = self.net.sender.send_in_dialog(
            notify("sips:bob@example.net"),
            sipuri("sips:bob@example.net"),
            first=source,
            last=source,
        )
        self.failureResultOf(d, Unreachable)
        self.assertEqual(self.net.udp.sent, [])

    def test_failed_first_not_retried(self) -> None:
        """A first peer that answered 503 is not tried again when the hop resolves to it."""
        first = Peer("UDP", "198.51.100.1", 5070, self.net.udp)
        d = self.net.sender.send_in_dialog(
            notify("sip:bob@example.net"), sipuri("sip:bob@example.net"), first=first
        )
        [(request, host, port)] = self.net.requests()
        self.net.answer(request, (host, port), 503)
        second, host, port = self.net.requests()[-1]
        self.assertEqual((host, port), ("198.51.100.2", 5080))
        self.net.answer(second, (host, port), 200)
        self.assertEqual(self.successResultOf(d)[0].code, 200)
        self.assertEqual(len(self.net.requests()), 2)
