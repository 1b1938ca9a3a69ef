# -*- test-case-name: tests.unit.test_bench_overload -*-
"""
Tests for what C{benchmarks/bench_overload.py} reports without running SIPp.
"""

from __future__ import annotations

import sys

from twisted.trial.unittest import SynchronousTestCase

from tests.shared import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))

import bench_overload
from bench_sip import RunResult


class RecoveredTests(SynchronousTestCase):
    """
    L{bench_overload.recovered}: from when the run after the load answered every call.
    """

    def test_after_failures(self) -> None:
        """Failures in the first second only: every call answered after 1 s."""
        self.assertEqual(
            bench_overload.recovered([716, 0, 0]), "every call answered after its first 1 s"
        )

    def test_none_failed(self) -> None:
        """No failure at all is said so."""
        self.assertEqual(bench_overload.recovered([0, 0]), "every call answered")
        self.assertEqual(bench_overload.recovered([]), "every call answered")

    def test_still_failing(self) -> None:
        """Failures in the last second: not recovered within the run."""
        self.assertEqual(bench_overload.recovered([0, 3]), "calls still failing in its last second")


class ReportTests(SynchronousTestCase):
    """
    L{bench_overload.report}: the table of goodput and CPU per offered load.
    """

    def run_result(self, rate: int, successful: int, cpu_seconds: float) -> RunResult:
        return RunResult(
            rate=rate,
            calls=rate * 10,
            successful=successful,
            failed=rate * 10 - successful,
            retransmissions=0,
            elapsed=10.0,
            cpu_seconds=cpu_seconds,
            rtt_ms=[1.0, 2.0, 30.0],
        )

    def test_cpu_column(self) -> None:
        """Each offered load shows the server's CPU % beside its goodput."""
        run = bench_overload.Overloaded(2.0, 4800, self.run_result(4800, 18000, 9.6), 100, 101)
        table = bench_overload.report(2400, [run], None, "join", capacity_cpu=87.4)
        lines = table.splitlines()
        self.assertEqual(
            lines[0],
            "capacity (join, every call answered, no retransmission): 2400/s "
            "(server at 87% of its core)",
        )
        self.assertIn("cpu%", lines[2])
        row = lines[3].split()
        self.assertEqual(row[:4], ["2x", "4800/s", "1800/s", "0.75"])
        self.assertEqual(row[7], "96")

    def test_capacity_cpu_unknown(self) -> None:
        """Without the capacity run's CPU, the capacity line says nothing of it."""
        table = bench_overload.report(3100, [], None)
        self.assertTrue(table.splitlines()[0].endswith(": 3100/s"))
