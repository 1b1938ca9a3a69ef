# -*- test-case-name: tests.unit.calendar.test_storable -*-
"""
What may be stored: the checks the result of an accepted iTIP message
passes before the server keeps it, with the very limits that the xCal
reader and the expander apply later, so that a stored calendar can always
be read back, expanded within its work budget and cancelled.  A failure is
a refusal with a REQUEST-STATUS, at input, instead of an error at every
later INVITE.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Iterable, Optional

from conference.calendar import values as cv
from conference.calendar import xcal
from conference.calendar.errors import CalendarError, ExpansionError, RequestStatus, status
from conference.calendar.expansion import expand, is_cancelled_event, live_masters, until_local
from conference.calendar.model import Component, Property, new_calendar
from conference.calendar.recurrence import (
    ACCEPT_STEPS,
    EARLIEST,
    HORIZON,
    LATEST,
    LONGEST_WINDOW,
    MAX_DURATION,
    Budget,
    occurrences,
    rule_problem,
)
from conference.calendar.timezones import TimezoneResolver
from conference.calendar.xcal_reader import MAX_NESTING

UTC = cv.UTC
#: The properties holding the dates of a component's instances.
DATED = ("DTSTART", "DTEND", "DUE", "RECURRENCE-ID", "RDATE", "EXDATE")


class Unstorable(Exception):
    """
    Why a component cannot be stored, as a REQUEST-STATUS.
    """

    def __init__(self, name: str, data: str) -> None:
        super().__init__(data)
        self.status = status(name, data)


def check_storable(
    state: Component,
    changed: Iterable[Component],
    *,
    now: datetime,
    budget: Optional[Budget] = None,
) -> Optional[RequestStatus]:
    """
    Why C{state}, a VCALENDAR about to be stored, may not be; L{None} if
    it may.

    Each component of C{changed} (those the message added or replaced)
    must nest no deeper than the readers allow and read back from xCal;
    unless cancelled, its dates must lie within L{EARLIEST} and L{LATEST},
    it must not end before it starts nor last longer than L{MAX_DURATION},
    and its RRULE must be one RFC 5545 allows that produces an instance
    within L{HORIZON} of DTSTART (3.6 otherwise).  Then every live event of
    C{state} together must expand within C{budget} (by default
    L{ACCEPT_STEPS}, half what run time allows): rules with COUNT to their
    last instance, the others over L{LONGEST_WINDOW} from C{now} (3.10
    otherwise).

    @param now: aware datetime.
    """
    if budget is None:
        budget = Budget(ACCEPT_STEPS)
    resolver = TimezoneResolver([state])
    try:
        for comp in changed:
            if comp.name != "VTIMEZONE":
                _check_component(comp, resolver, budget)
        for master, overrides in live_masters(state):
            rrule = master.get("RRULE")
            counted = rrule is not None and getattr(rrule.value, "count", None) is not None
            end = LATEST.replace(tzinfo=UTC) if counted else now + LONGEST_WINDOW
            for _ in expand(master, overrides, now, end, resolver=resolver, budget=budget):
                pass
    except Unstorable as e:
        return e.status
    except ExpansionError as e:
        return status("too-large" if budget.spent > budget.limit else "invalid-date", e.fault)
    except CalendarError as e:
        return status("invalid-property-value", str(e))
    return None


def _check_component(comp: Component, resolver: TimezoneResolver, budget: Budget) -> None:
    stack = [(comp, 2)]  # under its VCALENDAR
    while stack:
        node, level = stack.pop()
        if level > MAX_NESTING:
            raise Unstorable("too-large", f"components nested deeper than {MAX_NESTING}")
        stack.extend((sub, level + 1) for sub in node.components)
    try:
        xcal.loads(xcal.dumps(new_calendar(components=[comp])))
    except CalendarError as e:
        raise Unstorable("invalid-property-value", f"cannot be stored: {e}") from None
    if is_cancelled_event(comp):
        return  # never expanded again; it must stay cancellable
    _check_dates(comp, resolver)
    rrule = comp.get("RRULE")
    if rrule is not None and comp.get("RECURRENCE-ID") is None:
        _check_rule(comp, rrule, resolver, budget)


def _check_dates(comp: Component, resolver: TimezoneResolver) -> None:
    for name in DATED:
        for prop in comp.get_all(name):
            for value in prop.values:
                if isinstance(value, cv.Period):
                    _in_range(name, value.start, resolver)
                    _length_ok(name, _period_length(value))
                elif isinstance(value, date):
                    _in_range(name, value, resolver)
    start = comp.get("DTSTART")
    end = comp.get("DTEND") or comp.get("DUE")
    if start is not None and end is not None:
        if isinstance(start.value, datetime) != isinstance(end.value, datetime):
            raise Unstorable("invalid-date", f"{end.name} and DTSTART mix a DATE and a DATE-TIME")
        length = _utc(end, resolver) - _utc(start, resolver)
        if length < timedelta(0):
            raise Unstorable("invalid-date", f"{end.name} is before DTSTART")
        _length_ok(end.name, length)
    duration = comp.value("DURATION")
    if isinstance(duration, timedelta):
        if duration < timedelta(0):
            raise Unstorable("invalid-property-value", "DURATION is negative")
        _length_ok("DURATION", duration)


def _in_range(name: str, value: date, resolver: TimezoneResolver) -> None:
    local = resolver.local(value)
    if not EARLIEST <= local <= LATEST:
        raise Unstorable(
            "invalid-date",
            f"{name} {local.isoformat()} is outside the years {EARLIEST.year}-{LATEST.year - 1}",
        )


def _period_length(period: cv.Period) -> timedelta:
    if period.end is None:
        assert period.duration is not None
        return period.duration
    try:
        return period.end - period.start
    except TypeError:  # one end in UTC, the other floating
        raise Unstorable("invalid-date", "a period mixes UTC and local times") from None


def _length_ok(name: str, length: timedelta) -> None:
    if length < timedelta(0):
        raise Unstorable("invalid-date", f"{name} ends before it starts")
    if length > MAX_DURATION:
        raise Unstorable("invalid-date", f"{name} lasts longer than {MAX_DURATION.days} days")


def _utc(prop: Property, resolver: TimezoneResolver) -> datetime:
    return resolver.to_utc(prop.value, prop.param("TZID"))


def _check_rule(
    comp: Component, rrule: Property, resolver: TimezoneResolver, budget: Budget
) -> None:
    recur = rrule.value
    if not isinstance(recur, cv.Recur):
        raise Unstorable("invalid-rule", "RRULE is not a RECUR value")
    problem = rule_problem(recur)
    if problem is not None:
        raise Unstorable("invalid-rule", problem)
    start = comp.get("DTSTART")
    if start is None or not isinstance(start.value, date):
        raise Unstorable("missing", "DTSTART (an RRULE needs one)")
    tzid = start.param("TZID")
    local = resolver.local(start.value, tzid)
    zone = resolver.zone_of(start.value, tzid)
    until = until_local(recur, zone, not isinstance(start.value, datetime))
    first = occurrences(recur, local, until=until, before=local + HORIZON, budget=budget)
    if next(first, None) is None:
        raise Unstorable(
            "invalid-rule",
            f"RRULE {cv.format_recur(recur)} has no instance within {HORIZON.days} days of DTSTART",
        )


__all__ = ["DATED", "Unstorable", "check_storable"]
