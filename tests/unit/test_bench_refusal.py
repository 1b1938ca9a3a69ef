# -*- test-case-name: tests.unit.test_bench_refusal -*-
"""
Tests for the pieces of C{benchmarks/bench_refusal.py} that need no
socket: the bound a refusal's cost sets, the report, and the requests it
sends (the measuring loop itself: L{tests.loopback.test_bench_refusal}).
"""

from __future__ import annotations

import sys

from twisted.trial.unittest import SynchronousTestCase

from conference.sip import quick
from conference.sip.message import Request
from conference.sip.parser import parse_datagram
from conference.sip.stateless import raw_stateless_ack
from tests.shared import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))

import bench_refusal
from bench_refusal import Round, bound, summary


class BoundTests(SynchronousTestCase):
    """
    L{bound}: the goodput a refusal costing C{r} of an answer allows.
    """

    def test_values(self) -> None:
        """Free refusals allow all of capacity; 5% of an answer allows 0.84 at 4x."""
        self.assertEqual(bound(0.0, 4), 1.0)
        self.assertAlmostEqual(bound(0.05, 4), 0.8 / 0.95)
        self.assertAlmostEqual(bound(0.05, 2), 0.9 / 0.95)
        self.assertAlmostEqual(bound(0.032, 4), 0.872 / 0.968)

    def test_clamped(self) -> None:
        """A refusal dear enough to leave nothing gives 0, not a negative share."""
        self.assertEqual(bound(0.3, 4), 0.0)
        self.assertEqual(bound(0.5, 1), 1.0)

    def test_refused(self) -> None:
        """r outside [0, 1) or a factor under 1 is an error."""
        for r, factor in [(-0.1, 4), (1.0, 4), (0.1, 0.5)]:
            self.assertRaises(ValueError, bound, r, factor)


class SummaryTests(SynchronousTestCase):
    """
    L{summary}: rounds, medians and, given an answer's cost, the bound.
    """

    def test_report(self) -> None:
        """Rounds in order, the medians, then r and the bounds at 2x and 4x."""
        rounds = [Round(20.0, 8.0), Round(18.0, 9.0), Round(40.0, 10.0)]
        lines = summary(rounds, 400.0, "pypy 3.9.16").splitlines()
        self.assertEqual(
            lines[0], "pypy 3.9.16, 3 rounds, CPU us per refused call (INVITE, 503, ACK):"
        )
        self.assertEqual(lines[1], "  refused    20.0   18.0   40.0")
        self.assertEqual(lines[2], "  floor       8.0    9.0   10.0")
        self.assertEqual(lines[3], "  median: refused 20.0 us, of which system calls alone 9.0 us")
        self.assertEqual(
            lines[4],
            "  against an answer of 400 us: r = 0.050, goodput at most "
            "0.95 of capacity at 2x, 0.84 at 4x",
        )

    def test_without_answer(self) -> None:
        """Without an answer's cost there is no bound line."""
        self.assertEqual(len(summary([Round(20.0, 8.0)], None, "cpython").splitlines()), 4)

    def test_refused(self) -> None:
        """No rounds, or an answer no dearer than a refusal, is an error."""
        self.assertRaises(ValueError, summary, [], None, "cpython")
        self.assertRaises(ValueError, summary, [Round(20.0, 8.0)], 20.0, "cpython")


class RequestTests(SynchronousTestCase):
    """
    The INVITE and ACK the bench sends are what the quick path handles.
    """

    def test_invite(self) -> None:
        """The INVITE parses, with its SDP, and the quick reader takes it."""
        data = bench_refusal.invite(7, 40000)
        request = parse_datagram(data)
        assert isinstance(request, Request)
        self.assertEqual((request.method, request.body), ("INVITE", bench_refusal.SDP))
        found = quick.peek(data)
        assert found is not None
        self.assertEqual((found.branch, found.to_tag), ("z9hG4bK-7-1-0", None))

    def test_ack(self) -> None:
        """An ACK carrying a stateless tag is one the server drops unparsed."""
        data = bench_refusal.ack(7, 40000, b"sl0123456789abcdef")
        self.assertIsInstance(parse_datagram(data), Request)
        self.assertTrue(raw_stateless_ack(data))
