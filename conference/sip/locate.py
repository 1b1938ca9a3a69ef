# -*- test-case-name: tests.unit.sip.test_locate -*-
"""
Locating SIP servers (RFC 3263 section 4) as a sans-I/O plan.

A L{Resolution} says which DNS query to make next and, as answers are fed
back, which transport, address and port to try next, in the RFC's order:
NAPTR, then SRV (ordered by priority and weight, RFC 2782), then A and
AAAA.  Targets are produced lazily, so failing over to the next one costs
only the lookups it needs.  The bounds a hostile or broken zone could
otherwise exceed live here too: a query is never made twice, at most
C{MAX_ALIASES} CNAMEs are followed (alias loops end), at most
C{max_queries} queries and C{max_records} records per answer are used,
and a target that is one of our own addresses is skipped.
"""

from __future__ import annotations

import ipaddress
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Deque, Dict, FrozenSet, List, Optional, Sequence, Tuple, Union

from conference.sip.uri import SIPURI

#: The NAPTR services (RFC 3263 section 4.1) by transport, and the SRV
#: prefixes of each transport.
NAPTR_SERVICES = {"SIP+D2U": "udp", "SIP+D2T": "tcp", "SIPS+D2T": "tls"}
SRV_PREFIXES = {"udp": "_sip._udp.", "tcp": "_sip._tcp.", "tls": "_sips._tcp."}
DEFAULT_PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061}

#: The most CNAMEs one resolution follows (CNAME chains and loops end).
MAX_ALIASES = 8


@dataclass(frozen=True)
class Query:
    """
    A DNS query to make: C{kind} is C{"NAPTR"}, C{"SRV"}, C{"A"} or
    C{"AAAA"}.
    """

    name: str
    kind: str


@dataclass(frozen=True)
class NAPTR:
    """
    A NAPTR record (RFC 3403) as far as SIP uses it.
    """

    order: int
    preference: int
    flags: str
    service: str
    replacement: str


@dataclass(frozen=True)
class SRV:
    """
    An SRV record (RFC 2782).
    """

    priority: int
    weight: int
    port: int
    target: str


@dataclass(frozen=True)
class Address:
    """
    An A or AAAA record's address.
    """

    host: str


@dataclass(frozen=True)
class Alias:
    """
    A CNAME: the name answered for is really C{name}.
    """

    name: str


Record = Union[NAPTR, SRV, Address, Alias]


@dataclass(frozen=True)
class Target:
    """
    Where to send: C{transport} is C{"udp"}, C{"tcp"} or C{"tls"};
    C{tls_name} is the name a TLS server's certificate must show (the
    domain of the URI, RFC 5922 section 4), not the SRV target's.
    """

    transport: str
    host: str
    port: int
    tls_name: str


@dataclass
class _Lookup:
    # One A/AAAA lookup of `name` to produce targets on `port`.
    name: str
    port: int
    transport: str
    kinds: List[str] = field(default_factory=lambda: ["A", "AAAA"])


@dataclass
class _Services:
    # SRV queries to make, in order, with their transports; `fallback`
    # is the A/AAAA lookup when none of them answers.
    names: List[Tuple[str, str]]
    fallback: Optional[_Lookup]
    found: bool = False


class Resolution:
    """
    One RFC 3263 resolution of a URI: call L{next} for what to do, and
    L{answer} with the records of each query it asked for.

    @ivar notes: what was skipped and why (for the log).
    """

    def __init__(
        self,
        uri: SIPURI,
        *,
        transports: Sequence[str] = ("udp", "tcp", "tls"),
        own: FrozenSet[Tuple[str, int]] = frozenset(),
        max_queries: int = 24,
        max_records: int = 16,
        max_targets: int = 16,
        rng: Callable[[], float] = random.random,
    ) -> None:
        """
        @param uri: the URI to reach (a Request-URI or a Route).
        @param transports: those we can use, in our order of preference
            where the DNS gives none.
        @param own: our own (address, port)s: targets there are skipped.
        @param rng: the weighted SRV choice's source, in [0, 1).
        """
        self.notes: List[str] = []
        self._own = own
        self._max_queries = max_queries
        self._max_records = max_records
        self._max_targets = max_targets
        self._rng = rng
        self._queries = 0
        self._answers: Dict[Query, List[Record]] = {}
        self._aliases = 0
        self._current: Optional[Query] = None
        self._given = 0
        self._ready: Deque[Target] = deque()
        self._work: List[Union[_Lookup, _Services, Query]] = []
        self._start(uri, [t.lower() for t in transports])

    # Planning -----------------------------------------------------------

    def _start(self, uri: SIPURI, supported: List[str]) -> None:
        secure = uri.scheme == "sips"
        self._tls_name = uri.host.strip("[]").lower()
        wanted = (uri.transport or "").lower() or None
        if secure and wanted not in (None, "tcp", "tls"):
            self.notes.append(f"sips: over {wanted} is not allowed")
            return
        if secure:
            wanted = "tls"
        if wanted is not None and wanted not in supported:
            self.notes.append(f"transport {wanted} is not supported")
            return
        self._allowed = [wanted] if wanted else (["tls"] if secure else supported)
        host = (uri.params.get("maddr") or uri.host).strip("[]")
        numeric = _is_ip(host)
        if numeric or uri.port is not None:
            # Section 4.1/4.2: a numeric host or an explicit port skips
            # NAPTR and SRV; the transport is the URI's or the default.
            transport = wanted or ("tls" if secure else "udp")
            port = uri.port or DEFAULT_PORTS[transport]
            if numeric:
                self._add(Target(transport, host, port, self._tls_name))
            else:
                self._work.append(_Lookup(host, port, transport))
            return
        fallback_transport = wanted or ("tls" if secure else self._allowed[0])
        fallback = _Lookup(host, DEFAULT_PORTS[fallback_transport], fallback_transport)
        if wanted is not None:
            self._work.append(_Services([(SRV_PREFIXES[wanted] + host, wanted)], fallback))
            return
        self._fallback = fallback
        self._host = host
        self._work.append(Query(host, "NAPTR"))

    def next(self) -> Union[Query, Target, None]:
        """
        The next step: a L{Query} to make (then L{answer} it), a L{Target}
        to try, or L{None} when there is nothing left to try.
        """
        while True:
            if self._given >= self._max_targets:
                if self._ready or self._work:
                    self.notes.append(f"more than {self._max_targets} targets: stopped")
                self._ready.clear()
                self._work.clear()
                return None
            if self._ready:
                self._given += 1
                return self._ready.popleft()
            if self._current is not None:
                return self._current
            if not self._work:
                return None
            query = self._plan()
            if query is None:
                continue
            if query in self._answers:
                # Asked before (two SRV records naming one host): no new query.
                self._current = query
                self.answer(self._answers[query])
                continue
            if self._queries >= self._max_queries:
                self.notes.append(f"more than {self._max_queries} DNS queries: stopped")
                self._work.clear()
                return None
            self._queries += 1
            self._current = query
            return query

    def _plan(self) -> Optional[Query]:
        item = self._work[0]
        if isinstance(item, Query):
            self._work.pop(0)
            return item
        if isinstance(item, _Lookup):
            if not item.kinds:
                self._work.pop(0)
                return None
            return Query(item.name, item.kinds.pop(0))
        if item.names:
            name, _ = item.names[0]
            return Query(name, "SRV")
        self._work.pop(0)
        if not item.found and item.fallback is not None:
            self._work.insert(0, item.fallback)
        return None

    def answer(self, records: Sequence[Record]) -> None:
        """
        The records answering the last L{Query} (empty when the name or
        the record type does not exist, or the lookup failed).
        """
        query, self._current = self._current, None
        if query is None:
            raise ValueError("no query is pending")
        if len(records) > self._max_records:
            self.notes.append(
                f"{query.kind} {query.name}: {len(records)} records, "
                f"only the first {self._max_records} used"
            )
            records = records[: self._max_records]
        self._answers[query] = list(records)
        aliases = [r for r in records if isinstance(r, Alias)]
        if aliases and self._aliases >= MAX_ALIASES:
            self.notes.append(f"more than {MAX_ALIASES} aliases followed (a loop?): stopped")
            aliases = []
        elif aliases:
            self._aliases += 1
        if query.kind == "NAPTR":
            self._naptr(query, [r for r in records if isinstance(r, NAPTR)], aliases)
        elif query.kind == "SRV":
            self._srv(query, [r for r in records if isinstance(r, SRV)], aliases)
        else:
            self._addresses(query, [r for r in records if isinstance(r, Address)], aliases)

    def _naptr(self, query: Query, records: List[NAPTR], aliases: List[Alias]) -> None:
        if not records and aliases:
            self._work.insert(0, Query(aliases[0].name, "NAPTR"))
            return
        usable = [
            r
            for r in sorted(records, key=lambda r: (r.order, r.preference))
            if r.flags.lower() == "s"
            and NAPTR_SERVICES.get(r.service.upper()) in self._allowed
            and r.replacement not in ("", ".")
        ]
        if usable:
            names = [(r.replacement.rstrip("."), NAPTR_SERVICES[r.service.upper()]) for r in usable]
            self._work.insert(0, _Services(names, None))
            return
        # Section 4.1: no (usable) NAPTR: SRV for each transport we allow.
        names = [(SRV_PREFIXES[t] + self._host, t) for t in self._allowed]
        self._work.insert(0, _Services(names, self._fallback))

    def _srv(self, query: Query, records: List[SRV], aliases: List[Alias]) -> None:
        services = self._work[0]
        assert isinstance(services, _Services)
        _, transport = services.names.pop(0)
        if not records and aliases:
            services.names.insert(0, (aliases[0].name, transport))
            return
        if len(records) == 1 and records[0].target.rstrip(".") == "":
            self.notes.append(f"SRV {query.name}: service not offered")
            services.found = True
            return
        if not records:
            return
        services.found = True
        lookups = [
            _Lookup(r.target.rstrip("."), r.port, transport) for r in order_srv(records, self._rng)
        ]
        self._work[0:0] = lookups

    def _addresses(self, query: Query, records: List[Address], aliases: List[Alias]) -> None:
        lookup = self._work[0]
        assert isinstance(lookup, _Lookup)
        if not records and aliases:
            self._work.insert(
                0, _Lookup(aliases[0].name, lookup.port, lookup.transport, [query.kind])
            )
            return
        for record in records:
            self._add(Target(lookup.transport, record.host, lookup.port, self._tls_name))

    def _add(self, target: Target) -> None:
        if (target.host, target.port) in self._own:
            self.notes.append(f"{target.host}:{target.port} is this server: skipped")
            return
        if target not in self._ready:
            self._ready.append(target)


def order_srv(records: Sequence[SRV], rng: Callable[[], float] = random.random) -> List[SRV]:
    """
    SRV records in the order to try them (RFC 2782): by priority, and
    within one priority by a weighted random draw where records of weight
    0 come first only by chance of C{rng} landing on them.
    """
    out: List[SRV] = []
    for priority in sorted({r.priority for r in records}):
        # RFC 2782: zero weights first, then the others in any order.
        group = sorted((r for r in records if r.priority == priority), key=lambda r: r.weight)
        while group:
            total = sum(r.weight for r in group)
            if total == 0:
                out.extend(group)
                break
            point = rng() * total
            running = 0
            chosen = len(group) - 1
            for index, record in enumerate(group):
                running += record.weight
                if running > point:
                    chosen = index
                    break
            out.append(group.pop(chosen))
    return out


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


__all__ = [
    "DEFAULT_PORTS",
    "NAPTR",
    "SRV",
    "Address",
    "Alias",
    "Query",
    "Record",
    "Resolution",
    "Target",
    "order_srv",
]
