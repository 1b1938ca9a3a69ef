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
