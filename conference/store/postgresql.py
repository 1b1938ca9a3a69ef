# -*- test-case-name: tests.store.test_postgresql -*-
"""
The PostgreSQL backend (C{--store postgresql:CONNINFO}): psycopg 3 through
C{twisted.enterprise.adbapi}, so several server processes can share one
database.

Connections run in autocommit mode: a read is one statement and one round
trip; a write opens C{BEGIN} (READ COMMITTED) itself and first takes a
transaction-scoped advisory lock on the key it changes (the owner of
bindings, the address of record, the organizer when a limit is checked),
so concurrent read-modify-write transactions from any process on the same
key run one after the other and always see each other's commits.  Plain
row-level conflicts (two creates of one URI or UID) end in a unique
violation, which the stores report as L{ConflictError}.
"""

from __future__ import annotations

from typing import Any

from twisted.enterprise import adbapi
from twisted.internet.defer import Deferred, fail

from conference.store.database import Database, Dialect, upgrade_schema
from conference.store.records import StoreError

#: Connections (and threads) per server process.
MAX_CONNECTIONS = 8


def postgresql_dialect() -> Dialect:
    """
    The PostgreSQL L{Dialect}.

    @raise StoreError: if psycopg 3 is not installed.
    """
    try:
        import psycopg
    except ImportError as e:
        raise StoreError(
            "the PostgreSQL store needs psycopg 3: pip install 'psycopg[binary]'"
        ) from e
    return Dialect(
        name="postgresql",
        begin="BEGIN",
        qmark=False,
        for_update=" FOR UPDATE",
        advisory_locks=True,
        errors=(psycopg.Error,),
        integrity_errors=(psycopg.errors.IntegrityError,),
        schema_version_exists="SELECT to_regclass('schema_version') WHERE "
        "to_regclass('schema_version') IS NOT NULL",
    )


def open_postgresql(
    conninfo: str, reactor: Any, *, max_connections: int = MAX_CONNECTIONS
) -> Deferred[Database]:
    """
    Connect to the PostgreSQL database C{conninfo} and bring its schema up
    to date (in the schema of the connection's C{search_path}).

    @param conninfo: a libpq connection string (C{dbname=conference
        host=/run/postgresql}) or URI (C{postgresql://user@host/db}).
    @param reactor: the reactor the pool reports to.
    @param max_connections: the most connections (and threads) used.
    @return: a Deferred firing with the L{Database}, or failing with
        L{StoreError} (or L{conference.store.database.SchemaVersionError})
        when the database cannot be used.
    """
    try:
        dialect = postgresql_dialect()
    except StoreError as e:
        return fail(e)
    pool = adbapi.ConnectionPool(
        "psycopg",
        conninfo,
        autocommit=True,
        cp_min=1,
        cp_max=max_connections,
        cp_reconnect=True,
        cp_noisy=False,
        cp_reactor=reactor,
    )
    database = Database(dialect, pool)

    def failed(failure: Any) -> Any:
        database.close()
        error = failure.value
        if isinstance(error, StoreError):
            raise type(error)(f"PostgreSQL store: {error}") from error
        return failure

    d = database.write(upgrade_schema, dialect)
    d.addCallback(lambda _: database)
    return d.addErrback(failed)
