# -*- test-case-name: tests.unit.test_startup -*-
"""
What C{twistd conference} does when the server cannot start: one clear
line and a non-zero exit status, never a traceback, a help text dump or a
process left running without its sockets.

twistd itself prints its whole help text before a usage error, a
traceback for an exception raised while the application starts, and
exits with status 0 whenever its reactor stops.  L{conference.tap} uses
what is here when its options are parsed as twistd's subcommand:

 - a usage error: L{usage_exit}, one line and status 1;
 - a L{StartupError} while the service is built (a C{--listen}
   description or certificate that cannot work): L{cannot_start}, the
   same;
 - a L{StartupError} while the ports are bound
   (C{privilegedStartService}, before the reactor runs): twistd cleans up
   (its pid file, a daemon's status pipe) and re-raises it, and the hook
   L{exit_on_failure} installs prints it as one line instead of a
   traceback (Python's status for an uncaught exception is 1);
 - a failure once the reactor runs (the store cannot be opened): the
   service logs one line and fails its C{ready} Deferred;
   L{exit_on_failure} stops the reactor, and once twistd has cleaned up
   the process exits with status 1 (twistd has no exit status of its own
   to set).
"""

from __future__ import annotations

import atexit
import os
import sys
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Optional, Type

from twisted.python import usage
from twisted.python.failure import Failure

from conference.errors import StartupError

if TYPE_CHECKING:
    from conference.service import ConferenceService

__all__ = ["cannot_start", "exit_on_failure", "exit_status_after_twistd", "usage_exit"]

PROGRAM = "twistd conference"


def usage_exit(error: usage.UsageError) -> SystemExit:
    """
    The exit for a usage error of the command: one line with a pointer to
    C{--help} (which still prints the whole text).
    """
    return SystemExit(f"{PROGRAM}: {error} ({PROGRAM} --help lists the options)")


def cannot_start(error: StartupError) -> SystemExit:
    """
    The exit for a start-up failure found before twistd starts logging.
    """
    return SystemExit(f"{PROGRAM}: cannot start: {error}")


def exit_on_failure(
    service: ConferenceService,
    reactor: Any = None,
    *,
    exit_status: Optional[Callable[[int], None]] = None,
) -> None:
    """
    Make a start-up failure of C{service} end a twistd process with one
    line and status 1: a L{StartupError} raised while binding is printed
    without a traceback; a failed C{service.ready} stops the reactor.  For
    C{twistd conference} and for C{.tac} files (tac/conference.tac).

    @param reactor: the reactor to stop (default: the global one; this is
        the process's edge).
    @param exit_status: called with the status the process must end with
        (default: L{exit_status_after_twistd}).
    """
    if reactor is None:
        from twisted.internet import reactor as _reactor

        reactor = _reactor
    set_status = exit_status or exit_status_after_twistd
    _install_excepthook()

    def failed(failure: Failure) -> None:
        # The service has logged the failure: stop, with a bad status.
        set_status(1)
        if reactor.running:
            reactor.stop()
        else:
            reactor.callWhenRunning(reactor.stop)

    service.ready.addErrback(failed)


def exit_status_after_twistd(status: int) -> None:
    """
    End the process with C{status} once twistd is done (its pid file
    removed, its log closed): at interpreter exit, before the other exit
    handlers, flushing what is buffered first.
    """

    def finish() -> None:
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            try:
                if stream is not None:
                    stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(status)

    atexit.register(finish)


def _install_excepthook() -> None:
    """
    Print a L{StartupError} that ends the process as one line; leave any
    other exception to the hook already in place.
    """
    previous = sys.excepthook
    if getattr(previous, "startup_error_hook", False):
        return

    def hook(
        kind: Type[BaseException], value: BaseException, traceback: Optional[TracebackType]
    ) -> None:
        if isinstance(value, StartupError):
            print(cannot_start(value).code, file=sys.stderr)
        else:
            previous(kind, value, traceback)

    hook.startup_error_hook = True  # type: ignore[attr-defined]
    sys.excepthook = hook
