# -*- test-case-name: tests.unit.store.test_sqlite -*-
"""
The SQLite backend (C{--store sqlite:PATH}, the default): one file, one
server process, durable across a crash of the process.

Choices, and why:

 - Journal mode WAL: readers never block the writer nor the writer them.
 - C{synchronous=NORMAL}: a commit is in the WAL file (in the operating
   system's page cache) before the transaction's Deferred fires, so it
   survives C{kill -9} of the server; only a power loss or kernel crash may
   lose the last transactions (never corrupt the file).  C{FULL} (an fsync
   per commit) closes that gap at a large cost in updates per second; pass
   C{synchronous="FULL"} to L{open_sqlite} to get it.
 - One writer: every write transaction runs on one connection in one
   thread (an adbapi pool of exactly one), started with C{BEGIN IMMEDIATE}
   so even a second process on the same file waits (busy timeout) rather
   than deadlocks.  The C{check_same_thread=False} flag is only there so
   the pool may close that connection from the reactor thread at shutdown;
   it is never used by two threads at once.
 - Reads run inline, in the reactor thread, on a connection of their own
   (by default, L{READERS} = 0): a query by owner is an index lookup of
   tens of microseconds, cheaper than the thread hop it would otherwise
   take (measured: about twice the queries per second, half the latency),
   and WAL readers never wait for the writer.  C{readers=N} moves them to
   a pool of N threads instead, for databases too big for the page cache.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Callable, Optional

from twisted.enterprise import adbapi
from twisted.internet.defer import Deferred, fail, succeed

from conference.records import StoreError
from conference.store.database import (
    CorruptDatabaseError,
    Database,
    Dialect,
    Pool,
    upgrade_schema,
)

SQLITE = Dialect(
    name="sqlite",
    begin="BEGIN IMMEDIATE",
    qmark=True,
    for_update="",
    advisory_locks=False,
    errors=(sqlite3.Error,),
    integrity_errors=(sqlite3.IntegrityError,),
    schema_version_exists=(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ),
)

#: Seconds a connection waits for another process's write lock.
BUSY_TIMEOUT = 30.0

#: Page cache per connection, in KiB.
CACHE_KIB = 65536

#: Bytes of the file read through a memory map rather than read().
MMAP_BYTES = 256 * 1024 * 1024

#: Seconds the inline reader may wait (it blocks the reactor meanwhile).
INLINE_BUSY_TIMEOUT = 1.0

#: Read connections (and threads); 0 reads inline in the reactor thread.
READERS = 0

SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")


def _prepare(connection: sqlite3.Connection, synchronous: str) -> None:
    connection.execute(f"PRAGMA synchronous = {synchronous}")
    connection.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    connection.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
    connection.execute("PRAGMA foreign_keys = ON")


def _pool(path: str, reactor: Any, size: int, synchronous: str) -> adbapi.ConnectionPool:
    def prepare(connection: sqlite3.Connection) -> None:
        _prepare(connection, synchronous)

    return adbapi.ConnectionPool(
        "sqlite3",
        path,
        timeout=BUSY_TIMEOUT,
        isolation_level=None,
        check_same_thread=False,
        cp_min=1,
        cp_max=size,
        cp_openfun=prepare,
        cp_noisy=False,
        cp_reactor=reactor,
    )


class InlineReader:
    """
    A read connection used synchronously in the thread that calls it (the
    reactor thread): no thread hop, so a query by owner costs tens of
    microseconds.  WAL readers never wait for the writer, so this blocks
    only on the disk, and only for what the page cache does not hold.
    """

    def __init__(self, path: str, synchronous: str) -> None:
        self._path = path
        self._synchronous = synchronous
        self._connection: Optional[sqlite3.Connection] = None

    def runWithConnection(self, fn: Callable[..., Any], *args: Any) -> Deferred[Any]:
        """
        C{fn(connection, *args)}, now, as a fired Deferred.
        """
        try:
            if self._connection is None:
                connection = sqlite3.connect(
                    self._path, timeout=INLINE_BUSY_TIMEOUT, isolation_level=None
                )
                _prepare(connection, self._synchronous)
                self._connection = connection
            return succeed(fn(self._connection, *args))
        except BaseException:
            return fail()

    def close(self) -> None:
        """
        Close the connection (from the thread that used it).
        """
        if self._connection is not None:
            self._connection.close()
            self._connection = None


#: How many of quick_check's findings the error quotes.
PROBLEMS_SHOWN = 3


def _quick_check(cursor: Any) -> None:
    """
    Run SQLite's C{quick_check} (the integrity check without the costly
    index-content comparison: linear in the file's size).

    @raise CorruptDatabaseError: quoting its first findings.
    """
    cursor.execute("PRAGMA quick_check")
    problems = [" ".join(str(row[0]).split()) for row in cursor.fetchall()]
    if problems != ["ok"]:
        shown = "; ".join(problems[:PROBLEMS_SHOWN])
        more = len(problems) - PROBLEMS_SHOWN
        raise CorruptDatabaseError(
            f"quick_check found {len(problems)} problem(s): {shown}"
            + (f" (and {more} more)" if more > 0 else "")
        )


def _is_damage(error: Optional[BaseException]) -> bool:
    """
    Whether a driver error says the file is damaged or not a database
    (SQLITE_CORRUPT, SQLITE_NOTADB: the bare C{DatabaseError}), as opposed
    to locked, unreadable or full (C{OperationalError}) and the like.
    """
    return type(error) is sqlite3.DatabaseError


def _wal(cursor: Any) -> None:
    cursor.execute("PRAGMA journal_mode = WAL")
    mode = cursor.fetchone()[0]
    if str(mode).lower() != "wal":
        raise StoreError(f"SQLite refused WAL mode (journal_mode is {mode})")


def open_sqlite(
    path: str, reactor: Any, *, synchronous: str = "NORMAL", readers: int = READERS
) -> Deferred[Database]:
    """
    Open (creating it if need be) the SQLite database at C{path} and bring
    its schema up to date.

    @param path: a file name (C{:memory:} is refused: each connection would
        see its own empty database).
    @param reactor: the reactor the pools report to.
    @param synchronous: the C{PRAGMA synchronous} mode (see the module
        docstring for what C{NORMAL} guarantees).
    @param readers: how many connections (each in its own thread) serve
        reads; 0 reads inline in the calling (reactor) thread.
    @return: a Deferred firing with the L{Database}, or failing with
        L{StoreError} naming C{path} when it cannot be opened: a
        L{conference.store.database.SchemaVersionError} for a newer schema,
        a L{CorruptDatabaseError} when C{quick_check} finds damage or the
        file is not a database.
    """
    synchronous = synchronous.upper()
    if synchronous not in SYNCHRONOUS_MODES:
        return fail(StoreError(f"synchronous must be one of {SYNCHRONOUS_MODES}"))
    if not path or path == ":memory:" or path.startswith("file::memory:"):
        return fail(StoreError("a SQLite store needs a file; use --store memory instead"))
    writer = _pool(path, reactor, 1, synchronous)
    reader: Pool
    if readers == 0:
        reader = InlineReader(path, synchronous)
    else:
        reader = _pool(path, reactor, readers, synchronous)
    database = Database(SQLITE, writer, reader)

    def failed(failure: Any) -> Any:
        database.close()
        error = failure.value
        cause = error.__cause__ if isinstance(error, StoreError) else error
        if not isinstance(error, CorruptDatabaseError) and _is_damage(cause):
            error = CorruptDatabaseError(f"the file is damaged or not a database ({cause})")
        if isinstance(error, CorruptDatabaseError):
            raise CorruptDatabaseError(
                f"SQLite store {path}: {error}; refusing to start on a corrupt database "
                "(restore a backup, or salvage it with the sqlite3 shell's .recover)"
            ) from error
        if isinstance(error, StoreError):
            raise type(error)(f"SQLite store {path}: {error}") from error
        return failure

    d = database.write_statement(_quick_check)
    d.addCallback(lambda _: database.write_statement(_wal))
    d.addCallback(lambda _: database.write(upgrade_schema, SQLITE))
    d.addCallback(lambda _: database)
    return d.addErrback(failed)
