# -*- test-case-name: tests.unit.test_bench_fixed -*-
"""
Tests for the pieces of C{benchmarks/bench_fixed.py} that need no SIPp:
the order of the runs and the report.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict, List, Tuple

from twisted.trial.unittest import SynchronousTestCase

from tests.shared import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))

import bench_fixed
import bench_sip


class FakeServer:
    """
    Stands for a L{bench_sip.Server}: settles at once.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def settle(self, cap: float) -> None:
        pass


class SummaryTests(SynchronousTestCase):
    """
    L{bench_fixed.summary}: medians, their ratio, and the rounds' range.
    """

    def test_ratio_of_medians(self) -> None:
        """The ratio is the bare median over the full median; the range is per round."""
        text = bench_fixed.summary(
            {"full": [150.0, 160.0, 400.0], "bare": [75.0, 64.0, 80.0]}, "invite", 3000
        )
        lines = text.splitlines()
        self.assertEqual(lines[0], "invite at 3000/s, 3 rounds, CPU us per call:")
        self.assertTrue(lines[1].endswith("median   160.0"))
        self.assertTrue(lines[2].endswith("median    75.0"))
        self.assertEqual(lines[3], "  full / bare by CPU: 0.47x (rounds 0.20x to 0.50x)")

    def test_rounds_needed(self) -> None:
        """No rounds, or rounds of unequal number, are refused."""
        cases: List[Dict[str, List[float]]] = [
            {"full": [], "bare": []},
            {"full": [1.0], "bare": [1.0, 2.0]},
        ]
        for costs in cases:
            self.assertRaises(ValueError, bench_fixed.summary, costs, "options", 10)


class AlternateTests(SynchronousTestCase):
    """
    L{bench_fixed.alternate}: the servers take turns, round after round.
    """

    def test_turns(self) -> None:
        """Each round runs the full server then the bare one, at the same rate and length."""
        calls: List[Tuple[str, int, float]] = []

        def run_sipp(sipp: str, scenario: Path, **kwargs: Any) -> bench_sip.RunResult:
            server = kwargs["server"]
            calls.append((server.name, kwargs["rate"], kwargs["duration"]))
            cpu = 0.3 if server.name == "full" else 0.15
            return bench_sip.RunResult(
                rate=kwargs["rate"],
                calls=2000,
                successful=2000,
                failed=0,
                retransmissions=0,
                elapsed=1.0,
                cpu_seconds=cpu,
                rtt_ms=[],
            )

        self.patch(bench_fixed, "run_sipp", run_sipp)
        servers: Any = {name: FakeServer(name) for name in ("full", "bare")}
        costs = bench_fixed.alternate(
            "sipp", Path("x.xml"), servers, rate=2000, seconds=1.0, rounds=2, folder=Path(".")
        )
        self.assertEqual(calls, [("full", 2000, 1.0), ("bare", 2000, 1.0)] * 2)
        self.assertEqual(costs, {"full": [150.0, 150.0], "bare": [75.0, 75.0]})
