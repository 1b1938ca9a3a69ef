# -*- test-case-name: tests.unit.calendar.test_recurrence -*-
"""
RRULE iteration with a bound on the work it does.  Every day examined and
every candidate instant built is charged to a L{Budget}, so a rule that
never matches, or matches every second, costs at most the budget instead of
a scan to the year 9999.  Rules without COUNT start at the period holding
the window rather than at DTSTART, so what they cost follows the window,
not their age.

The instances are those python-dateutil's C{rrule} gives (the server used
it before; the tests compare the two), except that a BYDAY list mixing
plain and numbered weekdays means either, as RFC 5545 says, where dateutil
asks for both.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Dict, FrozenSet, Iterable, Iterator, List, Mapping, Optional, Tuple, TypeVar

from conference.calendar.errors import ExpansionError
from conference.calendar.recur import Recur

#: Work allowed to one expansion (the events of one calendar over one
#: window): days examined plus candidate instants built.
MAX_STEPS = 100_000
#: Work a calendar may need when it is stored: half of L{MAX_STEPS}, so the
#: same calendar expanded later, over a window that falls differently on
#: months and years, stays well within L{MAX_STEPS}.
ACCEPT_STEPS = MAX_STEPS // 2
#: How far ahead the server looks for instances (the next one, whether a
#: conference is over, booking conflicts); a rule must also produce an
#: instance within this span of its DTSTART.
HORIZON = timedelta(days=400)
#: The longest window expanded at run time: L{HORIZON} ahead of a moment up
#: to a day old (the focus expands a conference once a day and answers the
#: day's INVITEs from that).
LONGEST_WINDOW = HORIZON + timedelta(days=1)
#: The wall-clock range the server computes with: stored dates lie in it and
#: expansion stops at its end, so adding a duration or a UTC offset to an
#: instance can never overflow.
EARLIEST = datetime(1601, 1, 1)
LATEST = datetime(9000, 1, 1)
#: The longest instance (DTEND - DTSTART, DURATION or an RDATE period).
MAX_DURATION = timedelta(days=36_600)
#: How far before a window a rule without COUNT starts: the period holding
#: this instant, which covers any daylight saving shift.
SLACK = timedelta(hours=3)

YEARLY, MONTHLY, WEEKLY, DAILY, HOURLY, MINUTELY, SECONDLY = range(7)
FREQ_INDEX: Mapping[str, int] = {
    name: i
    for i, name in enumerate(
        ("YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY", "SECONDLY")
    )
}
WEEKDAY_INDEX: Mapping[str, int] = {
    name: i for i, name in enumerate(("MO", "TU", "WE", "TH", "FR", "SA", "SU"))
}
_UNIT = {HOURLY: 3600, MINUTELY: 60, SECONDLY: 1}
_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

IntSet = Optional[FrozenSet[int]]
_T = TypeVar("_T")


class Budget:
    """
    The work one expansion may do, shared by every rule it expands.

    @ivar limit: steps allowed.
    @ivar spent: steps charged so far (the work counter tests and logs read).
    @cvar total: steps charged by every budget since the process started.
    """

    __slots__ = ("limit", "spent")
    total = 0

    def __init__(self, limit: int = MAX_STEPS) -> None:
        self.limit = limit
        self.spent = 0

    def charge(self, steps: int = 1) -> None:
        """
        Spend C{steps}.

        @raise ExpansionError: once more than C{limit} are spent.
        """
        self.spent += steps
        Budget.total += steps
        if self.spent > self.limit:
            raise ExpansionError(f"recurrences need more than {self.limit} steps to expand")


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _month_days(year: int, month: int) -> int:
    return 29 if month == 2 and _leap(year) else _MONTH_DAYS[month - 1]


def _ints(by: Mapping[str, Tuple[str, ...]], part: str) -> IntSet:
    values = by.get(part)
    return frozenset(int(v) for v in values) if values else None


def _select(items: List[_T], positions: Iterable[int]) -> List[_T]:
    # BYSETPOS: the 1-based (or, negative, from the end) members of a set.
    n = len(items)
    picked = {p - 1 if p > 0 else n + p for p in positions}
    return [items[i] for i in sorted(picked) if 0 <= i < n]


def _lattice_after(origin: int, step: int, target: int) -> int:
    # The first origin + k * step (k >= 0) not before target.
    if target <= origin:
        return origin
    return origin + -((origin - target) // step) * step


def _next_in(values: Tuple[int, ...], value: int) -> Optional[int]:
    # The first of the sorted values after value, if any.
    for candidate in values:
        if candidate > value:
            return candidate
    return None


def _second_of(when: datetime) -> int:
    return when.toordinal() * 86400 + when.hour * 3600 + when.minute * 60 + when.second


class _Year:
    """
    What day filters need to know of one year; C{weeknos} holds the day
    indexes (0 is 1 January) that BYWEEKNO selects.
    """

    __slots__ = ("first", "length", "weeknos")

    def __init__(self, year: int, byweekno: IntSet, wkst: int) -> None:
        self.first = date(year, 1, 1).toordinal()
        self.length = 366 if _leap(year) else 365
        self.weeknos = _week_days(year, self.length, byweekno, wkst) if byweekno else None


def _week_days(year: int, length: int, wanted: FrozenSet[int], wkst: int) -> FrozenSet[int]:
    """
    The days of C{year} in the weeks C{wanted} (ISO 8601 numbering with
    weeks starting on C{wkst}: week 1 holds at least four days of the
    year), numbered the way dateutil numbers them, including the days that
    belong to the last week of the year before.
    """
    first_weekday = date(year, 1, 1).weekday()
    days: set[int] = set()

    def week_from(i: int) -> None:
        for _ in range(7):
            days.add(i)
            i += 1
            if (first_weekday + i) % 7 == wkst:
                break

    no1wkst = firstwkst = (7 - first_weekday + wkst) % 7
    if no1wkst >= 4:
        no1wkst = 0
        week_year = length + (first_weekday - wkst) % 7
    else:
        week_year = length - no1wkst
    div, mod = divmod(week_year, 7)
    weeks = div + mod // 4
    for number in wanted:
        n = number + weeks + 1 if number < 0 else number
        if not 0 < n <= weeks:
            continue
        i = no1wkst
        if n > 1:
            i += (n - 1) * 7
            if no1wkst != firstwkst:
                i -= 7 - firstwkst
        week_from(i)
    if 1 in wanted:  # week 1 of the next year may start in this one
        i = no1wkst + weeks * 7
        if no1wkst != firstwkst:
            i -= 7 - firstwkst
        if i < length:
            week_from(i)
    if no1wkst:  # the first days may belong to last year's last week
        if -1 in wanted:
            last_weeks = -1
        else:
            last_first = date(year - 1, 1, 1).weekday()
            if (7 - last_first + wkst) % 7 >= 4:
                last_length = 366 if _leap(year - 1) else 365
                last_weeks = 52 + (last_length + (last_first - wkst) % 7) % 7 // 4
            else:
                last_weeks = 52 + (length - no1wkst) % 7 // 4
        if last_weeks in wanted:
            days.update(range(no1wkst))
    return frozenset(d for d in days if d < length)


class Rule:
    """
    A RECUR value made concrete for one DTSTART: the parts RFC 5545 lets
    DTSTART imply (the day of a YEARLY or MONTHLY rule, the weekday of a
    WEEKLY one, the time of day of rules coarser than it) are filled in.
    """

    def __init__(self, recur: Recur, dtstart: datetime) -> None:
        freq = self.freq = FREQ_INDEX[recur.freq]
        self.interval = recur.interval or 1
        self.count = recur.count
        self.wkst = WEEKDAY_INDEX[recur.wkst] if recur.wkst else 0
        by = recur.by
        bymonth = _ints(by, "BYMONTH")
        self.byweekno = _ints(by, "BYWEEKNO")
        self.byyearday = _ints(by, "BYYEARDAY")
        monthdays = _ints(by, "BYMONTHDAY")
        plain: set[int] = set()
        nth: set[Tuple[int, int]] = set()
        for spec in by.get("BYDAY", ()):
            weekday = WEEKDAY_INDEX[spec[-2:].upper()]
            ordinal = spec[:-2]
            n = int(ordinal) if ordinal not in ("", "+", "-") else 0
            if n and freq <= MONTHLY:
                nth.add((weekday, n))
            else:
                plain.add(weekday)
        if not (self.byweekno or self.byyearday or monthdays or plain or nth):
            if freq == YEARLY:
                bymonth = bymonth or frozenset([dtstart.month])
                monthdays = frozenset([dtstart.day])
            elif freq == MONTHLY:
                monthdays = frozenset([dtstart.day])
            elif freq == WEEKLY:
                plain.add(dtstart.weekday())
        self.bymonth = bymonth
        self.monthdays: IntSet = monthdays
        self.plain: FrozenSet[int] = frozenset(plain)
        self.nth: FrozenSet[Tuple[int, int]] = frozenset(nth)
        self.has_byday = bool(plain or nth)

        def unit(part: str, implied: bool, default: int, top: int) -> Optional[Tuple[int, ...]]:
            values = _ints(by, part)
            if values is None:
                return (default,) if implied else None
            return tuple(sorted(v for v in values if 0 <= v < top))

        self.byhour = unit("BYHOUR", freq < HOURLY, dtstart.hour, 24)
        self.byminute = unit("BYMINUTE", freq < MINUTELY, dtstart.minute, 60)
        # A leap second (60) never occurs in the time the server keeps.
        self.bysecond = unit("BYSECOND", freq < SECONDLY, dtstart.second, 60)
        self.bysetpos = tuple(sorted({p for p in _ints(by, "BYSETPOS") or () if p}))
        self.times: Tuple[time, ...] = ()
        if freq <= DAILY:
            assert self.byhour is not None and self.byminute is not None
            assert self.bysecond is not None
            self.times = tuple(
                time(h, m, s) for h in self.byhour for m in self.byminute for s in self.bysecond
            )
        self._years: Dict[int, _Year] = {}

    # -- day filters --------------------------------------------------------------

    def _year(self, year: int) -> _Year:
        info = self._years.get(year)
        if info is None:
            info = self._years[year] = _Year(year, self.byweekno, self.wkst)
        return info

    def day_ok(self, ordinal: int) -> bool:
        """
        Whether the day C{ordinal} passes the BYMONTH, BYDAY, BYMONTHDAY,
        BYYEARDAY and BYWEEKNO filters.
        """
        day = date.fromordinal(ordinal)
        if self.bymonth is not None and day.month not in self.bymonth:
            return False
        if self.has_byday:
            weekday = day.weekday()
            if weekday not in self.plain and not (self.nth and self._nth_ok(day, weekday)):
                return False
        if self.monthdays is not None:
            from_end = day.day - _month_days(day.year, day.month) - 1
            if day.day not in self.monthdays and from_end not in self.monthdays:
                return False
        if self.byyearday is not None or self.byweekno is not None:
            info = self._year(day.year)
            index = ordinal - info.first
            if self.byyearday is not None and not (
                index + 1 in self.byyearday or index - info.length in self.byyearday
            ):
                return False
            if info.weeknos is not None and index not in info.weeknos:
                return False
        return True

    def _nth_ok(self, day: date, weekday: int) -> bool:
        # Numbered weekdays count within the month (MONTHLY, or YEARLY
        # with BYMONTH), else within the year.
        if self.freq == MONTHLY or self.bymonth is not None:
            first = date(day.year, day.month, 1).toordinal()
            last = first + _month_days(day.year, day.month) - 1
        else:
            first = date(day.year, 1, 1).toordinal()
            last = date(day.year, 12, 31).toordinal()
        ordinal = day.toordinal()
        for wanted, n in self.nth:
            if wanted != weekday:
                continue
            if n > 0 and (ordinal - first) // 7 + 1 == n:
                return True
            if n < 0 and (last - ordinal) // 7 + 1 == -n:
                return True
        return False

    # -- periods --------------------------------------------------------------------------

    def _day_periods(
        self, dtstart: datetime, start_from: Optional[datetime], end: datetime
    ) -> Iterator[List[Tuple[int, int]]]:
        # The days of each period of a YEARLY .. DAILY rule, as ordinal spans.
        step, end_ordinal = self.interval, end.toordinal()
        if self.freq == YEARLY:
            year = dtstart.year
            if start_from is not None:
                year += max(0, (start_from.year - year) // step) * step
            months = sorted(self.bymonth) if self.bymonth is not None else range(1, 13)
            while year <= end.year:
                firsts = [(date(year, m, 1).toordinal(), _month_days(year, m)) for m in months]
                yield [(first, first + length) for first, length in firsts]
                year += step
        elif self.freq == MONTHLY:
            index = dtstart.year * 12 + dtstart.month - 1
            if start_from is not None:
                wanted = start_from.year * 12 + start_from.month - 1
                index += max(0, (wanted - index) // step) * step
            while index // 12 <= end.year:
                year, month = divmod(index, 12)
                if self.bymonth is None or month + 1 in self.bymonth:
                    first = date(year, month + 1, 1).toordinal()
                    yield [(first, first + _month_days(year, month + 1))]
                else:
                    yield []
                index += step
        elif self.freq == WEEKLY:
            first = dtstart.toordinal()
            week = first - (dtstart.weekday() - self.wkst) % 7
            k = 0
            if start_from is not None:
                k = max(0, (start_from.toordinal() - week) // (7 * step))
            if k == 0:
                yield [(first, week + 7)]  # the first period starts at DTSTART
                k = 1
            while week + 7 * k * step <= end_ordinal:
                yield [(week + 7 * k * step, week + 7 * k * step + 7)]
                k += 1
        else:
            day = dtstart.toordinal()
            if start_from is not None:
                day += max(0, (start_from.toordinal() - day) // step) * step
            while day <= end_ordinal:
                yield [(day, day + 1)]
                day += step

    def _day_candidates(
        self, dtstart: datetime, start_from: Optional[datetime], end: datetime, budget: Budget
    ) -> Iterator[datetime]:
        times = self.times
        for spans in self._day_periods(dtstart, start_from, end):
            budget.charge(max(1, sum(b - a for a, b in spans)))
            days = [o for a, b in spans for o in range(a, b) if self.day_ok(o)]
            if not days or not times:
                continue
            if self.bysetpos:
                picks = _select(list(range(len(days) * len(times))), self.bysetpos)
                pairs = [(days[i // len(times)], times[i % len(times)]) for i in picks]
            else:
                pairs = [(o, t) for o in days for t in times]
            for ordinal, moment in pairs:
                budget.charge()
                yield datetime.combine(date.fromordinal(ordinal), moment)

    def _time_candidates(
        self, dtstart: datetime, start_from: Optional[datetime], end: datetime, budget: Budget
    ) -> Iterator[datetime]:
        # HOURLY, MINUTELY, SECONDLY: periods on a lattice of step units from
        # DTSTART; days failing the day filters and hours or minutes outside
        # BYHOUR/BYMINUTE are jumped over, each jump costing one step.
        unit = _UNIT[self.freq]
        per_day, step = 86400 // unit, self.interval
        origin = _second_of(dtstart) // unit
        index = origin
        if start_from is not None:
            index += max(0, (_second_of(start_from) // unit - origin) // step) * step
        end_day = end.toordinal()
        while True:
            day = index // per_day
            if day > end_day:
                return
            budget.charge()
            if not self.day_ok(day):
                index = _lattice_after(origin, step, (day + 1) * per_day)
                continue
            base, day_end = date.fromordinal(day), (day + 1) * per_day
            while index < day_end:
                budget.charge()
                hour, rest = divmod((index - day * per_day) * unit, 3600)
                minute, second = divmod(rest, 60)
                if self.byhour is not None and hour not in self.byhour:
                    later = _next_in(self.byhour, hour)
                    target = day * 86400 + (later * 3600 if later is not None else 86400)
                    index = _lattice_after(origin, step, target // unit)
                    continue
                minutes = self.byminute if self.freq != HOURLY else None
                if minutes is not None and minute not in minutes:
                    later = _next_in(minutes, minute)
                    target = day * 86400 + hour * 3600 + (later * 60 if later is not None else 3600)
                    index = _lattice_after(origin, step, target // unit)
                    continue
                seconds = self.bysecond if self.freq == SECONDLY else None
                if seconds is not None and second not in seconds:
                    later = _next_in(seconds, second)
                    target = day * 86400 + hour * 3600 + minute * 60
                    target += later if later is not None else 60
                    index = _lattice_after(origin, step, target)
                    continue
                index += step
                if self.freq == SECONDLY:
                    stamps = [(minute, second)]
                elif self.freq == MINUTELY:
                    stamps = [(minute, s) for s in self.bysecond or ()]
                else:
                    stamps = [(m, s) for m in self.byminute or () for s in self.bysecond or ()]
                if self.bysetpos:
                    stamps = _select(stamps, self.bysetpos)
                if len(stamps) > 1:  # the lattice step paid for the first
                    budget.charge(len(stamps) - 1)
                for m, s in stamps:
                    yield datetime(base.year, base.month, base.day, hour, m, s)

    def starts(
        self,
        dtstart: datetime,
        *,
        end: datetime,
        after: Optional[datetime] = None,
        budget: Budget,
    ) -> Iterator[datetime]:
        """
        The instance starts (naive wall-clock times, ascending) from
        C{dtstart} to C{end}, both included, COUNT honoured.

        @param after: no instance before it is needed: a rule without COUNT
            starts at the period holding C{after - SLACK}.
        @raise ExpansionError: once C{budget} is spent.
        """
        start_from: Optional[datetime] = None
        if after is not None and self.count is None and after - dtstart > SLACK:
            start_from = after - SLACK
        source = (
            self._day_candidates(dtstart, start_from, end, budget)
            if self.freq <= DAILY
            else self._time_candidates(dtstart, start_from, end, budget)
        )
        produced = 0
        for when in source:
            if when < dtstart:
                continue
            if when > end:
                return
            yield when
            produced += 1
            if self.count is not None and produced >= self.count:
                return


def occurrences(
    recur: Recur,
    dtstart: datetime,
    *,
    until: Optional[datetime] = None,
    after: Optional[datetime] = None,
    before: datetime = LATEST,
    budget: Budget,
) -> Iterator[datetime]:
    """
    The starts of C{recur} anchored at C{dtstart} (naive wall-clock times,
    as dateutil's C{rrule} would give them), ascending, up to C{before},
    C{until} and L{LATEST}, whichever comes first.

    @param until: the rule's UNTIL as a wall-clock time of the same zone.
    @param after: instances before it are not needed (see L{Rule.starts}).
    @raise ExpansionError: once C{budget} is spent.
    """
    dtstart = dtstart.replace(microsecond=0)
    end = min(before, LATEST) if until is None else min(before, LATEST, until)
    if dtstart > end:
        return iter(())
    return Rule(recur, dtstart).starts(dtstart, end=end, after=after, budget=budget)


def rule_problem(recur: Recur) -> Optional[str]:
    """
    What RFC 5545 (section 3.3.10) forbids in C{recur} beyond its syntax,
    or L{None}: BYWEEKNO other than YEARLY, BYYEARDAY with DAILY, WEEKLY
    or MONTHLY, BYMONTHDAY with WEEKLY, numbered BYDAY other than MONTHLY
    or YEARLY (or YEARLY with BYWEEKNO), BYSETPOS alone.
    """
    freq, by = recur.freq, recur.by
    if "BYWEEKNO" in by and freq != "YEARLY":
        return "BYWEEKNO is only allowed with FREQ=YEARLY"
    if "BYYEARDAY" in by and freq in ("DAILY", "WEEKLY", "MONTHLY"):
        return f"BYYEARDAY is not allowed with FREQ={freq}"
    if "BYMONTHDAY" in by and freq == "WEEKLY":
        return "BYMONTHDAY is not allowed with FREQ=WEEKLY"
    numbered = [d for d in by.get("BYDAY", ()) if d[:-2] not in ("", "+", "-")]
    if numbered and (freq not in ("MONTHLY", "YEARLY") or "BYWEEKNO" in by):
        return f"BYDAY={numbered[0]} needs FREQ=MONTHLY or YEARLY without BYWEEKNO"
    if "BYSETPOS" in by and len(by) == 1:
        return "BYSETPOS needs another BYxxx rule part"
    return None


__all__ = [
    "ACCEPT_STEPS",
    "EARLIEST",
    "HORIZON",
    "LATEST",
    "LONGEST_WINDOW",
    "MAX_DURATION",
    "MAX_STEPS",
    "SLACK",
    "Budget",
    "Rule",
    "occurrences",
    "rule_problem",
]
