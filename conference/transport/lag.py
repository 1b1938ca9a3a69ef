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

from conference.overload import OverloadControl
from conference.reactors import default_reactor

__all__ = ["LagProbe"]

log = Logger()


class LagProbe:
    """
    Measures how late a timer of C{interval} seconds fires and tells the
    overload control; logs once when shedding starts and once when it
    stops.  For C{grace} seconds after it starts nothing is counted: the
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
        self._arm()
