# -*- test-case-name: tests.unit.calendar.test_freebusy -*-
"""
Free/busy time from a calendar user's events: the VFREEBUSY the server
publishes (iSIP section 4.5) and the "next free slot" that the 486 Busy
Here path turns into Retry-After.  Recurrences are expanded by
L{conference.calendar.expansion} within one work budget per computation, so
a hostile rule costs at most the budget.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, tzinfo
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

from conference.calendar import values as cv
from conference.calendar.errors import CalendarError, FreeBusyError
from conference.calendar.expansion import expand
from conference.calendar.model import Component, Property
from conference.calendar.recurrence import MAX_STEPS, Budget
from conference.calendar.timezones import TimezoneResolver

UTC = cv.UTC
Interval = Tuple[datetime, datetime]

#: Most busy instances collected over all events (the work of expanding
#: them is bounded by L{MAX_STEPS}, shared by all events of one call).
MAX_INSTANCES = 100_000

FBTYPE_ORDER = ("BUSY", "BUSY-UNAVAILABLE", "BUSY-TENTATIVE")


def _aware(value: datetime, what: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise FreeBusyError(f"{what} must be a timezone-aware datetime")
    return value.astimezone(UTC)


def fbtype_of(event: Component, user: Optional[str] = None) -> Optional[str]:
    """
    The FBTYPE an event contributes, or L{None} if it does not count:
    CANCELLED and TRANSPARENT events do not; TENTATIVE ones are
    BUSY-TENTATIVE; if C{user} is an attendee, DECLINED drops the event
    and TENTATIVE / NEEDS-ACTION make it BUSY-TENTATIVE.
    """
    status = str(event.value("STATUS", "")).upper()
    if status == "CANCELLED":
        return None
    if str(event.value("TRANSP", "OPAQUE")).upper() == "TRANSPARENT":
        return None
    kind = "BUSY-TENTATIVE" if status == "TENTATIVE" else "BUSY"
    if user is not None:
        wanted = _norm(user)
        for att in event.get_all("ATTENDEE"):
            if isinstance(att.value, str) and _norm(att.value) == wanted:
                partstat = att.param("PARTSTAT", "NEEDS-ACTION")
                if partstat == "DECLINED":
                    return None
                if partstat in ("TENTATIVE", "NEEDS-ACTION"):
                    kind = "BUSY-TENTATIVE"
    return kind


def _norm(address: str) -> str:
    return address.strip().lower()


def busy_intervals(
    sources: Iterable[Component],
    start: datetime,
    end: datetime,
    *,
    user: Optional[str] = None,
    floating: tzinfo = UTC,
    max_steps: int = MAX_STEPS,
    max_instances: int = MAX_INSTANCES,
) -> Dict[str, List[Interval]]:
    """
    Busy time per FBTYPE within C{[start, end)}, merged and sorted, in
    UTC, from VCALENDARs and/or bare VEVENTs (see L{fbtype_of} for what
    counts).  Instances are clipped to the window.

    @param max_steps: the work budget of the whole computation (see
        L{conference.calendar.recurrence.Budget}).
    @raise FreeBusyError: on a bad window or unusable event data, or when
        expanding needs more than C{max_steps} steps.
    """
    start = _aware(start, "start")
    end = _aware(end, "end")
    if end <= start:
        raise FreeBusyError("window end must be after its start")
    sources = list(sources)
    resolver = TimezoneResolver([s for s in sources if s.name == "VCALENDAR"], floating)
    events: List[Component] = []
    for src in sources:
        events.extend(src.walk("VEVENT"))
    masters: Dict[str, Component] = {}
    overrides: Dict[str, List[Component]] = {}
    loose: List[Component] = []
    for ev in events:
        uid = ev.value("UID")
        if not isinstance(uid, str):
            loose.append(ev)
        elif ev.get("RECURRENCE-ID") is not None:
            overrides.setdefault(uid, []).append(ev)
        else:
            masters[uid] = ev
    found: Dict[str, List[Interval]] = {}
    total = 0
    budget = Budget(max_steps)
    try:
        work: List[Tuple[Component, Sequence[Component]]] = [
            (m, overrides.pop(uid, [])) for uid, m in masters.items()
        ]
        work.extend((ev, ()) for ev in loose)
        for orphans in overrides.values():  # overrides without their master
            work.extend((ov, ()) for ov in orphans)
        for master, ovs in work:
            for s, e, comp in expand(master, ovs, start, end, resolver=resolver, budget=budget):
                kind = fbtype_of(comp, user)
                if kind is None:
                    continue
                found.setdefault(kind, []).append((max(s, start), min(e, end)))
                total += 1
                if total >= max_instances:
                    break
            if total >= max_instances:
                break
    except CalendarError as e:
        raise FreeBusyError(e.fault, e.where) from None
    return {kind: merge(found[kind]) for kind in FBTYPE_ORDER if kind in found}


def merge(intervals: Iterable[Interval]) -> List[Interval]:
    """
    Sort and merge overlapping or touching intervals.
    """
    out: List[Interval] = []
    for s, e in sorted(intervals):
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def build_freebusy(
    sources: Iterable[Component],
    start: datetime,
    end: datetime,
    now: datetime,
    *,
    organizer: Optional[str] = None,
    attendee: Optional[str] = None,
    uid: Optional[str] = None,
    floating: tzinfo = UTC,
    max_steps: int = MAX_STEPS,
    max_instances: int = MAX_INSTANCES,
) -> Component:
    """
    Build one VFREEBUSY for C{attendee} (the calendar user whose events
    C{sources} are) over C{[start, end)}: DTSTAMP C{now}, UID (derived
    from the inputs if not given), ORGANIZER / ATTENDEE when given,
    DTSTART/DTEND in UTC and one FREEBUSY property per FBTYPE (BUSY,
    BUSY-UNAVAILABLE, BUSY-TENTATIVE, in that order) listing its merged
    periods sorted by start.

    @param now: aware datetime, the DTSTAMP.
    @raise FreeBusyError: on a bad window or unusable event data.
    """
    now = _aware(now, "now")
    busy = busy_intervals(
        sources,
        start,
        end,
        user=attendee,
        floating=floating,
        max_steps=max_steps,
        max_instances=max_instances,
    )
    start = start.astimezone(UTC)
    end = end.astimezone(UTC)
    if uid is None:
        seed = f"{attendee}|{organizer}|{start.isoformat()}|{end.isoformat()}|{now.isoformat()}"
        uid = "fb-" + hashlib.sha256(seed.encode("utf-8")).hexdigest()[:32]
    fb = Component("VFREEBUSY")
    props = fb.properties
    props.append(Property("DTSTAMP", now.replace(microsecond=0), None, cv.DATE_TIME))
    props.append(Property("UID", uid, None, cv.TEXT))
    if organizer is not None:
        props.append(Property("ORGANIZER", organizer, None, cv.CAL_ADDRESS))
    if attendee is not None:
        props.append(Property("ATTENDEE", attendee, None, cv.CAL_ADDRESS))
    props.append(Property("DTSTART", start.replace(microsecond=0), None, cv.DATE_TIME))
    props.append(Property("DTEND", end.replace(microsecond=0), None, cv.DATE_TIME))
    for kind, intervals in busy.items():
        periods = [
            cv.Period(s.replace(microsecond=0), e.replace(microsecond=0)) for s, e in intervals
        ]
        props.append(Property("FREEBUSY", periods, {"FBTYPE": kind}, cv.PERIOD))
    return fb


Busy = Union[Component, Iterable[Union[cv.Period, Interval]]]


def _intervals_of(busy: Busy) -> Tuple[List[Interval], Optional[datetime]]:
    if isinstance(busy, Component):
        comps = list(busy.walk("VFREEBUSY"))
        if not comps:
            raise FreeBusyError("no VFREEBUSY component given")
        out: List[Interval] = []
        horizon: Optional[datetime] = None
        for fb in comps:
            dtend = fb.value("DTEND")
            if isinstance(dtend, datetime) and dtend.tzinfo is not None:
                horizon = dtend if horizon is None else max(horizon, dtend)
            for prop in fb.get_all("FREEBUSY"):
                if prop.param("FBTYPE", "BUSY") == "FREE":
                    continue
                for p in prop.values:
                    if isinstance(p, cv.Period):
                        out.append((_aware(p.start, "period start"), _aware(p.stop, "period end")))
        return out, horizon
    result: List[Interval] = []
    for item in busy:
        if isinstance(item, cv.Period):
            result.append((_aware(item.start, "period start"), _aware(item.stop, "period end")))
        else:
            result.append((_aware(item[0], "interval start"), _aware(item[1], "interval end")))
    return result, None


def next_free_slot(
    busy: Busy,
    duration: timedelta,
    at: datetime,
    until: Optional[datetime] = None,
) -> Optional[datetime]:
    """
    The earliest instant C{t >= at} such that C{[t, t + duration)} meets no
    busy period (any FBTYPE but FREE counts as busy).

    @param busy: a VFREEBUSY (or a component holding some) or periods /
        C{(start, end)} pairs of aware datetimes.
    @param duration: the slot length (positive).
    @param at: aware datetime to search from.
    @param until: the slot must end by then; for a VFREEBUSY the default
        is its DTEND (time beyond it is unknown, not free).
    @return: the slot start in UTC, or L{None} if none fits.
    @raise FreeBusyError: on naive datetimes or a non-positive duration.
    """
    if duration <= timedelta(0):
        raise FreeBusyError("slot duration must be positive")
    t = _aware(at, "at")
    intervals, horizon = _intervals_of(busy)
    limit = _aware(until, "until") if until is not None else horizon
    for s, e in merge(intervals):
        if e <= t:
            continue
        if s >= t + duration:
            break
        t = max(t, e)
    if limit is not None and t + duration > limit:
        return None
    return t


__all__ = [
    "FBTYPE_ORDER",
    "MAX_INSTANCES",
    "MAX_STEPS",
    "build_freebusy",
    "busy_intervals",
    "expand",
    "fbtype_of",
    "merge",
    "next_free_slot",
]
