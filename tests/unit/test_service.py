# -*- test-case-name: tests.unit.test_service -*-
"""
Tests for L{conference.service}: start-up order, stores and stopping.
"""

from __future__ import annotations

import io
import json
import sys
from dataclasses import replace
from types import SimpleNamespace
from typing import Any, List, Tuple, cast

from twisted.internet.defer import Deferred, fail
from twisted.internet.error import CannotListenError
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import (
    ILogObserver,
    Logger,
    LogLevel,
    formatEvent,
    globalLogPublisher,
    textFileLogObserver,
)
from twisted.trial.unittest import SynchronousTestCase

import conference.service as service_module
from conference.app.scheduler import SchedulingHandler
from conference.errors import StartupError
from conference.records import BindingRecord, ConferenceRecord, StoreError
from conference.service import ConferenceService, ServerConfig, listen_hosts
from conference.store.cache import CachedBindingStore
from conference.store.changes import BINDING, CONFERENCE, DISPOSITIONS, EVERYTHING, LocalChangeFeed
from conference.testing import memory_stores
from tests.builders import make_request


class UDPMemoryReactor(MemoryReactorClock):
    """
    MemoryReactorClock with a recording listenUDP.
    """

    def __init__(self, busy: Tuple[str, ...] = ()) -> None:
        """
        @param busy: the kinds of port (C{"udp"}, C{"tcp"}) already in use.
        """
        super().__init__()
        # Twisted before 26 starts a MemoryReactor as if it had stopped.
        self.hasStopped = False
        self.udp: List[Tuple[int, Any, str, int]] = []
        self.busy = busy

    def listenTCP(self, port: int, factory: Any, backlog: int = 50, interface: str = "") -> Any:
        if "tcp" in self.busy:
            raise CannotListenError(interface, port, OSError(98, "Address already in use"))
        return super().listenTCP(port, factory, backlog, interface)

    def listenUDP(
        self, port: int, protocol: Any, interface: str = "", maxPacketSize: int = 8192
    ) -> Any:
        if "udp" in self.busy:
            raise CannotListenError(interface, port, OSError(98, "Address already in use"))
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

    def make(
        self, busy: Tuple[str, ...] = (), **kwargs: Any
    ) -> tuple[ConferenceService, UDPMemoryReactor]:
        reactor = UDPMemoryReactor(busy)
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

    def test_no_accounts_authenticate(self) -> None:
        """Without --auth a request needing no identity gets None at once; a BIND gets 403."""
        service, _ = self.make()
        self.assertIsNone(service.authenticate(make_request("OPTIONS", "sip:example.com"), 0.0))
        refused = service.authenticate(make_request("BIND", "sip:example.com"), 0.0)
        assert refused is not None
        self.assertEqual(self.failureResultOf(refused).value.status, 403)

    def test_keepalive_events_follow_level(self) -> None:
        """Keep-alive OPTIONS events are emitted unless the log level writes no debug events."""
        emitted = {}
        for level in (None, "debug", "info", "warn"):
            service, _ = self.make(log_level=level)
            service.startService()
            self.successResultOf(service.ready)
            emitted[level] = service.sip.log_keepalives
            self.successResultOf(service.stopService())
        self.assertEqual(emitted, {None: True, "debug": True, "info": False, "warn": False})

    def test_json_log_level(self) -> None:
        """With --log-format json the JSON lines hold only events at --log-level or above."""
        out = io.StringIO()
        self.patch(sys, "stdout", out)
        before = list(getattr(globalLogPublisher, "_observers", []))
        service, _ = self.make(log_format="json", log_level="warn")
        service.startService()
        self.successResultOf(service.ready)
        added = [o for o in getattr(globalLogPublisher, "_observers", []) if o not in before]
        for observer in added:
            self.addCleanup(globalLogPublisher.removeObserver, observer)
        self.assertEqual(len(added), 1)
        Logger(namespace="probe").info("quiet {n}", n=1)
        Logger(namespace="probe").warn("loud {n}", n=2)
        # jsonFileLogObserver writes each event as RS, JSON text, LF (RFC 7464).
        lines = [json.loads(r) for r in out.getvalue().split("\x1e") if r.strip()]
        probes = [e["log_format"] for e in lines if e.get("log_namespace") == "probe"]
        self.assertEqual(probes, ["loud {n}"])
        self.successResultOf(service.stopService())

    def test_text_log_batched(self) -> None:
        """twistd's text log is written in batches while serving, and directly once stopped."""
        out = io.StringIO()
        observer = textFileLogObserver(out)
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        service, reactor = self.make(log_level="info", log_flush=0.05)
        service.startService()
        self.successResultOf(service.ready)
        reactor.advance(1.0)  # what start-up logged
        Logger(namespace="probe").info("held {n}", n=1)
        self.assertNotIn("held 1", out.getvalue())
        reactor.advance(service.config.log_flush)
        self.assertIn("held 1", out.getvalue())
        Logger(namespace="probe").info("held {n}", n=2)
        self.successResultOf(service.stopService())
        self.assertIn("held 2", out.getvalue())
        Logger(namespace="probe").info("direct {n}", n=3)
        self.assertIn("direct 3", out.getvalue())

    def test_jit_tuned_when_serving(self) -> None:
        """The service hands config.pypy_jit to tune_jit once it serves ('' by default)."""
        asked: List[str] = []
        self.patch(service_module, "tune_jit", asked.append)
        for parameters in ("decay=0", ""):
            service, _ = self.make(pypy_jit=parameters)
            service.startService()
            self.successResultOf(service.ready)
            self.successResultOf(service.stopService())
        self.assertEqual(asked, ["decay=0", ""])
        self.assertEqual(ServerConfig().pypy_jit, "")

    def test_text_log_direct_by_default(self) -> None:
        """By default every line of twistd's text log is written as it comes."""
        out = io.StringIO()
        observer = textFileLogObserver(out)
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        service, _ = self.make(log_level="info")
        service.startService()
        self.successResultOf(service.ready)
        Logger(namespace="probe").info("direct {n}", n=1)
        self.assertIn("direct 1", out.getvalue())
        self.successResultOf(service.stopService())

    def test_collector_pauses_reach_queue(self) -> None:
        """While serving, the collector's pauses reach the queue's shedding; not once stopped."""
        watched: List[Any] = []

        def watch(report: Any) -> Any:
            watched.append(report)
            return lambda: watched.remove(report)

        self.patch(service_module, "watch_collector", watch)
        service, _ = self.make()
        service.startService()
        self.successResultOf(service.ready)
        queue = service.sip.queue
        assert queue is not None
        self.assertEqual(watched, [queue.paused])
        self.successResultOf(service.stopService())
        self.assertEqual(watched, [])

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
        """A store that cannot be opened fails ready with a StartupError, one line, no traceback."""
        events = self.capture()
        service, reactor = self.make()
        service.config.store = "mongodb:somewhere"
        service.privilegedStartService()
        self.assertEqual(len(reactor.udp), 1)
        service.startService()
        error = self.failureResultOf(service.ready, StartupError).value
        self.assertTrue(str(error).startswith("--store: bad store description 'mongodb:somewhere'"))
        self.assertEqual(reactor.udp, [])
        self.assertEqual(
            [formatEvent(e) for e in events if e["log_level"] >= LogLevel.warn],
            [f"Cannot start: {error}"],
        )
        self.assertFalse([e for e in events if "log_failure" in e])
        self.assertFalse(reactor.hasStopped)

    def test_bound_before_store(self) -> None:
        """privilegedStartService binds every listener before the store opens."""
        service, reactor = self.make()
        service.privilegedStartService()
        self.assertEqual(len(reactor.udp), 1)
        self.assertEqual(len(reactor.tcpServers), 1)
        self.assertIsNone(service.stores)
        self.assertNotIn("REGISTER", service.router.allow)
        service.startService()
        self.successResultOf(service.ready)
        self.assertEqual(len(reactor.udp), 1)
        self.assertIn("REGISTER", service.router.allow)

    def test_port_in_use(self) -> None:
        """A port in use is a StartupError naming it; the ports already bound are closed."""
        service, reactor = self.make(busy=("tcp",))
        with self.assertRaises(StartupError) as caught:
            service.privilegedStartService()
        self.assertEqual(
            str(caught.exception),
            "--listen tcp:5070:interface=127.0.0.1: Couldn't listen on 127.0.0.1:5070: "
            "[Errno 98] Address already in use.",
        )
        self.assertEqual(reactor.udp, [])

    def test_port_in_use_at_start(self) -> None:
        """Bound only at start, a port in use fails ready and closes the other ports."""
        events = self.capture()
        service, _ = self.make(busy=("udp",))
        service.startService()
        error = self.failureResultOf(service.ready, StartupError).value
        self.assertIn("--listen udp:5070:interface=127.0.0.1: Couldn't listen", str(error))
        self.assertEqual(service.stream_ports, [])
        self.assertEqual(len([e for e in events if e["log_level"] == LogLevel.critical]), 1)

    def test_bad_listen_description(self) -> None:
        """A description no endpoint parser knows is a StartupError when the service is built."""
        with self.assertRaises(StartupError) as caught:
            ConferenceService(ServerConfig(listen=["bogus:1234"]), reactor=UDPMemoryReactor())
        self.assertEqual(
            str(caught.exception), "--listen bogus:1234: Unknown endpoint type: 'bogus'"
        )

    def test_tls_without_key(self) -> None:
        """A tls: listener whose certificate file has no key is refused when built."""
        from tests.loopback.test_tls import make_certificate, pem

        path = self.mktemp()
        with open(path, "wb") as f:
            f.write(pem(make_certificate("server")[0]))
        config = ServerConfig(listen=[f"tls:5061:certKey={path}"])
        with self.assertRaises(StartupError) as caught:
            ConferenceService(config, reactor=UDPMemoryReactor())
        self.assertIn(f"--listen tls:5061:certKey={path}: no private key", str(caught.exception))

    def capture(self) -> List[Any]:
        """
        The log events from now to the end of the test.
        """
        events: List[Any] = []
        observer = cast(ILogObserver, events.append)
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        return events

    def test_purge_survives_store_error(self) -> None:
        """A failing purge is logged in one line and the next one still runs."""
        stores = memory_stores()
        calls: List[float] = []

        def purge(now: float) -> Deferred[int]:
            calls.append(now)
            return fail(StoreError("sqlite error: disk I/O error"))

        stores.registrations.purge = purge  # type: ignore[method-assign]
        reactor = UDPMemoryReactor()
        service = ConferenceService(ServerConfig(listen=["udp:0"]), reactor=reactor, stores=stores)
        service.startService()
        reactor.advance(60)
        reactor.advance(60)
        self.assertEqual(len(calls), 2)

    def test_media_service(self) -> None:
        """The mixer by default, its capacity shared out by the admission; --media null drops."""
        from conference.app.media import NullMediaService
        from conference.app.mixer import MixerMediaService

        service, _ = self.make(media_timeout=7.0, rtp_ports=(20000, 20019))
        service.startService()
        self.assertIsInstance(service.media, MixerMediaService)
        admission = service.focus.admission
        assert admission is not None
        self.assertEqual((admission.capacity, admission.timeout), (10, 7.0))
        null, _ = self.make(media="null")
        null.startService()
        self.assertIs(type(null.media), NullMediaService)

    def test_janus_media_service(self) -> None:
        """--media janus:URL uses the Janus backend on that URL, with no DTMF PINs."""
        from conference.app.janus import JanusMediaService
        from conference.app.janushttp import HTTPJanusTransport

        service, _ = self.make(media="janus:http://127.0.0.1:8088/janus")
        service.startService()
        self.assertIsInstance(service.media, JanusMediaService)
        transport = service.media.client.transport  # type: ignore[union-attr]
        assert isinstance(transport, HTTPJanusTransport)
        self.assertEqual(transport.url, "http://127.0.0.1:8088/janus")
        self.assertFalse(hasattr(service.media, "on_dtmf"))

    def test_listen_hosts(self) -> None:
        """Listening interfaces count as this server's own hosts."""
        hosts = listen_hosts(["udp:5060:interface=192.0.2.1", "tcp6:5060:interface=\\:\\:1"])
        self.assertIn("192.0.2.1", hosts)
        self.assertIn("::1", hosts)
        self.assertIn("localhost", hosts)

    def test_accounts_wired(self) -> None:
        """The --auth checkers' users are the accounts the scheduler and BIND owners ask."""
        from twisted.cred import strcred

        service, _ = self.make(checkers=[strcred.makeChecker("memory:alice:secret")])
        service.startService()
        self.successResultOf(service.ready)
        self.assertTrue(service.accounts.is_account("sip:alice@localhost"))
        self.assertFalse(service.accounts.is_account("sip:room@localhost"))
        scheduler = service.router.handler_for("MESSAGE")
        assert isinstance(scheduler, SchedulingHandler)
        self.assertIs(scheduler.users.accounts, service.accounts)
        self.assertIs(service.binder.owners.accounts, service.accounts)
        self.assertEqual(scheduler.listeners, [service.subscriptions.changed])

    def test_accounts_with_client_certificates(self) -> None:
        """With TLS client identities, an address no checker knows cannot be judged."""
        service, _ = self.make(tls_ca="ca.pem")
        self.assertIsNone(service.accounts.is_account("sip:room@localhost"))
        service, _ = self.make(tls_ca="ca.pem", tls_client_cert="none")
        self.assertFalse(service.accounts.is_account("sip:room@localhost"))


class ChangedElsewhereTests(SynchronousTestCase):
    """
    Binding changes other nodes commit (the store's change feed) reach the
    binding subscriptions this node holds; conference changes make it read
    the record again.
    """

    def setUp(self) -> None:
        self.stores = memory_stores()
        self.service = service = ConferenceService(
            ServerConfig(listen=["udp:0"]), reactor=UDPMemoryReactor(), stores=self.stores
        )
        service.startService()
        self.addCleanup(service.stopService)
        self.service = service
        self.changed: List[str] = []
        subscriptions = service.subscriptions
        subscriptions.changed = self.changed.append  # type: ignore[method-assign,assignment]
        watched = [SimpleNamespace(resource=r) for r in ("sip:b@x", "sip:a@x", "sip:b@x")]
        subscriptions.watches = lambda resource=None: watched  # type: ignore[method-assign,assignment,return-value]
        assert isinstance(self.stores.changes, LocalChangeFeed)
        self.feed = self.stores.changes

    def test_binding_change(self) -> None:
        """A binding change of another node notifies that owner's subscriptions."""
        self.feed.publish(BINDING, "sip:room@example.com")
        self.assertEqual(self.changed, ["sip:room@example.com"])

    def test_everything(self) -> None:
        """After a feed gap every watched owner is looked at again, once each."""
        self.feed.publish(EVERYTHING, "")
        self.assertEqual(self.changed, ["sip:a@x", "sip:b@x"])

    def test_cache_forgets_first(self) -> None:
        """What subscriptions read on a notice is the other node's commit, not a cached read."""
        bindings = self.stores.bindings
        assert isinstance(bindings, CachedBindingStore)
        owner = "sip:room@example.com"
        self.assertEqual(self.successResultOf(bindings.bindings(owner, 10.0)), [])
        record = BindingRecord(owner, "web", "http://a", 100.0, "e", False, owner)
        self.successResultOf(bindings.store.apply(owner, [], [record], 10.0, max_bindings=9))
        seen: List[Any] = []

        def changed(resource: str) -> None:
            bindings.bindings(resource, 10.0).addCallback(seen.append)

        self.service.subscriptions.changed = changed  # type: ignore[method-assign]
        self.feed.publish(BINDING, owner)
        self.assertEqual(seen, [[record]])

    def test_dispositions_change(self) -> None:
        """A dispositions notice tells no subscription (bindings did not change)."""
        self.feed.publish(DISPOSITIONS, "sip:room@example.com")
        self.assertEqual(self.changed, [])

    def test_ignored(self) -> None:
        """Our own notices and kinds we do not know change nothing."""
        self.feed.publish(BINDING, "sip:room@example.com", origin=self.feed.origin)
        self.feed.publish("calendar", "sip:room@example.com")
        self.assertEqual(self.changed, [])

    def cached_conference(self) -> ConferenceRecord:
        """Store a conference behind the cache (as another node would) and read it."""
        cache = self.service.conference_cache
        assert cache is not None
        record = ConferenceRecord(
            uri="sip:conf@example.com", uid="u1", organizer="sip:a@x", calendar=b"<x/>"
        )
        self.successResultOf(cache.store.put(record, None))
        found = self.successResultOf(self.stores.conferences.get(record.uri))
        assert found is not None
        self.successResultOf(cache.store.put(replace(found, sequence=9), None))
        return found

    def sequence(self, uri: str) -> int:
        """The sequence of the conference C{uri} as the service reads it."""
        found = self.successResultOf(self.stores.conferences.get(uri))
        assert found is not None
        return found.sequence

    def test_conference_change(self) -> None:
        """A conference another node changed is read again, not served from memory."""
        found = self.cached_conference()
        self.assertEqual(self.sequence(found.uri), 0)  # not told yet: from memory
        self.feed.publish(CONFERENCE, found.uri)
        self.assertEqual(self.sequence(found.uri), 9)

    def test_conference_change_applied(self) -> None:
        """A conference another node changed is applied here as this node's scheduler would."""
        applied: List[str] = []
        self.service.scheduler.applied.append(applied.append)
        self.feed.publish(CONFERENCE, "sip:conf@example.com")
        self.assertEqual(applied, ["sip:conf@example.com"])

    def test_conference_change_forgets_owners(self) -> None:
        """A conference changed elsewhere makes the owner lookups reused for queries go."""
        forgotten: List[bool] = []
        self.service.owners.forget = lambda: forgotten.append(True)  # type: ignore[method-assign]
        self.feed.publish(CONFERENCE, "sip:conf@example.com")
        self.assertEqual(forgotten, [True])

    def test_everything_applies_live_conferences(self) -> None:
        """After a feed gap the conferences someone is in here are applied again."""
        applied: List[str] = []
        self.service.scheduler.applied.append(applied.append)
        roster = self.service.focus.roster
        roster.conferences = lambda: ["sip:a@x", "sip:b@x"]  # type: ignore[method-assign]
        self.feed.publish(EVERYTHING, "")
        self.assertEqual(applied, ["sip:a@x", "sip:b@x"])

    def test_everything_forgets_conferences(self) -> None:
        """After a feed gap every conference record is read again."""
        found = self.cached_conference()
        self.feed.publish(EVERYTHING, "")
        self.assertEqual(self.sequence(found.uri), 9)


class StatelessAnswerTests(SynchronousTestCase):
    """
    The whole server answers OPTIONS and INVITEs to unknown addresses
    without transactions, with the answers it gives with them.
    """

    def answers(self, stateless: bool, *datagrams: bytes) -> Tuple[List[bytes], Any]:
        """
        What a fresh service over memory stores sends for C{datagrams}, and its SIP server.
        """
        from conference.sip.transaction import Peer
        from tests.unit.transport.test_server import RecordingSender

        service = ConferenceService(
            ServerConfig(listen=["udp:0"], domains=["example.com"]),
            reactor=UDPMemoryReactor(),
            stores=memory_stores(),
        )
        service.startService()
        self.addCleanup(service.stopService)
        service.sip.answer_statelessly = stateless
        sender = RecordingSender()
        service.sip.add_sender("test", sender)
        for data in datagrams:
            service.sip.datagram_received(data, Peer("UDP", "127.0.0.1", 5070, "test"))
        return [data for data, _, _ in sender.sent], service.sip

    def test_options_and_404(self) -> None:
        """OPTIONS (Allow, Accept, Supported...) and the INVITE's 404 read as the stateful ones."""
        from tests.builders import request_bytes
        from tests.unit.transport.test_server import without_to_tag

        datagrams = [
            request_bytes("OPTIONS", "sip:bench@127.0.0.1:5060", call_id="o1"),
            request_bytes("OPTIONS", "sip:example.com", call_id="o2", branch="z9hG4bKo2"),
            request_bytes(
                "INVITE",
                "sip:bench@127.0.0.1:5060",
                call_id="i1",
                branch="z9hG4bKi1",
                headers=[("Content-Type", "application/sdp")],
                body=b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n",
            ),
        ]
        quick, server = self.answers(True, *datagrams)
        full, stateful = self.answers(False, *datagrams)
        self.assertEqual([without_to_tag(d) for d in quick], [without_to_tag(d) for d in full])
        self.assertEqual(
            [d.split(b"\r\n")[0] for d in quick][2],
            b"SIP/2.0 404 Not Found (no such conference or user)",
        )
        self.assertIn(b"\r\nAllow: ", quick[0])
        self.assertEqual((server.stats["stateless"], server.layer.pending()), (3, 0))
        self.assertEqual((stateful.stats["stateless"], stateful.layer.pending()), (0, 3))
