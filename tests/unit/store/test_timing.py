# -*- test-case-name: tests.unit.store.test_timing -*-
"""
Tests for L{conference.store.timing}.
"""

from __future__ import annotations

from typing import Any, List

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from conference.records import StoreError
from conference.store.timing import BUCKETS, StoreLatency, TimedStore


class Store:
    """
    A store answering now, later (a Deferred the test fires) or raising.
    """

    def __init__(self) -> None:
        self.pending: List[Deferred[Any]] = []
        self.label = "kept"

    def now(self) -> int:
        return 7

    def later(self) -> Deferred[Any]:
        self.pending.append(Deferred())
        return self.pending[-1]

    def broken(self) -> None:
        raise StoreError("refused at once")


class StoreLatencyTests(SynchronousTestCase):
    """
    The plain-Python histogram.
    """

    def test_buckets(self) -> None:
        """A duration lands in the first bucket whose bound is at least it; above all, the last."""
        latency = StoreLatency()
        latency.observe("s", "op", BUCKETS[0])
        latency.observe("s", "op", BUCKETS[0] * 1.5)
        latency.observe("s", "op", BUCKETS[-1] * 2, failed=True)
        counts = latency.counts[("s", "op")]
        self.assertEqual((counts[0], counts[1], counts[-1], sum(counts)), (1, 1, 1, 3))
        self.assertEqual(latency.failures[("s", "op")], 1)
        self.assertAlmostEqual(latency.sums[("s", "op")], BUCKETS[0] * 2.5 + BUCKETS[-1] * 2)

    def test_operation_kept(self) -> None:
        """Each (store, operation) has one histogram, found again by name."""
        latency = StoreLatency()
        first = latency.operation("s", "op")
        self.assertIs(latency.operation("s", "op"), first)
        self.assertIsNot(latency.operation("s", "other"), first)
        first.observe(BUCKETS[0])
        latency.observe("s", "op", BUCKETS[0], failed=True)
        self.assertEqual(sum(latency.counts[("s", "op")]), 2)
        self.assertEqual(latency.failures, {("s", "op"): 1, ("s", "other"): 0})

    def test_snapshots(self) -> None:
        """What counts, sums and failures give are copies: changing them changes nothing."""
        latency = StoreLatency()
        latency.observe("s", "op", BUCKETS[0])
        latency.counts[("s", "op")][0] = 99
        latency.sums[("s", "op")] = 99.0
        self.assertEqual(latency.counts[("s", "op")][0], 1)
        self.assertAlmostEqual(latency.sums[("s", "op")], BUCKETS[0])


class TimedStoreTests(SynchronousTestCase):
    """
    The proxy times every call and otherwise behaves as the store.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.latency = StoreLatency()
        self.target = Store()
        self.store = TimedStore(self.target, "test", self.latency, self.clock.seconds)

    def test_deferred(self) -> None:
        """A Deferred result is timed until it fires, and its result passed on."""
        d = self.store.later()
        self.clock.advance(0.2)
        self.target.pending[0].callback("done")
        self.assertEqual(self.successResultOf(d), "done")
        self.assertAlmostEqual(self.latency.sums[("test", "later")], 0.2)

    def test_failure(self) -> None:
        """A failed Deferred and a raised error are counted as failures and passed on."""
        d = self.store.later()
        self.target.pending[0].errback(StoreError("gone"))
        self.failureResultOf(d, StoreError)
        self.assertRaises(StoreError, self.store.broken)
        self.assertEqual(self.latency.failures[("test", "later")], 1)
        self.assertEqual(self.latency.failures[("test", "broken")], 1)

    def test_plain(self) -> None:
        """A value returned at once is counted, attributes pass through untimed."""
        self.assertEqual(self.store.now(), 7)
        self.assertEqual(self.store.label, "kept")
        self.assertEqual(sum(self.latency.counts[("test", "now")]), 1)
        self.assertNotIn(("test", "label"), self.latency.counts)

    def test_fired(self) -> None:
        """A Deferred that already fired is counted at once and returned as it is."""
        fired: Deferred[Any] = Deferred()
        fired.callback("now")
        self.target.later = lambda: fired  # type: ignore[method-assign]
        d = self.store.later()
        self.assertIs(d, fired)
        self.assertEqual(sum(self.latency.counts[("test", "later")]), 1)
        self.assertEqual(self.successResultOf(d), "now")

    def test_wrapper_remembered(self) -> None:
        """Each operation's timed wrapper is made once and still times every call."""
        self.assertIs(self.store.now, self.store.now)
        self.store.now()
        self.store.now()
        self.assertEqual(sum(self.latency.counts[("test", "now")]), 2)
