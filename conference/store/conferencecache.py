# -*- test-case-name: tests.unit.store.test_conferencecache -*-
"""
Conference records remembered between requests, so that every INVITE to
a conference (a join, a 486 with its VFREEBUSY) and every INVITE to an
address that names none (a 404) does not read the same row again: that
read was 5 to 10 % of the CPU of a join or a refusal (docs/benchmarks.rst).

A record is remembered until it changes.  Writes of this process go
through the cache and forget what they touch; writes of other processes
sharing a PostgreSQL database arrive as change notices
(L{conference.store.changes.CONFERENCE}, sent in the writing transaction)
and forget theirs; a feed that reconnected, and so may have missed some,
forgets everything.  What "no such conference" is remembered too, and
forgotten the same way, with the number of entries bounded (least
recently used first) so that INVITEs to made-up addresses cannot grow it.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import List, Optional, TypeVar

from twisted.internet.defer import Deferred, succeed
from zope.interface import implementer

from conference.interfaces import IChangeFeed, IConferenceStore
from conference.records import ConferenceRecord, Holders
from conference.store.cache import forget_after
from conference.store.changes import CONFERENCE, EVERYTHING

__all__ = ["CachedConferenceStore", "ForwardingConferenceStore"]

_T = TypeVar("_T")

#: How many conference URIs (found or not) are remembered at most.
DEFAULT_SIZE = 4096


@implementer(IConferenceStore)
class ForwardingConferenceStore:
    """
    An L{IConferenceStore} that hands every call to another one: the base
    of the stores that stand in front of one to add something (this
    module's cache, the CalDAV mirror of L{conference.app.caldav}), which
    override only what they change.

    @ivar store: the store behind.
    """

    def __init__(self, store: IConferenceStore) -> None:
        self.store = store

    def get(self, uri: str) -> Deferred[Optional[ConferenceRecord]]:
        """See L{IConferenceStore.get}."""
        return self.store.get(uri)

    def get_by_uid(self, uid: str) -> Deferred[Optional[ConferenceRecord]]:
        """See L{IConferenceStore.get_by_uid}."""
        return self.store.get_by_uid(uid)

    def put(
        self,
        record: ConferenceRecord,
        expected_version: Optional[int],
        *,
        max_per_organizer: Optional[int] = None,
        max_organizer_bytes: Optional[int] = None,
        holders: Optional[Holders] = None,
    ) -> Deferred[ConferenceRecord]:
        """See L{IConferenceStore.put}."""
        return self.store.put(
            record,
            expected_version,
            max_per_organizer=max_per_organizer,
            max_organizer_bytes=max_organizer_bytes,
            holders=holders,
        )

    def set_holders(
        self, uri: str, expected_version: int, holders: Holders, now: float
    ) -> Deferred[int]:
        """See L{IConferenceStore.set_holders}."""
        return self.store.set_holders(uri, expected_version, holders, now)

    def list(
        self, organizer: Optional[str] = None, state: Optional[str] = None
    ) -> Deferred[List[ConferenceRecord]]:
        """See L{IConferenceStore.list}."""
        return self.store.list(organizer, state)

    def count_by_organizer(self, organizer: str) -> Deferred[int]:
        """See L{IConferenceStore.count_by_organizer}."""
        return self.store.count_by_organizer(organizer)

    def delete(self, uri: str) -> Deferred[bool]:
        """See L{IConferenceStore.delete}."""
        return self.store.delete(uri)


@implementer(IConferenceStore)
class CachedConferenceStore(ForwardingConferenceStore):
    """
    An L{IConferenceStore} that remembers C{get} answers of another one
    (C{get_by_uid}, C{list} and the rest are not on a hot path and pass
    through, as does C{set_holders}, which leaves the record as it is).

    A read that was under way when anything was forgotten (a write, a
    notice) is not remembered when it lands: a generation counts the
    forgettings, and an answer is kept only if the generation it was read
    in still holds.  Reads take milliseconds and writes are rare, so this
    costs next to nothing and needs no bookkeeping per URI.

    @ivar hits: answers given from memory.
    @ivar misses: answers read from the store behind.
    """

    def __init__(
        self,
        store: IConferenceStore,
        changes: Optional[IChangeFeed] = None,
        size: int = DEFAULT_SIZE,
    ) -> None:
        """
        @param store: the store behind.
        @param changes: the feed of other processes' changes, watched here
            (L{None} when no other process writes the store).
        @param size: the most URIs remembered.
        @raise ValueError: unless C{size} is positive.
        """
        if size <= 0:
            raise ValueError("the conference cache needs room for at least one entry")
        super().__init__(store)
        self.size = size
        self._records: OrderedDict[str, Optional[ConferenceRecord]] = OrderedDict()
        self._generation = 0
        self.hits = self.misses = 0
        if changes is not None:
            changes.watch(self.changed)

    # Forgetting ------------------------------------------------------------

    def forget(self, uri: str) -> None:
        """Forget C{uri}: it changed, here or in another process."""
        self._records.pop(uri, None)
        self._generation += 1

    def forget_all(self) -> None:
        """Forget everything: changes may have been missed."""
        self._records.clear()
        self._generation += 1

    def changed(self, kind: str, key: str) -> None:
        """
        For L{IChangeFeed.watch}: another process committed a change (a
        conference's, or maybe anything's when the feed reconnected).
        """
        if kind == CONFERENCE:
            self.forget(key)
        elif kind == EVERYTHING:
            self.forget_all()

    def _remember(self, uri: str, generation: int, record: Optional[ConferenceRecord]) -> None:
        if generation != self._generation:
            return  # something was forgotten while it was read: maybe stale
        records = self._records
        records[uri] = record
        while len(records) > self.size:
            records.popitem(last=False)

    # Reading -----------------------------------------------------------------

    def get(self, uri: str) -> Deferred[Optional[ConferenceRecord]]:
        """
        See L{IConferenceStore.get}: from memory when remembered.
        """
        records = self._records
        if uri in records:
            self.hits += 1
            records.move_to_end(uri)
            return succeed(records[uri])
        self.misses += 1
        generation = self._generation
        reading = self.store.get(uri)

        def remember(record: Optional[ConferenceRecord]) -> Optional[ConferenceRecord]:
            self._remember(uri, generation, record)
            return record

        return reading.addCallback(remember)

    # Writing -----------------------------------------------------------------

    def _forgetting(self, uri: str, writing: Deferred[_T]) -> Deferred[_T]:
        """
        Forget C{uri} now and again when C{writing} ends, whatever its
        outcome: a read started during the write must not be remembered.
        """
        self.forget(uri)
        return forget_after(writing, lambda: self.forget(uri))

    def put(
        self,
        record: ConferenceRecord,
        expected_version: Optional[int],
        *,
        max_per_organizer: Optional[int] = None,
        max_organizer_bytes: Optional[int] = None,
        holders: Optional[Holders] = None,
    ) -> Deferred[ConferenceRecord]:
        """See L{IConferenceStore.put}."""
        return self._forgetting(
            record.uri,
            super().put(
                record,
                expected_version,
                max_per_organizer=max_per_organizer,
                max_organizer_bytes=max_organizer_bytes,
                holders=holders,
            ),
        )

    def delete(self, uri: str) -> Deferred[bool]:
        """See L{IConferenceStore.delete}."""
        return self._forgetting(uri, super().delete(uri))
