# -*- test-case-name: tests.unit.web.test_traffic -*-
"""
Requests and responses by method and status, and their latency, counted
from the one log event the SIP server emits per transaction (see
L{conference.transport.server.SIPServer._log_transaction}).

Observing that event rather than adding counters to the transaction
layer keeps the request path as it is: the event is emitted anyway, and
counting it is a dictionary update.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Dict, Iterator, Tuple

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from twisted.logger import ILogObserver, LogPublisher
from zope.interface import implementer

from conference.sip.headers import KNOWN_METHODS

#: Upper bounds (seconds) of the latency histogram's buckets.
BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 32.0)

_NAMESPACE = "conference.transport.server"


@implementer(ILogObserver)
class TransactionCounter(Collector):
    """
    A log observer and a collector: counts each transaction's outcome as
    it is logged, exports the counts at scrape time.
    """

    def __init__(self) -> None:
        self.outcomes: Counter[Tuple[str, str, str]] = Counter()
        self._buckets: Dict[str, list[int]] = {}
        self._sums: Dict[str, float] = {}

    def __call__(self, event: Dict[str, Any]) -> None:
        """
        Count C{event} if it is a transaction's outcome.
        """
        if event.get("log_namespace") != _NAMESPACE or "transaction_summary" not in event:
            return
        method = str(event.get("method", ""))
        if method not in KNOWN_METHODS:
            method = "other"  # so a client cannot create label values at will
        status = event.get("status")
        code = str(status) if isinstance(status, int) and 100 <= status <= 699 else "timeout"
        direction = "out" if event.get("outbound") else "in"
        self.outcomes[(method, code, direction)] += 1
        seconds = float(event.get("duration_ms", 0.0)) / 1000.0
        counts = self._buckets.setdefault(method, [0] * (len(BUCKETS) + 1))
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                counts[i] += 1
                break
        else:
            counts[-1] += 1
        self._sums[method] = self._sums.get(method, 0.0) + seconds

    def collect(self) -> Iterator[Metric]:
        """
        The counts so far.
        """
        outcomes = CounterMetricFamily(
            "conference_sip_transactions_completed",
            "Transactions by method, final status code (or timeout) and direction "
            "(in: requests we answered; out: requests we sent)",
            labels=["method", "code", "direction"],
        )
        for (method, code, direction), count in sorted(self.outcomes.items()):
            outcomes.add_metric([method, code, direction], float(count))
        yield outcomes
        latency = HistogramMetricFamily(
            "conference_sip_transaction_seconds",
            "Time from a request's arrival (or sending) to its final response",
            labels=["method"],
        )
        for method, counts in sorted(self._buckets.items()):
            cumulative, running = [], 0
            for bound, count in zip([*map(str, BUCKETS), "+Inf"], counts):
                running += count
                cumulative.append((bound, float(running)))
            latency.add_metric([method], cumulative, sum_value=self._sums[method])
        yield latency


class ObservedCounter:
    """
    Attach a L{TransactionCounter} to a log publisher while the HTTP
    endpoint runs.
    """

    def __init__(self, counter: TransactionCounter, publisher: LogPublisher) -> None:
        self.counter = counter
        self.publisher = publisher

    def start(self) -> None:
        """
        Begin counting.
        """
        self.publisher.addObserver(self.counter)

    def stop(self) -> None:
        """
        Stop counting (the counts are kept).
        """
        self.publisher.removeObserver(self.counter)
