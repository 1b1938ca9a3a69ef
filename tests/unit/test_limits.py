# -*- test-case-name: tests.unit.test_limits -*-
"""
Tests for L{conference.limits}: token buckets, the rate limiter, body caps,
and how the server applies them (a flood from one source).
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple, cast

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.logger import ILogObserver, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from conference.app.core import CoreRouter, RequestContext
from conference.auth import SIPIdentity
from conference.interfaces import IRequestHandler
from conference.limits import (
    BodyLimits,
    BodyTooLarge,
    BucketTable,
    LimitError,
    Rate,
    RateLimiter,
    parse_body_limit,
)
from conference.sip.message import Request, Response, make_response
from conference.sip.transaction import Peer
from conference.sip.transaction_model import new_tag
from conference.transport.server import SIPServer
from tests.builders import parse_response, request_bytes

FLOODER = Peer("UDP", "192.0.2.66", 5060)
OTHER = Peer("UDP", "192.0.2.7", 5060)


class RateTests(SynchronousTestCase):
    """
    Reading and shaping rates.
    """

    def test_parse(self) -> None:
        """N/S is N per S seconds; a bare N is per second; the bucket holds N."""
        rate = Rate.parse("200/10")
        self.assertEqual((rate.per_second, rate.capacity), (20.0, 200.0))
        self.assertEqual(Rate.parse("5").per_second, 5.0)

    def test_burst(self) -> None:
        """A burst replaces the bucket size but not the steady rate."""
        rate = Rate.parse("10/1").with_burst(50)
        self.assertEqual((rate.per_second, rate.capacity), (10.0, 50.0))
        self.assertIs(rate.with_burst(None), rate)

    def test_bad(self) -> None:
        """Malformed, zero, negative and infinite rates are refused with LimitError."""
        for text in ("x", "1/x", "1/0", "0/1", "-1/1", "inf/1", "nan/1", "", "/5"):
            with self.assertRaises(LimitError, msg=text):
                Rate.parse(text)
        with self.assertRaises(LimitError):
            Rate(1, 1, burst=0.5)

    @settings(max_examples=200)
    @given(st.integers(1, 10**6), st.integers(1, 10**5))
    def test_round_trip(self, count: int, period: int) -> None:
        """Any positive N/S parses back to the same rate."""
        rate = Rate.parse(str(Rate(count, period)))
        self.assertEqual((rate.count, rate.period), (count, period))


class BucketTableTests(SynchronousTestCase):
    """
    Token buckets by key.
    """

    def test_burst_then_refused(self) -> None:
        """A fresh bucket allows its size at once, then says how long to wait."""
        table = BucketTable(Rate(2, 1, burst=3))
        self.assertEqual([table.take("a", 0.0) for _ in range(3)], [0.0, 0.0, 0.0])
        self.assertAlmostEqual(table.take("a", 0.0), 0.5)

    def test_refill(self) -> None:
        """Tokens come back at the rate, up to the bucket size."""
        table = BucketTable(Rate(1, 1))
        self.assertEqual(table.take("a", 0.0), 0.0)
        self.assertGreater(table.take("a", 0.5), 0.0)
        self.assertEqual(table.take("a", 1.0), 0.0)
        self.assertEqual(table.take("a", 1000.0), 0.0)
        self.assertGreater(table.take("a", 1000.0), 0.0)

    def test_clock_backwards(self) -> None:
        """A clock that steps back adds no tokens."""
        table = BucketTable(Rate(1, 10))
        table.take("a", 100.0)
        self.assertGreater(table.take("a", 50.0), 0.0)

    def test_bounded(self) -> None:
        """However many keys come, the table holds at most max_entries buckets."""
        table = BucketTable(Rate(1, 60), max_entries=100)
        for i in range(10000):
            table.take(f"k{i}", 0.0)
        self.assertEqual(len(table), 100)

    def test_idle_dropped(self) -> None:
        """Buckets idle long enough to be full again are dropped as new keys come."""
        table = BucketTable(Rate(10, 1), max_entries=1000)
        for i in range(10):
            table.take(f"old{i}", 0.0)
        for i in range(10):
            table.take(f"new{i}", 5.0)
        self.assertEqual(len(table), 10)

    def test_lru(self) -> None:
        """When full, the least recently used bucket goes, not an active one."""
        table = BucketTable(Rate(1, 3600), max_entries=2)
        table.take("active", 0.0)
        table.take("idle", 1.0)
        self.assertGreater(table.take("active", 2.0), 0.0)
        table.take("new", 3.0)  # evicts "idle"
        self.assertGreater(table.take("active", 4.0), 0.0)
        self.assertEqual(table.take("idle", 5.0), 0.0)

    @settings(max_examples=200)
    @given(
        st.floats(0.5, 50),
        st.integers(1, 20),
        st.lists(st.floats(0, 5, allow_nan=False), min_size=1, max_size=200),
    )
    def test_never_over_rate(self, per_second: float, burst: int, gaps: List[float]) -> None:
        """Over any arrival pattern, allowed requests never exceed burst + rate * elapsed."""
        table = BucketTable(Rate(per_second, 1, burst=burst))
        now, allowed = 0.0, 0
        for gap in gaps:
            now += gap
            if table.take("k", now) == 0.0:
                allowed += 1
        self.assertLessEqual(allowed, max(1, burst) + per_second * now + 1e-6)

    def test_note_once_per_interval(self) -> None:
        """A refusal is logged at most once per interval per bucket."""
        table = BucketTable(Rate(1, 1))
        table.take("a", 0.0)
        self.assertEqual(
            [table.note("a", t, 60.0) for t in (0.0, 1.0, 59.0, 60.0)], [True, False, False, True]
        )
        self.assertFalse(table.note("unknown", 0.0, 60.0))


class RateLimiterTests(SynchronousTestCase):
    """
    Per-source and per-identity limits.
    """

    def test_source(self) -> None:
        """A source over its bucket gets a whole-second Retry-After; others are untouched."""
        limiter = RateLimiter(Rate(2, 10))
        self.assertIsNone(limiter.check_source("192.0.2.1", "INVITE", 0.0))
        self.assertIsNone(limiter.check_source("192.0.2.1", "INVITE", 0.0))
        self.assertEqual(limiter.check_source("192.0.2.1", "INVITE", 0.0), 5)
        self.assertIsNone(limiter.check_source("192.0.2.2", "INVITE", 0.0))

    def test_uncharged_methods(self) -> None:
        """ACK and CANCEL are never charged or refused."""
        limiter = RateLimiter(Rate(1, 10))
        limiter.check_source("192.0.2.1", "OPTIONS", 0.0)
        self.assertIsNone(limiter.check_source("192.0.2.1", "ACK", 0.0))
        self.assertIsNone(limiter.check_source("192.0.2.1", "CANCEL", 0.0))
        self.assertIsNotNone(limiter.check_source("192.0.2.1", "OPTIONS", 0.0))

    def test_exempt(self) -> None:
        """Loopback is exempt by default, IPv4-mapped forms too; exemptions are configurable."""
        limiter = RateLimiter(Rate(1, 10))
        for host in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
            self.assertEqual(
                [limiter.check_source(host, "OPTIONS", 0.0) for _ in range(3)], [None] * 3
            )
        strict = RateLimiter(Rate(1, 10), exempt=["198.51.100.0/24"])
        strict.check_source("127.0.0.1", "OPTIONS", 0.0)
        self.assertIsNotNone(strict.check_source("127.0.0.1", "OPTIONS", 0.0))
        self.assertIsNone(strict.check_source("198.51.100.9", "OPTIONS", 0.0))
        with self.assertRaises(LimitError):
            RateLimiter(Rate(1, 1), exempt=["not-a-network"])

    def test_ipv6_prefix(self) -> None:
        """IPv6 sources share a bucket per /64, so hopping addresses in a /64 does not help."""
        limiter = RateLimiter(Rate(1, 10))
        self.assertIsNone(limiter.check_source("2001:db8::1", "OPTIONS", 0.0))
        self.assertIsNotNone(limiter.check_source("2001:db8::2", "OPTIONS", 0.0))
        self.assertIsNone(limiter.check_source("2001:db8:0:1::1", "OPTIONS", 0.0))
        self.assertEqual(limiter.source_key("2001:db8::ff"), "2001:db8::/64")

    def test_identity(self) -> None:
        """check() charges the source, then the identity; identities are limited apart."""
        limiter = RateLimiter(Rate(100, 1), Rate(1, 60))
        alice = "sip:alice@example.com"
        self.assertIsNone(limiter.check("192.0.2.1", alice, "MESSAGE", 0.0))
        self.assertEqual(limiter.check("192.0.2.2", alice, "MESSAGE", 0.0), 60)
        self.assertIsNone(limiter.check("192.0.2.2", "sip:bob@example.com", "MESSAGE", 0.0))
        self.assertIsNone(limiter.check("192.0.2.2", None, "MESSAGE", 0.0))

    def test_off(self) -> None:
        """Without rates nothing is limited or logged."""
        limiter = RateLimiter()
        self.assertFalse(limiter.active)
        self.assertIsNone(limiter.check("192.0.2.1", "sip:a@b", "INVITE", 0.0))
        self.assertFalse(limiter.should_log_source("192.0.2.1", 0.0))
        self.assertFalse(limiter.should_log_identity("sip:a@b", 0.0))

    def test_key_cache_bounded(self) -> None:
        """The address-to-bucket cache stays within max_entries."""
        limiter = RateLimiter(Rate(1, 1), max_entries=50)
        for i in range(1000):
            limiter.check_source(f"10.0.{i // 256}.{i % 256}", "OPTIONS", 0.0)
        self.assertLessEqual(len(limiter._keys), 50)
        assert limiter.sources is not None
        self.assertLessEqual(len(limiter.sources), 50)


class BodyLimitTests(SynchronousTestCase):
    """
    Body caps per content type.
    """

    def test_lookup(self) -> None:
        """A type's cap is its own, else its major type's, else '*'."""
        limits = BodyLimits({"application/sdp": 10, "multipart/*": 20, "*": 30})
        self.assertEqual(limits.limit_for("application/sdp"), 10)
        self.assertEqual(limits.limit_for("multipart/mixed"), 20)
        self.assertEqual(limits.limit_for("text/calendar"), 30)
        self.assertIsNone(BodyLimits({"application/sdp": 10}).limit_for("text/calendar"))

    def test_refused(self) -> None:
        """A body over its cap is a 413 naming type, size and cap; at the cap it passes."""
        limits = BodyLimits({"application/sdp": 10})
        limits.check("application/sdp", 10)
        limits.check("text/calendar", 10**6)
        with self.assertRaises(BodyTooLarge) as caught:
            limits.check("Application/SDP", 11)
        self.assertEqual(caught.exception.status, 413)
        self.assertIn("application/sdp body of 11 bytes; at most 10", caught.exception.reason)

    def test_untyped(self) -> None:
        """A body without Content-Type is capped by '*'."""
        with self.assertRaises(BodyTooLarge):
            BodyLimits({"*": 5}).check(None, 6)

    def test_negative(self) -> None:
        """A negative cap is a configuration error."""
        with self.assertRaises(LimitError):
            BodyLimits({"text/plain": -1})

    def test_parse(self) -> None:
        """TYPE=BYTES options parse; malformed ones say what is wrong."""
        self.assertEqual(parse_body_limit("Text/Calendar=100"), ("text/calendar", 100))
        self.assertEqual(parse_body_limit("multipart/*=5"), ("multipart/*", 5))
        self.assertEqual(parse_body_limit("*=5"), ("*", 5))
        for text in ("text/calendar", "=5", "calendar=5", "text/calendar=x", "a/b=-1", "a b/c=1"):
            with self.assertRaises(LimitError, msg=text):
                parse_body_limit(text)


class RecordingSender:
    """
    A transport that keeps what it sends.
    """

    def __init__(self) -> None:
        self.sent: List[bytes] = []

    def send_bytes(self, data: bytes, host: str, port: int) -> None:
        self.sent.append(data)

    def local_address(self) -> Tuple[str, int]:
        return ("192.0.2.100", 5060)

    def responses(self) -> List[Response]:
        return [parse_response(data) for data in self.sent]


@implementer(IRequestHandler)
class CountingHandler:
    """
    Answers MESSAGE and INVITE 200 and counts what reached it.
    """

    methods = ("MESSAGE", "INVITE")
    accepts: Any = {"MESSAGE": ("text/plain",), "INVITE": ("application/sdp",)}

    def __init__(self) -> None:
        self.seen: List[Request] = []

    def handle_request(self, request: Request, context: RequestContext) -> Response:
        self.seen.append(request)
        return make_response(request, 200, to_tag=new_tag())

    def handle_ack(self, request: Request, context: RequestContext) -> None:
        """ACKs are not counted."""

    def handle_cancel(self, request: Request, context: RequestContext) -> None:
        """CANCELs are not counted."""

    def handle_timeout(self, request: Request) -> None:
        """Timeouts are not counted."""


class ServerLimitTests(SynchronousTestCase):
    """
    The server applies the limits before any transaction or handler.
    """

    def make(
        self,
        limiter: Optional[RateLimiter] = None,
        body_limits: Optional[BodyLimits] = None,
        identity: Optional[SIPIdentity] = None,
    ) -> Tuple[SIPServer, CountingHandler, RecordingSender, Clock]:
        clock = Clock()
        router = CoreRouter(["example.com"], tag_factory=new_tag, accept_ip_literals=True)
        handler = CountingHandler()
        router.add_handler(handler)

        def authenticate(request: Request, now: float, *tls: Any) -> Deferred[Any]:
            return succeed(identity)

        server = SIPServer(
            router,
            reactor=clock,
            authenticate=authenticate,
            limiter=limiter,
            body_limits=body_limits,
        )
        sender = RecordingSender()
        server.add_sender(None, sender)
        return server, handler, sender, clock

    def flood(self, server: SIPServer, count: int, peer: Peer = FLOODER, start: int = 0) -> None:
        for i in range(start, start + count):
            server.datagram_received(
                request_bytes(
                    "MESSAGE",
                    "sip:conf@example.com",
                    branch=f"z9hG4bKflood{i}",
                    call_id=f"flood-{i}",
                    via_host=f"{peer.host}:5060",
                ),
                peer,
            )

    def test_flood_from_one_source(self) -> None:
        """A flood beyond the burst gets 503 + Retry-After, costs no transaction, logs once."""
        events: List[Any] = []
        observer = cast(ILogObserver, events.append)
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        server, handler, sender, _ = self.make(RateLimiter(Rate(10, 10)))
        self.flood(server, 1000)
        self.assertEqual(len(handler.seen), 10)
        codes = [r.code for r in sender.responses()]
        self.assertEqual(codes.count(200), 10)
        self.assertEqual(codes.count(503), 990)
        refused = [r for r in sender.responses() if r.code == 503]
        self.assertEqual({r.header("retry-after") for r in refused}, {"1"})
        self.assertEqual(server.layer.pending(), 10)  # only the accepted ones
        self.assertEqual(server.stats["limited"], 990)
        limited = [e for e in events if "Rate limiting" in str(e.get("log_format", ""))]
        self.assertEqual(len(limited), 1)

    def test_other_source_served(self) -> None:
        """While one source is refused, another is served."""
        server, handler, sender, _ = self.make(RateLimiter(Rate(5, 10)))
        self.flood(server, 50)
        before = len(handler.seen)
        self.flood(server, 1, peer=OTHER, start=100)
        self.assertEqual(len(handler.seen), before + 1)
        self.assertEqual(sender.responses()[-1].code, 200)

    def test_recovers(self) -> None:
        """After Retry-After seconds the source is served again."""
        server, _, sender, clock = self.make(RateLimiter(Rate(1, 2)))
        self.flood(server, 2)
        self.assertEqual(sender.responses()[-1].header("retry-after"), "2")
        clock.advance(2)
        self.flood(server, 1, start=10)
        self.assertEqual(sender.responses()[-1].code, 200)

    def test_ack_not_answered(self) -> None:
        """A limited source's ACK is neither answered nor charged."""
        server, _, sender, _ = self.make(RateLimiter(Rate(1, 10)))
        self.flood(server, 2)
        count = len(sender.sent)
        server.datagram_received(
            request_bytes("ACK", "sip:conf@example.com", via_host="192.0.2.66:5060"), FLOODER
        )
        self.assertEqual(len(sender.sent), count)

    def test_identity_limited(self) -> None:
        """An authenticated identity over its limit gets 503 from any source."""
        alice = SIPIdentity("alice", "example.com")
        server, handler, sender, _ = self.make(RateLimiter(None, Rate(2, 60)), identity=alice)
        self.flood(server, 2)
        self.flood(server, 1, peer=OTHER, start=10)
        self.assertEqual([r.code for r in sender.responses()], [200, 200, 503])
        self.assertEqual(sender.responses()[-1].header("retry-after"), "30")
        self.assertEqual(len(handler.seen), 2)

    def test_body_too_large(self) -> None:
        """An SDP body over its cap is answered 413 with the reason, before any handler."""
        server, handler, sender, _ = self.make(body_limits=BodyLimits({"application/sdp": 100}))
        server.datagram_received(
            request_bytes(
                "INVITE",
                "sip:conf@example.com",
                headers=[("Content-Type", "application/sdp"), ("Contact", "<sip:a@192.0.2.66>")],
                body=b"v=0\r\n" + b"a=x\r\n" * 40,
            ),
            FLOODER,
        )
        response = sender.responses()[-1]
        self.assertEqual(response.code, 413)
        self.assertIn("application/sdp body of 205 bytes; at most 100", response.phrase)
        self.assertEqual(handler.seen, [])
        self.assertEqual(server.layer.pending(), 0)


class OptionTests(SynchronousTestCase):
    """
    The command line options of the limits (conference/tap.py).
    """

    def parse(self, *args: str) -> Any:
        from conference.tap import Options, config_from_options

        options = Options()
        options.parseOptions(list(args))
        return config_from_options(options)

    def test_defaults(self) -> None:
        """By default sources get 200/10, identities 120/60, loopback is exempt, SDP is capped."""
        config = self.parse()
        self.assertEqual(
            (config.rate_limit, config.identity_rate_limit), (Rate(200, 10), Rate(120, 60))
        )
        self.assertEqual(config.rate_limit_exempt, ["127.0.0.0/8", "::1/128"])
        self.assertEqual(config.body_limits, {"application/sdp": 16384})
        self.assertEqual((config.tls_ca, config.tls_client_cert), (None, "optional"))

    def test_given(self) -> None:
        """Each option reaches the configuration."""
        config = self.parse(
            "--rate-limit",
            "50/5",
            "--identity-rate-limit",
            "off",
            "--burst",
            "80",
            "--rate-limit-exempt",
            "none",
            "--max-body-size",
            "text/calendar=1000",
            "--max-body-size",
            "multipart/*=2000",
        )
        self.assertEqual(config.rate_limit, Rate(50, 5))
        self.assertIsNone(config.identity_rate_limit)
        self.assertEqual(config.burst, 80)
        self.assertEqual(config.rate_limit_exempt, [])
        self.assertEqual(config.body_limits["multipart/*"], 2000)
        self.assertEqual(config.body_limits["text/calendar"], 1000)

    def test_bad(self) -> None:
        """Malformed limit and TLS options are usage errors."""
        from twisted.python.usage import UsageError

        for args in (
            ["--rate-limit", "fast"],
            ["--burst", "0.5"],
            ["--rate-limit-exempt", "nowhere"],
            ["--max-body-size", "sdp"],
            ["--tls-client-cert", "maybe"],
            ["--tls-client-cert", "required"],
            ["--tls-ca", "/nonexistent/ca.pem"],
            ["--listen", "tls:5061"],
        ):
            with self.assertRaises(UsageError, msg=args):
                self.parse(*args)

    def test_service_wiring(self) -> None:
        """The service hands the configured limiter and caps to its SIP server."""
        from twisted.internet.testing import MemoryReactorClock

        from conference.service import ConferenceService, ServerConfig

        config = ServerConfig(
            listen=[], store="memory", rate_limit=Rate(5, 1), burst=7, identity_rate_limit=None
        )
        service = ConferenceService(config, reactor=MemoryReactorClock())
        limiter = service.sip.limiter
        assert limiter is not None and limiter.sources is not None
        self.assertEqual(limiter.sources.rate, Rate(5, 1, burst=7))
        self.assertIsNone(limiter.identities)
        self.assertIsNotNone(service.sip.body_limits)
        off = ConferenceService(
            ServerConfig(listen=[], rate_limit=None, identity_rate_limit=None, body_limits={}),
            reactor=MemoryReactorClock(),
        )
        self.assertIsNone(off.sip.limiter)
        self.assertIsNone(off.sip.body_limits)
