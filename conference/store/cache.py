# -*- test-case-name: tests.unit.store.test_cache -*-
"""
A read cache in front of any L{IBindingStore}: what BIND queries, OPTIONS
and REGISTER answers read (an owner's bindings and accepted dispositions)
is kept per owner, so a repeated query costs no store read at all.

Why it is correct, and how stale it can be:

 - Expiry needs no invalidation: the cache keeps the owner's live bindings
   as read at some time, and each answer drops those expired by the
   caller's C{now} (time only moves forward; a C{now} before the read's
   goes to the store).
 - Every write made through this process goes through the wrapper
   (L{cache_bindings} replaces the stores' binding store), which forgets
   the owner when the write is sent and again when it has committed, before
   the write's own callbacks run: a 200 to an update and the NOTIFYs it
   causes read the committed state.
 - Writes of other processes sharing the database (PostgreSQL) arrive as
   change notices (L{IChangeFeed}): C{binding} and C{dispositions} forget
   one owner, C{*} (the feed reconnected) forgets everything.  Between a
   commit elsewhere and its notice (milliseconds), and if the feed's
   connection is down, a node may answer from what it read before; no
   entry is used longer than L{MAX_AGE} seconds after its read, which
   bounds that.
 - A read answered after any invalidation began is not kept (the
   invalidation may have been for what it read).
 - One-time bindings are handed out only when the store's C{take_one_time}
   says so, never from the cache; a claim (won or lost) forgets the owner.
"""

from __future__ import annotations

from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Collection,
    Dict,
    FrozenSet,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
)

from twisted.internet.defer import Deferred, succeed
from zope.interface import implementer

from conference.deferreds import PENDING, fired_result
from conference.interfaces import IBindingStore, IChangeFeed
from conference.records import BindingRecord
from conference.store.changes import BINDING, DISPOSITIONS, EVERYTHING

if TYPE_CHECKING:
    from conference.store.stores import Stores

#: Seconds an entry is used after its read, whatever the change feed says.
MAX_AGE = 1.0

#: Owners remembered at most (the oldest read is forgotten first).
MAX_OWNERS = 4096

_T = TypeVar("_T")
_Bindings = Tuple[float, float, Tuple[BindingRecord, ...]]
_Dispositions = Tuple[float, Optional[FrozenSet[str]]]


@implementer(IBindingStore)
class CachedBindingStore:
    """
    An L{IBindingStore} that answers C{bindings} and C{owner_dispositions}
    from what it read last for the owner, and forwards everything else.

    @ivar store: the store read and written.
    @ivar hits: reads answered from the cache.
    @ivar misses: reads that went to the store.
    """

    def __init__(
        self,
        store: IBindingStore,
        changes: Optional[IChangeFeed],
        seconds: Callable[[], float],
        *,
        max_age: float = MAX_AGE,
        max_owners: int = MAX_OWNERS,
    ) -> None:
        """
        @param changes: the feed of other processes' changes, watched here
            (L{None} when no other process writes the store).
        @param seconds: the clock entries' ages are measured by.
        """
        self.store = store
        self._seconds = seconds
        self._max_age = max_age
        self._max_owners = max_owners
        self._bindings: Dict[str, _Bindings] = {}
        self._dispositions: Dict[str, _Dispositions] = {}
        # Bumped by every invalidation: a read that began before one is not kept.
        self._epoch = 0
        self.hits = self.misses = 0
        if changes is not None:
            changes.watch(self.changed)

    # Invalidation ----------------------------------------------------------

    def forget(self, owner: str) -> None:
        """
        Drop what is remembered of C{owner}.
        """
        self._epoch += 1
        self._bindings.pop(owner, None)
        self._dispositions.pop(owner, None)

    def clear(self) -> None:
        """
        Drop everything remembered.
        """
        self._epoch += 1
        self._bindings.clear()
        self._dispositions.clear()

    def changed(self, kind: str, key: str) -> None:
        """
        For L{IChangeFeed.watch}: another process committed a change.
        """
        if kind in (BINDING, DISPOSITIONS):
            self.forget(key)
        elif kind == EVERYTHING:
            self.clear()

    def _forget_after(self, d: Deferred[Any], owner: str) -> Deferred[Any]:
        return forget_after(d, lambda: self.forget(owner))

    def _keep(self, table: Dict[str, Any], owner: str, value: Any) -> None:
        if owner not in table and len(table) >= self._max_owners:
            del table[next(iter(table))]
        table[owner] = value

    def _fresh(self, read_at: float) -> bool:
        age = self._seconds() - read_at
        return 0.0 <= age < self._max_age

    def snapshot(self, owner: str, now: float) -> Optional[Tuple[object, object]]:
        """
        What C{bindings} and C{owner_dispositions} of C{owner} would answer
        from at C{now}, as an opaque pair, when both would answer from the
        cache; else L{None}.  Entries are replaced, never changed, whenever
        what is remembered of an owner changes (a read, a write, a notice,
        an eviction), so a caller that kept a pair can tell by identity
        (C{is}) that both reads would still answer what they answered
        when it was taken.  Counts no hit: nothing is read.
        """
        bindings = self._bindings.get(owner)
        dispositions = self._dispositions.get(owner)
        if bindings is None or dispositions is None or now < bindings[1]:
            return None
        seconds, max_age = self._seconds(), self._max_age
        if 0.0 <= seconds - bindings[0] < max_age and 0.0 <= seconds - dispositions[0] < max_age:
            return bindings, dispositions
        return None

    # Reads -------------------------------------------------------------------

    def bindings(
        self, owner: str, now: float, dispositions: Optional[Collection[str]] = None
    ) -> Deferred[List[BindingRecord]]:
        """
        See L{IBindingStore.bindings}; answered at once when remembered.
        """
        entry = self._bindings.get(owner)
        if entry is not None and now >= entry[1] and self._fresh(entry[0]):
            self.hits += 1
            return succeed(_live(entry[2], now, dispositions))
        self.misses += 1
        epoch, read_at = self._epoch, self._seconds()
        d = self.store.bindings(owner, now)

        def read(records: List[BindingRecord]) -> List[BindingRecord]:
            if self._epoch == epoch:
                self._keep(self._bindings, owner, (read_at, now, tuple(records)))
            return records if dispositions is None else _live(records, now, dispositions)

        found = fired_result(d)
        if found is PENDING:
            return d.addCallback(read)
        return succeed(read(found))

    def owner_dispositions(self, owner: str) -> Deferred[Optional[FrozenSet[str]]]:
        """
        See L{IBindingStore.owner_dispositions}; answered at once when
        remembered.
        """
        entry = self._dispositions.get(owner)
        if entry is not None and self._fresh(entry[0]):
            self.hits += 1
            return succeed(entry[1])
        self.misses += 1
        epoch, read_at = self._epoch, self._seconds()
        d = self.store.owner_dispositions(owner)

        def read(value: Optional[FrozenSet[str]]) -> Optional[FrozenSet[str]]:
            if self._epoch == epoch:
                self._keep(self._dispositions, owner, (read_at, value))
            return value

        found = fired_result(d)
        if found is PENDING:
            return d.addCallback(read)
        return succeed(read(found))

    # Writes ----------------------------------------------------------------

    def apply(
        self,
        owner: str,
        removals: Sequence[Tuple[str, Optional[str]]],
        upserts: Sequence[BindingRecord],
        now: float,
        *,
        max_bindings: int,
        expected_etags: Optional[Mapping[Tuple[str, str], str]] = None,
    ) -> Deferred[List[BindingRecord]]:
        """
        See L{IBindingStore.apply}; the owner is forgotten now and once the
        transaction ended.
        """
        self.forget(owner)
        d = self.store.apply(
            owner,
            removals,
            upserts,
            now,
            max_bindings=max_bindings,
            expected_etags=expected_etags,
        )
        return self._forget_after(d, owner)

    def take_one_time(
        self, owner: str, disposition: str, uri: str, now: Optional[float] = None
    ) -> Deferred[bool]:
        """
        See L{IBindingStore.take_one_time}; the owner is forgotten once the
        claim is decided (taken: it is gone; refused: what we had was stale).
        """
        return self._forget_after(self.store.take_one_time(owner, disposition, uri, now), owner)

    def purge(self, now: float) -> Deferred[int]:
        """
        See L{IBindingStore.purge}: it removes only bindings every answer
        already leaves out, so nothing remembered changes.
        """
        return self.store.purge(now)

    def set_owner_dispositions(
        self, owner: str, dispositions: Optional[Collection[str]]
    ) -> Deferred[None]:
        """
        See L{IBindingStore.set_owner_dispositions}; the owner is forgotten
        now and once stored.
        """
        self.forget(owner)
        return self._forget_after(self.store.set_owner_dispositions(owner, dispositions), owner)


def forget_after(d: Deferred[_T], forget: Callable[[], None]) -> Deferred[_T]:
    """
    C{d}, which first calls C{forget} when it fires, whatever its outcome:
    a cache forgets what a write touched once the write has ended, before
    the write's own callbacks run, so they and any read started during the
    write see what was committed.
    """

    def done(result: Any) -> Any:
        forget()
        return result

    return d.addBoth(done)


def _live(
    records: Sequence[BindingRecord], now: float, dispositions: Optional[Collection[str]]
) -> List[BindingRecord]:
    if dispositions is None:
        return [r for r in records if r.expires_at > now]
    return [r for r in records if r.expires_at > now and r.disposition in dispositions]


def uncached(store: IBindingStore) -> IBindingStore:
    """
    The store behind C{store} when it is a L{CachedBindingStore}, else
    C{store}: what an update plans on, so that it reads what is committed
    (as it did before there was a cache), however recently.
    """
    return store.store if isinstance(store, CachedBindingStore) else store


def cache_bindings(stores: Stores, seconds: Callable[[], float]) -> Stores:
    """
    Put a L{CachedBindingStore} in front of the binding store of C{stores}
    (a L{conference.store.stores.Stores}), watching their change feed;
    done once.  Returns C{stores}.  Call it before anything else watches
    the feed, so a change elsewhere is forgotten here before others read.
    """
    if not isinstance(stores.bindings, CachedBindingStore):
        stores.bindings = CachedBindingStore(stores.bindings, stores.changes, seconds)
    return stores


__all__ = [
    "MAX_AGE",
    "MAX_OWNERS",
    "CachedBindingStore",
    "cache_bindings",
    "forget_after",
    "uncached",
]
