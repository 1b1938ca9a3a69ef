# -*- test-case-name: tests.unit.test_limits -*-
"""
Abuse limits (RFC 5546 section 6.1.3, the BIND draft's section 11): token
buckets per source address and per authenticated identity, and caps on body
sizes per content type.

Kept sans-I/O (C{now} is passed in) and O(1) per request, with bounded
memory, because the server consults it for every request it receives,
floods included; a flood must cost no more than its one bucket.
"""

from __future__ import annotations

import ipaddress
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, Iterable, List, Mapping, Optional, Tuple, Union

from conference.sip.errors import RemoteProtocolError

__all__ = [
    "DEFAULT_BODY_LIMITS",
    "DEFAULT_EXEMPT",
    "BodyLimits",
    "BodyTooLarge",
    "BucketTable",
    "LimitError",
    "Rate",
    "RateLimiter",
    "address_key",
    "parse_body_limit",
]

#: Sources never rate limited by default: the host itself (benchmarks,
#: a local edge proxy that aggregates many clients).
DEFAULT_EXEMPT = ("127.0.0.0/8", "::1/128")

#: Body caps (bytes) by media type when none are configured.  Everything
#: else is bounded by the largest message accepted (C{--max-message-size}).
DEFAULT_BODY_LIMITS: Mapping[str, int] = {"application/sdp": 16384}

#: Requests never charged: ACK is never answered and must reach the dialog
#: it confirms; CANCEL only ends a transaction the caller already paid for.
UNCHARGED_METHODS = frozenset(["ACK", "CANCEL"])

_Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


class LimitError(ValueError):
    """
    A limit written wrongly (an option value); the message says how.
    """


@dataclass(frozen=True)
class Rate:
    """
    A token bucket's shape: C{count} requests per C{period} seconds, and at
    most C{burst} at once (default: C{count}).
    """

    count: float
    period: float = 1.0
    burst: Optional[float] = None

    def __post_init__(self) -> None:
        if not (self.count > 0 and self.period > 0):
            raise LimitError(f"a rate needs a positive count and period, got {self}")
        if self.burst is not None and self.burst < 1:
            raise LimitError(f"a burst must be at least 1, got {self.burst}")

    @property
    def per_second(self) -> float:
        """
        The steady rate in tokens per second.
        """
        return self.count / self.period

    @property
    def capacity(self) -> float:
        """
        The bucket size: C{burst}, else C{count} (at least one request).
        """
        return max(1.0, self.burst if self.burst is not None else self.count)

    def with_burst(self, burst: Optional[float]) -> Rate:
        """
        This rate with another burst (L{None}: keep this one's).
        """
        return self if burst is None else Rate(self.count, self.period, burst)

    @classmethod
    def parse(cls, text: str) -> Rate:
        """
        Read C{N/S} (N requests per S seconds) or C{N} (per second).

        @raise LimitError: naming what is wrong.
        """
        count, sep, period = text.strip().partition("/")
        try:
            rate = cls(float(count), float(period) if sep else 1.0)
        except ValueError:
            raise LimitError(f"not a rate (N/SECONDS): {text!r}") from None
        if not (math.isfinite(rate.count) and math.isfinite(rate.period)):
            raise LimitError(f"not a rate (N/SECONDS): {text!r}")
        return rate

    def __str__(self) -> str:
        text = f"{self.count:g}/{self.period:g}"
        return text if self.burst is None else f"{text} (burst {self.burst:g})"


class _Bucket:
    """
    One bucket: its tokens at C{stamp}, and when a refusal was last logged.
    """

    __slots__ = ("noted", "stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp
        self.noted = -math.inf


class BucketTable:
    """
    Token buckets by key, least recently used first, at most C{max_entries}.

    A bucket idle long enough to have refilled is the same as no bucket,
    so such buckets are dropped as new keys arrive; when the table is full
    anyway, the least recently used one goes.  Both are O(1).
    """

    def __init__(self, rate: Rate, max_entries: int = 65536) -> None:
        if max_entries < 1:
            raise LimitError("a bucket table needs room for at least one bucket")
        self.rate = rate
        self.max_entries = max_entries
        self._capacity = rate.capacity
        self._per_second = rate.per_second
        self._full_after = self._capacity / self._per_second
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str, now: float) -> float:
        """
        Spend one token of C{key}'s bucket.

        @return: 0.0 if there was one; else the seconds until there will be
            (nothing is spent then).
        """
        bucket = self._buckets.get(key)
        if bucket is None:
            self._make_room(now)
            bucket = self._buckets[key] = _Bucket(self._capacity, now)
        else:
            self._buckets.move_to_end(key)
            elapsed = now - bucket.stamp
            if elapsed > 0:
                bucket.tokens = min(self._capacity, bucket.tokens + elapsed * self._per_second)
                bucket.stamp = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self._per_second

    def note(self, key: str, now: float, interval: float) -> bool:
        """
        Whether a refusal of C{key} should be logged now: at most once per
        C{interval} seconds per bucket (the time is kept in the bucket, so
        this stores nothing of its own).
        """
        bucket = self._buckets.get(key)
        if bucket is None or now - bucket.noted < interval:
            return False
        bucket.noted = now
        return True

    def _make_room(self, now: float) -> None:
        buckets = self._buckets
        # The oldest few, if refilled, are dropped; bounded work per call.
        for _ in range(2):
            if not buckets:
                return
            oldest = next(iter(buckets.values()))
            if now - oldest.stamp < self._full_after:
                break
            buckets.popitem(last=False)
        while len(buckets) >= self.max_entries:
            buckets.popitem(last=False)


class RateLimiter:
    """
    Per-source and per-identity token buckets.

    Sources are keyed by IP address; IPv6 addresses by their /64, which is
    what one subscriber usually holds.  Sources in C{exempt} networks are
    never limited.

    @ivar sources: the per-source table, or L{None} when not limited.
    @ivar identities: the per-identity table, or L{None} when not limited.
    @ivar log_interval: the least seconds between two log lines about the
        same refused source or identity.
    """

    def __init__(
        self,
        source_rate: Optional[Rate] = None,
        identity_rate: Optional[Rate] = None,
        *,
        exempt: Iterable[str] = DEFAULT_EXEMPT,
        max_entries: int = 65536,
        log_interval: float = 60.0,
    ) -> None:
        """
        @raise LimitError: if an C{exempt} entry is not a network.
        """
        self.sources = BucketTable(source_rate, max_entries) if source_rate is not None else None
        self.identities = (
            BucketTable(identity_rate, max_entries) if identity_rate is not None else None
        )
        self.exempt: Tuple[_Network, ...] = tuple(_network(n) for n in exempt)
        self.log_interval = log_interval
        self._max_keys = max_entries
        self._keys: Dict[str, str] = {}

    @property
    def active(self) -> bool:
        """
        Whether any limit is configured.
        """
        return self.sources is not None or self.identities is not None

    def source_key(self, host: str) -> str:
        """
        The bucket C{host} is charged to: C{""} when it is exempt, its /64
        for IPv6, else the address itself.  Cached (and bounded).
        """
        key = self._keys.get(host)
        if key is None:
            key = self._classify(host)
            if len(self._keys) >= self._max_keys:
                self._keys.clear()
            self._keys[host] = key
        return key

    def _classify(self, host: str) -> str:
        address = _address(host)
        if address is None:
            return host  # not an IP (a UNIX socket): its own bucket
        if any(address in network for network in self.exempt):
            return ""
        return _group(address)

    def check_source(self, source: str, method: str, now: float) -> Optional[int]:
        """
        Charge one request of C{method} from the address C{source}.

        @return: L{None} if allowed, else the Retry-After (whole seconds, at
            least 1) to answer with.
        """
        table = self.sources
        if table is None or method in UNCHARGED_METHODS:
            return None
        key = self.source_key(source)
        if not key:
            return None
        wait = table.take(key, now)
        return None if wait == 0.0 else max(1, math.ceil(wait))

    def check_identity(self, identity: str, method: str, now: float) -> Optional[int]:
        """
        Charge one request of C{method} by the authenticated C{identity}
        (its address of record).

        @return: as L{check_source}.
        """
        table = self.identities
        if table is None or method in UNCHARGED_METHODS:
            return None
        wait = table.take(identity, now)
        return None if wait == 0.0 else max(1, math.ceil(wait))

    def check(self, source: str, identity: Optional[str], method: str, now: float) -> Optional[int]:
        """
        L{check_source}, then L{check_identity} when there is an identity
        and the source was allowed.

        @return: L{None} if allowed, else the Retry-After in seconds.
        """
        retry = self.check_source(source, method, now)
        if retry is None and identity is not None:
            retry = self.check_identity(identity, method, now)
        return retry

    def should_log_source(self, source: str, now: float) -> bool:
        """
        Whether to log a refusal of C{source} now (once per
        C{log_interval} per bucket).
        """
        if self.sources is None:
            return False
        return self.sources.note(self.source_key(source), now, self.log_interval)

    def should_log_identity(self, identity: str, now: float) -> bool:
        """
        Whether to log a refusal of C{identity} now.
        """
        if self.identities is None:
            return False
        return self.identities.note(identity, now, self.log_interval)


def _address(host: str) -> Optional[Union[ipaddress.IPv4Address, ipaddress.IPv6Address]]:
    """
    The IP address C{host} names (an IPv4-mapped IPv6 address as IPv4),
    or L{None} when it is not one.
    """
    try:
        address = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _group(address: Union[ipaddress.IPv4Address, ipaddress.IPv6Address]) -> str:
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def address_key(host: str) -> str:
    """
    What one source is counted as, exemptions aside: the IPv4 address, the
    /64 of an IPv6 address (what one subscriber usually holds), or C{host}
    itself when it is not an IP address.  The per-source caps that exempt
    no one (connections) count by this.
    """
    address = _address(host)
    return host if address is None else _group(address)


def _network(text: str) -> _Network:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise LimitError(f"not an address or network: {text!r}") from None


class BodyTooLarge(RemoteProtocolError):
    """
    A request body over the cap for its content type: answered 413.
    """

    def __init__(self, mime: str, size: int, limit: int) -> None:
        super().__init__(
            f"Request Entity Too Large ({mime} body of {size} bytes; at most {limit})", 413
        )
        self.mime = mime
        self.size = size
        self.limit = limit


class BodyLimits:
    """
    Caps on body sizes by media type.

    A type is looked up exactly (C{application/sdp}), then by its major
    type (C{multipart/*}), then C{*}; a type with no cap is bounded only by
    the message size limit.  A C{multipart/*} cap bounds the whole body,
    parts included.
    """

    def __init__(self, limits: Mapping[str, int] = DEFAULT_BODY_LIMITS) -> None:
        """
        @raise LimitError: for a negative cap.
        """
        bad = [f"{mime}={size}" for mime, size in limits.items() if size < 0]
        if bad:
            raise LimitError(f"body caps must not be negative: {', '.join(bad)}")
        self.limits: Dict[str, int] = {mime.lower(): size for mime, size in limits.items()}
        self._smallest = min(self.limits.values(), default=None)

    def limit_for(self, mime: str) -> Optional[int]:
        """
        The cap for the (lower-case) media type C{mime}, or L{None}.
        """
        limits = self.limits
        found = limits.get(mime)
        if found is None:
            found = limits.get(mime.partition("/")[0] + "/*")
            if found is None:
                found = limits.get("*")
        return found

    def check(self, mime: Optional[str], size: int) -> None:
        """
        Refuse a body of C{size} bytes of type C{mime} (L{None}: no
        Content-Type, capped as C{*}) over its cap.

        @raise BodyTooLarge: (413) naming the type, size and cap.
        """
        if self._smallest is None or size <= self._smallest:
            return  # the common case: under every cap, no lookup
        name = mime.lower() if mime else "*"
        limit = self.limit_for(name)
        if limit is not None and size > limit:
            raise BodyTooLarge(name if mime else "(untyped)", size, limit)

    def describe(self) -> List[str]:
        """
        The caps as C{TYPE=BYTES}, sorted (for logs and docs).
        """
        return [f"{mime}={size}" for mime, size in sorted(self.limits.items())]


def parse_body_limit(text: str) -> Tuple[str, int]:
    """
    Read one C{TYPE=BYTES} cap (C{application/sdp=16384},
    C{multipart/*=65536}, C{*=32768}).

    @raise LimitError: naming what is wrong.
    """
    mime, sep, size = text.strip().rpartition("=")
    mime = mime.strip().lower()
    if not sep or not mime:
        raise LimitError(f"not TYPE=BYTES: {text!r}")
    if mime != "*":
        major, slash, minor = mime.partition("/")
        if not (major and slash and minor) or any(c in mime for c in " ;,="):
            raise LimitError(f"not a media type: {mime!r}")
    try:
        value = int(size)
    except ValueError:
        raise LimitError(f"not a number of bytes: {size!r}") from None
    if value < 0:
        raise LimitError(f"a body cap must not be negative: {text!r}")
    return mime, value
