# -*- test-case-name: tests.unit.test_bench_fixed -*-
"""
Tests for the pieces of C{benchmarks/bench_fixed.py} that need no SIPp:
the order of the runs, the report, the focus flows and the servers'
interpreter.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict, List, Tuple

from twisted.trial.unittest import SynchronousTestCase

from tests.shared import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))

import bench_fixed
import bench_focus
import bench_sip
import common


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


def passed_run(rate: int, calls: int, cpu_seconds: float) -> bench_sip.RunResult:
    """
    A SIPp run in which every call succeeded, the server using C{cpu_seconds}.
    """
    return bench_sip.RunResult(
        rate=rate,
        calls=calls,
        successful=calls,
        failed=0,
        retransmissions=0,
        elapsed=1.0,
        cpu_seconds=cpu_seconds,
        rtt_ms=[],
    )


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
            return passed_run(kwargs["rate"], 2000, cpu)

        self.patch(bench_fixed, "run_sipp", run_sipp)
        servers: Any = {name: FakeServer(name) for name in ("full", "bare")}
        costs = bench_fixed.alternate(
            "sipp", Path("x.xml"), servers, rate=2000, seconds=1.0, rounds=2, folder=Path(".")
        )
        self.assertEqual(calls, [("full", 2000, 1.0), ("bare", 2000, 1.0)] * 2)
        self.assertEqual(costs, {"full": [150.0, 150.0], "bare": [75.0, 75.0]})

    def test_extra_arguments(self) -> None:
        """More SIPp arguments (a focus flow's injection file) reach every run."""
        seen: List[Tuple[str, ...]] = []

        def run_sipp(sipp: str, scenario: Path, **kwargs: Any) -> bench_sip.RunResult:
            seen.append(tuple(kwargs["extra"]))
            return passed_run(kwargs["rate"], 100, 0.01)

        self.patch(bench_fixed, "run_sipp", run_sipp)
        servers: Any = {name: FakeServer(name) for name in ("full", "bare")}
        bench_fixed.alternate(
            "sipp",
            Path("focus_busy.xml"),
            servers,
            rate=100,
            seconds=1.0,
            rounds=1,
            folder=Path("."),
            extra=["-inf", "later.csv"],
        )
        self.assertEqual(seen, [("-inf", "later.csv")] * 2)


class FocusFlowTests(SynchronousTestCase):
    """
    The focus flows: which conference each calls, and the servers' command.
    """

    def test_conferences(self) -> None:
        """A 486 calls the conference not open yet, a join the one open now."""
        self.assertEqual(
            bench_fixed.FOCUS, {"busy": bench_focus.LATER_USER, "join": bench_focus.OPEN_USER}
        )
        for flow in bench_fixed.FOCUS:
            self.assertTrue((common.SCENARIOS / f"focus_{flow}.xml").is_file())

    def test_interpreter_runs_the_server(self) -> None:
        """The twistd command line starts with the interpreter asked for."""
        command = common.conference_command(Path("."), 5070, ["--store", "memory"], "/x/pypy3")
        self.assertEqual(command[0], "/x/pypy3")
        self.assertEqual(command[-2:], ["--store", "memory"])
        self.assertEqual(common.conference_command(Path("."), 5070, [])[0], sys.executable)


class InterpreterTests(SynchronousTestCase):
    """
    C{--python}: checked before any server starts.
    """

    def test_missing_interpreter(self) -> None:
        """A --python that does not exist stops the benchmark with status 2."""
        messages: List[str] = []
        self.patch(bench_sip, "say", messages.append)
        self.assertEqual(bench_fixed.main(["--python", "/nonexistent/python3"]), 2)
        self.assertEqual(messages, ["--python: /nonexistent/python3 not found; nothing to measure"])
