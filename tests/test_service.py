# -*- test-case-name: tests.test_service -*-
"""
Tests for L{conference.service}: start-up order, stores and stopping.
"""

from __future__ import annotations

from typing import Any, List, Tuple

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from conference.service import ConferenceService, ServerConfig, listen_hosts
from conference.testing import memory_stores


class UDPMemoryReactor(MemoryReactorClock):
    """
    MemoryReactorClock with a recording listenUDP.
    """

    def __init__(self) -> None:
        super().__init__()
        self.udp: List[Tuple[int, Any, str, int]] = []

    def listenUDP(
        self, port: int, protocol: Any, interface: str = "", maxPacketSize: int = 8192
    ) -> Any:
        self.udp.append((port, protocol, interface, maxPacketSize))
        reactor = self

        class Port:
            def stopListening(self) -> None:
                reactor.udp.remove((port, protocol, interface, maxPacketSize))

        return Port()


class ServiceTests(SynchronousTestCase):
    """
    The service's life cycle over a memory reactor.
    """

    def make(self, **kwargs: Any) -> tuple[ConferenceService, UDPMemoryReactor]:
        reactor = UDPMemoryReactor()
        config = ServerConfig(
            listen=["udp:5070:interface=127.0.0.1", "tcp:5070:interface=127.0.0.1"],
            store="memory",
            **kwargs,
        )
        return ConferenceService(config, reactor=reactor), reactor

    def test_start_opens_store_then_listens(self) -> None:
        """Starting opens the store, builds the handlers, then listens on UDP and TCP."""
        service, reactor = self.make()
        service.startService()
        self.successResultOf(service.ready)
        self.assertIsNotNone(service.stores)
        self.assertEqual([(p, i) for p, _, i, _ in reactor.udp], [(5070, "127.0.0.1")])
        self.assertEqual(
            [(port, iface) for port, _, _, iface in reactor.tcpServers], [(5070, "127.0.0.1")]
        )
        self.assertIn("REGISTER", service.router.allow)

    def test_stop(self) -> None:
        """Stopping closes the listeners and fires once transactions are done."""
        service, reactor = self.make()
        service.startService()
        d = service.stopService()
        self.successResultOf(d)
        self.assertEqual(reactor.udp, [])
        self.assertIsNone(service.stores)

    def test_given_stores_not_closed(self) -> None:
        """Stores passed in by an embedding application are left open on stop."""
        stores = memory_stores()
        reactor = UDPMemoryReactor()
        service = ConferenceService(ServerConfig(listen=["udp:0"]), reactor=reactor, stores=stores)
        service.startService()
        self.successResultOf(service.stopService())
        self.assertIs(service.stores, stores)

    def test_bad_store_fails_ready(self) -> None:
        """A store that cannot be opened fails the ready Deferred and listens nowhere."""
        service, reactor = self.make()
        service.config.store = "mongodb:somewhere"
        service.startService()
        self.failureResultOf(service.ready)
        self.assertEqual(reactor.udp, [])
        self.flushLoggedErrors()

    def test_media_service(self) -> None:
        """The mixer by default, its inactivity hook ending calls; --media null drops media."""
        from conference.app.media import NullMediaService
        from conference.app.mixer import MixerMediaService

        service, _ = self.make(rtp_timeout=7.0)
        service.startService()
        assert isinstance(service.media, MixerMediaService)
        self.assertEqual(service.media.rtp_timeout, 7.0)
        ended: List[Tuple[Any, str]] = []
        service.focus.media_ended = lambda session, why: ended.append((session, why))  # type: ignore[method-assign]
        assert service.media.on_inactive is not None
        service.media.on_inactive("session", "no RTP")  # type: ignore[arg-type]
        self.assertEqual(ended, [("session", "no RTP")])
        null, _ = self.make(media="null")
        null.startService()
        self.assertIs(type(null.media), NullMediaService)

    def test_listen_hosts(self) -> None:
        """Listening interfaces count as this server's own hosts."""
        hosts = listen_hosts(["udp:5060:interface=192.0.2.1", "tcp6:5060:interface=\\:\\:1"])
        self.assertIn("192.0.2.1", hosts)
        self.assertIn("::1", hosts)
        self.assertIn("localhost", hosts)
