# -*- test-case-name: tests.store.test_memory -*-
"""
In-memory backends of every store interface: what runs with C{--store
memory}, and the fakes other code tests against (see L{conference.testing}).
They keep exactly the semantics the contract tests hold the durable
backends to, and lose everything on restart.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Collection, Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple

from twisted.internet.defer import Deferred, fail, succeed
from zope.interface import implementer

from conference.interfaces import (
    IBindingStore,
    ICalendarStore,
    IConferenceStore,
    IRegistrationStore,
)
from conference.records import (
    BindingRecord,
    CalendarEntry,
    ConferenceRecord,
    ConflictError,
    LimitExceededError,
    RegistrationBinding,
    StoreError,
)


def registration_order(binding: RegistrationBinding) -> Tuple[float, str]:
    """
    Sort key of registered contacts: highest q first (no q counts as 1.0),
    then by contact.
    """
    return (-(binding.q if binding.q is not None else 1.0), binding.contact)


def binding_order(binding: BindingRecord) -> Tuple[str, str]:
    """
    Sort key of BIND bindings: by disposition, then URI.
    """
    return (binding.disposition, binding.uri)


@implementer(IRegistrationStore)
class MemoryRegistrationStore:
    """
    Registrations in a dictionary: fast, and lost on restart.
    """

    def __init__(self) -> None:
        self._bindings: Dict[str, Dict[str, RegistrationBinding]] = {}

    def get_bindings(self, aor: str, now: float) -> Deferred[List[RegistrationBinding]]:
        """
        See L{IRegistrationStore.get_bindings}.
        """
        current = self._bindings.get(aor, {})
        live = (b for b in current.values() if b.expires_at > now)
        return succeed(sorted(live, key=registration_order))

    def set_bindings(
        self,
        aor: str,
        bindings: Sequence[RegistrationBinding],
        removed: Sequence[str],
        now: float,
    ) -> Deferred[List[RegistrationBinding]]:
        """
        See L{IRegistrationStore.set_bindings}.
        """
        current = dict(self._bindings.get(aor, {}))
        for contact in removed:
            current.pop(contact, None)
        for binding in bindings:
            current[binding.contact] = binding
        live = {c: b for c, b in current.items() if b.expires_at > now}
        if live:
            self._bindings[aor] = live
        else:
            self._bindings.pop(aor, None)
        return self.get_bindings(aor, now)

    def purge(self, now: float) -> Deferred[int]:
        """
        See L{IRegistrationStore.purge}.
        """
        gone = 0
        for aor in list(self._bindings):
            live = {c: b for c, b in self._bindings[aor].items() if b.expires_at > now}
            gone += len(self._bindings[aor]) - len(live)
            if live:
                self._bindings[aor] = live
            else:
                del self._bindings[aor]
        return succeed(gone)


@implementer(IConferenceStore)
class MemoryConferenceStore:
    """
    Conferences in a dictionary keyed by URI.
    """

    def __init__(self) -> None:
        self._records: Dict[str, ConferenceRecord] = {}

    def get(self, uri: str) -> Deferred[Optional[ConferenceRecord]]:
        """
        See L{IConferenceStore.get}.
        """
        return succeed(_copy(self._records.get(uri)))

    def get_by_uid(self, uid: str) -> Deferred[Optional[ConferenceRecord]]:
        """
        See L{IConferenceStore.get_by_uid}.
        """
        for record in self._records.values():
            if record.uid == uid:
                return succeed(_copy(record))
        return succeed(None)

    def put(
        self,
        record: ConferenceRecord,
        expected_version: Optional[int],
        *,
        max_per_organizer: Optional[int] = None,
    ) -> Deferred[ConferenceRecord]:
        """
        See L{IConferenceStore.put}.
        """
        old = self._records.get(record.uri)
        version = 0 if old is None else old.version
        if expected_version is not None and expected_version != version:
            return fail(
                ConflictError(
                    f"conference {record.uri} is at version {version}, not {expected_version}"
                )
            )
        for other in self._records.values():
            if other.uid == record.uid and other.uri != record.uri:
                return fail(ConflictError(f"UID {record.uid!r} already belongs to {other.uri}"))
        if max_per_organizer is not None and (old is None or old.organizer != record.organizer):
            owned = sum(1 for r in self._records.values() if r.organizer == record.organizer)
            if owned + 1 > max_per_organizer:
                return fail(
                    LimitExceededError(
                        f"{record.organizer} already has {owned} conferences "
                        f"(at most {max_per_organizer})"
                    )
                )
        stored = replace(record, version=version + 1, settings=dict(record.settings))
        self._records[record.uri] = stored
        return succeed(replace(stored, settings=dict(stored.settings)))

    def list(
        self, organizer: Optional[str] = None, state: Optional[str] = None
    ) -> Deferred[List[ConferenceRecord]]:
        """
        See L{IConferenceStore.list}.
        """
        found = [
            replace(r, settings=dict(r.settings))
            for uri, r in sorted(self._records.items())
            if (organizer is None or r.organizer == organizer)
            and (state is None or r.state == state)
        ]
        return succeed(found)

    def count_by_organizer(self, organizer: str) -> Deferred[int]:
        """
        See L{IConferenceStore.count_by_organizer}.
        """
        return succeed(sum(1 for r in self._records.values() if r.organizer == organizer))

    def delete(self, uri: str) -> Deferred[bool]:
        """
        See L{IConferenceStore.delete}.
        """
        return succeed(self._records.pop(uri, None) is not None)


def _copy(record: Optional[ConferenceRecord]) -> Optional[ConferenceRecord]:
    if record is None:
        return None
    return replace(record, settings=dict(record.settings))


@implementer(ICalendarStore)
class MemoryCalendarStore:
    """
    Calendar entries in a dictionary keyed by owner, then UID.
    """

    def __init__(self) -> None:
        self._entries: Dict[str, Dict[str, CalendarEntry]] = {}

    def entries(self, owner: str) -> Deferred[List[CalendarEntry]]:
        """
        See L{ICalendarStore.entries}.
        """
        return succeed([e for uid, e in sorted(self._entries.get(owner, {}).items())])

    def put_entry(self, entry: CalendarEntry) -> Deferred[None]:
        """
        See L{ICalendarStore.put_entry}.
        """
        self._entries.setdefault(entry.owner, {})[entry.uid] = entry
        return succeed(None)

    def remove_entry(self, owner: str, uid: str) -> Deferred[bool]:
        """
        See L{ICalendarStore.remove_entry}.
        """
        current = self._entries.get(owner, {})
        found = current.pop(uid, None) is not None
        if not current:
            self._entries.pop(owner, None)
        return succeed(found)


@implementer(IBindingStore)
class MemoryBindingStore:
    """
    BIND bindings in a dictionary keyed by owner, then (disposition, URI).
    """

    def __init__(self) -> None:
        self._bindings: Dict[str, Dict[Tuple[str, str], BindingRecord]] = {}
        self._dispositions: Dict[str, FrozenSet[str]] = {}

    def bindings(
        self, owner: str, now: float, dispositions: Optional[Collection[str]] = None
    ) -> Deferred[List[BindingRecord]]:
        """
        See L{IBindingStore.bindings}.
        """
        return succeed(self._live(owner, now, dispositions))

    def _live(
        self, owner: str, now: float, dispositions: Optional[Collection[str]] = None
    ) -> List[BindingRecord]:
        wanted = None if dispositions is None else frozenset(dispositions)
        current = self._bindings.get(owner, {}).values()
        live = [
            b for b in current if b.expires_at > now and (wanted is None or b.disposition in wanted)
        ]
        return sorted(live, key=binding_order)

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
        See L{IBindingStore.apply}.
        """
        try:
            check_upserts(owner, upserts)
        except StoreError as e:
            return fail(e)
        current = {k: b for k, b in self._bindings.get(owner, {}).items() if b.expires_at > now}
        for key, etag in (expected_etags or {}).items():
            found = current.get(key)
            if found is None or found.etag != etag:
                return fail(
                    ConflictError(f"binding {key[0]} {key[1]} of {owner} is not at etag {etag!r}")
                )
        count_before = len(current)
        for disposition, uri in removals:
            if uri is None:
                current = {k: b for k, b in current.items() if k[0] != disposition}
            else:
                current.pop((disposition, uri), None)
        for record in upserts:
            current[(record.disposition, record.uri)] = record
        live = {k: b for k, b in current.items() if b.expires_at > now}
        if len(live) > max_bindings and len(live) > count_before:
            return fail(over_limit(owner, len(live), max_bindings))
        if live:
            self._bindings[owner] = live
        else:
            self._bindings.pop(owner, None)
        return succeed(self._live(owner, now))

    def take_one_time(
        self, owner: str, disposition: str, uri: str, now: Optional[float] = None
    ) -> Deferred[bool]:
        """
        See L{IBindingStore.take_one_time}.
        """
        current = self._bindings.get(owner, {})
        found = current.get((disposition, uri))
        if found is None or not found.one_time:
            return succeed(False)
        if now is not None and found.expires_at <= now:
            return succeed(False)
        del current[(disposition, uri)]
        if not current:
            self._bindings.pop(owner, None)
        return succeed(True)

    def purge(self, now: float) -> Deferred[int]:
        """
        See L{IBindingStore.purge}.
        """
        gone = 0
        for owner in list(self._bindings):
            live = {k: b for k, b in self._bindings[owner].items() if b.expires_at > now}
            gone += len(self._bindings[owner]) - len(live)
            if live:
                self._bindings[owner] = live
            else:
                del self._bindings[owner]
        return succeed(gone)

    def owner_dispositions(self, owner: str) -> Deferred[Optional[FrozenSet[str]]]:
        """
        See L{IBindingStore.owner_dispositions}.
        """
        return succeed(self._dispositions.get(owner))

    def set_owner_dispositions(
        self, owner: str, dispositions: Optional[Collection[str]]
    ) -> Deferred[None]:
        """
        See L{IBindingStore.set_owner_dispositions}.
        """
        if dispositions is None:
            self._dispositions.pop(owner, None)
            return succeed(None)
        bad = [d for d in dispositions if not d or "\n" in d]
        if bad:
            return fail(StoreError(f"bad disposition names {bad!r}"))
        self._dispositions[owner] = frozenset(dispositions)
        return succeed(None)


def check_upserts(owner: str, upserts: Sequence[BindingRecord]) -> None:
    """
    Refuse upserts that name another owner or repeat a key.

    @raise StoreError: naming the offending binding.
    """
    seen = set()
    for record in upserts:
        if record.owner != owner:
            raise StoreError(f"binding for {record.owner} given in an update of {owner}")
        key = (record.disposition, record.uri)
        if key in seen:
            raise StoreError(f"binding {key[0]} {key[1]} given twice in one update")
        seen.add(key)


def over_limit(owner: str, count: int, limit: int) -> LimitExceededError:
    """
    The error for an update that would leave C{owner} with C{count}
    bindings when at most C{limit} are allowed.
    """
    return LimitExceededError(f"{owner} would have {count} bindings (at most {limit})")
