# -*- test-case-name: tests.calendar.test_freebusy -*-
"""
Free/busy time from a calendar user's events: the VFREEBUSY the server
publishes (iSIP section 4.5) and the "next free slot" that the 486 Busy
Here path turns into Retry-After.  Recurrences are expanded here with
dateutil, bounded by a step cap so a hostile rule cannot spin.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from dateutil import rrule as du

from conference.calendar import values as cv
from conference.calendar.errors import CalendarError, FreeBusyError
from conference.calendar.model import Component, Property
from conference.calendar.timezones import TimezoneResolver

UTC = cv.UTC
Interval = Tuple[datetime, datetime]

#: Most recurrence steps taken per event; a rule needing more to reach the
#: window's end is clipped there (compare RFC 5546 status 2.11).
MAX_STEPS = 50_000
#: Most busy instances collected over all events.
MAX_INSTANCES = 100_000

FBTYPE_ORDER = ("BUSY", "BUSY-UNAVAILABLE", "BUSY-TENTATIVE")

_FREQ = {
    "YEARLY": du.YEARLY,
    "MONTHLY": du.MONTHLY,
    "WEEKLY": du.WEEKLY,
    "DAILY": du.DAILY,
    "HOURLY": du.HOURLY,
    "MINUTELY": du.MINUTELY,
    "SECONDLY": du.SECONDLY,
}
_WEEKDAY = {
    "MO": du.MO,
    "TU": du.TU,
    "WE": du.WE,
    "TH": du.TH,
    "FR": du.FR,
    "SA": du.SA,
    "SU": du.SU,
}


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


def _rule(recur: cv.Recur, dtstart: datetime, until_local: Optional[datetime]) -> du.rrule:
    by = recur.by
    weekdays = []
    for spec in by.get("BYDAY", ()):
        day = _WEEKDAY[spec[-2:]]
        n = spec[:-2]
        weekdays.append(day(int(n)) if n not in ("", "+", "-") else day)

    def ints(part: str) -> Optional[List[int]]:
        vals = by.get(part)
        return [int(v) for v in vals] if vals else None

    return du.rrule(
        _FREQ[recur.freq],
        dtstart=dtstart,
        interval=recur.interval or 1,
        wkst=_WEEKDAY[recur.wkst] if recur.wkst else None,
        count=recur.count,
        until=until_local,
        bysetpos=ints("BYSETPOS"),
        bymonth=ints("BYMONTH"),
        bymonthday=ints("BYMONTHDAY"),
        byyearday=ints("BYYEARDAY"),
        byweekno=ints("BYWEEKNO"),
        byweekday=weekdays or None,
        byhour=ints("BYHOUR"),
        byminute=ints("BYMINUTE"),
        bysecond=ints("BYSECOND"),
        cache=False,
    )


def _until_local(recur: cv.Recur, zone: tzinfo, is_date: bool) -> Optional[datetime]:
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


def expand(
    event: Component,
    overrides: Sequence[Component],
    start: datetime,
    end: datetime,
    *,
    resolver: TimezoneResolver,
    max_steps: int = MAX_STEPS,
) -> Iterator[Tuple[datetime, datetime, Component]]:
    """
    The instances of a (possibly recurring) VEVENT overlapping
    C{[start, end)}, as C{(utc_start, utc_end, component)} where the
    component is the master or the override (same UID, RECURRENCE-ID)
    that replaces that instance.  RRULE, RDATE (dates, date-times,
    periods) and EXDATE are honoured; RANGE=THISANDFUTURE is not.

    @raise CalendarError: on unusable dates, time zones or rules.
    """
    dtstart_prop = event.get("DTSTART")
    if dtstart_prop is None or not isinstance(dtstart_prop.value, date):
        return
    tzid = dtstart_prop.param("TZID")
    first = dtstart_prop.value
    is_date = not isinstance(first, datetime)
    zone = resolver.zone_of(first, tzid)
    local_start = resolver.local(first, tzid)
    duration = _duration(event, resolver, is_date)
    by_rid: Dict[datetime, Component] = {}
    for ov in overrides:
        rid = ov.get("RECURRENCE-ID")
        if rid is not None and isinstance(rid.value, date):
            by_rid[resolver.to_utc(rid.value, rid.param("TZID") or tzid)] = ov

    def utc(local: datetime) -> datetime:
        return local.replace(tzinfo=zone).astimezone(UTC)

    exdates = set()
    for ex in event.get_all("EXDATE"):
        for value in ex.values:
            if isinstance(value, date):
                exdates.add(resolver.to_utc(value, ex.param("TZID") or tzid))
    seen: set[datetime] = set()
    starts: List[Tuple[datetime, Optional[timedelta]]] = []
    rrule_prop = event.get("RRULE")
    window_end_local = end.astimezone(zone).replace(tzinfo=None)
    window_start_local = start.astimezone(zone).replace(tzinfo=None) - duration
    if rrule_prop is not None and isinstance(rrule_prop.value, cv.Recur):
        rule = _rule(rrule_prop.value, local_start, _until_local(rrule_prop.value, zone, is_date))
        for steps, inst in enumerate(rule, 1):
            if inst > window_end_local or steps > max_steps:
                break
            if inst >= window_start_local:
                starts.append((inst, None))
    else:
        starts.append((local_start, None))
    for rd in event.get_all("RDATE"):
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
    e = (local + _duration(comp, resolver, is_date)).replace(tzinfo=zone).astimezone(UTC)
    if s < end and e > start:
        yield (s, e, comp)


def _duration(event: Component, resolver: TimezoneResolver, is_date: bool) -> timedelta:
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

    @raise FreeBusyError: on a bad window or unusable event data.
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
    try:
        work: List[Tuple[Component, Sequence[Component]]] = [
            (m, overrides.pop(uid, [])) for uid, m in masters.items()
        ]
        work.extend((ev, ()) for ev in loose)
        for orphans in overrides.values():  # overrides without their master
            work.extend((ov, ()) for ov in orphans)
        for master, ovs in work:
            for s, e, comp in expand(
                master, ovs, start, end, resolver=resolver, max_steps=max_steps
            ):
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
    except (ValueError, OverflowError, KeyError) as e:
        raise FreeBusyError(f"cannot expand recurrence: {e}") from None
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
