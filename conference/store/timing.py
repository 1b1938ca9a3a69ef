# -*- test-case-name: tests.unit.store.test_timing -*-
"""
Store latency measured at the store boundary: a proxy around each store
the service opens times every call by the injected reactor's clock, and
a plain-Python histogram keeps the counts for C{/metrics}.

Timing at the boundary keeps the stores and their callers as they are;
the cost per call is two clock reads and a bucket increment.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any, Callable, Dict, List, Tuple

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from zope.interface import directlyProvides, providedBy

from conference.deferreds import PENDING, fired_result

#: Upper bounds (seconds) of the store latency histogram's buckets.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)

#: The attributes of L{conference.store.stores.Stores} that are stores.
STORE_NAMES = ("conferences", "calendars", "registrations", "bindings")


class _Operation:
    """
    The histogram of one C{(store, operation)}: what L{TimedStore} updates
    per call, found once per operation rather than per call.
    """

    __slots__ = ("counts", "failures", "seconds")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.seconds = 0.0
        self.failures = 0

    def observe(self, seconds: float, failed: bool = False) -> None:
        """
        Count one call that took C{seconds}.
        """
        self.counts[bisect_left(BUCKETS, seconds)] += 1
        self.seconds += seconds
        if failed:
            self.failures += 1


class StoreLatency:
    """
    Call durations by store and operation, bucketed as a Prometheus
    histogram (non-cumulative counts; the exporter accumulates).
    """

    def __init__(self) -> None:
        self._operations: Dict[Tuple[str, str], _Operation] = {}

    def operation(self, store: str, operation: str) -> _Operation:
        """
        The histogram of C{operation} on C{store}, made on first use.
        """
        key = (store, operation)
        found = self._operations.get(key)
        if found is None:
            found = self._operations[key] = _Operation()
        return found

    def observe(self, store: str, operation: str, seconds: float, failed: bool = False) -> None:
        """
        Count one call of C{operation} on C{store} that took C{seconds}.
        """
        self.operation(store, operation).observe(seconds, failed)

    @property
    def counts(self) -> Dict[Tuple[str, str], List[int]]:
        """
        Per C{(store, operation)}, a count per bucket of L{BUCKETS} plus
        one for the overflow.
        """
        return {key: list(op.counts) for key, op in self._operations.items()}

    @property
    def sums(self) -> Dict[Tuple[str, str], float]:
        """
        Per C{(store, operation)}, the total seconds.
        """
        return {key: op.seconds for key, op in self._operations.items()}

    @property
    def failures(self) -> Dict[Tuple[str, str], int]:
        """
        Per C{(store, operation)}, the calls that failed.
        """
        return {key: op.failures for key, op in self._operations.items()}


class TimedStore:
    """
    Forwards every attribute to a store; its methods are timed.  The
    proxy provides what the store provides, so interface checks hold.
    """

    def __init__(
        self, target: Any, name: str, latency: StoreLatency, seconds: Callable[[], float]
    ) -> None:
        self._target = target
        self._name = name
        self._latency = latency
        self._seconds = seconds
        directlyProvides(self, *providedBy(target))

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):
            # zope.interface's own attributes are the proxy's, not the store's.
            raise AttributeError(attribute)
        value = getattr(self._target, attribute)
        if attribute.startswith("_") or not callable(value):
            return value
        timed = self._timed(attribute, value)
        # Remembered: the request path calls the same few operations
        # thousands of times a second, and a method of the store is the
        # same method on every access.
        self.__dict__[attribute] = timed
        return timed

    def _timed(self, operation: str, method: Callable[..., Any]) -> Callable[..., Any]:
        seconds = self._seconds
        observe = self._latency.operation(self._name, operation).observe

        def call(*args: Any, **kwargs: Any) -> Any:
            started = seconds()
            try:
                result = method(*args, **kwargs)
            except BaseException:
                observe(seconds() - started, True)
                raise
            if not isinstance(result, Deferred) or fired_result(result) is not PENDING:
                # Answered at once (the memory store's Deferreds): no
                # callback to chain, the caller reads the value directly.
                observe(seconds() - started)
                return result

            def done(value: Any) -> Any:
                observe(seconds() - started, isinstance(value, Failure))
                return value

            return result.addBoth(done)

        return call


def time_stores(stores: Any, latency: StoreLatency, reactor: IReactorTime) -> Any:
    """
    Replace each store of C{stores} (a L{conference.store.stores.Stores})
    by a L{TimedStore} reporting to C{latency}; already timed stores are
    left alone.  Returns C{stores}.
    """
    for name in STORE_NAMES:
        store = getattr(stores, name)
        if not isinstance(store, TimedStore):
            setattr(stores, name, TimedStore(store, name, latency, reactor.seconds))
    return stores
