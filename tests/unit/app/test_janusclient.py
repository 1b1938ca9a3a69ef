"""
Tests for L{conference.app.janusclient}: one session shared by concurrent
requests, events matched to their transaction on the long poll, and
every failure ending in an error rather than a wait.
"""

from __future__ import annotations

from typing import Any, List

from twisted.internet.error import ConnectionRefusedError
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from conference.app.janusclient import JanusClient
from conference.janus import protocol
from conference.janus.protocol import JanusError
from conference.offeranswer import PCMU
from tests.janusfake import FakeJanus


class ClientTests(SynchronousTestCase):
    """The client on a fake Janus and a fake clock."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.janus = FakeJanus()
        self.client = JanusClient(self.janus, self.clock, timeout=5)

    def kinds(self) -> List[Any]:
        return [body.get("janus") for _, body in self.janus.requests]

    def test_one_session(self) -> None:
        """Concurrent attaches share one session creation."""
        first, second = self.client.attach(), self.client.attach()
        self.assertNotEqual(self.successResultOf(first), self.successResultOf(second))
        self.assertEqual(self.kinds(), ["create", "attach", "attach"])

    def test_session_failure_shared(self) -> None:
        """When creating the session fails, every request waiting for it fails."""
        self.janus.down = True
        first, second = self.client.attach(), self.client.attach()
        self.failureResultOf(first, ConnectionRefusedError)
        self.failureResultOf(second, ConnectionRefusedError)
        self.assertIsNone(self.client.session)

    def test_event_matched(self) -> None:
        """An asynchronous request fires with the event of its transaction."""
        handle = self.successResultOf(self.client.attach())
        self.successResultOf(self.client.request(handle, protocol.create_room(5, "s"), "created"))
        event = self.successResultOf(
            self.client.request_event(handle, protocol.join_rtp(5, protocol.OPUS))
        )
        self.assertEqual(protocol.parse_joined(event).port, 32000)

    def test_event_timeout(self) -> None:
        """An event that never comes fails the request after the timeout and is forgotten."""
        self.janus.no_events = True
        handle = self.successResultOf(self.client.attach())
        d = self.client.request_event(handle, protocol.join_rtp(5, PCMU))
        self.assertNoResult(d)
        self.clock.advance(5)
        self.failureResultOf(d)
        self.assertEqual(self.client._waiters, {})

    def test_lost_session(self) -> None:
        """Janus forgetting the session: the request fails and the next makes a new session."""
        self.successResultOf(self.client.attach())
        self.janus.sessions.clear()
        e = self.failureResultOf(self.client.keepalive(), JanusError).value
        self.assertEqual(e.code, protocol.NO_SUCH_SESSION)
        self.assertIsNone(self.client.session)
        self.successResultOf(self.client.attach())
        self.assertEqual(self.kinds().count("create"), 2)

    def test_poll_failure(self) -> None:
        """A long poll that fails fails the requests awaiting events."""
        self.client.timeout = 60
        self.janus.no_events = True
        handle = self.successResultOf(self.client.attach())
        d = self.client.request_event(handle, protocol.join_rtp(5, PCMU))
        self.janus.down = True
        self.clock.advance(40)  # an idle poll given up: asked again, now refused
        self.failureResultOf(d, ConnectionRefusedError)

    def test_no_session_requests(self) -> None:
        """Plugin requests without a session raise; detach and keepalive are no-ops."""
        self.assertRaises(JanusError, self.client.request, 1, {}, "created")
        self.assertRaises(JanusError, self.client.request_event, 1, {})
        self.assertIsNone(self.successResultOf(self.client.detach(1)))
        self.assertIsNone(self.successResultOf(self.client.keepalive()))
