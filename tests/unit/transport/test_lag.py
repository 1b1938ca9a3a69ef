# -*- test-case-name: tests.unit.transport.test_lag -*-
"""
Tests for L{conference.transport.lag}: the probe on a fake clock, and a
server that sheds while it is late.
"""

from __future__ import annotations

from typing import Any, List

from twisted.internet.task import Clock
from twisted.logger import ILogObserver, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from conference.app.core import CoreRouter
from conference.overload import OverloadControl, ProportionalShedding
from conference.sip.transaction import Peer
from conference.sip.transaction_model import new_tag
from conference.transport.lag import LagProbe
from conference.transport.server import SIPServer
from tests.builders import request_bytes
from tests.unit.transport.test_server import RecordingSender


class ProbeTests(SynchronousTestCase):
    """
    LagProbe on a Clock.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.control = OverloadControl(0.1, smoothing=1.0)
        self.probe = LagProbe(self.control, interval=0.05, grace=0.0, reactor=self.clock)
        self.events: List[Any] = []

        @implementer(ILogObserver)
        def observe(event: Any) -> None:
            if "Overload" in str(event.get("log_format", "")):
                self.events.append(event)

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)

    def test_on_time(self) -> None:
        """A timer that fires on time measures no lag."""
        self.probe.start()
        for _ in range(10):
            self.clock.advance(0.05)
        self.assertEqual((self.control.lag, self.control.overloaded), (0.0, False))

    def test_late_then_recovered(self) -> None:
        """A late timer starts shedding, logged once; on-time ones stop it, logged once."""
        self.probe.start()
        self.clock.advance(0.5)  # fired 0.45 s late
        self.assertTrue(self.control.overloaded)
        self.clock.advance(0.05)
        self.assertFalse(self.control.overloaded)
        self.assertEqual([e["log_level"].name for e in self.events], ["warn", "info"])

    def test_grace(self) -> None:
        """Late timers in the first seconds after start (start-up work) are not counted."""
        probe = LagProbe(self.control, interval=0.05, grace=2.0, reactor=self.clock)
        probe.start()
        self.clock.advance(1.0)  # the first firing, 0.95 s late, within the grace
        self.assertEqual((self.control.lag, self.control.overloaded), (0.0, False))
        self.clock.advance(1.05)
        self.clock.advance(0.5)
        self.assertTrue(self.control.overloaded)
        probe.stop()

    def queue_ticks(self, fractions: List[float]) -> List[str]:
        """Tick the probe once per queue fraction given; the levels logged."""
        queue = ProportionalShedding(0.02)
        self.probe.queue = queue
        self.probe.start()
        for fraction in fractions:
            queue.fraction = fraction
            self.clock.advance(0.05)
        return [e["log_level"].name for e in self.events]

    def test_queue_shedding_logged(self) -> None:
        """Queue shedding starting is logged once, its end once it held a second."""
        levels = self.queue_ticks([0.5] * 5 + [0.0] * 10)
        self.assertEqual(levels, ["warn"])  # quiet for 0.5 s: not over yet
        self.clock.pump([0.05] * 12)
        self.assertEqual([e["log_level"].name for e in self.events], ["warn", "info"])

    def test_queue_flapping_logged_once(self) -> None:
        """A queue at the edge, refusing and not by turns, logs one start, no stop."""
        levels = self.queue_ticks([0.3, 0.0, 0.0, 0.3, 0.0, 0.3, 0.0, 0.0, 0.3] * 3)
        self.assertEqual(levels, ["warn"])

    def test_stop(self) -> None:
        """A stopped probe leaves no timer behind."""
        self.probe.start()
        self.probe.start()
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.probe.stop()
        self.assertEqual((self.clock.getDelayedCalls(), self.probe.running), ([], False))


class SheddingServerTests(SynchronousTestCase):
    """
    A server whose transaction layer asks the overload control.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.router = CoreRouter(["example.com"], tag_factory=new_tag, accept_ip_literals=True)
        self.server = SIPServer(self.router, reactor=self.clock)
        self.control = OverloadControl(0.1, smoothing=1.0, retry_after=(4, 4))
        self.server.layer.admission = self.control.check
        self.sender = RecordingSender()
        self.server.add_sender("udp", self.sender)
        self.peer = Peer("UDP", "192.0.2.7", 5070, "udp")
        self.seen: List[str] = []
        real = self.router.dispatch

        def spy(request: Any, context: Any) -> Any:
            self.seen.append(request.method)
            return real(request, context)

        self.router.dispatch = spy  # type: ignore[method-assign]

    def send(self, method: str, n: int) -> None:
        data = request_bytes(
            method,
            "sip:nobody@example.com",
            branch=f"z9hG4bKover{n}",
            call_id=f"over-{n}",
            via_host="192.0.2.7:5070",
        )
        self.server.datagram_received(data, self.peer)

    def test_shed_before_the_application(self) -> None:
        """While overloaded a new INVITE is 503 Retry-After and never reaches the router."""
        self.control.observe(1.0, 0.0)
        self.send("INVITE", 1)
        [response] = self.sender.responses()
        self.assertEqual((response.code, response.header("retry-after")), (503, "4"))
        self.assertEqual(self.seen, [])
        self.assertEqual(self.server.stats["overloaded"], 1)
        self.assertEqual(self.server.layer.pending(), 0)

    def test_stateless_retransmission_admitted_anew(self) -> None:
        """A request answered statelessly has no transaction: its retransmission is a new one."""
        self.send("MESSAGE", 4)
        self.control.observe(1.0, 0.0)
        self.send("MESSAGE", 4)
        codes = [r.code for r in self.sender.responses()]
        self.assertEqual(codes, [405, 503])

    def test_options_still_answered(self) -> None:
        """OPTIONS (a dispatcher's probe) still reaches the router while overloaded."""
        self.control.observe(1.0, 0.0)
        self.send("OPTIONS", 2)
        self.assertEqual(self.seen, ["OPTIONS"])
        self.assertNotEqual(self.sender.responses()[0].code, 503)

    def test_retransmission_absorbed(self) -> None:
        """A request accepted before overload is matched on retransmission, not refused."""
        self.server.answer_statelessly = False  # the 405 has a transaction
        self.send("MESSAGE", 3)
        before = len(self.sender.sent)
        self.control.observe(1.0, 0.0)
        self.send("MESSAGE", 3)
        codes = [r.code for r in self.sender.responses()]
        self.assertNotIn(503, codes)
        self.assertEqual(self.seen, ["MESSAGE"])
        self.assertGreaterEqual(len(self.sender.sent), before)
