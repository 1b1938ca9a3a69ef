# -*- test-case-name: tests.unit.transport.test_listening -*-
"""
Tests for L{conference.transport.listening}: ports bound early and held
paused until the service starts, and bind failures as L{StartupError}s.
"""

from __future__ import annotations

from typing import Any, List, Optional

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort, IPushProducer
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from conference.errors import StartupError
from conference.transport.listening import (
    ListenerService,
    StreamListenerService,
    build_endpoint,
)


@implementer(IListeningPort, IPushProducer)
class FakePort:
    """
    A bound port that records whether it reads and whether it was closed.
    """

    def __init__(self) -> None:
        self.reading = True
        self.closed = False

    def pauseProducing(self) -> None:
        self.reading = False

    def resumeProducing(self) -> None:
        self.reading = True

    def stopProducing(self) -> None:
        self.reading = False

    def startListening(self) -> None:
        pass

    def stopListening(self) -> None:
        self.closed = True

    def getHost(self) -> Any:
        return None


class FakeEndpoint:
    """
    A stream server endpoint whose listen result the test chooses: a
    port at once, a failure, or a Deferred to fire later.
    """

    def __init__(self, result: Optional[Deferred[Any]] = None) -> None:
        self.port = FakePort()
        self.result = result
        self.factories: List[Any] = []

    def listen(self, factory: Any) -> Deferred[Any]:
        self.factories.append(factory)
        return self.result if self.result is not None else succeed(self.port)


class ListenerTests(SynchronousTestCase):
    """
    The life cycle of a listener over a fake endpoint.
    """

    def make(self, result: Optional[Deferred[Any]] = None) -> tuple[StreamListenerService, Any]:
        endpoint = FakeEndpoint(result)
        return StreamListenerService("tcp:5070", endpoint, factory="factory"), endpoint

    def test_bound_early_paused(self) -> None:
        """privilegedStartService binds the port and holds it paused; startService resumes it."""
        service, endpoint = self.make()
        service.privilegedStartService()
        self.assertIs(service.port, endpoint.port)
        self.assertFalse(endpoint.port.reading)
        self.successResultOf(service.when_bound())
        service.startService()
        self.assertTrue(endpoint.port.reading)
        self.assertEqual(endpoint.factories, ["factory"])

    def test_bound_at_start(self) -> None:
        """Without privilegedStartService the port is bound by startService, reading."""
        service, endpoint = self.make()
        waiting = service.when_bound()
        self.assertNoResult(waiting)
        service.startService()
        self.successResultOf(waiting)
        self.assertTrue(endpoint.port.reading)

    def test_bind_failure(self) -> None:
        """A port that cannot be bound is a StartupError naming the description and the fault."""
        error = CannotListenError("127.0.0.1", 5070, OSError(98, "Address already in use"))
        service, _ = self.make(fail(error))
        service.privilegedStartService()
        self.assertIsNone(service.port)
        assert service.error is not None
        self.assertEqual(
            str(service.error),
            "--listen tcp:5070: Couldn't listen on 127.0.0.1:5070: "
            "[Errno 98] Address already in use.",
        )
        self.assertIs(self.failureResultOf(service.when_bound(), StartupError).value, service.error)

    def test_listen_raises(self) -> None:
        """An endpoint that raises instead of failing its Deferred is reported the same way."""

        class Raising(ListenerService):
            def _listen(self) -> Deferred[IListeningPort]:
                raise OverflowError("bind(): port must be 0-65535.")

        service = Raising("tcp:99999")
        service.startService()
        self.assertEqual(
            str(self.failureResultOf(service.when_bound()).value),
            "--listen tcp:99999: bind(): port must be 0-65535.",
        )

    def test_late_port(self) -> None:
        """A port that comes later is paused or not by whether the service runs by then."""
        later: Deferred[Any] = Deferred()
        service, endpoint = self.make(later)
        service.privilegedStartService()
        waiting = service.when_bound()
        self.assertNoResult(waiting)
        later.callback(endpoint.port)
        self.successResultOf(waiting)
        self.assertFalse(endpoint.port.reading)

    def test_stopped_before_bound(self) -> None:
        """A port bound after its service stopped is closed at once."""
        later: Deferred[Any] = Deferred()
        service, endpoint = self.make(later)
        service.startService()
        service.stopService()
        later.callback(endpoint.port)
        self.assertTrue(endpoint.port.closed)
        self.assertIsNone(service.port)

    def test_stop_closes(self) -> None:
        """Stopping closes the port, even one never served on."""
        service, endpoint = self.make()
        service.privilegedStartService()
        service.stopService()
        self.assertTrue(endpoint.port.closed)
        self.assertIsNone(service.port)


class BuildEndpointTests(SynchronousTestCase):
    """
    L{build_endpoint}.
    """

    def test_error_named(self) -> None:
        """Any error building an endpoint is a StartupError naming the description."""

        def build() -> Any:
            raise ValueError("Unknown endpoint type: 'bogus'")

        with self.assertRaises(StartupError) as caught:
            build_endpoint("bogus:1234", build)
        self.assertEqual(
            str(caught.exception), "--listen bogus:1234: Unknown endpoint type: 'bogus'"
        )

    def test_result(self) -> None:
        """What the builder returns is returned."""
        self.assertEqual(build_endpoint("tcp:0", lambda: "endpoint"), "endpoint")
