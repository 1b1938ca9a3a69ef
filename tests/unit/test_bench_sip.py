# -*- test-case-name: tests.unit.test_bench_sip -*-
"""
Tests for the pieces of C{benchmarks/bench_sip.py} that decide, without
running SIPp, when a measurement may start.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests.shared import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))

import bench_sip


class SteadyTests(SynchronousTestCase):
    """
    L{bench_sip.is_steady}: warm-up stops once the CPU per call holds still.
    """

    def test_too_few_runs(self) -> None:
        """Fewer runs than the window have nothing to agree with."""
        self.assertFalse(bench_sip.is_steady([]))
        self.assertFalse(bench_sip.is_steady([1000.0, 1000.0]))
        self.assertTrue(bench_sip.is_steady([1000.0, 1000.0, 1000.0]))

    def test_jit_curve(self) -> None:
        """PyPy's falling costs (a run of record) are steady only once they flatten."""
        curve = [2331.0, 1385.0, 875.0, 825.0, 875.0, 797.0]
        verdicts = [bench_sip.is_steady(curve[: n + 1]) for n in range(len(curve))]
        self.assertEqual(verdicts, [False, False, False, False, True, True])

    def test_slow_descent(self) -> None:
        """Costs still falling within the band (a run of record at 200/s) are not steady."""
        curve = [3288.0, 2738.0, 2312.0, 1962.0, 1750.0, 1625.0, 1475.0, 1487.0, 1375.0]
        self.assertFalse(bench_sip.is_steady(curve))
        self.assertTrue(bench_sip.is_steady([*curve, 1390.0]))

    def test_plateau_between_steps(self) -> None:
        """Two equal runs on a plateau do not end the warm-up while the third fell."""
        self.assertFalse(bench_sip.is_steady([1400.0, 1100.0, 1090.0]))

    def test_rising_cost_is_not_steady(self) -> None:
        """A cost that grows by more than the tolerance keeps the warm-up going."""
        self.assertFalse(bench_sip.is_steady([500.0, 500.0, 600.0]))
        self.assertTrue(bench_sip.is_steady([500.0, 520.0, 540.0]))

    def test_plans_bound_the_warm_up(self) -> None:
        """Both plans stop warming up eventually, the quick one sooner."""
        self.assertLess(bench_sip.QUICK.warmup_limit, bench_sip.FULL.warmup_limit)
        self.assertGreater(bench_sip.QUICK.warmup_limit, 0)


class InterpreterTests(SynchronousTestCase):
    """
    L{bench_sip.pypy_python}: the second interpreter, checked before use.
    """

    def test_relative_path_made_absolute(self) -> None:
        """A usable interpreter named by a relative path is returned absolute."""
        relative = os.path.relpath(sys.executable)
        found = bench_sip.pypy_python(relative)
        assert found is not None
        self.assertTrue(os.path.isabs(found))
        self.assertTrue(os.path.samefile(found, sys.executable))

    def test_missing(self) -> None:
        """A missing interpreter is skipped, not half-used."""
        self.assertIsNone(bench_sip.pypy_python("/nonexistent/pypy3"))


class ServerEnvironmentTests(SynchronousTestCase):
    """
    L{bench_sip.server_environment}: servers run as a deployment should.
    """

    def test_pypy_nursery_default(self) -> None:
        """Without a nursery or step set, servers get what a PyPy server asks for."""
        from conference.runtime import PYPY_ENVIRONMENT

        self.patch(os, "environ", {"PATH": "/usr/bin"})
        env = bench_sip.server_environment()
        self.assertEqual(env, {"PATH": "/usr/bin", **PYPY_ENVIRONMENT})

    def test_pypy_nursery_kept(self) -> None:
        """A nursery size set by whoever runs the benchmark is kept."""
        from conference.runtime import NURSERY_VARIABLE

        self.patch(os, "environ", {NURSERY_VARIABLE: "1MB"})
        self.assertEqual(bench_sip.server_environment()[NURSERY_VARIABLE], "1MB")


class PerSecondTests(SynchronousTestCase):
    """
    L{bench_sip.per_second}: SIPp's periodic counts, by the second of the run.
    """

    def write(self, rows: list[tuple[str, int]]) -> Path:
        path = Path(self.mktemp())
        lines = ["StartTime;ElapsedTime(C);FailedCall(P)"]
        lines += [f"x;{label};{value}" for label, value in rows]
        path.write_text("\n".join(lines) + "\n")
        return path

    def test_by_second(self) -> None:
        """Each line counts the second before its label; the end's extra lines, the one after."""
        rows = [("00:00:00", 0), ("00:00:01", 7), ("00:00:02", 0), ("00:00:02", 3), ("00:00:02", 0)]
        self.assertEqual(bench_sip.per_second(self.write(rows), "FailedCall(P)"), [7, 0, 3])

    def test_missing(self) -> None:
        """No file, or no such counter: nothing."""
        self.assertEqual(bench_sip.per_second(Path(self.mktemp()), "FailedCall(P)"), [])
        path = self.write([("00:00:01", 1)])
        self.assertEqual(bench_sip.per_second(path, "OutgoingCall(P)"), [])
