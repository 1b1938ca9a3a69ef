# -*- test-case-name: tests.unit.test_startup -*-
"""
Tests for L{conference.startup} and L{conference.errors}: what a start-up
failure does to a twistd process (tests/interop/test_startup.py runs the
real command).
"""

from __future__ import annotations

import io
import sys
from types import TracebackType
from typing import Any, List, Optional, Tuple, Type

from twisted.internet.defer import Deferred
from twisted.internet.testing import MemoryReactor
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from conference.errors import StartupError
from conference.startup import cannot_start, exit_on_failure, usage_exit


class FakeService:
    """
    What L{exit_on_failure} needs of a L{ConferenceService}: C{ready}.
    """

    def __init__(self) -> None:
        self.ready: Deferred[None] = Deferred()


class ExitTests(SynchronousTestCase):
    """
    L{exit_on_failure}: a failed start stops the reactor with status 1.
    """

    def setUp(self) -> None:
        self.statuses: List[int] = []
        self.hooked: List[Tuple[Type[BaseException], BaseException]] = []
        self.patch(sys, "excepthook", self.previous_hook)
        self.stderr = io.StringIO()
        self.patch(sys, "stderr", self.stderr)

    def previous_hook(
        self, kind: Type[BaseException], value: BaseException, tb: Optional[TracebackType]
    ) -> None:
        self.hooked.append((kind, value))

    def watch(self, running: bool) -> Tuple[FakeService, MemoryReactor]:
        service, reactor = FakeService(), MemoryReactor()
        reactor.running = running
        # Twisted before 26 starts a MemoryReactor as if it had stopped.
        reactor.hasStopped = False
        exit_on_failure(service, reactor, exit_status=self.statuses.append)  # type: ignore[arg-type]
        return service, reactor

    def test_failure_while_running(self) -> None:
        """A start that fails once the reactor runs stops it, and the status will be 1."""
        service, reactor = self.watch(running=True)
        service.ready.errback(StartupError("--store: unable to open database file"))
        self.assertTrue(reactor.hasStopped)
        self.assertEqual(self.statuses, [1])
        self.assertIsNone(self.successResultOf(service.ready))

    def test_failure_before_running(self) -> None:
        """A start that fails before the reactor runs stops it as soon as it runs."""
        service, reactor = self.watch(running=False)
        service.ready.errback(StartupError("--store: x"))
        self.assertFalse(reactor.hasStopped)
        [(hook, args, _)] = reactor.whenRunningHooks
        hook(*args)
        self.assertTrue(reactor.hasStopped)
        self.assertEqual(self.statuses, [1])

    def test_unexpected_failure(self) -> None:
        """Any failure of the start, a bug included, ends the process the same way."""
        service, reactor = self.watch(running=True)
        service.ready.errback(Failure(ZeroDivisionError()))
        self.assertTrue(reactor.hasStopped)
        self.assertEqual(self.statuses, [1])

    def test_success(self) -> None:
        """A start that succeeds changes nothing."""
        service, reactor = self.watch(running=True)
        service.ready.callback(None)
        self.assertFalse(reactor.hasStopped)
        self.assertEqual(self.statuses, [])

    def test_hook_prints_startup_error(self) -> None:
        """A StartupError that ends the process is one line on stderr, not a traceback."""
        self.watch(running=False)
        error = StartupError("--listen udp:5060: Couldn't listen on 127.0.0.1:5060.")
        sys.excepthook(StartupError, error, None)
        self.assertEqual(
            self.stderr.getvalue(),
            "twistd conference: cannot start: --listen udp:5060: "
            "Couldn't listen on 127.0.0.1:5060.\n",
        )
        self.assertEqual(self.hooked, [])

    def test_hook_leaves_others(self) -> None:
        """Any other exception goes to the hook that was in place, once installed twice."""
        self.watch(running=False)
        self.watch(running=False)
        error = KeyError("x")
        sys.excepthook(KeyError, error, None)
        self.assertEqual(self.hooked, [(KeyError, error)])
        self.assertEqual(self.stderr.getvalue(), "")


class MessageTests(SynchronousTestCase):
    """
    The one-line messages.
    """

    def test_usage(self) -> None:
        """A usage error names the command and points to --help."""
        exit = usage_exit(usage.UsageError("--listen: bad UDP port in 'udp:x'"))
        self.assertEqual(
            exit.code,
            "twistd conference: --listen: bad UDP port in 'udp:x' "
            "(twistd conference --help lists the options)",
        )

    def test_cannot_start(self) -> None:
        """A start-up error names the command; a subclass reads the same."""

        class CorruptDatabase(StartupError):
            pass

        exit: Any = cannot_start(CorruptDatabase("--store: sqlite:x: database disk image"))
        self.assertEqual(
            exit.code, "twistd conference: cannot start: --store: sqlite:x: database disk image"
        )
