# -*- test-case-name: tests.unit.store.test_database -*-
"""
What the SQL backends share: a L{Database} that runs functions against
DB-API connections in threads (through C{twisted.enterprise.adbapi}), one
transaction per call, and the versioned schema files it upgrades on open.

The differences between SQLite and PostgreSQL (placeholders, how a write
transaction starts, row locks) are a L{Dialect}; the stores in
L{conference.store.sql} are written once against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import (
    Any,
    Callable,
    Iterable,
    List,
    Optional,
    Protocol,
    Sequence,
    Tuple,
    Type,
    TypeVar,
)

from twisted.enterprise import adbapi
from twisted.internet.defer import Deferred, fail, succeed
from twisted.python.failure import Failure

from conference.records import StoreError
from conference.store.changes import CHANGES_CHANNEL, Change, new_origin

T = TypeVar("T")


class SchemaVersionError(StoreError):
    """
    The database's schema is newer than this code knows (it was opened by a
    newer release), or is not a schema of ours at all.
    """


class CorruptDatabaseError(StoreError):
    """
    The database file is damaged (its integrity check failed, or it is not
    a database at all): the server refuses to start on it rather than
    answer from, and write into, damaged data.
    """


class Cursor(Protocol):
    """
    The part of a DB-API 2 cursor the stores use.
    """

    @property
    def rowcount(self) -> int:
        """
        Rows the last statement changed.
        """

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """
        Run one statement.
        """

    def executemany(self, sql: str, params: Iterable[Sequence[Any]]) -> Any:
        """
        Run one statement once per parameter tuple.
        """

    def fetchone(self) -> Any:
        """
        The next row, or L{None}.
        """

    def fetchall(self) -> List[Any]:
        """
        The remaining rows.
        """

    def close(self) -> Any:
        """
        Release the cursor.
        """


class Pool(Protocol):
    """
    What L{Database} needs of a connection pool: C{adbapi.ConnectionPool}'s
    C{runWithConnection} and C{close}.
    """

    def runWithConnection(self, func: Callable[..., Any], *args: Any) -> Deferred[Any]:
        """
        C{func(connection, *args)} on some connection; commit if it returns,
        roll back if it raises.
        """

    def close(self) -> None:
        """
        Close every connection.
        """


@dataclass(frozen=True)
class Dialect:
    """
    How one SQL engine differs, as far as the stores care.

    @ivar name: C{"sqlite"} or C{"postgresql"}; also the schema folder.
    @ivar begin: the statement that opens a write transaction (SQLite's
        C{BEGIN IMMEDIATE} takes the write lock at once, so two writers
        never deadlock upgrading a read lock).
    @ivar qmark: whether placeholders are C{?} (else C{%s}).
    @ivar for_update: appended to a SELECT that must lock the rows it reads
        until the transaction ends (SQLite needs none: one writer at a time).
    @ivar advisory_locks: whether L{lock} takes a real lock (PostgreSQL's
        transaction-scoped advisory locks; SQLite's writer lock already
        serializes every write transaction).
    @ivar errors: the driver's base exception classes.
    @ivar integrity_errors: the driver's constraint-violation classes.
    @ivar notices: whether L{announce} tells other processes (PostgreSQL's
        C{NOTIFY}, sent at commit); SQLite has no such thing.
    """

    name: str
    begin: str
    qmark: bool
    for_update: str
    advisory_locks: bool
    errors: Tuple[Type[BaseException], ...]
    integrity_errors: Tuple[Type[BaseException], ...]
    schema_version_exists: str
    notices: bool = False

    def sql(self, text: str) -> str:
        """
        C{text}, written with C{?} placeholders, in this driver's style.
        """
        return text if self.qmark else text.replace("?", "%s")

    def lock(self, cursor: Cursor, key: str) -> None:
        """
        Serialize, until the end of the current transaction, every write
        transaction that locks the same C{key} (an owner, an organizer).
        """
        if self.advisory_locks:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (key,))

    def announce(self, cursor: Cursor, change: Change) -> None:
        """
        Tell the other processes sharing the database about C{change} when
        the current transaction commits (and never if it rolls back).
        """
        if self.notices:
            cursor.execute(f"SELECT pg_notify({CHANGES_CHANNEL}, %s)", (change.encode(),))


class Database:
    """
    Runs store operations on pooled connections, each in one transaction.

    @ivar dialect: the L{Dialect} of the engine.
    @ivar origin: this handle's random name in the change notices it sends
        (L{conference.store.changes}), so its own feed can skip them.
    """

    def __init__(
        self,
        dialect: Dialect,
        writer: Pool,
        reader: Optional[Pool] = None,
    ) -> None:
        """
        @param writer: the pool that runs write transactions (for SQLite,
            one connection in one thread).
        @param reader: a pool for reads that need no transaction, or
            L{None} to read through C{writer}.
        """
        self.dialect = dialect
        self.origin = new_origin()
        self._writer = writer
        self._reader = reader
        self._closed = False

    def write(self, fn: Callable[..., T], *args: Any) -> Deferred[T]:
        """
        Run C{fn(cursor, *args)} in a write transaction: committed if it
        returns, rolled back if it raises.

        @return: a Deferred firing with what C{fn} returned, or failing with
            what it raised (database errors become L{StoreError}).
        """
        if self._closed:
            return self._closed_error()
        d: Deferred[T] = self._writer.runWithConnection(self._transaction, fn, args)
        return d.addErrback(self._translate)

    def write_statement(self, fn: Callable[..., T], *args: Any) -> Deferred[T]:
        """
        Run C{fn(cursor, *args)}, which executes exactly one statement, as
        its own transaction (one round trip fewer than L{write}).
        """
        if self._closed:
            return self._closed_error()
        d: Deferred[T] = self._writer.runWithConnection(self._plain, fn, args)
        return d.addErrback(self._translate)

    def read(self, fn: Callable[..., T], *args: Any) -> Deferred[T]:
        """
        Run C{fn(cursor, *args)}, which only reads, outside any transaction
        (each statement sees what was committed when it began).
        """
        if self._closed:
            return self._closed_error()
        pool = self._reader if self._reader is not None else self._writer
        d: Deferred[T] = pool.runWithConnection(self._plain, fn, args)
        return d.addErrback(self._translate)

    def _closed_error(self) -> Deferred[Any]:
        return fail(StoreError(f"the {self.dialect.name} store is closed"))

    def _transaction(self, connection: Any, fn: Callable[..., T], args: Sequence[Any]) -> T:
        cursor = connection.cursor()
        try:
            cursor.execute(self.dialect.begin)
            return fn(cursor, *args)
        finally:
            cursor.close()

    def _plain(self, connection: Any, fn: Callable[..., T], args: Sequence[Any]) -> T:
        cursor = connection.cursor()
        try:
            return fn(cursor, *args)
        finally:
            cursor.close()

    def _translate(self, failure: Failure) -> Failure:
        error = failure.value
        if isinstance(error, StoreError):
            return failure
        if isinstance(error, (*self.dialect.errors, adbapi.ConnectionLost)):
            raise StoreError(f"{self.dialect.name} error: {error}") from error
        return failure

    def close(self) -> Deferred[None]:
        """
        Close the connections once the operations under way are done;
        idempotent.

        @return: a Deferred firing with L{None} when closed.
        """
        if not self._closed:
            self._closed = True
            for pool in (self._reader, self._writer):
                if pool is not None:
                    pool.close()
        return succeed(None)


def schema_files(dialect: str) -> List[Tuple[int, str]]:
    """
    The schema files of C{dialect}, C{(version, text)} in version order:
    C{v1.sql} creates version 1 from nothing, and each later C{vN.sql}
    upgrades version N-1 to N.
    """
    folder = resources.files("conference.store").joinpath("schema").joinpath(dialect)
    found = []
    for item in folder.iterdir():
        name = item.name
        if name.startswith("v") and name.endswith(".sql") and name[1:-4].isdigit():
            found.append((int(name[1:-4]), item.read_text(encoding="utf-8")))
    found.sort()
    if [v for v, _ in found] != list(range(1, len(found) + 1)):
        raise SchemaVersionError(f"schema files of {dialect} are not v1..vN: {found}")
    return found


def statements(script: str) -> List[str]:
    """
    The statements of a schema file: C{--} comment lines dropped, split at
    semicolons (the schema files hold no semicolon in a literal).
    """
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def upgrade_schema(cursor: Cursor, dialect: Dialect) -> int:
    """
    Bring the database to the newest schema version, in the caller's write
    transaction (DDL is transactional in both engines, so a failed upgrade
    leaves the database as it was).

    @return: the version the database is at afterwards.
    @raise SchemaVersionError: if the database is at a version newer than
        the newest file; nothing is changed.
    """
    dialect.lock(cursor, "conference-schema")
    files = schema_files(dialect.name)
    newest = files[-1][0]
    cursor.execute(dialect.schema_version_exists)
    if cursor.fetchone() is None:
        current = 0
    else:
        cursor.execute("SELECT version FROM schema_version")
        rows = cursor.fetchall()
        if len(rows) != 1:
            raise SchemaVersionError(f"schema_version holds {len(rows)} rows, not 1")
        current = int(rows[0][0])
    if current > newest:
        raise SchemaVersionError(
            f"the database is at schema version {current}, newer than this "
            f"software knows (up to {newest}); run a newer release of the "
            f"conference server, or restore a backup"
        )
    for version, script in files[current:]:
        for statement in statements(script):
            cursor.execute(statement)
        cursor.execute("SELECT version FROM schema_version")
        if int(cursor.fetchone()[0]) != version:
            raise SchemaVersionError(f"{dialect.name}/v{version}.sql did not record {version}")
    return max(current, newest)
