# -*- test-case-name: tests.unit.app.test_busy -*-
"""
The busy path of iSIP section 4.5: a caller who cannot get through learns
from a VFREEBUSY when to try again.

For a conference that is full, locked or not yet open, the VFREEBUSY is the
conference's unavailable time; for a user of a served domain, their merged
busy time (conferences they are in, accepted conferences, published
events) over the coming days.  The answer is 486 with the VFREEBUSY and a
Retry-After (RFC 3261 section 20.33), 302 to a free registered user's
contacts, or 480 with the VFREEBUSY when they are not registered.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from twisted.internet.defer import Deferred, gatherResults, succeed

from conference.app.bookings import entry_calendar
from conference.app.conferences import (
    TIMELINE_SPAN,
    UTC,
    current_instance,
    timeline_of,
    utc_datetime,
)
from conference.app.roster import Roster
from conference.calendar import (
    Component,
    build_freebusy,
    new_calendar,
    next_free_slot,
    to_ical,
    to_xcal,
)
from conference.calendar import values as cv
from conference.calendar.errors import CalendarError
from conference.calendar.freebusy import busy_intervals, merge
from conference.calendar.model import Property
from conference.deferreds import PENDING, fired_result
from conference.interfaces import ICalendarStore, IConferenceStore, IRegistrationStore
from conference.records import CalendarEntry, ConferenceRecord, RegistrationBinding
from conference.sip.errors import RemoteProtocolError
from conference.sip.headers import media_acceptable, parse_accept
from conference.sip.message import Request, Response, make_response

XCAL = "application/calendar+xml"
ICAL = "text/calendar"
SDP = "application/sdp"
PRODID = "-//conference//iSIP busy//EN"
DEFAULT_WINDOW = timedelta(days=7)
# Retry-After is never shorter than this, so callers do not hammer.
MIN_RETRY = 30
# The slot a caller needs: Retry-After points at the first free minute.
SLOT = timedelta(minutes=1)

Interval = Tuple[datetime, datetime]
#: Signs a calendar part: (Content-Type, body) -> multipart/signed ones.
Signer = Callable[[str, bytes], Tuple[str, bytes]]


@dataclass(frozen=True)
class BodyFormats:
    """
    What a request's Accept allows in the answer (RFC 3261 section 20.1:
    no Accept means C{application/sdp} only).

    @ivar sdp: whether SDP is acceptable.
    @ivar calendar: the calendar type to send (C{application/calendar+xml}
        when listed, else C{text/calendar} when listed), or L{None}.
    """

    sdp: bool
    calendar: Optional[str]


#: What each Accept text (its header fields, in order) allows: a phone or
#: a SIPp scenario sends the same one at every call, and parsing it was a
#: fifth of the focus's work on a 486.  Malformed ones are not kept.
_FORMATS: Dict[Tuple[str, ...], BodyFormats] = {}
#: The most Accept texts kept (the map is emptied when it is full, so made-up
#: values cannot grow it).
FORMATS_CACHE_SIZE = 256
_NO_ACCEPT = BodyFormats(True, None)


def body_formats(request: Request) -> BodyFormats:
    """
    Read the Accept header fields of C{request}.

    @raise RemoteProtocolError: 400 for a malformed Accept.
    """
    fields = request.header_fields("accept")
    if not fields:
        return _NO_ACCEPT
    key = tuple(fields)
    found = _FORMATS.get(key)
    if found is None:
        ranges = []
        for value in fields:
            ranges.extend(parse_accept(value))
        listed = {r.mime for r in ranges if r.q > 0}
        calendar = XCAL if XCAL in listed else ICAL if ICAL in listed else None
        found = BodyFormats(media_acceptable(ranges, SDP), calendar)
        if len(_FORMATS) >= FORMATS_CACHE_SIZE:
            _FORMATS.clear()
        _FORMATS[key] = found
    return found


def freebusy_body(freebusy: Component, fmt: str) -> Tuple[str, bytes]:
    """
    A VFREEBUSY wrapped in a VCALENDAR with METHOD PUBLISH, as
    (Content-Type, body) in C{fmt}.
    """
    calendar = new_calendar(PRODID, "PUBLISH", [freebusy])
    params = ";method=PUBLISH;component=VFREEBUSY"
    if fmt == XCAL:
        return XCAL + params + ';charset="utf-8"', to_xcal(calendar)
    return ICAL + params + ";charset=utf-8", to_ical([calendar]).encode("utf-8")


def publish_freebusy(
    owner: str, start: datetime, end: datetime, now: datetime, busy: Iterable[Tuple[str, Interval]]
) -> Component:
    """
    A VFREEBUSY of C{owner} (the ORGANIZER, as RFC 5546 PUBLISH wants) over
    C{[start, end)} with the given C{(FBTYPE, interval)} busy time, merged
    per FBTYPE and clipped to the window.
    """
    fb = build_freebusy([], start, end, now, organizer=owner)
    by_type: dict[str, List[Interval]] = {}
    for kind, (first, last) in busy:
        s, e = max(first, start), min(last, end)
        if s < e:
            by_type.setdefault(kind, []).append((s, e))
    for kind in ("BUSY", "BUSY-UNAVAILABLE", "BUSY-TENTATIVE"):
        if kind in by_type:
            periods = [
                cv.Period(s.replace(microsecond=0), e.replace(microsecond=0))
                for s, e in merge(by_type[kind])
            ]
            fb.properties.append(Property("FREEBUSY", periods, {"FBTYPE": kind}, cv.PERIOD))
    return fb


def retry_after(now: datetime, free_at: Optional[datetime]) -> int:
    """
    Seconds until C{free_at} (rounded up, at least L{MIN_RETRY}); with no
    known free time, a day.
    """
    if free_at is None:
        return 86400
    return max(MIN_RETRY, math.ceil((free_at - now).total_seconds()))


def calendar_part(
    freebusy: Component, formats: BodyFormats, sign: Optional[Signer] = None
) -> Optional[Tuple[str, bytes]]:
    """
    The (Content-Type, body) of C{freebusy} in the calendar type the
    caller accepts (L{None} if none), wrapped by C{sign} as
    C{multipart/signed} when the server has S/MIME credentials.
    """
    if formats.calendar is None:
        return None
    content_type, body = freebusy_body(freebusy, formats.calendar)
    if sign is not None:
        content_type, body = sign(content_type, body)
    return content_type, body


def busy_response(
    request: Request,
    code: int,
    *,
    reason: str,
    part: Optional[Tuple[str, bytes]],
    retry: Optional[int],
    to_tag: str,
) -> Response:
    """
    The 486 (or 480) answer: Retry-After and, when the caller accepts a
    calendar type, the VFREEBUSY C{part} (see L{calendar_part}).
    """
    headers: List[Tuple[str, str]] = []
    if retry is not None:
        headers.append(("Retry-After", str(retry)))
    body = b""
    if part is not None:
        content_type, body = part
        headers.append(("Content-Type", content_type))
    return make_response(request, code, reason, to_tag=to_tag, headers=headers, body=body)


class InConference:
    """
    Which conferences a user is in now, and until when (their current
    instances' ends), from the roster and the conference store.
    """

    def __init__(self, roster: Roster, conferences: IConferenceStore) -> None:
        self.roster = roster
        self.conferences = conferences

    def busy_until(self, aor: str, now: float) -> Deferred[List[datetime]]:
        """
        For each conference C{aor} is in, the end of its current instance
        (or an hour from now if it has none, e.g. an open-ended room).
        """
        uris: Sequence[str] = self.roster.conferences_of(aor)
        if not uris:
            # Most callers are in no conference: no clock reading, no chain.
            return succeed([])
        at = utc_datetime(now)

        def ends(records: List[Optional[ConferenceRecord]]) -> List[datetime]:
            out = []
            for record in records:
                end = at + timedelta(hours=1)
                if record is not None:
                    try:
                        instance = current_instance(timeline_of(record, at), at)
                    except CalendarError:
                        instance = None
                    if instance is not None:
                        end = instance.end
                out.append(end)
            return out

        return gatherResults([self.conferences.get(u) for u in uris]).addCallback(ends)


class UserAvailability:
    """
    Answers INVITEs to users of served domains: the focus is not a proxy,
    so a free user is redirected (302), a busy one gets 486 with their
    free/busy, an unregistered one 480.

    @ivar window: how far ahead the VFREEBUSY looks.
    """

    def __init__(
        self,
        *,
        conferences: IConferenceStore,
        calendars: ICalendarStore,
        registrations: IRegistrationStore,
        in_conference: InConference,
        window: timedelta = DEFAULT_WINDOW,
        sign: Optional[Signer] = None,
    ) -> None:
        self.sign = sign
        self.conferences = conferences
        self.calendars = calendars
        self.registrations = registrations
        self.in_conference = in_conference
        self.window = window
        #: More busy time by user, e.g. from CalDAV (docs/caldav.rst):
        #: C{(aor, now)} -> Deferred of (FBTYPE, interval)s, never failing.
        self.external: Optional[Callable[[str, float], Deferred[List[Tuple[str, Interval]]]]] = None
        #: Answers by outcome (busy, redirected, unavailable), for /metrics.
        self.outcomes: Counter[str] = Counter()

    def busy_time(self, aor: str, now: float) -> Deferred[List[Tuple[str, Interval]]]:
        """
        C{aor}'s busy time over the window from C{now}: the conferences
        they are in now (until their instance ends) and their calendar
        entries (accepted conferences, published events).
        """
        d_entries: Deferred[List[CalendarEntry]] = self.calendars.entries(aor)
        d_current = self.in_conference.busy_until(aor, now)

        def combine(results: List[Any]) -> List[Tuple[str, Interval]]:
            return self._busy_list(aor, now, results[0], results[1]) + list(results[2])

        both: List[Deferred[Any]] = [d_entries, d_current, self._external(aor, now)]
        return gatherResults(both).addCallback(combine)

    def _external(self, aor: str, now: float) -> Deferred[List[Tuple[str, Interval]]]:
        return self.external(aor, now) if self.external is not None else succeed([])

    def _busy_list(
        self, aor: str, now: float, entries: List[CalendarEntry], current: List[datetime]
    ) -> List[Tuple[str, Interval]]:
        """
        L{busy_time} from what the stores gave: C{aor}'s calendar entries
        and the ends of the conferences they are in now.
        """
        start = utc_datetime(now)
        end = start + self.window
        out: List[Tuple[str, Interval]] = [("BUSY", (start, until)) for until in current]
        sources = []
        for entry in entries:
            try:
                sources.append(entry_calendar(entry))
            except CalendarError:
                continue
        if sources:
            try:
                found = busy_intervals(sources, start, end, user=aor)
            except CalendarError:
                found = {}
            for kind, intervals in found.items():
                out.extend((kind, i) for i in intervals)
        return out

    def answer_now(
        self,
        request: Request,
        aor: str,
        now: float,
        formats: BodyFormats,
        to_tag: Callable[[], str],
    ) -> Union[Response, Deferred[Response]]:
        """
        486 with VFREEBUSY when busy now, 302 to the contacts when free and
        registered, 480 with VFREEBUSY when known but not registered, 404
        for an address nobody registered, published or accepted anything as.
        Given at once when the stores answer at once (else a Deferred); a
        404 found at once is raised as a L{RemoteProtocolError}, a later
        one fails the Deferred with it.

        @param to_tag: draws the answer's To tag, called only for an answer
            made here: the 404 is raised, and whoever turns it into a
            response tags it (on the stateless path, with the stateless tag).
        """
        reads: List[Deferred[Any]] = [
            self.calendars.entries(aor),
            self.in_conference.busy_until(aor, now),
            self.registrations.get_bindings(aor, now),
            self._external(aor, now),
        ]
        results = [fired_result(d) for d in reads]
        # By identity: no store value compares equal to the PENDING object.
        if PENDING in results:

            def decide(found: List[Any]) -> Response:
                return self._decide(request, aor, now, found, formats=formats, to_tag=to_tag)

            return gatherResults(reads).addCallback(decide)
        return self._decide(request, aor, now, results, formats=formats, to_tag=to_tag)

    def _decide(
        self,
        request: Request,
        aor: str,
        now: float,
        found: List[Any],
        *,
        formats: BodyFormats,
        to_tag: Callable[[], str],
    ) -> Response:
        """
        L{answer_now} from what the stores gave: C{aor}'s calendar entries, the
        ends of the conferences they are in now, their registrations.
        """
        entries: List[CalendarEntry] = found[0]
        current: List[datetime] = found[1]
        contacts: List[RegistrationBinding] = found[2]
        external: List[Tuple[str, Interval]] = found[3]
        if not entries and not current and not contacts and not external:
            # Nobody registered, published or accepted anything as this
            # address (so it has no busy time either): as far as this
            # server knows it is no one.  Checked before the busy time is
            # worked out, which needs none of it here.
            raise RemoteProtocolError("Not Found (no such conference or user)", 404)
        busy_list = self._busy_list(aor, now, entries, current) + external
        start = utc_datetime(now)
        end = start + self.window
        hard = merge(i for kind, i in busy_list if kind in ("BUSY", "BUSY-UNAVAILABLE"))
        fb = publish_freebusy(aor, start, end, start, busy_list)
        if any(s <= start < e for s, e in hard):
            free_at = next_free_slot(hard, SLOT, start, end)
            self.outcomes["busy"] += 1
            return busy_response(
                request,
                486,
                reason="Busy Here",
                part=calendar_part(fb, formats, self.sign),
                retry=retry_after(start, free_at),
                to_tag=to_tag(),
            )
        if contacts:
            headers = [
                ("Contact", f"<{b.contact}>" + (f";q={b.q:g}" if b.q is not None else ""))
                for b in contacts
            ]
            self.outcomes["redirected"] += 1
            return make_response(
                request, 302, "Moved Temporarily", to_tag=to_tag(), headers=headers
            )
        self.outcomes["unavailable"] += 1
        return busy_response(
            request,
            480,
            reason="Temporarily Unavailable",
            part=calendar_part(fb, formats, self.sign),
            retry=None,
            to_tag=to_tag(),
        )


def conference_unavailable(
    uri: str, now: datetime, until: datetime, kind: str = "BUSY-UNAVAILABLE"
) -> Component:
    """
    The VFREEBUSY of a conference that cannot be joined until C{until}.
    """
    return publish_freebusy(
        uri, now, max(until, now + timedelta(minutes=1)), now, [(kind, (now, until))]
    )


class ConferenceBusyParts:
    """
    The calendar parts and Retry-After values of the 486s of conferences
    that cannot be joined, each made once per conference, kind, end,
    calendar type, signer and second: callers retrying a full or
    not-yet-open conference (or a storm of them) would otherwise rebuild,
    serialize and sign the same VFREEBUSY at every attempt.  A part is what
    it would have been without the cache: its DTSTAMP and window start are
    the whole second anyway.  At most C{size} are kept, the oldest made
    dropped first.
    """

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._parts: Dict[Tuple[Any, ...], Tuple[Optional[Tuple[str, bytes]], int]] = {}
        self.made = 0

    def part(
        self,
        uri: str,
        at: datetime,
        until: datetime,
        *,
        kind: str,
        formats: BodyFormats,
        sign: Optional[Signer] = None,
    ) -> Optional[Tuple[str, bytes]]:
        """
        The part L{calendar_part} gives for L{conference_unavailable} of
        these, C{at} taken to the whole second.
        """
        second = math.floor(at.timestamp())
        return self.refusal(uri, second, until, kind=kind, formats=formats, sign=sign)[0]

    def refusal(
        self,
        uri: str,
        now: float,
        until: datetime,
        *,
        kind: str,
        formats: BodyFormats,
        sign: Optional[Signer] = None,
    ) -> Tuple[Optional[Tuple[str, bytes]], int]:
        """
        The part (as L{part}) and the Retry-After (L{retry_after} until
        C{until}) of a 486 at POSIX time C{now}, both for its whole second:
        within a second the answer is a dictionary lookup, with no
        datetime made.
        """
        second = math.floor(now)
        key = (uri, second, until, kind, formats.calendar, sign)
        found = self._parts.get(key)
        if found is not None:
            return found
        at = utc_datetime(second)
        part = calendar_part(conference_unavailable(uri, at, until, kind), formats, sign)
        found = (part, retry_after(at, until))
        self.made += 1
        if self.size > 0:
            if len(self._parts) >= self.size:
                del self._parts[next(iter(self._parts))]
            self._parts[key] = found
        return found


def refuse_conference(
    request: Request,
    uri: str,
    now: float,
    until: datetime,
    *,
    formats: BodyFormats,
    to_tag: str,
    reason: str,
    parts: ConferenceBusyParts,
    kind: str = "BUSY-UNAVAILABLE",
    sign: Optional[Signer] = None,
) -> Response:
    """
    486 for a conference that is full, locked or not yet open, with its
    unavailable time (the VFREEBUSY part from C{parts}) and a Retry-After
    at C{until}.
    """
    part, retry = parts.refusal(uri, now, until, kind=kind, formats=formats, sign=sign)
    return busy_response(request, 486, reason=reason, part=part, retry=retry, to_tag=to_tag)


@dataclass(frozen=True)
class _Closed:
    """
    What L{ClosedConferences} remembers of one conference: which version
    of its record was decided (not the record itself, so that its calendar
    is not kept alive here), with which margin, and the outcome.
    """

    version: int
    state: str
    calendar_hash: int
    early_join: timedelta
    until: datetime
    valid_until: float


class ClosedConferences:
    """
    Conferences known not to be open yet, per record version: the focus
    decides that from the stored calendar (parsed, checked for
    cancellation, expanded, searched for the current and the next
    instance), and the answer stays the same until the next instance
    opens, so a caller retrying (or a storm of INVITEs) before then is
    refused from one lookup.

    An entry serves only a record of the same version, state and calendar
    (its hash, which a bytes object computes once) as the one it was made
    from, with the same early-join margin, and only until the earlier of
    the next instance's opening and the end of the expansion's day
    (L{TIMELINE_SPAN}), when the focus decides afresh as it would have.
    At most C{size} conferences are remembered, the oldest dropped first.
    """

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._closed: Dict[str, _Closed] = {}

    def __len__(self) -> int:
        return len(self._closed)

    def until(
        self, record: ConferenceRecord, now: float, early_join: timedelta
    ) -> Optional[datetime]:
        """
        When C{record}'s conference stops refusing joins (its next
        instance's opening), if it is remembered as closed at C{now}.
        """
        entry = self._closed.get(record.uri)
        if (
            entry is None
            or now >= entry.valid_until
            or entry.version != record.version
            or entry.early_join != early_join
            or entry.state != record.state
            or entry.calendar_hash != hash(record.calendar)
        ):
            return None
        return entry.until

    def remember(
        self, record: ConferenceRecord, now: datetime, until: datetime, early_join: timedelta
    ) -> None:
        """
        Remember that C{record}'s conference, decided at C{now}, is closed
        until C{until} (its next instance's start less C{early_join}).
        Not with a negative margin: an instance that started before C{now}
        might then still open before C{until}.
        """
        if early_join < timedelta(0):
            return
        span = TIMELINE_SPAN.total_seconds()
        day_end = (math.floor(now.timestamp() / span) + 1) * span
        entry = _Closed(
            record.version,
            record.state,
            hash(record.calendar),
            early_join,
            until,
            min(until.timestamp(), day_end),
        )
        closed = self._closed
        closed.pop(record.uri, None)
        if self.size <= 0:
            return
        while len(closed) >= self.size:
            del closed[next(iter(closed))]
        closed[record.uri] = entry


def check_formats(formats: BodyFormats) -> None:
    """
    Refuse an INVITE whose Accept allows no SDP at all (406).
    """
    if not formats.sdp:
        raise RemoteProtocolError("Not Acceptable (Accept allows no application/sdp)", 406)


__all__ = [
    "ICAL",
    "SDP",
    "UTC",
    "Signer",
    "XCAL",
    "BodyFormats",
    "ClosedConferences",
    "ConferenceBusyParts",
    "InConference",
    "UserAvailability",
    "body_formats",
    "busy_response",
    "calendar_part",
    "check_formats",
    "conference_unavailable",
    "freebusy_body",
    "publish_freebusy",
    "refuse_conference",
    "retry_after",
]
