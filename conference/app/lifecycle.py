# -*- test-case-name: tests.unit.app.test_lifecycle -*-
"""
A live conference follows its schedule: participants are warned
some minutes before the instance's DTEND (a conference-info update, and a
prompt through the media plane once it can play one), and at DTEND plus a
grace period everyone gets BYE; a conference its organizer cancelled ends
at once the same way.  Opening is the focus's join rule (from the start
minus the early-join window), per instance of a recurring conference.

One timer per live conference on the injected reactor, armed when someone
joins and when the conference's record changes.  Joins and leaves read the
record again only when it was last read more than L{REREAD} seconds ago:
a busy conference's every join and leave would otherwise each cost a store
read and a look at its calendar (record changes made here always re-arm).
When the last participant leaves, the schedule rests (its timer cancelled,
nobody to warn) for those seconds rather than being forgotten, so that a
conference whose calls come and go one at a time (a test line, a
benchmark, a dial-in that drops and redials) does not read its record at
every join either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Set

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from conference.app.conferences import (
    calendar_of,
    current_instance,
    is_cancelled,
    timeline_of,
    utc_datetime,
)
from conference.app.focus import Focus
from conference.calendar.errors import CalendarError
from conference.records import ConferenceRecord

__all__ = ["DEFAULT_GRACE", "DEFAULT_WARNING", "REREAD", "ConferenceLifecycle"]

log = Logger()

#: How long before DTEND participants are warned, and how long after it
#: the conference is ended (seconds).
DEFAULT_WARNING = 300.0
DEFAULT_GRACE = 120.0
#: Seconds a live conference's record, once read, serves joins and leaves.
REREAD = 1.0


@dataclass
class _Live:
    """
    The schedule of one live conference.

    @ivar ends: the instance's DTEND (POSIX seconds).
    @ivar warned: whether the warning went out for this instance.
    @ivar read_at: when the record was last read (POSIX seconds).
    """

    ends: float
    warned: bool = False
    timer: Optional[IDelayedCall] = None
    read_at: float = 0.0


class ConferenceLifecycle:
    """
    Warns and ends the live conferences of one focus on schedule.

    @ivar warnings: per conference URI, the DTEND participants were warned
        about (what the conference-info documents show).
    """

    def __init__(
        self,
        focus: Focus,
        reactor: IReactorTime,
        *,
        warning: float = DEFAULT_WARNING,
        grace: float = DEFAULT_GRACE,
    ) -> None:
        self.focus = focus
        self._reactor = reactor
        self.warning = warning
        self.grace = grace
        self._live: Dict[str, _Live] = {}
        #: The live schedules nobody is in, oldest first (see L{_rest}).
        self._resting: Dict[str, None] = {}
        self._ending: Set[str] = set()
        self.warnings: Dict[str, float] = {}
        focus.listeners.append(self.participants_changed)

    def participants_changed(self, uri: str) -> None:
        """
        Someone joined or left C{uri} (or its moderation changed): as
        L{changed}, unless its record was read within L{REREAD} seconds:
        then the timer armed then stands while people are in, rests when
        the last one left, and is armed again from that reading when
        someone joins a resting schedule.
        """
        live = self._live.get(uri)
        now = self._reactor.seconds()
        if live is None or uri in self._ending or now - live.read_at >= REREAD:
            self.changed(uri)
            return
        if self.focus.roster.count(uri) == 0:
            self._rest(uri, live, now)
        elif uri in self._resting:
            self._schedule(uri, live, now)

    def changed(self, uri: str) -> None:
        """
        C{uri}'s record changed (or someone joined or left): (re)arm its
        timer from the record, or forget it when nobody is in.
        """
        if uri in self._ending:
            return
        if self.focus.roster.count(uri) == 0:
            self._forget(uri)
            return
        d: Deferred[Any] = self.focus.stores.conferences.get(uri)
        d.addCallback(self._arm, uri)
        d.addErrback(lambda f: log.error("Schedule of {uri} unknown: {f}", uri=uri, f=f))

    def _arm(self, record: Optional[ConferenceRecord], uri: str) -> None:
        now = self._reactor.seconds()
        ends = self._ends(record, now)
        if ends is None:
            self._end(uri, "conference cancelled" if record is not None else "conference deleted")
            return
        live = self._live.get(uri)
        if live is None or live.ends != ends:
            self._forget(uri)
            live = self._live[uri] = _Live(ends)
        live.read_at = now
        self._schedule(uri, live, now)

    def _ends(self, record: Optional[ConferenceRecord], now: float) -> Optional[float]:
        """
        The DTEND of the instance open now, L{None} when the conference is
        gone, cancelled or not open.
        """
        if record is None:
            return None
        try:
            calendar = calendar_of(record)
            if is_cancelled(record, calendar):
                return None
            moment = utc_datetime(now)
            instance = current_instance(timeline_of(record, moment), moment, self.focus.early_join)
        except CalendarError as e:
            log.error("Conference {uri} has a bad stored calendar: {e}", uri=record.uri, e=e)
            return None
        if instance is None:
            # Past DTEND, within the grace period: the instance just ended.
            live = self._live.get(record.uri)
            return live.ends if live is not None and now < live.ends + self.grace else None
        return instance.end.timestamp()

    def _schedule(self, uri: str, live: _Live, now: float) -> None:
        self._resting.pop(uri, None)
        if live.timer is not None and live.timer.active():
            live.timer.cancel()
        warn_at = live.ends - self.warning
        if not live.warned and now < live.ends:
            if now >= warn_at:
                self._warn(uri, live)
            else:
                live.timer = self._reactor.callLater(warn_at - now, self._due, uri)
                return
        live.timer = self._reactor.callLater(max(0.0, live.ends + self.grace - now), self._due, uri)

    def _due(self, uri: str) -> None:
        live = self._live.get(uri)
        if live is None:
            return
        live.timer = None
        now = self._reactor.seconds()
        if now >= live.ends + self.grace:
            # A next instance already open (back to back) keeps it going.
            d: Deferred[Any] = self.focus.stores.conferences.get(uri)
            d.addCallback(self._after_end, uri, live)
            return
        self._schedule(uri, live, now)

    def _after_end(self, record: Optional[ConferenceRecord], uri: str, live: _Live) -> None:
        now = self._reactor.seconds()
        self._live.pop(uri, None)
        ends = self._ends(record, now)
        if ends is not None and ends > live.ends:
            self._live[uri] = _Live(ends, read_at=now)
            self._schedule(uri, self._live[uri], now)
            return
        self._end(uri, "conference over")

    def _warn(self, uri: str, live: _Live) -> None:
        live.warned = True
        self.warnings[uri] = live.ends
        log.info(
            "{uri} ends in {s:.0f} s: warning participants",
            uri=uri,
            s=live.ends - self._reactor.seconds(),
        )
        for participant in self.focus.roster.participants(uri):
            self.focus.media.warn(participant.session, live.ends)
        self.focus.notify_listeners(uri)

    def _end(self, uri: str, why: str) -> None:
        self._forget(uri)
        self._ending.add(uri)
        try:
            count = self.focus.end_conference(uri, why)
        finally:
            self._ending.discard(uri)
        if count:
            log.info("{uri} ended ({why}): {n} call(s) hung up", uri=uri, why=why, n=count)

    def _rest(self, uri: str, live: _Live, now: float) -> None:
        """
        Nobody is in C{uri} any more: cancel its timer and forget its
        warning, as L{_forget} does, but keep the reading of its record for
        a join within L{REREAD} seconds of it.  Schedules that rested past
        that are forgotten here, oldest first, so they do not pile up.
        """
        if live.timer is not None and live.timer.active():
            live.timer.cancel()
        live.timer = None
        live.warned = False
        self.warnings.pop(uri, None)
        self._resting.pop(uri, None)
        self._resting[uri] = None
        while self._resting:
            oldest = next(iter(self._resting))
            rested = self._live.get(oldest)
            if rested is not None and now - rested.read_at < REREAD:
                break
            self._forget(oldest)

    def _forget(self, uri: str) -> None:
        self._resting.pop(uri, None)
        live = self._live.pop(uri, None)
        self.warnings.pop(uri, None)
        if live is not None and live.timer is not None and live.timer.active():
            live.timer.cancel()

    def ends_at(self, uri: str) -> Optional[float]:
        """
        When participants were warned C{uri} ends (L{None}: not warned).
        """
        return self.warnings.get(uri)

    def stop(self) -> None:
        """
        Cancel every timer (the server is stopping).
        """
        for uri in list(self._live):
            self._forget(uri)
