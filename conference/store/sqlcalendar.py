# -*- test-case-name: tests.unit.store.test_sqlite,tests.loopback.test_postgresql -*-
"""
Calendar entries over SQL (the C{calendar_entries} table), and the two
pieces of it the conference store uses inside its own transactions: the
entries that refer to a conference (L{hold}) and the bytes an organizer
stores (L{organizer_bytes}).

An entry that refers to a conference stores no calendar of its own (an
empty one) and reads the conference's through a join, so a booking with
a thousand local attendees is stored once, not a thousand times.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence, Set, Tuple

from twisted.internet.defer import Deferred, fail
from zope.interface import implementer

from conference.interfaces import ICalendarStore
from conference.records import CalendarEntry, Holders, StoreError
from conference.store.database import Cursor, Database
from conference.store.memory import check_bytes

#: The source of the entries L{hold} writes.
CONFERENCE_SOURCE = "conference"

SQL = Callable[[str], str]


def organizer_bytes(cursor: Cursor, sql: SQL, organizer: str) -> int:
    """
    The bytes C{organizer} stores: the calendars of the conferences they
    organize and of their own calendar entries (one referring to a
    conference stores none).
    """
    cursor.execute(
        sql("SELECT coalesce(sum(length(calendar)), 0) FROM conferences WHERE organizer = ?"),
        (organizer,),
    )
    total = int(cursor.fetchone()[0])
    cursor.execute(
        sql("SELECT coalesce(sum(length(calendar)), 0) FROM calendar_entries WHERE owner = ?"),
        (organizer,),
    )
    return total + int(cursor.fetchone()[0])


def hold(cursor: Cursor, sql: SQL, uri: str, holders: Holders, now: float) -> int:
    """
    Make the entries referring to conference C{uri} exactly C{holders}
    (see L{conference.interfaces.IConferenceStore.set_holders}), in the
    caller's transaction; writes nothing when they already are.

    @return: how many entries were added or removed.
    """
    cursor.execute(sql("SELECT owner, uid FROM calendar_entries WHERE conference = ?"), (uri,))
    current: Set[Tuple[str, str]] = {(row[0], row[1]) for row in cursor.fetchall()}
    wanted = {(owner, uid) for uid, owners in holders.items() for owner in owners}
    gone = sorted(current - wanted)
    new = sorted(wanted - current)
    if gone:
        cursor.executemany(
            sql("DELETE FROM calendar_entries WHERE owner = ? AND uid = ? AND conference = ?"),
            [(owner, uid, uri) for owner, uid in gone],
        )
    added = 0
    for owner, uid in new:
        # An owner's own published object of that UID is left alone.
        cursor.execute(
            sql(
                "INSERT INTO calendar_entries (owner, uid, calendar, source, updated, conference) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (owner, uid) DO UPDATE SET "
                "calendar = excluded.calendar, updated = excluded.updated, "
                "conference = excluded.conference WHERE calendar_entries.source = ?"
            ),
            (owner, uid, b"", CONFERENCE_SOURCE, now, uri, CONFERENCE_SOURCE),
        )
        added += max(cursor.rowcount, 0)
    return len(gone) + added


@implementer(ICalendarStore)
class SQLCalendarStore:
    """
    Calendar entries in the C{calendar_entries} table.
    """

    def __init__(self, database: Database) -> None:
        self._db = database
        sql = self._sql = database.dialect.sql
        self._upsert = sql(
            "INSERT INTO calendar_entries (owner, uid, calendar, source, updated, conference) "
            "VALUES (?, ?, ?, ?, ?, NULL) ON CONFLICT (owner, uid) DO UPDATE SET "
            "calendar = excluded.calendar, source = excluded.source, "
            "updated = excluded.updated, conference = NULL"
        )

    def entries(self, owner: str) -> Deferred[List[CalendarEntry]]:
        """
        See L{ICalendarStore.entries}.
        """

        def run(cursor: Cursor) -> List[CalendarEntry]:
            cursor.execute(
                self._sql(
                    "SELECT e.uid, coalesce(c.calendar, e.calendar), e.source, e.updated, "
                    "e.conference FROM calendar_entries e LEFT JOIN conferences c "
                    "ON c.uri = e.conference WHERE e.owner = ? ORDER BY e.uid"
                ),
                (owner,),
            )
            return [
                CalendarEntry(owner, row[0], bytes(row[1]), row[2], float(row[3]), row[4])
                for row in cursor.fetchall()
            ]

        return self._db.read(run)

    def put_entry(self, entry: CalendarEntry) -> Deferred[None]:
        """
        See L{ICalendarStore.put_entry}.
        """

        def run(cursor: Cursor) -> None:
            cursor.execute(self._upsert, self._values(entry))

        return self._db.write_statement(run)

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
        return self._db.write(self._put_entries, owner, list(entries), max_organizer_bytes)

    def _put_entries(
        self, cursor: Cursor, owner: str, entries: List[CalendarEntry], limit: Optional[int]
    ) -> None:
        if limit is not None:
            self._db.dialect.lock(cursor, "organizer:" + owner)
            before = organizer_bytes(cursor, self._sql, owner)
            after = before
            for entry in {e.uid: e for e in entries}.values():
                cursor.execute(
                    self._sql(
                        "SELECT length(calendar) FROM calendar_entries WHERE owner = ? AND uid = ?"
                    ),
                    (owner, entry.uid),
                )
                row = cursor.fetchone()
                after += len(entry.calendar) - (int(row[0]) if row is not None else 0)
            check_bytes(before, after, owner, limit)
        if entries:
            cursor.executemany(self._upsert, [self._values(e) for e in entries])

    @staticmethod
    def _values(entry: CalendarEntry) -> Tuple[Any, ...]:
        return (entry.owner, entry.uid, entry.calendar, entry.source, entry.updated)

    def remove_entry(self, owner: str, uid: str) -> Deferred[bool]:
        """
        See L{ICalendarStore.remove_entry}.
        """

        def run(cursor: Cursor) -> bool:
            cursor.execute(
                self._sql("DELETE FROM calendar_entries WHERE owner = ? AND uid = ?"),
                (owner, uid),
            )
            return cursor.rowcount > 0

        return self._db.write_statement(run)


__all__ = ["SQLCalendarStore", "check_bytes", "hold", "organizer_bytes"]
