# -*- test-case-name: tests.unit.web.test_zones -*-
"""
The viewer's time zone and dates in query strings.

Zones are IANA names (C{Europe/Paris}) looked up with L{zoneinfo}; a
name is checked before it is used so a path-like or unknown name is a
clear 400, never a file lookup outside the zone database.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, tzinfo

try:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
except ImportError:  # pragma: no cover - Python 3.9 has zoneinfo
    raise

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,2}")


class ZoneError(ValueError):
    """
    A time zone name or a date that cannot be used.
    """


def viewer_zone(name: str) -> tzinfo:
    """
    The zone called C{name}.

    @raise ZoneError: for a malformed or unknown name.
    """
    if len(name) > 64 or not _NAME.fullmatch(name):
        raise ZoneError(f"tz: not a time zone name: {name[:64]!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ZoneError(f"tz: unknown time zone {name!r}") from None


def parse_date(text: str, zone: tzinfo) -> datetime:
    """
    Midnight of the day C{YYYY-MM-DD} in C{zone}.

    @raise ZoneError: for anything else.
    """
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ZoneError(f"start: not a date (YYYY-MM-DD): {text[:32]!r}") from None
    if not 1970 <= day.year <= 9000:
        raise ZoneError(f"start: year out of range: {text!r}")
    return datetime.combine(day, time(0), zone)
