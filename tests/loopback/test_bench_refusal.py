# -*- test-case-name: tests.loopback.test_bench_refusal -*-
"""
The measuring loop of C{benchmarks/bench_refusal.py} on 127.0.0.1: what
it times is the server refusing every INVITE 503 unparsed through its
real UDP port, and dropping the ACK of each.
"""

from __future__ import annotations

import sys

from twisted.trial.unittest import SkipTest, TestCase

from tests.shared import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))

import bench_refusal


class MeasuringLoopTests(TestCase):
    """
    L{bench_refusal.Bench} against a real port.
    """

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.bench = bench_refusal.Bench(reactor)
        self.addCleanup(self.bench.close)
        if not getattr(self.bench.port, "stamps", False):
            raise SkipTest("this platform gives no UDP receive timestamps")

    def test_refusals(self) -> None:
        """Every INVITE is refused 503 unparsed and no ACK answered; the cost is positive."""
        self.assertGreater(self.bench.refusals(100, 1), 0.0)
        self.assertEqual(self.bench.server.stats["overloaded"], 100)
        self.assertEqual(self.bench.server.stats["received"], 0)

    def test_floor(self) -> None:
        """The system calls alone are measured, and nothing is left in either socket."""
        self.assertGreater(self.bench.floor(50), 0.0)
        self.assertFalse(self.bench._waiting())
        self.assertEqual(self.bench.answers(), [])
