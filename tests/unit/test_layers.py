# -*- test-case-name: tests.unit.test_layers -*-
"""
The layering rules of docs/architecture.rst, checked on the tree itself:
no package imports one on its own line or above it in the documented layer
order (so there are no cycles between packages), the sans-I/O packages
import no Twisted I/O and no store, and importing the server installs no
reactor, so an embedding application can still choose its own after
importing us.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from twisted.trial.unittest import SynchronousTestCase

from tests.shared import PROJECT_ROOT

#: The sans-I/O packages and modules (the SIP, calendar, BIND and media
#: cores and the limits they share): plain Python on bytes, values and
#: C{now}.
SANS_IO = (
    "conference.sip",
    "conference.records",
    "conference.calendar",
    "conference.bindings",
    "conference.sdp",
    "conference.offeranswer",
    "conference.media",
    "conference.limits",
    "conference.overload",
    "conference.overload_feedback",
    "conference.control",
    "conference.janus",
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


#: What of Twisted the sans-I/O packages may not import (prefixes; nor the
#: store package), and the exceptions.
SANS_IO_NO_IMPORT = (
    "twisted.internet.",
    "twisted.protocols",
    "twisted.enterprise",
    "twisted.application",
)
SANS_IO_MAY_IMPORT = ("twisted.internet.defer",)

Layers = List[List[str]]


def within(name: str, prefix: str) -> bool:
    """
    Whether C{name} is the module C{prefix} or inside it (a prefix ending
    with a dot matches only what is inside).
    """
    if prefix.endswith("."):
        return name.startswith(prefix)
    return name == prefix or name.startswith(prefix + ".")


def layer_order(text: str) -> Layers:
    """
    The layers listed in the code block of the "Layer order" section of
    the architecture document, lowest first, each a list of names.
    """
    lines = text.splitlines()
    start = lines.index("Layer order")
    block = next(i for i in range(start, len(lines)) if lines[i].startswith(".. code-block::"))
    layers: Layers = []
    for line in lines[block + 1 :]:
        if not line.strip():
            if layers:
                break
            continue
        if not line.startswith(" "):
            break
        layers.append(line.split())
    return layers


def module_names(root: Path, package: str) -> Dict[str, Path]:
    """
    Every module of C{package} under C{root}, by dotted name.
    """
    modules: Dict[str, Path] = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imported_names(module: str, path: Path) -> Iterator[Tuple[str, int]]:
    """
    What C{module} imports anywhere (top level, functions,
    C{TYPE_CHECKING}), with line numbers: for C{from a import b}, both
    C{a} and C{a.b} (C{b} may be a module).
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*parent, base] if base else parent)
            yield base, node.lineno
            for alias in node.names:
                yield f"{base}.{alias.name}", node.lineno


def owner(name: str, layers: Layers) -> Optional[Tuple[int, str]]:
    """
    The layer index and the listed name C{name} belongs to (the longest
    listed prefix), or L{None}.
    """
    best: Optional[Tuple[int, str]] = None
    for index, names in enumerate(layers):
        for listed in names:
            if within(name, listed) and (best is None or len(listed) > len(best[1])):
                best = (index, listed)
    return best


def layering_faults(root: Path, package: str, layers: Layers) -> List[str]:
    """
    Every module of C{package} without a layer, and every import of a
    package on the importer's own line or above it.
    """
    faults: List[str] = []
    for module, path in module_names(root, package).items():
        if module == package:
            continue
        mine = owner(module, layers)
        if mine is None:
            faults.append(f"{module} is in no layer")
            continue
        for name, line in imported_names(module, path):
            if not within(name, package):
                continue
            theirs = owner(name, layers)
            if theirs is None or theirs[1] == mine[1] or theirs[0] < mine[0]:
                continue
            where = "its own line" if theirs[0] == mine[0] else "a higher layer"
            faults.append(f"{module}:{line} imports {theirs[1]}, on {where}")
    return sorted(set(faults))


def sans_io_faults(root: Path, package: str, sans_io: Sequence[str]) -> List[str]:
    """
    Every import of Twisted I/O or of the store by a sans-I/O module.
    """
    forbidden = (*SANS_IO_NO_IMPORT, f"{package}.store")
    faults: Dict[Tuple[str, int], str] = {}
    for module, path in module_names(root, package).items():
        if not any(within(module, core) for core in sans_io):
            continue
        for name, line in imported_names(module, path):
            if any(within(name, p) for p in forbidden) and not any(
                within(name, p) for p in SANS_IO_MAY_IMPORT
            ):
                # The module before any name imported from it.
                faults.setdefault((module, line), f"{module}:{line} imports {name}")
    return sorted(faults.values())


class LayerOrderTests(SynchronousTestCase):
    """
    Every import of the tree against the layer order of the architecture
    document.
    """

    def setUp(self) -> None:
        text = (PROJECT_ROOT / "docs" / "architecture.rst").read_text(encoding="utf-8")
        self.layers = layer_order(text)

    def test_documented(self) -> None:
        """The document lists layers, each name once, each an existing package or module."""
        names = [name for layer in self.layers for name in layer]
        self.assertGreater(len(self.layers), 3)
        self.assertEqual(len(names), len(set(names)))
        for name in names:
            path = PROJECT_ROOT.joinpath(*name.split("."))
            self.assertTrue(
                path.is_dir() or path.with_suffix(".py").is_file(), f"{name} does not exist"
            )
        self.assertIn("conference.sip", self.layers[0])

    def test_no_upward_imports(self) -> None:
        """
        Every module has a layer and imports only its own package and lower
        layers, so no two packages import each other.
        """
        self.assertEqual(layering_faults(PROJECT_ROOT, "conference", self.layers), [])

    def test_sans_io(self) -> None:
        """The sans-I/O packages import no Twisted I/O (reactor, endpoints, task) and no store."""
        self.assertEqual(sans_io_faults(PROJECT_ROOT, "conference", SANS_IO), [])


class CheckerTests(SynchronousTestCase):
    """
    The checkers above find what they are for, on a small made-up tree.
    """

    def setUp(self) -> None:
        self.root = Path(self.mktemp())
        files = {
            "pkg/__init__.py": "",
            "pkg/low/__init__.py": "",
            "pkg/low/a.py": "from pkg.low import b\nfrom twisted.internet import defer\n",
            "pkg/low/b.py": "def f():\n    from pkg import high\n",
            "pkg/low/c.py": "from twisted.internet import reactor\nimport pkg.store.x\n",
            "pkg/peer.py": "from . import low\nfrom .low import a\nfrom .side import y\n",
            "pkg/side.py": "",
            "pkg/high.py": "from pkg.low.a import f\n",
            "pkg/store/__init__.py": "",
            "pkg/store/x.py": "",
            "pkg/stray.py": "",
        }
        for name, text in files.items():
            path = self.root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        self.layers = [["pkg.low"], ["pkg.peer", "pkg.side", "pkg.store"], ["pkg.high"]]

    def test_layering(self) -> None:
        """Upward, same-line and relative imports are resolved; unlisted modules are named."""
        self.assertEqual(
            layering_faults(self.root, "pkg", self.layers),
            [
                "pkg.low.b:2 imports pkg.high, on a higher layer",
                "pkg.low.c:2 imports pkg.store, on a higher layer",
                "pkg.peer:3 imports pkg.side, on its own line",
                "pkg.stray is in no layer",
            ],
        )

    def test_sans_io(self) -> None:
        """The reactor and the store are found; twisted.internet.defer is allowed."""
        self.assertEqual(
            sans_io_faults(self.root, "pkg", ["pkg.low"]),
            [
                "pkg.low.c:1 imports twisted.internet.reactor",
                "pkg.low.c:2 imports pkg.store.x",
            ],
        )

    def test_layer_order(self) -> None:
        """The order is read from the code block of the Layer order section."""
        text = "Intro\n\nLayer order\n-----------\n\nProse.\n\n.. code-block:: text\n\n"
        text += "    a b\n    c\n\nAfter.\n\n    d\n"
        self.assertEqual(layer_order(text), [["a", "b"], ["c"]])


class PlanningReferencesTests(SynchronousTestCase):
    """
    Code and documentation speak of the product, not of how its work was
    planned: no issue numbers in them.
    """

    def test_no_issue_numbers(self) -> None:
        """No module, test, benchmark or document names an issue number."""
        root = Path(PROJECT_ROOT)
        pattern = re.compile(r"\b[Ii]ssue \d+|--- (?:end )?issue\b")
        found: List[str] = []
        for top in ("conference", "tests", "benchmarks", "docs", "tac", "deploy"):
            for path in sorted((root / top).rglob("*")):
                if path.suffix not in {".py", ".rst", ".md", ".sql", ".cfg", ".tac", ".xml"}:
                    continue
                if "_build" in path.parts:
                    continue
                text = path.read_text(encoding="utf-8", errors="replace")
                for number, line in enumerate(text.splitlines(), 1):
                    if pattern.search(line) and path.name != "test_layers.py":
                        found.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
        self.assertEqual(found, [])
