# -*- test-case-name: tests.unit.calendar.test_timezones -*-
"""
Turning the model's date and time values into instants: TZID parameters
resolve to C{zoneinfo} zones (by IANA name, or through the calendar's
VTIMEZONE when the name is not an IANA one), DATE values and floating
times are placed in a caller-chosen zone.  Free/busy and iTIP ordering
both need this, and neither may guess.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any, Dict, Iterable, Optional, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from conference.calendar import ical
from conference.calendar.errors import CalendarValueError, ExpansionError
from conference.calendar.model import Component, Property
from conference.calendar.recur import Recur
from conference.calendar.recurrence import EARLIEST, Budget, occurrences
from conference.calendar.values import UTC

DateOrDateTime = Union[date, datetime]


class TimezoneResolver:
    """
    Resolves TZIDs for one set of calendars.

    A TZID is looked up, in order: as an IANA name in C{zoneinfo}; as the
    last one or two path segments of a vendor-prefixed name
    (C{/softwarestudio.org/Olson_20011030_5/Europe/Helsinki}); as a
    VTIMEZONE of the calendars given, converted with the C{icalendar}
    library.  Results are cached per resolver.

    @ivar floating: the zone for floating times and DATE values.
    """

    def __init__(self, calendars: Iterable[Component] = (), floating: tzinfo = UTC) -> None:
        self.floating = floating
        self._vtimezones: Dict[str, Component] = {}
        for cal in calendars:
            for vtz in cal.walk("VTIMEZONE"):
                tzid = vtz.value("TZID")
                if isinstance(tzid, str):
                    self._vtimezones[tzid] = vtz
        self._cache: Dict[str, tzinfo] = {}

    def add_calendar(self, calendar: Component) -> None:
        """
        Make the VTIMEZONEs of C{calendar} available too.
        """
        for vtz in calendar.walk("VTIMEZONE"):
            tzid = vtz.value("TZID")
            if isinstance(tzid, str):
                self._vtimezones.setdefault(tzid, vtz)

    def zone(self, tzid: str) -> tzinfo:
        """
        The zone for C{tzid}.

        @raise CalendarValueError: if neither zoneinfo nor a VTIMEZONE
            knows it.
        """
        found = self._cache.get(tzid)
        if found is not None:
            return found
        zone = _iana(tzid)
        if zone is None and tzid in self._vtimezones:
            zone = _from_vtimezone(self._vtimezones[tzid])
        if zone is None:
            raise CalendarValueError(f"unknown time zone {tzid!r}", "TZID")
        self._cache[tzid] = zone
        return zone

    def to_utc(self, value: DateOrDateTime, tzid: Optional[str] = None) -> datetime:
        """
        The UTC instant of a DATE or DATE-TIME value: aware values are
        converted, naive ones are read in C{tzid}'s zone (or the floating
        zone), a DATE is its midnight in that zone.
        """
        if isinstance(value, datetime):
            if value.tzinfo is not None:
                return value.astimezone(UTC)
            zone = self.zone(tzid) if tzid else self.floating
            return value.replace(tzinfo=zone).astimezone(UTC)
        zone = self.zone(tzid) if tzid else self.floating
        return datetime.combine(value, time(0), tzinfo=zone).astimezone(UTC)

    def local(self, value: DateOrDateTime, tzid: Optional[str] = None) -> datetime:
        """
        The value as a naive wall-clock datetime in its own zone (UTC
        values stay in UTC), the form recurrence expansion works in.
        """
        if isinstance(value, datetime):
            if value.tzinfo is not None:
                return value.astimezone(UTC).replace(tzinfo=None)
            return value
        return datetime.combine(value, time(0))

    def zone_of(self, value: DateOrDateTime, tzid: Optional[str]) -> tzinfo:
        """
        The zone L{local} values of C{value} are expressed in.
        """
        if isinstance(value, datetime) and value.tzinfo is not None:
            return UTC
        return self.zone(tzid) if tzid else self.floating

    def property_utc(self, prop: Property) -> datetime:
        """
        The UTC instant of a DTSTART-like property's first value.

        @raise CalendarValueError: if it holds no date or date-time.
        """
        value = prop.value
        if not isinstance(value, date):
            raise CalendarValueError("not a date or date-time", prop.name)
        return self.to_utc(value, prop.param("TZID"))


def _iana(tzid: str) -> Optional[tzinfo]:
    candidates = [tzid.strip()]
    pieces = [p for p in tzid.strip().split("/") if p]
    if len(pieces) > 2:
        candidates.append("/".join(pieces[-2:]))
    if len(pieces) > 1:
        candidates.append(pieces[-1])
    for name in candidates:
        if not name or ".." in name or name.startswith("/"):
            continue
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            continue
    return None


#: An observance's RRULE must be YEARLY and give between one and
#: C{2 * OBSERVANCE_YEARS} onsets in its first C{OBSERVANCE_YEARS} years.
OBSERVANCE_YEARS = 8
_OBSERVANCE_STEPS = 400 * OBSERVANCE_YEARS


def observances_bounded(vtz: Component) -> bool:
    """
    Whether converting C{vtz} costs a bounded amount of work.  dateutil
    iterates each observance's RRULE from its DTSTART at every lookup, so
    a rule that is not YEARLY, starts before
    L{conference.calendar.recurrence.EARLIEST}, never matches or matches
    too often could block the server (a MINUTELY rule from 1970 takes
    minutes); real time zones change offset once or twice a year.
    """
    for observance in vtz.components:
        for prop in observance.get_all("RRULE"):
            recur, start = prop.value, observance.value("DTSTART")
            if not isinstance(recur, Recur) or recur.freq != "YEARLY":
                return False
            if not isinstance(start, datetime) or start.replace(tzinfo=None) < EARLIEST:
                return False
            first = start.replace(tzinfo=None, microsecond=0)
            end = first + timedelta(days=366 * OBSERVANCE_YEARS)
            budget = Budget(_OBSERVANCE_STEPS)
            try:
                onsets = sum(1 for _ in occurrences(recur, first, before=end, budget=budget))
            except ExpansionError:
                return False
            if not 1 <= onsets <= 2 * OBSERVANCE_YEARS:
                return False
    return True


def _from_vtimezone(vtz: Component) -> Optional[tzinfo]:
    # icalendar knows how to turn a VTIMEZONE into a tzinfo; hand it the
    # component as text, once it is known to be cheap to convert.
    from icalendar import Timezone

    if not observances_bounded(vtz):
        return None
    try:
        text = ical.dumps(vtz)
        parsed = Timezone.from_ical(text)
        to_tz: Any = parsed.to_tz  # type: ignore[attr-defined]
        zone = to_tz()
    except Exception:  # icalendar raises a variety of errors on odd rules
        return None
    return zone if isinstance(zone, tzinfo) else None


__all__ = ["OBSERVANCE_YEARS", "TimezoneResolver", "observances_bounded"]
