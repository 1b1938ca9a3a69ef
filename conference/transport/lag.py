# -*- test-case-name: tests.unit.transport.test_lag -*-
"""
The event-loop lag probe that feeds L{conference.overload.OverloadControl}:
a short timer re-armed after each firing, its lateness measured with the
injected reactor's clock.  Thin on purpose: the decision is sans-I/O.
"""

from __future__ import annotations

from typing import Any, Optional

from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger

from conference.overload import OverloadControl, ProportionalShedding
from conference.reactors import default_reactor

__all__ = ["LagProbe"]

log = Logger()

#: Seconds the queue signal must stay quiet before its end is logged.
QUIET = 1.0


class LagProbe:
    """
    Measures how late a timer of C{interval} seconds fires and tells the
    overload control; logs once when shedding starts and once when it
    stops, for the lag and for the receive queue's wait (L{queue}, which
    the UDP port feeds per datagram: its state is looked at here, once per
    tick, so that the per-datagram path stays free of logging, and its end
    is logged only once it held for L{QUIET} seconds, so that a queue
    at the edge of capacity does not log every interval).  For C{grace}
    seconds after it starts nothing is counted: the
    first seconds of a server (lazy imports, the collector's first pass,
    a store warming up) make timers late without any queue of requests.
    """

    def __init__(
        self,
        control: OverloadControl,
        *,
        interval: float = 0.05,
        grace: float = 2.0,
        reactor: Any = None,
    ) -> None:
        self.control = control
        self.interval = interval
        self.grace = grace
        self._counting_from = 0.0
        self._reactor = default_reactor(reactor)
        self._call: Optional[IDelayedCall] = None
        self._due = 0.0
        #: The queue-wait shedding whose starts and stops are logged here.
        self.queue: Optional[ProportionalShedding] = None
        self._queue_logged = False
        self._queue_quiet: Optional[float] = None
        self._queue_shed_from = 0

    @property
    def running(self) -> bool:
        """
        Whether the probe is armed.
        """
        return self._call is not None

    def start(self) -> None:
        """
        Arm the probe (again a no-op while it runs).
        """
        if self._call is None:
            self._counting_from = self._reactor.seconds() + self.grace
            self._arm()

    def stop(self) -> None:
        """
        Disarm it (the service is stopping).
        """
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _arm(self) -> None:
        self._due = self._reactor.seconds() + self.interval
        self._call = self._reactor.callLater(self.interval, self._fired)

    def _fired(self) -> None:
        now = self._reactor.seconds()
        if now < self._counting_from:
            self._arm()
            return
        changed = self.control.observe(now - self._due, now)
        if changed is True:
            log.warn(
                "Overloaded: event loop {lag:.0f} ms late; answering new requests 503 "
                "(Retry-After) until it recovers",
                lag=self.control.lag * 1000,
            )
        elif changed is False:
            log.info(
                "Overload over: event loop {lag:.0f} ms late; {shed} requests were shed",
                lag=self.control.lag * 1000,
                shed=sum(self.control.sheds.values()),
            )
        if self.queue is not None:
            self._watch_queue(self.queue, now)
        self._arm()

    def _watch_queue(self, queue: ProportionalShedding, now: float) -> None:
        """Log the queue signal's shedding starting, and ending for good."""
        shed = sum(self.control.sheds.values())
        if queue.standing:
            self._queue_quiet = None
            if not self._queue_logged:
                self._queue_logged = True
                self._queue_shed_from = shed
                log.warn(
                    "Overloaded: new SIP requests wait {wait:.0f} ms to be read; "
                    "answering {share:.0f}% of new requests 503 (Retry-After) until "
                    "the queue drains",
                    wait=queue.wait * 1000,
                    share=queue.fraction * 100,
                )
        elif self._queue_logged:
            if self._queue_quiet is None:
                self._queue_quiet = now
            elif now - self._queue_quiet >= QUIET:
                self._queue_logged = False
                self._queue_quiet = None
                log.info(
                    "Overload over: the SIP receive queue drained; {shed} requests were shed",
                    shed=shed - self._queue_shed_from,
                )
