# -*- test-case-name: tests.loopback.test_postgresql -*-
"""
The PostgreSQL backend (C{--store postgresql:CONNINFO}): psycopg 3 through
C{twisted.enterprise.adbapi}, so several server processes can share one
database.  CPython only (see L{postgresql_driver}).

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

import importlib
import platform
from typing import Any, Tuple
from urllib.parse import quote, urlencode

from twisted.enterprise import adbapi
from twisted.internet.defer import Deferred, fail

from conference.records import StoreError
from conference.store.database import Database, Dialect, upgrade_schema

#: Connections (and threads) per server process.
MAX_CONNECTIONS = 8


def postgresql_driver() -> Tuple[str, Any]:
    """
    The DB-API module to reach PostgreSQL with, as (import name, module):
    psycopg 3.

    Not on PyPy: psycopg 3's pure-Python libpq binding fails on PyPy 7.3's
    ctypes at connect, and psycopg2cffi deadlocks the adbapi pool when one
    connection waits on another's lock.  PyPy deployments use SQLite.

    @raise StoreError: on PyPy, or if psycopg is not installed.
    """
    if platform.python_implementation() == "PyPy":
        raise StoreError(
            "the PostgreSQL store is not available on PyPy (no working driver); "
            "use --store sqlite:PATH, or run under CPython"
        )
    try:
        return "psycopg", importlib.import_module("psycopg")
    except ImportError:
        raise StoreError(
            "the PostgreSQL store needs psycopg 3: pip install 'psycopg[binary]'"
        ) from None


def _autocommit(connection: Any) -> None:
    connection.autocommit = True


def connect(conninfo: str) -> Any:
    """
    A DB-API connection in autocommit mode, with the driver the store uses
    (for tools and tests; the store itself goes through adbapi).
    """
    _, module = postgresql_driver()
    connection = module.connect(conninfo)
    _autocommit(connection)
    return connection


def conninfo_with(conninfo: str, **params: str) -> str:
    """
    C{conninfo} (key=value string or URI) with more parameters, for
    example C{options="-c search_path=x"}.
    """
    if conninfo.startswith(("postgresql://", "postgres://")):
        joiner = "&" if "?" in conninfo else "?"
        return conninfo + joiner + urlencode(params, quote_via=quote)
    quoted = (
        "{}='{}'".format(key, value.replace("\\", "\\\\").replace("'", "\\'"))
        for key, value in params.items()
    )
    return " ".join([conninfo, *quoted]).strip()


def postgresql_dialect() -> Dialect:
    """
    The PostgreSQL L{Dialect}.

    @raise StoreError: if no driver is installed.
    """
    _, module = postgresql_driver()
    return Dialect(
        name="postgresql",
        begin="BEGIN",
        qmark=False,
        for_update=" FOR UPDATE",
        advisory_locks=True,
        errors=(module.Error,),
        integrity_errors=(module.IntegrityError,),
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
    name, _ = postgresql_driver()
    pool = adbapi.ConnectionPool(
        name,
        conninfo,
        cp_openfun=_autocommit,
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
