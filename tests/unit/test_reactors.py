# -*- test-case-name: tests.unit.test_reactors -*-
"""
Tests for L{conference.reactors}.
"""

from __future__ import annotations

from typing import Optional

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from conference.reactors import default_reactor


class DefaultReactorTests(SynchronousTestCase):
    """
    The given reactor, or the global one.
    """

    def test_given(self) -> None:
        """A reactor passed in is the one used."""
        clock = Clock()
        self.assertIs(default_reactor(clock), clock)

    def test_global(self) -> None:
        """Without one, the global reactor (the one trial runs on) is used."""
        from twisted.internet import reactor

        none: Optional[IReactorTime] = None
        self.assertIs(default_reactor(none), reactor)
