# -*- test-case-name: tests.unit.web.test_metrics -*-
"""
Tests for L{conference.web.metrics}.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any, List, Tuple

from prometheus_client.exposition import generate_latest
from prometheus_client.registry import CollectorRegistry
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.trial.unittest import SynchronousTestCase

from conference.app.media import NullMediaSession
from conference.app.mixer import MixerMediaService
from conference.interfaces import IConferenceStore
from conference.media.codecs import PCMU
from conference.media.rtcp import build_report
from conference.media.rtp import ReceptionReport
from conference.overload import OverloadControl
from conference.records import StoreError
from conference.store.cache import CachedBindingStore
from conference.store.timing import StoreLatency, TimedStore, time_stores
from conference.web.metrics import WEB_LOGINS, StoreProbe, WebCollector, server_registry
from tests.builders import make_request
from tests.loopback.test_mixer import offer
from tests.mediacontract import CONFERENCE, FakeMediaReactor
from tests.unit.app.calendars import conference_calendar
from tests.unit.app.test_bind import Harness
from tests.unit.media.signals import rtp_stream, tone
from tests.unit.web.fixture import CONF, FailingConferences, WebFixture


class CollectorTests(WebFixture):
    """
    Numbers read from the live server at scrape time.
    """

    def scrape(self) -> str:
        return generate_latest(server_registry(self)).decode("utf-8")

    def test_sip_stats(self) -> None:
        """The SIP server's counters appear as they are at scrape time."""
        self.sip.stats["received"] = 7
        self.sip.stats["limited"] = 2
        self.sip.stats["shed"] = 3
        self.sip.stats["stateless"] = 5
        text = self.scrape()
        self.assertIn('conference_sip_messages_total{kind="received"} 7.0', text)
        self.assertIn('conference_sip_messages_total{kind="stateless"} 5.0', text)
        self.assertIn("conference_sip_rate_limited_total 2.0", text)
        self.assertIn("conference_sip_shed_total 3.0", text)
        self.assertIn("conference_sip_retired_dropped_early_total 0.0", text)
        self.assertIn('conference_sip_transactions{table="server"} 0.0', text)

    def test_overload(self) -> None:
        """The event-loop lag, the overload state and sheds by method are exported."""
        control = OverloadControl(0.1, smoothing=1.0)
        self.overload = control
        self.assertIn("conference_overloaded 0.0", self.scrape())
        control.observe(0.5, 1.0)
        control.shed(make_request("INVITE", "sip:conf@example.com"))
        text = self.scrape()
        self.assertIn("conference_overloaded 1.0", text)
        self.assertIn("conference_event_loop_lag_seconds 0.5", text)
        self.assertIn('conference_sip_overload_shed_total{method="INVITE"} 1.0', text)

    def test_roster(self) -> None:
        """Participants and open conferences follow joins."""
        self.assertIn("conference_participants 0.0", self.scrape())
        self.join("call-1", "bob")
        self.join("call-2", "dave")
        text = self.scrape()
        self.assertIn("conference_participants 2.0", text)
        self.assertIn("conference_conferences_open 1.0", text)

    def test_before_focus(self) -> None:
        """Before the applications exist only the SIP metrics are given."""
        del self.focus
        text = self.scrape()
        self.assertIn("conference_sip_messages_total", text)
        self.assertNotIn("conference_participants", text)

    def test_own_registry(self) -> None:
        """Two servers' registries do not share numbers."""
        other = server_registry(self)
        self.sip.stats["sent"] = 5
        self.assertIn('kind="sent"} 5.0', generate_latest(other).decode())
        self.assertIsNot(other, server_registry(self))


class StoreProbeTests(WebFixture):
    """
    What only the store knows, asked at scrape time.
    """

    def test_counts(self) -> None:
        """Stored conferences are counted by state; the query's time is kept."""
        ticks = iter([10.0, 10.25])
        probe = StoreProbe(timer=lambda: next(ticks))
        self.successResultOf(ensureDeferred(probe.refresh(self.stores)))
        registry = server_registry(self, probe)
        text = generate_latest(registry).decode()
        self.assertIn("conference_store_up 1.0", text)
        self.assertIn('conference_conferences_stored{state="scheduled"} 1.0', text)
        self.assertIn('conference_conferences_stored{state="cancelled"} 0.0', text)
        self.assertIn("conference_store_probe_seconds 0.25", text)

    def test_down(self) -> None:
        """A failing or unopened store is conference_store_up 0, without counts."""
        probe = StoreProbe()
        self.stores.conferences = FailingConferences()  # type: ignore[assignment]
        self.failureResultOf(ensureDeferred(probe.refresh(self.stores)), StoreError)
        text = generate_latest(server_registry(self, probe)).decode()
        self.assertIn("conference_store_up 0.0", text)
        self.assertNotIn("conference_conferences_stored", text)
        self.successResultOf(ensureDeferred(probe.refresh(None)))
        self.assertFalse(probe.up)

    def test_not_asked(self) -> None:
        """Before the first scrape the store's gauges are absent."""
        text = generate_latest(server_registry(self, StoreProbe())).decode()
        self.assertNotIn("conference_store_up", text)


class OutcomeTests(WebFixture):
    """
    Joins, calls to users and BIND updates counted by outcome where the
    answer is decided, exported at scrape time.
    """

    def scrape(self) -> str:
        return generate_latest(server_registry(self)).decode("utf-8")

    def test_joins_and_refusals(self) -> None:
        """A join and 486 refusals (full, locked) are counted by reason; unseen ones are 0."""
        self.store(conference_calendar(), max_participants="1")
        self.assertEqual(self.answer(self.invite(call_id="a")).code, 200)
        refused = self.invite(call_id="b", from_="<sip:c@example.com>;tag=c")
        self.assertEqual(self.answer(refused).code, 486)
        self.store(conference_calendar(), locked="true")
        locked = self.invite(call_id="c", from_="<sip:d@example.com>;tag=d")
        self.assertEqual(self.answer(locked).code, 486)
        text = self.scrape()
        self.assertIn('conference_joins_total{outcome="joined"} 1.0', text)
        self.assertIn('conference_joins_total{outcome="full"} 1.0', text)
        self.assertIn('conference_joins_total{outcome="locked"} 1.0', text)
        self.assertIn('conference_joins_total{outcome="not-open"} 0.0', text)
        self.assertIn('conference_user_calls_total{outcome="busy"} 0.0', text)

    def test_bind_updates(self) -> None:
        """BIND updates are counted as applied or by why they were refused; queries are not."""
        harness = Harness()
        self.binder = harness.bind
        value = "<http://cfg.example.com/a>;disposition=configuration"
        self.assertEqual(harness.send("BIND", "sip:alice@example.com", bindings=[value]).code, 200)
        self.assertEqual(harness.send("BIND", "sip:bob@example.com", bindings=[value]).code, 403)
        bad = harness.send("BIND", "sip:alice@example.com", bindings=["<http://x>"])
        self.assertEqual(bad.code, 400)
        self.assertEqual(harness.send("BIND", "sip:alice@example.com").code, 200)  # a query
        text = self.scrape()
        self.assertIn('conference_bind_updates_total{outcome="applied"} 1.0', text)
        self.assertIn('conference_bind_updates_total{outcome="forbidden"} 1.0', text)
        self.assertIn('conference_bind_updates_total{outcome="bad-request"} 1.0', text)
        self.assertIn('conference_bind_updates_total{outcome="store-unavailable"} 0.0', text)

    def test_binding_cache_reads(self) -> None:
        """Reads through the binding cache are counted as hits and misses."""
        harness = Harness(store=CachedBindingStore(Harness().stores.bindings, None, lambda: 5.0))
        self.binder = harness.bind
        text = self.scrape()
        self.assertIn('conference_binding_cache_reads_total{outcome="hit"} 0.0', text)
        harness.send("BIND", "sip:alice@example.com")
        harness.send("BIND", "sip:alice@example.com")
        text = self.scrape()
        self.assertIn('conference_binding_cache_reads_total{outcome="miss"} 2.0', text)
        self.assertIn('conference_binding_cache_reads_total{outcome="hit"} 2.0', text)


class WebCollectorTests(SynchronousTestCase):
    """
    The HTTP endpoint's own counts: logins and actions.
    """

    def test_logins_and_actions(self) -> None:
        """Counts appear as kept; every login outcome and each action's 303 start at 0."""
        logins: Counter[Tuple[str, str]] = Counter({("digest", "stale"): 2})
        acted: Counter[Tuple[str, str]] = Counter({("mute", "403"): 1})
        registry = CollectorRegistry(auto_describe=False)
        registry.register(WebCollector(logins, acted, ["lock", "mute"]))
        logins[("basic", "ok")] += 1  # read at scrape time
        lines = generate_latest(registry).decode("utf-8").splitlines()
        for line in (
            'conference_web_logins_total{outcome="stale",scheme="digest"} 2.0',
            'conference_web_logins_total{outcome="ok",scheme="basic"} 1.0',
            'conference_web_logins_total{outcome="replayed",scheme="digest"} 0.0',
            'conference_web_logins_total{outcome="missing",scheme="none"} 0.0',
            'conference_web_actions_total{action="mute",code="403"} 1.0',
            'conference_web_actions_total{action="mute",code="303"} 0.0',
            'conference_web_actions_total{action="lock",code="303"} 0.0',
        ):
            self.assertIn(line, lines)
        self.assertEqual(
            len([x for x in lines if x.startswith("conference_web_logins_total{")]),
            len(WEB_LOGINS),
        )


class SlowStore:
    """
    A store whose answers come when the test fires them.
    """

    def __init__(self) -> None:
        self.pending: List[Deferred[Any]] = []
        self.size = 3

    def get(self, uri: str) -> Deferred[Any]:
        self.pending.append(Deferred())
        return self.pending[-1]


class StoreLatencyTests(WebFixture):
    """
    Store calls timed at the store boundary, exported as a histogram.
    """

    def test_histogram(self) -> None:
        """A call lands in the bucket of its duration on the reactor's clock."""
        self.store_latency = StoreLatency()
        slow = SlowStore()
        store = TimedStore(slow, "conferences", self.store_latency, self.clock.seconds)
        answered = store.get(CONF)
        self.clock.advance(0.03)
        slow.pending[0].callback(None)
        self.successResultOf(answered)
        failed = store.get(CONF)
        slow.pending[1].errback(StoreError("gone"))
        self.failureResultOf(failed, StoreError)
        self.assertEqual(store.size, 3)
        text = generate_latest(server_registry(self)).decode()
        labels = 'operation="get",store="conferences"'
        self.assertIn(f'conference_store_call_seconds_bucket{{le="0.025",{labels}}} 1.0', text)
        self.assertIn(f'conference_store_call_seconds_bucket{{le="0.05",{labels}}} 2.0', text)
        self.assertIn(f"conference_store_call_seconds_sum{{{labels}}}", text)
        self.assertAlmostEqual(self.store_latency.sums[("conferences", "get")], 0.03, places=6)
        self.assertEqual(self.store_latency.failures[("conferences", "get")], 1)

    def test_time_stores(self) -> None:
        """The service's stores are timed once, keep their interfaces and still answer."""
        latency = StoreLatency()
        time_stores(self.stores, latency, self.clock)
        first = self.stores.conferences
        time_stores(self.stores, latency, self.clock)
        self.assertIs(self.stores.conferences, first)
        self.assertTrue(IConferenceStore.providedBy(first))
        self.assertIsNotNone(self.successResultOf(first.get(CONF)))
        self.assertEqual(sum(latency.counts[("conferences", "get")]), 1)


class MediaTests(WebFixture):
    """
    The built-in mixer's packets, drops, deadline misses and stream quality.
    """

    def setUp(self) -> None:
        super().setUp()
        self.reactor = FakeMediaReactor()
        self.mixer = MixerMediaService(self.reactor, address="198.51.100.1", rng=random.Random(5))
        self.focus.media = self.mixer

    def session(self, port: int) -> NullMediaSession:
        d = self.mixer.answer(CONFERENCE, f"sip:{port}@example.com", offer(port))
        session = self.successResultOf(d)
        assert isinstance(session, NullMediaSession)
        return session

    def scrape(self) -> str:
        return generate_latest(server_registry(self)).decode("utf-8")

    def test_packets_and_drops(self) -> None:
        """Packets received, accepted, sent and dropped are summed over channels, closed too."""
        a = self.session(6000)
        self.session(6002)
        for packet in rtp_stream(PCMU, 0, tone(700, 0.2)):
            self.reactor.deliver(a.port, packet, ("192.0.2.10", 6000))
            self.reactor.advance(0.02)
        self.reactor.deliver(a.port, b"junk", ("203.0.113.9", 6000))
        self.mixer.close(a)
        text = self.scrape()
        self.assertIn('conference_rtp_packets_total{kind="received"} 11.0', text)
        # The first packet of a stream only starts its probation (RFC 3550 A.1).
        self.assertIn('conference_rtp_packets_total{kind="accepted"} 9.0', text)
        self.assertIn('conference_rtp_dropped_total{reason="unconfirmed"} 1.0', text)
        self.assertIn('conference_rtp_dropped_total{reason="strangers"} 1.0', text)
        self.assertIn('conference_rtp_dropped_total{reason="flood"} 0.0', text)
        sent = sum(channel.counters.sent for channel in self.mixer.channels.values())
        self.assertGreater(sent, 0)
        self.assertIn("conference_mixes 1.0", text)

    def test_deadline_misses(self) -> None:
        """Frames the clock skipped after a stall are counted."""
        self.session(6000)
        self.reactor.advance(1.0)
        self.assertIn("conference_mix_deadline_misses_total 45.0", self.scrape())

    def test_quality(self) -> None:
        """Loss and jitter are gauges over the open streams, both ways, without per-call labels."""
        a = self.session(6000)
        self.assertNotIn("conference_rtp_loss_ratio", self.scrape())
        packets = rtp_stream(PCMU, 0, tone(700, 0.2))
        for i, packet in enumerate(packets):
            if i != 5:  # one lost
                self.reactor.deliver(a.port, packet, ("192.0.2.10", 6000))
            self.reactor.advance(0.02)
        ours = self.mixer.channel(a).ssrc
        report = ReceptionReport(ours, 64, 3, 100, 80)  # a quarter lost, 10 ms jitter
        self.reactor.deliver(
            a.port + 1, build_report(9, None, [(report, 0, 0)]), ("192.0.2.10", 6001)
        )
        text = self.scrape()
        self.assertIn('conference_rtp_loss_ratio_out{stat="max"} 0.25', text)
        self.assertIn('conference_rtp_jitter_seconds_out{stat="mean"} 0.01', text)
        self.assertIn('conference_rtp_loss_ratio_in{stat="max"} 0.1', text)
        self.assertIn("conference_rtp_jitter_seconds_in", text)
        self.assertNotIn("sip:6000", text)
