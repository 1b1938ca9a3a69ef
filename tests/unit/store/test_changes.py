# -*- test-case-name: tests.unit.store.test_changes -*-
"""
Tests for L{conference.store.changes}: the change notices between server
processes sharing one database, and the local feed.
"""

from __future__ import annotations

from typing import List, Tuple

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from conference.interfaces import IChangeFeed
from conference.store.changes import (
    BINDING,
    MAX_PAYLOAD,
    Change,
    ChangeDispatcher,
    LocalChangeFeed,
    decode_change,
)
from conference.store.database import Dialect


class ChangeTests(SynchronousTestCase):
    """
    A notice's payload: compact JSON, read back exactly, anything else ignored.
    """

    @given(st.text(max_size=200), st.text(max_size=500), st.text(max_size=50))
    def test_round_trip(self, kind: str, key: str, origin: str) -> None:
        """Any change of a sane size reads back the same."""
        change = Change(kind, key, origin)
        self.assertEqual(decode_change(change.encode()), change)

    def test_too_long(self) -> None:
        """A key too long for a PostgreSQL notice is refused with ValueError."""
        self.assertRaises(ValueError, Change(BINDING, "x" * MAX_PAYLOAD, "o").encode)

    def test_not_ours(self) -> None:
        """Payloads that are not our notices decode to None."""
        for payload in ["", "nonsense", "{}", "[1,2,3]", '["a","b"]', '["a","b",3]', "null"]:
            self.assertIsNone(decode_change(payload), payload)


class DispatcherTests(SynchronousTestCase):
    """
    Delivering notices to watchers.
    """

    def setUp(self) -> None:
        self.dispatcher = ChangeDispatcher("me")
        self.heard: List[Tuple[str, str]] = []
        self.dispatcher.watch(lambda kind, key: self.heard.append((kind, key)))

    def test_delivered(self) -> None:
        """Another origin's notice reaches every watcher."""
        self.dispatcher.deliver(Change(BINDING, "sip:room@x", "other").encode())
        self.assertEqual(self.heard, [(BINDING, "sip:room@x")])
        self.assertEqual(self.dispatcher.delivered, 1)

    def test_own_and_malformed_ignored(self) -> None:
        """Our own notices and malformed payloads are counted and dropped."""
        self.dispatcher.deliver(Change(BINDING, "sip:room@x", "me").encode())
        self.dispatcher.deliver("garbage")
        self.assertEqual((self.heard, self.dispatcher.ignored), ([], 2))

    def test_failing_watcher(self) -> None:
        """A watcher that raises is logged once; the others still hear the change."""
        dispatcher = ChangeDispatcher("me")
        heard: List[str] = []

        def broken(kind: str, key: str) -> None:
            raise RuntimeError("boom")

        dispatcher.watch(broken)
        dispatcher.watch(lambda kind, key: heard.append(key))
        dispatcher.dispatch(BINDING, "sip:room@x")
        self.assertEqual(heard, ["sip:room@x"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class LocalFeedTests(SynchronousTestCase):
    """
    The feed of stores no other process shares.
    """

    def test_interface(self) -> None:
        """It provides IChangeFeed; start and stop succeed at once."""
        feed = LocalChangeFeed()
        verifyObject(IChangeFeed, feed)
        self.assertIsNone(self.successResultOf(feed.start()))
        self.assertIsNone(self.successResultOf(feed.stop()))

    def test_publish(self) -> None:
        """What is published as another origin is reported; as our own, not."""
        feed = LocalChangeFeed()
        heard: List[Tuple[str, str]] = []
        feed.watch(lambda kind, key: heard.append((kind, key)))
        feed.publish(BINDING, "sip:a@x")
        feed.publish(BINDING, "sip:b@x", origin=feed.origin)
        self.assertEqual(heard, [(BINDING, "sip:a@x")])


class FakeCursor:
    """Records the statements it is given."""

    def __init__(self) -> None:
        self.statements: List[Tuple[str, Tuple[object, ...]]] = []

    def execute(self, sql: str, params: Tuple[object, ...] = ()) -> None:
        self.statements.append((sql, tuple(params)))


class AnnounceTests(SynchronousTestCase):
    """
    Dialect.announce: a NOTIFY in the transaction where the engine has one.
    """

    def dialect(self, notices: bool) -> Dialect:
        return Dialect("x", "BEGIN", False, "", False, (), (), "", notices=notices)

    def test_postgresql(self) -> None:
        """With notices, the change goes out through pg_notify on the schema's channel."""
        cursor = FakeCursor()
        change = Change(BINDING, "sip:room@x", "o")
        self.dialect(True).announce(cursor, change)  # type: ignore[arg-type]
        [(sql, params)] = cursor.statements
        self.assertIn("pg_notify('conference:' || left(md5(current_schema()), 16), %s)", sql)
        self.assertEqual(params, (change.encode(),))

    def test_sqlite(self) -> None:
        """Without notices (SQLite), nothing is executed."""
        cursor = FakeCursor()
        self.dialect(False).announce(cursor, Change(BINDING, "k", "o"))  # type: ignore[arg-type]
        self.assertEqual(cursor.statements, [])
