# -*- test-case-name: tests.unit.web.test_metrics -*-
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
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Set, Tuple

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from conference.app.mixer import MixerMediaService
from conference.media.channel import Counters
from conference.records import StoreError
from conference.store.cache import CachedBindingStore
from conference.store.timing import BUCKETS as STORE_BUCKETS
from conference.store.timing import StoreLatency

#: Meaning of each key of C{SIPServer.stats}, exported as one counter.
SIP_MESSAGE_KINDS = {
    "received": "SIP messages parsed and handed to the transaction layer",
    "sent": "SIP messages written to a transport",
    "refused": "SIP messages answered with an error before dispatch (bad syntax, too large)",
    "dropped": "SIP messages dropped unparsed or undeliverable",
    "stateless": "SIP responses sent without a transaction (RFC 3261 section 8.2.7)",
}

#: Join outcomes always exported (0 until they happen): C{joined} or why
#: the focus answered 486.
JOIN_OUTCOMES = ("joined", "not-open", "locked", "full")

#: Outcomes of calls to users always exported: 486, 302, 480.
USER_OUTCOMES = ("busy", "redirected", "unavailable")

#: BIND update outcomes always exported: C{applied} or a refusal's reason.
BIND_OUTCOMES = ("applied", "forbidden", "bad-request", "store-unavailable")

#: RTP/RTCP drop reasons: the L{Counters} fields counting dropped datagrams.
DROP_REASONS = (
    "malformed",
    "oversized",
    "strangers",
    "flood",
    "wrong_payload",
    "ssrc_mismatch",
    "unconfirmed",
    "ignored",
    "unauthenticated",
    "replayed",
    "rtcp_malformed",
)


def outcome_counter(
    name: str, documentation: str, counts: Any, always: Iterable[str]
) -> CounterMetricFamily:
    """
    A counter labelled C{outcome} from a C{Counter} of outcomes, the
    C{always} ones exported even at 0 so that rates can be taken at once.
    """
    family = CounterMetricFamily(name, documentation, labels=["outcome"])
    for outcome in sorted({*always, *counts}):
        family.add_metric([outcome], float(counts.get(outcome, 0)))
    return family


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
        yield from self._applications()
        latency: Optional[StoreLatency] = getattr(self.server, "store_latency", None)
        if latency is not None:
            yield store_latency(latency)
        sip = self.server.sip
        stats = dict(sip.stats)
        messages = CounterMetricFamily(
            "conference_sip_messages",
            "SIP messages by what happened to them (received, sent, refused, dropped, stateless)",
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
        yield CounterMetricFamily(
            "conference_sip_retired_dropped_early",
            "Answered transactions dropped before their 32 s (Timer J or L) because "
            "--max-transactions rows were kept",
            value=float(sip.layer.dropped_early()),
        )
        overload: Optional[Any] = getattr(self.server, "overload", None)
        if overload is not None:
            yield from overload_metrics(overload)
        queue: Optional[Any] = getattr(getattr(self.server, "sip", None), "queue", None)
        if queue is not None:
            yield GaugeMetricFamily(
                "conference_sip_queue_standing",
                "1 while the UDP queue's wait makes a share of new requests "
                "refused before parsing (--overload-queue-ms)",
                value=1.0 if queue.standing else 0.0,
            )
            yield GaugeMetricFamily(
                "conference_sip_shed_fraction",
                "The share of new requests refused before parsing now",
                value=float(queue.fraction),
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
        yield outcome_counter(
            "conference_joins",
            "INVITEs to a conference by outcome: joined, or refused with 486 because "
            "the conference is not open yet, locked or full",
            focus.outcomes,
            JOIN_OUTCOMES,
        )
        yield outcome_counter(
            "conference_user_calls",
            "INVITEs to a user of a served domain by answer: busy (486), "
            "redirected (302), unavailable (480)",
            focus.users.outcomes,
            USER_OUTCOMES,
        )
        if isinstance(focus.media, MixerMediaService):
            yield from media_metrics(focus.media)
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

    def _applications(self) -> Iterator[Metric]:
        binder: Optional[Any] = getattr(self.server, "binder", None)
        if binder is not None:
            yield outcome_counter(
                "conference_bind_updates",
                "BIND requests that change bindings, by outcome: applied, or the "
                "reason they were refused (forbidden, bad-request, too-large, too-brief, "
                "not-found, store-unavailable, other)",
                binder.updates,
                BIND_OUTCOMES,
            )
            cache = getattr(binder, "store", None)
            if isinstance(cache, CachedBindingStore):
                yield outcome_counter(
                    "conference_binding_cache_reads",
                    "Reads of an owner's bindings or dispositions (queries, OPTIONS, "
                    "REGISTER, NOTIFY) by outcome: hit (answered from the binding "
                    "cache) or miss (read from the store)",
                    {"hit": cache.hits, "miss": cache.misses},
                    ("hit", "miss"),
                )


def overload_metrics(overload: Any) -> Iterator[Metric]:
    """
    The overload control's state: the smoothed event-loop lag, whether
    new requests are shed, and how many were, by method (docs/limits.rst).
    """
    yield GaugeMetricFamily(
        "conference_event_loop_lag_seconds",
        "Smoothed lateness of a short reactor timer (the overload signal)",
        value=float(overload.lag),
    )
    yield GaugeMetricFamily(
        "conference_overloaded",
        "1 while new requests are answered 503 because the event loop lags",
        value=1.0 if overload.overloaded else 0.0,
    )
    sheds = CounterMetricFamily(
        "conference_sip_overload_shed",
        "New requests answered 503 + Retry-After while overloaded, by method",
        labels=["method"],
    )
    for method in sorted(overload.sheds):
        sheds.add_metric([method], float(overload.sheds[method]))
    yield sheds


def store_latency(latency: StoreLatency) -> HistogramMetricFamily:
    """
    The store call durations as a Prometheus histogram by store and operation.
    """
    family = HistogramMetricFamily(
        "conference_store_call_seconds",
        "Time from a store call to its result, by store and operation",
        labels=["store", "operation"],
    )
    bounds = [*map(str, STORE_BUCKETS), "+Inf"]
    for key, counts in sorted(latency.counts.items()):
        cumulative, running = [], 0
        for bound, count in zip(bounds, counts):
            running += count
            cumulative.append((bound, float(running)))
        family.add_metric(list(key), cumulative, sum_value=latency.sums[key])
    return family


def media_metrics(media: MixerMediaService) -> Iterator[Metric]:
    """
    The built-in mixer's packets, drops, mix deadline misses and stream
    quality: counters summed over all channels (closed ones included),
    quality aggregated over the open ones (no per-participant labels).
    """
    channels = list(media.channels.values())
    totals = Counters()
    totals.add(media.retired)
    for channel in channels:
        totals.add(channel.counters)
    packets = CounterMetricFamily(
        "conference_rtp_packets",
        "RTP datagrams by what happened: received (at the ports), accepted (into the mix), sent",
        labels=["kind"],
    )
    packets.add_metric(["received"], float(totals.received))
    packets.add_metric(["accepted"], float(totals.accepted))
    packets.add_metric(["sent"], float(totals.sent))
    yield packets
    yield CounterMetricFamily(
        "conference_rtcp_packets",
        "RTCP datagrams received at the ports",
        value=float(totals.rtcp_received),
    )
    dropped = CounterMetricFamily(
        "conference_rtp_dropped",
        "RTP and RTCP datagrams not used, by reason",
        labels=["reason"],
    )
    for reason in DROP_REASONS:
        dropped.add_metric([reason], float(getattr(totals, reason)))
    yield dropped
    yield CounterMetricFamily(
        "conference_mix_deadline_misses",
        "Mix frames skipped because the reactor was late by more than the catch-up",
        value=float(media.skipped),
    )
    yield GaugeMetricFamily(
        "conference_mixes",
        "Conferences being mixed now",
        value=float(len(media.conferences)),
    )
    for direction, qualities in (
        ("in", [channel.inbound_quality() for channel in channels]),
        ("out", [channel.outbound_quality() for channel in channels]),
    ):
        yield from _quality(direction, [q for q in qualities if q is not None])


def _quality(direction: str, qualities: List[Tuple[float, float]]) -> Iterator[Metric]:
    if not qualities:
        return
    for index, name, documentation in (
        (0, "conference_rtp_loss_ratio", "Fraction of RTP packets lost"),
        (1, "conference_rtp_jitter_seconds", "RTP interarrival jitter"),
    ):
        values = [quality[index] for quality in qualities]
        family = GaugeMetricFamily(
            f"{name}_{direction}",
            f"{documentation} ({_DIRECTIONS[direction]}), over the open streams",
            labels=["stat"],
        )
        family.add_metric(["mean"], sum(values) / len(values))
        family.add_metric(["max"], max(values))
        yield family


_DIRECTIONS = {
    "in": "participants' streams as received here",
    "out": "our streams as participants last reported in RTCP",
}


#: Login (scheme, outcome) pairs always exported: what each scheme can end in.
WEB_LOGINS = (
    ("none", "missing"),
    *(("digest", o) for o in ("ok", "malformed", "wrong", "stale", "replayed", "bad-uri")),
    *(("basic", o) for o in ("ok", "malformed", "wrong", "insecure")),
    ("other", "malformed"),
)


class WebCollector(Collector):
    """
    What the HTTP endpoint itself counts: login attempts and actions.

    @ivar logins: attempts by (scheme, outcome), kept by the
        L{conference.web.access.Gate}.
    @ivar acted: action requests by (action, HTTP status), kept by the
        status resource.
    """

    def __init__(
        self,
        logins: Counter[Tuple[str, str]],
        acted: Counter[Tuple[str, str]],
        actions: Iterable[str] = (),
    ) -> None:
        """
        @param actions: the action names exported (with status 303) at 0
            before any is used.
        """
        self.logins = logins
        self.acted = acted
        self.actions = tuple(actions)

    def collect(self) -> Iterator[Metric]:
        """
        C{conference_web_logins_total} and C{conference_web_actions_total}.
        """
        logins = CounterMetricFamily(
            "conference_web_logins",
            "Status page login attempts by scheme (digest, basic, none, other) and outcome "
            "(ok, missing, malformed, wrong, stale, replayed, insecure, bad-uri)",
            labels=["scheme", "outcome"],
        )
        for key in sorted({*WEB_LOGINS, *self.logins}):
            logins.add_metric(list(key), float(self.logins.get(key, 0)))
        yield logins
        actions = CounterMetricFamily(
            "conference_web_actions",
            "Status page action requests by action and HTTP status "
            "(303 done, 400, 403, 404, 503 refused)",
            labels=["action", "code"],
        )
        always = {(name, "303") for name in self.actions}
        for key in sorted({*always, *self.acted}):
            actions.add_metric(list(key), float(self.acted.get(key, 0)))
        yield actions


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
