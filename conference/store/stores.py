# -*- test-case-name: tests.unit.store.test_stores -*-
"""
One place that turns a C{--store} description into the four stores the
server needs (conferences, calendars, registrations, bindings) on one
backend, and closes them again.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from twisted.internet.defer import Deferred, fail, succeed

from conference.interfaces import (
    IBindingStore,
    ICalendarStore,
    IChangeFeed,
    IConferenceStore,
    IRegistrationStore,
)
from conference.records import StoreError
from conference.store.changes import LocalChangeFeed
from conference.store.database import Database
from conference.store.memory import (
    MemoryBindingStore,
    MemoryCalendarStore,
    MemoryConferenceStore,
    MemoryRegistrationStore,
)
from conference.store.sql import (
    SQLBindingStore,
    SQLConferenceStore,
    SQLRegistrationStore,
)
from conference.store.sqlcalendar import SQLCalendarStore

#: The store of a server started without C{--store}.
DEFAULT_STORE = "sqlite:conference.sqlite"


class Stores:
    """
    The stores of one backend.

    @ivar conferences: an L{IConferenceStore}.
    @ivar calendars: an L{ICalendarStore}.
    @ivar registrations: an L{IRegistrationStore}.
    @ivar bindings: an L{IBindingStore}.
    @ivar description: the description they were opened from, without any
        password (C{memory}, C{sqlite:PATH}, C{postgresql}).
    @ivar changes: an L{IChangeFeed} of the changes other processes
        sharing the backend commit (only PostgreSQL can be shared; the
        others get a L{LocalChangeFeed}).
    """

    def __init__(
        self,
        conferences: IConferenceStore,
        calendars: ICalendarStore,
        registrations: IRegistrationStore,
        bindings: IBindingStore,
        *,
        description: str = "memory",
        closer: Optional[Callable[[], Deferred[None]]] = None,
        changes: Optional[IChangeFeed] = None,
    ) -> None:
        self.conferences = conferences
        self.calendars = calendars
        self.registrations = registrations
        self.bindings = bindings
        self.description = description
        self.changes: IChangeFeed = changes if changes is not None else LocalChangeFeed()
        self._closer = closer

    @classmethod
    def memory(cls) -> Stores:
        """
        Fresh, empty in-memory stores.
        """
        calendars = MemoryCalendarStore()
        return cls(
            MemoryConferenceStore(calendars),
            calendars,
            MemoryRegistrationStore(),
            MemoryBindingStore(),
        )

    @classmethod
    def sql(
        cls, database: Database, description: str, changes: Optional[IChangeFeed] = None
    ) -> Stores:
        """
        The SQL stores over an open L{Database}; closing them closes it
        (after stopping C{changes}, their feed, if given).
        """

        def close() -> Deferred[None]:
            if changes is None:
                return database.close()
            return changes.stop().addBoth(lambda _: database.close())

        return cls(
            SQLConferenceStore(database),
            SQLCalendarStore(database),
            SQLRegistrationStore(database),
            SQLBindingStore(database),
            description=description,
            closer=close,
            changes=changes,
        )

    def close(self) -> Deferred[None]:
        """
        Release the backend (connections, threads), after the operations
        under way; idempotent.  The stores must not be used afterwards.

        @return: a Deferred firing with L{None} when done.
        """
        closer, self._closer = self._closer, None
        if closer is None:
            return succeed(None)
        return closer()


def parse_store(description: str) -> tuple[str, str]:
    """
    Split a C{--store} description into its kind and argument:
    C{memory}, C{sqlite} (C{sqlite} alone means L{DEFAULT_STORE}'s file),
    C{sqlite:PATH}, C{postgresql:CONNINFO} (a libpq key/value string or
    URI); C{postgresql://...} alone is taken as a URI too.

    @raise StoreError: naming what is wrong.
    """
    kind, sep, rest = description.partition(":")
    if kind == "memory" and not sep:
        return kind, ""
    if kind == "sqlite" and (rest or not sep):
        return kind, rest if sep else DEFAULT_STORE.partition(":")[2]
    if kind in ("postgresql", "postgres") and rest:
        conninfo = description if rest.startswith("//") else rest
        return "postgresql", conninfo
    raise StoreError(
        f"bad store description {description!r}: use memory, sqlite:PATH or postgresql:CONNINFO"
    )


def open_stores(description: str, reactor: Any) -> Deferred[Stores]:
    """
    Open the stores a C{--store} description names, creating or upgrading
    the database schema as needed.

    @param reactor: the reactor the database threads report to.
    @return: a Deferred firing with L{Stores}, or failing with
        L{StoreError} (bad description, database unreachable) or
        L{conference.store.database.SchemaVersionError} (database newer
        than this code).
    """
    try:
        kind, argument = parse_store(description)
    except StoreError as e:
        return fail(e)
    if kind == "memory":
        return succeed(Stores.memory())
    if kind == "sqlite":
        from conference.store.sqlite import open_sqlite

        opened = open_sqlite(argument, reactor)
        label = f"sqlite:{argument}"
    else:
        from conference.store.postgresql import open_postgresql

        return open_postgresql(argument, reactor).addCallback(_with_change_feed, argument, reactor)
    return opened.addCallback(lambda database: Stores.sql(database, label))


def _with_change_feed(database: Database, conninfo: str, reactor: Any) -> Deferred[Stores]:
    """PostgreSQL's stores, once their change feed listens (closing the database if it cannot)."""
    from conference.store.postgresql import open_change_feed

    def failed(failure: Any) -> Any:
        database.close()
        return failure

    opened = open_change_feed(conninfo, database.origin, reactor)
    opened.addCallback(lambda feed: Stores.sql(database, "postgresql", feed))
    return opened.addErrback(failed)
