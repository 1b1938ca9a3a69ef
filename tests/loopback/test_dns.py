# -*- test-case-name: tests.loopback.test_dns -*-
"""
Tests for L{conference.transport.dns}: the C{--resolver} value, the
conversion of C{twisted.names} records, failed lookups, and a quiet log.
"""

from __future__ import annotations

from typing import Any, Dict, Generator, List

from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred, ensureDeferred, fail, inlineCallbacks, succeed
from twisted.internet.task import deferLater
from twisted.logger import ILogObserver, formatEvent, globalLogPublisher
from twisted.names import dns, error, server
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer

from conference.sip.locate import NAPTR, SRV, Address, Alias, Query
from conference.transport.dns import DNSLookup, convert, make_resolver, parse_resolver
from tests.dnszone import LiveZone
from tests.loopback.sameport import listen_same_port

reactor: Any = _reactor


def header(name: str, payload: Any) -> dns.RRHeader:
    """
    An answer record for C{name}.
    """
    return dns.RRHeader(name.encode(), payload.TYPE, payload=payload)


class ParseResolverTests(SynchronousTestCase):
    """
    L{parse_resolver}, the C{--resolver} value.
    """

    def test_forms(self) -> None:
        """HOST, HOST:PORT and [IPv6]:PORT are understood; the port defaults to 53."""
        self.assertEqual(parse_resolver("127.0.0.1"), ("127.0.0.1", 53))
        self.assertEqual(parse_resolver("127.0.0.1:5353"), ("127.0.0.1", 5353))
        self.assertEqual(parse_resolver("[::1]:5353"), ("::1", 5353))
        self.assertEqual(parse_resolver("::1"), ("::1", 53))

    def test_bad(self) -> None:
        """Bad ports and empty hosts are refused with a reason."""
        for text in ("", "host:x", "host:0", "[::1]x", "h:70000"):
            self.assertRaises(ValueError, parse_resolver, text)


class ConvertTests(SynchronousTestCase):
    """
    L{convert}: C{twisted.names} answers to planner records.
    """

    def test_each_type(self) -> None:
        """NAPTR, SRV, A, AAAA and CNAME are converted; others left out."""
        answers = [
            header("e.net", dns.Record_NAPTR(1, 2, b"S", b"SIP+D2U", b"", b"_sip._udp.e.net")),
            header("_sip._udp.e.net", dns.Record_SRV(3, 4, 5060, b"h.e.net")),
            header("h.e.net", dns.Record_A("192.0.2.1")),
            header("h.e.net", dns.Record_AAAA("2001:db8::1")),
            header("x.e.net", dns.Record_CNAME(b"h.e.net")),
            header("e.net", dns.Record_TXT(b"ignored")),
        ]
        self.assertEqual(
            convert(answers),
            [
                NAPTR(1, 2, "S", "SIP+D2U", "_sip._udp.e.net"),
                SRV(3, 4, 5060, "h.e.net"),
                Address("192.0.2.1"),
                Address("2001:db8::1"),
                Alias("h.e.net"),
            ],
        )


class Resolver:
    """
    An L{IResolver} answering every service lookup with C{answer}, or
    failing with it when it is an exception.
    """

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.asked: List[bytes] = []

    def itself(self) -> Any:
        """
        This resolver (as a resolver factory).
        """
        return self

    def lookupService(self, name: bytes, timeout: Any) -> Deferred[Any]:
        self.asked.append(name)
        if isinstance(self.answer, Exception):
            return fail(self.answer)
        return succeed(self.answer)


class LookupTests(SynchronousTestCase):
    """
    L{DNSLookup.query}.
    """

    def test_answers(self) -> None:
        """Answers become records; the resolver is made on first use only."""
        made: List[Resolver] = []
        answer: Any = ([header("_sip._udp.e.net", dns.Record_SRV(0, 0, 5060, b"h"))], [], [])

        def make() -> Any:
            made.append(Resolver(answer))
            return made[-1]

        lookup = DNSLookup(make)
        self.assertEqual(made, [])
        for _ in range(2):
            records = self.successResultOf(
                Deferred.fromCoroutine(lookup.query(Query("_sip._udp.e.net", "SRV")))
            )
            self.assertEqual(records, [SRV(0, 0, 5060, "h")])
        self.assertEqual(len(made), 1)

    def test_failures_are_empty(self) -> None:
        """NXDOMAIN and timeouts answer as no records."""
        for failure in (error.DNSNameError(), error.DNSQueryTimeoutError(None)):
            lookup = DNSLookup(Resolver(failure).itself)
            records = self.successResultOf(
                Deferred.fromCoroutine(lookup.query(Query("_sip._udp.e.net", "SRV")))
            )
            self.assertEqual(records, [])


class Truncating(dns.DNSDatagramProtocol):
    """
    A DNS server's UDP side that answers every query truncated and empty,
    so the client asks again over TCP.
    """

    def writeMessage(self, message: Any, address: Any) -> None:
        message.trunc = 1
        message.answers = []
        super().writeMessage(message, address)


class QuietResolverTests(TestCase):
    """
    A lookup through a real C{twisted.names} server on loopback logs
    nothing about the UDP port each query opens and closes, nor about the
    TCP connection of a truncated answer.
    """

    def serve(self, udp: Any) -> int:
        """
        Serve a zone with a big answer on a loopback UDP port (through
        C{udp}) and TCP on the same port number; returns the port.
        """
        many = [dns.Record_A(f"192.0.2.{i}") for i in range(1, 41)]
        zone = {"sip.example.net": [dns.Record_A("192.0.2.5")], "big.example.net": many}
        factory = server.DNSServerFactory(authorities=[LiveZone("example.net", lambda: zone)])
        listening, stream = listen_same_port(
            lambda n: reactor.listenUDP(n, udp(factory), interface="127.0.0.1"),
            lambda n: reactor.listenTCP(n, factory, interface="127.0.0.1"),
        )
        self.addCleanup(listening.stopListening)
        self.addCleanup(stream.stopListening)
        return int(listening.getHost().port)

    def settled(self) -> Deferred[None]:
        """
        One turn of the reactor, in which a UDP port that L{serve} tried
        and gave up (its TCP number was taken) finishes closing: Twisted
        logs its "Closed" and "Stopping protocol" lines then, not at
        C{stopListening}, and they are not the resolver's.
        """
        return deferLater(reactor, 0, lambda: None)

    def capture(self) -> List[str]:
        """
        The log lines about ports, protocols and factories from now on.
        """
        seen: List[str] = []

        @implementer(ILogObserver)
        def observe(event: Dict[str, Any]) -> None:
            text = formatEvent(event) or ""
            if any(word in text for word in ("DNSDatagramProtocol", "Port", "factory", "protocol")):
                seen.append(text)

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        return seen

    @inlineCallbacks
    def test_no_port_noise(self) -> Generator[Deferred[Any], Any, None]:
        """The answer comes back and no 'starting on', 'Closed' or protocol line is logged."""
        port = self.serve(dns.DNSDatagramProtocol)
        yield self.settled()
        seen = self.capture()
        resolver = make_resolver(("127.0.0.1", port), reactor)
        lookup = DNSLookup(lambda: resolver)
        for _ in range(3):
            records = yield ensureDeferred(lookup.query(Query("sip.example.net", "A")))
            self.assertEqual(records, [Address("192.0.2.5")])
        yield deferLater(reactor, 0.05, lambda: None)
        self.assertEqual(seen, [])

    @inlineCallbacks
    def test_tcp_fallback_quiet(self) -> Generator[Deferred[Any], Any, None]:
        """A truncated answer is asked again over TCP, and no factory line is logged either."""
        port = self.serve(Truncating)
        yield self.settled()
        seen = self.capture()
        resolver: Any = make_resolver(("127.0.0.1", port), reactor)
        lookup = DNSLookup(lambda: resolver)
        for _ in range(2):
            records = yield ensureDeferred(lookup.query(Query("big.example.net", "A")))
            self.assertEqual(len(records), 40)
        self.assertEqual(len(resolver.connections), 1)  # it went over TCP
        for connection in resolver.connections:
            connection.transport.loseConnection()
        yield deferLater(reactor, 0.05, lambda: None)
        self.assertEqual(seen, [])
