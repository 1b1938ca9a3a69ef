# -*- test-case-name: tests.unit.calendar.test_expansion -*-
"""
The instances of events: a VEVENT's RRULE, RDATE, EXDATE and overridden
instances turned into UTC intervals over a window, and the live instances
of a whole calendar.  Free/busy, the focus, the scheduler and the input
checks all expand through here, each expansion within a work L{Budget}.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, tzinfo
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from conference.calendar import values as cv
from conference.calendar.errors import ExpansionError
from conference.calendar.model import Component
from conference.calendar.recurrence import Budget, occurrences
from conference.calendar.timezones import TimezoneResolver

UTC = cv.UTC


class Occurrence(NamedTuple):
    """
    One instance of an event.

    @ivar start: and C{end}: UTC.
    @ivar event: the VEVENT that describes it (the master, or the override
        with its RECURRENCE-ID).
    @ivar recurrence_id: the instance's original start (UTC) for a
        recurring event, else L{None}.
    """

    start: datetime
    end: datetime
    event: Component
    recurrence_id: Optional[datetime]


def until_local(recur: cv.Recur, zone: tzinfo, is_date: bool) -> Optional[datetime]:
    """
    A rule's UNTIL as a wall-clock time of C{zone}, the form the rule is
    iterated in (a DATE UNTIL of a date-time event ends with its day).
    """
    until = recur.until
    if until is None:
        return None
    if isinstance(until, datetime):
        if until.tzinfo is not None:
            return until.astimezone(zone).replace(tzinfo=None)
        return until
    if is_date:
        return datetime.combine(until, time(0))
    return datetime.combine(until, time(23, 59, 59))


def duration_of(event: Component, resolver: TimezoneResolver, is_date: bool) -> timedelta:
    """
    How long each instance of C{event} lasts in wall-clock time: DTEND
    minus DTSTART, else DURATION, else a day for a DATE event and nothing
    for a date-time one (never negative).
    """
    dtend = event.get("DTEND")
    dtstart = event.get("DTSTART")
    if dtend is not None and dtstart is not None and isinstance(dtend.value, date):
        start_local = resolver.local(dtstart.value, dtstart.param("TZID"))
        if dtend.param("TZID") == dtstart.param("TZID") or dtend.param("TZID") is None:
            end_local = resolver.local(dtend.value, dtend.param("TZID") or dtstart.param("TZID"))
        else:
            zone = resolver.zone_of(dtstart.value, dtstart.param("TZID"))
            end_local = (
                resolver.to_utc(dtend.value, dtend.param("TZID"))
                .astimezone(zone)
                .replace(tzinfo=None)
            )
        return max(end_local - start_local, timedelta(0))
    duration = event.value("DURATION")
    if isinstance(duration, timedelta):
        return max(duration, timedelta(0))
    return timedelta(days=1) if is_date else timedelta(0)


def expand(
    event: Component,
    overrides: Sequence[Component],
    start: datetime,
    end: datetime,
    *,
    resolver: TimezoneResolver,
    budget: Optional[Budget] = None,
) -> Iterator[Tuple[datetime, datetime, Component]]:
    """
    The instances of a (possibly recurring) VEVENT overlapping
    C{[start, end)}, as C{(utc_start, utc_end, component)} where the
    component is the master or the override (same UID, RECURRENCE-ID)
    that replaces that instance.  RRULE, RDATE (dates, date-times,
    periods) and EXDATE are honoured; RANGE=THISANDFUTURE is not.

    Recurrences are expanded in the event's wall-clock time, so a 10:00
    meeting stays at 10:00 across daylight saving changes.

    @param budget: the work allowed (a fresh L{Budget} if not given); each
        rule step, RDATE, EXDATE and override costs one.
    @raise CalendarError: on unusable dates, time zones or rules, and
        L{ExpansionError} once the budget is spent.
    """
    try:
        yield from _expand(
            event,
            overrides,
            (start, end),
            resolver=resolver,
            budget=budget if budget is not None else Budget(),
        )
    except (OverflowError, ValueError, TypeError, KeyError) as e:
        # dates past the calendar, UTC mixed with local times in a period,
        # rule values no reader would produce
        raise ExpansionError(f"cannot expand {event.name}: {e}") from None


def _expand(
    event: Component,
    overrides: Sequence[Component],
    window: Tuple[datetime, datetime],
    *,
    resolver: TimezoneResolver,
    budget: Budget,
) -> Iterator[Tuple[datetime, datetime, Component]]:
    start, end = window
    dtstart_prop = event.get("DTSTART")
    if dtstart_prop is None or not isinstance(dtstart_prop.value, date):
        return
    tzid = dtstart_prop.param("TZID")
    first = dtstart_prop.value
    is_date = not isinstance(first, datetime)
    zone = resolver.zone_of(first, tzid)
    local_start = resolver.local(first, tzid)
    duration = duration_of(event, resolver, is_date)
    by_rid: Dict[datetime, Component] = {}
    for ov in overrides:
        budget.charge()
        rid = ov.get("RECURRENCE-ID")
        if rid is not None and isinstance(rid.value, date):
            by_rid[resolver.to_utc(rid.value, rid.param("TZID") or tzid)] = ov

    def utc(local: datetime) -> datetime:
        return local.replace(tzinfo=zone).astimezone(UTC)

    exdates = set()
    for ex in event.get_all("EXDATE"):
        budget.charge(len(ex.values))
        for value in ex.values:
            if isinstance(value, date):
                exdates.add(resolver.to_utc(value, ex.param("TZID") or tzid))
    seen: set[datetime] = set()
    starts: List[Tuple[datetime, Optional[timedelta]]] = []
    rrule_prop = event.get("RRULE")
    window_end_local = end.astimezone(zone).replace(tzinfo=None)
    window_start_local = start.astimezone(zone).replace(tzinfo=None) - duration
    if rrule_prop is not None and isinstance(rrule_prop.value, cv.Recur):
        recur = rrule_prop.value
        for inst in occurrences(
            recur,
            local_start,
            until=until_local(recur, zone, is_date),
            after=window_start_local,
            before=window_end_local,
            budget=budget,
        ):
            if inst >= window_start_local:
                starts.append((inst, None))
    else:
        starts.append((local_start, None))
    for rd in event.get_all("RDATE"):
        budget.charge(len(rd.values))
        for value in rd.values:
            if isinstance(value, cv.Period):
                s = resolver.to_utc(value.start, rd.param("TZID") or tzid)
                starts.append((s.astimezone(zone).replace(tzinfo=None), value.stop - value.start))
            elif isinstance(value, date):
                s = resolver.to_utc(value, rd.param("TZID") or tzid)
                starts.append((s.astimezone(zone).replace(tzinfo=None), None))
    for local, own in starts:
        inst_utc = utc(local)
        if inst_utc in seen or inst_utc in exdates:
            continue
        seen.add(inst_utc)
        override = by_rid.pop(inst_utc, None)
        if override is not None:
            yield from _single(override, start, end, resolver, tzid)
            continue
        stop = utc(local + (own if own is not None else duration))
        if inst_utc < end and stop > start:
            yield (inst_utc, stop, event)
    for override in by_rid.values():  # overrides moved from outside the window
        yield from _single(override, start, end, resolver, tzid)


def _single(
    comp: Component, start: datetime, end: datetime, resolver: TimezoneResolver, tzid: Optional[str]
) -> Iterator[Tuple[datetime, datetime, Component]]:
    prop = comp.get("DTSTART")
    if prop is None or not isinstance(prop.value, date):
        return
    is_date = not isinstance(prop.value, datetime)
    own_tzid = prop.param("TZID") or tzid
    zone = resolver.zone_of(prop.value, own_tzid)
    local = resolver.local(prop.value, own_tzid)
    s = local.replace(tzinfo=zone).astimezone(UTC)
    e = (local + duration_of(comp, resolver, is_date)).replace(tzinfo=zone).astimezone(UTC)
    if s < end and e > start:
        yield (s, e, comp)


def is_cancelled_event(comp: Component) -> bool:
    """
    Whether a component's STATUS is CANCELLED.
    """
    return str(comp.value("STATUS", "")).upper() == "CANCELLED"


def live_masters(calendar: Component) -> List[Tuple[Component, List[Component]]]:
    """
    The VEVENTs of C{calendar} without RECURRENCE-ID that are not
    cancelled, each with its overrides (same UID, with RECURRENCE-ID).
    A cancelled master has no instances, whatever its overrides say.
    """
    overrides: Dict[str, List[Component]] = {}
    masters: List[Component] = []
    for comp in calendar.subcomponents("VEVENT"):
        if comp.get("RECURRENCE-ID") is None:
            masters.append(comp)
        else:
            overrides.setdefault(str(comp.value("UID")), []).append(comp)
    return [
        (m, overrides.get(str(m.value("UID")), []) if isinstance(m.value("UID"), str) else [])
        for m in masters
        if not is_cancelled_event(m)
    ]


def calendar_occurrences(
    calendar: Component,
    start: datetime,
    end: datetime,
    *,
    budget: Optional[Budget] = None,
    resolver: Optional[TimezoneResolver] = None,
) -> List[Occurrence]:
    """
    The live (not cancelled) instances of the events of a VCALENDAR
    overlapping C{[start, end)}, sorted by start then end, all within one
    work budget (a fresh L{Budget} if not given).

    @raise CalendarError: on unusable data, L{ExpansionError} once the
        budget is spent.
    """
    if budget is None:
        budget = Budget()
    if resolver is None:
        resolver = TimezoneResolver([calendar])
    found: List[Occurrence] = []
    for master, overrides in live_masters(calendar):
        recurring = master.get("RRULE") is not None or master.get("RDATE") is not None
        for s, e, comp in expand(master, overrides, start, end, resolver=resolver, budget=budget):
            if is_cancelled_event(comp):
                continue
            rid_prop = comp.get("RECURRENCE-ID")
            if rid_prop is not None and isinstance(rid_prop.value, datetime):
                rid: Optional[datetime] = resolver.property_utc(rid_prop)
            else:
                rid = s if recurring else None
            found.append(Occurrence(s, e, comp, rid))
    found.sort(key=lambda o: (o.start, o.end))
    return found


__all__ = [
    "Occurrence",
    "calendar_occurrences",
    "duration_of",
    "expand",
    "is_cancelled_event",
    "live_masters",
    "until_local",
]
