# -*- test-case-name: tests.unit.store.test_sqlite,tests.loopback.test_postgresql -*-
"""
The store interfaces over SQL, written once for SQLite and PostgreSQL
against a L{Database} and its L{Dialect}.

Every operation is one transaction (one thread hop, few round trips);
read-modify-write operations first take the dialect's lock on the key they
change, so concurrent writers, also from other server processes sharing
the database, run as if one after the other.
"""

from __future__ import annotations

import json
from typing import (
    Any,
    Collection,
    Dict,
    FrozenSet,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
)

from twisted.internet.defer import Deferred, fail
from zope.interface import implementer

from conference.interfaces import (
    IBindingStore,
    IConferenceStore,
    IRegistrationStore,
)
from conference.records import (
    BindingRecord,
    ConferenceRecord,
    ConflictError,
    Holders,
    LimitExceededError,
    RegistrationBinding,
    StoreError,
)
from conference.store.changes import BINDING, CONFERENCE, DISPOSITIONS, Change
from conference.store.database import Cursor, Database
from conference.store.memory import check_bytes, check_upserts, over_limit, registration_order
from conference.store.sqlcalendar import hold, organizer_bytes

_CONFERENCE_COLUMNS = (
    "uri, uid, organizer, calendar, sequence, state, settings, version, created, updated, owner"
)


def _conference(row: Sequence[Any]) -> ConferenceRecord:
    return ConferenceRecord(
        uri=row[0],
        uid=row[1],
        organizer=row[2],
        calendar=bytes(row[3]),
        sequence=int(row[4]),
        state=row[5],
        settings=dict(json.loads(row[6])),
        version=int(row[7]),
        created=float(row[8]),
        updated=float(row[9]),
        owner=row[10],
    )


class _Limits(NamedTuple):
    """
    The limits one L{SQLConferenceStore.put} checks: conferences and bytes
    per organizer (L{None}: no limit).
    """

    conferences: Optional[int]
    size: Optional[int]


@implementer(IConferenceStore)
class SQLConferenceStore:
    """
    Conferences in the C{conferences} table.
    """

    def __init__(self, database: Database) -> None:
        self._db = database
        self._sql = database.dialect.sql

    def get(self, uri: str) -> Deferred[Optional[ConferenceRecord]]:
        """
        See L{IConferenceStore.get}.
        """
        return self._db.read(self._one, "uri", uri)

    def get_by_uid(self, uid: str) -> Deferred[Optional[ConferenceRecord]]:
        """
        See L{IConferenceStore.get_by_uid}.
        """
        return self._db.read(self._one, "uid", uid)

    def _one(self, cursor: Cursor, column: str, value: str) -> Optional[ConferenceRecord]:
        cursor.execute(
            self._sql(f"SELECT {_CONFERENCE_COLUMNS} FROM conferences WHERE {column} = ?"),
            (value,),
        )
        row = cursor.fetchone()
        return None if row is None else _conference(row)

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
        limits = _Limits(max_per_organizer, max_organizer_bytes)
        return self._db.write(self._put, record, expected_version, limits, holders)

    def _put(
        self,
        cursor: Cursor,
        record: ConferenceRecord,
        expected_version: Optional[int],
        limits: _Limits,
        holders: Optional[Holders],
    ) -> ConferenceRecord:
        dialect = self._db.dialect
        max_per_organizer = limits.conferences
        if max_per_organizer is not None or limits.size is not None:
            dialect.lock(cursor, "organizer:" + record.organizer)
        cursor.execute(
            self._sql("SELECT version, organizer, length(calendar) FROM conferences WHERE uri = ?")
            + dialect.for_update,
            (record.uri,),
        )
        row = cursor.fetchone()
        version = 0 if row is None else int(row[0])
        if expected_version is not None and expected_version != version:
            raise ConflictError(
                f"conference {record.uri} is at version {version}, not {expected_version}"
            )
        if max_per_organizer is not None and (row is None or row[1] != record.organizer):
            cursor.execute(
                self._sql("SELECT count(*) FROM conferences WHERE organizer = ?"),
                (record.organizer,),
            )
            owned = int(cursor.fetchone()[0])
            if owned + 1 > max_per_organizer:
                raise LimitExceededError(
                    f"{record.organizer} already has {owned} conferences "
                    f"(at most {max_per_organizer})"
                )
        if limits.size is not None:
            before = organizer_bytes(cursor, self._sql, record.organizer)
            mine = row is not None and row[1] == record.organizer
            after = before - (int(row[2]) if mine else 0) + len(record.calendar)
            check_bytes(before, after, record.organizer, limits.size)
        values = (
            record.uid,
            record.organizer,
            record.calendar,
            record.sequence,
            record.state,
            json.dumps(record.settings, sort_keys=True),
            version + 1,
            record.created,
            record.updated,
            record.owner,
            record.uri,
        )
        if row is None:
            statement = (
                "INSERT INTO conferences (uid, organizer, calendar, sequence, state, settings, "
                "version, created, updated, owner, uri) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            )
        else:
            statement = (
                "UPDATE conferences SET uid = ?, organizer = ?, calendar = ?, sequence = ?, "
                "state = ?, settings = ?, version = ?, created = ?, updated = ?, owner = ? "
                "WHERE uri = ?"
            )
        try:
            cursor.execute(self._sql(statement), values)
        except dialect.integrity_errors as e:
            raise ConflictError(
                f"conference {record.uri} (UID {record.uid!r}) conflicts with a stored one"
            ) from e
        if holders is not None:
            hold(cursor, self._sql, record.uri, holders, record.updated)
        dialect.announce(cursor, Change(CONFERENCE, record.uri, self._db.origin))
        return ConferenceRecord(
            uri=record.uri,
            uid=record.uid,
            organizer=record.organizer,
            calendar=record.calendar,
            sequence=record.sequence,
            state=record.state,
            settings=dict(record.settings),
            version=version + 1,
            created=record.created,
            updated=record.updated,
            owner=record.owner,
        )

    def set_holders(
        self, uri: str, expected_version: int, holders: Holders, now: float
    ) -> Deferred[int]:
        """
        See L{IConferenceStore.set_holders}.
        """
        return self._db.write(self._set_holders, uri, expected_version, dict(holders), now)

    def _set_holders(
        self, cursor: Cursor, uri: str, expected_version: int, holders: Holders, now: float
    ) -> int:
        lock = self._db.dialect.for_update
        cursor.execute(self._sql("SELECT version FROM conferences WHERE uri = ?") + lock, (uri,))
        row = cursor.fetchone()
        version = 0 if row is None else int(row[0])
        if row is None or version != expected_version:
            raise ConflictError(f"conference {uri} is at version {version}, not {expected_version}")
        return hold(cursor, self._sql, uri, holders, now)

    def list(
        self, organizer: Optional[str] = None, state: Optional[str] = None
    ) -> Deferred[List[ConferenceRecord]]:
        """
        See L{IConferenceStore.list}.
        """
        conditions = []
        params = []
        if organizer is not None:
            conditions.append("organizer = ?")
            params.append(organizer)
        if state is not None:
            conditions.append("state = ?")
            params.append(state)
        where = (" WHERE " + " AND ".join(conditions)) if conditions else ""
        query = self._sql(f"SELECT {_CONFERENCE_COLUMNS} FROM conferences{where} ORDER BY uri")

        def run(cursor: Cursor) -> List[ConferenceRecord]:
            cursor.execute(query, params)
            return [_conference(row) for row in cursor.fetchall()]

        return self._db.read(run)

    def count_by_organizer(self, organizer: str) -> Deferred[int]:
        """
        See L{IConferenceStore.count_by_organizer}.
        """

        def run(cursor: Cursor) -> int:
            cursor.execute(
                self._sql("SELECT count(*) FROM conferences WHERE organizer = ?"), (organizer,)
            )
            return int(cursor.fetchone()[0])

        return self._db.read(run)

    def delete(self, uri: str) -> Deferred[bool]:
        """
        See L{IConferenceStore.delete}.
        """

        def run(cursor: Cursor) -> bool:
            cursor.execute(self._sql("DELETE FROM conferences WHERE uri = ?"), (uri,))
            deleted = cursor.rowcount > 0
            if deleted:
                self._db.dialect.announce(cursor, Change(CONFERENCE, uri, self._db.origin))
            return deleted

        return self._db.write_statement(run)


@implementer(IRegistrationStore)
class SQLRegistrationStore:
    """
    Registered contacts in the C{registrations} table.
    """

    def __init__(self, database: Database) -> None:
        self._db = database
        self._sql = database.dialect.sql
        self._select = self._sql(
            "SELECT contact, expires_at, q, call_id, cseq FROM registrations "
            "WHERE aor = ? AND expires_at > ?"
        )

    def _live(self, cursor: Cursor, aor: str, now: float) -> List[RegistrationBinding]:
        cursor.execute(self._select, (aor, now))
        found = [
            RegistrationBinding(
                row[0], float(row[1]), None if row[2] is None else float(row[2]), row[3], row[4]
            )
            for row in cursor.fetchall()
        ]
        return sorted(found, key=registration_order)

    def get_bindings(self, aor: str, now: float) -> Deferred[List[RegistrationBinding]]:
        """
        See L{IRegistrationStore.get_bindings}.
        """
        return self._db.read(self._live, aor, now)

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
        return self._db.write(self._set, aor, list(bindings), list(removed), now)

    def _set(
        self,
        cursor: Cursor,
        aor: str,
        bindings: List[RegistrationBinding],
        removed: List[str],
        now: float,
    ) -> List[RegistrationBinding]:
        self._db.dialect.lock(cursor, "registration:" + aor)
        if removed:
            cursor.executemany(
                self._sql("DELETE FROM registrations WHERE aor = ? AND contact = ?"),
                [(aor, contact) for contact in removed],
            )
        if bindings:
            cursor.executemany(
                self._sql(
                    "INSERT INTO registrations (aor, contact, expires_at, q, call_id, cseq) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (aor, contact) DO UPDATE SET "
                    "expires_at = excluded.expires_at, q = excluded.q, "
                    "call_id = excluded.call_id, cseq = excluded.cseq"
                ),
                [(aor, b.contact, b.expires_at, b.q, b.call_id, b.cseq) for b in bindings],
            )
        cursor.execute(
            self._sql("DELETE FROM registrations WHERE aor = ? AND expires_at <= ?"), (aor, now)
        )
        return self._live(cursor, aor, now)

    def purge(self, now: float) -> Deferred[int]:
        """
        See L{IRegistrationStore.purge}.
        """

        def run(cursor: Cursor) -> int:
            cursor.execute(self._sql("DELETE FROM registrations WHERE expires_at <= ?"), (now,))
            return cursor.rowcount

        return self._db.write_statement(run)


_BINDING_COLUMNS = (
    "owner, disposition, uri, expires_at, etag, one_time, issuer, public, data, "
    "content_type, created"
)


def _binding(row: Sequence[Any]) -> BindingRecord:
    return BindingRecord(
        owner=row[0],
        disposition=row[1],
        uri=row[2],
        expires_at=float(row[3]),
        etag=row[4],
        one_time=bool(row[5]),
        issuer=row[6],
        public=bool(row[7]),
        data=None if row[8] is None else bytes(row[8]),
        content_type=row[9],
        created=float(row[10]),
    )


def _binding_values(b: BindingRecord) -> Tuple[Any, ...]:
    return (
        b.owner,
        b.disposition,
        b.uri,
        b.expires_at,
        b.etag,
        b.one_time,
        b.issuer,
        b.public,
        b.data,
        b.content_type,
        b.created,
    )


class _Change(NamedTuple):
    """
    The arguments of one L{SQLBindingStore.apply}, as it passes them to its
    transaction.
    """

    removals: List[Tuple[str, Optional[str]]]
    upserts: List[BindingRecord]
    now: float
    max_bindings: int
    expected_etags: Dict[Tuple[str, str], str]


@implementer(IBindingStore)
class SQLBindingStore:
    """
    BIND bindings in the C{bindings} table (clustered by owner in SQLite),
    per-owner dispositions in C{binding_owners}.
    """

    def __init__(self, database: Database) -> None:
        self._db = database
        sql = self._sql = database.dialect.sql
        self._select = sql(
            f"SELECT {_BINDING_COLUMNS} FROM bindings WHERE owner = ? AND expires_at > ? "
            "ORDER BY disposition, uri"
        )
        self._upsert = sql(
            f"INSERT INTO bindings ({_BINDING_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (owner, disposition, uri) DO UPDATE SET "
            "expires_at = excluded.expires_at, etag = excluded.etag, "
            "one_time = excluded.one_time, issuer = excluded.issuer, "
            "public = excluded.public, data = excluded.data, "
            "content_type = excluded.content_type, created = excluded.created"
        )

    def _live(
        self,
        cursor: Cursor,
        owner: str,
        now: float,
        dispositions: Optional[FrozenSet[str]] = None,
    ) -> List[BindingRecord]:
        cursor.execute(self._select, (owner, now))
        found = [_binding(row) for row in cursor.fetchall()]
        if dispositions is not None:
            found = [b for b in found if b.disposition in dispositions]
        return found

    def bindings(
        self, owner: str, now: float, dispositions: Optional[Collection[str]] = None
    ) -> Deferred[List[BindingRecord]]:
        """
        See L{IBindingStore.bindings}.
        """
        wanted = None if dispositions is None else frozenset(dispositions)
        return self._db.read(self._live, owner, now, wanted)

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
        change = _Change(
            list(removals), list(upserts), now, max_bindings, dict(expected_etags or {})
        )
        return self._db.write(self._apply, owner, change)

    def _apply(self, cursor: Cursor, owner: str, change: _Change) -> List[BindingRecord]:
        removals, upserts, now = change.removals, change.upserts, change.now
        sql = self._sql
        self._db.dialect.lock(cursor, "binding:" + owner)
        before = {(b.disposition, b.uri): b.etag for b in self._live(cursor, owner, now)}
        for key, etag in change.expected_etags.items():
            if before.get(key) != etag:
                raise ConflictError(f"binding {key[0]} {key[1]} of {owner} is not at etag {etag!r}")
        everything = [(owner, d) for d, uri in removals if uri is None]
        some = [(owner, d, uri) for d, uri in removals if uri is not None]
        if everything:
            cursor.executemany(
                sql("DELETE FROM bindings WHERE owner = ? AND disposition = ?"), everything
            )
        if some:
            cursor.executemany(
                sql("DELETE FROM bindings WHERE owner = ? AND disposition = ? AND uri = ?"), some
            )
        if upserts:
            cursor.executemany(self._upsert, [_binding_values(b) for b in upserts])
        after = self._live(cursor, owner, now)
        if len(after) > change.max_bindings and len(after) > len(before):
            raise over_limit(owner, len(after), change.max_bindings)
        self._db.dialect.announce(cursor, Change(BINDING, owner, self._db.origin))
        return after

    def take_one_time(
        self, owner: str, disposition: str, uri: str, now: Optional[float] = None
    ) -> Deferred[bool]:
        """
        See L{IBindingStore.take_one_time}.
        """
        statement = "DELETE FROM bindings WHERE owner = ? AND disposition = ? AND uri = ? AND "
        statement += "one_time = ?"
        params: List[Any] = [owner, disposition, uri, True]
        if now is not None:
            statement += " AND expires_at > ?"
            params.append(now)
        query = self._sql(statement)

        def run(cursor: Cursor) -> bool:
            cursor.execute(query, params)
            return cursor.rowcount == 1

        return self._db.write_statement(run)

    def purge(self, now: float) -> Deferred[int]:
        """
        See L{IBindingStore.purge}.
        """

        def run(cursor: Cursor) -> int:
            cursor.execute(self._sql("DELETE FROM bindings WHERE expires_at <= ?"), (now,))
            return cursor.rowcount

        return self._db.write_statement(run)

    def owner_dispositions(self, owner: str) -> Deferred[Optional[FrozenSet[str]]]:
        """
        See L{IBindingStore.owner_dispositions}.
        """

        def run(cursor: Cursor) -> Optional[FrozenSet[str]]:
            cursor.execute(
                self._sql("SELECT dispositions FROM binding_owners WHERE owner = ?"), (owner,)
            )
            row = cursor.fetchone()
            if row is None or row[0] is None:
                return None
            return frozenset(d for d in str(row[0]).split("\n") if d)

        return self._db.read(run)

    def set_owner_dispositions(
        self, owner: str, dispositions: Optional[Collection[str]]
    ) -> Deferred[None]:
        """
        See L{IBindingStore.set_owner_dispositions}.
        """
        if dispositions is None:
            statement = self._sql("DELETE FROM binding_owners WHERE owner = ?")
            params: Tuple[Any, ...] = (owner,)
        else:
            bad = [d for d in dispositions if not d or "\n" in d]
            if bad:
                return fail(StoreError(f"bad disposition names {bad!r}"))
            statement = self._sql(
                "INSERT INTO binding_owners (owner, dispositions) VALUES (?, ?) "
                "ON CONFLICT (owner) DO UPDATE SET dispositions = excluded.dispositions"
            )
            params = (owner, "\n".join(sorted(set(dispositions))))

        def run(cursor: Cursor) -> None:
            cursor.execute(statement, params)
            self._db.dialect.announce(cursor, Change(DISPOSITIONS, owner, self._db.origin))

        return self._db.write(run)
