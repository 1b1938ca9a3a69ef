# -*- test-case-name: tests.unit.calendar.test_values -*-
"""
RFC 5545 value types in both spellings: the iCalendar text form
(C{20110517T120000Z}, C{-0500}) and the RFC 6321 XML form
(C{2011-05-17T12:00:00Z}, C{-05:00}).  Every reader and writer of the
package goes through here, so a value means the same thing in each format.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Union

from conference.calendar.errors import CalendarValueError

UTC = timezone.utc

DateOrDateTime = Union[date, datetime]

# Value type names (RFC 5545 section 3.3, plus RFC 6321's UNKNOWN).
BINARY = "BINARY"
BOOLEAN = "BOOLEAN"
CAL_ADDRESS = "CAL-ADDRESS"
DATE = "DATE"
DATE_TIME = "DATE-TIME"
DURATION = "DURATION"
FLOAT = "FLOAT"
INTEGER = "INTEGER"
PERIOD = "PERIOD"
RECUR = "RECUR"
TEXT = "TEXT"
TIME = "TIME"
URI = "URI"
UTC_OFFSET = "UTC-OFFSET"
UNKNOWN = "UNKNOWN"


class Period(NamedTuple):
    """
    An RFC 5545 PERIOD: a start and either an explicit end or a duration.
    """

    start: datetime
    end: Optional[datetime] = None
    duration: Optional[timedelta] = None

    @property
    def stop(self) -> datetime:
        """
        The end instant, computed from the duration when needed.
        """
        if self.end is not None:
            return self.end
        assert self.duration is not None
        return self.start + self.duration


def _fail(vtype: str, text: str, why: str = "") -> CalendarValueError:
    extra = f" ({why})" if why else ""
    return CalendarValueError(f"{text!r} is not a valid {vtype} value{extra}")


# --- date and time -------------------------------------------------------

_ICAL_DATE = re.compile(r"^(\d{4})(\d\d)(\d\d)$")
_ICAL_DATE_TIME = re.compile(r"^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)(Z?)$", re.IGNORECASE)
_ICAL_TIME = re.compile(r"^(\d\d)(\d\d)(\d\d)(Z?)$", re.IGNORECASE)
_XML_DATE = re.compile(r"^(\d{4})-(\d\d)-(\d\d)$")
_XML_DATE_TIME = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(Z?)$")
_XML_TIME = re.compile(r"^(\d\d):(\d\d):(\d\d)(Z?)$")


def _make_date(vtype: str, text: str, m: Optional[re.Match[str]]) -> date:
    if m is None:
        raise _fail(vtype, text)
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError as e:
        raise _fail(vtype, text, str(e)) from None


def _make_date_time(vtype: str, text: str, m: Optional[re.Match[str]]) -> datetime:
    if m is None:
        raise _fail(vtype, text)
    g = m.groups()
    second = int(g[5])
    if second == 60:  # leap second: RFC 5545 allows it, Python does not
        second = 59
    try:
        return datetime(
            int(g[0]),
            int(g[1]),
            int(g[2]),
            int(g[3]),
            int(g[4]),
            second,
            tzinfo=UTC if g[6] else None,
        )
    except ValueError as e:
        raise _fail(vtype, text, str(e)) from None


def _make_time(text: str, m: Optional[re.Match[str]]) -> time:
    if m is None:
        raise _fail(TIME, text)
    g = m.groups()
    try:
        return time(int(g[0]), int(g[1]), min(int(g[2]), 59), tzinfo=UTC if g[3] else None)
    except ValueError as e:
        raise _fail(TIME, text, str(e)) from None


def parse_ical_date(text: str) -> date:
    """
    Parse an iCalendar DATE (C{20110517}).
    """
    return _make_date(DATE, text, _ICAL_DATE.match(text))


def parse_ical_date_time(text: str) -> datetime:
    """
    Parse an iCalendar DATE-TIME (C{20110517T120000} or with C{Z}).  UTC
    values are aware (C{tzinfo=UTC}); floating and TZID values are naive.
    """
    return _make_date_time(DATE_TIME, text, _ICAL_DATE_TIME.match(text))


def parse_xml_date(text: str) -> date:
    """
    Parse an xCal date (C{2011-05-17}).
    """
    return _make_date(DATE, text, _XML_DATE.match(text))


def parse_xml_date_time(text: str) -> datetime:
    """
    Parse an xCal date-time (C{2011-05-17T12:00:00} or with C{Z}).
    """
    size = len(text)
    if (
        ((size == 20 and text[19] == "Z") or size == 19)
        and text[10] == "T"
        and text[4] == "-"
        and text[13] == ":"
        and text[16] == ":"
    ):
        # Fast path through the C parser; anything it refuses (a leap
        # second, odd digits) takes the strict path below.
        try:
            value = _fromisoformat(text[:19])
        except ValueError:
            pass
        else:
            # A valid naive prefix with "+00:00" reads as the same wall
            # time in UTC; datetime.replace(tzinfo=...) costs three times
            # as much as this second parse.
            return _fromisoformat(text[:19] + "+00:00") if size == 20 else value
    return _make_date_time(DATE_TIME, text, _XML_DATE_TIME.match(text))


_fromisoformat = datetime.fromisoformat


def format_ical_date(value: date) -> str:
    """
    Format a date as iCalendar DATE.
    """
    return f"{value.year:04d}{value.month:02d}{value.day:02d}"


def format_ical_date_time(value: datetime) -> str:
    """
    Format a date-time as iCalendar DATE-TIME; aware values are written in
    UTC with C{Z}, naive ones as they are (floating or TZID-relative).
    """
    z = ""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
        z = "Z"
    return (
        f"{value.year:04d}{value.month:02d}{value.day:02d}T"
        f"{value.hour:02d}{value.minute:02d}{value.second:02d}{z}"
    )


def format_xml_date(value: date) -> str:
    """
    Format a date as xCal C{date}.
    """
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"


def format_xml_date_time(value: datetime) -> str:
    """
    Format a date-time as xCal C{date-time} (same UTC rule as iCalendar).
    """
    z = ""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
        z = "Z"
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T"
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}{z}"
    )


def _format_time(value: time, sep: str) -> str:
    z = "Z" if value.tzinfo is not None else ""
    return f"{value.hour:02d}{sep}{value.minute:02d}{sep}{value.second:02d}{z}"


# --- durations and offsets ------------------------------------------------

_DURATION = re.compile(r"^([+-])?P(?:(\d+)W|(?:(\d+)D)?(T?)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)$")


def parse_duration(text: str) -> timedelta:
    """
    Parse an RFC 5545 DURATION (the same in both forms), e.g. C{-PT15M}.

    Leniency: a time part without its C{T} (C{P1H}, seen in RFC 6321's own
    period example and in the wild) is accepted; output is always strict.
    """
    m = _DURATION.match(text)
    if m is None:
        raise _fail(DURATION, text)
    sign, weeks, days, tee, hours, minutes, seconds = m.groups()
    if weeks is None and days is None and hours is None and minutes is None and seconds is None:
        raise _fail(DURATION, text, "no duration component")
    if tee and hours is None and minutes is None and seconds is None:
        raise _fail(DURATION, text, "'T' without a time component")
    result = timedelta(
        weeks=int(weeks or 0),
        days=int(days or 0),
        hours=int(hours or 0),
        minutes=int(minutes or 0),
        seconds=int(seconds or 0),
    )
    return -result if sign == "-" else result


def format_duration(value: timedelta) -> str:
    """
    Format a timedelta as an RFC 5545 DURATION (C{P1W}, C{P1DT2H}, C{PT0S}).
    """
    sign = ""
    if value < timedelta(0):
        sign = "-"
        value = -value
    days = value.days
    seconds = value.seconds
    if seconds == 0 and days and days % 7 == 0:
        return f"{sign}P{days // 7}W"
    out = f"{sign}P"
    if days:
        out += f"{days}D"
    if seconds or not days:
        hours, rest = divmod(seconds, 3600)
        minutes, secs = divmod(rest, 60)
        out += "T"
        if hours:
            out += f"{hours}H"
        if minutes:
            out += f"{minutes}M"
        if secs or (not hours and not minutes):
            out += f"{secs}S"
    return out


def format_xml_duration(value: timedelta) -> str:
    """
    Format a duration for xCal: as L{format_duration} but a time part
    always starts with hours (C{PT0H15M}, C{PT0H0M30S}), because the RFC
    6321 schema's duration pattern only accepts C{T} followed by hours;
    this spelling is valid RFC 5545 too.
    """
    text = format_duration(value)
    head, tee, tail = text.partition("T")
    if not tee or "H" in tail:
        return text
    if "M" not in tail:
        tail = "0M" + tail
    return f"{head}T0H{tail}"


_ICAL_OFFSET = re.compile(r"^([+-])(\d\d)(\d\d)(\d\d)?$")
_XML_OFFSET = re.compile(r"^([+-])(\d\d):(\d\d)(?::(\d\d))?$")


def _offset(text: str, m: Optional[re.Match[str]]) -> timedelta:
    if m is None:
        raise _fail(UTC_OFFSET, text)
    sign, hh, mm, ss = m.groups()
    if int(mm) > 59 or int(ss or 0) > 59:
        raise _fail(UTC_OFFSET, text, "minutes or seconds out of range")
    delta = timedelta(hours=int(hh), minutes=int(mm), seconds=int(ss or 0))
    return -delta if sign == "-" else delta


def _format_offset(value: timedelta, sep: str) -> str:
    sign = "-" if value < timedelta(0) else "+"
    total = abs(int(value.total_seconds()))
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    out = f"{sign}{hours:02d}{sep}{minutes:02d}"
    if seconds:
        out += f"{sep}{seconds:02d}"
    return out


# --- text ------------------------------------------------------------------


def escape_text(value: str) -> str:
    """
    Backslash-escape a TEXT value for iCalendar (RFC 5545 section 3.3.11).
    """
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\r", "\\n")
        .replace("\n", "\\n")
    )


def unescape_text(value: str) -> str:
    """
    Undo TEXT escaping; an unknown escape keeps its character.
    """
    if "\\" not in value:
        return value
    out: List[str] = []
    i = 0
    n = len(value)
    while i < n:
        ch = value[i]
        if ch == "\\" and i + 1 < n:
            nxt = value[i + 1]
            out.append("\n" if nxt in "nN" else nxt)
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def split_unescaped(value: str, sep: str) -> List[str]:
    """
    Split raw iCalendar text on C{sep} where it is not backslash-escaped,
    leaving the escapes in each piece.
    """
    if "\\" not in value:
        return value.split(sep)
    parts: List[str] = []
    current: List[str] = []
    i = 0
    n = len(value)
    while i < n:
        ch = value[i]
        if ch == "\\" and i + 1 < n:
            current.append(value[i : i + 2])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


# --- periods ---------------------------------------------------------------


def parse_ical_period(text: str) -> Period:
    """
    Parse an iCalendar PERIOD (C{start/end} or C{start/duration}).
    """
    start, slash, rest = text.partition("/")
    if not slash:
        raise _fail(PERIOD, text, "no '/'")
    begin = parse_ical_date_time(start.upper())
    if rest[:1] in ("P", "+", "-", "p"):
        return Period(begin, None, parse_duration(rest.upper()))
    return Period(begin, parse_ical_date_time(rest.upper()), None)


def format_ical_period(value: Period) -> str:
    """
    Format a L{Period} as iCalendar text.
    """
    start = format_ical_date_time(value.start)
    if value.end is not None:
        return f"{start}/{format_ical_date_time(value.end)}"
    assert value.duration is not None
    return f"{start}/{format_duration(value.duration)}"


# Recurrence rules live in their own module, which uses the date functions
# above; importing it here, after them, keeps the pair free of a cycle.
from conference.calendar.recur import (  # noqa: E402
    FREQS,
    RECUR_BY_PARTS,
    WEEKDAYS,
    Recur,
    format_recur,
    parse_recur,
    recur_from_parts,
    recur_items,
)

# --- dispatch tables ----------------------------------------------------------


def _parse_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("true", "1"):
        return True
    if low in ("false", "0"):
        return False
    raise _fail(BOOLEAN, text)


def _parse_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise _fail(INTEGER, text) from None


def _parse_float(text: str) -> float:
    try:
        result = float(text)
    except ValueError:
        raise _fail(FLOAT, text) from None
    if not math.isfinite(result):
        raise _fail(FLOAT, text, "not finite")
    return result


def format_float(value: float) -> str:
    """
    Format a float without exponent notation (iCalendar forbids it).
    """
    text = repr(float(value))
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
        if "." not in text:
            text += ".0"
    return text


def _parse_binary(text: str) -> bytes:
    compact = "".join(text.split())
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise _fail(BINARY, text[:40], "not base64") from None


def _format_binary(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _identity(text: str) -> str:
    return text


def _xml_period(text: str) -> Period:  # only used by legacy free text
    return parse_ical_period(text)


ICAL_PARSERS: Dict[str, Callable[[str], Any]] = {
    BINARY: _parse_binary,
    BOOLEAN: _parse_bool,
    CAL_ADDRESS: _identity,
    DATE: parse_ical_date,
    DATE_TIME: lambda t: parse_ical_date_time(t.upper()),
    DURATION: lambda t: parse_duration(t.upper()),
    FLOAT: _parse_float,
    INTEGER: _parse_int,
    PERIOD: parse_ical_period,
    RECUR: parse_recur,
    TEXT: unescape_text,
    TIME: lambda t: _make_time(t, _ICAL_TIME.match(t)),
    URI: _identity,
    UTC_OFFSET: lambda t: _offset(t, _ICAL_OFFSET.match(t)),
    UNKNOWN: _identity,
}

ICAL_FORMATTERS: Dict[str, Callable[[Any], str]] = {
    BINARY: _format_binary,
    BOOLEAN: lambda v: "TRUE" if v else "FALSE",
    CAL_ADDRESS: str,
    DATE: format_ical_date,
    DATE_TIME: format_ical_date_time,
    DURATION: format_duration,
    FLOAT: format_float,
    INTEGER: str,
    PERIOD: format_ical_period,
    RECUR: format_recur,
    TEXT: escape_text,
    TIME: lambda v: _format_time(v, ""),
    URI: str,
    UTC_OFFSET: lambda v: _format_offset(v, ""),
    UNKNOWN: str,
}

#: Every value type name.
VALUE_TYPES = frozenset(ICAL_PARSERS)

#: Parsers for the xCal spelling of the scalar value types (PERIOD and
#: RECUR are structured elements, handled by the xCal reader).
XML_PARSERS: Dict[str, Callable[[str], Any]] = {
    BINARY: _parse_binary,
    BOOLEAN: _parse_bool,
    CAL_ADDRESS: _identity,
    DATE: parse_xml_date,
    DATE_TIME: parse_xml_date_time,
    DURATION: parse_duration,
    FLOAT: _parse_float,
    INTEGER: _parse_int,
    TEXT: _identity,
    TIME: lambda t: _make_time(t, _XML_TIME.match(t)),
    URI: _identity,
    UTC_OFFSET: lambda t: _offset(t, _XML_OFFSET.match(t)),
    UNKNOWN: _identity,
}

XML_FORMATTERS: Dict[str, Callable[[Any], str]] = {
    BINARY: _format_binary,
    BOOLEAN: lambda v: "true" if v else "false",
    CAL_ADDRESS: str,
    DATE: format_xml_date,
    DATE_TIME: format_xml_date_time,
    DURATION: format_xml_duration,
    FLOAT: format_float,
    INTEGER: str,
    TEXT: str,
    TIME: lambda v: _format_time(v, ":"),
    URI: str,
    UTC_OFFSET: lambda v: _format_offset(v, ":"),
    UNKNOWN: str,
}


def parse_ical_value(vtype: str, text: str) -> Any:
    """
    Parse one iCalendar-text value of type C{vtype}.

    @raise CalendarValueError: on a syntax error or an unknown type.
    """
    parser = ICAL_PARSERS.get(vtype)
    if parser is None:
        raise CalendarValueError(f"unknown value type {vtype!r}")
    return parser(text)


def format_ical_value(vtype: str, value: Any) -> str:
    """
    Format one value of type C{vtype} as iCalendar text (escaped if TEXT).
    """
    return ICAL_FORMATTERS[vtype](value)


__all__ = [
    "BINARY",
    "BOOLEAN",
    "CAL_ADDRESS",
    "DATE",
    "DATE_TIME",
    "DURATION",
    "DateOrDateTime",
    "FLOAT",
    "FREQS",
    "ICAL_FORMATTERS",
    "ICAL_PARSERS",
    "INTEGER",
    "PERIOD",
    "Period",
    "RECUR",
    "RECUR_BY_PARTS",
    "Recur",
    "TEXT",
    "TIME",
    "UNKNOWN",
    "URI",
    "UTC",
    "UTC_OFFSET",
    "VALUE_TYPES",
    "WEEKDAYS",
    "XML_FORMATTERS",
    "XML_PARSERS",
    "escape_text",
    "format_duration",
    "format_float",
    "format_ical_date",
    "format_ical_date_time",
    "format_ical_period",
    "format_ical_value",
    "format_recur",
    "format_xml_date",
    "format_xml_date_time",
    "format_xml_duration",
    "parse_duration",
    "parse_ical_date",
    "parse_ical_date_time",
    "parse_ical_period",
    "parse_ical_value",
    "parse_recur",
    "parse_xml_date",
    "parse_xml_date_time",
    "recur_from_parts",
    "recur_items",
    "split_unescaped",
    "unescape_text",
]
