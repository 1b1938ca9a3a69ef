# -*- test-case-name: tests.unit.test_startup -*-
"""
Errors any layer may raise to say that the server cannot start.

This module imports nothing of the package, so the stores, the transports
and the service can all raise L{StartupError}; C{twistd conference}
(L{conference.startup}) turns one into a single line and a non-zero exit
status, wherever in start-up it comes from.
"""

from __future__ import annotations

__all__ = ["StartupError"]


class StartupError(Exception):
    """
    Something keeps the server from starting: a port in use, an interface
    the host does not have, an unusable certificate, a store that cannot
    be opened.  The message is one line naming the option and the fault
    (C{--listen udp:5060: Couldn't listen on ...}); it is shown to the
    operator as is, without a traceback.

    Subclass it for a fault found deeper down (a corrupt database, say):
    every subclass gets the same treatment.
    """
