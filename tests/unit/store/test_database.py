# -*- test-case-name: tests.unit.store.test_database -*-
"""
Tests for L{conference.store.database}: the schema files, the forward
upgrade on open and the refusal of a newer database, the translation of
driver errors, and closing.
"""

from __future__ import annotations

import sqlite3

from twisted.internet import reactor
from twisted.trial.unittest import SynchronousTestCase, TestCase

from conference.records import StoreError
from conference.store.database import (
    Cursor,
    SchemaVersionError,
    schema_files,
    statements,
)
from conference.store.sqlite import open_sqlite
from conference.store.stores import Stores, open_stores
from tests.unit.store.contracts import ALICE
from tests.unit.store.holdings import CAROL, LEGACY_ROWS, V2_OWNER, Rows, check_upgraded


class SchemaFileTests(SynchronousTestCase):
    """
    The schema files shipped in the package.
    """

    def test_versions_match(self) -> None:
        """
        Both dialects ship the same versions, starting at v1.
        """
        sqlite_versions = [v for v, _ in schema_files("sqlite")]
        self.assertEqual(sqlite_versions[0], 1)
        self.assertEqual(sqlite_versions, [v for v, _ in schema_files("postgresql")])

    def test_tables_match(self) -> None:
        """
        Both dialects create the same tables, and each file records its version.
        """

        def tables(dialect: str) -> list[str]:
            found = []
            for version, script in schema_files(dialect):
                for statement in statements(script):
                    if statement.startswith("CREATE TABLE"):
                        found.append(statement.split()[2])
                self.assertIn(f"UPDATE schema_version SET version = {version}", script)
            return found

        self.assertEqual(tables("sqlite"), tables("postgresql"))
        self.assertIn("bindings", tables("sqlite"))

    def test_statements(self) -> None:
        """
        statements drops comment lines and splits at semicolons.
        """
        script = (
            "-- a comment\nCREATE TABLE t (x INTEGER);\n\n  -- another\nINSERT INTO t VALUES (1);\n"
        )
        self.assertEqual(
            statements(script), ["CREATE TABLE t (x INTEGER)", "INSERT INTO t VALUES (1)"]
        )


class UpgradeTests(TestCase):
    """
    Opening a database brings its schema forward, or refuses it.
    """

    async def test_empty_file(self) -> None:
        """
        An empty database gets the newest schema.
        """
        path = self.mktemp()
        database = await open_sqlite(path, reactor)
        await database.close()
        newest = schema_files("sqlite")[-1][0]
        with sqlite3.connect(path) as connection:
            rows = connection.execute("SELECT version FROM schema_version").fetchall()
        self.assertEqual(rows, [(newest,)])

    async def test_v1_opens(self) -> None:
        """
        A database at version 1 with data opens and keeps its data.
        """
        path = self.mktemp()
        with sqlite3.connect(path) as connection:
            for statement in statements(schema_files("sqlite")[0][1]):
                connection.execute(statement)
            connection.execute(
                "INSERT INTO binding_owners (owner, dispositions) VALUES ('sip:a@x', 'web')"
            )
        connection.close()
        database = await open_sqlite(path, reactor)
        self.addCleanup(database.close)

        def read(cursor: Cursor) -> object:
            cursor.execute("SELECT owner, dispositions FROM binding_owners")
            return cursor.fetchall()

        self.assertEqual(await database.read(read), [("sip:a@x", "web")])

    async def test_v1_entries_refer(self) -> None:
        """
        Upgrading from version 1 turns the calendar copies of a stored
        conference's UID into references to it; other entries keep theirs.
        """
        await self.check_legacy(versions=1, rows=LEGACY_ROWS, owner=ALICE)

    async def test_v2_entries_refer(self) -> None:
        """
        Upgrading from version 2 (owners recorded) to 3 turns the copies
        into references as well, and keeps the recorded owner.
        """
        await self.check_legacy(versions=2, rows=[*LEGACY_ROWS, V2_OWNER], owner=CAROL)

    async def check_legacy(self, versions: int, rows: Rows, owner: str) -> None:
        """
        Open a database built by the first C{versions} schema files holding
        C{rows}, and check the upgrade (L{check_upgraded}).
        """
        path = self.mktemp()
        with sqlite3.connect(path) as connection:
            for _, script in schema_files("sqlite")[:versions]:
                for statement in statements(script):
                    connection.execute(statement)
            for statement, params in rows:
                connection.execute(statement, params)
        connection.close()
        stores = Stores.sql(await open_sqlite(path, reactor), path)
        self.addCleanup(stores.close)
        await check_upgraded(self, stores, owner)

    async def test_v1_conferences_get_owners(self) -> None:
        """
        Conferences stored at version 1 are their organizer's after the
        upgrade (version 2 records owners).
        """
        path = self.mktemp()
        with sqlite3.connect(path) as connection:
            for statement in statements(schema_files("sqlite")[0][1]):
                connection.execute(statement)
            connection.execute(
                "INSERT INTO conferences VALUES "
                "('sip:c@x', 'u', 'sip:a@x', x'00', 0, 'scheduled', '{}', 1, 0, 0)"
            )
        connection.close()
        stores = await open_stores(f"sqlite:{path}", reactor)
        self.addCleanup(stores.close)
        record = await stores.conferences.get("sip:c@x")
        assert record is not None
        self.assertEqual((record.organizer, record.owner), ("sip:a@x", "sip:a@x"))

    async def test_newer_refused(self) -> None:
        """
        A database claiming version 999 is refused with a clear error and
        left as it was.
        """
        path = self.mktemp()
        database = await open_sqlite(path, reactor)
        await database.close()
        with sqlite3.connect(path) as connection:
            connection.execute("UPDATE schema_version SET version = 999")
        connection.close()
        failure = await self.assertFailure(open_sqlite(path, reactor), SchemaVersionError)
        self.assertIn("schema version 999", str(failure))
        self.assertIn(path, str(failure))
        with sqlite3.connect(path) as connection:
            rows = connection.execute("SELECT version FROM schema_version").fetchall()
        connection.close()
        self.assertEqual(rows, [(999,)])

    async def test_broken_version_table(self) -> None:
        """
        A schema_version table with other than one row is refused.
        """
        path = self.mktemp()
        with sqlite3.connect(path) as connection:
            connection.execute("CREATE TABLE schema_version (version INTEGER)")
        connection.close()
        await self.assertFailure(open_sqlite(path, reactor), SchemaVersionError)


class DatabaseTests(TestCase):
    """
    L{conference.store.database.Database} on SQLite.
    """

    async def test_driver_errors(self) -> None:
        """
        A driver error becomes a StoreError naming the engine.
        """
        database = await open_sqlite(self.mktemp(), reactor)
        self.addCleanup(database.close)

        def bad(cursor: Cursor) -> object:
            cursor.execute("SELECT * FROM no_such_table")
            return cursor.fetchall()

        for run in (database.read, database.write, database.write_statement):
            failure = await self.assertFailure(run(bad), StoreError)
            self.assertIn("sqlite error", str(failure))

    async def test_rollback(self) -> None:
        """
        A write that raises leaves nothing behind.
        """
        database = await open_sqlite(self.mktemp(), reactor)
        self.addCleanup(database.close)

        def half(cursor: Cursor) -> None:
            cursor.execute("INSERT INTO binding_owners (owner) VALUES ('sip:a@x')")
            raise StoreError("changed my mind")

        def count(cursor: Cursor) -> object:
            cursor.execute("SELECT count(*) FROM binding_owners")
            return cursor.fetchone()[0]

        await self.assertFailure(database.write(half), StoreError)
        self.assertEqual(await database.read(count), 0)

    async def test_close_twice(self) -> None:
        """
        close is idempotent, and a closed database refuses work with a
        StoreError (rather than queueing it forever).
        """
        database = await open_sqlite(self.mktemp(), reactor)
        await database.close()
        await database.close()

        def nothing(cursor: Cursor) -> object:
            cursor.execute("SELECT 1")
            return cursor.fetchall()

        for run in (database.read, database.write, database.write_statement):
            failure = await self.assertFailure(run(nothing), StoreError)
            self.assertIn("closed", str(failure))
