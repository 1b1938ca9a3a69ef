# -*- test-case-name: tests.unit.calendar.test_errors -*-
"""
The calendar core's error types and the iTIP REQUEST-STATUS catalogue, kept
together so that every refusal the package produces, whether an exception
for bad input or a status in an iTIP answer, names a precise cause.
"""

from __future__ import annotations

from typing import Dict, NamedTuple, Optional


class CalendarError(Exception):
    """
    Base of every error the calendar package raises for bad input.

    @ivar fault: what is wrong, as a sentence fragment.
    @ivar where: which element, property or line is at fault, or L{None}.
    """

    def __init__(self, fault: str, where: Optional[str] = None) -> None:
        self.fault = fault
        self.where = where
        super().__init__(f"{where}: {fault}" if where else fault)


class CalendarValueError(CalendarError):
    """
    A value (date, duration, recurrence rule, ...) does not follow the
    syntax of its RFC 5545 / RFC 6321 value type.
    """


class XCalError(CalendarError):
    """
    An xCal document (RFC 6321 or the legacy DTD form) is malformed, unsafe
    (entities, too big, too deep) or does not follow the xCal structure.
    C{where} is the path of the offending element, for example
    C{/icalendar/vcalendar[1]/components/vevent[1]/properties/dtstart}.
    """


class ICalendarError(CalendarError):
    """
    RFC 5545 text could not be read; C{where} names the content line.
    """


class FreeBusyError(CalendarError):
    """
    Free/busy could not be computed (bad window, unusable event data).
    """


class ExpansionError(CalendarError):
    """
    Recurrences could not be expanded within the work budget, or their
    dates leave the range the server computes with
    (L{conference.calendar.recurrence}).
    """


class RequestStatus(NamedTuple):
    """
    An RFC 5546 section 3.6 REQUEST-STATUS: a dotted code, its reason
    phrase and optional extra data (usually the offending property).
    """

    code: str
    reason: str
    data: Optional[str] = None

    def with_data(self, data: str) -> RequestStatus:
        """
        Return the same status carrying C{data} (the offending property).
        """
        return RequestStatus(self.code, self.reason, data)

    @property
    def success(self) -> bool:
        """
        Whether this is a 2.x (success) status.
        """
        return self.code.startswith("2.")


#: The RFC 5546 section 3.6 statuses the iTIP engine uses, by short name.
STATUS: Dict[str, RequestStatus] = {
    "success": RequestStatus("2.0", "Success"),
    "invalid-property-name": RequestStatus("3.0", "Invalid property name"),
    "invalid-property-value": RequestStatus("3.1", "Invalid property value"),
    "invalid-parameter": RequestStatus("3.2", "Invalid property parameter"),
    "invalid-parameter-value": RequestStatus("3.3", "Invalid property parameter value"),
    "invalid-sequence": RequestStatus("3.4", "Invalid calendar component sequence"),
    "invalid-date": RequestStatus("3.5", "Invalid date or time"),
    "invalid-rule": RequestStatus("3.6", "Invalid rule"),
    "invalid-user": RequestStatus("3.7", "Invalid calendar user"),
    "no-authority": RequestStatus("3.8", "No authority"),
    "unsupported-version": RequestStatus("3.9", "Unsupported version"),
    "too-large": RequestStatus("3.10", "Request entity too large"),
    "missing": RequestStatus("3.11", "Required component or property missing"),
    "unknown": RequestStatus("3.12", "Unknown component or property found"),
    "unsupported": RequestStatus("3.13", "Unsupported component or property found"),
    "unsupported-capability": RequestStatus("3.14", "Unsupported capability"),
    "busy": RequestStatus("4.0", "Event conflict. Date-time is busy."),
    "unavailable": RequestStatus("5.1", "Service unavailable"),
    "no-scheduling": RequestStatus("5.3", "No scheduling support for user"),
}


def status(name: str, data: Optional[str] = None) -> RequestStatus:
    """
    Look up a catalogued status by short name, optionally with data.

    @raise KeyError: for a name not in L{STATUS} (a programming error).
    """
    found = STATUS[name]
    return found if data is None else found.with_data(data)


def parse_request_status(code: str, reason: str, data: Optional[str] = None) -> RequestStatus:
    """
    Build a L{RequestStatus} from received parts, checking the code shape
    (C{digit "." digit ["." digit]}).

    @raise CalendarValueError: if the code is not dotted digits.
    """
    parts = code.split(".")
    if not 2 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise CalendarValueError(f"request-status code {code!r} is not dotted digits")
    if parts[0] not in ("1", "2", "3", "4", "5"):
        raise CalendarValueError(f"request-status class {parts[0]!r} is not 1-5")
    return RequestStatus(code, reason, data)


__all__ = [
    "STATUS",
    "CalendarError",
    "CalendarValueError",
    "ExpansionError",
    "FreeBusyError",
    "ICalendarError",
    "RequestStatus",
    "XCalError",
    "parse_request_status",
    "status",
]
