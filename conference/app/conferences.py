# -*- test-case-name: tests.unit.app.test_conferences -*-
"""
What a conference's calendar says: its organizer and attendees, which
instance is on now, when the next one opens, whether it is over, whether it
overlaps another booking, and the VEVENT a participant gets when joining.

Plain functions over the calendar model and L{ConferenceRecord}, so the
focus, the scheduler and the busy path read conferences the same way.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections import OrderedDict
from datetime import datetime, timedelta, timezone
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple, Union

from conference.calendar import (
    Component,
    Outgoing,
    Property,
    new_calendar,
    parse_xcal_calendar,
    to_xcal,
)
from conference.calendar import values as cv
from conference.calendar.errors import CalendarError
from conference.calendar.expansion import Occurrence, calendar_occurrences
from conference.calendar.itip import normalize_address
from conference.calendar.recurrence import HORIZON, Budget
from conference.records import ConferenceRecord

UTC = timezone.utc
PRODID = "-//conference//iSIP focus//EN"
DEFAULT_EARLY_JOIN = timedelta(minutes=10)
# How far ahead "is there another instance" looks is HORIZON, shared with
# the input checks of the calendar package: recurring conferences with gaps
# longer than that count as over.
#: How long one cached expansion of a stored conference serves: it covers
#: C{[day, day + TIMELINE_SPAN + HORIZON)}, every window the focus asks about
#: while C{now} stays within its first C{TIMELINE_SPAN}.
TIMELINE_SPAN = timedelta(days=1)
#: Cached expansions kept (least recently used dropped first), and the most
#: instances they may hold together.
TIMELINE_CACHE_ENTRIES = 512
TIMELINE_CACHE_INSTANCES = 200_000

SCHEDULED = "scheduled"
CANCELLED = "cancelled"


#: One occurrence of a conference: C{start} and C{end} in UTC, the VEVENT
#: that describes it (the master or the override) and, for a recurring
#: conference, its RECURRENCE-ID in UTC.
Instance = Occurrence


def utc_datetime(now: float) -> datetime:
    """
    POSIX time as an aware UTC datetime.
    """
    return datetime.fromtimestamp(now, UTC)


_parsed: Dict[Tuple[str, int, bytes], Component] = {}


def calendar_of(record: ConferenceRecord) -> Component:
    """
    The stored VCALENDAR of a conference, parsed once per record version.

    @raise conference.calendar.CalendarError: if the stored document is bad.
    """
    key = (record.uri, record.version, record.calendar)
    cached = _parsed.get(key)
    if cached is None:
        if len(_parsed) > 1024:
            _parsed.clear()
        cached = _parsed[key] = parse_xcal_calendar(record.calendar)
    return cached


def master_events(calendar: Component) -> List[Component]:
    """
    The VEVENTs without RECURRENCE-ID (one per UID).
    """
    return [e for e in calendar.subcomponents("VEVENT") if e.get("RECURRENCE-ID") is None]


def overrides_of(calendar: Component, uid: str) -> List[Component]:
    """
    The overridden instances of C{uid}.
    """
    return [
        e
        for e in calendar.subcomponents("VEVENT")
        if e.get("RECURRENCE-ID") is not None and e.value("UID") == uid
    ]


def organizer_of(calendar: Component) -> Optional[str]:
    """
    The normalised ORGANIZER address of the first event.
    """
    for event in master_events(calendar) or calendar.subcomponents("VEVENT"):
        value = event.value("ORGANIZER")
        if isinstance(value, str):
            return normalize_address(value)
    return None


def attendees_of(calendar: Component) -> List[Tuple[str, str, str]]:
    """
    C{(address, PARTSTAT, CUTYPE)} of every ATTENDEE of the master events,
    addresses normalised.
    """
    out: List[Tuple[str, str, str]] = []
    for event in master_events(calendar):
        for prop in event.get_all("ATTENDEE"):
            if prop.values and isinstance(prop.values[0], str):
                out.append(
                    (
                        normalize_address(prop.values[0]),
                        (prop.param("PARTSTAT") or "NEEDS-ACTION").upper(),
                        (prop.param("CUTYPE") or "INDIVIDUAL").upper(),
                    )
                )
    return out


def is_cancelled(record: ConferenceRecord, calendar: Component) -> bool:
    """
    Whether the conference as a whole is cancelled.  C{calendar} is
    C{record}'s (L{calendar_of}): the answer is kept per record version.
    """
    if record.state == CANCELLED:
        return True
    key = (record.uri, record.version, record.calendar)
    cancelled = _all_cancelled.get(key)
    if cancelled is None:  # once per record version, as its calendar is parsed
        masters = master_events(calendar)
        cancelled = bool(masters) and all(
            str(e.value("STATUS", "")).upper() == "CANCELLED" for e in masters
        )
        if len(_all_cancelled) > 1024:
            _all_cancelled.clear()
        _all_cancelled[key] = cancelled
    return cancelled


_all_cancelled: Dict[Tuple[str, int, bytes], bool] = {}


def instances(
    calendar: Component, start: datetime, end: datetime, budget: Optional[Budget] = None
) -> List[Instance]:
    """
    The live (not cancelled) instances of every event overlapping
    C{[start, end)}, sorted by start, expanded within C{budget} (a fresh
    L{Budget} of L{conference.calendar.recurrence.MAX_STEPS} by default).

    @raise conference.calendar.CalendarError: on unusable calendar data,
        or when expanding needs more work than the budget allows.
    """
    return calendar_occurrences(calendar, start, end, budget=budget)


class Timeline:
    """
    The live instances of a calendar over C{[start, end)}, sorted, from one
    bounded expansion, so that the questions the focus asks at each INVITE
    (what is on, what is next, is it over) are lookups.

    @ivar steps: the work the expansion took (see L{Budget}).
    """

    __slots__ = ("_longest", "_starts", "end", "instances", "start", "steps")

    def __init__(
        self, found: Sequence[Instance], start: datetime, end: datetime, steps: int = 0
    ) -> None:
        self.instances = list(found)
        self.start = start
        self.end = end
        self.steps = steps
        self._starts = [i.start for i in self.instances]
        self._longest = max((i.end - i.start for i in self.instances), default=timedelta(0))

    @classmethod
    def expand(cls, calendar: Component, start: datetime, end: datetime) -> Timeline:
        """
        Expand C{calendar} over C{[start, end)} within one L{Budget}.

        @raise conference.calendar.CalendarError: as L{instances}.
        """
        budget = Budget()
        return cls(instances(calendar, start, end, budget), start, end, budget.spent)

    def between(self, start: datetime, end: datetime) -> List[Instance]:
        """
        The instances overlapping C{[start, end)}, which must lie within
        this timeline's window.
        """
        if start < self.start or end > self.end:
            raise ValueError(f"[{start}, {end}) is outside the timeline [{self.start}, {self.end})")
        low = bisect_left(self._starts, start - self._longest)
        high = bisect_left(self._starts, end)
        return [i for i in self.instances[low:high] if i.end > start]


#: A calendar to expand, or a timeline already expanded.
Schedule = Union[Component, Timeline]


class TimelineCache:
    """
    Expansions of stored conferences by record version and
    L{TIMELINE_SPAN}, least recently used dropped first, bounded in entries
    and in the instances they hold together.  A failure is kept too, so a
    conference that cannot be expanded costs one bounded attempt a day, not
    one per INVITE.

    @ivar expansions: how many expansions were made (a work counter).
    """

    def __init__(
        self, entries: int = TIMELINE_CACHE_ENTRIES, instances: int = TIMELINE_CACHE_INSTANCES
    ) -> None:
        self.entries = entries
        self.instances = instances
        self.expansions = 0
        self._held = 0
        self._items: OrderedDict[Tuple[str, int, bytes, int], Union[Timeline, CalendarError]] = (
            OrderedDict()
        )

    def __len__(self) -> int:
        return len(self._items)

    def get(self, record: ConferenceRecord, now: datetime) -> Timeline:
        """
        The expansion of C{record} covering every window the focus asks
        about at C{now}: C{[day, day + TIMELINE_SPAN + HORIZON)}.

        @raise conference.calendar.CalendarError: if the stored calendar is
            unreadable or needs more work than the budget allows.
        """
        span = int(TIMELINE_SPAN.total_seconds())
        slot = int(now.timestamp()) // span
        key = (record.uri, record.version, record.calendar, slot)
        found = self._items.get(key)
        if found is None:
            found = self._expand(record, datetime.fromtimestamp(slot * span, UTC))
            self._items[key] = found
            self._held += len(found.instances) if isinstance(found, Timeline) else 0
            while len(self._items) > self.entries or (
                self._held > self.instances and len(self._items) > 1
            ):
                _, gone = self._items.popitem(last=False)
                self._held -= len(gone.instances) if isinstance(gone, Timeline) else 0
        else:
            self._items.move_to_end(key)
        if isinstance(found, CalendarError):
            raise type(found)(found.fault, found.where)
        return found

    def _expand(self, record: ConferenceRecord, start: datetime) -> Union[Timeline, CalendarError]:
        self.expansions += 1
        try:
            return Timeline.expand(calendar_of(record), start, start + TIMELINE_SPAN + HORIZON)
        except CalendarError as e:
            return e


#: The focus's cache of conference expansions.
TIMELINES = TimelineCache()


def timeline_of(record: ConferenceRecord, now: datetime) -> Timeline:
    """
    L{TimelineCache.get} of the shared L{TIMELINES}.
    """
    return TIMELINES.get(record, now)


def _within(
    schedule: Schedule, start: datetime, end: datetime, budget: Optional[Budget] = None
) -> List[Instance]:
    if isinstance(schedule, Timeline):
        return schedule.between(start, end)
    return instances(schedule, start, end, budget)


def current_instance(
    schedule: Schedule, now: datetime, early: timedelta = DEFAULT_EARLY_JOIN
) -> Optional[Instance]:
    """
    The instance open at C{now}: from C{early} before its start until its
    end.  Of several, the one that started first.
    """
    for instance in _within(schedule, now, now + early + timedelta(seconds=1)):
        if instance.start - early <= now < instance.end:
            return instance
    return None


def next_instance(schedule: Schedule, now: datetime) -> Optional[Instance]:
    """
    The first instance that starts after C{now}, within L{HORIZON}.
    """
    for instance in _within(schedule, now, now + HORIZON):
        if instance.start > now:
            return instance
    return None


def is_over(schedule: Schedule, now: datetime) -> bool:
    """
    Whether no instance is on now or to come within L{HORIZON}.
    """
    return not any(i.end > now for i in _within(schedule, now, now + HORIZON))


def first_overlap(
    mine: Sequence[Instance], theirs: Sequence[Instance], budget: Optional[Budget] = None
) -> Optional[Tuple[Instance, Instance]]:
    """
    An instance of C{mine} and one of C{theirs} that overlap (their
    C{[start, end)} intervals share some time), or L{None}: one sweep over
    both lists, each sorted by start, so O(n + m) instead of comparing every
    pair.  Each instance swept costs one step of C{budget}, if given.
    """
    merged = heapq.merge(
        [(i.start, 0, i) for i in mine],
        [(i.start, 1, i) for i in theirs],
        key=lambda item: item[0],
    )
    # The instance of each side reaching furthest among those that
    # started before the current start.
    reach: List[Optional[Instance]] = [None, None]
    group: List[List[Instance]] = [[], []]
    start: Optional[datetime] = None

    def close_group() -> Optional[Tuple[Instance, Instance]]:
        # Instances starting together at `start`, against each other and
        # against those that started earlier.
        assert start is not None
        for side in (0, 1):
            other = reach[1 - side]
            if group[side] and other is not None and other.end > start:
                pair = (group[side][0], other)
                return pair if side == 0 else (pair[1], pair[0])
        live = [[i for i in group[side] if i.end > start] for side in (0, 1)]
        if live[0] and live[1]:
            return (live[0][0], live[1][0])
        for side in (0, 1):
            for i in group[side]:
                best = reach[side]
                if best is None or i.end > best.end:
                    reach[side] = i
            group[side] = []
        return None

    for at, side, instance in merged:
        if budget is not None:
            budget.charge()
        if start is not None and at != start:
            found = close_group()
            if found is not None:
                return found
        start = at
        group[side].append(instance)
    return close_group() if start is not None else None


def overlaps_busy(
    schedule: Schedule,
    busy: Sequence[Tuple[str, Tuple[datetime, datetime]]],
    now: datetime,
    window: timedelta,
) -> bool:
    """
    Whether an instance of C{schedule} between C{now} and C{now + window}
    overlaps one of C{busy}'s (FBTYPE, (start, end)) periods other than
    C{FREE}: busy time from outside (a room's CalDAV calendar) against a
    booking.  The periods are merged, then each instance is looked up by
    bisection, within one expansion L{Budget}.

    @raise conference.calendar.CalendarError: as L{instances}.
    """
    merged: List[List[datetime]] = []
    for kind, (start, end) in sorted(busy, key=lambda b: b[1][0]):
        if kind.upper() == "FREE" or end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    if not merged:
        return False
    ends = [period[1] for period in merged]
    for instance in _within(schedule, now, now + window, Budget()):
        # The first busy period ending after the instance starts.
        at = bisect_left(ends, instance.start + timedelta(microseconds=1))
        if at < len(merged) and merged[at][0] < instance.end:
            return True
    return False


def overlaps(
    first: Schedule, second: Schedule, now: datetime, horizon: timedelta = HORIZON
) -> bool:
    """
    Whether any instance of C{first} overlaps one of C{second} between
    C{now} and C{now + horizon} (for booking a conference URI twice): both
    expansions and the sweep within one L{Budget}.

    @raise conference.calendar.CalendarError: as L{instances}.
    """
    end, budget = now + horizon, Budget()
    theirs = _within(second, now, end, budget)
    if not theirs:
        return False
    return first_overlap(_within(first, now, end, budget), theirs, budget) is not None


def serialize(calendar: Component) -> bytes:
    """
    The RFC 6321 form stored in L{ConferenceRecord.calendar}.
    """
    return to_xcal(calendar)


def join_calendar(
    record: ConferenceRecord,
    calendar: Component,
    instance: Instance,
    now: datetime,
    roster: Sequence[str] = (),
) -> Component:
    """
    The VCALENDAR (METHOD REQUEST) handed to a joining participant: the
    current instance's VEVENT with ORGANIZER, ATTENDEEs and their PARTSTAT,
    DTSTART/DTEND of this instance in UTC, SUMMARY, DESCRIPTION, UID,
    SEQUENCE, STATUS and a CONFERENCE property (RFC 7986) with the
    conference URI (iSIP section 4.4).

    @param roster: addresses of the attendees who are in the conference
        now; they are shown ACCEPTED.  (Participants who are no attendee
        are not listed, so the rendering depends only on which attendees
        are in, and the focus can cache it.)
    """
    source = instance.event
    event = Component("VEVENT")
    add = event.properties.append
    add(Property("UID", source.value("UID", record.uid)))
    add(Property("DTSTAMP", now.replace(microsecond=0)))
    if instance.recurrence_id is not None:
        add(Property("RECURRENCE-ID", instance.recurrence_id.replace(microsecond=0)))
    add(Property("DTSTART", instance.start.replace(microsecond=0)))
    add(Property("DTEND", instance.end.replace(microsecond=0)))
    add(Property("SEQUENCE", int(source.value("SEQUENCE", record.sequence) or 0)))
    add(Property("STATUS", str(source.value("STATUS", "CONFIRMED")).upper()))
    for name in ("SUMMARY", "DESCRIPTION", "LOCATION", "ORGANIZER"):
        prop = source.get(name)
        if prop is not None:
            add(prop.copy())
    in_now = {normalize_address(a) for a in roster}
    for prop in source.get_all("ATTENDEE"):
        copy = prop.copy()
        if prop.values and normalize_address(str(prop.values[0])) in in_now:
            copy.params["PARTSTAT"] = ("ACCEPTED",)
        add(copy)
    add(
        Property(
            "CONFERENCE",
            record.uri,
            {"VALUE": "URI", "FEATURE": ("AUDIO",), "LABEL": "Join by SIP"},
            cv.URI,
        )
    )
    # Every time is in UTC, so the calendar needs no VTIMEZONE.
    return new_calendar(PRODID, "REQUEST", [event])


# Bookings (for the scheduler) ---------------------------------------------

SCHEDULER_PRODID = "-//conference//iSIP scheduler//EN"
BUSY_STATUS = ("4.0", "Event conflict. Date-time is busy.")
CONFERENCE_CUTYPES = frozenset(["ROOM", "RESOURCE"])


def scheduling_components(calendar: Component) -> List[Component]:
    """
    The components of C{calendar} other than VTIMEZONE.
    """
    return [c for c in calendar.components if c.name != "VTIMEZONE"]


def uids_of(calendar: Component) -> List[str]:
    """
    The distinct UIDs of the scheduling components, in order.
    """
    out: List[str] = []
    for comp in scheduling_components(calendar):
        uid = comp.value("UID")
        if isinstance(uid, str) and uid not in out:
            out.append(uid)
    return out


def subset(
    calendar: Component, keep: Callable[[str], bool], method: Optional[str] = None
) -> Component:
    """
    A VCALENDAR with the VTIMEZONEs of C{calendar} and copies of its
    scheduling components whose UID C{keep} accepts.
    """
    zones = [c.copy() for c in calendar.components if c.name == "VTIMEZONE"]
    comps = [c.copy() for c in scheduling_components(calendar) if keep(str(c.value("UID", "")))]
    return new_calendar(SCHEDULER_PRODID, method, zones + comps)


def is_conference_attendee(prop: Property, uri: str) -> bool:
    """
    Whether ATTENDEE C{prop} is the conference C{uri} (CUTYPE ROOM or
    RESOURCE).
    """
    return (
        isinstance(prop.value, str)
        and normalize_address(prop.value) == uri
        and (prop.param("CUTYPE") or "").upper() in CONFERENCE_CUTYPES
    )


def lists_conference(calendar: Component, uri: str) -> bool:
    """
    Whether every master component (or, without masters, every component)
    invites C{uri} as a ROOM or RESOURCE attendee.
    """
    comps = [c for c in scheduling_components(calendar) if c.get("RECURRENCE-ID") is None]
    comps = comps or scheduling_components(calendar)
    return bool(comps) and all(
        any(is_conference_attendee(a, uri) for a in c.get_all("ATTENDEE")) for c in comps
    )


def decline(calendar: Component, uri: str, now: float) -> Outgoing:
    """
    The conference's REPLY DECLINED (REQUEST-STATUS 4.0) to a REQUEST
    that would double-book it, addressed to the ORGANIZER.
    """
    stamp = datetime.fromtimestamp(int(now), UTC)
    replies: List[Component] = []
    organizer: Optional[str] = None
    for comp in scheduling_components(calendar):
        reply = Component(
            comp.name,
            [
                p.copy()
                for p in comp.properties
                if p.name not in ("ATTENDEE", "DTSTAMP", "REQUEST-STATUS")
            ],
        )
        reply.add("DTSTAMP", stamp)
        reply.add("ATTENDEE", uri, {"CUTYPE": "ROOM", "PARTSTAT": "DECLINED"})
        reply.add("REQUEST-STATUS", list(BUSY_STATUS))
        replies.append(reply)
        value = comp.value("ORGANIZER")
        if organizer is None and isinstance(value, str):
            organizer = value
    zones = [c.copy() for c in calendar.components if c.name == "VTIMEZONE"]
    reply_calendar = new_calendar(SCHEDULER_PRODID, "REPLY", zones + replies)
    return Outgoing("REPLY", (organizer,) if organizer else (), reply_calendar)


def all_cancelled(calendar: Component) -> bool:
    masters = master_events(calendar) or scheduling_components(calendar)
    return bool(masters) and all(str(c.value("STATUS", "")).upper() == "CANCELLED" for c in masters)


def prune(calendar: Component, keep_uid: str, now: float) -> Component:
    """
    Drop from a conference's calendar the other bookings (UIDs) that are
    cancelled or over, so a reused conference URI does not accumulate
    them.
    """
    from conference.app.conferences import is_over

    now_dt = utc_datetime(now)
    gone: Set[str] = set()
    for uid in uids_of(calendar):
        if uid == keep_uid:
            continue
        alone = subset(calendar, lambda u, uid=uid: u == uid)  # type: ignore[misc]
        if all_cancelled(alone) or is_over(alone, now_dt):
            gone.add(uid)
    if not gone:
        return calendar
    kept = calendar.copy()
    kept.components = [
        c for c in kept.components if c.name == "VTIMEZONE" or c.value("UID") not in gone
    ]
    return kept


def owner_of(record: ConferenceRecord) -> str:
    """
    The owner of a stored conference, whose its URI and bindings are: the
    organizer who created it (for a record stored without one, its
    organizer).
    """
    return record.owner or record.organizer


def record_for(
    uri: str, state: Component, previous: Optional[ConferenceRecord], now: float
) -> ConferenceRecord:
    """
    The conference record holding C{state}: its UID, ORGANIZER and SEQUENCE
    are those of the first booking (the previous record's when it is still
    there), its state C{cancelled} when every booking is.  Its owner is the
    previous record's: the organizer who created it, whoever books it later.
    """
    masters = master_events(state) or scheduling_components(state)
    primary = masters[0]
    if previous is not None:
        for master in masters:
            if master.value("UID") == previous.uid:
                primary = master
                break
    organizer = primary.value("ORGANIZER")
    sequence = primary.value("SEQUENCE", 0)
    address = normalize_address(organizer) if isinstance(organizer, str) else ""
    return ConferenceRecord(
        uri=uri,
        uid=str(primary.value("UID")),
        organizer=address,
        calendar=to_xcal(state),
        sequence=sequence if isinstance(sequence, int) else 0,
        state=CANCELLED if all_cancelled(state) else SCHEDULED,
        settings=dict(previous.settings) if previous is not None else {},
        version=previous.version if previous is not None else 0,
        created=previous.created if previous is not None else now,
        updated=now,
        owner=owner_of(previous) if previous is not None else address,
    )
