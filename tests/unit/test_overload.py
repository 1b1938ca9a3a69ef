# -*- test-case-name: tests.unit.test_overload -*-
"""
Tests for L{conference.overload}: when shedding starts and stops, what is
never shed, and the Retry-After it answers with.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable, List, Sequence, Tuple

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from conference.overload import (
    EXEMPT_METHODS,
    OverloadControl,
    Overloaded,
    ProportionalShedding,
)
from conference.sip.message import Request
from tests.builders import make_request


def request(method: str, to: str = "<sip:conf@example.com>") -> Request:
    """A new request (no To tag unless given)."""
    return make_request(method, "sip:conf@example.com", to=to)


class DecisionTests(SynchronousTestCase):
    """
    OverloadControl.observe and shed.
    """

    def test_hysteresis(self) -> None:
        """Shedding starts above the threshold and stops only below half of it."""
        control = OverloadControl(0.1, smoothing=1.0)
        self.assertIsNone(control.observe(0.05, 1.0))
        self.assertTrue(control.observe(0.2, 2.0))
        self.assertEqual((control.overloaded, control.since), (True, 2.0))
        self.assertIsNone(control.observe(0.08, 3.0))  # below threshold, above half
        self.assertTrue(control.overloaded)
        self.assertFalse(control.observe(0.04, 4.0))
        self.assertEqual((control.overloaded, control.transitions), (False, 1))

    def test_smoothing(self) -> None:
        """One late timer alone does not start shedding; a lasting lag does."""
        control = OverloadControl(0.1, smoothing=0.3)
        self.assertIsNone(control.observe(0.25, 1.0))
        self.assertFalse(control.overloaded)
        for n in range(5):
            control.observe(0.25, 2.0 + n)
        self.assertTrue(control.overloaded)

    def test_clock_jump_ignored(self) -> None:
        """A sample later than max_sample (a clock jump, a suspended process) is left out."""
        control = OverloadControl(0.1, smoothing=1.0, max_sample=5.0)
        self.assertIsNone(control.observe(61.0, 1.0))
        self.assertEqual((control.lag, control.overloaded), (0.0, False))

    def test_sheds_new_requests(self) -> None:
        """While overloaded, new INVITE, REGISTER, MESSAGE, BIND and SUBSCRIBE are refused."""
        control = OverloadControl(0.1, smoothing=1.0, rng=lambda: 0.0)
        control.observe(1.0, 1.0)
        for method in ("INVITE", "REGISTER", "MESSAGE", "BIND", "SUBSCRIBE"):
            self.assertEqual(control.shed(request(method)), 2, method)
        self.assertEqual(sum(control.sheds.values()), 5)

    def test_exempt(self) -> None:
        """OPTIONS, ACK, CANCEL, BYE, PRACK and in-dialog requests are never refused."""
        control = OverloadControl(0.1, smoothing=1.0)
        control.observe(1.0, 1.0)
        for method in sorted(EXEMPT_METHODS):
            self.assertIsNone(control.shed(request(method)), method)
        tagged = "<sip:conf@example.com>;tag=abc"
        for method in ("INVITE", "NOTIFY", "INFO", "UPDATE", "REFER"):
            self.assertIsNone(control.shed(request(method, tagged)), method)
        self.assertEqual(sum(control.sheds.values()), 0)

    def test_not_overloaded(self) -> None:
        """Below the threshold nothing is refused."""
        control = OverloadControl(0.1)
        control.observe(0.01, 1.0)
        self.assertIsNone(control.shed(request("INVITE")))

    def test_check_raises_503(self) -> None:
        """check raises Overloaded: 503 with the Retry-After shed chose."""
        control = OverloadControl(0.1, smoothing=1.0, retry_after=(3, 3))
        control.observe(1.0, 1.0)
        with self.assertRaises(Overloaded) as caught:
            control.check(request("INVITE"))
        self.assertEqual(caught.exception.status, 503)
        self.assertEqual(caught.exception.headers, [("Retry-After", "3")])
        control.check(request("OPTIONS"))

    @given(st.floats(min_value=0.0, max_value=0.999999))
    def test_retry_after_range(self, draw: float) -> None:
        """Retry-After is jittered within its range, so refused clients spread out."""
        control = OverloadControl(0.1, smoothing=1.0, retry_after=(2, 10), rng=lambda: draw)
        control.observe(1.0, 1.0)
        retry = control.shed(request("INVITE"))
        assert retry is not None
        self.assertTrue(2 <= retry <= 10)

    def test_bad_settings(self) -> None:
        """A threshold, ratio, weight or range that cannot work is a ValueError."""
        for kwargs in (
            {"threshold": 0.0},
            {"threshold": 0.1, "clear_ratio": 0.0},
            {"threshold": 0.1, "smoothing": 2.0},
            {"threshold": 0.1, "retry_after": (5, 2)},
        ):
            self.assertRaises(ValueError, OverloadControl, **kwargs)


def simulate(
    shedding: ProportionalShedding,
    offered: float,
    seconds: float,
    *,
    refusal: float = 0.03,
    start: float = 0.0,
    capacity: float = 1000.0,
    pauses: Sequence[Tuple[float, float]] = (),
    report: bool = True,
) -> SimulatedRun:
    """
    A single-server queue on a simulated clock: new requests arrive evenly
    at C{offered} times C{capacity} per second from C{start}, each is read
    when the server is free (its wait observed then), and costs
    M{1/capacity} seconds when admitted, C{refusal} of that when refused.
    The service time varies by +-50% (seeded), as real requests do.  In
    each of C{pauses} (start, seconds) the server does nothing, as in a
    collector's step, and reports it to C{shedding} if C{report}.
    """
    rng = random.Random(7)
    rate = offered * capacity
    free = start
    run = SimulatedRun()
    for n in range(int(rate * seconds)):
        arrival = start + n / rate
        begin = max(arrival, free)
        for paused, length in pauses:
            if paused <= begin < paused + length:
                begin = paused + length
                if report:
                    shedding.paused(length)  # as the collector's hook says
        waited = begin - arrival
        if shedding.observe(waited, begin) and shedding.refuse_next(waited):
            free = begin + refusal / capacity
            run.refused += 1
        else:
            free = begin + rng.uniform(0.5, 1.5) / capacity
            run.admitted.append((arrival, free - arrival))
        run.fractions.append((begin, shedding.fraction))
    run.end = free
    return run


@dataclass
class SimulatedRun:
    """What L{simulate} saw: admitted requests (arrival, response time), refusals."""

    admitted: List[Tuple[float, float]] = field(default_factory=list)
    refused: int = 0
    fractions: List[Tuple[float, float]] = field(default_factory=list)
    end: float = 0.0

    def goodput(self, after: float, until: float, capacity: float = 1000.0) -> float:
        """Admitted requests that arrived in [after, until), per second, over capacity."""
        count = sum(1 for arrival, _ in self.admitted if after <= arrival < until)
        return count / (until - after) / capacity

    def p99(self, after: float) -> float:
        """The 99th percentile response time of requests admitted after C{after}."""
        times = sorted(t for arrival, t in self.admitted if arrival >= after)
        return times[int(len(times) * 0.99)]


class ProportionalSheddingTests(SynchronousTestCase):
    """
    The queue-wait controller: it converges to the share that matches
    capacity, ignores bursts and lets everything in again once load stops.
    """

    def test_converges_at_2x_and_4x(self) -> None:
        """Past capacity, goodput after the first second is >= 90% and p99 < 50 ms."""
        for offered, share in ((2.0, 0.51), (4.0, 0.78)):
            shedding = ProportionalShedding(0.02)
            run = simulate(shedding, offered, 6.0)
            self.assertGreaterEqual(run.goodput(1.0, 6.0), 0.9, offered)
            self.assertLess(run.p99(1.0), 0.05, offered)
            settled = [f for t, f in run.fractions if t >= 1.0]
            self.assertLess(abs(sum(settled) / len(settled) - share), 0.05, offered)
            self.assertLessEqual(shedding.transitions, 2)  # may stop once as the backlog clears

    def test_settles_fast(self) -> None:
        """0.6 s into 4x the share is already the one that matches capacity."""
        run = simulate(ProportionalShedding(0.02), 4.0, 1.0)
        early = [f for t, f in run.fractions if 0.6 <= t < 0.8]
        self.assertLess(abs(sum(early) / len(early) - 0.78), 0.05)

    def test_below_capacity_refuses_nothing(self) -> None:
        """At 80% of capacity nothing is refused."""
        shedding = ProportionalShedding(0.02)
        run = simulate(shedding, 0.8, 3.0)
        self.assertEqual((run.refused, shedding.transitions), (0, 0))

    def test_burst_refuses_nothing(self) -> None:
        """A burst that drains within an interval (20 ms at 2x) refuses nothing."""
        shedding = ProportionalShedding(0.02)
        quiet = simulate(shedding, 0.5, 1.0)
        burst = simulate(shedding, 2.0, 0.02, start=quiet.end)
        after = simulate(shedding, 0.5, 1.0, start=burst.end)
        self.assertEqual((burst.refused, after.refused, shedding.transitions), (0, 0, 0))

    def test_collector_steps_refuse_nothing(self) -> None:
        """A run of collector steps at 65% load leaves a queue that drains: none refused."""
        # Five 40 ms steps in 290 ms, as PyPy's major collection at 1,600 joins/s.
        steps = [(1.0, 0.04), (1.045, 0.04), (1.09, 0.04), (1.2, 0.04), (1.25, 0.04)]
        shedding = ProportionalShedding(0.02)
        run = simulate(shedding, 0.65, 3.0, pauses=steps)
        self.assertGreater(max(t for _, t in run.admitted), 0.1)  # the queue did build
        self.assertEqual((run.refused, shedding.transitions), (0, 0))

    def test_unreported_steps_shed(self) -> None:
        """The same steps, unreported, start shedding: the report is what tells them apart."""
        steps = [(1.0, 0.04), (1.045, 0.04), (1.09, 0.04), (1.2, 0.04), (1.25, 0.04)]
        shedding = ProportionalShedding(0.02)
        run = simulate(shedding, 0.65, 3.0, pauses=steps, report=False)
        self.assertGreater(run.refused, 0)

    def test_pauses_past_capacity_still_shed(self) -> None:
        """At 2x, with collector steps reported, shedding starts and goodput holds."""
        shedding = ProportionalShedding(0.02)
        steps = [(0.1, 0.04), (2.0, 0.04), (2.045, 0.04)]
        run = simulate(shedding, 2.0, 6.0, pauses=steps)
        self.assertGreater(shedding.fraction, 0.4)
        self.assertGreaterEqual(run.goodput(1.0, 6.0), 0.9)
        self.assertLess(run.p99(1.0), 0.05)

    def test_draining_queue_waits(self) -> None:
        """A standing queue that falls a tenth of each interval or more does not start shedding."""
        shedding = ProportionalShedding(0.02)
        for n in range(8):
            self.assertFalse(shedding.observe(0.2 - 0.01 * n, n * 0.05))
        self.assertEqual(shedding.transitions, 0)

    def test_recovers_after_load(self) -> None:
        """After 4x stops, requests at half capacity are all admitted within 0.5 s."""
        shedding = ProportionalShedding(0.02)
        overload = simulate(shedding, 4.0, 3.0)
        after = simulate(shedding, 0.5, 2.0, start=overload.end + 0.05)
        refusing = [t for t, f in after.fractions if f > 0]
        self.assertLess(max(refusing, default=overload.end) - overload.end, 0.5)
        self.assertEqual(shedding.fraction, 0.0)

    def test_idle_gap_resets(self) -> None:
        """A datagram after a second of silence finds nothing refused."""
        shedding = ProportionalShedding(0.02)
        simulate(shedding, 4.0, 2.0)
        self.assertGreater(shedding.fraction, 0.5)
        self.assertFalse(shedding.observe(0.0, 10.0))
        self.assertEqual(shedding.fraction, 0.0)

    def test_refusals_spread_evenly(self) -> None:
        """A fraction of a quarter refuses exactly every fourth candidate."""
        shedding = ProportionalShedding(0.02)
        shedding.fraction = 0.25
        decisions = [shedding.refuse_next() for _ in range(8)]
        self.assertEqual(decisions, [False, False, False, True] * 2)
        shedding.fraction = 0.0
        self.assertFalse(any(shedding.refuse_next() for _ in range(8)))

    def test_aged_refused_while_shedding(self) -> None:
        """While shedding, a request that waited past the limit is refused whatever the share."""
        shedding = ProportionalShedding(0.02, limit=0.04)
        shedding.fraction = 0.01
        self.assertEqual([shedding.refuse_next(0.05), shedding.refuse_next(0.01)], [True, False])
        shedding.fraction = 0.0
        self.assertFalse(shedding.refuse_next(1.0))

    def test_aged_refused_just_after_shedding(self) -> None:
        """For a second after the share fell to 0, a request past the limit is still refused."""
        shedding = ProportionalShedding(0.02, limit=0.03)
        now = 0.0
        while shedding.fraction == 0 and now < 1.0:  # a standing queue: shedding starts
            shedding.observe(0.05, now)
            now += 0.05
        self.assertGreater(shedding.fraction, 0)
        while shedding.fraction > 0:  # the queue runs dry: the share falls to 0
            shedding.observe(0.0, now)
            now += 0.05
        self.assertEqual([shedding.observe(0.04, now), shedding.refuse_next(0.04)], [True, True])
        self.assertEqual([shedding.observe(0.01, now), shedding.refuse_next(0.01)], [False, False])
        self.assertEqual(shedding.fraction, 0.0)  # not counted in the share
        for _ in range(22):  # over a second of a dry queue
            now += 0.05
            shedding.observe(0.0, now)
        self.assertEqual([shedding.observe(0.04, now), shedding.refuse_next(0.04)], [False, False])

    def test_collector_steps_at_2x_p99(self) -> None:
        """At 2x with half a second of collector steps every second, p99 stays under 40 ms."""
        steps = [(second + 0.3 + 0.02 * n, 0.008) for second in range(10) for n in range(25)]
        run = simulate(ProportionalShedding(0.02), 2.0, 10.0, refusal=0.06, pauses=steps)
        self.assertLess(run.p99(1.0), 0.04)
        self.assertGreaterEqual(run.goodput(1.0, 10.0), 0.7)  # the steps take a fifth

    def test_onset_p99(self) -> None:
        """Over 30 s of 2x or 4x, onset included, p99 of what is admitted stays under 50 ms."""
        for offered in (2.0, 4.0):
            run = simulate(ProportionalShedding(0.02), offered, 30.0)
            self.assertLess(run.p99(0.0), 0.05, offered)

    def test_waits_before_starting(self) -> None:
        """Shedding starts only after the queue stood for 200 ms, then resumes at once."""
        shedding = ProportionalShedding(0.02)
        for n in range(4):
            self.assertFalse(shedding.observe(0.03, n * 0.06))
        self.assertTrue(shedding.observe(0.03, 0.24))
        self.assertFalse(shedding.observe(0.0, 2.0))  # idle: stopped
        self.assertFalse(shedding.observe(0.03, 2.06))
        self.assertTrue(shedding.observe(0.03, 2.12))
        self.assertEqual(shedding.transitions, 2)

    def intervals(
        self,
        shedding: ProportionalShedding,
        waits: Sequence[float],
        *,
        reads: int = 25,
        before: Callable[[int], None] = lambda n: None,
    ) -> List[bool]:
        """
        Feed C{shedding} one 50 ms interval per wait, C{reads} datagrams in
        each (all with that wait); call C{before(n)} ahead of interval n.
        Whether it refused new requests after each interval's first read.
        """
        started = []
        for n, wait in enumerate(waits):
            before(n)
            for k in range(reads):
                shedding.observe(wait, n * 0.05 + k * 0.05 / reads)
                if k == 0:
                    started.append(shedding.standing)
        return started

    def test_rising_queue_starts_early(self) -> None:
        """A wait rising by half of each interval starts shedding at 150 ms, not 200 ms standing."""
        shedding = ProportionalShedding(0.02)
        started = self.intervals(shedding, [0.0, 0.025, 0.05, 0.075])
        self.assertEqual(started, [False, False, False, True])
        self.assertEqual(shedding.transitions, 1)

    def test_few_reads_do_not_rise(self) -> None:
        """The same rise over a handful of datagrams an interval is noise: no early start."""
        shedding = ProportionalShedding(0.02)
        started = self.intervals(shedding, [0.0, 0.025, 0.05, 0.075], reads=10)
        self.assertEqual(started, [False] * 4)

    def test_slow_rise_waits(self) -> None:
        """A wait rising by a tenth of each interval waits for the queue to stand 200 ms."""
        shedding = ProportionalShedding(0.02)
        started = self.intervals(shedding, [0.021 + 0.005 * n for n in range(6)])
        self.assertEqual(started, [False] * 5 + [True])

    def test_pause_does_not_rise(self) -> None:
        """The same rise made by reported pauses does not start shedding early."""
        shedding = ProportionalShedding(0.02)

        def pause(n: int) -> None:
            if n:
                shedding.paused(0.025)

        started = self.intervals(shedding, [0.0, 0.025, 0.05, 0.075], before=pause)
        self.assertEqual(started, [False] * 4)

    def test_compiling_counts_as_pause(self) -> None:
        """Time the JIT spent compiling, read from its clock, is a pause: no early start."""
        compiled = [0.0]
        shedding = ProportionalShedding(0.02, compiling=lambda: compiled[0])

        def compile(n: int) -> None:
            compiled[0] = 0.025 * n

        started = self.intervals(shedding, [0.0, 0.025, 0.05, 0.075], before=compile)
        self.assertEqual(started, [False] * 4)

    def test_onset_at_2x(self) -> None:
        """From idle to 2x, under 1% of the first second's admitted requests wait 50 ms or more."""
        run = simulate(ProportionalShedding(0.02), 2.0, 1.0)
        late = [t for arrival, t in run.admitted if t > 0.05]
        self.assertLess(len(late), len(run.admitted) // 100)

    def test_drained_backlog_not_adopted(self) -> None:
        """
        Aged refusals that clear a slowdown's backlog do not set the share:
        once the queue falls it is back to the share before them, and
        nothing is refused while the queue is dry.
        """
        # A traced episode on PyPy at 1,600 joins/s (datagrams, mean wait
        # and the collector's steps reported, in ms, per 50 ms interval):
        # the server slowed for a quarter second, shedding started, and the
        # backlog, read fast once refused, was gone two intervals later.
        # Adopting its aged refusals set the share to 0.98 through the
        # drain, and doubling then refused most new requests for four more
        # intervals with the queue empty.
        episode = [(150, 15.0, 0.0), (130, 32.9, 1.9), (159, 56.2, 3.8), (142, 67.1, 2.1)]
        episode += [(150, 84.6, 2.4), (147, 110.2, 4.4), (405, 101.2, 3.6), (765, 33.3, 4.3)]
        episode += [(200, 0.7, 1.5)] * 8
        shedding = ProportionalShedding(0.02)
        shares = []
        for n, (count, wait, paused) in enumerate(episode):
            shedding.paused(paused / 1000)
            for k in range(count):
                if shedding.observe(wait / 1000, 1.0 + 0.05 * (n + k / count)):
                    shedding.refuse_next(wait / 1000)
            shares.append(shedding.fraction)
        self.assertEqual(max(shares), 0.98)  # aged refusals held it while the queue grew
        self.assertLess(shares[7], 0.5)  # the queue fell: back to the share before them
        self.assertEqual(shares[8:], [0.0] * 8)

    def test_all_refused_then_idle_recovers(self) -> None:
        """An interval whose few new requests were all refused does not lock the share at 98%."""
        shedding = ProportionalShedding(0.02)
        shedding.fraction = 0.98
        shedding.observe(0.0, 0.0)
        self.assertTrue(shedding.refuse_next(1.0))  # the interval's one new request, refused
        self.assertFalse(shedding.observe(0.0, 1.0))  # then a second with nothing to read
        self.assertEqual(shedding.fraction, 0.0)
        self.assertFalse(shedding.refuse_next())

    def test_never_refuses_all(self) -> None:
        """However long the queue, some new requests are let in."""
        shedding = ProportionalShedding(0.02, max_fraction=0.9)
        for n in range(100):
            shedding.observe(5.0 + n, n * 0.05)
        self.assertEqual(shedding.fraction, 0.9)
        self.assertFalse(all(shedding.refuse_next() for _ in range(20)))

    def test_bad_parameters(self) -> None:
        """Target, interval and drain time must be positive, the most refused below 1."""
        self.assertRaises(ValueError, ProportionalShedding, 0)
        self.assertRaises(ValueError, ProportionalShedding, 0.02, interval=0)
        self.assertRaises(ValueError, ProportionalShedding, 0.02, drain=0)
        self.assertRaises(ValueError, ProportionalShedding, 0.02, max_fraction=1.0)
