# -*- test-case-name: tests.unit.app.test_owners -*-
"""
Tests for L{conference.app.owners}: owner lookups for queries are
remembered for a second, updates look again.  (Who owns what is tested
through the BIND handler in L{tests.unit.app.test_bind}.)
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, List

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from conference.app.owners import OwnerResolver
from conference.bindings.access import CONFERENCE, USER
from conference.sip.uri import parse_uri
from tests.unit.app.test_bind import Harness, conference_record, result_of


class CountingConferences:
    """
    A conference store that counts its C{get} calls.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.gets = 0

    def get(self, uri: str) -> Deferred[Any]:
        self.gets += 1
        result: Deferred[Any] = self.inner.get(uri)
        return result


class OwnerCacheTests(SynchronousTestCase):
    """
    Owner lookups for queries are reused for max_age seconds of the clock;
    updates always look again.
    """

    def setUp(self) -> None:
        self.h = Harness()
        self.counting = CountingConferences(self.h.stores.conferences)
        self.resolver = OwnerResolver(
            self.counting,  # type: ignore[arg-type]
            self.h.router.domain_of,
            seconds=self.h.clock.seconds,
        )
        self.key = self.resolver.key(parse_uri("sip:dave@example.com"))

    def test_reused(self) -> None:
        """A second lookup for a query within max_age reads no store."""
        first = self.resolver.find_now(self.key, cached=True)
        self.h.clock.advance(self.resolver.max_age / 2)
        self.assertIs(self.resolver.find_now(self.key, cached=True), first)
        self.assertEqual(self.counting.gets, 1)

    def test_looked_up_again(self) -> None:
        """After max_age, or for an update, the store is read and a new conference is seen."""
        self.assertEqual(result_of(self.resolver.find_now(self.key, cached=True)).kind, USER)
        record = replace(conference_record(), uri="sip:dave@example.com", uid="dave-1")
        result_of(self.h.stores.conferences.put(record, None))
        self.assertEqual(result_of(self.resolver.find_now(self.key)).kind, CONFERENCE)
        self.assertEqual(result_of(self.resolver.find_now(self.key, cached=True)).kind, USER)
        self.h.clock.advance(self.resolver.max_age)
        self.assertEqual(result_of(self.resolver.find_now(self.key, cached=True)).kind, CONFERENCE)

    def test_forget(self) -> None:
        """forget drops every remembered lookup."""
        self.resolver.find_now(self.key, cached=True)
        self.resolver.forget()
        self.resolver.find_now(self.key, cached=True)
        self.assertEqual(self.counting.gets, 2)

    def test_without_clock(self) -> None:
        """A resolver without a clock remembers nothing."""
        resolver = OwnerResolver(self.counting, self.h.router.domain_of)  # type: ignore[arg-type]
        resolver.find_now(self.key, cached=True)
        resolver.find_now(self.key, cached=True)
        self.assertEqual(self.counting.gets, 2)

    def test_slow_store(self) -> None:
        """A lookup answered later is remembered once it answers."""
        held: List[Deferred[Any]] = []

        class Slow:
            def get(self, uri: str) -> Deferred[Any]:
                held.append(Deferred())
                return held[-1]

        resolver = OwnerResolver(
            Slow(),  # type: ignore[arg-type]
            self.h.router.domain_of,
            seconds=self.h.clock.seconds,
        )
        pending = resolver.find_now(self.key, cached=True)
        held[0].callback(None)
        owner = result_of(pending)
        self.assertIs(resolver.find_now(self.key, cached=True), owner)
        self.assertEqual(len(held), 1)
