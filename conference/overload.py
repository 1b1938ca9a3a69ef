# -*- test-case-name: tests.unit.test_overload -*-
"""
Overload control: past its capacity the server sheds new work instead of
collapsing (docs/limits.rst, "Overload").

The signal is the event loop's lag: how late a short timer fires.  One
reactor thread does all the work, so requests waiting to be handled make
every timer late by the time they take; lag grows with the queue, whatever
the requests cost (digest, stores, XML), and needs no guess of capacity.
While the smoothed lag is above a threshold, new out-of-dialog requests
are answered 503 with a jittered Retry-After as soon as the transaction
layer sees them: after the message is framed, before a transaction,
digest, the stores or any body is touched.  What finishes work already
accepted passes (ACK, CANCEL, BYE, PRACK and every in-dialog request),
and so do OPTIONS: a front end such as Kamailio's dispatcher probes nodes
with OPTIONS, and a node that answered them 503 would be taken out of
rotation and its load moved onto the others, a cascade.  Retransmissions
of requests already in a transaction are matched first and absorbed by it.

Hysteresis keeps it from flapping: shedding starts when the smoothed lag
exceeds C{threshold} and stops only when it falls below C{threshold *
clear_ratio}.

Sans-I/O: the adapter (L{conference.transport.lag}) measures the lag with
the reactor and feeds L{OverloadControl.observe}; the transaction layer
asks L{OverloadControl.shed} per new request.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Callable, Optional, Tuple

from conference.sip.errors import RemoteProtocolError
from conference.sip.message import Request

__all__ = ["EXEMPT_METHODS", "OVERLOADED_REASON", "Overloaded", "OverloadControl", "StandingQueue"]

#: Methods never shed: they finish work already accepted (ACK, CANCEL,
#: BYE, PRACK) or keep a front end's view of this node honest (OPTIONS).
EXEMPT_METHODS = frozenset({"ACK", "CANCEL", "BYE", "PRACK", "OPTIONS"})
#: The reason phrase of every overload refusal, parsed or not.
OVERLOADED_REASON = "Service Unavailable (overloaded)"


class Overloaded(RemoteProtocolError):
    """
    A new request arrived while the server sheds load: answer it 503 with
    this Retry-After, statelessly.
    """

    def __init__(self, retry_after: int) -> None:
        super().__init__(OVERLOADED_REASON, 503, [("Retry-After", str(retry_after))])
        self.retry_after = retry_after


class StandingQueue:
    """
    The second signal, from the queue itself: how long each datagram waited
    between the kernel receiving it and the server reading it (its
    timestamp, C{SO_TIMESTAMPNS}).  The rule is CoDel's (RFC 8289): a burst
    makes a queue that drains, overload a queue that stands.  The queue
    stands once every datagram for C{interval} seconds waited more than
    C{target}; from then on, new requests that waited more than C{target}
    are refused (cheaply, before parsing: L{conference.sip.quick}) and the
    rest are served, so what is admitted has waited less than C{target};
    it stops standing after C{interval} without a datagram over C{target}.

    @ivar standing: whether aged requests are being refused.
    @ivar transitions: how many times the queue started standing.
    """

    def __init__(self, target: float, interval: float = 0.2) -> None:
        """
        @raise ValueError: unless both are positive.
        """
        if target <= 0 or interval <= 0:
            raise ValueError("the queue target and interval must be positive")
        self.target = target
        self.interval = interval
        self.standing = False
        self.transitions = 0
        self._above_since: Optional[float] = None
        self._below_since: Optional[float] = None

    def observe(self, waited: float, now: float) -> bool:
        """
        Take the wait of one datagram read at C{now}.

        @return: whether a new request that waited this long is refused.
        """
        if waited > self.target:
            self._below_since = None
            if self._above_since is None:
                self._above_since = now
            elif not self.standing and now - self._above_since >= self.interval:
                self.standing = True
                self.transitions += 1
            return self.standing
        self._above_since = None
        if self.standing:
            if self._below_since is None:
                self._below_since = now
            elif now - self._below_since >= self.interval:
                self.standing = False
                self._below_since = None
        return False


class OverloadControl:
    """
    The shedding decision from the measured event-loop lag.

    @ivar lag: the smoothed lag, in seconds.
    @ivar overloaded: whether new requests are being shed.
    @ivar sheds: requests shed, by method.
    @ivar transitions: how many times shedding started.
    """

    def __init__(
        self,
        threshold: float,
        *,
        clear_ratio: float = 0.5,
        smoothing: float = 0.3,
        retry_after: Tuple[int, int] = (2, 10),
        max_sample: float = 5.0,
        rng: Callable[[], float] = random.random,
    ) -> None:
        """
        @param threshold: the smoothed lag (seconds) past which new
            requests are shed.
        @param clear_ratio: shedding stops below C{threshold * clear_ratio}.
        @param smoothing: the weight of each new sample (exponential
            moving average), so one slow callback does not trigger it.
        @param retry_after: the range Retry-After values are drawn from,
            so refused clients do not come back together.
        @param max_sample: a sample later than this is a jump of the clock
            or a suspended process, not a queue, and is left out.
        @raise ValueError: for a threshold that is not positive, a ratio or
            weight outside (0, 1], or an empty range.
        """
        if threshold <= 0:
            raise ValueError("the overload threshold must be positive")
        if not 0 < clear_ratio <= 1 or not 0 < smoothing <= 1:
            raise ValueError("clear_ratio and smoothing must be in (0, 1]")
        low, high = retry_after
        if not 0 < low <= high:
            raise ValueError("retry_after must be a range of positive seconds")
        self.threshold = threshold
        self.clear_below = threshold * clear_ratio
        self.smoothing = smoothing
        self.retry_after = retry_after
        self.max_sample = max_sample
        self._rng = rng
        self.lag = 0.0
        self.overloaded = False
        self.since: Optional[float] = None
        self.sheds: Counter[str] = Counter()
        self.transitions = 0

    def observe(self, lag: float, now: float) -> Optional[bool]:
        """
        Take one lag sample (seconds a timer fired late) at C{now}.

        @return: C{True} when shedding starts with it, C{False} when it
            stops, L{None} when nothing changed (so the adapter logs each
            transition once, not each sample).
        """
        if lag > self.max_sample:
            return None
        self.lag += self.smoothing * (max(0.0, lag) - self.lag)
        if not self.overloaded and self.lag > self.threshold:
            self.overloaded, self.since = True, now
            self.transitions += 1
            return True
        if self.overloaded and self.lag < self.clear_below:
            self.overloaded, self.since = False, None
            return False
        return None

    def shed(self, request: Request) -> Optional[int]:
        """
        The Retry-After to refuse the new request C{request} with, or
        L{None} to let it in: always while not overloaded, and for
        L{EXEMPT_METHODS} and requests within a dialog (a To tag).
        """
        if not self.overloaded or request.method in EXEMPT_METHODS:
            return None
        if request.to.tag:
            return None
        return self.refuse(request.method)

    def refuse(self, method: str) -> int:
        """Count a refusal of a new C{method} request; the Retry-After to give."""
        self.sheds[method] += 1
        low, high = self.retry_after
        return low + int(self._rng() * (high - low + 1)) if high > low else low

    def check(self, request: Request) -> None:
        """
        L{shed} for the transaction layer.

        @raise Overloaded: when C{request} is to be refused.
        """
        retry = self.shed(request)
        if retry is not None:
            raise Overloaded(retry)
