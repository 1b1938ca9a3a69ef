# -*- test-case-name: tests.unit.transport.test_listening -*-
"""
Listener services: one port each, bound early, serving once started.

A listener binds its port in C{privilegedStartService}, which twistd calls
before its reactor runs (and before it sheds privileges), so a port in use
or an interface the host does not have stops the process before it serves
anything.  The bound port is held paused (not reading datagrams, not
accepting connections: the kernel queues them) until C{startService},
which the server calls once its stores are open and its handlers are in
place, so nothing is answered by a half-built server.  A tree that skips
C{privilegedStartService} (tests, some embedders) binds at
C{startService}.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional

from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IListeningPort, IPushProducer
from twisted.python.failure import Failure

from conference.errors import StartupError

__all__ = ["ListenerService", "StreamListenerService", "build_endpoint"]


class ListenerService(Service):
    """
    Listens on one port while running (subclasses say how, in L{_listen}).

    @ivar description: the C{--listen} description, for messages.
    @ivar port: the listening port, once bound.
    @ivar error: why binding failed, once it has (the message names
        C{description}).
    """

    #: The option the description came from, for messages.
    option = "--listen"

    def __init__(self, description: str) -> None:
        self.description = description
        self.port: Optional[IListeningPort] = None
        self.error: Optional[StartupError] = None
        self._binding = False
        self._waiters: List[Deferred[None]] = []

    def _listen(self) -> Deferred[IListeningPort]:
        """
        Start listening; the port a Deferred fires with is held paused
        until the service runs.
        """
        raise NotImplementedError()

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        self._bind()

    def startService(self) -> None:
        super().startService()
        if self.port is not None:
            _resume(self.port)
        else:
            self._bind()

    def stopService(self) -> Any:
        super().stopService()
        self._binding = False
        self.error = None
        port, self.port = self.port, None
        return port.stopListening() if port is not None else None

    def when_bound(self) -> Deferred[None]:
        """
        Fire once the port is bound, or fail with the L{StartupError} that
        says why it cannot be (at once if either already happened).
        """
        d: Deferred[None] = Deferred()
        if self.error is not None:
            d.errback(self.error)
        elif self.port is not None:
            d.callback(None)
        else:
            self._waiters.append(d)
        return d

    def _bind(self) -> None:
        if self._binding:
            return
        self._binding = True
        try:
            listening = self._listen()
        except Exception:
            listening = fail(Failure())
        listening.addCallbacks(self._bound, self._failed)

    def _bound(self, port: IListeningPort) -> None:
        if not self._binding:  # stopped meanwhile
            port.stopListening()
            return
        self.port = port
        if not self.running:
            _pause(port)
        self._notify(None)

    def _failed(self, failure: Failure) -> None:
        self._binding = False
        error = failure.value
        assert error is not None
        self.error = StartupError(f"{self.option} {self.description}: {_reason(error)}")
        self._notify(self.error)

    def _notify(self, error: Optional[StartupError]) -> None:
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            if error is None:
                d.callback(None)
            else:
                d.errback(error)


class StreamListenerService(ListenerService):
    """
    Listens on one Twisted stream server endpoint (C{tcp:}, C{ssl:}, the
    C{tls:} form of L{conference.tls}, ...).
    """

    def __init__(self, description: str, endpoint: Any, factory: Any) -> None:
        """
        @param endpoint: an L{IStreamServerEndpoint}, built from
            C{description} when the service was configured.
        @param factory: the protocol factory connections get.
        """
        super().__init__(description)
        self.endpoint = endpoint
        self.factory = factory

    def _listen(self) -> Deferred[IListeningPort]:
        listening: Deferred[IListeningPort] = self.endpoint.listen(self.factory)
        return listening


def _pause(port: IListeningPort) -> None:
    """
    Stop reading from a bound port (real TCP and UDP ports are push
    producers; ports of memory reactors in tests are not, and stay as
    they are).
    """
    if IPushProducer.providedBy(port):
        port.pauseProducing()  # type: ignore[attr-defined]


def _resume(port: IListeningPort) -> None:
    if IPushProducer.providedBy(port):
        port.resumeProducing()  # type: ignore[attr-defined]


def _reason(error: BaseException) -> str:
    """
    One line saying why a port could not be bound (Twisted's
    C{CannotListenError} already reads "Couldn't listen on ADDR:PORT:
    [Errno 98] Address already in use.").
    """
    text = " ".join(str(error).split())
    return text or type(error).__name__


def endpoint_interfaces(description: str) -> List[str]:
    """
    The C{interface=} addresses named in an endpoint description (colons
    escaped as C{\\:} in IPv6 addresses unescaped).
    """
    found = []
    for part in description.replace("\\:", "\0").split(":"):
        if part.startswith("interface="):
            found.append(part[len("interface=") :].replace("\0", ":"))
    return found


def build_endpoint(description: str, build: Callable[[], Any], option: str = "--listen") -> Any:
    """
    Build the endpoint of a C{--listen} description now, so a bad one
    (unknown type, unreadable certificate, key missing) is reported while
    the server is configured rather than when it starts.

    @raise StartupError: naming C{description} and the fault.
    """
    try:
        return build()
    except Exception as e:
        raise StartupError(f"{option} {description}: {_reason(e)}") from e
