# -*- test-case-name: tests.unit.test_overload -*-
"""
Tests for L{conference.overload}: when shedding starts and stops, what is
never shed, and the Retry-After it answers with.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from conference.overload import EXEMPT_METHODS, OverloadControl, Overloaded, StandingQueue
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


class StandingQueueTests(SynchronousTestCase):
    """
    The queue-wait signal: a burst drains, overload stands.
    """

    def test_burst_does_not_stand(self) -> None:
        """Waits over the target for less than the interval refuse nothing."""
        queue = StandingQueue(0.05, interval=0.2)
        decisions = [queue.observe(0.1, t / 100) for t in range(15)]
        decisions.append(queue.observe(0.001, 0.16))
        decisions += [queue.observe(0.1, 0.17 + t / 100) for t in range(15)]
        self.assertEqual((any(decisions), queue.standing), (False, False))

    def test_standing_refuses_the_aged(self) -> None:
        """After an interval of long waits, requests over the target are refused, others not."""
        queue = StandingQueue(0.05, interval=0.2)
        for t in range(21):
            queue.observe(0.1, t / 100)
        self.assertTrue(queue.standing)
        self.assertEqual(queue.transitions, 1)
        self.assertTrue(queue.observe(0.08, 0.22))
        self.assertFalse(queue.observe(0.01, 0.23))
        self.assertTrue(queue.standing)

    def test_stops_after_interval_below(self) -> None:
        """An interval without a wait over the target ends it."""
        queue = StandingQueue(0.05, interval=0.2)
        for t in range(21):
            queue.observe(0.1, t / 100)
        queue.observe(0.01, 1.0)
        queue.observe(0.01, 1.1)
        self.assertTrue(queue.standing)
        queue.observe(0.01, 1.25)
        self.assertFalse(queue.standing)
        self.assertFalse(queue.observe(0.1, 1.26))

    def test_bad_parameters(self) -> None:
        """Target and interval must be positive."""
        self.assertRaises(ValueError, StandingQueue, 0)
        self.assertRaises(ValueError, StandingQueue, 0.05, interval=0)
