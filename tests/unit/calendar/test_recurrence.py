# -*- test-case-name: tests.unit.calendar.test_recurrence -*-
"""
Tests for L{conference.calendar.recurrence}: the instances match
dateutil's (the expander the server used before), starting at the window
gives the same instances as starting at DTSTART, and the work done is
bounded by the budget whatever the rule.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Dict, List, Optional, Sequence, Tuple

from dateutil import rrule as du
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from conference.calendar import values as cv
from conference.calendar.errors import ExpansionError
from conference.calendar.recurrence import (
    HORIZON,
    LATEST,
    MAX_STEPS,
    Budget,
    occurrences,
    rule_problem,
)

_DU_FREQ = {
    "YEARLY": du.YEARLY,
    "MONTHLY": du.MONTHLY,
    "WEEKLY": du.WEEKLY,
    "DAILY": du.DAILY,
    "HOURLY": du.HOURLY,
    "MINUTELY": du.MINUTELY,
    "SECONDLY": du.SECONDLY,
}
_DU_DAY = {
    "MO": du.MO,
    "TU": du.TU,
    "WE": du.WE,
    "TH": du.TH,
    "FR": du.FR,
    "SA": du.SA,
    "SU": du.SU,
}
#: How long a window each frequency is compared over.
_SPAN = {
    "YEARLY": timedelta(days=3000),
    "MONTHLY": timedelta(days=1500),
    "WEEKLY": timedelta(days=400),
    "DAILY": timedelta(days=200),
    "HOURLY": timedelta(days=20),
    "MINUTELY": timedelta(days=2),
    "SECONDLY": timedelta(hours=4),
}
WEEKDAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


def dateutil_rule(recur: cv.Recur, dtstart: datetime) -> du.rrule:
    """
    The dateutil rule for C{recur} (how the server expanded rules before).
    """
    by = recur.by

    def ints(part: str) -> Optional[List[int]]:
        vals = by.get(part)
        return [int(v) for v in vals] if vals else None

    weekdays = []
    for spec in by.get("BYDAY", ()):
        n = spec[:-2]
        day = _DU_DAY[spec[-2:]]
        weekdays.append(day(int(n)) if n not in ("", "+", "-") else day)
    return du.rrule(
        _DU_FREQ[recur.freq],
        dtstart=dtstart,
        interval=recur.interval or 1,
        wkst=_DU_DAY[recur.wkst] if recur.wkst else None,
        count=recur.count,
        bysetpos=ints("BYSETPOS"),
        bymonth=ints("BYMONTH"),
        bymonthday=ints("BYMONTHDAY"),
        byyearday=ints("BYYEARDAY"),
        byweekno=ints("BYWEEKNO"),
        byweekday=weekdays or None,
        byhour=ints("BYHOUR"),
        byminute=ints("BYMINUTE"),
        bysecond=ints("BYSECOND"),
    )


def _picks(draw: Any, values: Sequence[Any], most: int = 3) -> Tuple[str, ...]:
    chosen = draw(st.lists(st.sampled_from(values), min_size=1, max_size=most, unique=True))
    return tuple(str(v) for v in chosen)


@st.composite
def rules(draw: Any) -> Tuple[cv.Recur, datetime]:
    """
    RFC 5545 rules (no BYDAY list mixing plain and numbered weekdays, which
    dateutil reads differently) with a DTSTART.
    """
    freq = draw(st.sampled_from(sorted(_SPAN)))
    by: Dict[str, Tuple[str, ...]] = {}
    if draw(st.integers(0, 3)) == 0:
        by["BYMONTH"] = _picks(draw, list(range(1, 13)))
    if freq != "WEEKLY" and draw(st.integers(0, 3)) == 0:
        by["BYMONTHDAY"] = _picks(draw, [*range(1, 32), *range(-31, 0)])
    if draw(st.integers(0, 3)) == 0:
        if freq in ("MONTHLY", "YEARLY") and draw(st.booleans()):
            n = draw(st.sampled_from([1, 2, 3, 5, -1, -2]))
            by["BYDAY"] = tuple(f"{n}{d}" for d in _picks(draw, WEEKDAYS, 2))
        else:
            by["BYDAY"] = _picks(draw, WEEKDAYS)
    if freq == "YEARLY" and "BYDAY" not in by and draw(st.integers(0, 4)) == 0:
        by["BYWEEKNO"] = _picks(draw, [*range(1, 54), -1, -2])
    if freq not in ("DAILY", "WEEKLY", "MONTHLY") and draw(st.integers(0, 4)) == 0:
        by["BYYEARDAY"] = _picks(draw, [*range(1, 367), -1, -100, -366])
    for part, top in (("BYHOUR", 24), ("BYMINUTE", 60), ("BYSECOND", 60)):
        if draw(st.integers(0, 3)) == 0:
            by[part] = _picks(draw, list(range(top)))
    if by and draw(st.integers(0, 4)) == 0:
        by["BYSETPOS"] = _picks(draw, [1, 2, 3, -1, -2])
    recur = cv.Recur(
        freq,
        None,
        draw(st.one_of(st.none(), st.integers(1, 30))),
        interval=draw(st.sampled_from([None, 1, 2, 3, 7])),
        by=by,
        wkst=draw(st.one_of(st.none(), st.sampled_from(WEEKDAYS))),
    )
    moment = draw(st.integers(0, 4 * 365 * 86400))
    return recur, datetime(2020, 1, 1) + timedelta(seconds=moment)


def expanded(
    recur: cv.Recur, dtstart: datetime, after: Optional[datetime], before: datetime
) -> List[datetime]:
    """
    The instances in C{[after, before]} by L{occurrences}.
    """
    budget = Budget(10 * MAX_STEPS)
    found = occurrences(recur, dtstart, after=after, before=before, budget=budget)
    return [when for when in found if after is None or when >= after]


def terminates(recur: cv.Recur, dtstart: datetime, before: datetime) -> bool:
    """
    Whether dateutil's iteration of C{recur} ends soon after C{before}: an
    instance follows it, or the COUNT is reached.
    """
    seen = 0
    after = before if recur.count is None else None
    try:
        for when in occurrences(recur, dtstart, after=after, budget=Budget(10 * MAX_STEPS)):
            seen += 1
            if when > before or seen == recur.count:
                return True
    except ExpansionError:
        return False
    return False


class DateutilTests(SynchronousTestCase):
    """
    The instances are dateutil's.
    """

    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(rules(), st.floats(0, 1), st.booleans())
    def test_same_instances(
        self, rule: Tuple[cv.Recur, datetime], offset: float, windowed: bool
    ) -> None:
        """Over a window starting at DTSTART or later, the instances are dateutil's."""
        recur, dtstart = rule
        span = _SPAN[recur.freq]
        after = dtstart + span * offset if windowed else None
        before = (after or dtstart) + span
        try:
            reference = dateutil_rule(recur, dtstart)
        except ValueError:  # dateutil refuses some rules that never match
            self.assertEqual(expanded(recur, dtstart, after, before), [])
            return
        # dateutil scans to the year 9999 when no instance follows the
        # window: compare only rules that go on, or end by COUNT.
        assume(terminates(recur, dtstart, before))
        want = []
        try:
            for when in reference:
                if when > before:
                    break
                if after is None or when >= after:
                    want.append(when)
        except ValueError:  # "empty rule", found while iterating
            assume(False)
        self.assertEqual(expanded(recur, dtstart, after, before), want)

    def test_rfc_examples(self) -> None:
        """Some RFC 5545 section 3.8.5.3 examples, with their instances."""
        start = datetime(1997, 9, 2, 9)
        cases: List[Tuple[str, List[Tuple[int, ...]]]] = [
            ("FREQ=MONTHLY;COUNT=3;BYDAY=-2MO", [(9, 22), (10, 20), (11, 17)]),
            ("FREQ=YEARLY;COUNT=3;BYWEEKNO=20;BYDAY=MO", [(1998, 5, 11), (1999, 5, 17)]),
            ("FREQ=MONTHLY;COUNT=3;BYDAY=TU,WE,TH;BYSETPOS=3", [(9, 4), (10, 7), (11, 6)]),
            ("FREQ=MONTHLY;COUNT=2;BYMONTHDAY=-3", [(9, 28), (10, 29)]),
        ]
        for text, days in cases:
            got = list(occurrences(cv.parse_recur(text), start, budget=Budget()))
            want = [
                datetime(d[0], d[1], d[2], 9) if len(d) == 3 else datetime(1997, d[0], d[1], 9)
                for d in days
            ]
            self.assertEqual(got[: len(want)], want, text)

    def test_mixed_byday_is_a_union(self) -> None:
        """BYDAY=MO,1TU means every Monday and the first Tuesday (dateutil gives nothing)."""
        recur = cv.parse_recur("FREQ=MONTHLY;COUNT=6;BYDAY=MO,1TU")
        got = list(occurrences(recur, datetime(2026, 1, 1), budget=Budget()))
        self.assertEqual([d.day for d in got], [5, 6, 12, 19, 26, 2])

    def test_leap_second_ignored(self) -> None:
        """BYSECOND=60 names a second that never comes: the rule has no instance."""
        recur = cv.parse_recur("FREQ=MINUTELY;BYSECOND=60")
        budget = Budget()
        found = occurrences(recur, datetime(2026, 1, 1), before=datetime(2026, 1, 2), budget=budget)
        self.assertEqual(list(found), [])


class BoundTests(SynchronousTestCase):
    """
    The work is bounded by the budget and follows the window, not the
    rule's age or what it produces.
    """

    def test_never_matching_rule_stops_at_the_window(self) -> None:
        """A rule that never matches costs about a step per day of the window."""
        recur = cv.parse_recur("FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30")
        start = datetime(2026, 3, 1)
        budget = Budget()
        found = occurrences(recur, start, before=start + HORIZON, budget=budget)
        self.assertEqual(list(found), [])
        self.assertLessEqual(budget.spent, HORIZON.days + 2)

    def test_never_matching_count_rule_is_refused(self) -> None:
        """With COUNT (no window to stop at) the budget stops the scan with an error."""
        recur = cv.parse_recur("FREQ=SECONDLY;COUNT=3;BYMONTH=2;BYMONTHDAY=30")
        budget = Budget(1000)
        found = occurrences(recur, datetime(2026, 3, 1), budget=budget)
        self.assertRaises(ExpansionError, list, found)
        self.assertEqual(budget.spent, 1001)

    def test_dense_rule_is_refused(self) -> None:
        """FREQ=SECONDLY without COUNT over a year exceeds the budget, quickly."""
        recur = cv.parse_recur("FREQ=SECONDLY")
        budget = Budget()
        start = datetime(2026, 1, 1)
        found = occurrences(recur, start, before=start + HORIZON, budget=budget)
        self.assertRaises(ExpansionError, list, found)
        self.assertEqual(budget.spent, MAX_STEPS + 1)

    def test_old_rule_starts_at_the_window(self) -> None:
        """An hourly rule from 1700 costs what one from last week does over the same window."""
        recur = cv.parse_recur("FREQ=HOURLY;BYHOUR=9,17")
        window = datetime(2026, 5, 1)
        spent = []
        for first in (datetime(1700, 1, 1, 9), datetime(2026, 4, 24, 9)):
            budget = Budget()
            found = occurrences(
                recur, first, after=window, before=window + timedelta(days=7), budget=budget
            )
            self.assertEqual(len([d for d in found if d >= window]), 14)
            spent.append(budget.spent)
        self.assertLess(abs(spent[0] - spent[1]), 10)
        self.assertLess(spent[0], 100)

    def test_jumps_over_filtered_hours(self) -> None:
        """A secondly rule limited to 09:00:00 costs a few steps per day, not 86,400."""
        recur = cv.parse_recur("FREQ=SECONDLY;BYHOUR=9;BYMINUTE=0;BYSECOND=0")
        budget = Budget()
        start = datetime(2026, 1, 1)
        found = list(occurrences(recur, start, before=start + timedelta(days=30), budget=budget))
        self.assertEqual(len(found), 30)
        self.assertLess(budget.spent, 30 * 200)

    def test_stops_at_latest(self) -> None:
        """No instance lies after LATEST, even for a yearly rule without end."""
        recur = cv.parse_recur("FREQ=YEARLY;INTERVAL=1000")
        found = list(occurrences(recur, datetime(2026, 6, 1), budget=Budget()))
        self.assertEqual([d.year for d in found], [2026, 3026, 4026, 5026, 6026, 7026, 8026])
        self.assertTrue(all(d <= LATEST for d in found))

    def test_huge_interval(self) -> None:
        """An INTERVAL far beyond the calendar ends the rule instead of overflowing."""
        for freq in ("MONTHLY", "WEEKLY", "DAILY", "HOURLY", "SECONDLY"):
            recur = cv.Recur(freq, interval=10**30)
            found = list(occurrences(recur, datetime(2026, 6, 1), budget=Budget()))
            self.assertEqual(found, [datetime(2026, 6, 1)], freq)


class ProblemTests(SynchronousTestCase):
    """
    The rule parts RFC 5545 forbids beyond the grammar.
    """

    def test_problems(self) -> None:
        """Each forbidden combination is named; allowed ones are not."""
        bad = [
            "FREQ=MONTHLY;BYWEEKNO=3",
            "FREQ=DAILY;BYYEARDAY=100",
            "FREQ=WEEKLY;BYMONTHDAY=3",
            "FREQ=DAILY;BYDAY=1MO",
            "FREQ=YEARLY;BYWEEKNO=3;BYDAY=1MO",
            "FREQ=MONTHLY;BYSETPOS=1",
        ]
        for text in bad:
            self.assertIsNotNone(rule_problem(cv.parse_recur(text)), text)
        good = ["FREQ=YEARLY;BYWEEKNO=3;BYDAY=MO", "FREQ=MONTHLY;BYDAY=MO;BYSETPOS=-1"]
        for text in good:
            self.assertIsNone(rule_problem(cv.parse_recur(text)), text)
