# -*- test-case-name: tests.unit.store.test_sqlite -*-
"""
Tests for L{conference.store.sqlite} (and the SQL stores over it): every
store contract against a SQLite file in the test's temporary directory,
plus what is particular to SQLite.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from conference.records import StoreError
from conference.store.database import CorruptDatabaseError, Database, schema_files
from conference.store.sqlite import open_sqlite
from conference.store.stores import Stores, open_stores
from tests.shared import PROJECT_ROOT
from tests.unit.store.contracts import (
    BindingStoreContract,
    CalendarStoreContract,
    ConferenceStoreContract,
    RegistrationStoreContract,
    StoreBackend,
    binding,
    contact,
)
from tests.unit.store.holdings import AtomicWriteContract, HoldingsContract

# A server stand-in: applies one binding after another and reports each on
# stdout only once its Deferred fired (as the 200 would be sent).
WRITER = """
import sys
from twisted.internet import reactor, defer
from conference.store.stores import open_stores
from tests.unit.store.contracts import CONF, NOW, binding

async def main():
    stores = await open_stores("sqlite:" + sys.argv[1], reactor)
    i = 0
    while True:
        await stores.bindings.apply(CONF, [], [binding(f"http://{i}")], NOW, max_bindings=10**6)
        sys.stdout.write(f"{i}\\n")
        sys.stdout.flush()
        i += 1

reactor.callWhenRunning(lambda: defer.ensureDeferred(main()))
reactor.run()
"""


class SQLiteBackend(StoreBackend):
    """
    SQLite stores on a fresh file; a second handle opens the same file with
    its own connections and threads.
    """

    durable = True
    path = ""

    async def open_stores(self) -> Stores:
        """
        Stores on a new file.
        """
        self.path = self.mktemp() + ".sqlite"
        return await self.open_again()

    async def open_again(self) -> Stores:
        """
        Stores on the same file.
        """
        stores = await open_stores(f"sqlite:{self.path}", reactor)
        self.addCleanup(stores.close)
        return stores


class SQLiteConferenceStoreTests(SQLiteBackend, ConferenceStoreContract, TestCase):
    """
    L{conference.store.sql.SQLConferenceStore} on SQLite.
    """


class SQLiteCalendarStoreTests(SQLiteBackend, CalendarStoreContract, TestCase):
    """
    L{conference.store.sql.SQLCalendarStore} on SQLite.
    """


class SQLiteRegistrationStoreTests(SQLiteBackend, RegistrationStoreContract, TestCase):
    """
    L{conference.store.sql.SQLRegistrationStore} on SQLite.
    """


class SQLiteBindingStoreTests(SQLiteBackend, BindingStoreContract, TestCase):
    """
    L{conference.store.sql.SQLBindingStore} on SQLite.
    """


class SQLiteHoldingsTests(SQLiteBackend, HoldingsContract, TestCase):
    """
    Holders and byte caps of the SQL stores on SQLite.
    """


class SQLiteAtomicWriteTests(SQLiteBackend, AtomicWriteContract, TestCase):
    """
    Conference writes are atomic on SQLite.
    """

    async def open_database(self) -> Database:
        """
        A database on a new file.
        """
        database = await open_sqlite(self.mktemp(), reactor)
        self.addCleanup(database.close)
        return database


class SQLiteTests(TestCase):
    """
    What only the SQLite backend does.
    """

    async def test_wal(self) -> None:
        """
        The file is put in WAL journal mode with the newest schema.
        """
        path = self.mktemp()
        database = await open_sqlite(path, reactor)
        await database.close()
        with sqlite3.connect(path) as connection:
            self.assertEqual(connection.execute("PRAGMA journal_mode").fetchone()[0], "wal")
            self.assertEqual(
                connection.execute("SELECT version FROM schema_version").fetchall(),
                [(schema_files("sqlite")[-1][0],)],
            )

    async def test_memory_refused(self) -> None:
        """
        A :memory: database is refused (each connection would see its own).
        """
        failure = await self.assertFailure(open_sqlite(":memory:", reactor), StoreError)
        self.assertIn("--store memory", str(failure))

    async def test_bad_synchronous(self) -> None:
        """
        An unknown synchronous mode is refused.
        """
        await self.assertFailure(
            open_sqlite(self.mktemp(), reactor, synchronous="sometimes"), StoreError
        )

    async def test_corrupt_refused(self) -> None:
        """
        A file whose pages are damaged is refused at open with a
        CorruptDatabaseError naming the file, and left as it was.
        """
        path = self.mktemp()
        stores = await open_stores(f"sqlite:{path}", reactor)
        for i in range(300):
            await stores.registrations.set_bindings(
                f"sip:user{i}@example.com", [contact(f"sip:u@192.0.2.1;n={'x' * 200}")], [], 0.0
            )
        await stores.close()
        with open(path, "r+b") as f:
            f.seek(3 * 4096)
            f.write(b"\xff" * 4096)
        with open(path, "rb") as f:
            damaged = f.read()
        failure = await self.assertFailure(open_sqlite(path, reactor), CorruptDatabaseError)
        self.assertIn(path, str(failure))
        self.assertIn("corrupt", str(failure))
        self.assertNotIn("\n", str(failure))
        with open(path, "rb") as f:
            self.assertEqual(f.read(), damaged)

    async def test_not_a_database(self) -> None:
        """
        A file that is no SQLite database is refused the same way.
        """
        path = self.mktemp()
        with open(path, "wb") as f:
            f.write(b"conference notes, not a database\n" * 300)
        failure = await self.assertFailure(open_sqlite(path, reactor), CorruptDatabaseError)
        self.assertIn("not a database", str(failure))

    async def test_quick_check_findings(self) -> None:
        """
        Problems quick_check reports as rows are quoted, the first three
        of them, in the error.
        """
        path = self.mktemp()
        database = await open_sqlite(path, reactor)
        await database.close()
        with sqlite3.connect(path) as connection:
            connection.execute("CREATE TABLE t (x TEXT NOT NULL)")
            connection.execute("PRAGMA ignore_check_constraints = ON")
            connection.execute("PRAGMA writable_schema = ON")
            connection.execute(
                "UPDATE sqlite_master SET sql = 'CREATE TABLE t (x TEXT)' WHERE name = 't'"
            )
        connection.close()
        with sqlite3.connect(path) as connection:
            connection.executemany("INSERT INTO t VALUES (?)", [(None,)] * 5)
            connection.execute("PRAGMA writable_schema = ON")
            connection.execute(
                "UPDATE sqlite_master SET sql = 'CREATE TABLE t (x TEXT NOT NULL)' WHERE name = 't'"
            )
        connection.close()
        failure = await self.assertFailure(open_sqlite(path, reactor), CorruptDatabaseError)
        self.assertIn("quick_check found 5 problem(s)", str(failure))
        self.assertIn("(and 2 more)", str(failure))

    async def test_unopenable(self) -> None:
        """
        A path in a missing directory is a StoreError naming the path.
        """
        path = self.mktemp() + "/missing/db.sqlite"
        failure = await self.assertFailure(open_sqlite(path, reactor), StoreError)
        self.assertIn(path, str(failure))


class CrashTests(TestCase):
    """
    What a killed server leaves behind.
    """

    async def test_kill(self) -> None:
        """
        Every update acknowledged before C{kill -9} is there after reopening.
        """
        path = os.path.abspath(self.mktemp())
        env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
        child = subprocess.Popen(
            [sys.executable, "-c", WRITER, path], stdout=subprocess.PIPE, env=env, text=True
        )
        assert child.stdout is not None
        acknowledged = -1
        while acknowledged < 300:
            line = child.stdout.readline()
            if not line:
                break
            acknowledged = int(line)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
        self.assertGreaterEqual(acknowledged, 300)
        database = await open_sqlite(path, reactor)
        stores = Stores.sql(database, path)
        self.addCleanup(stores.close)
        found = {b.uri for b in await stores.bindings.bindings(binding("x").owner, 0.0)}
        missing = [i for i in range(acknowledged + 1) if f"http://{i}" not in found]
        self.assertEqual(missing, [])


class ThreadedReaderTests(SQLiteBackend, BindingStoreContract, TestCase):
    """
    L{conference.store.sql.SQLBindingStore} on SQLite with reads on a pool
    of two threads rather than inline.
    """

    async def open_again(self) -> Stores:
        """
        Stores on the same file, reading through two threads.
        """
        stores = Stores.sql(await open_sqlite(self.path, reactor, readers=2), self.path)
        self.addCleanup(stores.close)
        return stores
