# -*- test-case-name: tests.unit.calendar -*-
"""
The calendar core of the iSIP server, sans-I/O: xCal (RFC 6321 and the
legacy DTD form) and iCalendar text to and from one model, iTIP rules as a
pure function, and free/busy.  The SIP side calls the names exported here.
"""

from __future__ import annotations

from conference.calendar.errors import (
    CalendarError,
    CalendarValueError,
    ExpansionError,
    FreeBusyError,
    ICalendarError,
    RequestStatus,
    XCalError,
)
from conference.calendar.freebusy import build_freebusy, next_free_slot
from conference.calendar.ical import dumps as to_ical
from conference.calendar.ical import load_calendar as parse_ical_calendar
from conference.calendar.ical import loads as parse_ical
from conference.calendar.itip import ITipResult, Outgoing, normalize_address, process
from conference.calendar.model import Component, Property, new_calendar
from conference.calendar.values import Period, Recur
from conference.calendar.xcal import dumps as to_xcal
from conference.calendar.xcal import load_calendar as parse_xcal_calendar
from conference.calendar.xcal import loads as parse_xcal
from conference.calendar.xcard import loads as parse_xcard

__all__ = [
    "CalendarError",
    "CalendarValueError",
    "Component",
    "ExpansionError",
    "FreeBusyError",
    "ICalendarError",
    "ITipResult",
    "Outgoing",
    "Period",
    "Property",
    "Recur",
    "RequestStatus",
    "XCalError",
    "build_freebusy",
    "new_calendar",
    "next_free_slot",
    "normalize_address",
    "parse_ical",
    "parse_ical_calendar",
    "parse_xcal",
    "parse_xcal_calendar",
    "parse_xcard",
    "process",
    "to_ical",
    "to_xcal",
]
