# -*- test-case-name: tests.unit.store.test_stores -*-
"""
Tests for L{conference.store.stores}: C{--store} descriptions and the
bundle of stores they open.
"""

from __future__ import annotations

from twisted.internet import reactor
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from conference.interfaces import (
    IBindingStore,
    ICalendarStore,
    IConferenceStore,
    IRegistrationStore,
)
from conference.records import StoreError
from conference.store.stores import DEFAULT_STORE, Stores, open_stores, parse_store


class ParseTests(SynchronousTestCase):
    """
    L{parse_store}.
    """

    def test_kinds(self) -> None:
        """
        Each documented description splits into kind and argument.
        """
        cases = {
            "memory": ("memory", ""),
            "sqlite": ("sqlite", "conference.sqlite"),
            "sqlite:/var/lib/c.db": ("sqlite", "/var/lib/c.db"),
            "sqlite:C:/x.db": ("sqlite", "C:/x.db"),
            "postgresql:dbname=c host=/run/postgresql": (
                "postgresql",
                "dbname=c host=/run/postgresql",
            ),
            "postgresql:postgresql://u@h/c": ("postgresql", "postgresql://u@h/c"),
            "postgresql://u@h/c": ("postgresql", "postgresql://u@h/c"),
        }
        for description, expected in cases.items():
            self.assertEqual(parse_store(description), expected, description)
        self.assertEqual(DEFAULT_STORE, "sqlite:conference.sqlite")

    def test_bad(self) -> None:
        """
        Unknown kinds and missing arguments are StoreErrors naming the description.
        """
        for description in ("", "mysql:x", "memory:x", "postgresql", "postgresql:"):
            error = self.assertRaises(StoreError, parse_store, description)
            self.assertIn(repr(description), str(error))


class OpenTests(TestCase):
    """
    L{open_stores} and L{Stores}.
    """

    async def test_memory(self) -> None:
        """
        C{memory} opens the four memory stores.
        """
        stores = await open_stores("memory", reactor)
        self.assertTrue(verifyObject(IConferenceStore, stores.conferences))
        self.assertTrue(verifyObject(ICalendarStore, stores.calendars))
        self.assertTrue(verifyObject(IRegistrationStore, stores.registrations))
        self.assertTrue(verifyObject(IBindingStore, stores.bindings))
        self.assertEqual(stores.description, "memory")
        self.assertTrue(stores.close().called)

    async def test_sqlite(self) -> None:
        """
        C{sqlite:PATH} opens the SQL stores on that file; close is
        idempotent, and closed stores refuse work.
        """
        path = self.mktemp()
        stores = await open_stores(f"sqlite:{path}", reactor)
        self.assertEqual(stores.description, f"sqlite:{path}")
        self.assertTrue(verifyObject(IBindingStore, stores.bindings))
        await stores.close()
        await stores.close()
        await self.assertFailure(stores.bindings.purge(0.0), StoreError)

    async def test_bad(self) -> None:
        """
        A bad description fails the Deferred with StoreError.
        """
        await self.assertFailure(open_stores("nosuch", reactor), StoreError)

    def test_memory_bundles_are_separate(self) -> None:
        """
        Each Stores.memory() is empty and independent of the others.
        """
        self.assertIsNot(Stores.memory().bindings, Stores.memory().bindings)
