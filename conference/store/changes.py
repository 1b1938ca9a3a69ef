# -*- test-case-name: tests.unit.store.test_changes -*-
"""
Change notices between the server processes that share one database: what
a notice says, and the feeds that deliver them (L{IChangeFeed}).

A store that commits a change other nodes may watch (a BIND changing an
owner's bindings) adds a notice to the same transaction, so the notice is
sent if and only if the change is committed (PostgreSQL's C{NOTIFY}).
Each notice names its origin, a random identifier of the process's
L{conference.store.database.Database}, so a process ignores its own.

L{LocalChangeFeed} is the feed of single-process stores (memory, SQLite):
no other process can commit anything, so it reports nothing unless a test
publishes to it.  The PostgreSQL feed is in L{conference.store.postgresql}.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Callable, List, Optional

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from zope.interface import implementer

from conference.interfaces import IChangeFeed

log = Logger()

#: The PostgreSQL notification channel the notices travel on, as an SQL
#: expression: channels are per database, so the name carries (a digest of)
#: the schema, and deployments or tests in other schemas are not heard.
CHANGES_CHANNEL = "'conference:' || left(md5(current_schema()), 16)"
#: The kinds of change a notice names.
BINDING = "binding"
CONFERENCE = "conference"
#: An owner's accepted dispositions changed (its bindings did not: no NOTIFY).
DISPOSITIONS = "dispositions"
EVERYTHING = "*"
#: PostgreSQL refuses payloads of 8000 bytes or more; keys are URIs.
MAX_PAYLOAD = 7900


def new_origin() -> str:
    """A fresh random identifier for one process's database handle."""
    return secrets.token_hex(8)


@dataclass(frozen=True)
class Change:
    """
    One committed change: C{kind} (L{BINDING}: C{key} is the owner URI;
    L{CONFERENCE}: the conference URI) and the C{origin} of the process
    that committed it.
    """

    kind: str
    key: str
    origin: str

    def encode(self) -> str:
        """
        The notice's payload, compact JSON.

        @raise ValueError: when it would be too long for PostgreSQL.
        """
        payload = json.dumps([self.kind, self.key, self.origin], separators=(",", ":"))
        if len(payload.encode("utf-8")) > MAX_PAYLOAD:
            raise ValueError(f"change notice too long ({len(payload)} characters)")
        return payload


def decode_change(payload: str) -> Optional[Change]:
    """The L{Change} of a notice's payload, or L{None} when it is not one of ours."""
    try:
        value = json.loads(payload)
    except ValueError:
        return None
    if (
        not isinstance(value, list)
        or len(value) != 3
        or not all(isinstance(item, str) for item in value)
    ):
        return None
    return Change(value[0], value[1], value[2])


class ChangeDispatcher:
    """
    What every feed does with a payload: decode it, drop our own notices
    and malformed ones, and call the watchers, each failure logged alone.
    """

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self._callbacks: List[Callable[[str, str], None]] = []
        self.delivered = self.ignored = 0

    def watch(self, callback: Callable[[str, str], None]) -> None:
        """See L{IChangeFeed.watch}."""
        self._callbacks.append(callback)

    def deliver(self, payload: str) -> None:
        """Hand one notice to the watchers (in the reactor thread)."""
        change = decode_change(payload)
        if change is None or change.origin == self.origin:
            self.ignored += 1
            return
        self.dispatch(change.kind, change.key)

    def dispatch(self, kind: str, key: str) -> None:
        """Call every watcher with C{(kind, key)}."""
        self.delivered += 1
        for callback in list(self._callbacks):
            try:
                callback(kind, key)
            except Exception:
                log.failure("Change watcher failed on {kind} {key}", kind=kind, key=key)


@implementer(IChangeFeed)
class LocalChangeFeed(ChangeDispatcher):
    """
    The feed of a store no other process shares: it reports only what
    L{publish} is given (tests, and embedders with their own bus).
    """

    def __init__(self, origin: str = "local") -> None:
        super().__init__(origin)

    def start(self) -> Deferred[None]:
        """See L{IChangeFeed.start}: nothing to connect to."""
        return succeed(None)

    def stop(self) -> Deferred[None]:
        """See L{IChangeFeed.stop}."""
        return succeed(None)

    def publish(self, kind: str, key: str, origin: str = "elsewhere") -> None:
        """Report a change as if another process (C{origin}) committed it."""
        self.deliver(Change(kind, key, origin).encode())


__all__ = [
    "BINDING",
    "CHANGES_CHANNEL",
    "CONFERENCE",
    "DISPOSITIONS",
    "EVERYTHING",
    "Change",
    "ChangeDispatcher",
    "LocalChangeFeed",
    "decode_change",
    "new_origin",
]
