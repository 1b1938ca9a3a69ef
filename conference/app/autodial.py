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

Behind a front end (C{--front-end}: Kamailio hashing the conference name
to a node), the instance must live on the node the front end sends the
conference's joins to, or the conference is split in two.  So each node,
at DTSTART, hands the dial-out to that node: an OPTIONS to the conference
URI through the front end, carrying L{NUDGE_HEADER} with the instance's
start.  The node it reaches checks, from its own store, that this
conference dials out and that the instance starts then (give or take
L{NUDGE_EARLY}/L{NUDGE_LATE}), then claims and calls as above; so the
header can only ever start what is due anyway.  Its 200 says whether it
took the instance; when the front end does not answer 2xx saying so, the
node claims the instance itself.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from twisted.internet.defer import Deferred, succeed
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
from conference.app.outbound import URISender
from conference.calendar.errors import CalendarError
from conference.calendar.itip import normalize_address
from conference.records import ConferenceRecord, ConflictError
from conference.sip.errors import SIPProtocolError
from conference.sip.message import Request, Response
from conference.sip.transaction_model import new_tag
from conference.sip.uri import SIPURI, parse_uri

__all__ = ["CLAIM", "NUDGE_HEADER", "AutoDialOut"]

log = Logger()

#: The record setting holding the DTSTART (epoch seconds) of the last
#: instance whose dial-out a node claimed.
CLAIM = "dial_out_claimed"
#: Writes tried before giving an instance up (each conflict is another
#: write of the record, most likely another node's claim).
CLAIM_TRIES = 3
#: The header of the OPTIONS that hands an instance's dial-out to the
#: node the front end routes the conference to: the start, epoch seconds.
NUDGE_HEADER = "Conference-Dial-Out"
#: How far before and after an instance's start a hand-over is taken
#: (seconds; the nodes' clocks differ, the front end may retry).
NUDGE_EARLY = 5.0
NUDGE_LATE = 60.0
#: What the 200 to a hand-over says in L{NUDGE_HEADER}.
TAKEN = "taken"
DECLINED = "declined"


class AutoDialOut:
    """
    Calls the attendees of dial-out conferences at each DTSTART.

    @ivar timers: the armed start of each conference, by URI.
    """

    def __init__(
        self,
        dialout: DialOut,
        reactor: IReactorTime,
        *,
        front_end: Optional[str] = None,
        sender: Optional[URISender] = None,
    ) -> None:
        """
        @param front_end: the cluster's front end (a SIP URI), through
            which each instance is handed to the node it routes the
            conference to; L{None}: this node claims it.
        @param sender: sends the hand-over (needed with C{front_end}).
        """
        self.dialout = dialout
        self.control = dialout.control
        self._reactor = reactor
        self.timers: Dict[str, IDelayedCall] = {}
        if front_end is not None and (
            sender is None or not isinstance(parse_uri(front_end), SIPURI)
        ):
            raise ValueError(f"front end {front_end!r}: not a SIP URI, or no sender")
        self.front_end = front_end
        self.sender = sender

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
            when = self._next_start(record, now)
        except CalendarError as e:
            log.error("Conference {uri} has a bad stored calendar: {e}", uri=record.uri, e=e)
            return None
        if when is None:
            return None
        self.timers[record.uri] = self._reactor.callLater(when - now, self._due, record.uri, when)
        return when

    def _next_start(self, record: ConferenceRecord, after: float) -> Optional[float]:
        """
        The start of C{record}'s first instance after C{after}, if it dials
        out and has one.

        @raise CalendarError: for a stored calendar that cannot be read.
        """
        if not self.control.policy(record, calendar_of(record)).dial_out:
            return None
        moment = utc_datetime(after)
        instance = next_instance(timeline_of(record, moment), moment)
        return instance.start.timestamp() if instance is not None else None

    def _due(self, uri: str, start: float) -> None:
        self.timers.pop(uri, None)
        if self.front_end is None:
            self._claim_and_call(uri, start)
            return
        d = self._hand_over(uri, start)

        def answered(response: Response) -> None:
            if 200 <= response.code < 300 and response.header(NUDGE_HEADER) == TAKEN:
                log.info("Dial-out of {uri} handed to the front end", uri=uri)
                self.changed(uri)  # the next instance
                return
            log.warn(
                "Dial-out of {uri} not taken through the front end ({code} {taken}): "
                "calling from here",
                uri=uri,
                code=response.code,
                taken=response.header(NUDGE_HEADER) or "",
            )
            self._claim_and_call(uri, start)

        def unanswered(failure: Any) -> None:
            log.warn(
                "Front end did not take the dial-out of {uri} ({why}): calling from here",
                uri=uri,
                why=failure.getErrorMessage(),
            )
            self._claim_and_call(uri, start)

        d.addCallbacks(answered, unanswered)

    def _hand_over(self, uri: str, start: float) -> Deferred[Response]:
        """
        Send the OPTIONS that hands the instance of C{uri} starting at
        C{start} to the node the front end routes C{uri} to.
        """
        assert self.sender is not None and self.front_end is not None
        target = parse_uri(uri)
        request = Request("OPTIONS", target)
        domain = target.host if isinstance(target, SIPURI) else "localhost"
        request.add_header("Max-Forwards", "70")
        request.add_header("From", f"<sip:conference@{domain}>;tag={new_tag()}")
        request.add_header("To", f"<{uri}>")
        request.add_header("Call-ID", f"{new_tag()}{new_tag()}@{domain}")
        request.add_header("CSeq", "1 OPTIONS")
        request.add_header(NUDGE_HEADER, str(int(start)))
        return self.sender.send_to(request, self.front_end)

    def options_hook(
        self, request: Request, context: Any
    ) -> Union[Sequence[Tuple[str, str]], Deferred[Sequence[Tuple[str, str]]]]:
        """
        For L{conference.app.core.CoreRouter.options_hooks}: an OPTIONS
        carrying L{NUDGE_HEADER} hands this node the dial-out of the
        instance it names (checked in L{take}); its 200 then says
        C{Conference-Dial-Out: taken} or C{declined}, so the sender knows
        whether to call from where it is.  Other OPTIONS get nothing.
        """
        value = request.header(NUDGE_HEADER)
        if value is None:
            return []
        d = self.take(str(request.uri), value.strip())
        return d.addCallback(lambda taken: [(NUDGE_HEADER, TAKEN if taken else DECLINED)])

    def take(self, uri: str, start_text: str) -> Deferred[bool]:
        """
        Claim and call the instance of C{uri} starting at C{start_text}
        (epoch seconds) if this conference dials out and that instance
        starts within L{NUDGE_EARLY} / L{NUDGE_LATE} of now; fires with
        whether it was taken (claimed here or already).
        """
        if not start_text.isascii() or not start_text.isdigit() or len(start_text) > 12:
            log.info("Dial-out hand-over for {uri} ignored: bad start", uri=uri)
            return succeed(False)
        start = float(start_text)
        now = self._reactor.seconds()
        if not start - NUDGE_EARLY <= now <= start + NUDGE_LATE:
            log.info("Dial-out hand-over for {uri} ignored: not due now", uri=uri)
            return succeed(False)
        d: Deferred[Optional[ConferenceRecord]] = self.control.focus.stores.conferences.get(uri)

        def check(record: Optional[ConferenceRecord]) -> bool:
            if record is None or not self._starts_at(record, start):
                log.info("Dial-out hand-over for {uri} ignored: no such instance", uri=uri)
                return False
            self._claim_and_call(record.uri, start)
            return True

        return d.addCallback(check)

    def _starts_at(self, record: ConferenceRecord, start: float) -> bool:
        """
        Whether C{record} is a scheduled dial-out conference with an
        instance starting at C{start}.
        """
        if record.state != SCHEDULED:
            return False
        try:
            return self._next_start(record, start - 1) == start
        except CalendarError:
            return False

    def _claim_and_call(self, uri: str, start: float) -> None:
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
