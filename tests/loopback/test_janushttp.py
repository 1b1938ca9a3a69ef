"""
Tests for L{conference.app.janushttp}: the Janus backend over real HTTP on
loopback, against the fake Janus served by twisted.web, and the HTTP
failures (refused connection, error status, not JSON, no answer).
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor as global_reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.error import ConnectionRefusedError
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.resource import Resource
from twisted.web.server import Site

from conference.app.janus import JanusMediaService
from conference.app.janushttp import HTTPJanusTransport, parse_janus_url
from conference.janus.protocol import JanusError
from conference.sip.errors import RemoteProtocolError
from tests.janusfake import FakeJanus, FakeJanusResource
from tests.mediacontract import CONFERENCE
from tests.unit.test_sdp import SIPP_OFFER


class URLTests(SynchronousTestCase):
    """The URL of C{--media janus:URL}."""

    def test_parse(self) -> None:
        """An http(s) URL with a host is taken, without a trailing slash; others refused."""
        self.assertEqual(
            parse_janus_url("http://127.0.0.1:8088/janus/"), "http://127.0.0.1:8088/janus"
        )
        for bad in ("ftp://x/janus", "http:///janus", "127.0.0.1:8088"):
            self.assertRaises(ValueError, parse_janus_url, bad)


class LoopbackTests(TestCase):
    """The backend against a fake Janus over HTTP on 127.0.0.1."""

    def setUp(self) -> None:
        self.janus = FakeJanus()
        self.resource = FakeJanusResource(self.janus)
        root = Resource()
        root.putChild(b"janus", self.resource)
        reactor: Any = global_reactor
        self.port = reactor.listenTCP(0, Site(root), interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        url = f"http://127.0.0.1:{self.port.getHost().port}/janus"
        self.transport = HTTPJanusTransport(url, global_reactor)
        self.service = JanusMediaService(
            self.transport, global_reactor, timeout=2.0, retry_after=9, check_interval=0
        )
        self.addCleanup(self.service.stop)

    @inlineCallbacks
    def test_join_and_leave(self) -> Any:
        """A join over HTTP gets Janus's port in the answer; closing empties the room."""
        session = yield self.service.answer(CONFERENCE, "sip:a@example.com", SIPP_OFFER)
        self.assertIn(str(session.port).encode(), session.local_sdp)
        self.assertEqual(len(self.janus.rooms[session.room].participants), 1)
        self.service.close(session)
        yield _settle()
        self.assertEqual(self.janus.rooms, {})

    @inlineCallbacks
    def assert_unavailable(self) -> Any:
        try:
            yield self.service.answer(CONFERENCE, "sip:a@example.com", SIPP_OFFER)
        except RemoteProtocolError as e:
            self.assertEqual((e.status, e.headers), (503, [("Retry-After", "9")]))
        else:
            self.fail("joined")

    def test_http_error(self) -> Any:
        """Janus answering 500: 503."""
        self.resource.status = 500
        return self.assert_unavailable()

    def test_not_json(self) -> Any:
        """Janus answering something other than JSON: 503."""
        self.resource.garbage = True
        return self.assert_unavailable()

    def test_silent(self) -> Any:
        """Janus never answering: 503 after the timeout."""
        self.janus.silent = True
        return self.assert_unavailable()

    @inlineCallbacks
    def test_refused(self) -> Any:
        """Nothing listening: the transport fails and the join is 503."""
        yield self.port.stopListening()
        error = yield self.assertFailure(
            self.transport.post("", {"janus": "create"}), ConnectionRefusedError
        )
        self.assertIsInstance(error, ConnectionRefusedError)
        yield self.assert_unavailable()

    @inlineCallbacks
    def test_transport_errors(self) -> Any:
        """The transport turns an error status and a non-JSON reply into JanusError."""
        self.resource.status = 404
        yield self.assertFailure(self.transport.get("/1"), JanusError)
        self.resource.status = None
        self.resource.garbage = True
        yield self.assertFailure(self.transport.post("", {}), JanusError)


def _settle() -> Deferred[None]:
    d: Deferred[None] = Deferred()
    global_reactor.callLater(0.1, d.callback, None)  # type: ignore[attr-defined]
    return d
