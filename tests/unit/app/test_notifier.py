# -*- test-case-name: tests.unit.app.test_notifier -*-
"""
Tests for L{conference.app.notifier}: SUBSCRIBE routed by its Event
header to the package's handler.
"""

from __future__ import annotations

from typing import Any, List

from twisted.internet.defer import Deferred, succeed
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from conference.app.core import RequestContext
from conference.app.notifier import EventRouter
from conference.interfaces import IRequestHandler
from conference.sip.errors import SIPProtocolError
from conference.sip.message import Request, Response, make_response
from conference.sip.transaction import Peer
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
