# -*- test-case-name: tests.unit.web.test_web -*-
"""
Tests for L{conference.web}: the C{--http} option and listener wired into
the conference service.
"""

from __future__ import annotations

from typing import Any, Dict, List, cast

from twisted.logger import ILogObserver, globalLogPublisher
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.server import Site

from conference.errors import StartupError
from conference.service import ConferenceService, ServerConfig
from conference.tap import Options, config_from_options
from conference.web import HTTPListenerService
from tests.unit.test_service import UDPMemoryReactor


class HTTPOptionTests(SynchronousTestCase):
    """
    C{--http} and C{--metrics-public} on the command line.
    """

    def test_off_by_default(self) -> None:
        """Without --http there is no HTTP listener."""
        options = Options()
        options.parseOptions([])
        config = config_from_options(options)
        self.assertIsNone(config.http)
        service = ConferenceService(config, reactor=UDPMemoryReactor())
        self.assertFalse([s for s in service if isinstance(s, HTTPListenerService)])

    def test_http(self) -> None:
        """--http and --metrics-public reach the configuration."""
        options = Options()
        options.parseOptions(["--http", "tcp:8080:interface=127.0.0.1", "--metrics-public"])
        config = config_from_options(options)
        self.assertEqual(config.http, "tcp:8080:interface=127.0.0.1")
        self.assertTrue(config.metrics_public)

    def test_metrics_public_needs_http(self) -> None:
        """--metrics-public alone is a usage error."""
        options = Options()
        with self.assertRaises(usage.UsageError) as caught:
            options.parseOptions(["--metrics-public"])
        self.assertIn("--http", str(caught.exception))


class HTTPListenerTests(SynchronousTestCase):
    """
    The HTTP listener in the service's life cycle.
    """

    def make(
        self, http: str, busy: tuple[str, ...] = ()
    ) -> tuple[ConferenceService, UDPMemoryReactor]:
        reactor = UDPMemoryReactor(busy)
        config = ServerConfig(listen=["udp:5070:interface=127.0.0.1"], store="memory", http=http)
        return ConferenceService(config, reactor=reactor), reactor

    def test_listens(self) -> None:
        """The service listens on the --http endpoint once started, and stops listening on stop."""
        service, reactor = self.make("tcp:8080:interface=127.0.0.1")
        service.privilegedStartService()
        service.startService()
        self.successResultOf(service.ready)
        [(port, site, _, interface)] = reactor.tcpServers
        self.assertEqual((port, interface), (8080, "127.0.0.1"))
        self.assertIsInstance(site, Site)
        self.assertFalse(cast(Site, site).displayTracebacks)
        self.successResultOf(service.stopService())

    def test_bad_description(self) -> None:
        """An endpoint description that cannot work is a start-up error naming --http."""
        with self.assertRaises(StartupError) as caught:
            self.make("bogus:8080")
        self.assertIn("--http bogus:8080", str(caught.exception))

    def test_tls_form(self) -> None:
        """The server's own tls: form is accepted, its files checked when built."""
        with self.assertRaises(StartupError) as caught:
            self.make("tls:8443:certKey=/nonexistent/cert.pem")
        message = str(caught.exception)
        self.assertIn("--http tls:8443", message)
        self.assertNotIn("Unknown endpoint type", message)

    def test_port_in_use(self) -> None:
        """A port in use fails start-up with one message naming --http."""
        service, _ = self.make("tcp:8080", busy=("tcp",))
        with self.assertRaises(StartupError) as caught:
            service.privilegedStartService()
        self.assertIn("--http tcp:8080", str(caught.exception))

    def test_plain_http_warning(self) -> None:
        """Plain HTTP off loopback is logged as a warning; loopback and TLS are not."""
        events: List[Dict[str, Any]] = []
        observer = cast(ILogObserver, events.append)
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        for description in (
            "tcp:8080:interface=127.0.0.1",
            "tcp6:8080:interface=\\:\\:1",
            "tcp:8080:interface=192.0.2.1",
            "tcp:8080",
        ):
            self.make(description)
        warned = [e["description"] for e in events if "in the clear" in e.get("log_format", "")]
        self.assertEqual(warned, ["tcp:8080:interface=192.0.2.1", "tcp:8080"])
