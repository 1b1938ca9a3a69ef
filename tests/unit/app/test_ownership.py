# -*- test-case-name: tests.unit.app.test_ownership -*-
"""
Tests for L{conference.app.ownership}: which addresses are users' (and so
never become conferences), the conference namespace, and the release of a
cancelled conference's bindings, over the memory stores.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Coroutine, List, Optional, TypeVar

from twisted.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
from twisted.internet.defer import Deferred, fail
from twisted.logger import ILogObserver, formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from conference.app.ownership import (
    UserDirectory,
    in_conference_namespace,
    release_bindings,
    release_when_cancelled,
)
from conference.auth import CheckerAccounts
from conference.records import (
    BindingRecord,
    CalendarEntry,
    ConferenceRecord,
    RegistrationBinding,
    StoreError,
)
from conference.testing import memory_stores

NOW = 1_000_000.0
ALICE = "sip:alice@example.com"
ROOM = "sip:conf-weekly@example.com"
_T = TypeVar("_T")


def binding(owner: str, uri: str, disposition: str = "configuration") -> BindingRecord:
    """
    A live private binding of C{owner}.
    """
    return BindingRecord(owner, disposition, uri, NOW + 600, "e1", issuer=ALICE)


class OwnershipTestCase(SynchronousTestCase):
    """
    Memory stores and a way to run the module's coroutines.
    """

    def setUp(self) -> None:
        self.stores = memory_stores()

    def run_now(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        """
        The result of a coroutine that awaits only memory stores.
        """
        return self.successResultOf(Deferred.fromCoroutine(coroutine))

    def directory(self, accounts: Any = None) -> UserDirectory:
        stores = self.stores
        return UserDirectory(stores.registrations, stores.bindings, stores.calendars, accounts)


class NamespaceTests(SynchronousTestCase):
    """
    The user parts reserved for conferences.
    """

    def test_namespace(self) -> None:
        """conf-<something> is the conference namespace; conf-, conference and alice are not."""
        self.assertTrue(in_conference_namespace("sip:conf-0a1b@example.com"))
        self.assertTrue(in_conference_namespace("sip:CONF-weekly@example.com"))
        self.assertFalse(in_conference_namespace("sip:conf-@example.com"))
        self.assertFalse(in_conference_namespace("sip:conference@example.com"))
        self.assertFalse(in_conference_namespace(ALICE))
        self.assertFalse(in_conference_namespace("sip:example.com"))


class UserDirectoryTests(OwnershipTestCase):
    """
    Each trace a user leaves makes an address a user's.
    """

    def test_nobody(self) -> None:
        """An address without registrations, bindings, entries or account is no user's."""
        self.assertIsNone(self.run_now(self.directory().why_user(ALICE, NOW)))

    def test_registered(self) -> None:
        """A registered address of record is a user's."""
        contact = RegistrationBinding("sip:alice@192.0.2.1", NOW + 60, None, "c", 1)
        self.stores.registrations.set_bindings(ALICE, [contact], [], NOW)
        reason = self.run_now(self.directory().why_user(ALICE, NOW))
        self.assertEqual(reason, "is a registered user")

    def test_account(self) -> None:
        """A known account is a user's, registered or not."""
        accounts = CheckerAccounts([InMemoryUsernamePasswordDatabaseDontUse(alice=b"x")])
        reason = self.run_now(self.directory(accounts).why_user(ALICE, NOW))
        self.assertEqual(reason, "is a user's account")
        self.assertIsNone(self.run_now(self.directory(accounts).why_user(ROOM, NOW)))

    def test_bindings(self) -> None:
        """An address with live bindings, or its own disposition setting, is a user's."""
        self.stores.bindings.apply(ALICE, [], [binding(ALICE, "http://a")], NOW, max_bindings=5)
        reason = self.run_now(self.directory().why_user(ALICE, NOW))
        self.assertEqual(reason, "is a user's address (it has bindings)")
        self.assertIsNone(self.run_now(self.directory().why_user(ALICE, NOW + 601)))
        self.stores.bindings.set_owner_dispositions(ALICE, ["web"])
        reason = self.run_now(self.directory().why_user(ALICE, NOW + 601))
        self.assertEqual(reason, "is a user's address (it has binding settings)")

    def test_calendar_entries(self) -> None:
        """An address with calendar entries (published or accepted) is a user's."""
        self.stores.calendars.put_entry(CalendarEntry(ALICE, "u1", b"<x/>"))
        reason = self.run_now(self.directory().why_user(ALICE, NOW))
        self.assertEqual(reason, "is a user's address (it has calendar entries)")

    def test_undecidable_accounts(self) -> None:
        """When accounts cannot tell, only the conference namespace is free."""
        accounts = CheckerAccounts([], complete=False)
        reason = self.run_now(self.directory(accounts).why_user("sip:weekly@example.com", NOW))
        assert reason is not None
        self.assertIn("accounts cannot be checked", reason)
        self.assertIsNone(self.run_now(self.directory(accounts).why_user(ROOM, NOW)))


class FailingBindings:
    """
    A binding store whose reads fail.
    """

    def bindings(self, owner: str, now: float, dispositions: Any = None) -> Deferred[Any]:
        return fail(StoreError("disk on fire"))


class ReleaseTests(OwnershipTestCase):
    """
    A cancelled conference gives its bindings up.
    """

    def fill(self) -> None:
        given = [binding(ROOM, "http://a"), binding(ROOM, "http://b", "web")]
        self.stores.bindings.apply(ROOM, [], given, NOW, max_bindings=5)
        self.stores.bindings.set_owner_dispositions(ROOM, ["web", "configuration"])
        self.stores.bindings.apply(ALICE, [], [binding(ALICE, "http://c")], NOW, max_bindings=5)

    def records(self, owner: str) -> List[BindingRecord]:
        return self.successResultOf(self.stores.bindings.bindings(owner, NOW))

    def test_release(self) -> None:
        """Every binding and the disposition setting go; listeners hear of it; others stay."""
        self.fill()
        told: List[str] = []
        self.assertEqual(
            self.run_now(release_bindings(self.stores.bindings, ROOM, NOW, [told.append])), 2
        )
        self.assertEqual(self.records(ROOM), [])
        self.assertIsNone(self.successResultOf(self.stores.bindings.owner_dispositions(ROOM)))
        self.assertEqual(told, [ROOM])
        self.assertEqual(len(self.records(ALICE)), 1)

    def test_nothing_to_release(self) -> None:
        """Without bindings nothing changes and nobody is told."""
        told: List[str] = []
        self.assertEqual(
            self.run_now(release_bindings(self.stores.bindings, ROOM, NOW, [told.append])), 0
        )
        self.assertEqual(told, [])

    def test_store_fault_logged(self) -> None:
        """A store fault is logged once, not raised."""
        events: List[Any] = []

        @implementer(ILogObserver)
        def observe(event: Any) -> None:
            events.append(event)

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        store: Any = FailingBindings()
        self.assertEqual(self.run_now(release_bindings(store, ROOM, NOW)), 0)
        [event] = [e for e in events if e.get("uri") == ROOM]
        self.assertEqual(
            formatEvent(event),
            f"Bindings of cancelled {ROOM} not released: disk on fire",
        )

    def test_when_cancelled(self) -> None:
        """Only the write that cancels a conference releases its bindings."""
        self.fill()
        record = ConferenceRecord(ROOM, "u1", ALICE, b"", owner=ALICE)
        cancelled = replace(record, state="cancelled")
        store = self.stores.bindings

        def release(before: Optional[ConferenceRecord], after: ConferenceRecord) -> int:
            return self.run_now(release_when_cancelled(store, before, after, NOW))

        self.assertEqual(release(None, record), 0)
        self.assertEqual(release(record, record), 0)
        self.assertEqual(release(cancelled, cancelled), 0)
        self.assertEqual(len(self.records(ROOM)), 2)
        self.assertEqual(release(record, cancelled), 2)
        self.assertEqual(self.records(ROOM), [])
