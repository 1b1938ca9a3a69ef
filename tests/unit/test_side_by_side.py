# -*- test-case-name: tests.unit.test_side_by_side -*-
"""
Tests for C{benchmarks/side_by_side.py}: interpreters checked before use,
failures reported rather than half-measured, tables labelled.
"""

from __future__ import annotations

import sys
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests.shared import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))

import side_by_side


class SideBySideTests(SynchronousTestCase):
    """
    The runner's pieces, without running a benchmark.
    """

    def test_usable(self) -> None:
        """This interpreter can run the server; a missing one is reported with the reason."""
        self.assertIsNone(side_by_side.usable(sys.executable))
        self.assertIsNotNone(side_by_side.usable(str(Path("/nonexistent/python"))))

    def test_bad_pypy_skipped(self) -> None:
        """A PyPy that cannot be used leaves CPython alone on the list."""
        found = side_by_side.runtimes("/nonexistent/pypy")
        self.assertEqual(found, [("cpython", sys.executable)])

    def test_report(self) -> None:
        """Each table is headed by benchmark and runtime; a failure says so."""
        text = side_by_side.report(
            [
                side_by_side.Outcome("bench_x.py", "cpython", 3.2, "table A\n"),
                side_by_side.Outcome("bench_x.py", "pypy", 4.0, "", error="boom"),
            ]
        )
        self.assertIn("== bench_x.py on cpython (3 s)\ntable A", text)
        self.assertIn("== bench_x.py on pypy (4 s)\nFAILED: boom", text)

    def test_unknown_benchmark(self) -> None:
        """Naming a script that is not there is a usage error."""
        with self.assertRaises(SystemExit):
            side_by_side.main(["no_such_bench.py"])
