# -*- test-case-name: tests.unit.store.test_memory -*-
"""
Tests for L{conference.store.memory}: the in-memory backends pass every
store contract.
"""

from __future__ import annotations

from typing import Optional

from twisted.trial.unittest import SynchronousTestCase, TestCase

from conference import testing
from conference.store.stores import Stores
from tests.unit.store.contracts import (
    BindingStoreContract,
    CalendarStoreContract,
    ConferenceStoreContract,
    RegistrationStoreContract,
    StoreBackend,
)
from tests.unit.store.holdings import HoldingsContract


class MemoryBackend(StoreBackend):
    """
    Memory stores; a second handle is the same objects (one process, one
    dictionary), and nothing survives a restart.
    """

    durable = False
    _stores: Optional[Stores] = None

    async def open_stores(self) -> Stores:
        """
        Fresh memory stores.
        """
        self._stores = Stores.memory()
        return self._stores

    async def open_again(self) -> Stores:
        """
        The same memory stores.
        """
        assert self._stores is not None
        return self._stores


class MemoryConferenceStoreTests(MemoryBackend, ConferenceStoreContract, TestCase):
    """
    L{conference.store.memory.MemoryConferenceStore}.
    """


class MemoryCalendarStoreTests(MemoryBackend, CalendarStoreContract, TestCase):
    """
    L{conference.store.memory.MemoryCalendarStore}.
    """


class MemoryRegistrationStoreTests(MemoryBackend, RegistrationStoreContract, TestCase):
    """
    L{conference.store.memory.MemoryRegistrationStore}.
    """


class MemoryBindingStoreTests(MemoryBackend, BindingStoreContract, TestCase):
    """
    L{conference.store.memory.MemoryBindingStore}.
    """


class MemoryHoldingsTests(MemoryBackend, HoldingsContract, TestCase):
    """
    Holders and byte caps of the memory conference and calendar stores.
    """


class TestingModuleTests(SynchronousTestCase):
    """
    L{conference.testing} offers the memory stores to other projects' tests.
    """

    def test_memory_stores(self) -> None:
        """
        memory_stores gives fresh memory stores, of the classes re-exported.
        """
        stores = testing.memory_stores()
        self.assertIsInstance(stores.conferences, testing.MemoryConferenceStore)
        self.assertIsInstance(stores.calendars, testing.MemoryCalendarStore)
        self.assertIsInstance(stores.registrations, testing.MemoryRegistrationStore)
        self.assertIsInstance(stores.bindings, testing.MemoryBindingStore)
        self.assertIsNot(stores.bindings, testing.memory_stores().bindings)
