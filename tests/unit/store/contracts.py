# -*- test-case-name: tests.unit.store -*-
"""
One contract-test mixin per store interface, run against every backend, so
memory, SQLite and PostgreSQL keep exactly the same semantics.

A backend's test module mixes each contract with a L{StoreBackend} that
says how to open fresh stores, how to open a second, independent handle
(its own connections) on the same storage, and whether data survives a
close and reopen.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, List, Optional

from twisted.internet.defer import DeferredList
from twisted.trial.unittest import SkipTest
from zope.interface.verify import verifyObject

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
from conference.store.stores import Stores

if TYPE_CHECKING:
    from twisted.trial.unittest import TestCase

    _Base = TestCase
else:
    _Base = object

NOW = 1_700_000_000.0
ALICE = "sip:alice@example.com"
BOB = "sip:bob@example.com"
CONF = "sip:conf-1@example.com"
XCAL = b"<icalendar xmlns='urn:ietf:params:xml:ns:icalendar-2.0'>\xc3\xa9\x00\xff</icalendar>"


class StoreBackend(_Base):
    """
    How a test opens the stores of one backend; test modules override all
    of it.
    """

    #: Whether data survives closing and reopening the storage.
    durable = False

    async def open_stores(self) -> Stores:
        """
        Open stores on fresh, empty storage (closed again at cleanup).
        """
        raise NotImplementedError()

    async def open_again(self) -> Stores:
        """
        Open another handle, with its own connections, on the storage of
        the last L{open_stores} (closed again at cleanup).
        """
        raise NotImplementedError()

    async def reopen(self, stores: Stores) -> Stores:
        """
        Close C{stores} and open the same storage again, as a restarted
        server would.
        """
        if not self.durable:
            raise SkipTest(f"{type(self).__name__}: this backend is not durable")
        await stores.close()
        return await self.open_again()


def conference(
    uri: str = CONF, uid: str = "uid-1", organizer: str = ALICE, **changes: Any
) -> ConferenceRecord:
    """
    A conference record for tests.
    """
    record = ConferenceRecord(
        uri=uri,
        uid=uid,
        organizer=organizer,
        calendar=XCAL,
        sequence=2,
        settings={"max_participants": "10", "locked": "no"},
        created=NOW - 10.5,
        updated=NOW - 0.25,
        owner=organizer,
    )
    return replace(record, **changes)


class ConferenceStoreContract(StoreBackend):
    """
    L{IConferenceStore}.
    """

    async def test_interface(self) -> None:
        """
        The store provides IConferenceStore.
        """
        stores = await self.open_stores()
        self.assertTrue(verifyObject(IConferenceStore, stores.conferences))

    async def test_absent(self) -> None:
        """
        An unknown URI or UID gives None; list and count are empty.
        """
        store = (await self.open_stores()).conferences
        self.assertIsNone(await store.get(CONF))
        self.assertIsNone(await store.get_by_uid("uid-1"))
        self.assertEqual(await store.list(), [])
        self.assertEqual(await store.count_by_organizer(ALICE), 0)

    async def test_create(self) -> None:
        """
        put with expected_version 0 creates version 1, whatever version the
        record claimed, and every field round-trips.
        """
        store = (await self.open_stores()).conferences
        stored = await store.put(conference(version=57), 0)
        self.assertEqual(stored, conference(version=1))
        self.assertEqual(await store.get(CONF), stored)
        self.assertEqual(await store.get_by_uid("uid-1"), stored)

    async def test_create_only(self) -> None:
        """
        A create-only put of an existing URI is a ConflictError; nothing changes.
        """
        store = (await self.open_stores()).conferences
        stored = await store.put(conference(), 0)
        await self.assertFailure(store.put(conference(uid="uid-2", sequence=9), 0), ConflictError)
        self.assertEqual(await store.get(CONF), stored)

    async def test_uid_unique(self) -> None:
        """
        A second conference with a UID already used is a ConflictError.
        """
        store = (await self.open_stores()).conferences
        await store.put(conference(), 0)
        other = conference(uri="sip:conf-2@example.com")
        await self.assertFailure(store.put(other, 0), ConflictError)
        await self.assertFailure(store.put(other, None), ConflictError)
        self.assertIsNone(await store.get(other.uri))

    async def test_update(self) -> None:
        """
        put at the current version replaces and bumps it; at a stale version
        it is a ConflictError and nothing changes.
        """
        store = (await self.open_stores()).conferences
        await store.put(conference(), 0)
        second = await store.put(conference(sequence=3, state="cancelled"), 1)
        self.assertEqual((second.version, second.sequence, second.state), (2, 3, "cancelled"))
        await self.assertFailure(store.put(conference(sequence=4), 1), ConflictError)
        await self.assertFailure(store.put(conference(sequence=4), 3), ConflictError)
        self.assertEqual(await store.get(CONF), second)

    async def test_owner_kept_apart(self) -> None:
        """
        The owner is stored apart from the organizer: a booking by another
        organizer keeps it, and a record without one reads back without.
        """
        store = (await self.open_stores()).conferences
        await store.put(conference(), 0)
        second = await store.put(conference(organizer=BOB, owner=ALICE), 1)
        self.assertEqual((second.organizer, second.owner), (BOB, ALICE))
        self.assertEqual(await store.get(CONF), second)
        other = await store.put(conference(uri="sip:conf-2@example.com", uid="u2", owner=""), 0)
        self.assertEqual((await store.get(other.uri)), other)
        self.assertEqual(other.owner, "")

    async def test_update_absent(self) -> None:
        """
        put expecting a positive version of an absent record is a ConflictError.
        """
        store = (await self.open_stores()).conferences
        await self.assertFailure(store.put(conference(), 1), ConflictError)
        self.assertIsNone(await store.get(CONF))

    async def test_unconditional(self) -> None:
        """
        put with expected_version None creates, then replaces.
        """
        store = (await self.open_stores()).conferences
        self.assertEqual((await store.put(conference(), None)).version, 1)
        again = await store.put(conference(uid="uid-new", settings={}), None)
        self.assertEqual(again, conference(uid="uid-new", settings={}, version=2))
        self.assertIsNone(await store.get_by_uid("uid-1"))
        self.assertEqual(await store.get_by_uid("uid-new"), again)

    async def test_list(self) -> None:
        """
        list orders by URI and filters by organizer and state.
        """
        store = (await self.open_stores()).conferences
        c = await store.put(conference("sip:c@x", "u-c", BOB), 0)
        a = await store.put(conference("sip:a@x", "u-a", ALICE), 0)
        b = await store.put(conference("sip:b@x", "u-b", ALICE, state="cancelled"), 0)
        self.assertEqual(await store.list(), [a, b, c])
        self.assertEqual(await store.list(organizer=ALICE), [a, b])
        self.assertEqual(await store.list(state="scheduled"), [a, c])
        self.assertEqual(await store.list(organizer=ALICE, state="cancelled"), [b])

    async def test_count_and_delete(self) -> None:
        """
        count_by_organizer counts every state; delete says whether it found one.
        """
        store = (await self.open_stores()).conferences
        await store.put(conference("sip:a@x", "u-a"), 0)
        await store.put(conference("sip:b@x", "u-b", state="cancelled"), 0)
        self.assertEqual(await store.count_by_organizer(ALICE), 2)
        self.assertTrue(await store.delete("sip:a@x"))
        self.assertFalse(await store.delete("sip:a@x"))
        self.assertIsNone(await store.get("sip:a@x"))
        self.assertEqual(await store.count_by_organizer(ALICE), 1)
        self.assertEqual((await store.put(conference("sip:c@x", "u-a"), 0)).uid, "u-a")

    async def test_max_per_organizer(self) -> None:
        """
        A create beyond max_per_organizer is a LimitExceededError that stores
        nothing; updating an existing one is not counted.
        """
        store = (await self.open_stores()).conferences
        await store.put(conference("sip:a@x", "u-a"), 0, max_per_organizer=2)
        await store.put(conference("sip:b@x", "u-b"), 0, max_per_organizer=2)
        third = store.put(conference("sip:c@x", "u-c"), 0, max_per_organizer=2)
        await self.assertFailure(third, LimitExceededError)
        self.assertIsNone(await store.get("sip:c@x"))
        updated = await store.put(conference("sip:b@x", "u-b", sequence=8), 1, max_per_organizer=2)
        self.assertEqual(updated.version, 2)
        moved = store.put(conference("sip:z@x", "u-z", BOB), 0, max_per_organizer=0)
        await self.assertFailure(moved, LimitExceededError)

    async def test_concurrent_create(self) -> None:
        """
        Two create-only puts of one URI from two handles: exactly one wins.
        """
        first = (await self.open_stores()).conferences
        second = (await self.open_again()).conferences
        results: List[Any] = await DeferredList(
            [first.put(conference(sequence=1), 0), second.put(conference(sequence=2), 0)],
            consumeErrors=True,
        )
        won = [r for ok, r in results if ok]
        lost = [r for ok, r in results if not ok]
        self.assertEqual(len(won), 1)
        self.assertTrue(lost[0].check(ConflictError))
        self.assertEqual(await first.get(CONF), won[0])

    async def test_durable(self) -> None:
        """
        Conferences survive closing and reopening the store.
        """
        stores = await self.open_stores()
        stored = await stores.conferences.put(conference(), 0)
        again = await self.reopen(stores)
        self.assertEqual(await again.conferences.get(CONF), stored)


def entry(owner: str = BOB, uid: str = "e-1", **changes: Any) -> CalendarEntry:
    """
    A calendar entry for tests.
    """
    return replace(CalendarEntry(owner, uid, XCAL, "publish", NOW), **changes)


class CalendarStoreContract(StoreBackend):
    """
    L{ICalendarStore}.
    """

    async def test_interface(self) -> None:
        """
        The store provides ICalendarStore.
        """
        stores = await self.open_stores()
        self.assertTrue(verifyObject(ICalendarStore, stores.calendars))

    async def test_entries(self) -> None:
        """
        entries gives only that owner's entries, ordered by UID.
        """
        store = (await self.open_stores()).calendars
        self.assertEqual(await store.entries(BOB), [])
        for e in (entry(uid="b"), entry(uid="a", source="conference"), entry(ALICE, "c")):
            await store.put_entry(e)
        self.assertEqual(
            await store.entries(BOB), [entry(uid="a", source="conference"), entry(uid="b")]
        )
        self.assertEqual(await store.entries(ALICE), [entry(ALICE, "c")])

    async def test_replace(self) -> None:
        """
        put_entry replaces the entry with the same owner and UID.
        """
        store = (await self.open_stores()).calendars
        await store.put_entry(entry())
        await store.put_entry(entry(calendar=b"<new/>", updated=NOW + 5))
        self.assertEqual(await store.entries(BOB), [entry(calendar=b"<new/>", updated=NOW + 5)])

    async def test_remove(self) -> None:
        """
        remove_entry says whether it found the entry, and only removes that one.
        """
        store = (await self.open_stores()).calendars
        await store.put_entry(entry())
        await store.put_entry(entry(ALICE))
        self.assertTrue(await store.remove_entry(BOB, "e-1"))
        self.assertFalse(await store.remove_entry(BOB, "e-1"))
        self.assertEqual(await store.entries(BOB), [])
        self.assertEqual(await store.entries(ALICE), [entry(ALICE)])

    async def test_durable(self) -> None:
        """
        Entries survive closing and reopening the store.
        """
        stores = await self.open_stores()
        await stores.calendars.put_entry(entry())
        again = await self.reopen(stores)
        self.assertEqual(await again.calendars.entries(BOB), [entry()])


def contact(
    uri: str, expires_at: float = NOW + 60, q: Optional[float] = None
) -> RegistrationBinding:
    """
    A registered contact for tests.
    """
    return RegistrationBinding(uri, expires_at, q, "call-1@host", 7)


class RegistrationStoreContract(StoreBackend):
    """
    L{IRegistrationStore}.
    """

    async def test_interface(self) -> None:
        """
        The store provides IRegistrationStore.
        """
        stores = await self.open_stores()
        self.assertTrue(verifyObject(IRegistrationStore, stores.registrations))

    async def test_order(self) -> None:
        """
        Live contacts come highest q first (no q counts as 1.0), then by contact.
        """
        store = (await self.open_stores()).registrations
        given = [contact("sip:c@h", q=0.5), contact("sip:b@h"), contact("sip:a@h", q=0.9)]
        result = await store.set_bindings(ALICE, given, [], NOW)
        expected = [contact("sip:b@h"), contact("sip:a@h", q=0.9), contact("sip:c@h", q=0.5)]
        self.assertEqual(result, expected)
        self.assertEqual(await store.get_bindings(ALICE, NOW), expected)
        self.assertEqual(await store.get_bindings(BOB, NOW), [])

    async def test_expiry(self) -> None:
        """
        A contact is live while expires_at > now; set_bindings drops the expired.
        """
        store = (await self.open_stores()).registrations
        await store.set_bindings(ALICE, [contact("sip:a@h", NOW + 10)], [], NOW)
        self.assertEqual(await store.get_bindings(ALICE, NOW + 9.5), [contact("sip:a@h", NOW + 10)])
        self.assertEqual(await store.get_bindings(ALICE, NOW + 10), [])
        self.assertEqual(await store.set_bindings(ALICE, [], [], NOW + 20), [])
        self.assertEqual(await store.get_bindings(ALICE, NOW), [])

    async def test_replace_and_remove(self) -> None:
        """
        set_bindings removes the listed contacts and replaces same-contact ones.
        """
        store = (await self.open_stores()).registrations
        await store.set_bindings(ALICE, [contact("sip:a@h"), contact("sip:b@h")], [], NOW)
        newer = replace(contact("sip:b@h", NOW + 99, 0.1), call_id="x", cseq=9)
        result = await store.set_bindings(ALICE, [newer], ["sip:a@h", "sip:none@h"], NOW)
        self.assertEqual(result, [newer])

    async def test_purge(self) -> None:
        """
        purge drops the expired contacts of every address and counts them.
        """
        store = (await self.open_stores()).registrations
        await store.set_bindings(ALICE, [contact("sip:a@h", NOW + 5), contact("sip:b@h")], [], NOW)
        await store.set_bindings(BOB, [contact("sip:c@h", NOW + 5)], [], NOW)
        self.assertEqual(await store.purge(NOW + 5), 2)
        self.assertEqual(await store.purge(NOW + 5), 0)
        self.assertEqual(await store.get_bindings(ALICE, NOW), [contact("sip:b@h")])

    async def test_durable(self) -> None:
        """
        Registrations survive closing and reopening the store.
        """
        stores = await self.open_stores()
        await stores.registrations.set_bindings(ALICE, [contact("sip:a@h", q=0.5)], [], NOW)
        again = await self.reopen(stores)
        self.assertEqual(
            await again.registrations.get_bindings(ALICE, NOW), [contact("sip:a@h", q=0.5)]
        )


def binding(
    uri: str, disposition: str = "conference", owner: str = CONF, **changes: Any
) -> BindingRecord:
    """
    A BIND binding for tests.
    """
    record = BindingRecord(
        owner=owner,
        disposition=disposition,
        uri=uri,
        expires_at=NOW + 3600,
        etag=f"e-{uri}",
        issuer=ALICE,
        created=NOW,
    )
    return replace(record, **changes)


class BindingStoreContract(StoreBackend):
    """
    L{IBindingStore}.
    """

    async def test_interface(self) -> None:
        """
        The store provides IBindingStore.
        """
        stores = await self.open_stores()
        self.assertTrue(verifyObject(IBindingStore, stores.bindings))

    async def test_add(self) -> None:
        """
        apply adds bindings, every field round-trips, and both apply and
        bindings list them by disposition then URI, for that owner only.
        """
        store = (await self.open_stores()).bindings
        self.assertEqual(await store.bindings(CONF, NOW), [])
        inline = binding(
            "cid:part1", "boot", data=b"\x00\xffscript", content_type="text/x-script", public=True
        )
        once = binding("http://x/2", one_time=True, expires_at=NOW + 0.5)
        result = await store.apply(
            CONF, [], [binding("http://x/3"), once, inline], NOW, max_bindings=10
        )
        expected = [inline, once, binding("http://x/3")]
        self.assertEqual(result, expected)
        self.assertEqual(await store.bindings(CONF, NOW), expected)
        self.assertEqual(await store.bindings(ALICE, NOW), [])

    async def test_filter(self) -> None:
        """
        bindings can be limited to some dispositions.
        """
        store = (await self.open_stores()).bindings
        given = [binding("http://a", "web"), binding("http://b", "boot"), binding("http://c")]
        await store.apply(CONF, [], given, NOW, max_bindings=10)
        found = await store.bindings(CONF, NOW, ["web", "boot"])
        self.assertEqual(found, [binding("http://b", "boot"), binding("http://a", "web")])
        self.assertEqual(await store.bindings(CONF, NOW, []), [])

    async def test_expiry(self) -> None:
        """
        A binding is live while expires_at > now; expired ones are never listed.
        """
        store = (await self.open_stores()).bindings
        short = binding("http://a", expires_at=NOW + 10)
        past = binding("http://b", expires_at=NOW)
        self.assertEqual(await store.apply(CONF, [], [short, past], NOW, max_bindings=10), [short])
        self.assertEqual(await store.bindings(CONF, NOW + 9.9), [short])
        self.assertEqual(await store.bindings(CONF, NOW + 10), [])

    async def test_replace(self) -> None:
        """
        An upsert with the same disposition and URI replaces the binding.
        """
        store = (await self.open_stores()).bindings
        await store.apply(CONF, [], [binding("http://a")], NOW, max_bindings=1)
        newer = binding("http://a", etag="e2", expires_at=NOW + 5, public=True)
        self.assertEqual(await store.apply(CONF, [], [newer], NOW, max_bindings=1), [newer])

    async def test_remove(self) -> None:
        """
        A removal with a URI drops that binding; with None, the whole
        disposition; removing what is absent is no error.
        """
        store = (await self.open_stores()).bindings
        given = [binding("http://a"), binding("http://b"), binding("http://c", "web")]
        await store.apply(CONF, [], given, NOW, max_bindings=10)
        result = await store.apply(
            CONF, [("web", "http://c"), ("boot", None)], [], NOW, max_bindings=10
        )
        self.assertEqual(result, [binding("http://a"), binding("http://b")])
        result = await store.apply(
            CONF, [("conference", None)], [binding("http://d")], NOW, max_bindings=10
        )
        self.assertEqual(result, [binding("http://d")])

    async def test_limit(self) -> None:
        """
        An update that leaves more than max_bindings (and more than before)
        is a LimitExceededError and changes nothing, removals included.
        """
        store = (await self.open_stores()).bindings
        await store.apply(CONF, [], [binding("http://a"), binding("http://b")], NOW, max_bindings=2)
        refused = store.apply(
            CONF,
            [("conference", "http://a")],
            [binding("http://c"), binding("http://d")],
            NOW,
            max_bindings=2,
        )
        await self.assertFailure(refused, LimitExceededError)
        self.assertEqual(
            await store.bindings(CONF, NOW), [binding("http://a"), binding("http://b")]
        )
        swapped = await store.apply(
            CONF, [("conference", "http://a")], [binding("http://c")], NOW, max_bindings=2
        )
        self.assertEqual(swapped, [binding("http://b"), binding("http://c")])
        shrunk = await store.apply(CONF, [("conference", "http://b")], [], NOW, max_bindings=0)
        self.assertEqual(shrunk, [binding("http://c")])

    async def test_expired_do_not_count(self) -> None:
        """
        Expired bindings do not count towards the limit.
        """
        store = (await self.open_stores()).bindings
        await store.apply(CONF, [], [binding("http://a", expires_at=NOW + 1)], NOW, max_bindings=1)
        result = await store.apply(CONF, [], [binding("http://b")], NOW + 1, max_bindings=1)
        self.assertEqual(result, [binding("http://b")])

    async def test_etags(self) -> None:
        """
        expected_etags must all match live bindings, else a ConflictError
        and nothing changes.
        """
        store = (await self.open_stores()).bindings
        await store.apply(CONF, [], [binding("http://a")], NOW, max_bindings=10)
        for wrong in ({("conference", "http://a"): "old"}, {("conference", "http://z"): "x"}):
            refused = store.apply(
                CONF, [], [binding("http://b")], NOW, max_bindings=10, expected_etags=wrong
            )
            await self.assertFailure(refused, ConflictError)
        self.assertEqual(await store.bindings(CONF, NOW), [binding("http://a")])
        right = {("conference", "http://a"): "e-http://a"}
        newer = binding("http://a", etag="next")
        result = await store.apply(CONF, [], [newer], NOW, max_bindings=10, expected_etags=right)
        self.assertEqual(result, [newer])

    async def test_other_owner(self) -> None:
        """
        An upsert naming another owner, or one key twice, is a StoreError.
        """
        store = (await self.open_stores()).bindings
        wrong = [binding("http://a"), binding("http://b", owner=ALICE)]
        await self.assertFailure(store.apply(CONF, [], wrong, NOW, max_bindings=9), StoreError)
        twice = [binding("http://a"), binding("http://a")]
        await self.assertFailure(store.apply(CONF, [], twice, NOW, max_bindings=9), StoreError)
        self.assertEqual(await store.bindings(CONF, NOW), [])
        self.assertEqual(await store.bindings(ALICE, NOW), [])

    async def test_one_time(self) -> None:
        """
        A one-time binding is taken once; other bindings, absent and expired
        ones cannot be taken.
        """
        store = (await self.open_stores()).bindings
        given = [binding("http://once", one_time=True, expires_at=NOW + 5), binding("http://keep")]
        await store.apply(CONF, [], given, NOW, max_bindings=10)
        self.assertFalse(await store.take_one_time(CONF, "conference", "http://keep"))
        self.assertFalse(await store.take_one_time(CONF, "conference", "http://once", NOW + 5))
        self.assertTrue(await store.take_one_time(CONF, "conference", "http://once", NOW))
        self.assertFalse(await store.take_one_time(CONF, "conference", "http://once"))
        self.assertEqual(await store.bindings(CONF, NOW), [binding("http://keep")])

    async def test_purge(self) -> None:
        """
        purge drops the expired bindings of every owner and counts them.
        """
        store = (await self.open_stores()).bindings
        await store.apply(
            CONF, [], [binding("a", expires_at=NOW + 1), binding("b")], NOW, max_bindings=9
        )
        await store.apply(
            ALICE, [], [binding("c", owner=ALICE, expires_at=NOW + 1)], NOW, max_bindings=9
        )
        self.assertEqual(await store.purge(NOW + 1), 2)
        self.assertEqual(await store.purge(NOW + 1), 0)
        self.assertEqual(await store.bindings(CONF, NOW), [binding("b")])

    async def test_dispositions(self) -> None:
        """
        Per-owner dispositions: None until set, then the set (empty too),
        None again once cleared; a bad name is a StoreError.
        """
        store = (await self.open_stores()).bindings
        self.assertIsNone(await store.owner_dispositions(CONF))
        await store.set_owner_dispositions(CONF, ["web", "boot", "web"])
        self.assertEqual(await store.owner_dispositions(CONF), frozenset({"web", "boot"}))
        await store.set_owner_dispositions(CONF, [])
        self.assertEqual(await store.owner_dispositions(CONF), frozenset())
        self.assertIsNone(await store.owner_dispositions(ALICE))
        await store.set_owner_dispositions(CONF, None)
        self.assertIsNone(await store.owner_dispositions(CONF))
        await self.assertFailure(store.set_owner_dispositions(CONF, ["a\nb"]), StoreError)

    async def test_concurrent_apply(self) -> None:
        """
        Two concurrent updates of one owner from two handles, of which only
        one fits under the limit: one succeeds whole, the other fails whole.
        """
        first = (await self.open_stores()).bindings
        second = (await self.open_again()).bindings
        a = [binding("http://a1"), binding("http://a2")]
        b = [binding("http://b1"), binding("http://b2")]
        results: List[Any] = await DeferredList(
            [
                first.apply(CONF, [], a, NOW, max_bindings=3),
                second.apply(CONF, [], b, NOW, max_bindings=3),
            ],
            consumeErrors=True,
        )
        outcomes = [ok for ok, _ in results]
        self.assertEqual(sorted(outcomes), [False, True])
        won = a if outcomes[0] else b
        self.assertTrue(next(r for ok, r in results if not ok).check(LimitExceededError))
        self.assertEqual(await first.bindings(CONF, NOW), won)

    async def test_concurrent_apply_serial(self) -> None:
        """
        Concurrent updates of one owner that both fit both apply, and each
        result is what a serial order gives.
        """
        first = (await self.open_stores()).bindings
        second = (await self.open_again()).bindings
        await first.apply(CONF, [], [binding("http://x")], NOW, max_bindings=10)
        pending = []
        for i in range(5):
            store = first if i % 2 else second
            pending.append(
                store.apply(
                    CONF,
                    [("conference", "http://x")],
                    [binding(f"http://{i}")],
                    NOW,
                    max_bindings=10,
                )
            )
        results: List[Any] = await DeferredList(pending, fireOnOneErrback=True)
        final = await first.bindings(CONF, NOW)
        self.assertEqual(final, [binding(f"http://{i}") for i in range(5)])
        sizes = sorted(len(r) for ok, r in results)
        self.assertEqual(sizes, [1, 2, 3, 4, 5])

    async def test_concurrent_take(self) -> None:
        """
        A one-time binding raced for from two handles is taken exactly once.
        """
        first = (await self.open_stores()).bindings
        second = (await self.open_again()).bindings
        uris = [f"http://{i}" for i in range(4)]
        given = [binding(u, one_time=True) for u in uris]
        await first.apply(CONF, [], given, NOW, max_bindings=10)
        pending = []
        for u in uris:
            pending += [
                first.take_one_time(CONF, "conference", u),
                second.take_one_time(CONF, "conference", u),
            ]
        results = await DeferredList(pending, fireOnOneErrback=True)
        taken = [r for ok, r in results]
        self.assertEqual([taken[i] + taken[i + 1] for i in range(0, 8, 2)], [1, 1, 1, 1])
        self.assertEqual(await first.bindings(CONF, NOW), [])

    async def test_durable(self) -> None:
        """
        Bindings and per-owner dispositions survive closing and reopening.
        """
        stores = await self.open_stores()
        await stores.bindings.apply(
            CONF, [], [binding("http://a", data=b"\x01")], NOW, max_bindings=9
        )
        await stores.bindings.set_owner_dispositions(CONF, ["web"])
        again = await self.reopen(stores)
        self.assertEqual(
            await again.bindings.bindings(CONF, NOW), [binding("http://a", data=b"\x01")]
        )
        self.assertEqual(await again.bindings.owner_dispositions(CONF), frozenset({"web"}))
