# -*- test-case-name: tests.unit.test_deferreds -*-
"""
Tests for L{conference.deferreds}.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.trial.unittest import SynchronousTestCase

from conference.deferreds import PENDING, as_deferred, fired_result, is_deferred, then
from conference.sip.errors import RemoteProtocolError


class IsDeferredTests(SynchronousTestCase):
    """
    L{is_deferred}: C{isinstance(value, Deferred)} without the ABC check.
    """

    def test_same_answers_as_isinstance(self) -> None:
        """Deferreds and their subclasses are Deferreds; plain values, None and classes are not."""

        class Sub(Deferred[Any]):
            pass

        values: list[Any] = [Deferred(), Sub(), succeed(1), None, 1, "x", object(), Deferred, []]
        for value in values:
            self.assertEqual(is_deferred(value), isinstance(value, Deferred), value)


class FiredResultTests(SynchronousTestCase):
    """
    fired_result and then: following Deferreds that already fired at once.
    """

    def test_fired(self) -> None:
        """A Deferred that fired with a value gives it; others give PENDING."""
        self.assertEqual(fired_result(succeed(3)), 3)
        self.assertIs(fired_result(Deferred()), PENDING)
        failed: Deferred[int] = fail(RemoteProtocolError("no", 404))
        self.assertIs(fired_result(failed), PENDING)
        self.failureResultOf(failed, RemoteProtocolError)

    def test_waiting_on_another(self) -> None:
        """A Deferred paused on another Deferred gives PENDING."""
        inner: Deferred[int] = Deferred()
        outer: Deferred[Any] = succeed(None)
        outer.addCallback(lambda _: inner)
        self.assertIs(fired_result(outer), PENDING)
        inner.callback(4)
        self.assertEqual(self.successResultOf(outer), 4)

    def test_then(self) -> None:
        """then() runs at once for values and fired Deferreds, later otherwise."""
        self.assertEqual(then(2, lambda x: x + 1), 3)
        fired: Any = succeed(2)
        self.assertEqual(then(fired, lambda x: x + 1), 3)
        d: Deferred[Any] = Deferred()
        waiting: Any = d
        later = then(waiting, lambda x: x + 1)
        assert isinstance(later, Deferred)
        self.assertNoResult(later)
        d.callback(5)
        self.assertEqual(self.successResultOf(later), 6)


class AsDeferredTests(SynchronousTestCase):
    """
    as_deferred: any call's outcome as a Deferred.
    """

    def test_value(self) -> None:
        """A plain value becomes a fired Deferred."""
        self.assertEqual(self.successResultOf(as_deferred(lambda: 7)), 7)

    def test_deferred(self) -> None:
        """A Deferred is returned as it is."""
        d: Deferred[int] = Deferred()
        self.assertIs(as_deferred(lambda: d), d)

    def test_exception(self) -> None:
        """An exception becomes a failed Deferred."""

        def boom() -> int:
            raise RemoteProtocolError("no", 404)

        failure = self.failureResultOf(as_deferred(boom), RemoteProtocolError)
        self.assertEqual(failure.value.status, 404)  # type: ignore[union-attr]
