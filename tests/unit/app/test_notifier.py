# -*- test-case-name: tests.unit.app.test_notifier -*-
"""
Tests for L{conference.app.notifier}: SUBSCRIBE routed by its Event
header to the package's handler, and NOTIFYs sent through the outbound
route to the dialog's next hop.
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from conference.app.core import RequestContext
from conference.app.notifier import EventRouter, Notifier, Watch
from conference.interfaces import IRequestHandler
from conference.sip.errors import SIPProtocolError
from conference.sip.message import Request, Response, make_response
from conference.sip.transaction import Peer
from conference.sip.uri import SIPURI
from tests.builders import make_request

PEER = Peer("UDP", "192.0.2.1", 5070, "udp")


@implementer(IRequestHandler)
class Package:
    """
    Answers every SUBSCRIBE it gets 200 and remembers it.
    """

    methods = ("SUBSCRIBE",)
    accepts: dict[str, tuple[str, ...]] = {}

    def __init__(self) -> None:
        self.seen: List[Request] = []

    def handle_request(self, request: Request, context: RequestContext) -> Deferred[Response]:
        self.seen.append(request)
        return succeed(make_response(request, 200))

    def handle_ack(self, request: Request, context: RequestContext) -> None:
        """Nothing."""

    def handle_cancel(self, request: Request, context: RequestContext) -> None:
        """Nothing."""

    def handle_timeout(self, request: Request) -> None:
        """Nothing."""


class EventRouterTests(SynchronousTestCase):
    """
    EventRouter.
    """

    def setUp(self) -> None:
        self.router = EventRouter()
        self.binding, self.conference = Package(), Package()
        self.router.add("binding", self.binding)
        self.router.add("conference", self.conference)

    def route(self, event: Any) -> Any:
        headers = [] if event is None else [("Event", event)]
        request = make_request("SUBSCRIBE", "sip:conf@example.com", headers=headers)
        outcome: List[Any] = []
        answer = self.router.handle_request(request, RequestContext(PEER, 0.0))
        assert isinstance(answer, Deferred)
        answer.addBoth(outcome.append)
        return outcome[0]

    def test_interface(self) -> None:
        """The router is a request handler for SUBSCRIBE."""
        self.assertTrue(verifyObject(IRequestHandler, self.router))

    def test_by_event(self) -> None:
        """Each package gets the SUBSCRIBEs naming it, with parameters."""
        self.assertEqual(self.route("conference;id=1").code, 200)
        self.assertEqual(self.route("binding").code, 200)
        self.assertEqual((len(self.conference.seen), len(self.binding.seen)), (1, 1))

    def test_unknown(self) -> None:
        """Another package, or none, is 489 listing every package served."""
        for event in ("presence", None):
            failure = self.route(event)
            error = failure.value
            assert isinstance(error, SIPProtocolError)
            self.assertEqual(error.status, 489)
            self.assertEqual(error.headers, [("Allow-Events", "binding, conference")])
        self.assertEqual((self.conference.seen, self.binding.seen), ([], []))


class Counter(Notifier):
    """
    A package that accepts every SUBSCRIBE and notifies an empty body.
    """

    package = "counter"

    def handle_request(self, request: Request, context: RequestContext) -> Response:
        return self.accept(
            request,
            context,
            resource="r",
            target=None,
            subscriber="sip:bob@example.net",
            terms=None,
            expires=600,
        )

    def notification(self, watch: Watch, now: float, final: Optional[str]) -> Deferred[Any]:
        return succeed(([("Event", "counter"), ("Subscription-State", "active")], b""))


class Route:
    """
    An outbound route that keeps each in-dialog request and its peers.
    """

    def __init__(self) -> None:
        self.sent: List[Tuple[Request, SIPURI, Optional[Peer], Optional[Peer]]] = []
        self.waiting: List[Deferred[Tuple[Response, Peer]]] = []

    def send_in_dialog(
        self,
        request: Request,
        hop: SIPURI,
        *,
        first: Optional[Peer] = None,
        last: Optional[Peer] = None,
    ) -> Deferred[Tuple[Response, Peer]]:
        self.sent.append((request, hop, first, last))
        d: Deferred[Tuple[Response, Peer]] = Deferred()
        self.waiting.append(d)
        return d


class RoutedNotifyTests(SynchronousTestCase):
    """
    With an outbound route, NOTIFYs go to the dialog's next hop (RFC 3263
    resolves it), preferring the peer that answered and open streams.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.notifier = Counter(None, self.clock)  # type: ignore[arg-type]
        self.route = Route()
        self.notifier.route = self.route

    def subscribe(
        self,
        peer: Peer = PEER,
        uri: str = "sip:conf@example.com",
        headers: Sequence[Tuple[str, str]] = (),
    ) -> Tuple[Request, SIPURI, Optional[Peer], Optional[Peer]]:
        request = make_request(
            "SUBSCRIBE",
            uri,
            transport=peer.transport,
            headers=[("Contact", "<sip:bob@pc.example.net>"), ("Event", "counter"), *headers],
        )
        self.notifier.handle_request(request, RequestContext(peer, self.clock.seconds()))
        self.clock.advance(0)
        return self.route.sent[-1]

    def answer(self, peer: Peer, code: int = 200) -> None:
        request = self.route.sent[-1][0]
        self.route.waiting[-1].callback((make_response(request, code), peer))

    def refresh(self, request: Request, watch: Watch, contact: str, peer: Peer) -> None:
        """
        Refresh the subscription C{request} made, with C{contact}, from C{peer}.
        """
        refresh = make_request(
            "SUBSCRIBE",
            "sip:conf@example.com",
            call_id=request.call_id,
            cseq=2,
            to=f"<sip:conf@example.com>;tag={watch.dialog.local_tag}",
            headers=[("Contact", contact), ("Event", "counter")],
        )
        context = RequestContext(peer, 1.0)
        self.notifier.refresh(refresh, context, "sip:bob@example.net", None, 600, same=str.__eq__)

    def test_contact_resolved(self) -> None:
        """Over UDP without a route set: the Contact is the hop, the source the last resort."""
        request, hop, first, last = self.subscribe()
        self.assertEqual((str(hop), first, last), ("sip:bob@pc.example.net", None, PEER))
        self.assertFalse(request.has_header("via"))  # the route adds one per target
        self.assertEqual(request.method, "NOTIFY")

    def test_route_set(self) -> None:
        """With a Record-Route, its URI is the hop and not even a stream source goes first."""
        tcp = Peer("TCP", "192.0.2.9", 40000, "conn")
        _, hop, first, last = self.subscribe(
            tcp, headers=[("Record-Route", "<sip:proxy.example.net;transport=tcp;lr>")]
        )
        self.assertEqual(
            (str(hop), first, last), ("sip:proxy.example.net;transport=tcp;lr", None, tcp)
        )

    def test_stream_flow_first(self) -> None:
        """Without a route set, the connection the subscriber opened is tried first."""
        tcp = Peer("TCP", "192.0.2.9", 40000, "conn")
        _, _, first, _ = self.subscribe(tcp)
        self.assertEqual(first, tcp)

    def test_secure_dialog(self) -> None:
        """A dialog a sips: SUBSCRIBE made is notified at a sips: hop (TLS only)."""
        tls = Peer("TLS", "192.0.2.9", 40000, "conn")
        _, hop, _, _ = self.subscribe(tls, uri="sips:conf@example.com")
        self.assertEqual(str(hop), "sips:bob@pc.example.net")

    def test_answering_peer_first(self) -> None:
        """The peer that answered a NOTIFY is tried first for the next one."""
        self.subscribe()
        there = Peer("UDP", "198.51.100.1", 5060, "udp")
        self.answer(there)
        self.notifier.changed("r")
        self.clock.advance(0)
        _, _, first, last = self.route.sent[-1]
        self.assertEqual((first, last), (there, PEER))

    def test_new_contact_resolved_again(self) -> None:
        """A refresh naming another Contact makes it the hop; the old answering peer is dropped."""
        request, _, _, _ = self.subscribe()
        self.answer(Peer("UDP", "198.51.100.1", 5060, "udp"))
        [watch] = self.notifier.watches()
        self.refresh(request, watch, "<sip:bob@laptop.example.net>", PEER)
        self.clock.advance(0)
        _, hop, first, last = self.route.sent[-1]
        self.assertEqual((str(hop), first, last), ("sip:bob@laptop.example.net", None, PEER))

    def test_refresh_from_another_flow(self) -> None:
        """A refresh over another connection makes that one the source and forgets the old peer."""
        request, _, _, _ = self.subscribe()
        self.answer(Peer("UDP", "198.51.100.1", 5060, "udp"))
        [watch] = self.notifier.watches()
        moved = Peer("UDP", "192.0.2.77", 5090, "udp")
        self.refresh(request, watch, "<sip:bob@pc.example.net>", moved)
        self.clock.advance(0)
        _, _, first, last = self.route.sent[-1]
        self.assertEqual((first, last), (None, moved))

    def test_unreachable_ends(self) -> None:
        """A NOTIFY the route cannot deliver ends the subscription."""
        self.subscribe()
        self.route.waiting[-1].errback(
            RuntimeError("NOTIFY to sip:bob@pc.example.net not delivered")
        )
        self.assertEqual(self.notifier.watches(), [])
