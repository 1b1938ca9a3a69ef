# -*- test-case-name: tests -*-
"""
Locate the shared corpora (specs, RFC 4475, xCal) that live beside the
project, so tests read them in place and skip clearly where absent.
"""

from __future__ import annotations

import os
from pathlib import Path

from twisted.trial.unittest import SkipTest

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    """
    Return the shared folder: C{$CONFERENCE_SHARED}, else C{../shared} from
    the project root.

    @raise SkipTest: if neither exists, naming where it looked.
    """
    env = os.environ.get("CONFERENCE_SHARED")
    candidates = [Path(env)] if env else []
    candidates.append(PROJECT_ROOT.parent / "shared")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise SkipTest(
        "shared corpora not found (looked in "
        + ", ".join(str(c) for c in candidates)
        + "); set $CONFERENCE_SHARED to the shared/ folder"
    )


def corpus(*parts: str) -> Path:
    """
    Return a path inside the shared corpora, C{shared/corpora/<parts>}: for
    example C{corpus("rfc4475", "wsinv.dat")}.

    @raise SkipTest: if the shared folder or that path is absent.
    """
    path = shared_dir().joinpath("corpora", *parts)
    if not path.exists():
        raise SkipTest(f"shared corpus {path} is absent")
    return path
