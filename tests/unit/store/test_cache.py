# -*- test-case-name: tests.unit.store.test_cache -*-
"""
Tests for L{conference.store.cache}: the binding read cache passes the
binding store contract over the memory and SQLite backends, answers
repeated reads without the store, and forgets an owner on every local
write and every change notice of another process.
"""

from __future__ import annotations

from typing import Any, Collection, List, Optional, Tuple

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from conference.interfaces import IBindingStore
from conference.records import BindingRecord
from conference.store.cache import MAX_AGE, CachedBindingStore, cache_bindings
from conference.store.changes import BINDING, DISPOSITIONS, EVERYTHING, LocalChangeFeed
from conference.store.memory import MemoryBindingStore
from conference.store.stores import Stores
from tests.unit.store.contracts import ALICE, CONF, NOW, BindingStoreContract, binding
from tests.unit.store.test_memory import MemoryBackend
from tests.unit.store.test_sqlite import SQLiteBackend


class CachedMemoryBackend(MemoryBackend):
    """
    Memory stores whose binding store is behind the cache.
    """

    async def open_stores(self) -> Stores:
        """
        Fresh memory stores, bindings cached.
        """
        return cache_bindings(await super().open_stores(), reactor.seconds)


class CachedSQLiteBackend(SQLiteBackend):
    """
    SQLite stores whose binding store is behind the cache; a second handle
    has a cache of its own.
    """

    async def open_again(self) -> Stores:
        """
        Stores on the same file, bindings cached.
        """
        return cache_bindings(await super().open_again(), reactor.seconds)


class CachedMemoryBindingStoreTests(CachedMemoryBackend, BindingStoreContract, TestCase):
    """
    The cache over the memory store keeps the binding store contract.
    """


class CachedSQLiteBindingStoreTests(CachedSQLiteBackend, BindingStoreContract, TestCase):
    """
    The cache over the SQLite store keeps the binding store contract.
    """


class CountingStore(MemoryBindingStore):
    """
    A memory binding store that counts its reads and can hold them back.

    @ivar held: when not L{None}, reads wait on Deferreds appended here
        (fired by the test with the value read at call time).
    """

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.held: Optional[List[Tuple[Deferred[Any], Any]]] = None

    def _hold(self, d: Deferred[Any]) -> Deferred[Any]:
        self.reads += 1
        if self.held is None:
            return d
        later: Deferred[Any] = Deferred()
        self.held.append((later, self.successResultOf(d)))
        return later

    @staticmethod
    def successResultOf(d: Deferred[Any]) -> Any:
        """The value of a fired Deferred."""
        out: List[Any] = []
        d.addCallback(out.append)
        return out[0]

    def bindings(
        self, owner: str, now: float, dispositions: Optional[Collection[str]] = None
    ) -> Deferred[List[BindingRecord]]:
        """Counted L{MemoryBindingStore.bindings}."""
        return self._hold(super().bindings(owner, now, dispositions))

    def owner_dispositions(self, owner: str) -> Deferred[Any]:
        """Counted L{MemoryBindingStore.owner_dispositions}."""
        return self._hold(super().owner_dispositions(owner))


class CacheTests(SynchronousTestCase):
    """
    What the cache answers from memory, and when it goes to the store again.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(NOW)
        self.store = CountingStore()
        self.feed = LocalChangeFeed()
        self.cache = CachedBindingStore(self.store, self.feed, self.clock.seconds)
        self.record = binding("http://a/1", expires_at=NOW + 100)

    def read(self, owner: str = CONF, now: float = NOW) -> List[BindingRecord]:
        """The cache's answer for C{owner}, which must come at once."""
        found: List[BindingRecord] = self.successResultOf(self.cache.bindings(owner, now))
        return found

    def seed(self) -> None:
        """Store one binding and read it once through the cache."""
        self.successResultOf(self.store.apply(CONF, [], [self.record], NOW, max_bindings=9))
        self.assertEqual(self.read(), [self.record])
        self.store.reads = 0

    def test_interface(self) -> None:
        """The cache provides IBindingStore."""
        self.assertTrue(verifyObject(IBindingStore, self.cache))

    def test_repeated_read(self) -> None:
        """A second read of an owner is answered without the store."""
        self.seed()
        self.assertEqual(self.read(), [self.record])
        self.assertEqual((self.store.reads, self.cache.hits), (0, 1))

    def test_expiry_filtered(self) -> None:
        """A remembered binding is left out once the caller's now passes its expiry."""
        self.seed()
        self.assertEqual(self.read(now=NOW + 100), [])
        self.assertEqual(self.store.reads, 0)

    def test_dispositions_filtered(self) -> None:
        """A read for some dispositions is answered from the remembered full set."""
        self.seed()
        self.assertEqual(self.successResultOf(self.cache.bindings(CONF, NOW, {"web"})), [])
        found = self.successResultOf(self.cache.bindings(CONF, NOW, {"conference"}))
        self.assertEqual((found, self.store.reads), ([self.record], 0))

    def test_earlier_now(self) -> None:
        """A now before the remembered read's goes to the store."""
        self.seed()
        self.read(now=NOW - 1)
        self.assertEqual(self.store.reads, 1)

    def test_max_age(self) -> None:
        """An entry is not used MAX_AGE seconds after its read."""
        self.seed()
        self.clock.advance(MAX_AGE)
        self.read(now=NOW + MAX_AGE)
        self.assertEqual(self.store.reads, 1)

    def test_local_apply(self) -> None:
        """An update through the cache is seen by the next read."""
        self.seed()
        other = binding("http://a/2", expires_at=NOW + 100)
        self.successResultOf(self.cache.apply(CONF, [], [other], NOW, max_bindings=9))
        self.assertEqual(self.read(), [self.record, other])
        self.assertEqual(self.store.reads, 1)

    def test_local_dispositions(self) -> None:
        """Setting an owner's dispositions through the cache is seen by the next read."""
        self.assertIsNone(self.successResultOf(self.cache.owner_dispositions(CONF)))
        self.successResultOf(self.cache.set_owner_dispositions(CONF, ["web"]))
        found = self.successResultOf(self.cache.owner_dispositions(CONF))
        self.assertEqual(found, frozenset({"web"}))
        self.successResultOf(self.cache.owner_dispositions(CONF))
        self.assertEqual((self.store.reads, self.cache.hits), (2, 1))

    def test_take_one_time(self) -> None:
        """A one-time binding taken through the cache is gone from the next read."""
        once = binding("http://a/3", one_time=True, expires_at=NOW + 100)
        self.successResultOf(self.store.apply(CONF, [], [once], NOW, max_bindings=9))
        self.assertEqual(self.read(), [once])
        self.assertTrue(
            self.successResultOf(self.cache.take_one_time(CONF, "conference", once.uri))
        )
        self.assertEqual(self.read(), [])

    def test_lost_claim_forgets(self) -> None:
        """A claim the store refuses (taken elsewhere) forgets the stale owner too."""
        once = binding("http://a/3", one_time=True, expires_at=NOW + 100)
        self.successResultOf(self.store.apply(CONF, [], [once], NOW, max_bindings=9))
        self.assertEqual(self.read(), [once])
        self.successResultOf(self.store.take_one_time(CONF, "conference", once.uri))
        self.assertFalse(
            self.successResultOf(self.cache.take_one_time(CONF, "conference", once.uri))
        )
        self.assertEqual(self.read(), [])

    def test_change_elsewhere(self) -> None:
        """A binding notice of another process forgets that owner only."""
        self.seed()
        self.read(ALICE)
        removal = [(self.record.disposition, None)]
        self.successResultOf(self.store.apply(CONF, removal, [], NOW, max_bindings=9))
        self.feed.publish(BINDING, CONF)
        self.assertEqual(self.read(), [])
        self.read(ALICE)
        self.assertEqual(self.store.reads, 2)

    def test_dispositions_elsewhere(self) -> None:
        """A dispositions notice of another process forgets that owner's set."""
        self.successResultOf(self.cache.owner_dispositions(CONF))
        self.successResultOf(self.store.set_owner_dispositions(CONF, ["web"]))
        self.feed.publish(DISPOSITIONS, CONF)
        found = self.successResultOf(self.cache.owner_dispositions(CONF))
        self.assertEqual(found, frozenset({"web"}))

    def test_everything_elsewhere(self) -> None:
        """The feed's reconnect notice forgets every owner; unknown kinds forget nothing."""
        self.seed()
        self.read(ALICE)
        self.feed.publish("conference", CONF)
        self.read()
        self.assertEqual(self.store.reads, 1)
        self.feed.publish(EVERYTHING, "")
        self.read()
        self.read(ALICE)
        self.assertEqual(self.store.reads, 3)

    def test_read_overtaken(self) -> None:
        """A read answered after an invalidation began is passed on but not kept."""
        self.store.held = []
        pending = self.cache.bindings(CONF, NOW)
        self.feed.publish(BINDING, CONF)
        [(later, value)] = self.store.held
        later.callback(value)
        self.assertEqual(self.successResultOf(pending), [])
        self.store.held = None
        self.read()
        self.assertEqual(self.store.reads, 2)

    def test_slow_read_kept(self) -> None:
        """A read that waits (a store in threads) is kept when nothing changed meanwhile."""
        self.store.held = []
        pending = self.cache.bindings(CONF, NOW)
        [(later, value)] = self.store.held
        later.callback(value)
        self.successResultOf(pending)
        self.read()
        self.assertEqual(self.store.reads, 1)

    def test_snapshot(self) -> None:
        """A snapshot comes once both reads of an owner are kept, the same until one changes."""
        self.assertIsNone(self.cache.snapshot(CONF, NOW))
        self.seed()
        self.assertIsNone(self.cache.snapshot(CONF, NOW))  # dispositions not read yet
        self.successResultOf(self.cache.owner_dispositions(CONF))
        self.store.reads = 0
        first = self.cache.snapshot(CONF, NOW)
        assert first is not None
        again = self.cache.snapshot(CONF, NOW + 0.5)
        assert again is not None
        self.assertTrue(first[0] is again[0] and first[1] is again[1])
        self.assertEqual((self.cache.hits, self.store.reads), (0, 0))  # counts nothing
        self.feed.publish(BINDING, CONF)
        self.assertIsNone(self.cache.snapshot(CONF, NOW))
        self.read()
        self.successResultOf(self.cache.owner_dispositions(CONF))
        later = self.cache.snapshot(CONF, NOW)
        assert later is not None
        self.assertIsNot(later[0], first[0])

    def test_snapshot_only_when_reads_would_answer(self) -> None:
        """No snapshot for a now before the read's, nor MAX_AGE after it."""
        self.seed()
        self.successResultOf(self.cache.owner_dispositions(CONF))
        self.assertIsNone(self.cache.snapshot(CONF, NOW - 1))
        self.clock.advance(MAX_AGE)
        self.assertIsNone(self.cache.snapshot(CONF, NOW + MAX_AGE))

    def test_bounded(self) -> None:
        """At most max_owners owners are remembered, the oldest read forgotten first."""
        cache = CachedBindingStore(self.store, None, self.clock.seconds, max_owners=2)
        for owner in ("sip:a@x", "sip:b@x", "sip:c@x", "sip:c@x", "sip:b@x", "sip:a@x"):
            self.successResultOf(cache.bindings(owner, NOW))
        self.assertEqual(self.store.reads, 4)

    def test_cache_bindings_once(self) -> None:
        """cache_bindings wraps the binding store once, watching the stores' feed."""
        stores = Stores.memory()
        cache_bindings(stores, self.clock.seconds)
        cached = stores.bindings
        self.assertIs(cache_bindings(stores, self.clock.seconds).bindings, cached)
        assert isinstance(cached, CachedBindingStore)
        self.successResultOf(cached.bindings(CONF, NOW))
        stores.changes.publish(BINDING, CONF)  # type: ignore[attr-defined]
        self.successResultOf(cached.bindings(CONF, NOW))
        self.assertEqual(cached.misses, 2)
