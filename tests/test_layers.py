# -*- test-case-name: tests.test_layers -*-
"""
The layering rules of docs/architecture.rst, checked on the tree itself:
importing the server installs no reactor, so an embedding application can
still choose its own after importing us.
"""

from __future__ import annotations

import subprocess
import sys
from typing import List, Sequence

from twisted.trial.unittest import SynchronousTestCase

from tests.shared import PROJECT_ROOT

#: The sans-I/O packages and modules (the SIP, calendar, BIND and media
#: cores and the limits they share): plain Python on bytes, values and
#: C{now}.
SANS_IO = (
    "conference.sip",
    "conference.calendar",
    "conference.bindings",
    "conference.sdp",
    "conference.offeranswer",
    "conference.limits",
)

#: Modules that import C{twisted.protocols.sip} (which installs the default
#: reactor) and that nothing of the server imports.
NEEDS_REACTOR = ("conference.app.locator",)

# Imports the named packages (with "deep", every module in them too), in
# order, and prints the first one after whose import the reactor module was
# loaded.
_PROBE = """
import importlib, pkgutil, sys

def modules(name):
    module = importlib.import_module(name)
    yield name
    if sys.argv[1] != "deep":
        return
    for info in pkgutil.walk_packages(getattr(module, "__path__", []), name + "."):
        if not info.name.endswith("__main__"):
            yield info.name

skip = set(sys.argv[2].split(","))
for name in sys.argv[3:]:
    for module in modules(name):
        if module in skip:
            continue
        importlib.import_module(module)
        if "twisted.internet.reactor" in sys.modules:
            print("reactor imported by", module)
            sys.exit(0)
print("no reactor")
"""


def probe(names: Sequence[str], *, deep: bool = True, skip: Sequence[str] = ()) -> str:
    """
    Import C{names} (with C{deep}, every module in them too, except
    C{skip}) in a fresh interpreter running from the project root, and say
    which imported the reactor.
    """
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, "deep" if deep else "shallow", ",".join(skip), *names],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"importing {names} failed:\n{result.stderr}")
    return result.stdout.strip()


class ReactorFreeImportTests(SynchronousTestCase):
    """
    Importing our packages never imports C{twisted.internet.reactor}.
    """

    def test_sans_io(self) -> None:
        """Each sans-I/O package, with all its modules, imports no reactor."""
        found: List[str] = []
        for name in SANS_IO:
            outcome = probe([name])
            if outcome != "no reactor":
                found.append(f"{name}: {outcome}")
        self.assertEqual(found, [])

    def test_conference(self) -> None:
        """C{import conference}, what an embedding application does first, imports no reactor."""
        self.assertEqual(probe(["conference"], deep=False), "no reactor")

    def test_whole_tree(self) -> None:
        """No module of the server (service, tap, stores, transports) imports the reactor."""
        self.assertEqual(probe(["conference"], skip=NEEDS_REACTOR), "no reactor")
