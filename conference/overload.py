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

__all__ = [
    "EXEMPT_METHODS",
    "OVERLOADED_REASON",
    "Overloaded",
    "OverloadControl",
    "ProportionalShedding",
]

#: Methods never shed: they finish work already accepted (ACK, CANCEL,
#: BYE, PRACK) or keep a front end's view of this node honest (OPTIONS).
EXEMPT_METHODS = frozenset({"ACK", "CANCEL", "BYE", "PRACK", "OPTIONS"})
#: How much the admitted share of L{ProportionalShedding} grows, at most,
#: in one interval (2x), and by how much in one where the queue ran dry.
#: More overshoots: at 2x capacity a share of 0.25 that ran the queue dry
#: once quadrupled to 1, and the queue it then admitted was the next
#: interval's backlog.
_MOST_GROWTH = 1.0
#: How fast (seconds of wait per second) a standing queue must fall for
#: an interval to count as draining, not standing: 10% spare capacity.
_DRAINING = 0.1
#: How long (seconds) after the share last fell to 0 the limit on a new
#: request's own wait still holds, and shedding resumes after one standing
#: interval: the share of a server at 2x its capacity can reach 0 for an
#: interval or two when its queue runs dry, and the queue it then admits
#: must not be served late.
_RECENT = 1.0
#: How fast (seconds of wait per second of work) the mean wait must rise
#: through L{_RISING_INTERVALS} intervals in a row, ending above the
#: target, for shedding to start without waiting for C{start}: new
#: requests offered at 1.25x the rate the server reads them or more.  A
#: pause raises the wait once, by its own length, and draining then lowers
#: it; load past capacity raises it interval after interval, and so does a
#: burst while its own requests are read (one with more than about 100 ms
#: of work starts shedding, where 200 ms did before).
_RISING = 0.2
_RISING_INTERVALS = 2
#: The fewest datagrams an interval must have read for its rise to count:
#: the rise is a difference of means, noise over a handful of datagrams
#: (a client keeping 20 slow requests in flight on a server still
#: warming up reads five to fifteen an interval).
_RISING_SAMPLES = 20
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


class ProportionalShedding:
    """
    The second signal, from the queue itself, and what to do about it: how
    long each datagram waited between the kernel receiving it and the
    server reading it (its timestamp, C{SO_TIMESTAMPNS}), and the share of
    new requests to refuse so that the work admitted matches capacity.

    This is RFC 7339's loss-based scheme applied by the server to itself:
    a I{fraction} of new requests is refused (cheaply, before parsing:
    L{conference.sip.quick}), whatever each one's own wait, spread evenly
    (an accumulator, not dice: every M{1/fraction}-th candidate, so the
    admitted share is exact and tests are deterministic).

    Every C{interval} the admitted share M{a = 1 - fraction} is corrected
    from the interval's mean wait M{w} (the previous one M{w'})::

        excess = (w - w') / interval + (w - target) / drain
        a = a * (1 - excess)

    While the server is busy all the time, its queue grows by the excess
    of the work offered over the work it can do: the first term I{is}
    that excess, as a share of capacity, so cutting the admitted share by
    it stops the growth within one interval (a rate-based controller: no
    capacity figure needed, the queue measures it).  The second drains
    what stood above C{target} in about C{drain} seconds, and lets the
    share grow back once the queue is below it; the share settles where
    the queue neither grows nor stands above the target.  A burst raises
    one interval's wait and the next one's fall undoes the cut.  The
    correction is bounded (at most halving or doubling the admitted share
    per interval) and M{a} never goes below M{1 - max_fraction}.

    The per-request rule of CoDel stays beside it for what the share
    cannot fix at once: while shedding, and for a second after the share
    last fell to 0, a new request that itself waited more than C{limit} is
    refused too.  When overload starts, a backlog
    builds before the share has been cut; refusing its aged requests
    (cheaply) drains it fast and keeps what is admitted under the limit,
    instead of admitting them late and cutting the share further to drain.
    The share of a server well past its capacity can reach 0 for an
    interval or two, when refusals ran its queue dry; the queue it admits
    meanwhile is held at the limit too, rather than served late.
    Each correction starts from the share actually refused in the interval,
    aged requests included: while the limit holds the queue, that share is
    what the controller must adopt, and it does so at once.  If the queue
    then falls (by a tenth of an interval or more) or runs dry, the aged
    requests were a backlog that a pause or a slowdown left, not the load:
    the share goes back to the one before them, instead of refusing fresh
    requests while the queue drains and then climbing from the 2% they
    left at 2x per interval with nothing queued.

    Shedding starts only once the queue I{stands}: every datagram for
    C{start} seconds (whole intervals) waited more than C{target} (CoDel's
    rule, RFC 8289: a burst makes a queue that drains, overload one that
    stands).  Two kinds of interval do not count towards that time: one in
    which the queue fell by a tenth of the interval or more (the server
    has spare capacity and is draining it), and the part of one the
    collector took (L{paused}) or the JIT spent compiling (C{compiling}):
    a run of collector steps on PyPy leaves a queue of a few hundred
    milliseconds that drains by itself, and refusing while it does would
    lose calls to a pause, not to load.  A step of load starts it sooner:
    when the mean wait rose by at least a fifth of each interval's working
    time (the pauses taken out) through two intervals in a row, each of
    at least twenty datagrams, and is above C{target}, new requests are
    offered at 1.25x the rate they are read or more, and waiting out
    C{start} would only admit a queue of 100 ms or more, served late.
    When the mean wait of an interval falls below a quarter of the target
    the queue ran dry, capacity went unused, and the admitted
    share doubles; an idle gap between datagrams counts as such
    intervals, so after the load stops nothing is refused within a few
    intervals.

    @ivar fraction: the share of new requests refused now, in
        [0, C{max_fraction}].
    @ivar wait: the mean wait of the last complete interval, seconds.
    @ivar transitions: how many times shedding started (the fraction left 0).
    """

    def __init__(
        self,
        target: float,
        interval: float = 0.05,
        *,
        drain: float = 0.5,
        max_fraction: float = 0.98,
        limit: Optional[float] = None,
        start: float = 0.2,
        compiling: Optional[Callable[[], float]] = None,
    ) -> None:
        """
        @param target: the mean queue wait (seconds) above which the
            admitted share shrinks, and below which it grows back.
        @param interval: seconds between corrections.
        @param drain: seconds to drain a queue standing above C{target}.
        @param max_fraction: the most refused: some new requests are always
            let in, so a server that misjudges itself still serves.
        @param limit: while shedding, a new request that itself waited
            longer than this is refused whatever the share (default 1.5
            times the target).
        @param start: how long (seconds) every datagram must have waited
            more than C{target} before shedding starts (one interval when
            it stopped less than a second before).
        @param compiling: a clock of the seconds the runtime has spent
            compiling (L{conference.runtime.compile_clock}), read at each
            correction: that time counts as a pause (L{paused}).
        @raise ValueError: unless target, interval and drain are positive
            and max_fraction is in (0, 1).
        """
        if min(target, interval, drain) <= 0:
            raise ValueError("the queue target, interval and drain time must be positive")
        if not 0 < max_fraction < 1:
            raise ValueError("max_fraction must be in (0, 1)")
        self.target = target
        self.interval = interval
        self.drain = drain
        self.max_fraction = max_fraction
        self.limit = 1.5 * target if limit is None else limit
        self.start = start
        self._compiling = compiling
        self._compiled = compiling() if compiling is not None else 0.0
        self._stood = 0.0
        self._rising = 0
        self._paused = 0.0
        self._calm = float("inf")
        self.fraction = 0.0
        self.wait = 0.0
        self.transitions = 0
        self._started: Optional[float] = None
        self._total = 0.0
        self._count = 0
        self._least = 0.0
        self._credit = 0.0
        self._candidates = 0
        self._refused = 0
        self._aged = 0
        self._unaged: Optional[float] = None

    @property
    def standing(self) -> bool:
        """Whether new requests are being refused (the fraction is above 0)."""
        return self.fraction > 0

    def observe(self, waited: float, now: float) -> bool:
        """
        Take the wait of one datagram read at C{now}; correct the fraction
        when an interval has passed.

        @return: whether new requests are being refused now (when not, the
            caller need not look at the datagram before parsing it).
        """
        started = self._started
        if started is None:
            self._started = now
        elif now - started >= self.interval:
            self._correct(now - started)
            self._started = now
        self._total += waited
        self._least = waited if self._count == 0 else min(self._least, waited)
        self._count += 1
        return self.fraction > 0 or (waited > self.limit and self._calm <= _RECENT)

    def paused(self, seconds: float) -> None:
        """
        Take note that the server did nothing else for C{seconds} (a step of
        the garbage collector, L{conference.runtime.watch_collector}): the
        queue such a pause leaves is a burst, whose own time does not count
        towards the queue standing.
        """
        self._paused += max(0.0, seconds)

    def _correct(self, elapsed: float) -> None:
        """
        The controller's step at the end of an interval that lasted
        C{elapsed} seconds (longer when no datagram came for a while: then
        the queue was empty for the intervals after the first).
        """
        if self._compiling is not None:
            compiled = self._compiling()
            self.paused(compiled - self._compiled)
            self._compiled = compiled
        count, paused = self._count, self._paused
        wait = self._total / count if count else 0.0
        standing = count > 0 and self._least > self.target
        # A queue that falls by a tenth of the interval or more is being
        # drained by spare capacity: what a pause left, not overload.
        draining = wait <= self.wait - _DRAINING * self.interval
        running = max(0.0, elapsed - paused)
        self._paused = 0.0
        self._total, self._count = 0.0, 0
        before = self.fraction
        # The share actually refused, aged requests included: while the
        # limit holds the queue, that is what the share must become.
        if self._candidates:
            refused = self._refused / self._candidates
        else:
            refused = before
        aged = self._aged
        self._candidates = self._refused = self._aged = 0
        if before == 0:
            self._calm += elapsed
            if not standing:
                self._stood = 0.0
            elif not draining:
                self._stood += running  # a pause's own time is not the queue standing
            # The wait's rise per second of work, less what the pauses (the
            # collector's, the JIT's) added to it: a pause raises every
            # wait by its own length.  Over a handful of datagrams it is
            # noise, and does not count.
            rising = (
                count >= _RISING_SAMPLES
                and running > 0
                and (wait - self.wait - paused) / running >= _RISING
            )
            self._rising = self._rising + 1 if rising else 0
            # Shedding that stopped within the last second resumes at once.
            if self._stood < (
                self.start if self._calm > _RECENT + self._stood else self.interval
            ) and (self._rising < _RISING_INTERVALS or wait <= self.target):
                self.wait = wait  # a burst, or no queue: nothing to correct
                return
            self._stood = 0.0
            self._rising = 0
        self._calm = 0.0
        # Never below the least share admitted: growth multiplies it, and an
        # interval whose few new requests were all refused would otherwise
        # leave nothing to grow from, however idle the server then is.
        share = max(before, refused)
        if draining or wait < self.target / 4:
            # The queue falls or ran dry: aged refusals are clearing a
            # backlog that a pause or a slowdown left, not matching the
            # load, and those that raised the share earlier were too.  Back
            # to the share from before them, rather than refusing fresh
            # requests while it drains and then doubling up from 2% for six
            # intervals with the queue empty (a traced episode refused 400
            # calls so).
            if aged:
                share = before
            if self._unaged is not None:
                share, self._unaged = min(share, self._unaged), None
        elif aged and refused > before:
            # The limit holds the queue: its share is the one to adopt.
            if self._unaged is None:
                self._unaged = before
        else:
            self._unaged = None  # the queue holds without them: the share matches
        admitted = 1.0 - min(self.max_fraction, share)
        for _ in range(min(8, max(1, int(elapsed / self.interval)))):
            excess = (wait - self.wait) / self.interval + (wait - self.target) / self.drain
            if wait < self.target / 4:
                excess = -_MOST_GROWTH  # the queue ran dry: capacity went unused
            else:
                excess = max(-_MOST_GROWTH, excess)
            admitted *= 1.0 - min(0.5, excess)
            self.wait, wait = wait, 0.0
        self.fraction = min(self.max_fraction, max(0.0, 1.0 - admitted))
        if self.fraction == 0:
            self._unaged = None
        if before == 0 and self.fraction > 0:
            self.transitions += 1

    def refuse_next(self, waited: float = 0.0) -> bool:
        """
        Whether to refuse the new request at hand, which waited C{waited}
        seconds (call it for new requests only, so the fraction is of
        those): every M{1/fraction}-th one, and, while shedding or within
        L{_RECENT} seconds of it, any that waited past C{limit}.
        """
        fraction = self.fraction
        if fraction <= 0:
            self._credit = 0.0
            # The share fell to 0 a moment ago: the overload may not be
            # over, and a request that already waited past the limit would
            # only be answered late (out of the share's count, which is of
            # the intervals that shed).
            return waited > self.limit and self._calm <= _RECENT
        self._candidates += 1
        if waited > self.limit:
            self._refused += 1
            self._aged += 1
            return True
        self._credit += fraction
        if self._credit >= 1.0:
            self._credit -= 1.0
            self._refused += 1
            return True
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
