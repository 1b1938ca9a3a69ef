# -*- test-case-name: tests.unit.store.test_stores -*-
"""
Storage backends behind the interfaces of L{conference.interfaces}:
memory, SQLite and PostgreSQL.  L{open_stores} opens the ones a C{--store}
description names.
"""

from __future__ import annotations

from conference.store.stores import DEFAULT_STORE, Stores, open_stores, parse_store

__all__ = ["DEFAULT_STORE", "Stores", "open_stores", "parse_store"]
