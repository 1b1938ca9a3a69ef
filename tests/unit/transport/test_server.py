# -*- test-case-name: tests.unit.transport.test_server -*-
"""
Tests for L{conference.transport.server}: the glue between transports and
the sans-I/O core, driven by a fake clock and a recording transport.
"""

from __future__ import annotations

import time
from typing import Any, Callable, List, Optional, Tuple, cast

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.logger import ILogObserver, LogLevel, formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from conference.app.core import CoreRouter, RequestContext
from conference.interfaces import IRequestHandler
from conference.overload import OverloadControl, ProportionalShedding
from conference.overload_feedback import OverloadFeedback
from conference.sip import message as message_module
from conference.sip import quick
from conference.sip.compacted import CompactResponse
from conference.sip.errors import SIPProtocolError
from conference.sip.message import Request, Response, make_response
from conference.sip.parser import parse_datagram
from conference.sip.transaction import Peer
from conference.sip.transaction_model import new_branch, new_tag
from conference.transport.server import TIMER_SLACK, SIPServer, response_destination
from tests.builders import make_request, parse_response, request_bytes


class RecordingSender:
    """
    A transport that keeps what it was asked to send.
    """

    def __init__(self) -> None:
        self.sent: List[Tuple[bytes, str, int]] = []

    def send_bytes(self, data: bytes, host: str, port: int) -> None:
        self.sent.append((data, host, port))

    def local_address(self) -> Tuple[str, int]:
        return ("127.0.0.1", 5060)

    def responses(self) -> List[Response]:
        return [parse_response(data) for data, _, _ in self.sent if data.startswith(b"SIP/2.0")]


@implementer(IRequestHandler)
class SlowHandler:
    """
    Answers INVITE only when the test fires its Deferred.
    """

    methods = ("INVITE",)
    accepts: dict[str, Any] = {"INVITE": ("application/sdp",)}

    def __init__(self) -> None:
        self.pending: List[Tuple[Request, Deferred[Response]]] = []
        self.cancelled: List[Request] = []
        self.acked: List[Request] = []
        self.timed_out: List[Request] = []

    def handle_request(self, request: Request, context: RequestContext) -> Deferred[Response]:
        d: Deferred[Response] = Deferred()
        self.pending.append((request, d))
        return d

    def handle_ack(self, request: Request, context: RequestContext) -> None:
        self.acked.append(request)

    def handle_cancel(self, request: Request, context: RequestContext) -> None:
        self.cancelled.append(request)

    def handle_timeout(self, request: Request) -> None:
        self.timed_out.append(request)


class ServerTests(SynchronousTestCase):
    """
    Receiving, answering, timers and stopping.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.router = CoreRouter(["example.com"], tag_factory=new_tag, accept_ip_literals=True)
        self.handler = SlowHandler()
        self.router.add_handler(self.handler)
        self.server = SIPServer(self.router, reactor=self.clock)
        self.sender = RecordingSender()
        self.server.add_sender("udp", self.sender)
        self.peer = Peer("UDP", "192.0.2.1", 5060, "udp")

    def receive(self, data: bytes, peer: Optional[Peer] = None) -> None:
        self.server.datagram_received(data, peer or self.peer)

    def test_options_answered(self) -> None:
        """An OPTIONS datagram is answered 200 to the Via's sent-by."""
        self.receive(request_bytes("OPTIONS", "sip:example.com"))
        [(data, host, port)] = self.sender.sent
        self.assertEqual((host, port), ("192.0.2.1", 5060))
        self.assertEqual(parse_response(data).code, 200)

    def test_authenticate_answering_none_at_once(self) -> None:
        """An authenticate hook may answer None at once (no identity): the request is answered."""
        asked: List[str] = []

        def authenticate(request: Any, now: float) -> None:
            asked.append(request.method)

        self.server.authenticate = authenticate
        self.receive(request_bytes("OPTIONS", "sip:example.com"))
        [(data, _, _)] = self.sender.sent
        self.assertEqual((asked, parse_response(data).code), (["OPTIONS"], 200))

    def test_rport(self) -> None:
        """With rport the response goes to the source address and port (RFC 3581)."""
        peer = Peer("UDP", "198.51.100.7", 40000, "udp")
        self.receive(request_bytes("OPTIONS", "sip:example.com", rport=True), peer)
        [(data, host, port)] = self.sender.sent
        self.assertEqual((host, port), ("198.51.100.7", 40000))
        via = parse_response(data).top_via
        self.assertEqual((via.received, via.rport), ("198.51.100.7", 40000))

    def test_via_fixed_once(self) -> None:
        """received/rport go into a copy of the top Via, kept with the new text: no reparse."""
        request = make_request("OPTIONS", "sip:example.com", rport=True)
        request.headers["via"][0] += ", SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKnext"
        before = request.parsed_vias()
        self.patch(message_module, "parse_via", lambda value: self.fail("Via parsed again"))
        self.server._fix_via(request, Peer("UDP", "198.51.100.7", 40000, "udp"))
        top, second = request.parsed_vias()
        self.assertEqual(
            (top.received, top.rport, second.host), ("198.51.100.7", 40000, "192.0.2.9")
        )
        self.assertIn("received=198.51.100.7;rport=40000", request.headers["via"][0])
        self.assertIsNone(before[0].received)  # the remembered Via was not changed
        self.assertIs(second, before[1])

    def test_received_without_rport(self) -> None:
        """Without rport the response goes to received and the Via port."""
        peer = Peer("UDP", "198.51.100.7", 40000, "udp")
        self.receive(request_bytes("OPTIONS", "sip:example.com"), peer)
        [(data, host, port)] = self.sender.sent
        self.assertEqual((host, port), ("198.51.100.7", 5060))
        self.assertEqual(parse_response(data).top_via.received, "198.51.100.7")

    def test_garbage_dropped(self) -> None:
        """Bytes that are no SIP message are dropped without an answer or error."""
        self.receive(b"\x00\xff garbage\r\n\r\n")
        self.receive(b"\r\n\r\n")
        self.assertEqual(self.sender.sent, [])

    def test_malformed_request_answered_400(self) -> None:
        """A request with a bad header is answered 400 with a reason naming it."""
        data = request_bytes("OPTIONS", "sip:example.com", headers=[("Max-Forwards", "x")])
        self.receive(data.replace(b"Max-Forwards: 70\r\n", b""))
        [response] = self.sender.responses()
        self.assertEqual(response.code, 400)
        self.assertIn("Max-Forwards", response.phrase)

    def test_refusal_goes_to_source(self) -> None:
        """A stateless 400 goes to the source address, not to the Via's host (RFC 3261 18.2.1)."""
        data = request_bytes("OPTIONS", "sip:example.com", via_host="203.0.113.9:5070")
        data = data.replace(b"CSeq: 1 OPTIONS", b"CSeq: 1 INVITE")
        self.receive(data, Peer("UDP", "192.0.2.44", 6000, "udp"))
        [(raw, host, port)] = self.sender.sent
        self.assertEqual((host, port), ("192.0.2.44", 5070))
        self.assertEqual(parse_response(raw).code, 400)

    def test_bad_response_dropped(self) -> None:
        """A response with no transaction is dropped silently."""
        self.receive(
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx\r\n"
            b"From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>;tag=2\r\nCall-ID: c\r\n"
            b"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        )
        self.assertEqual(self.sender.sent, [])

    def test_trying_after_200ms(self) -> None:
        """An INVITE not answered within 200 ms gets 100 Trying from the layer."""
        self.receive(request_bytes("INVITE", "sip:conf@example.com"))
        self.assertEqual(self.sender.sent, [])
        self.clock.advance(0.2)
        self.assertEqual([r.code for r in self.sender.responses()], [100])

    def test_cancel(self) -> None:
        """CANCEL gets 200, the INVITE 487, and the handler learns of it."""
        self.receive(request_bytes("INVITE", "sip:conf@example.com"))
        self.receive(request_bytes("CANCEL", "sip:conf@example.com"))
        codes = sorted(r.code for r in self.sender.responses())
        self.assertEqual(codes, [200, 487])
        self.assertEqual(len(self.handler.cancelled), 1)
        # The application's late answer is dropped, not sent.
        request, d = self.handler.pending[0]
        d.callback(make_response(request, 200, to_tag="x"))
        self.assertEqual(len(self.sender.responses()), 2)

    def test_cancel_after_final_not_reported(self) -> None:
        """A CANCEL after the final response gets 200 and is not handed to the handler."""
        self.receive(request_bytes("INVITE", "sip:conf@example.com"))
        request, d = self.handler.pending[0]
        d.callback(make_response(request, 486, to_tag="x"))
        self.receive(request_bytes("CANCEL", "sip:conf@example.com"))
        self.assertEqual([r.code for r in self.sender.responses()], [486, 200])
        self.assertEqual(self.handler.cancelled, [])

    def test_timers_run_on_clock(self) -> None:
        """A 486 is retransmitted on Timer G until the transaction ends."""
        self.receive(request_bytes("INVITE", "sip:conf@example.com"))
        request, d = self.handler.pending[0]
        d.callback(make_response(request, 486, to_tag="x"))
        self.clock.advance(0.5)
        self.clock.advance(1.0)
        self.assertEqual([r.code for r in self.sender.responses()], [486, 486, 486])
        self.clock.pump([4.0] * 10)
        self.assertEqual(self.server.layer.pending(), 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_unacknowledged_answer_reported(self) -> None:
        """A final answer to an INVITE never acknowledged (Timer H) is reported to its handler."""
        self.receive(request_bytes("INVITE", "sip:conf@example.com"))
        request, d = self.handler.pending[0]
        d.callback(make_response(request, 486, to_tag="x"))
        self.clock.pump([4.0] * 7)
        self.assertEqual(self.handler.timed_out, [])
        self.clock.pump([4.0] * 2)
        [timed_out] = self.handler.timed_out
        # Held as bytes while it waited, the request is read back for it.
        self.assertEqual(timed_out.to_bytes(), request.to_bytes())
        self.assertEqual((timed_out.method, timed_out.call_id), ("INVITE", request.call_id))

    def test_auth_refusal(self) -> None:
        """A request the authenticator refuses gets its status and headers."""
        challenge = SIPProtocolError(
            "Unauthorized", 401, [("WWW-Authenticate", 'Digest realm="x"')]
        )
        self.server.authenticate = lambda request, now: fail(challenge)
        self.receive(request_bytes("OPTIONS", "sip:example.com"))
        [response] = self.sender.responses()
        self.assertEqual(response.code, 401)
        self.assertEqual(response.header("www-authenticate"), 'Digest realm="x"')

    def test_identity_reaches_handler(self) -> None:
        """The authenticated identity is in the handler's context."""
        seen: List[Any] = []
        original = self.handler.handle_request

        def spy(request: Request, context: RequestContext) -> Deferred[Response]:
            seen.append(context.identity)
            return original(request, context)

        self.handler.handle_request = spy  # type: ignore[method-assign]
        self.server.authenticate = lambda request, now: succeed("alice")
        self.receive(request_bytes("INVITE", "sip:conf@example.com"))
        self.assertEqual(seen, ["alice"])

    def test_handler_crash_is_500(self) -> None:
        """An unexpected handler exception becomes 500 and is logged once."""

        def crash(request: Request, context: RequestContext) -> Response:
            raise ZeroDivisionError()

        self.handler.handle_request = crash  # type: ignore[method-assign,assignment]
        self.receive(request_bytes("INVITE", "sip:conf@example.com"))
        self.assertEqual([r.code for r in self.sender.responses()], [500])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_answer_at_once(self) -> None:
        """A handler answering with a plain Response is answered at once, and 500 on a crash."""

        def plain(request: Request, context: RequestContext) -> Response:
            return make_response(request, 486, to_tag="x")

        self.handler.handle_request = plain  # type: ignore[method-assign,assignment]
        self.receive(request_bytes("INVITE", "sip:conf@example.com"))
        self.assertEqual([r.code for r in self.sender.responses()], [486])

    def test_refusal_at_once(self) -> None:
        """A protocol error raised at once by a handler becomes its response."""

        def refuse(request: Request, context: RequestContext) -> Response:
            raise SIPProtocolError("Gone", 410)

        self.handler.handle_request = refuse  # type: ignore[method-assign,assignment]
        self.receive(request_bytes("INVITE", "sip:conf@example.com"))
        [response] = self.sender.responses()
        self.assertEqual((response.code, response.phrase), (410, "Gone"))
        self.assertIsNotNone(response.to.tag)

    def test_unvalidated_message(self) -> None:
        """message_received validates what it is given unless told it was validated."""
        request = make_request("OPTIONS", "sip:example.com")
        request.headers["cseq"] = ["1 INVITE"]
        self.server.message_received(request, self.peer)
        [response] = self.sender.responses()
        self.assertEqual(response.code, 400)

    def test_graceful_stop(self) -> None:
        """Stop waits for transactions in progress and answers new requests 503."""
        self.receive(request_bytes("INVITE", "sip:conf@example.com"))
        stopped = self.server.stop(timeout=5.0)
        self.assertNoResult(stopped)
        self.receive(request_bytes("OPTIONS", "sip:example.com", branch="z9hG4bKother"))
        self.assertIn(503, [r.code for r in self.sender.responses()])
        request, d = self.handler.pending[0]
        d.callback(make_response(request, 486, to_tag="x"))
        self.clock.pump([1.0] * 40)
        self.successResultOf(stopped)

    def test_stop_when_last_row_expires(self) -> None:
        """A graceful stop ends when the last transaction's row expires, before its timeout."""
        self.server.answer_statelessly = False
        self.receive(request_bytes("OPTIONS", "sip:example.com"))
        self.assertEqual(self.server.layer.sizes()["completed"], 1)
        stopped = self.server.stop(timeout=60.0)
        self.clock.pump([1.0] * 31)
        self.assertNoResult(stopped)
        self.clock.pump([1.0] * 2)
        self.successResultOf(stopped)
        self.assertEqual(self.server.layer.pending(), 0)

    def test_stop_bounded(self) -> None:
        """Stop fires after its timeout even if a transaction never ends."""
        self.receive(request_bytes("INVITE", "sip:conf@example.com"))
        stopped = self.server.stop(timeout=2.0)
        self.clock.advance(2.0)
        self.successResultOf(stopped)

    def test_no_sender(self) -> None:
        """A response whose transport is gone is dropped and counted."""
        self.server.remove_sender("udp")
        self.receive(request_bytes("OPTIONS", "sip:example.com"))
        self.assertEqual(self.server.stats["dropped"], 1)

    def test_destination_maddr(self) -> None:
        """A Via maddr sends the response there (RFC 3261 section 18.2.2)."""
        request = make_request(
            "OPTIONS", "sip:example.com", via_host="192.0.2.1:5070;maddr=239.1.1.1"
        )
        response = make_response(request, 200)
        self.assertEqual(response_destination(response, self.peer), ("239.1.1.1", 5070))

    def test_destination_stream(self) -> None:
        """Over a stream the response goes back on the connection."""
        request = make_request("OPTIONS", "sip:example.com", transport="TCP")
        peer = Peer("TCP", "198.51.100.1", 33333, "conn")
        self.assertEqual(
            response_destination(make_response(request, 200), peer), ("198.51.100.1", 33333)
        )

    def test_retransmission_answered_unparsed(self) -> None:
        """A retransmitted OPTIONS (answered statefully) gets the same bytes again, unparsed."""
        self.server.answer_statelessly = False
        data = request_bytes("OPTIONS", "sip:example.com")
        self.receive(data)
        # The copy's Contact is broken: only the request line and top Via are read.
        self.receive(data.replace(b"Max-Forwards: 70", b"Max-Forwards: 70\r\nContact: <"))
        first, again = self.sender.sent
        self.assertEqual(first, again)
        self.assertEqual(self.server.stats["received"], 2)

    def test_ack_of_final_absorbed_unparsed(self) -> None:
        """The ACK of a non-2xx final ends Completed from its raw lines; nothing is sent."""
        self.receive(request_bytes("INVITE", "sip:room@example.com", branch="z9hG4bKi1"))
        [(request, d)] = self.handler.pending
        d.callback(make_response(request, 486, to_tag="busy"))
        self.receive(
            request_bytes(
                "ACK", "sip:room@example.com", branch="z9hG4bKi1", to="<sip:r@x>;tag=busy"
            )
        )
        self.assertEqual(self.server.layer.next_deadline(), self.server.layer.t4)  # Timer I
        self.assertEqual(len(self.sender.sent), 1)
        self.assertEqual(self.handler.acked, [])


class TransactionCapTests(SynchronousTestCase):
    """
    A flood from a source exempt from rate limits
    (loopback) meets the transaction cap like any other source.
    """

    def setUp(self) -> None:
        from conference.limits import Rate, RateLimiter

        self.clock = Clock()
        router = CoreRouter(["example.com"], tag_factory=new_tag, accept_ip_literals=True)
        self.server = SIPServer(
            router,
            reactor=self.clock,
            limiter=RateLimiter(Rate(1, 60)),  # 127.0.0.1 is exempt by default
            max_transactions=5,
            answer_statelessly=False,
        )
        self.sender = RecordingSender()
        self.server.add_sender("udp", self.sender)
        self.peer = Peer("UDP", "127.0.0.1", 5070, "udp")

    def flood(self, count: int, first: int = 0, method: str = "INVITE") -> List[int]:
        """
        New requests from one source; the codes of every answer so far.
        INVITEs are refused and never acknowledged: each stays a live
        transaction until Timer H (answered and retired ones hold no place).
        """
        for n in range(first, first + count):
            data = request_bytes(
                method,
                "sip:example.com",
                branch=f"z9hG4bKflood{n}",
                call_id=f"flood-{n}",
                via_host="127.0.0.1:5070",
            )
            self.server.datagram_received(data, self.peer)
        return [r.code for r in self.sender.responses()]

    def test_exempt_flood_shed_past_cap(self) -> None:
        """Past the cap, new requests get a stateless 503 with Retry-After; none is unanswered."""
        codes = self.flood(12)
        self.assertEqual(codes, [405] * 5 + [503] * 7)
        shed = self.sender.responses()[-1]
        self.assertEqual(shed.header("retry-after"), "10")
        self.assertEqual(self.server.layer.pending(), 5)
        self.assertEqual(self.server.stats["shed"], 7)
        self.assertEqual(self.server.stats["limited"], 0)

    def test_shed_logged_once_a_minute(self) -> None:
        """A flood past the cap logs one warning a minute, not one per request."""
        events: List[Any] = []
        observer = cast(ILogObserver, events.append)
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        self.flood(20)
        warned = [e for e in events if "transactions live" in e.get("log_format", "")]
        self.assertEqual(len(warned), 1)

    def test_stateless_answers_take_no_place(self) -> None:
        """Stateless answers hold no transaction; at the cap all is shed before the application."""
        self.server.answer_statelessly = True
        self.flood(8)
        self.assertEqual(self.server.layer.pending(), 0)
        self.server.answer_statelessly = False
        self.flood(5, first=8)
        self.server.answer_statelessly = True
        self.assertEqual(self.flood(2, first=13), [405] * 13 + [503] * 2)
        self.assertEqual((self.server.stats["shed"], self.server.stats["stateless"]), (2, 8))

    def test_served_again_after_timer_h(self) -> None:
        """When the live transactions end (Timer H, up to TIMER_SLACK late), new requests pass."""
        self.flood(6)
        self.clock.advance(64 * self.server.layer.t1 + TIMER_SLACK)
        self.assertEqual(self.server.layer.pending(), 0)
        self.assertEqual(self.flood(1, first=100)[-1], 405)

    def test_answered_requests_take_no_place(self) -> None:
        """Answered and retired requests never reach the cap: the oldest rows go early."""
        self.assertEqual(self.flood(12, method="OPTIONS"), [200] * 12)
        self.assertEqual(self.server.layer.sizes()["completed"], 5)
        self.assertEqual(self.server.stats["shed"], 0)


class TransactionLogTests(SynchronousTestCase):
    """
    The one log event per transaction: when its final response is sent or
    received, with the latency, never at the timer that ends it.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.router = CoreRouter(["example.com"], tag_factory=new_tag, accept_ip_literals=True)
        self.handler = SlowHandler()
        self.router.add_handler(self.handler)
        self.server = SIPServer(self.router, reactor=self.clock)
        self.sender = RecordingSender()
        self.server.add_sender("udp", self.sender)
        self.peer = Peer("UDP", "192.0.2.1", 5060, "udp")
        self.events: List[Any] = []
        observer = cast(ILogObserver, self.events.append)
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)

    def lines(self, call_id: str) -> List[str]:
        """
        The transaction log lines of one Call-ID, as text.
        """
        return [formatEvent(e) for e in self.events if e.get("call_id") == call_id]

    def test_at_final_response(self) -> None:
        """An INVITE answered after 1.5 s logs its 486 then, not when Timer H ends it."""
        self.server.datagram_received(
            request_bytes("INVITE", "sip:conf@example.com", call_id="log-1"), self.peer
        )
        self.clock.advance(1.5)
        self.assertEqual(self.lines("log-1"), [])
        request, d = self.handler.pending[0]
        d.callback(make_response(request, 486, to_tag="x"))
        expected = [
            "INVITE sip:conf@example.com from 192.0.2.1:5060/UDP -> 486 (1500.0 ms) call-id=log-1"
        ]
        self.assertEqual(self.lines("log-1"), expected)
        self.clock.pump([1.0] * 40)
        self.assertEqual(self.server.layer.pending(), 0)
        self.assertEqual(self.lines("log-1"), expected)

    def test_completed_held_compacted(self) -> None:
        """Once logged, a completed transaction holds its request and response as bytes alone."""
        self.server.datagram_received(
            request_bytes("INVITE", "sip:conf@example.com", call_id="log-3"), self.peer
        )
        request, d = self.handler.pending[0]
        response = make_response(request, 486, to_tag="x")
        d.callback(response)
        self.assertEqual(
            self.lines("log-3"),
            ["INVITE sip:conf@example.com from 192.0.2.1:5060/UDP -> 486 (0.0 ms) call-id=log-3"],
        )
        [held] = [t for t in self.server.layer._server.values() if t.method == "INVITE"]
        self.assertTrue(held.held)
        self.assertEqual((held._request, held._final), (request.to_bytes(), response.to_bytes()))
        self.assertIs(held._last, held._final)
        sent = self.sender.sent[-1][0]
        self.clock.advance(self.server.layer.t1)  # Timer G: the same bytes again
        self.assertEqual(self.sender.sent[-1][0], sent)
        self.assertIsInstance(held.final_response, CompactResponse)
        self.assertIs(held.last_response, held.final_response)

    def test_completed_retired(self) -> None:
        """Once logged, an answered OPTIONS only waits: a table row that answers its copies."""
        self.server.answer_statelessly = False
        data = request_bytes("OPTIONS", "sip:example.com", call_id="log-5")
        self.server.datagram_received(data, self.peer)
        sizes = self.server.layer.sizes()
        self.assertEqual((sizes["server"], sizes["completed"]), (0, 1))
        sent = self.sender.sent[-1][0]
        self.server.datagram_received(data, self.peer)  # the raw path absorbs it
        parsed = parse_datagram(data)
        assert parsed is not None
        self.server.message_received(parsed, self.peer)  # and the full one
        self.assertEqual([s[0] for s in self.sender.sent[-3:]], [sent] * 3)
        self.assertEqual(len(self.lines("log-5")), 1)
        self.clock.advance(64 * self.server.layer.t1 + 1)
        self.assertEqual(self.server.layer.pending(), 0)

    def test_fields(self) -> None:
        """The event keeps method, status, latency and peer as fields for JSON logs."""
        self.server.datagram_received(
            request_bytes("OPTIONS", "sip:example.com", call_id="log-2"), self.peer
        )
        [event] = [e for e in self.events if e.get("call_id") == "log-2"]
        self.assertEqual(
            (event["method"], event["status"], event["duration_ms"], event["outbound"]),
            ("OPTIONS", 200, 0.0, False),
        )
        self.assertEqual(event["peer"], self.peer)

    def test_event_keys(self) -> None:
        """The event has the keys Logger.emit gives, from the server's logger, at wall time."""
        from conference.transport import server as module

        before = time.time()
        self.server.datagram_received(
            request_bytes("OPTIONS", "sip:example.com", call_id="log-4"), self.peer
        )
        [event] = [e for e in self.events if e.get("call_id") == "log-4"]
        self.assertIs(event["log_logger"], module.log)
        self.assertEqual(
            (event["log_namespace"], event["log_source"], event["log_format"]),
            (module.log.namespace, None, "{transaction_summary}"),
        )
        self.assertIn(event["log_level"], list(LogLevel.iterconstants()))
        self.assertTrue(before <= event["log_time"] <= time.time())

    def test_keepalives_at_debug(self) -> None:
        """An OPTIONS answered 200 is a debug event; any other outcome, and other methods, info."""
        self.server.datagram_received(
            request_bytes("OPTIONS", "sip:example.com", call_id="ka-1"), self.peer
        )
        self.server.datagram_received(
            request_bytes("OPTIONS", "sip:nobody@elsewhere.example", call_id="ka-2"), self.peer
        )
        self.server.datagram_received(
            request_bytes("INVITE", "sip:conf@example.com", call_id="ka-3"), self.peer
        )
        request, d = self.handler.pending[0]
        d.callback(make_response(request, 200, to_tag="x"))
        levels = {
            e["call_id"]: (e["status"], e["log_level"])
            for e in self.events
            if e.get("call_id", "").startswith("ka-")
        }
        self.assertEqual(
            levels,
            {
                "ka-1": (200, LogLevel.debug),
                "ka-2": (404, LogLevel.info),
                "ka-3": (200, LogLevel.info),
            },
        )

    def test_keepalives_not_emitted(self) -> None:
        """With log_keepalives off an OPTIONS answered 200 emits no event; a 404 still does."""
        self.server.log_keepalives = False
        self.server.datagram_received(
            request_bytes("OPTIONS", "sip:example.com", call_id="kq-1"), self.peer
        )
        self.server.datagram_received(
            request_bytes("OPTIONS", "sip:nobody@elsewhere.example", call_id="kq-2"), self.peer
        )
        logged = [e["call_id"] for e in self.events if e.get("call_id", "").startswith("kq-")]
        self.assertEqual(logged, ["kq-2"])
        self.assertEqual(self.server.stats["stateless"], 2)

    def test_not_lost_on_stop(self) -> None:
        """A UDP transaction still waiting for Timer J is already logged when the server stops."""
        self.server.answer_statelessly = False
        self.server.datagram_received(
            request_bytes("OPTIONS", "sip:example.com", call_id="log-3"), self.peer
        )
        stopped = self.server.stop(timeout=0.5)
        self.clock.advance(0.5)
        self.successResultOf(stopped)
        self.assertEqual(self.server.layer.pending(), 1)
        self.assertEqual(len(self.lines("log-3")), 1)

    def outbound(self) -> Tuple[Request, Deferred[Response]]:
        """
        Send a NOTIFY to the peer; return it and its final response to come.
        """
        request = make_request(
            "NOTIFY",
            "sip:alice@192.0.2.1",
            via_host="127.0.0.1:5060",
            branch=new_branch(),
            to="<sip:alice@example.com>;tag=t1",
            call_id="out-1",
        )
        return request, self.server.send_request(request, self.peer)

    def test_outbound(self) -> None:
        """A request the server sent logs when its final arrives, with the round trip."""
        request, answered = self.outbound()
        self.clock.advance(0.25)
        self.server.message_received(make_response(request, 200), self.peer)
        self.assertEqual(
            self.lines("out-1"),
            ["NOTIFY sip:alice@192.0.2.1 to 192.0.2.1:5060/UDP -> 200 (250.0 ms) call-id=out-1"],
        )
        [event] = [e for e in self.events if e.get("call_id") == "out-1"]
        self.assertTrue(event["outbound"])
        self.assertEqual(self.successResultOf(answered).code, 200)
        self.clock.pump([1.0] * 10)
        self.assertEqual(len(self.lines("out-1")), 1)

    def test_outbound_timeout(self) -> None:
        """A request never answered logs a timeout when Timer F gives up, 64*T1 after sending."""
        _, answered = self.outbound()
        self.clock.pump([0.5] * 70)
        self.failureResultOf(answered, TimeoutError)
        self.assertIn(
            "NOTIFY sip:alice@192.0.2.1 to 192.0.2.1:5060/UDP -> timeout (32000.0 ms)"
            " call-id=out-1",
            self.lines("out-1"),
        )
        self.assertEqual(len(self.lines("out-1")), 1)


class UnparsedRefusalTests(SynchronousTestCase):
    """
    While the UDP queue's wait makes the server shed, its share of new
    requests is refused 503 from their raw lines; everything else takes
    the full path.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1000.0)
        self.router = CoreRouter(["example.com"], tag_factory=new_tag, accept_ip_literals=True)
        self.handler = SlowHandler()
        self.router.add_handler(self.handler)
        self.server = SIPServer(self.router, reactor=self.clock)
        self.server.overload = OverloadControl(0.1, retry_after=(3, 3))
        self.server.queue = ProportionalShedding(0.02)
        self.server.queue.fraction = 1.0  # every new request refused
        self.sender = RecordingSender()
        self.server.add_sender("udp", self.sender)
        self.peer = Peer("UDP", "192.0.2.7", 40000, "udp")

    def receive(self, method: str, n: int, waited: float, **kw: Any) -> None:
        data = request_bytes(
            method, "sip:room@example.com", branch=f"z9hG4bKu{n}", via_host="192.0.2.7:5070", **kw
        )
        self.server.datagram_received(data, self.peer, self.clock.seconds() - waited)

    def test_new_invite_refused(self) -> None:
        """A new INVITE in the refused share is 503 Retry-After to its Via port, unparsed."""
        self.receive("INVITE", 1, 0.5)
        [(data, host, port)] = self.sender.sent
        response = parse_response(data)
        self.assertEqual((response.code, response.header("retry-after")), (503, "3"))
        self.assertEqual((host, port), ("192.0.2.7", 5070))
        self.assertEqual(self.handler.pending, [])
        self.assertEqual(self.server.stats["received"], 0)  # never parsed
        self.assertEqual(self.server.overload.sheds["INVITE"], 1)  # type: ignore[union-attr]
        # Its ACK carries our tag and is absorbed the same way.
        self.receive("ACK", 1, 0.5, to=f"<sip:room@example.com>;tag={response.to.tag}")
        self.assertEqual((len(self.sender.sent), self.server.stats["received"]), (1, 0))

    def test_ack_told_by_tag(self) -> None:
        """Shedding, an ACK is told by its To tag alone: a refusal's absorbed, a 2xx's parsed."""
        read: List[bytes] = []
        peek = quick.peek

        def recording(data: bytes) -> Any:
            read.append(data)
            return peek(data)

        self.patch(quick, "peek", recording)
        self.receive("INVITE", 7, 0.5)
        tag = self.sender.responses()[-1].to.tag
        self.receive("ACK", 7, 0.5, to=f"<sip:room@example.com>;tag={tag}")
        self.assertEqual((len(read), self.server.stats["received"]), (1, 0))
        self.receive("ACK", 8, 0.5, to="<sip:room@example.com>;tag=dialog1")
        self.assertEqual((len(read), self.server.stats["received"]), (1, 1))

    def test_not_shedding_serves(self) -> None:
        """With nothing to refuse, a new request reaches the application."""
        self.server.queue.fraction = 0.0  # type: ignore[union-attr]
        self.receive("INVITE", 2, 0.5)
        self.assertEqual(len(self.handler.pending), 1)

    def test_share_refused(self) -> None:
        """With half to refuse, every other new INVITE is refused, the rest served."""
        self.server.queue.fraction = 0.5  # type: ignore[union-attr]
        for n in range(10, 14):
            self.receive("INVITE", n, 0.001, call_id=f"share-{n}")
        self.assertEqual(len(self.handler.pending), 2)
        self.assertEqual([r.code for r in self.sender.responses()].count(503), 2)

    def test_exempt_and_in_dialog_pass(self) -> None:
        """OPTIONS and requests with a To tag take the full path while shedding."""
        self.receive("OPTIONS", 3, 0.5)
        self.receive("INVITE", 4, 0.5, to="<sip:room@example.com>;tag=dlg")
        self.assertEqual(self.server.stats["received"], 2)
        self.assertNotIn(503, [r.code for r in self.sender.responses()])

    def test_retransmission_absorbed(self) -> None:
        """A retransmission of a request being served goes to its transaction, not a 503."""
        self.server.queue.fraction = 0.0  # type: ignore[union-attr]
        self.receive("INVITE", 5, 0.001)
        self.server.queue.fraction = 1.0  # type: ignore[union-attr]
        self.receive("INVITE", 5, 0.5)
        self.assertNotIn(503, [r.code for r in self.sender.responses()])
        self.assertEqual(len(self.handler.pending), 1)
        self.assertTrue(self.server.layer.serving("z9hG4bKu5"))

    def test_unknown_shape_takes_full_path(self) -> None:
        """What the quick reader declines (here an RFC 2543 branch) is parsed as usual."""
        data = request_bytes("INVITE", "sip:room@example.com", branch="old2543")
        self.server.datagram_received(data, self.peer, self.clock.seconds() - 0.5)
        self.assertEqual(self.server.stats["received"], 1)


class OverloadFeedbackTests(SynchronousTestCase):
    """
    RFC 7339: while the server sheds, its responses tell clients that ask
    (an C{oc} Via parameter) the share of new requests to drop.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_764_000_000.0)
        router = CoreRouter(["example.com"], tag_factory=new_tag, accept_ip_literals=True)
        self.server = SIPServer(router, reactor=self.clock)
        self.server.overload = OverloadControl(0.1, retry_after=(3, 3))
        self.server.queue = ProportionalShedding(0.02)
        self.server.feedback = OverloadFeedback()
        self.sender = RecordingSender()
        self.server.add_sender("udp", self.sender)
        self.peer = Peer("UDP", "192.0.2.7", 40000, "udp")

    def options(self, n: int, asks: bool = True) -> Response:
        """Send an OPTIONS (whose Via carries oc when C{asks}); return its answer."""
        branch = f"z9hG4bKoc{n}" + (";oc" if asks else "")
        data = request_bytes("OPTIONS", "sip:example.com", branch=branch, call_id=f"oc-{n}")
        self.server.datagram_received(data, self.peer)
        return self.sender.responses()[-1]

    def test_share_advertised(self) -> None:
        """With 40 % refused, a client that asks is told to drop 40 % for 500 ms."""
        self.server.queue.fraction = 0.4  # type: ignore[union-attr]
        [via] = self.options(1).vias
        self.assertEqual(via.otherParams["oc"], "40")
        self.assertEqual(via.otherParams["oc-algo"], "loss")
        self.assertEqual(via.otherParams["oc-validity"], "500")

    def test_lag_shedding_is_everything(self) -> None:
        """While the lag signal sheds every new request, the advice is 100 %."""
        self.server.overload.overloaded = True  # type: ignore[union-attr]
        [via] = self.options(2).vias
        self.assertEqual(via.otherParams["oc"], "100")

    def test_not_asked_not_told(self) -> None:
        """A client whose Via has no oc gets its Via back unchanged."""
        self.server.queue.fraction = 0.4  # type: ignore[union-attr]
        [via] = self.options(3, asks=False).vias
        self.assertNotIn("oc", via.otherParams)

    def test_not_asked_not_worked_out(self) -> None:
        """The advice is not even worked out for a response to a client that did not ask."""
        asked: List[float] = []
        feedback = self.server.feedback
        assert feedback is not None
        advice = feedback.advice

        def recording(share: float, now: float) -> Any:
            asked.append(share)
            return advice(share, now)

        self.patch(feedback, "advice", recording)
        self.server.queue.fraction = 0.4  # type: ignore[union-attr]
        data = request_bytes("OPTIONS", "sip:example.com", branch="z9hG4bKplain5", call_id="n-5")
        self.server.datagram_received(data, self.peer)
        self.assertEqual(self.sender.responses()[-1].code, 200)
        self.assertEqual(asked, [])
        self.options(6)
        self.assertEqual(asked, [0.4])

    def test_refused_unparsed(self) -> None:
        """A new request refused from its raw lines carries the advice too."""
        self.server.queue.fraction = 1.0  # type: ignore[union-attr]
        data = request_bytes(
            "INVITE", "sip:room@example.com", branch="z9hG4bKoc9;oc", via_host="192.0.2.7:5070"
        )
        self.server.datagram_received(data, self.peer, self.clock.seconds() - 0.5)
        response = self.sender.responses()[-1]
        self.assertEqual(response.code, 503)
        self.assertEqual(self.server.stats["received"], 0)  # never parsed
        [via] = response.vias
        self.assertEqual((via.branch, via.otherParams["oc"]), ("z9hG4bKoc9", "100"))

    def test_quiet_when_serving(self) -> None:
        """A server that is not shedding adds nothing, even for a client that asks."""
        [via] = self.options(4).vias
        self.assertEqual(via.otherParams, {"oc": None})


@implementer(IRequestHandler)
class NobodyHandler:
    """
    Answers INVITE 404 at once for C{nobody}, 200 for anyone else (a join),
    and records the ACKs it is given.
    """

    methods = ("INVITE", "ACK")
    accepts: dict[str, Any] = {"INVITE": ("application/sdp",)}

    def __init__(self) -> None:
        self.acked: List[Request] = []

    def handle_request(self, request: Request, context: RequestContext) -> Response:
        if getattr(request.uri, "username", None) == "nobody":
            raise SIPProtocolError("Not Found (no such conference or user)", 404)
        return make_response(request, 200, to_tag=new_tag(), headers=[("Contact", "<sip:c@h>")])

    def handle_ack(self, request: Request, context: RequestContext) -> None:
        self.acked.append(request)

    def handle_cancel(self, request: Request, context: RequestContext) -> None:
        pass

    def handle_timeout(self, request: Request) -> None:
        pass


def without_to_tag(data: bytes) -> bytes:
    """C{data} with its To line's tag value blanked (it differs by design)."""
    head, _, rest = data.partition(b"\r\nTo: ")
    line, _, tail = rest.partition(b"\r\n")
    return head + b"\r\nTo: " + line.rpartition(b";tag=")[0] + b";tag=*\r\n" + tail


class StatelessTests(SynchronousTestCase):
    """
    Answers that need no transaction (RFC 3261 section 8.2.7) go without
    one, and read exactly as the stateful answers.
    """

    def make(
        self, stateless: bool = True, tag_factory: Callable[[], str] = new_tag
    ) -> Tuple[SIPServer, RecordingSender]:
        router = CoreRouter(
            ["example.com"],
            tag_factory=tag_factory,
            accept_ip_literals=True,
            supported=["timer", "replaces"],
        )
        router.add_handler(self.handler)
        server = SIPServer(router, reactor=self.clock, answer_statelessly=stateless)
        sender = RecordingSender()
        server.add_sender("udp", sender)
        server.add_sender("conn", sender)
        return server, sender

    def setUp(self) -> None:
        self.clock = Clock()
        self.handler = NobodyHandler()
        self.server, self.sender = self.make()
        self.peer = Peer("UDP", "192.0.2.1", 5060, "udp")
        self.events: List[Any] = []
        observer = cast(ILogObserver, self.events.append)
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)

    def test_ack_handler_faults_logged(self) -> None:
        """An ACK handler that raises, or fails later, is logged once each; the server goes on."""
        later: Deferred[None] = Deferred()
        outcomes: List[Any] = [ZeroDivisionError(), later]

        def handle_ack(request: Request, context: RequestContext) -> Any:
            outcome = outcomes.pop(0)
            if isinstance(outcome, Exception):
                raise outcome
            return outcome

        self.handler.handle_ack = handle_ack  # type: ignore[method-assign]
        for n in range(2):
            data = request_bytes("ACK", "sip:room@example.com", to=f"<sip:r@x>;tag=d{n}")
            self.server.datagram_received(data, self.peer)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        later.errback(KeyError("gone"))
        self.assertEqual(len(self.flushLoggedErrors(KeyError)), 1)
        self.server.datagram_received(request_bytes("OPTIONS", "sip:example.com"), self.peer)
        self.assertEqual([r.code for r in self.sender.responses()], [200])

    def test_options_without_transaction(self) -> None:
        """OPTIONS is answered 200 with a stateless To tag and leaves nothing behind."""
        self.server.datagram_received(request_bytes("OPTIONS", "sip:example.com"), self.peer)
        [response] = self.sender.responses()
        self.assertEqual(response.code, 200)
        self.assertTrue(response.to.tag and response.to.tag.startswith("sl"))
        self.assertEqual(self.server.layer.sizes()["server"], 0)
        self.assertIsNone(self.server.layer.next_deadline())
        self.assertEqual((self.server.stats["stateless"], self.server.stats["sent"]), (1, 1))

    def test_options_tag_chosen_once(self) -> None:
        """The stateless OPTIONS tag is offered to the core, which draws no tag of its own."""
        drawn: List[str] = []

        def draw() -> str:
            drawn.append("drawn")
            return "drawn"

        self.server, self.sender = self.make(tag_factory=draw)
        data = request_bytes("OPTIONS", "sip:example.com")
        self.server.datagram_received(data, self.peer)
        [response] = self.sender.responses()
        request = parse_datagram(data)
        assert isinstance(request, Request)
        expected = self.server.uas.tags.tag_for(request)
        self.assertEqual((response.to.tag, drawn), (expected, []))

    def test_refusal_tag_offered(self) -> None:
        """A stateless 404 to an INVITE gets the stateless tag, none drawn; a 403 draws its own."""
        drawn: List[str] = []

        def draw() -> str:
            drawn.append(f"drawn{len(drawn)}")
            return drawn[-1]

        self.server, self.sender = self.make(tag_factory=draw)
        data = request_bytes("INVITE", "sip:nobody@example.com", call_id="r-1")
        self.server.datagram_received(data, self.peer)
        request = parse_datagram(data)
        assert isinstance(request, Request)
        [response] = self.sender.responses()
        self.assertEqual(response.code, 404)
        self.assertEqual((response.to.tag, drawn), (self.server.uas.tags.tag_for(request), []))

        def forbid(request: Request, context: RequestContext) -> Response:
            raise SIPProtocolError("Forbidden", 403)

        self.handler.handle_request = forbid  # type: ignore[method-assign]
        data = request_bytes("INVITE", "sip:room@example.com", call_id="r-2")
        self.server.datagram_received(data, self.peer)
        response = self.sender.responses()[-1]
        self.assertEqual((response.code, response.to.tag, drawn), (403, "drawn0", ["drawn0"]))
        self.assertEqual(self.server.layer.sizes()["server"], 1)

    def test_options_other_tag_replaced(self) -> None:
        """An OPTIONS answer tagged otherwise (a 404 here) still goes with the stateless tag."""
        data = request_bytes("OPTIONS", "sip:nobody@elsewhere.example")
        self.server.datagram_received(data, self.peer)
        [response] = self.sender.responses()
        self.assertEqual(response.code, 404)
        request = parse_datagram(data)
        assert isinstance(request, Request)
        self.assertEqual(response.to.tag, self.server.uas.tags.tag_for(request))
        self.assertEqual(self.server.layer.sizes()["server"], 0)

    def test_retransmission_identical(self) -> None:
        """A retransmitted OPTIONS or INVITE gets the very same bytes again."""
        for data in (
            request_bytes("OPTIONS", "sip:example.com", branch="z9hG4bKr1"),
            request_bytes("INVITE", "sip:nobody@example.com", branch="z9hG4bKr2"),
        ):
            self.server.datagram_received(data, self.peer)
            self.clock.advance(1.0)
            self.server.datagram_received(data, self.peer)
        first, again, invite, invite_again = (data for data, _, _ in self.sender.sent)
        self.assertEqual(first, again)
        self.assertEqual(invite, invite_again)
        self.assertEqual(parse_response(invite).code, 404)

    @settings(max_examples=60, deadline=None)
    @given(
        st.sampled_from(["OPTIONS", "INVITE", "MESSAGE", "FOO"]),
        st.sampled_from(["sip:example.com", "sip:nobody@example.com", "sip:x@elsewhere.org"]),
        st.text("abcdef0123456789-.", min_size=1, max_size=12),
        st.booleans(),
        st.sampled_from([(), (("Require", "foo"),), (("Supported", "timer"),)]),
    )
    def test_same_as_stateful(
        self, method: str, uri: str, ident: str, rport: bool, extra: Tuple[Tuple[str, str], ...]
    ) -> None:
        """Stateless answers are byte for byte the stateful ones but for the To tag's value."""
        data = request_bytes(
            method,
            uri,
            branch="z9hG4bK" + ident,
            call_id=ident + "@h",
            rport=rport,
            headers=extra,
        )
        answers = []
        for stateless in (True, False):
            server, sender = self.make(stateless)
            server.datagram_received(data, Peer("UDP", "198.51.100.9", 5080, "udp"))
            [sent] = sender.sent
            answers.append((without_to_tag(sent[0]), sent[1:], server.stats["stateless"]))
        (quick, where, counted), (full, full_where, _) = answers
        self.assertEqual((quick, where), (full, full_where))
        code = parse_response(quick).code
        self.assertEqual(counted, 0 if method == "INVITE" and code == 200 else 1)

    def test_ack_dropped_unparsed(self) -> None:
        """The ACK of a stateless 404 is dropped from its raw lines: no handler, no log line."""
        self.server.datagram_received(
            request_bytes("INVITE", "sip:nobody@example.com", branch="z9hG4bKa1"), self.peer
        )
        [response] = self.sender.responses()
        ack = request_bytes(
            "ACK",
            "sip:nobody@example.com",
            branch="z9hG4bKa1",
            to=response.header("to") or "",
            headers=[("Contact", "<")],  # would be refused 400 if it were parsed
        )
        before = len(self.events)
        self.server.datagram_received(ack, self.peer)
        self.assertEqual(len(self.sender.sent), 1)
        self.assertEqual(self.handler.acked, [])
        self.assertEqual(self.events[before:], [])
        self.assertEqual((self.server.stats["received"], self.server.stats["refused"]), (2, 0))

    def test_ack_over_stream_dropped(self) -> None:
        """Over TCP (parsed, as every stream message) the ACK of a stateless 404 is dropped too."""
        peer = Peer("TCP", "198.51.100.1", 40000, "conn")
        invite = request_bytes("INVITE", "sip:nobody@example.com", transport="TCP")
        self.server.datagram_received(invite, peer)
        [response] = self.sender.responses()
        ack = make_request(
            "ACK", "sip:nobody@example.com", transport="TCP", to=response.header("to") or ""
        )
        self.server.message_received(ack, peer)
        self.assertEqual(self.handler.acked, [])
        other = make_request("ACK", "sip:nobody@example.com", to="<sip:n@example.com>;tag=abc")
        self.server.message_received(other, peer)
        self.assertEqual(len(self.handler.acked), 1)

    def test_cancel_after_stateless_404(self) -> None:
        """A CANCEL for an INVITE answered 404 statelessly gets 200 with its tag, for T4."""
        invite = request_bytes("INVITE", "sip:nobody@example.com", branch="z9hG4bKc1")
        self.server.datagram_received(invite, self.peer)
        cancel = request_bytes("CANCEL", "sip:nobody@example.com", branch="z9hG4bKc1")
        self.server.datagram_received(cancel, self.peer)
        not_found, ok = self.sender.responses()
        self.assertEqual((not_found.code, ok.code, ok.cseq.method), (404, 200, "CANCEL"))
        self.assertEqual(ok.to.tag, not_found.to.tag)
        self.assertEqual(self.server.layer.pending(), 0)
        self.clock.advance(self.server.layer.t4)
        self.server.datagram_received(cancel, self.peer)
        self.assertEqual(self.sender.responses()[-1].code, 481)
        other = request_bytes("CANCEL", "sip:nobody@example.com", branch="z9hG4bKc2")
        self.server.datagram_received(other, self.peer)
        self.assertEqual(self.sender.responses()[-1].code, 481)

    def test_logged_like_a_transaction(self) -> None:
        """A stateless answer logs the transaction line, with its fields, as before."""
        self.server.datagram_received(
            request_bytes("INVITE", "sip:nobody@example.com", call_id="sl-1"), self.peer
        )
        [event] = [e for e in self.events if e.get("call_id") == "sl-1"]
        self.assertEqual(
            formatEvent(event),
            "INVITE sip:nobody@example.com from 192.0.2.1:5060/UDP -> 404 (0.0 ms) call-id=sl-1",
        )
        self.assertEqual(
            (event["method"], event["status"], event["outbound"]), ("INVITE", 404, False)
        )

    def test_answer_needing_transaction(self) -> None:
        """A 2xx to INVITE gets its transaction at once: resent until ACKed, copies absorbed."""
        data = request_bytes("INVITE", "sip:room@example.com", branch="z9hG4bKj1")
        self.server.datagram_received(data, self.peer)
        self.assertEqual(self.server.layer.sizes()["accepted"], 1)
        self.server.datagram_received(data, self.peer)  # a copy: the same 2xx again
        self.clock.advance(self.server.layer.t1)  # the 2xx timer
        first, copy, resent = (data for data, _, _ in self.sender.sent)
        self.assertEqual(first, copy)
        self.assertEqual(first, resent)
        self.assertFalse(parse_response(first).to.tag.startswith("sl"))  # type: ignore[union-attr]
        self.assertEqual(self.server.stats["stateless"], 0)

    def test_late_answer_adopted(self) -> None:
        """An answer still to come gets a transaction now; its retransmission is absorbed."""
        slow = SlowHandler()
        self.server.router.add_handler(slow)  # type: ignore[attr-defined]
        data = request_bytes("INVITE", "sip:room@example.com", branch="z9hG4bKl1")
        self.server.datagram_received(data, self.peer)
        self.server.datagram_received(data, self.peer)
        self.assertEqual(len(slow.pending), 1)
        self.clock.advance(0.2)  # 100 Trying from the transaction
        request, d = slow.pending[0]
        d.callback(make_response(request, 404, to_tag="late"))
        self.assertEqual([r.code for r in self.sender.responses()], [100, 404])
        self.assertEqual(self.server.layer.sizes()["server"], 1)
        self.clock.advance(self.server.layer.t1)  # Timer G: the 404 again
        self.assertEqual([r.code for r in self.sender.responses()], [100, 404, 404])

    def test_stream(self) -> None:
        """Over TCP the stateless answer goes back on the connection it came on."""
        peer = Peer("TCP", "198.51.100.1", 40000, "conn")
        self.server.datagram_received(
            request_bytes("OPTIONS", "sip:example.com", transport="TCP"), peer
        )
        [(data, host, port)] = self.sender.sent
        self.assertEqual((host, port, parse_response(data).code), ("198.51.100.1", 40000, 200))
        self.assertEqual(self.server.stats["stateless"], 1)

    def test_merged_copy_stateful(self) -> None:
        """A copy merged with a live transaction still gets the layer's 482."""
        slow = SlowHandler()
        self.server.router.add_handler(slow)  # type: ignore[attr-defined]
        self.server.datagram_received(
            request_bytes("INVITE", "sip:room@example.com", branch="z9hG4bKm1"), self.peer
        )
        self.server.datagram_received(
            request_bytes("INVITE", "sip:room@example.com", branch="z9hG4bKm2"), self.peer
        )
        self.assertEqual([r.code for r in self.sender.responses()], [482])

    def test_off_when_stopping(self) -> None:
        """A stopping server answers statefully (its 503 Shutting Down)."""
        self.server.stop()
        self.server.datagram_received(request_bytes("OPTIONS", "sip:example.com"), self.peer)
        [response] = self.sender.responses()
        self.assertEqual(response.code, 503)
        self.assertEqual(self.server.stats["stateless"], 0)
