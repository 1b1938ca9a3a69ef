# -*- test-case-name: tests.test_layers -*-
"""
The layering rules of docs/architecture.rst, checked on the tree itself:
importing the server installs no reactor, so an embedding application can
still choose its own after importing us.
"""

from __future__ import annotations

import json
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

#: What importing a sans-I/O package must not load: the reactor, and the
#: store package with its database pools.
SANS_IO_FORBIDDEN = ("twisted.internet.reactor", "conference.store", "twisted.enterprise")

# Imports the named packages (with "deep", every module in them too), in
# order, and prints the first one after whose import a forbidden module
# was loaded, and which.
_PROBE = """
import importlib, json, pkgutil, sys

spec = json.loads(sys.argv[1])

def modules(name):
    module = importlib.import_module(name)
    yield name
    if not spec["deep"]:
        return
    for info in pkgutil.walk_packages(getattr(module, "__path__", []), name + "."):
        if not info.name.endswith("__main__"):
            yield info.name

def loaded(prefix):
    return [m for m in sys.modules if m == prefix or m.startswith(prefix + ".")]

for name in spec["names"]:
    for module in modules(name):
        if module in spec["skip"]:
            continue
        importlib.import_module(module)
        for prefix in spec["forbidden"]:
            if loaded(prefix):
                print(module, "imports", loaded(prefix)[0])
                sys.exit(0)
print("clean")
"""


def probe(
    names: Sequence[str],
    *,
    deep: bool = True,
    skip: Sequence[str] = (),
    forbidden: Sequence[str] = ("twisted.internet.reactor",),
) -> str:
    """
    Import C{names} (with C{deep}, every module in them too, except
    C{skip}) in a fresh interpreter running from the project root; say
    C{"clean"}, or which of them loaded one of the C{forbidden} modules.
    """
    spec = {"names": list(names), "deep": deep, "skip": list(skip), "forbidden": list(forbidden)}
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(spec)],
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
        """
        Each sans-I/O package, with all its modules, imports neither the
        reactor nor the store package, each in a fresh interpreter.
        """
        found: List[str] = []
        for name in SANS_IO:
            outcome = probe([name], forbidden=SANS_IO_FORBIDDEN)
            if outcome != "clean":
                found.append(outcome)
        self.assertEqual(found, [])

    def test_conference(self) -> None:
        """C{import conference}, what an embedding application does first, imports no reactor."""
        self.assertEqual(probe(["conference"], deep=False), "clean")

    def test_whole_tree(self) -> None:
        """No module of the server (service, tap, stores, transports) imports the reactor."""
        self.assertEqual(probe(["conference"], skip=NEEDS_REACTOR), "clean")
