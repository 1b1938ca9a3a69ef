# -*- test-case-name: tests.unit.app.test_autodial -*-
"""
Calling the attendees at DTSTART (RFC 4579 section 5.4): a
conference whose VEVENT says C{X-CONFERENCE-DIAL-OUT:TRUE} has the focus
call each of its attendees at the start of every instance, on behalf of
the organizer, through L{conference.app.dialout} (so the same rules hold:
attendees only, at contacts registered here).

One timer per such conference on the injected reactor, armed for every
scheduled conference when the service starts and again whenever a
conference's record changes.

Nodes sharing one store all arm the timer; at DTSTART each tries to
claim the instance by writing its start into the record's L{CLAIM}
setting, with the version it read (optimistic concurrency), and only the
one whose write lands calls the attendees: one call per attendee
whatever the number of nodes (docs/deployment.rst).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Dict, List, Optional

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from conference.app.conferences import (
    SCHEDULED,
    calendar_of,
    next_instance,
    timeline_of,
    utc_datetime,
)
from conference.app.dialout import DialOut
from conference.calendar.errors import CalendarError
from conference.calendar.itip import normalize_address
from conference.records import ConferenceRecord, ConflictError
from conference.sip.errors import SIPProtocolError

__all__ = ["CLAIM", "AutoDialOut"]

log = Logger()

#: The record setting holding the DTSTART (epoch seconds) of the last
#: instance whose dial-out a node claimed.
CLAIM = "dial_out_claimed"
#: Writes tried before giving an instance up (each conflict is another
#: write of the record, most likely another node's claim).
CLAIM_TRIES = 3


class AutoDialOut:
    """
    Calls the attendees of dial-out conferences at each DTSTART.

    @ivar timers: the armed start of each conference, by URI.
    """

    def __init__(self, dialout: DialOut, reactor: IReactorTime) -> None:
        self.dialout = dialout
        self.control = dialout.control
        self._reactor = reactor
        self.timers: Dict[str, IDelayedCall] = {}

    def start(self) -> Deferred[Any]:
        """
        Arm every scheduled conference (at service start).
        """
        d: Deferred[Any] = self.control.focus.stores.conferences.list(state=SCHEDULED)

        def arm_all(records: List[ConferenceRecord]) -> None:
            for record in records:
                self.arm(record)

        d.addCallback(arm_all)
        d.addErrback(lambda f: log.error("Dial-out schedules not armed: {f}", f=f))
        return d

    def changed(self, uri: str) -> None:
        """
        C{uri}'s record changed: arm it again.
        """
        d: Deferred[Any] = self.control.focus.stores.conferences.get(uri)
        d.addCallback(lambda record: self.arm(record) if record is not None else self._cancel(uri))

    def arm(self, record: ConferenceRecord) -> Optional[float]:
        """
        Set the timer of C{record} for its next DTSTART when it dials out;
        returns when, or L{None}.
        """
        self._cancel(record.uri)
        if record.state != SCHEDULED:
            return None
        now = self._reactor.seconds()
        try:
            calendar = calendar_of(record)
            if not self.control.policy(record, calendar).dial_out:
                return None
            moment = utc_datetime(now)
            instance = next_instance(timeline_of(record, moment), moment)
        except CalendarError as e:
            log.error("Conference {uri} has a bad stored calendar: {e}", uri=record.uri, e=e)
            return None
        if instance is None:
            return None
        when = instance.start.timestamp()
        self.timers[record.uri] = self._reactor.callLater(when - now, self._due, record.uri, when)
        return when

    def _due(self, uri: str, start: float) -> None:
        self.timers.pop(uri, None)
        d: Deferred[Optional[ConferenceRecord]] = Deferred.fromCoroutine(self._claim(uri, start))
        d.addCallback(self._call_all)
        d.addErrback(lambda f: log.error("Dial-out of {uri} failed: {f}", uri=uri, f=f))

    async def _claim(self, uri: str, start: float) -> Optional[ConferenceRecord]:
        """
        The record of C{uri} once this node has claimed the dial-out of its
        instance starting at C{start}; L{None} when another node did (the
        timer is then armed for the next instance) or there is no record.
        """
        stamp = str(int(start))
        conferences = self.control.focus.stores.conferences
        for _ in range(CLAIM_TRIES):
            record: Optional[ConferenceRecord] = await conferences.get(uri)
            if record is None:
                return None
            if record.settings.get(CLAIM) == stamp:
                log.info("Dial-out of {uri} is another node's", uri=uri)
                self.arm(record)
                return None
            claimed = replace(record, settings={**record.settings, CLAIM: stamp})
            try:
                stored: ConferenceRecord = await conferences.put(claimed, record.version)
            except ConflictError:
                continue  # written meanwhile: look again
            return stored
        log.warn("Dial-out of {uri} not claimed: its record kept changing", uri=uri)
        return None

    def _call_all(self, record: Optional[ConferenceRecord]) -> None:
        if record is None:
            return
        try:
            policy = self.control.policy(record, calendar_of(record))
        except CalendarError:
            return
        if policy.dial_out and record.state == SCHEDULED and policy.organizer is not None:
            organizer = policy.organizer
            for attendee in sorted(policy.attendees):
                if normalize_address(attendee) != organizer:
                    self._call(record.uri, attendee, organizer)
        self.arm(record)

    def _call(self, uri: str, attendee: str, organizer: str) -> None:
        d = self.dialout.check(uri, attendee, organizer)
        d.addCallback(self.dialout.call, organizer)

        def failed(failure: Any) -> None:
            error = failure.value
            if isinstance(error, SIPProtocolError):
                log.info(
                    "Not calling {who} into {uri}: {why}", who=attendee, uri=uri, why=error.reason
                )
            else:
                log.failure("Calling {who} into {uri}", failure, who=attendee, uri=uri)

        d.addErrback(failed)

    def _cancel(self, uri: str) -> None:
        timer = self.timers.pop(uri, None)
        if timer is not None and timer.active():
            timer.cancel()

    def stop(self) -> None:
        """
        Cancel every timer (the server is stopping).
        """
        for uri in list(self.timers):
            self._cancel(uri)
