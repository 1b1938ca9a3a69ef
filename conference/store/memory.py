# -*- test-case-name: tests.unit.store.test_memory -*-
"""
In-memory backends of every store interface: what runs with C{--store
memory}, and the fakes other code tests against (see L{conference.testing}).
They keep exactly the semantics the contract tests hold the durable
backends to, and lose everything on restart.
"""

from __future__ import annotations

from dataclasses import replace
from typing import (
    Callable,
    Collection,
    Dict,
    FrozenSet,
    List,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
)

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
    Holders,
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
    Conferences in a dictionary keyed by URI; the calendar entries that
    refer to them live in C{calendars}.
    """

    def __init__(self, calendars: Optional[MemoryCalendarStore] = None) -> None:
        """
        @param calendars: the calendar store holders are written to (a
            private one if not given).
        """
        self._records: Dict[str, ConferenceRecord] = {}
        self.calendars = calendars if calendars is not None else MemoryCalendarStore()
        self.calendars._conference_bytes = self._organized_bytes

    def _organized_bytes(self, organizer: str) -> int:
        return sum(len(r.calendar) for r in self._records.values() if r.organizer == organizer)

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
        max_organizer_bytes: Optional[int] = None,
        holders: Optional[Holders] = None,
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
        if max_organizer_bytes is not None:
            before = self.calendars.organizer_bytes(record.organizer)
            mine = old is not None and old.organizer == record.organizer
            after = before - (len(old.calendar) if old is not None and mine else 0)
            after += len(record.calendar)
            try:
                check_bytes(before, after, record.organizer, max_organizer_bytes)
            except LimitExceededError as e:
                return fail(e)
        stored = replace(record, version=version + 1, settings=dict(record.settings))
        self._records[record.uri] = stored
        self.calendars._refresh(record.uri, record.calendar)
        if holders is not None:
            self.calendars._hold(record.uri, record.calendar, holders, record.updated)
        return succeed(replace(stored, settings=dict(stored.settings)))

    def set_holders(
        self, uri: str, expected_version: int, holders: Holders, now: float
    ) -> Deferred[int]:
        """
        See L{IConferenceStore.set_holders}.
        """
        record = self._records.get(uri)
        version = 0 if record is None else record.version
        if record is None or version != expected_version:
            return fail(
                ConflictError(f"conference {uri} is at version {version}, not {expected_version}")
            )
        return succeed(self.calendars._hold(uri, record.calendar, holders, now))

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
        found = self._records.pop(uri, None) is not None
        self.calendars._hold(uri, b"", {}, 0.0)
        return succeed(found)


def _copy(record: Optional[ConferenceRecord]) -> Optional[ConferenceRecord]:
    if record is None:
        return None
    return replace(record, settings=dict(record.settings))


def check_bytes(before: int, after: int, organizer: str, limit: Optional[int]) -> None:
    """
    Refuse a write that leaves C{organizer} storing more than C{limit}
    bytes of calendars and more than before (so an organizer over a
    lowered limit may still shrink or stay).

    @raise LimitExceededError: if so.
    """
    if limit is not None and after > limit and after > before:
        raise LimitExceededError(
            f"{organizer} would store {after} bytes of calendars (at most {limit})"
        )


@implementer(ICalendarStore)
class MemoryCalendarStore:
    """
    Calendar entries in a dictionary keyed by owner, then UID.  An entry
    that refers to a conference holds the very C{bytes} object of the
    conference's record, so every holder shares one copy.
    """

    def __init__(self) -> None:
        self._entries: Dict[str, Dict[str, CalendarEntry]] = {}
        #: conference URI -> the (owner, UID) of the entries referring to it.
        self._held: Dict[str, Set[Tuple[str, str]]] = {}
        #: organizer -> bytes of the conferences they organize (set by the
        #: conference store sharing this one).
        self._conference_bytes: Callable[[str], int] = lambda organizer: 0

    def entries(self, owner: str) -> Deferred[List[CalendarEntry]]:
        """
        See L{ICalendarStore.entries}.
        """
        return succeed([e for uid, e in sorted(self._entries.get(owner, {}).items())])

    def put_entry(self, entry: CalendarEntry) -> Deferred[None]:
        """
        See L{ICalendarStore.put_entry}.
        """
        return self.put_entries(entry.owner, [entry])

    def put_entries(
        self,
        owner: str,
        entries: Sequence[CalendarEntry],
        *,
        max_organizer_bytes: Optional[int] = None,
    ) -> Deferred[None]:
        """
        See L{ICalendarStore.put_entries}.
        """
        for entry in entries:
            if entry.owner != owner:
                return fail(StoreError(f"entry of {entry.owner} given in an update of {owner}"))
        if max_organizer_bytes is not None:
            before = self.organizer_bytes(owner)
            current = self._entries.get(owner, {})
            after = before
            for entry in {e.uid: e for e in entries}.values():
                old = current.get(entry.uid)
                after += len(entry.calendar) - (own_size(old) if old is not None else 0)
            try:
                check_bytes(before, after, owner, max_organizer_bytes)
            except LimitExceededError as e:
                return fail(e)
        for entry in entries:
            self._forget(owner, entry.uid)
            own = replace(entry, conference=None)
            self._entries.setdefault(owner, {})[entry.uid] = own
        return succeed(None)

    def remove_entry(self, owner: str, uid: str) -> Deferred[bool]:
        """
        See L{ICalendarStore.remove_entry}.
        """
        return succeed(self._forget(owner, uid))

    def organizer_bytes(self, organizer: str) -> int:
        """
        The bytes C{organizer} stores: their conferences' calendars and
        their own entries' (entries referring to a conference count none).
        """
        own = sum(own_size(e) for e in self._entries.get(organizer, {}).values())
        return own + self._conference_bytes(organizer)

    def _forget(self, owner: str, uid: str) -> bool:
        current = self._entries.get(owner, {})
        gone = current.pop(uid, None)
        if not current:
            self._entries.pop(owner, None)
        if gone is not None and gone.conference is not None:
            self._held.get(gone.conference, set()).discard((owner, uid))
        return gone is not None

    def _refresh(self, uri: str, calendar: bytes) -> None:
        """
        Point the entries referring to C{uri} at its new calendar.
        """
        for owner, uid in self._held.get(uri, ()):
            entry = self._entries[owner][uid]
            self._entries[owner][uid] = replace(entry, calendar=calendar)

    def _hold(self, uri: str, calendar: bytes, holders: Holders, now: float) -> int:
        """
        See L{IConferenceStore.set_holders}; C{calendar} is the record's.
        """
        current = set(self._held.get(uri, ()))
        wanted = {(owner, uid) for uid, owners in holders.items() for owner in owners}
        changed = 0
        for owner, uid in sorted(current - wanted):
            changed += self._forget(owner, uid)
        for owner, uid in sorted(wanted - current):
            existing = self._entries.get(owner, {}).get(uid)
            if existing is not None and existing.source != "conference":
                continue  # the owner's own published object of that UID
            self._forget(owner, uid)
            entry = CalendarEntry(owner, uid, calendar, "conference", now, conference=uri)
            self._entries.setdefault(owner, {})[uid] = entry
            self._held.setdefault(uri, set()).add((owner, uid))
            changed += 1
        if not self._held.get(uri, True):
            del self._held[uri]
        return changed


def own_size(entry: CalendarEntry) -> int:
    """
    The bytes an entry stores itself: none for one referring to a
    conference.
    """
    return 0 if entry.conference is not None else len(entry.calendar)


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
