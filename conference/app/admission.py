# -*- test-case-name: tests.unit.app.test_admission -*-
"""
Who may hold media ports, and for how long.

Every participant holds an RTP/RTCP port pair for the whole call, so
anonymous callers who join and never send media could otherwise take every
pair, the organizer's share included.  L{MediaAdmission} counts the
sessions the focus holds, caps them per source address and per caller,
keeps a share of the capacity for authenticated attendees, and finds the
sessions whose media went quiet so the focus can end them.

It is plain data driven by C{now}, like the roster: the focus asks it
before opening a session, tells it when one opens and closes, and arms a
timer at L{MediaAdmission.next_check}.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Callable, Hashable, List, Optional, Set

from conference.sip.errors import RemoteProtocolError

__all__ = ["DEFAULT_RETRY_AFTER", "MediaAdmission", "MediaRefused", "MediaTicket"]

#: Retry-After (seconds) of a refusal when no inactivity timeout will free
#: a session sooner.
DEFAULT_RETRY_AFTER = 60


class MediaRefused(RemoteProtocolError):
    """
    A join refused for lack of media capacity: 503 with Retry-After.

    @ivar for_attendees: whether the capacity left is kept for (or the cap
        hit does not apply to) authenticated attendees, so authenticating
        could change the answer.
    """

    def __init__(self, reason: str, retry_after: int, *, for_attendees: bool) -> None:
        super().__init__(reason, 503, [("Retry-After", str(retry_after))])
        self.for_attendees = for_attendees


class MediaTicket:
    """
    One admitted session: what it is counted against.

    @ivar source: the per-source key (C{""}: not capped per source).
    @ivar caller: who joins: the address of record, or (marked as such)
        the From address of an anonymous caller.
    @ivar attendee: whether it may use the reserved share.
    @ivar session: the L{conference.interfaces.IMediaSession} once open.
    @ivar owner: what the focus files the call under (its dialog key).
    """

    __slots__ = ("attendee", "caller", "owner", "released", "session", "source")

    def __init__(self, source: str, caller: str, attendee: bool) -> None:
        self.source = source
        self.caller = caller
        self.attendee = attendee
        self.session: Any = None
        self.owner: Hashable = None
        self.released = False


class MediaAdmission:
    """
    Caps on the media sessions the focus holds.

    @ivar capacity: how many sessions the media service can hold at once.
    @ivar reserved: how many of them only authenticated attendees may use.
    @ivar per_source: the most sessions of callers from one source who
        are not authenticated attendees (L{None}: no cap); sources whose
        key is C{""} (exempt networks) are not capped.
    @ivar per_caller: the most sessions of one caller (L{None}: no cap).
    @ivar timeout: seconds without media after which a session is idle
        (L{None}: never).
    """

    def __init__(
        self,
        capacity: int,
        *,
        reserve: float = 0.2,
        per_source: Optional[int] = 32,
        per_caller: Optional[int] = 4,
        timeout: Optional[float] = 60.0,
        source_key: Callable[[str], str] = lambda host: host,
    ) -> None:
        """
        @param reserve: the share (0 to 1) of C{capacity} kept for
            authenticated attendees.
        @param source_key: the per-source key of an address (for example
            L{conference.limits.RateLimiter.source_key}: C{""} for exempt
            networks, the /64 of an IPv6 address).
        @raise ValueError: for a share outside 0..1 or a capacity below 1.
        """
        if not 0.0 <= reserve <= 1.0:
            raise ValueError(f"the reserved share must be 0..1, got {reserve!r}")
        if capacity < 1:
            raise ValueError("media capacity must be at least 1")
        self.capacity = capacity
        self.reserved = int(capacity * reserve)
        self.per_source = per_source
        self.per_caller = per_caller
        self.timeout = timeout
        self.source_key = source_key
        self._tickets: Set[MediaTicket] = set()
        self._general = 0
        self._sources: Counter[str] = Counter()
        self._callers: Counter[str] = Counter()
        self._next_check: Optional[float] = None

    def __len__(self) -> int:
        return len(self._tickets)

    def count(self, *, source: Optional[str] = None, caller: Optional[str] = None) -> int:
        """
        How many sessions are held from the source address C{source} (by
        non-attendees) or by the caller key C{caller} (see L{admit}); all
        of them without either.
        """
        if source is not None:
            return self._sources[self.source_key(source)]
        if caller is not None:
            return self._callers[caller]
        return len(self._tickets)

    # Admission -------------------------------------------------------------

    def admit(
        self, *, host: str, caller: str, authenticated: bool, attendee: bool, now: float
    ) -> MediaTicket:
        """
        Count a session for C{caller} joining from C{host}.

        @param caller: the authenticated address of record, else the From
            address; an anonymous caller is counted apart from the
            identity it names, so forging an attendee's From cannot use up
            that attendee's sessions.
        @param attendee: whether the caller is authenticated and is the
            organizer or an attendee of the conference it joins; only
            they may use the reserved share, and they are not capped per
            source (their identity is proven; an attacker behind the same
            NAT does not lock them out).
        @raise MediaRefused: over a cap; the ticket is not counted.
        """
        attendee = attendee and authenticated
        if not authenticated:
            caller = "unauthenticated " + caller
        source = "" if attendee else self.source_key(host)
        retry = self.retry_after(now)
        if len(self._tickets) >= self.capacity:
            raise MediaRefused("No media ports available", retry, for_attendees=False)
        if not attendee and self._general >= self.capacity - self.reserved:
            raise MediaRefused(
                "No media ports available (the rest is kept for attendees)",
                retry,
                for_attendees=True,
            )
        if source and self.per_source is not None and self._sources[source] >= self.per_source:
            raise MediaRefused(
                "Too many media sessions from your address", retry, for_attendees=True
            )
        if self.per_caller is not None and self._callers[caller] >= self.per_caller:
            raise MediaRefused("Too many media sessions of yours", retry, for_attendees=True)
        ticket = MediaTicket(source, caller, attendee)
        self._tickets.add(ticket)
        if not attendee:
            self._general += 1
        if source:
            self._sources[source] += 1
        self._callers[caller] += 1
        return ticket

    def opened(self, ticket: MediaTicket, session: Any, owner: Hashable) -> None:
        """
        The ticket's session is open and its call filed under C{owner}:
        from now on its media is watched.
        """
        ticket.session = session
        ticket.owner = owner
        if self.timeout is not None and self._next_check is None:
            self._next_check = _activity(session) + self.timeout

    def release(self, ticket: Optional[MediaTicket]) -> None:
        """
        Give back what C{ticket} counted; idempotent, L{None} ignored.
        """
        if ticket is None or ticket.released:
            return
        ticket.released = True
        self._tickets.discard(ticket)
        if not ticket.attendee:
            self._general -= 1
        if ticket.source:
            _decrement(self._sources, ticket.source)
        _decrement(self._callers, ticket.caller)

    def retry_after(self, now: float) -> int:
        """
        The Retry-After of a refusal: seconds until the next look for idle
        sessions (when a session may be freed), else L{DEFAULT_RETRY_AFTER}.
        """
        if self._next_check is None or self.timeout is None:
            return DEFAULT_RETRY_AFTER
        return max(1, min(DEFAULT_RETRY_AFTER, math.ceil(self._next_check - now)))

    # Inactivity ------------------------------------------------------------

    def next_check(self) -> Optional[float]:
        """
        When L{idle} may next find something (for one timer); O(1).
        """
        return self._next_check

    def idle(self, now: float) -> List[MediaTicket]:
        """
        The open sessions with no media for C{timeout} seconds by C{now}
        (oldest activity first); the caller ends their calls and releases
        them.  A session that expects no media (the participant holds) is
        never idle; it is looked at again a timeout later, since taking the
        call off hold restarts its count.  Sets the next check, at least an
        eighth of the timeout (and a second) away, so a sweep over every
        session is not run for each session separately.
        """
        timeout = self.timeout
        if timeout is None:
            return []
        found: List[MediaTicket] = []
        earliest: Optional[float] = None
        for ticket in self._tickets:
            session = ticket.session
            if session is None:
                continue  # still being answered
            if session.expects_media:
                deadline = _activity(session) + timeout
            else:
                deadline = now + timeout
            if deadline <= now:
                found.append(ticket)
            elif earliest is None or deadline < earliest:
                earliest = deadline
        self._next_check = None if earliest is None else max(earliest, now + max(1.0, timeout / 8))
        found.sort(key=lambda t: _activity(t.session))
        return found


def _activity(session: Any) -> float:
    return float(session.last_activity)


def _decrement(counter: Counter[str], key: str) -> None:
    left = counter[key] - 1
    if left > 0:
        counter[key] = left
    else:
        del counter[key]
