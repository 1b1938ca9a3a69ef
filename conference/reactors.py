# -*- test-case-name: tests.unit.test_reactors -*-
"""
The reactor a part of the server runs on: the one it was given, else the
global one.

Every Twisted adapter takes C{reactor=None} and looks the global reactor up
once, when it is built, never when its module is imported: importing
C{twisted.internet.reactor} installs the default reactor, and an
application embedding the server must be free to install its own after
importing us.  This module is that one lookup, so it is written once.
"""

from __future__ import annotations

from typing import Optional, TypeVar, cast

_R = TypeVar("_R")


def default_reactor(reactor: Optional[_R]) -> _R:
    """
    C{reactor}, or the global reactor when it is L{None} (installing
    Twisted's default one if the application installed none).
    """
    if reactor is not None:
        return reactor
    from twisted.internet import reactor as installed

    return cast(_R, installed)
