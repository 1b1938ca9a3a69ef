# -*- test-case-name: tests.loopback.test_postgresql -*-
"""
Tests for L{conference.store.postgresql} (and the SQL stores over it):
every store contract against a real PostgreSQL server, each test in a
schema of its own, plus what is particular to PostgreSQL.

The server is named by C{$CONFERENCE_TEST_POSTGRES} (a libpq URI or
conninfo; C{.ci/postgres.sh} starts a throwaway one and prints it).
Without it the tests skip, except under CI (C{$CI} set), where they fail.
"""

from __future__ import annotations

import os
import platform
import secrets
import time
from typing import Any, Callable, List, Tuple

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.trial.unittest import SkipTest, TestCase
from zope.interface.verify import verifyObject

from conference.interfaces import IChangeFeed
from conference.records import ConferenceRecord, ConflictError, StoreError
from conference.store.cache import cache_bindings
from conference.store.changes import BINDING, CHANGES_CHANNEL, CONFERENCE, DISPOSITIONS, EVERYTHING
from conference.store.database import Database, SchemaVersionError, schema_files, statements
from conference.store.postgresql import (
    PostgreSQLChangeFeed,
    connect,
    conninfo_with,
    open_postgresql,
    postgresql_driver,
)
from conference.store.stores import Stores, open_stores
from tests.unit.store.contracts import (
    ALICE,
    NOW,
    BindingStoreContract,
    CalendarStoreContract,
    ConferenceStoreContract,
    RegistrationStoreContract,
    StoreBackend,
    binding,
)
from tests.unit.store.holdings import (
    CAROL,
    LEGACY_ROWS,
    V2_OWNER,
    AtomicWriteContract,
    HoldingsContract,
    Rows,
    check_upgraded,
)

ENVIRONMENT = "CONFERENCE_TEST_POSTGRES"
OWNER = "sip:room@example.com"
CONF = "sip:conf-feed@example.com"


def server(test: TestCase) -> str:
    """
    The conninfo of the test server.

    @raise SkipTest: if none is configured (or psycopg is missing), unless
        C{$CI} is set, in which case the test fails.
    """
    if platform.python_implementation() == "PyPy":
        # Documented: the backend is CPython only (conference.store.postgresql).
        raise SkipTest("the PostgreSQL store is not available on PyPy")
    conninfo = os.environ.get(ENVIRONMENT, "")
    problem = ""
    if not conninfo:
        problem = (
            f'${ENVIRONMENT} is not set; run `eval "$(.ci/postgres.sh)"` to start a '
            "throwaway PostgreSQL server for these tests"
        )
    else:
        try:
            postgresql_driver()
        except StoreError as e:
            problem = str(e)
    if problem:
        if os.environ.get("CI"):
            test.fail(f"PostgreSQL store tests cannot run under CI: {problem}")
        raise SkipTest(problem)
    return conninfo


def fresh_schema(test: TestCase) -> str:
    """
    Create an empty schema for C{test} (dropped at cleanup) and return a
    conninfo whose search_path is that schema.
    """
    base = server(test)
    schema = "test_" + secrets.token_hex(6)
    run_statement(base, f"CREATE SCHEMA {schema}")
    test.addCleanup(run_statement, base, f"DROP SCHEMA {schema} CASCADE")
    return conninfo_with(base, options=f"-c search_path={schema}")


def run_statement(conninfo: str, statement: str) -> Any:
    """
    Run one statement on a connection of its own; return its rows.
    """
    connection = connect(conninfo)
    try:
        cursor = connection.cursor()
        cursor.execute(statement)
        return [tuple(row) for row in cursor.fetchall()] if cursor.description else None
    finally:
        connection.close()


class PostgreSQLBackend(StoreBackend):
    """
    PostgreSQL stores in a fresh schema; a second handle is a second pool of
    connections on the same schema, as a second server would have.
    """

    durable = True
    conninfo = ""

    async def open_stores(self) -> Stores:
        """
        Stores in a new schema.
        """
        self.conninfo = fresh_schema(self)
        return await self.open_again()

    async def open_again(self) -> Stores:
        """
        Stores on the same schema.
        """
        stores = await open_stores(f"postgresql:{self.conninfo}", reactor)
        self.addCleanup(stores.close)
        return stores


class PostgreSQLConferenceStoreTests(PostgreSQLBackend, ConferenceStoreContract, TestCase):
    """
    L{conference.store.sql.SQLConferenceStore} on PostgreSQL.
    """


class PostgreSQLCalendarStoreTests(PostgreSQLBackend, CalendarStoreContract, TestCase):
    """
    L{conference.store.sql.SQLCalendarStore} on PostgreSQL.
    """


class PostgreSQLRegistrationStoreTests(PostgreSQLBackend, RegistrationStoreContract, TestCase):
    """
    L{conference.store.sql.SQLRegistrationStore} on PostgreSQL.
    """


class PostgreSQLBindingStoreTests(PostgreSQLBackend, BindingStoreContract, TestCase):
    """
    L{conference.store.sql.SQLBindingStore} on PostgreSQL.
    """


class PostgreSQLCachedBindingStoreTests(PostgreSQLBackend, BindingStoreContract, TestCase):
    """
    The binding cache over PostgreSQL (each handle with a cache of its own,
    told of the other's changes by the feed) keeps the binding store
    contract.
    """

    async def open_again(self) -> Stores:
        """
        Stores on the same schema, bindings cached.
        """
        return cache_bindings(await super().open_again(), reactor.seconds)


class PostgreSQLHoldingsTests(PostgreSQLBackend, HoldingsContract, TestCase):
    """
    Holders and byte caps of the SQL stores on PostgreSQL.
    """


class PostgreSQLAtomicWriteTests(PostgreSQLBackend, AtomicWriteContract, TestCase):
    """
    Conference writes are atomic on PostgreSQL.
    """

    def disk_full(self) -> BaseException:
        """
        What psycopg raises when the server's disk is full.
        """
        from psycopg.errors import DiskFull

        return DiskFull("could not extend file: No space left on device")

    async def open_database(self) -> Database:
        """
        A database in a fresh schema.
        """
        database = await open_postgresql(fresh_schema(self), reactor)
        self.addCleanup(database.close)
        return database


class PostgreSQLTests(TestCase):
    """
    What only the PostgreSQL backend does.
    """

    def execute(self, conninfo: str, statement: str) -> Any:
        """
        Run one statement on a connection of its own; return its rows.
        """
        return run_statement(conninfo, statement)

    async def test_schema(self) -> None:
        """
        Opening creates the newest schema; opening again leaves it so.
        """
        conninfo = fresh_schema(self)
        for _ in range(2):
            stores = await open_stores(f"postgresql:{conninfo}", reactor)
            await stores.close()
        newest = schema_files("postgresql")[-1][0]
        self.assertEqual(self.execute(conninfo, "SELECT version FROM schema_version"), [(newest,)])

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
        conninfo = fresh_schema(self)
        connection = connect(conninfo)
        try:
            cursor = connection.cursor()
            for _, script in schema_files("postgresql")[:versions]:
                for statement in statements(script):
                    cursor.execute(statement)
            for statement, params in rows:
                cursor.execute(statement.replace("?", "%s"), params)
        finally:
            connection.close()
        stores = await open_stores(f"postgresql:{conninfo}", reactor)
        self.addCleanup(stores.close)
        await check_upgraded(self, stores, owner)

    async def test_v1_conferences_get_owners(self) -> None:
        """
        Conferences stored at schema version 1 are their organizer's after
        the upgrade to version 2.
        """
        conninfo = fresh_schema(self)
        for statement in statements(schema_files("postgresql")[0][1]):
            self.execute(conninfo, statement)
        self.execute(
            conninfo,
            "INSERT INTO conferences VALUES "
            "('sip:c@x', 'u', 'sip:a@x', '\\x00', 0, 'scheduled', '{}', 1, 0, 0)",
        )
        stores = await open_stores(f"postgresql:{conninfo}", reactor)
        self.addCleanup(stores.close)
        record = await stores.conferences.get("sip:c@x")
        assert record is not None
        self.assertEqual((record.organizer, record.owner), ("sip:a@x", "sip:a@x"))

    async def test_newer_refused(self) -> None:
        """
        A database claiming a newer schema version is refused, unchanged.
        """
        conninfo = fresh_schema(self)
        stores = await open_stores(f"postgresql:{conninfo}", reactor)
        await stores.close()
        self.execute(conninfo, "UPDATE schema_version SET version = 999")
        opening = open_stores(f"postgresql:{conninfo}", reactor)
        failure = await self.assertFailure(opening, SchemaVersionError)
        self.assertIn("999", str(failure))
        self.assertEqual(self.execute(conninfo, "SELECT version FROM schema_version"), [(999,)])

    async def test_uri_description(self) -> None:
        """
        C{--store postgresql://...} (a bare URI) is accepted as well.
        """
        conninfo = server(self)
        if not conninfo.startswith("postgresql://"):
            raise SkipTest(f"${ENVIRONMENT} is not a postgresql:// URI")
        fresh_schema(self)
        stores = await open_stores(conninfo, reactor)
        self.addCleanup(stores.close)
        self.assertEqual(stores.description, "postgresql")

    async def test_unreachable(self) -> None:
        """
        A server that is not there is a StoreError, not a driver exception.
        """
        server(self)
        opening = open_stores("postgresql:host=127.0.0.1 port=1 connect_timeout=5", reactor)
        failure = await self.assertFailure(opening, StoreError)
        self.assertIn("PostgreSQL", str(failure))


async def eventually(check: Callable[[], bool], seconds: float = 10.0) -> bool:
    """Wait (on the reactor) until C{check()} holds; whether it did in time."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        await deferLater(reactor, 0.02, lambda: None)
    return True


def cached_sees(store: Any, expected: List[Any]) -> bool:
    """Whether C{store} answers at once with C{expected} for the test owner."""
    out: List[Any] = []
    store.bindings(OWNER, NOW).addCallback(out.append)
    return out == [expected]


class ChangeFeedTests(TestCase):
    """
    The change feed (PostgreSQL LISTEN/NOTIFY) between two store handles on
    one schema, as two server nodes have: committed binding changes of one
    reach the other's watchers, and only those.
    """

    async def open_pair(self) -> Tuple[Stores, Stores, List[Tuple[str, str]]]:
        """Two handles on a fresh schema and what the second one's feed reports."""
        self.conninfo = fresh_schema(self)
        first = await open_stores(f"postgresql:{self.conninfo}", reactor)
        self.addCleanup(first.close)
        second = await open_stores(f"postgresql:{self.conninfo}", reactor)
        self.addCleanup(second.close)
        heard: List[Tuple[str, str]] = []
        second.changes.watch(lambda kind, key: heard.append((kind, key)))
        return first, second, heard

    async def test_change_reaches_other_handle(self) -> None:
        """A BIND committed through one handle is reported to the other, not to itself."""
        first, _, heard = await self.open_pair()
        own: List[Tuple[str, str]] = []
        first.changes.watch(lambda kind, key: own.append((kind, key)))
        verifyObject(IChangeFeed, first.changes)
        await first.bindings.apply(
            OWNER, [], [binding("http://a/1", owner=OWNER)], NOW, max_bindings=10
        )
        self.assertTrue(await eventually(lambda: heard == [(BINDING, OWNER)]), heard)
        await deferLater(reactor, 0.3, lambda: None)
        self.assertEqual((own, heard), ([], [(BINDING, OWNER)]))

    async def test_conference_change_reaches_other_handle(self) -> None:
        """A conference written, then deleted, through one handle is reported to the other."""
        first, _, heard = await self.open_pair()
        record = ConferenceRecord(uri=CONF, uid="uid-feed", organizer=OWNER, calendar=b"<x/>")
        await first.conferences.put(record, None)
        await first.conferences.delete(CONF)
        wanted = [(CONFERENCE, CONF), (CONFERENCE, CONF)]
        self.assertTrue(await eventually(lambda: heard == wanted), heard)

    async def test_rolled_back_change_not_reported(self) -> None:
        """A write that fails (etag conflict) sends nothing; the next one is heard alone."""
        first, _, heard = await self.open_pair()
        failing = first.bindings.apply(
            OWNER,
            [],
            [binding("http://a/1", owner=OWNER)],
            NOW,
            max_bindings=10,
            expected_etags={("conference", "http://a/1"): "nope"},
        )
        await self.assertFailure(failing, ConflictError)
        other = "sip:other@example.com"
        await first.bindings.apply(
            other, [], [binding("http://b/1", owner=other)], NOW, max_bindings=10
        )
        self.assertTrue(await eventually(lambda: bool(heard)))
        self.assertEqual(heard, [(BINDING, other)])

    async def test_other_schema_not_heard(self) -> None:
        """Changes in another schema of the same database are not reported."""
        first, _, heard = await self.open_pair()
        elsewhere = await open_stores(f"postgresql:{fresh_schema(self)}", reactor)
        self.addCleanup(elsewhere.close)
        stranger: List[Tuple[str, str]] = []
        elsewhere.changes.watch(lambda kind, key: stranger.append((kind, key)))
        await first.bindings.apply(
            OWNER, [], [binding("http://a/1", owner=OWNER)], NOW, max_bindings=10
        )
        self.assertTrue(await eventually(lambda: bool(heard)))
        await deferLater(reactor, 0.3, lambda: None)
        self.assertEqual(stranger, [])

    async def test_reconnect_reports_everything(self) -> None:
        """A feed whose connection is killed listens again and reports ("*", "")."""
        first, _, heard = await self.open_pair()
        [(channel,)] = run_statement(self.conninfo, f"SELECT {CHANGES_CHANNEL}")
        killed = run_statement(
            self.conninfo,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE query = 'LISTEN \"{channel}\"'",
        )
        self.assertEqual(len(killed), 2)  # both handles listen
        self.assertTrue(await eventually(lambda: (EVERYTHING, "") in heard), heard)
        await first.bindings.apply(
            OWNER, [], [binding("http://a/1", owner=OWNER)], NOW, max_bindings=10
        )
        self.assertTrue(await eventually(lambda: (BINDING, OWNER) in heard), heard)

    async def test_dispositions_reported(self) -> None:
        """Setting an owner's dispositions through one handle is reported to the other."""
        first, _, heard = await self.open_pair()
        await first.bindings.set_owner_dispositions(OWNER, ["web"])
        self.assertTrue(await eventually(lambda: heard == [(DISPOSITIONS, OWNER)]), heard)

    async def test_cache_forgets_change_elsewhere(self) -> None:
        """A node's binding cache answers with what another node committed once told."""
        first, second, _ = await self.open_pair()
        cached = cache_bindings(second, reactor.seconds).bindings
        self.assertEqual(await cached.bindings(OWNER, NOW), [])
        self.assertEqual(await cached.owner_dispositions(OWNER), None)
        added = binding("http://a/1", owner=OWNER)
        await first.bindings.apply(OWNER, [], [added], NOW, max_bindings=10)
        await first.bindings.set_owner_dispositions(OWNER, ["web"])
        self.assertTrue(await eventually(lambda: cached_sees(cached, [added])))
        self.assertEqual(await cached.owner_dispositions(OWNER), frozenset({"web"}))

    async def test_stop(self) -> None:
        """Closing the stores stops the feed's thread."""
        _, second, _ = await self.open_pair()
        feed = second.changes
        assert isinstance(feed, PostgreSQLChangeFeed)
        await second.close()
        self.assertFalse(feed._thread is not None and feed._thread.is_alive())

    async def test_unreachable(self) -> None:
        """A feed that cannot connect fails to start with a StoreError."""
        server(self)
        feed = PostgreSQLChangeFeed("host=127.0.0.1 port=1 connect_timeout=5", "x", reactor)
        starting: Deferred[Any] = feed.start()
        failure = await self.assertFailure(starting, StoreError)
        self.assertIn("change feed", str(failure))
