# -*- test-case-name: tests.unit.web.test_web -*-
"""
The HTTP endpoint of the server (C{--http}, docs/operations.rst):
Prometheus C{/metrics}, status pages, C{/api} JSON and organizer actions.

L{http_listener} builds the listener service the conference service adds
as a child; it reads the server's state only through public attributes
(C{sip}, C{stores}, C{focus}), so this package sits above the
application and below the service.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional, Sequence

from twisted.cred.portal import Portal
from twisted.internet.endpoints import serverFromString
from twisted.logger import Logger, LogPublisher, globalLogPublisher
from twisted.web.server import Site

from conference.tls import tls_endpoint
from conference.transport.listening import (
    StreamListenerService,
    build_endpoint,
    endpoint_interfaces,
)
from conference.web.access import Gate
from conference.web.actions import Actions
from conference.web.metrics import server_registry
from conference.web.resource import StatusResource
from conference.web.traffic import ObservedCounter, TransactionCounter

log = Logger()


class HTTPListenerService(StreamListenerService):
    """
    The C{--http} listener (a stream listener named by its own option in
    start-up errors); while it runs, transactions are counted for
    C{/metrics}.
    """

    option = "--http"

    def __init__(
        self, description: str, endpoint: Any, factory: Any, observed: ObservedCounter
    ) -> None:
        super().__init__(description, endpoint, factory)
        self.observed = observed

    def startService(self) -> None:
        """
        Count transactions, then serve.
        """
        self.observed.start()
        super().startService()

    def stopService(self) -> Any:
        """
        Stop serving and counting.
        """
        self.observed.stop()
        return super().stopService()


def status_site(
    server: Any,
    portal: Portal,
    domains: Sequence[str],
    admins: Iterable[str],
    reactor: Any,
    *,
    metrics_public: bool = False,
    counter: Optional[TransactionCounter] = None,
) -> Site:
    """
    The L{Site} serving L{StatusResource} for C{server}.

    @param counter: the transaction counts to export with C{/metrics}.
    """
    extra = [counter] if counter is not None else []
    resource = StatusResource(
        server,
        Gate(portal, domains, admins, clock=reactor.seconds),
        server_registry(server, *extra),
        Actions(lambda: getattr(server, "control", None)),
        reactor.seconds,
        metrics_public=metrics_public,
    )
    site = Site(resource, reactor=reactor)
    site.displayTracebacks = False
    return site


def http_listener(
    server: Any,
    description: str,
    *,
    portal: Portal,
    domains: Sequence[str],
    admins: Iterable[str],
    reactor: Any,
    metrics_public: bool = False,
    publisher: Optional[LogPublisher] = None,
) -> HTTPListenerService:
    """
    The listener service of C{--http DESCRIPTION} (any Twisted stream
    server endpoint), its endpoint built now.

    @param publisher: where the SIP server's transaction events are
        published (default: the global log publisher).
    @raise conference.errors.StartupError: for a description that cannot work.
    """
    if not _private(description):
        log.warn(
            "--http {description} is plain HTTP on a non-loopback interface: "
            "pages and actions cross the network in the clear (logins from other "
            "hosts need HTTP digest, basic is refused); use ssl: or tls:",
            description=description,
        )
    endpoint = build_endpoint(description, lambda: _endpoint(reactor, description), "--http")
    counter = TransactionCounter()
    site = status_site(
        server,
        portal,
        domains,
        admins,
        reactor,
        metrics_public=metrics_public,
        counter=counter,
    )
    observed = ObservedCounter(counter, publisher or globalLogPublisher)
    return HTTPListenerService(description, endpoint, site, observed)


def _endpoint(reactor: Any, description: str) -> Any:
    """
    The endpoint of C{description}: the server's own hardened C{tls:} form
    (L{conference.tls}, no client certificates) or any Twisted one.
    """
    if description.lower().startswith("tls:"):
        return tls_endpoint(reactor, description)
    return serverFromString(reactor, description)


def _private(description: str) -> bool:
    """
    Whether C{description} is TLS or listens on loopback only (plain
    C{tcp:} on another interface, or on all, sends the pages in the clear;
    logins from other hosts are then digest only).
    """
    kind = description.split(":", 1)[0].lower()
    if kind in ("ssl", "tls"):
        return True
    if kind not in ("tcp", "tcp6"):
        return True  # unix sockets and others: not on the network
    hosts = endpoint_interfaces(description)
    return bool(hosts) and all(
        host in ("::1", "localhost") or host.startswith("127.") for host in hosts
    )
