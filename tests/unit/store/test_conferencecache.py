# -*- test-case-name: tests.unit.store.test_conferencecache -*-
"""
Tests for L{conference.store.conferencecache}: records remembered until
they change, here or elsewhere, and never a stale answer kept.
"""

from __future__ import annotations

from dataclasses import replace
from typing import List, Optional, Tuple

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from conference.interfaces import IConferenceStore
from conference.records import ConferenceRecord
from conference.store.changes import BINDING, CONFERENCE, EVERYTHING, LocalChangeFeed
from conference.store.conferencecache import CachedConferenceStore
from conference.store.memory import MemoryConferenceStore
from conference.store.stores import Stores
from tests.unit.store.contracts import CONF, ConferenceStoreContract, conference
from tests.unit.store.test_memory import MemoryBackend


class CachedBackend(MemoryBackend):
    """Memory stores with the conference store behind the cache."""

    async def open_stores(self) -> Stores:
        """Fresh memory stores, conferences cached."""
        stores = await super().open_stores()
        stores.conferences = CachedConferenceStore(stores.conferences)
        return stores


class CachedConferenceStoreContractTests(CachedBackend, ConferenceStoreContract, TestCase):
    """
    The cache in front of a store keeps every promise of L{IConferenceStore}.
    """


class CountingStore(MemoryConferenceStore):
    """A memory store that counts its reads and can hold their answers back."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.holding = False
        self.held: List[Tuple[Deferred[Optional[ConferenceRecord]], Optional[ConferenceRecord]]]
        self.held = []

    def get(self, uri: str) -> Deferred[Optional[ConferenceRecord]]:
        self.reads += 1
        answer = super().get(uri)
        if not self.holding:
            return answer
        later: Deferred[Optional[ConferenceRecord]] = Deferred()
        answer.addCallback(lambda record: self.held.append((later, record)))
        return later


class CacheTests(SynchronousTestCase):
    """
    What is remembered, and when it is forgotten.
    """

    def setUp(self) -> None:
        self.inner = CountingStore()
        self.cache = CachedConferenceStore(self.inner)
        self.successResultOf(self.inner.put(conference(), None))

    def get(self, uri: str = CONF) -> Optional[ConferenceRecord]:
        return self.successResultOf(self.cache.get(uri))

    def test_interface(self) -> None:
        """The cache provides the conference store interface."""
        verifyObject(IConferenceStore, self.cache)

    def test_read_once(self) -> None:
        """Asking twice reads the store once; the second answer is the same record."""
        first, second = self.get(), self.get()
        self.assertEqual((self.inner.reads, self.cache.hits, self.cache.misses), (1, 1, 1))
        self.assertIs(first, second)

    def test_absent_remembered(self) -> None:
        """No such conference is remembered too, until one is written through the cache."""
        other = "sip:nobody@example.com"
        self.assertIsNone(self.get(other))
        self.assertIsNone(self.get(other))
        self.assertEqual(self.inner.reads, 1)
        self.successResultOf(self.cache.put(conference(uri=other, uid="uid-2"), None))
        found = self.get(other)
        assert found is not None
        self.assertEqual(found.uid, "uid-2")

    def test_put_forgets(self) -> None:
        """A write through the cache is seen by the next read."""
        before = self.get()
        assert before is not None
        self.successResultOf(self.cache.put(replace(before, state="cancelled"), before.version))
        after = self.get()
        assert after is not None
        self.assertEqual((after.state, after.version), ("cancelled", before.version + 1))

    def test_failed_put_forgets(self) -> None:
        """A write that fails (a version conflict) leaves nothing stale behind either."""
        before = self.get()
        assert before is not None
        self.failureResultOf(self.cache.put(replace(before, state="cancelled"), 99))
        self.assertEqual(self.get(), before)
        self.assertEqual(self.inner.reads, 2)

    def test_delete_forgets(self) -> None:
        """A deleted conference is gone for the next read."""
        self.get()
        self.assertTrue(self.successResultOf(self.cache.delete(CONF)))
        self.assertIsNone(self.get())

    def test_notice_forgets(self) -> None:
        """A change made behind the cache (another process) is seen once forgotten."""
        before = self.get()
        assert before is not None
        self.successResultOf(self.inner.put(replace(before, sequence=7), None))
        self.assertEqual(self.get(), before)  # not told yet
        self.cache.forget(CONF)
        after = self.get()
        assert after is not None
        self.assertEqual(after.sequence, 7)

    def test_feed_notices(self) -> None:
        """The cache watches the change feed: a conference notice forgets it, "*" everything."""
        feed = LocalChangeFeed()
        cache = CachedConferenceStore(self.inner, feed)
        self.successResultOf(cache.get(CONF))
        self.successResultOf(cache.get("sip:nobody@example.com"))
        feed.publish(BINDING, CONF)  # not ours
        self.successResultOf(cache.get(CONF))
        self.assertEqual(self.inner.reads, 2)
        feed.publish(CONFERENCE, CONF)
        self.successResultOf(cache.get(CONF))
        self.successResultOf(cache.get("sip:nobody@example.com"))
        self.assertEqual(self.inner.reads, 3)
        feed.publish(EVERYTHING, "")
        self.successResultOf(cache.get(CONF))
        self.successResultOf(cache.get("sip:nobody@example.com"))
        self.assertEqual(self.inner.reads, 5)

    def test_forget_all(self) -> None:
        """Forgetting everything (a feed that reconnected) reads everything again."""
        self.get()
        self.get("sip:nobody@example.com")
        self.cache.forget_all()
        self.get()
        self.get("sip:nobody@example.com")
        self.assertEqual(self.inner.reads, 4)

    def test_read_during_change_not_kept(self) -> None:
        """An answer read while something changed is given but not remembered."""
        self.inner.holding = True
        reading = self.cache.get(CONF)
        self.cache.forget(CONF)  # a notice arrives while the read is out
        [(later, record)] = self.inner.held
        self.inner.holding = False
        later.callback(record)
        self.assertIsNotNone(self.successResultOf(reading))
        self.get()
        self.assertEqual(self.inner.reads, 2)

    def test_bounded(self) -> None:
        """Past its size the least recently used URI is forgotten first."""
        cache = CachedConferenceStore(self.inner, size=2)
        for name in ("a", "b", "a", "c"):
            self.successResultOf(cache.get(f"sip:{name}@example.com"))
        self.assertEqual(self.inner.reads, 3)
        self.successResultOf(cache.get("sip:a@example.com"))  # kept: used recently
        self.assertEqual(self.inner.reads, 3)
        self.successResultOf(cache.get("sip:b@example.com"))  # the one dropped
        self.assertEqual(self.inner.reads, 4)

    def test_bad_size(self) -> None:
        """A cache with no room is refused."""
        self.assertRaises(ValueError, CachedConferenceStore, self.inner, size=0)
