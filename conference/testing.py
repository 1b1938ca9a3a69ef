# -*- test-case-name: tests.unit.store.test_memory -*-
"""
Fakes for the tests of code that uses this server's interfaces, ours and
other projects': in-memory backends of every store interface, which keep
the semantics the contract tests hold every backend to.

A test that needs the stores can write::

    from conference.testing import memory_stores
    stores = memory_stores()
    stores.bindings.apply(...)
"""

from __future__ import annotations

from conference.store.memory import (
    MemoryBindingStore,
    MemoryCalendarStore,
    MemoryConferenceStore,
    MemoryRegistrationStore,
)
from conference.store.stores import Stores

__all__ = [
    "MemoryBindingStore",
    "MemoryCalendarStore",
    "MemoryConferenceStore",
    "MemoryRegistrationStore",
    "Stores",
    "memory_stores",
]


def memory_stores() -> Stores:
    """
    A fresh, empty set of in-memory stores (conferences, calendars,
    registrations, bindings); C{close()} on it does nothing.
    """
    return Stores.memory()
