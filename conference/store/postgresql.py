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
import threading
from typing import Any, Optional, Tuple
from urllib.parse import quote, urlencode

from twisted.enterprise import adbapi
from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger
from zope.interface import implementer

from conference.interfaces import IChangeFeed
from conference.records import StoreError
from conference.store.changes import CHANGES_CHANNEL, EVERYTHING, ChangeDispatcher
from conference.store.database import Database, Dialect, upgrade_schema

log = Logger()

#: Connections (and threads) per server process.
MAX_CONNECTIONS = 8
#: How long the feed's thread waits for a notice before it checks whether
#: it must stop, and waits before reconnecting, in seconds.
FEED_POLL = 0.5
FEED_RETRY = 1.0


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
        notices=True,
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


@implementer(IChangeFeed)
class PostgreSQLChangeFeed(ChangeDispatcher):
    """
    The change notices of the other processes on one database (and
    schema): a connection of its own, in a thread of its own, C{LISTEN}s
    on the schema's channel (L{CHANGES_CHANNEL}) and hands each notice to
    the reactor thread.

    PostgreSQL delivers a notice only to connections listening when it is
    committed, so after the connection is lost and made again the feed
    reports C{("*", "")}: whatever was sent meanwhile is unknown, and the
    watchers look at everything again.  Nothing polls the tables.
    """

    def __init__(self, conninfo: str, origin: str, reactor: Any) -> None:
        super().__init__(origin)
        self._conninfo = conninfo
        self._reactor = reactor
        self._stopping = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._started: Optional[Deferred[None]] = None
        self._stopped: Optional[Deferred[None]] = None
        self.reconnects = 0

    def start(self) -> Deferred[None]:
        """See L{IChangeFeed.start}: fires once the first C{LISTEN} ran."""
        if self._started is not None:
            return succeed(None) if self._started.called else self._started
        self._started = Deferred()
        self._stopped = Deferred()
        self._thread = threading.Thread(
            target=self._run, name="conference-change-feed", daemon=True
        )
        self._thread.start()
        return self._started

    def stop(self) -> Deferred[None]:
        """See L{IChangeFeed.stop}: the thread ends within L{FEED_POLL}."""
        self._stopping.set()
        if self._stopped is None or self._stopped.called:
            return succeed(None)
        done: Deferred[None] = Deferred()
        self._stopped.addBoth(self._joined, done)
        return done

    def _joined(self, _: object, done: Deferred[None]) -> None:
        # The thread's last act is to ask the reactor to fire _stopped, so
        # it is already leaving: joining here waits microseconds, and a
        # caller of stop() never sees the thread still alive.
        if self._thread is not None:
            self._thread.join(FEED_POLL)
        done.callback(None)

    def _call(self, fn: Any, *args: Any) -> None:
        self._reactor.callFromThread(fn, *args)

    def _listening(self, first: bool) -> None:
        started = self._started
        if first and started is not None and not started.called:
            started.callback(None)
        elif not first:
            self.reconnects += 1
            log.info("Change feed listening again: every subscription is looked at again")
            self.dispatch(EVERYTHING, "")

    def _failed(self, error: Exception, first: bool) -> None:
        started = self._started
        if first and started is not None and not started.called:
            self._stopping.set()
            started.errback(StoreError(f"PostgreSQL change feed: {error}"))
        else:
            log.warn("Change feed lost its connection ({error}); retrying", error=error)

    def _run(self) -> None:
        """
        The thread: connect, listen and hand notices over; after a lost
        connection, again.  A first connection that fails ends the thread
        (L{start} fails).
        """
        listened = False
        try:
            while not self._stopping.is_set():
                connection = None
                try:
                    connection = connect(self._conninfo)
                    [(channel,)] = connection.execute(f"SELECT {CHANGES_CHANNEL}").fetchall()
                    connection.execute('LISTEN "{}"'.format(channel.replace('"', '""')))
                    self._call(self._listening, not listened)
                    listened = True
                    while not self._stopping.is_set():
                        for notice in connection.notifies(timeout=FEED_POLL):
                            self._call(self.deliver, notice.payload)
                except Exception as e:  # the driver's errors, a lost server
                    self._call(self._failed, e, not listened)
                    if not listened:
                        return
                    self._stopping.wait(FEED_RETRY)
                finally:
                    if connection is not None:
                        connection.close()
        finally:
            stopped = self._stopped
            if stopped is not None:
                self._call(stopped.callback, None)


def open_change_feed(conninfo: str, origin: str, reactor: Any) -> Deferred[PostgreSQLChangeFeed]:
    """
    Start the change feed of the database C{conninfo}, skipping the
    notices of C{origin} (the L{Database} of this process).

    @return: a Deferred firing with the listening feed, or failing with
        L{StoreError}.
    """
    feed = PostgreSQLChangeFeed(conninfo, origin, reactor)
    return feed.start().addCallback(lambda _: feed)
