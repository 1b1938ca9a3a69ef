# -*- test-case-name: tests.web.test_web -*-
"""
The HTTP endpoint of the server (C{--http}, docs/operations.rst):
Prometheus C{/metrics}, status pages, C{/api} JSON and organizer actions.

L{http_listener} builds the listener service the conference service adds
as a child; it reads the server's state only through public attributes
(C{sip}, C{stores}, C{focus}), so this package sits above the
application and below the service.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from twisted.cred.portal import Portal
from twisted.internet.endpoints import serverFromString
from twisted.web.server import Site

from conference.transport.listening import StreamListenerService, build_endpoint
from conference.web.access import Gate
from conference.web.actions import Actions
from conference.web.metrics import server_registry
from conference.web.resource import StatusResource


class HTTPListenerService(StreamListenerService):
    """
    The C{--http} listener (a stream listener named by its own option in
    start-up errors).
    """

    option = "--http"


def status_site(
    server: Any,
    portal: Portal,
    domains: Sequence[str],
    admins: Iterable[str],
    reactor: Any,
    *,
    metrics_public: bool = False,
) -> Site:
    """
    The L{Site} serving L{StatusResource} for C{server}.
    """
    resource = StatusResource(
        server,
        Gate(portal, domains, admins),
        server_registry(server),
        Actions(lambda: getattr(server, "focus", None)),
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
) -> HTTPListenerService:
    """
    The listener service of C{--http DESCRIPTION} (any Twisted stream
    server endpoint), its endpoint built now.

    @raise conference.errors.StartupError: for a description that cannot work.
    """
    endpoint = build_endpoint(description, lambda: serverFromString(reactor, description), "--http")
    site = status_site(server, portal, domains, admins, reactor, metrics_public=metrics_public)
    return HTTPListenerService(description, endpoint, site)
