# -*- test-case-name: tests.unit.app.test_outbound -*-
"""
Tests for L{conference.app.outbound}: where server-originated iTIP
MESSAGEs go, what they look like on the wire, and what happens when a
recipient cannot be reached or does not answer.
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from conference.app.core import CoreRouter
from conference.app.outbound import Delivery, Messenger, by_recipient, udp_endpoint_of
from conference.calendar import Outgoing, parse_ical_calendar
from conference.records import RegistrationBinding
from conference.sip.message import Request, Response, make_response
from conference.sip.parser import parse_datagram
from conference.sip.transaction import Peer
from conference.testing import memory_stores
from tests.unit.app.calendars import conference_ical


class Sender:
    """
    Records requests; answers them with C{code}, or fails when it is None.
    """

    def __init__(self, code: Optional[int] = 200) -> None:
        self.code = code
        self.sent: List[Tuple[Request, Peer]] = []

    def send_request(self, request: Request, peer: Peer) -> Deferred[Response]:
        self.sent.append((request, peer))
        if self.code is None:
            return fail(TimeoutError("no answer to MESSAGE"))
        d: Deferred[Response] = Deferred()
        d.callback(make_response(request, self.code))
        return d


def outgoing(*recipients: str) -> Outgoing:
    """
    A REQUEST to C{recipients}.
    """
    return Outgoing("REQUEST", tuple(recipients), parse_ical_calendar(conference_ical()))


class MessengerFixture(SynchronousTestCase):
    """
    A L{Messenger} over memory stores with a recording sender.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1000)
        self.stores = memory_stores()
        self.router = CoreRouter(["example.com"], tag_factory=lambda: "t", accept_ip_literals=True)
        self.sender = Sender()
        self.messenger = Messenger(
            self.sender,
            self.stores.registrations,
            domain_of=self.router.domain_of,
            endpoint=lambda: ("key", "192.0.2.100", 5070),
            reactor=self.clock,
            default_domain="example.com",
            tag_factory=lambda: "tag1",
            branch_factory=lambda: "z9hG4bKb1",
        )

    def register(self, aor: str, *contacts: str) -> None:
        bindings = [RegistrationBinding(c, 5000, None, "c", 1) for c in contacts]
        self.stores.registrations.set_bindings(aor, bindings, [], 1000)

    def send(self, message: Outgoing, **kwargs: Any) -> List[Delivery]:
        return self.successResultOf(self.messenger.send(message, **kwargs))


class MessengerTests(MessengerFixture):
    """
    L{Messenger.send} and L{Messenger.send_later}.
    """

    def test_to_each_contact(self) -> None:
        """A registered user gets the MESSAGE at each of their contacts."""
        self.register("sip:bob@example.com", "sip:bob@192.0.2.5:5062", "sip:bob@192.0.2.6")
        deliveries = self.send(outgoing("sip:bob@example.com"), originator="sip:conf@example.com")
        self.assertEqual([d.status for d in deliveries], [200, 200])
        peers = [(p.transport, p.host, p.port, p.connection) for _, p in self.sender.sent]
        self.assertEqual(
            sorted(peers), [("UDP", "192.0.2.5", 5062, "key"), ("UDP", "192.0.2.6", 5060, "key")]
        )

    def test_wire_form(self) -> None:
        """The MESSAGE has the headers RFC 3261/3428 require and parses back."""
        self.register("sip:bob@example.com", "sip:bob@192.0.2.5:5062")
        self.send(outgoing("sip:bob@Example.COM"), originator="sip:conf@example.com")
        ((request, _),) = self.sender.sent
        parsed = parse_datagram(request.to_bytes())
        assert isinstance(parsed, Request)
        self.assertEqual(parsed.method, "MESSAGE")
        self.assertEqual(str(parsed.uri), "sip:bob@192.0.2.5:5062")
        self.assertEqual(
            parsed.header("via"), "SIP/2.0/UDP 192.0.2.100:5070;branch=z9hG4bKb1;rport"
        )
        self.assertEqual(parsed.header("from"), "<sip:conf@example.com>;tag=tag1")
        self.assertEqual(parsed.header("to"), "<sip:bob@example.com>")
        self.assertEqual(parsed.header("cseq"), "1 MESSAGE")
        self.assertEqual(parsed.header("max-forwards"), "70")
        self.assertTrue(parsed.call_id.endswith("@example.com"))
        self.assertEqual(
            parsed.header("content-type"),
            "application/calendar+xml;method=REQUEST;component=VEVENT",
        )

    def test_default_originator(self) -> None:
        """Without a conference the MESSAGE comes from sip:conference@domain."""
        self.register("sip:bob@example.com", "sip:bob@192.0.2.5")
        self.send(outgoing("sip:bob@example.com"))
        ((request, _),) = self.sender.sent
        self.assertEqual(request.from_.uri.toString(), "sip:conference@example.com")

    def test_text_calendar(self) -> None:
        """as_xcal=False sends text/calendar."""
        self.register("sip:bob@example.com", "sip:bob@192.0.2.5")
        self.send(outgoing("sip:bob@example.com"), as_xcal=False)
        ((request, _),) = self.sender.sent
        self.assertTrue(str(request.header("content-type")).startswith("text/calendar;"))
        self.assertTrue(request.body.startswith(b"BEGIN:VCALENDAR"))

    def test_undeliverable(self) -> None:
        """Other domains, unregistered users and non-UDP contacts get nothing."""
        self.register("sip:tcp@example.com", "sip:tcp@192.0.2.7;transport=tcp")
        self.register("sip:named@example.com", "sip:named@host.example.net")
        deliveries = self.send(
            outgoing(
                "sip:x@elsewhere.org",
                "sip:nobody@example.com",
                "sip:tcp@example.com",
                "sip:named@example.com",
                "mailto:a@b.c",
            )
        )
        self.assertEqual(self.sender.sent, [])
        notes = {d.recipient: d.note for d in deliveries}
        self.assertEqual(notes["sip:x@elsewhere.org"], "not in a served domain")
        self.assertEqual(notes["sip:nobody@example.com"], "not registered")
        self.assertIn("transport tcp", notes["sip:tcp@example.com"])
        self.assertIn("not an IP address", notes["sip:named@example.com"])
        self.assertEqual(notes["mailto:a@b.c"], "not in a served domain")

    def test_each_recipient_once(self) -> None:
        """A recipient listed twice (in any spelling) gets one MESSAGE."""
        self.register("sip:bob@example.com", "sip:bob@192.0.2.5")
        deliveries = self.send(outgoing("sip:bob@example.com", "sips:bob@EXAMPLE.com"))
        self.assertEqual(len(deliveries), 1)
        self.assertEqual(list(by_recipient(deliveries)), ["sip:bob@example.com"])

    def test_no_answer(self) -> None:
        """A transaction that times out is reported, not raised."""
        self.sender.code = None
        self.register("sip:bob@example.com", "sip:bob@192.0.2.5")
        (delivery,) = self.send(outgoing("sip:bob@example.com"))
        self.assertIsNone(delivery.status)
        self.assertIn("no answer", delivery.note)

    def test_refused(self) -> None:
        """A non-2xx answer is reported with its status."""
        self.sender.code = 404
        self.register("sip:bob@example.com", "sip:bob@192.0.2.5")
        (delivery,) = self.send(outgoing("sip:bob@example.com"))
        self.assertEqual(delivery.status, 404)

    def test_no_udp_port(self) -> None:
        """With no UDP port listening nothing is sent."""
        self.messenger.endpoint = lambda: None
        self.register("sip:bob@example.com", "sip:bob@192.0.2.5")
        (delivery,) = self.send(outgoing("sip:bob@example.com"))
        self.assertEqual((delivery.status, delivery.note), (None, "no UDP port listening"))
        self.assertEqual(self.sender.sent, [])

    def test_send_later(self) -> None:
        """send_later waits for the next reactor turn."""
        self.register("sip:bob@example.com", "sip:bob@192.0.2.5")
        d = self.messenger.send_later([outgoing("sip:bob@example.com")])
        self.assertNoResult(d)
        self.assertEqual(self.sender.sent, [])
        self.clock.advance(0)
        self.assertEqual([x.status for x in self.successResultOf(d)], [200])


class Route:
    """
    An L{URISender} that records what it is given and answers C{code}, or
    fails when that is None.
    """

    def __init__(self, code: Optional[int] = 200) -> None:
        self.code = code
        self.sent: List[Tuple[Request, str]] = []

    def send_to(self, request: Request, uri: str) -> Deferred[Response]:
        self.sent.append((request, uri))
        if self.code is None:
            return fail(RuntimeError("MESSAGE to x not delivered: no address found"))
        d: Deferred[Response] = Deferred()
        d.callback(make_response(request, self.code))
        return d


class RoutedTests(MessengerFixture):
    """
    With a route (RFC 3263, docs/federation.rst), other domains and any
    contact are reached through it; the UDP-only path is not used.
    """

    def setUp(self) -> None:
        super().setUp()
        self.route = Route()
        self.messenger.route = self.route

    def test_other_domain(self) -> None:
        """A recipient in another domain gets the MESSAGE at its address, without a Via."""
        deliveries = self.send(outgoing("sip:x@elsewhere.org"), originator="sip:c@example.com")
        self.assertEqual(
            [(d.recipient, d.status) for d in deliveries], [("sip:x@elsewhere.org", 200)]
        )
        ((request, uri),) = self.route.sent
        self.assertEqual((uri, str(request.uri)), ("sip:x@elsewhere.org", "sip:x@elsewhere.org"))
        self.assertFalse(request.has_header("via"))
        self.assertEqual(request.header("to"), "<sip:x@elsewhere.org>")

    def test_stream_and_named_contacts(self) -> None:
        """TCP contacts and contacts with host names go through the route."""
        self.register(
            "sip:bob@example.com", "sip:bob@192.0.2.7;transport=tcp", "sip:bob@pc.example.net"
        )
        deliveries = self.send(outgoing("sip:bob@example.com"))
        self.assertEqual(sorted(d.status or 0 for d in deliveries), [200, 200])
        self.assertEqual(
            sorted(uri for _, uri in self.route.sent),
            ["sip:bob@192.0.2.7;transport=tcp", "sip:bob@pc.example.net"],
        )
        self.assertEqual(self.sender.sent, [])

    def test_route_fails(self) -> None:
        """A route that cannot deliver is reported, not raised."""
        self.route.code = None
        (delivery,) = self.send(outgoing("sip:x@elsewhere.org"))
        self.assertIsNone(delivery.status)
        self.assertIn("no address found", delivery.note)

    def test_sips_kept(self) -> None:
        """A sips: recipient in another domain is sent to as sips: (TLS only), never sip:."""
        self.send(outgoing("sips:x@Elsewhere.ORG"))
        ((request, uri),) = self.route.sent
        self.assertEqual((uri, str(request.uri)), ("sips:x@elsewhere.org", "sips:x@elsewhere.org"))

    def test_uri_parameters_kept(self) -> None:
        """A recipient's transport parameter reaches RFC 3263 resolution; one recipient once."""
        self.send(outgoing("sip:x@elsewhere.org;transport=tcp", "sip:x@elsewhere.org"))
        self.assertEqual([uri for _, uri in self.route.sent], ["sip:x@elsewhere.org;transport=tcp"])

    def test_local_sips_needs_tls_contact(self) -> None:
        """A served sips: user is reached only at TLS contacts; with none, undeliverable."""
        self.register("sip:bob@example.com", "sip:bob@192.0.2.5:5062")
        (delivery,) = self.send(outgoing("sips:bob@example.com"))
        self.assertIsNone(delivery.status)
        self.assertIn("TLS", delivery.note)
        self.assertEqual((self.route.sent, self.sender.sent), ([], []))
        self.register(
            "sip:bob@example.com", "sip:bob@192.0.2.5:5062", "sip:bob@192.0.2.5:5061;transport=tls"
        )
        deliveries = self.send(outgoing("sips:bob@example.com"))
        self.assertEqual([d.status for d in deliveries], [200])
        self.assertEqual(
            [uri for _, uri in self.route.sent], ["sip:bob@192.0.2.5:5061;transport=tls"]
        )

    def test_mailto(self) -> None:
        """mailto: recipients stay undeliverable."""
        (delivery,) = self.send(outgoing("mailto:a@b.c"))
        self.assertEqual(delivery.note, "not in a served domain")
        self.assertEqual(self.route.sent, [])


class EndpointTests(SynchronousTestCase):
    """
    L{udp_endpoint_of}.
    """

    def test_wildcard_host(self) -> None:
        """A port on the wildcard address shows the default domain in Via."""

        class Address:
            host = "0.0.0.0"
            port = 5099

        class Port:
            protocol = "proto"

            def getHost(self) -> Address:
                return Address()

        class Service:
            udp_ports = [Port()]
            router = CoreRouter(["example.com"], tag_factory=lambda: "t")

        self.assertEqual(udp_endpoint_of(Service())(), ("proto", "example.com", 5099))

    def test_family(self) -> None:
        """Given where a datagram goes, the first port of that address family sends it."""

        class Address:
            def __init__(self, host: str) -> None:
                self.host, self.port = host, 5060

        class Port:
            def __init__(self, host: str) -> None:
                self.protocol, self.address = host, Address(host)

            def getHost(self) -> Address:
                return self.address

        class Service:
            udp_ports = [Port("192.0.2.1"), Port("2001:db8::1")]

        lookup = udp_endpoint_of(Service())
        self.assertEqual(lookup("2001:db8::9"), ("2001:db8::1", "2001:db8::1", 5060))
        self.assertEqual(lookup("198.51.100.7"), ("192.0.2.1", "192.0.2.1", 5060))
        self.assertEqual(lookup(), ("192.0.2.1", "192.0.2.1", 5060))

    def test_no_port(self) -> None:
        """No UDP port gives no endpoint."""

        class Service:
            udp_ports: List[Any] = []

        self.assertIsNone(udp_endpoint_of(Service())())
