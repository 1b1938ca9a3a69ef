# -*- test-case-name: tests.unit.calendar.test_values -*-
"""
RFC 5545 RECUR values (RRULE): parsing the text form, building from the
xCal part elements, and writing both in the order RFC 6321's schema wants,
kept apart from the scalar value types because rules have structure and
validation of their own.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Dict, List, Optional, Tuple

from conference.calendar.errors import CalendarValueError
from conference.calendar.values import (
    RECUR,
    DateOrDateTime,
    format_ical_date,
    format_ical_date_time,
    format_xml_date,
    format_xml_date_time,
    parse_ical_date,
    parse_ical_date_time,
    parse_xml_date,
    parse_xml_date_time,
)

RECUR_BY_PARTS = (
    "BYSECOND",
    "BYMINUTE",
    "BYHOUR",
    "BYDAY",
    "BYMONTHDAY",
    "BYYEARDAY",
    "BYWEEKNO",
    "BYMONTH",
    "BYSETPOS",
)
FREQS = frozenset(["SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"])
WEEKDAYS = frozenset(["SU", "MO", "TU", "WE", "TH", "FR", "SA"])
_BYDAY = re.compile(r"^([+-]?)(\d{0,2})(SU|MO|TU|WE|TH|FR|SA)$")
#: The values RFC 5545's grammar allows in each numeric BYxxx part: the
#: largest magnitude and whether a sign (counting from the end) is allowed.
#: Zero is never a position (BYMONTHDAY, BYYEARDAY, BYWEEKNO, BYSETPOS).
BY_RANGES: Dict[str, Tuple[int, int, bool]] = {
    "BYSECOND": (0, 60, False),
    "BYMINUTE": (0, 59, False),
    "BYHOUR": (0, 23, False),
    "BYMONTHDAY": (1, 31, True),
    "BYYEARDAY": (1, 366, True),
    "BYWEEKNO": (1, 53, True),
    "BYMONTH": (1, 12, False),
    "BYSETPOS": (1, 366, True),
}


class Recur:
    """
    An RFC 5545 RECUR value.  C{by} maps the BYxxx rule parts to their
    values as strings (C{"-1SU"}, C{"10"}); UNTIL is a typed date or
    date-time.  Equality ignores the order of rule parts.
    """

    __slots__ = ("by", "count", "freq", "interval", "until", "wkst")

    def __init__(
        self,
        freq: str,
        until: Optional[DateOrDateTime] = None,
        count: Optional[int] = None,
        *,
        interval: Optional[int] = None,
        by: Optional[Dict[str, Tuple[str, ...]]] = None,
        wkst: Optional[str] = None,
    ) -> None:
        self.freq = freq
        self.until = until
        self.count = count
        self.interval = interval
        self.by: Dict[str, Tuple[str, ...]] = dict(by or {})
        self.wkst = wkst

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Recur):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(repr(self._key()))

    def _key(self) -> Tuple[Any, ...]:
        return (
            self.freq,
            self.until,
            self.count,
            self.interval,
            sorted(self.by.items()),
            self.wkst,
        )

    def __repr__(self) -> str:
        return f"Recur({format_recur(self)!r})"


def _fail(text: str, why: str) -> CalendarValueError:
    return CalendarValueError(f"{text!r} is not a valid {RECUR} value ({why})")


def parse_recur(text: str, xml: bool = False) -> Recur:
    """
    Parse an iCalendar RECUR (C{FREQ=WEEKLY;COUNT=3}).  UNTIL uses the
    iCalendar form unless C{xml} (then the xCal form).
    """
    parts: Dict[str, str] = {}
    for piece in text.split(";"):
        if not piece:
            continue
        key, eq, val = piece.partition("=")
        if not eq or not val:
            raise _fail(text, f"rule part {piece!r} has no value")
        key = key.upper()
        if key in parts:
            raise _fail(text, f"rule part {key} repeated")
        parts[key] = val
    return recur_from_parts(
        [(k, v) for k, vals in parts.items() for v in vals.split(",")], text, xml
    )


def recur_from_parts(items: List[Tuple[str, str]], text: str, xml: bool) -> Recur:
    """
    Build a L{Recur} from C{(PART, value)} pairs (BYxxx parts may repeat).

    @raise CalendarValueError: on a missing FREQ, bad numbers or weekdays.
    """
    freq: Optional[str] = None
    recur = Recur("")
    by: Dict[str, List[str]] = {}
    for key, raw in items:
        val = raw.strip().upper() if key != "UNTIL" else raw.strip()
        if key == "FREQ":
            if val not in FREQS:
                raise _fail(text, f"FREQ {val!r} unknown")
            freq = val
        elif key == "UNTIL":
            if xml:
                recur.until = parse_xml_date(val) if len(val) == 10 else parse_xml_date_time(val)
            else:
                recur.until = (
                    parse_ical_date(val) if len(val) == 8 else parse_ical_date_time(val.upper())
                )
        elif key in ("COUNT", "INTERVAL"):
            if not val.isdigit() or int(val) < 1:
                raise _fail(text, f"{key} must be a positive integer")
            setattr(recur, key.lower(), int(val))
        elif key == "WKST":
            if val not in WEEKDAYS:
                raise _fail(text, f"WKST {val!r} is not a weekday")
            recur.wkst = val
        elif key == "BYDAY":
            match = _BYDAY.match(val)
            if not match:
                raise _fail(text, f"BYDAY {val!r} malformed")
            if match.group(2) and not 1 <= int(match.group(2)) <= 53:
                raise _fail(text, f"BYDAY {val!r}: the week number is 1 to 53")
            by.setdefault(key, []).append(val)
        elif key in RECUR_BY_PARTS:
            by.setdefault(key, []).append(_by_number(text, key, val))
        else:
            raise _fail(text, f"unknown rule part {key!r}")
    if freq is None:
        raise _fail(text, "FREQ is required")
    if recur.until is not None and recur.count is not None:
        raise _fail(text, "UNTIL and COUNT are exclusive")
    recur.freq = freq
    recur.by = {k: tuple(v) for k, v in by.items()}
    return recur


def _by_number(text: str, key: str, val: str) -> str:
    # A BYxxx number, checked against the range the grammar allows.
    digits = val[1:] if val[:1] in "+-" else val
    if not digits.isdigit() or len(digits) > 3:
        raise _fail(text, f"{key} {val!r} is not an integer")
    low, high, signed = BY_RANGES[key]
    if (val[:1] in "+-" and not signed) or not low <= int(digits) <= high:
        allowed = f"{'+/-' if signed else ''}{low} to {high}"
        raise _fail(text, f"{key} {val!r} is out of range ({allowed})")
    return val


def recur_items(value: Recur, xml: bool = False) -> List[Tuple[str, str]]:
    """
    The rule parts of C{value} as C{(PART, value)} pairs in the order the
    RFC 6321 schema requires (FREQ, UNTIL/COUNT, INTERVAL, BYxxx, WKST).
    """
    items: List[Tuple[str, str]] = [("FREQ", value.freq)]
    if value.until is not None:
        u = value.until
        if isinstance(u, datetime):
            items.append(("UNTIL", format_xml_date_time(u) if xml else format_ical_date_time(u)))
        else:
            items.append(("UNTIL", format_xml_date(u) if xml else format_ical_date(u)))
    if value.count is not None:
        items.append(("COUNT", str(value.count)))
    if value.interval is not None:
        items.append(("INTERVAL", str(value.interval)))
    for part in RECUR_BY_PARTS:
        for v in value.by.get(part, ()):
            items.append((part, v))
    if value.wkst is not None:
        items.append(("WKST", value.wkst))
    return items


def format_recur(value: Recur) -> str:
    """
    Format a L{Recur} as iCalendar text (BYxxx values comma-joined).
    """
    out: List[str] = []
    seen: Dict[str, int] = {}
    for key, val in recur_items(value):
        if key in seen:
            out[seen[key]] += "," + val
        else:
            seen[key] = len(out)
            out.append(f"{key}={val}")
    return ";".join(out)


__all__ = [
    "BY_RANGES",
    "FREQS",
    "RECUR_BY_PARTS",
    "WEEKDAYS",
    "Recur",
    "format_recur",
    "parse_recur",
    "recur_from_parts",
    "recur_items",
]
