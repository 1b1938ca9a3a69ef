# -*- test-case-name: tests.web.test_metrics -*-
"""
Prometheus metrics read from the live server at scrape time.

A custom collector rather than counters incremented through the code: the
server already counts what operators ask for (L{SIPServer.stats}, the
transaction tables, the roster, media admission), so a scrape reads those
numbers and nothing on the request path changes.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any, Callable, Dict, Iterator, Optional, Set

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from conference.records import StoreError

#: Meaning of each key of C{SIPServer.stats}, exported as one counter.
SIP_MESSAGE_KINDS = {
    "received": "SIP messages parsed and handed to the transaction layer",
    "sent": "SIP messages written to a transport",
    "refused": "SIP messages answered with an error before dispatch (bad syntax, too large)",
    "dropped": "SIP messages dropped unparsed or undeliverable",
}


class ServerCollector(Collector):
    """
    Collect metrics from a running conference service.

    @ivar server: an object with the service's public parts: C{sip}
        (L{conference.transport.server.SIPServer}) and, once started,
        C{focus} (L{conference.app.focus.Focus}).
    """

    def __init__(self, server: Any) -> None:
        self.server = server

    def collect(self) -> Iterator[Metric]:
        """
        One family per metric documented in docs/operations.rst.
        """
        sip = self.server.sip
        stats = dict(sip.stats)
        messages = CounterMetricFamily(
            "conference_sip_messages",
            "SIP messages by what happened to them (received, sent, refused, dropped)",
            labels=["kind"],
        )
        for kind in SIP_MESSAGE_KINDS:
            messages.add_metric([kind], float(stats.get(kind, 0)))
        yield messages
        yield CounterMetricFamily(
            "conference_sip_rate_limited",
            "Requests refused by the per-source or per-identity rate limit (--rate-limit)",
            value=float(stats.get("limited", 0)),
        )
        yield CounterMetricFamily(
            "conference_sip_shed",
            "Requests shed with 503 because --max-transactions were alive",
            value=float(stats.get("shed", 0)),
        )
        transactions = GaugeMetricFamily(
            "conference_sip_transactions",
            "Transactions alive now, by table of the transaction layer",
            labels=["table"],
        )
        for table, size in sorted(sip.layer.sizes().items()):
            transactions.add_metric([table], float(size))
        yield transactions
        focus: Optional[Any] = getattr(self.server, "focus", None)
        if focus is None:
            return
        yield GaugeMetricFamily(
            "conference_participants",
            "Participants in a conference now (dialogs with the focus)",
            value=float(len(focus.roster)),
        )
        yield GaugeMetricFamily(
            "conference_conferences_open",
            "Conferences with at least one participant now",
            value=float(len(open_conferences(focus))),
        )
        admission = focus.admission
        if admission is not None:
            yield GaugeMetricFamily(
                "conference_media_sessions",
                "Media sessions held by the focus now",
                value=float(len(admission)),
            )
            yield GaugeMetricFamily(
                "conference_media_capacity",
                "Media sessions the media service can hold at once",
                value=float(admission.capacity),
            )


class StoreProbe(Collector):
    """
    What only the store knows (how many conferences are stored, by
    state), asked once per scrape: L{refresh} runs the query before the
    exposition is generated, since a collector cannot wait.

    @ivar up: whether the last query answered (L{None}: not asked yet).
    @ivar counts: conferences by state from the last answer.
    @ivar seconds: how long the last query took.
    """

    def __init__(self, timer: Callable[[], float] = time.monotonic) -> None:
        self._timer = timer
        self.up: Optional[bool] = None
        self.counts: Dict[str, int] = {}
        self.seconds = 0.0

    async def refresh(self, stores: Any) -> None:
        """
        Count the stored conferences; a store that fails or is not open
        yet marks the store down (the fault is the caller's to log).
        """
        if stores is None:
            self.up = False
            return
        started = self._timer()
        try:
            records = await stores.conferences.list()
        except StoreError:
            self.up = False
            raise
        finally:
            self.seconds = self._timer() - started
        self.up = True
        self.counts = dict(Counter(record.state for record in records))

    def collect(self) -> Iterator[Metric]:
        """
        The store's gauges, once it has been asked.
        """
        if self.up is None:
            return
        yield GaugeMetricFamily(
            "conference_store_up",
            "Whether the store answered the last scrape's query (1) or not (0)",
            value=1.0 if self.up else 0.0,
        )
        yield GaugeMetricFamily(
            "conference_store_probe_seconds",
            "How long the last scrape's query of the store took",
            value=self.seconds,
        )
        if self.up:
            stored = GaugeMetricFamily(
                "conference_conferences_stored",
                "Conferences in the store by state (scheduled, cancelled)",
                labels=["state"],
            )
            for state in sorted({"scheduled", "cancelled", *self.counts}):
                stored.add_metric([state], float(self.counts.get(state, 0)))
            yield stored


def open_conferences(focus: Any) -> Set[str]:
    """
    The URIs of the conferences someone is in now, from the focus's calls.
    """
    return {call.participant.conference for call in list(focus.calls.values())}


def server_registry(server: Any, *collectors: Collector) -> CollectorRegistry:
    """
    A registry of its own (not the process-global one) holding the
    L{ServerCollector} of C{server} and C{collectors}, so two services in
    one process (tests, embedding) do not mix their numbers.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServerCollector(server))
    for collector in collectors:
        registry.register(collector)
    return registry
