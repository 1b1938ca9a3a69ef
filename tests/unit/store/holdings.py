# -*- test-case-name: tests.unit.store -*-
"""
Contract tests, run against every backend, for what hardening added to the
stores: calendar entries that refer to their conference (one stored copy),
written with it in one transaction, and the per-organizer
byte cap; plus, for the SQL backends, that a write failing half
way (disk full) leaves nothing behind.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from typing import Any, List, Sequence, Tuple

from conference.records import (
    CalendarEntry,
    ConflictError,
    LimitExceededError,
    StoreError,
)
from conference.store.database import Database
from conference.store.stores import Stores
from tests.unit.store.contracts import ALICE, BOB, CONF, NOW, XCAL, StoreBackend, conference, entry
from tests.unit.store.faults import Faults, faulty

CAROL = "sip:carol@example.com"
UID = "uid-1"


def held(owner: str, calendar: bytes = XCAL, uid: str = UID, uri: str = CONF) -> CalendarEntry:
    """
    The entry C{owner} gets for holding booking C{uid} of conference C{uri}.
    """
    return CalendarEntry(owner, uid, calendar, "conference", NOW - 0.25, uri)


#: Rows to insert: C{(statement, parameters)} with C{?} placeholders.
Rows = List[Tuple[str, Sequence[Any]]]

#: Rows a version-1 database may hold: a conference, copies of it in two
#: calendars (one of its UID, one of a second booking's), a published
#: entry, as C{(statement, parameters)} with C{?} placeholders.
LEGACY_ROWS: Rows = [
    (
        "INSERT INTO conferences (uri, uid, organizer, calendar, sequence, state, settings, "
        "version, created, updated) VALUES (?, ?, ?, ?, 0, 'scheduled', '{}', 1, 0, 0)",
        (CONF, UID, ALICE, XCAL),
    ),
    (
        "INSERT INTO calendar_entries (owner, uid, calendar, source, updated) "
        "VALUES (?, ?, ?, 'conference', 1)",
        (BOB, UID, b"<copy/>"),
    ),
    (
        "INSERT INTO calendar_entries (owner, uid, calendar, source, updated) "
        "VALUES (?, ?, ?, 'conference', 1)",
        (BOB, "second-booking", b"<copy/>"),
    ),
    (
        "INSERT INTO calendar_entries (owner, uid, calendar, source, updated) "
        "VALUES (?, ?, ?, 'publish', 1)",
        (ALICE, UID, b"<mine/>"),
    ),
]


#: Run on a version-2 database after L{LEGACY_ROWS}: the conference's
#: owner (a version-2 column) is not its organizer.
V2_OWNER: Tuple[str, Sequence[Any]] = (
    "UPDATE conferences SET owner = ? WHERE uri = ?",
    (CAROL, CONF),
)


async def check_upgraded(test: Any, stores: Stores, owner: str = ALICE) -> None:
    """
    The L{LEGACY_ROWS} after the upgrade to version 3: the copy of the
    conference's UID refers to it, the others keep their own calendars,
    and the conference is still C{owner}'s.
    """
    record = await stores.conferences.get(CONF)
    assert record is not None
    test.assertEqual((record.organizer, record.owner), (ALICE, owner))
    test.assertEqual(
        await stores.calendars.entries(BOB),
        [
            CalendarEntry(BOB, "second-booking", b"<copy/>", "conference", 1.0),
            CalendarEntry(BOB, UID, XCAL, "conference", 1.0, CONF),
        ],
    )
    test.assertEqual(
        await stores.calendars.entries(ALICE), [CalendarEntry(ALICE, UID, b"<mine/>", "publish", 1)]
    )


class HoldingsContract(StoreBackend):
    """
    L{conference.interfaces.IConferenceStore.put} with C{holders} and
    C{max_organizer_bytes}, L{set_holders}, and
    L{conference.interfaces.ICalendarStore.put_entries}.
    """

    async def test_holders_refer(self) -> None:
        """
        A put with holders gives each holder an entry carrying the
        conference's calendar, stored once.
        """
        stores = await self.open_stores()
        await stores.conferences.put(conference(), 0, holders={UID: [ALICE, BOB]})
        self.assertEqual(await stores.calendars.entries(BOB), [held(BOB)])
        self.assertEqual(await stores.calendars.entries(ALICE), [held(ALICE)])
        self.assertEqual(await stores.calendars.entries(CAROL), [])

    async def test_holders_follow_updates(self) -> None:
        """
        Entries show the conference's current calendar after an update
        that names no holders; holders given again replace the old set.
        """
        stores = await self.open_stores()
        await stores.conferences.put(conference(), 0, holders={UID: [ALICE, BOB]})
        await stores.conferences.put(conference(calendar=b"<v2/>"), 1)
        self.assertEqual(await stores.calendars.entries(BOB), [held(BOB, b"<v2/>")])
        await stores.conferences.put(conference(calendar=b"<v3/>"), 2, holders={UID: [CAROL]})
        self.assertEqual(await stores.calendars.entries(BOB), [])
        self.assertEqual(await stores.calendars.entries(ALICE), [])
        self.assertEqual(await stores.calendars.entries(CAROL), [held(CAROL, b"<v3/>")])

    async def test_set_holders(self) -> None:
        """
        set_holders counts what it changed (nothing the second time) and
        refuses a stale version, changing nothing.
        """
        stores = await self.open_stores()
        await stores.conferences.put(conference(), 0)
        self.assertEqual(await stores.conferences.set_holders(CONF, 1, {UID: [BOB]}, NOW), 1)
        self.assertEqual(await stores.conferences.set_holders(CONF, 1, {UID: [BOB]}, NOW), 0)
        entries = await stores.calendars.entries(BOB)
        self.assertEqual(entries, [replace(held(BOB), updated=NOW)])
        stale = stores.conferences.set_holders(CONF, 7, {UID: []}, NOW)
        await self.assertFailure(stale, ConflictError)
        absent = stores.conferences.set_holders("sip:none@x", 1, {UID: [BOB]}, NOW)
        await self.assertFailure(absent, ConflictError)
        self.assertEqual(await stores.calendars.entries(BOB), entries)
        self.assertEqual(await stores.conferences.set_holders(CONF, 1, {UID: []}, NOW), 1)
        self.assertEqual(await stores.calendars.entries(BOB), [])

    async def test_published_left_alone(self) -> None:
        """
        An owner's own published object of the booking's UID is neither
        replaced nor removed by the conference's holders.
        """
        stores = await self.open_stores()
        mine = entry(BOB, UID)
        await stores.calendars.put_entry(mine)
        await stores.conferences.put(conference(), 0, holders={UID: [BOB]})
        self.assertEqual(await stores.calendars.entries(BOB), [mine])
        await stores.conferences.set_holders(CONF, 1, {UID: []}, NOW)
        self.assertEqual(await stores.calendars.entries(BOB), [mine])

    async def test_own_copy_replaces_reference(self) -> None:
        """
        put_entry over an entry that referred to a conference stores its
        own copy, which no longer follows the conference.
        """
        stores = await self.open_stores()
        await stores.conferences.put(conference(), 0, holders={UID: [BOB]})
        mine = entry(BOB, UID, conference=CONF)
        await stores.calendars.put_entry(mine)
        await stores.conferences.put(conference(calendar=b"<v2/>"), 1, holders={UID: []})
        self.assertEqual(await stores.calendars.entries(BOB), [replace(mine, conference=None)])

    async def test_delete_removes_holders(self) -> None:
        """
        Deleting a conference removes the entries that referred to it.
        """
        stores = await self.open_stores()
        await stores.conferences.put(conference(), 0, holders={UID: [BOB]})
        await stores.calendars.put_entry(entry(BOB, "other"))
        self.assertTrue(await stores.conferences.delete(CONF))
        self.assertEqual(await stores.calendars.entries(BOB), [entry(BOB, "other")])

    async def test_holders_durable(self) -> None:
        """
        Entries that refer to a conference survive closing and reopening.
        """
        stores = await self.open_stores()
        await stores.conferences.put(conference(), 0, holders={UID: [BOB]})
        again = await self.reopen(stores)
        self.assertEqual(await again.calendars.entries(BOB), [held(BOB)])

    async def test_organizer_bytes(self) -> None:
        """
        A write that takes the organizer's calendars (conferences and own
        entries) over max_organizer_bytes is refused and changes nothing;
        one that does not grow them passes even over the cap.
        """
        stores = await self.open_stores()
        store = stores.conferences
        size = len(XCAL)
        cap = 2 * size + 10
        await store.put(conference("sip:a@x", "u-a"), 0, max_organizer_bytes=cap)
        await stores.calendars.put_entries(ALICE, [entry(ALICE)], max_organizer_bytes=cap)
        third = store.put(conference("sip:b@x", "u-b"), 0, max_organizer_bytes=cap)
        failure = await self.assertFailure(third, LimitExceededError)
        self.assertIn(ALICE, str(failure))
        self.assertIsNone(await store.get("sip:b@x"))
        more = stores.calendars.put_entries(ALICE, [entry(ALICE, "e-2")], max_organizer_bytes=cap)
        await self.assertFailure(more, LimitExceededError)
        self.assertEqual(await stores.calendars.entries(ALICE), [entry(ALICE)])
        same = await store.put(conference("sip:a@x", "u-a", sequence=5), 1, max_organizer_bytes=1)
        self.assertEqual(same.version, 2)
        other = await store.put(conference("sip:b@x", "u-b", BOB), 0, max_organizer_bytes=cap)
        self.assertEqual(other.organizer, BOB)

    async def test_references_cost_nothing(self) -> None:
        """
        Holding a booking costs the holder none of their byte budget.
        """
        stores = await self.open_stores()
        await stores.conferences.put(conference(), 0, holders={UID: [BOB]})
        await stores.calendars.put_entries(BOB, [entry(BOB)], max_organizer_bytes=len(XCAL))
        self.assertEqual(len(await stores.calendars.entries(BOB)), 2)

    async def test_put_entries(self) -> None:
        """
        put_entries stores several entries of one owner, or none of them
        when one names another owner.
        """
        stores = await self.open_stores()
        both = [entry(BOB, "a"), entry(BOB, "b", source="conference")]
        await stores.calendars.put_entries(BOB, both)
        self.assertEqual(await stores.calendars.entries(BOB), both)
        wrong = stores.calendars.put_entries(BOB, [entry(BOB, "c"), entry(ALICE, "d")])
        await self.assertFailure(wrong, StoreError)
        self.assertEqual(await stores.calendars.entries(BOB), both)
        self.assertEqual(await stores.calendars.entries(ALICE), [])


class AtomicWriteContract(StoreBackend):
    """
    A SQL backend's conference write with holders is one transaction: a
    fault between its statements (here the driver's disk-full error on
    the first calendar entry written, after the conference row) stores
    neither, and the same write succeeds once the fault is gone.
    """

    #: The driver error a full disk raises (overridden per backend).
    def disk_full(self) -> BaseException:
        return sqlite3.OperationalError("database or disk is full")

    async def open_database(self) -> Database:
        """
        A fresh database of the backend (closed at cleanup).
        """
        raise NotImplementedError()

    async def test_fault_between_writes(self) -> None:
        """
        A disk-full error after the conference row was written leaves no
        conference and no entry; the retry stores both.
        """
        database = await self.open_database()
        faults = Faults()
        stores = Stores.sql(faulty(database, faults), "faulty")
        faults.fail("INSERT INTO calendar_entries", self.disk_full())
        put = stores.conferences.put(conference(), 0, holders={UID: [ALICE, BOB]})
        failure = await self.assertFailure(put, StoreError)
        self.assertIn(str(self.disk_full()), str(failure))
        self.assertEqual(len(faults.hits), 1)
        self.assertIsNone(await stores.conferences.get(CONF))
        self.assertEqual(await stores.calendars.entries(ALICE), [])
        faults.clear()
        stored = await stores.conferences.put(conference(), 0, holders={UID: [ALICE, BOB]})
        self.assertEqual(stored.version, 1)
        found: List[Any] = [await stores.calendars.entries(who) for who in (ALICE, BOB)]
        self.assertEqual(found, [[held(ALICE)], [held(BOB)]])


__all__ = ["LEGACY_ROWS", "AtomicWriteContract", "HoldingsContract", "check_upgraded"]
