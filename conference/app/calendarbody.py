# -*- test-case-name: tests.unit.app.test_calendarbody -*-
"""
The calendar bodies of SIP messages, both ways: read the iCalendar object a
MESSAGE carries (xCal in either form, iCalendar text, or either inside a
multipart/alternative beside its text/plain rendering, iSIP sections 2.4
and 4.2), and render the calendars the server sends with the
C{method}/C{component} Content-Type parameters iSIP asks for.

Every fault in a received body becomes a L{RemoteProtocolError}: 400 with a
C{Warning: 399} naming the fault, or 415 with Accept for a type or a
transfer encoding we do not read (iSIP section 2.5).
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

from conference.calendar import (
    CalendarError,
    Component,
    parse_ical_calendar,
    parse_xcal_calendar,
    to_ical,
    to_xcal,
)
from conference.sip.errors import RemoteProtocolError
from conference.sip.headers import MediaType, format_params, parse_media_type, quote_string
from conference.sip.multipart import Part, parse_multipart

XCAL = "application/calendar+xml"
ICAL = "text/calendar"
ALTERNATIVE = "multipart/alternative"
PLAIN = "text/plain"

#: The body types a scheduling MESSAGE may have (the handler's C{accepts}).
ACCEPTED_TYPES: Tuple[str, ...] = (XCAL, ICAL, ALTERNATIVE)
#: The calendar types that may stand alone or inside multipart/alternative.
CALENDAR_TYPES: Tuple[str, ...] = (XCAL, ICAL)

#: Longest fault text put in a Warning header.
MAX_WARNING_TEXT = 200


@dataclass(frozen=True)
class CalendarBody:
    """
    The calendar object a message carried.

    @ivar calendar: the VCALENDAR.
    @ivar mime: the type of the part it came from (C{application/calendar+xml}
        or C{text/calendar}).
    @ivar params: that part's Content-Type parameters (lower-case names;
        C{method} and C{component} are what the iTIP engine checks).
    """

    calendar: Component
    mime: str
    params: Dict[str, str]

    @property
    def method(self) -> Optional[str]:
        """
        The VCALENDAR's METHOD, upper case, or L{None}.
        """
        value = self.calendar.value("METHOD")
        return value.strip().upper() if isinstance(value, str) and value.strip() else None


def warning_value(agent: str, fault: str) -> str:
    """
    A C{Warning} header value, code 399 (miscellaneous), naming C{fault}
    (line breaks flattened, shortened to L{MAX_WARNING_TEXT} characters).
    """
    text = " ".join(fault.split())
    if len(text) > MAX_WARNING_TEXT:
        text = text[: MAX_WARNING_TEXT - 3] + "..."
    return f"399 {agent or 'localhost'} {quote_string(text)}"


def bad_body(agent: str, fault: str, status: int = 400) -> RemoteProtocolError:
    """
    The error for a body we cannot use: C{status} (400 unless said) with a
    Warning naming C{fault}.
    """
    return RemoteProtocolError(
        f"Bad calendar body: {fault}"[:120], status, [("Warning", warning_value(agent, fault))]
    )


def unsupported(fault: str, accepted: Sequence[str] = ACCEPTED_TYPES) -> RemoteProtocolError:
    """
    A 415 listing the types we read in Accept.
    """
    return RemoteProtocolError(
        f"Unsupported Media Type: {fault}"[:120], 415, [("Accept", ", ".join(accepted))]
    )


def _decode_text(body: bytes, charset: Optional[str], agent: str) -> str:
    name = (charset or "utf-8").strip().lower()
    try:
        codec = codecs.lookup(name)
    except LookupError:
        raise bad_body(agent, f"unknown charset {name[:40]!r}") from None
    try:
        return body.decode(codec.name)
    except UnicodeDecodeError as e:
        raise bad_body(agent, f"text/calendar body is not {name}: byte {e.start}") from None


def _parse_one(body: bytes, media: MediaType, agent: str) -> CalendarBody:
    if not body.strip():
        raise bad_body(agent, f"empty {media.mime} body")
    try:
        if media.mime == XCAL:
            calendar = parse_xcal_calendar(body)
        else:
            calendar = parse_ical_calendar(_decode_text(body, media.params.get("charset"), agent))
    except CalendarError as e:
        raise bad_body(agent, str(e)) from None
    return CalendarBody(calendar, media.mime, dict(media.params))


def _no_transfer_encoding(part: Part) -> None:
    if part.header("content-transfer-encoding") is not None:
        # iSIP section 2.5: gateways remove transfer encodings; SIP is 8-bit
        # clean, so any encoding is refused as the core refuses it on top.
        raise unsupported("Content-Transfer-Encoding not accepted in a body part")


def _pick_alternative(parts: Sequence[Part], agent: str) -> Part:
    """
    The calendar part of a multipart/alternative: the last (richest, RFC
    2046 section 5.1.4) part of a calendar type; text/plain and other
    renderings are skipped.
    """
    chosen: Optional[Part] = None
    for part in parts:
        _no_transfer_encoding(part)
        if part.media_type.mime in CALENDAR_TYPES:
            chosen = part
    if chosen is None:
        kinds = ", ".join(p.media_type.mime for p in parts)
        raise unsupported(f"multipart/alternative without a calendar part ({kinds})")
    return chosen


def parse_calendar_body(
    body: bytes, content_type: Union[str, MediaType, None], *, agent: str
) -> CalendarBody:
    """
    Read the calendar object of a message body.

    @param content_type: the message's Content-Type (value or parsed).
    @param agent: the host named in Warning headers (our domain).
    @raise RemoteProtocolError: 400 with a Warning naming the fault for an
        empty, malformed or unreadable body; 415 with Accept for another
        type, for a multipart/alternative without a calendar part, or for
        a Content-Transfer-Encoding inside it.
    """
    if not body:
        raise bad_body(agent, "no calendar body")
    if content_type is None:
        raise bad_body(agent, "body without Content-Type")
    try:
        media = parse_media_type(content_type) if isinstance(content_type, str) else content_type
    except RemoteProtocolError as e:
        raise bad_body(agent, e.reason) from None
    if media.mime in CALENDAR_TYPES:
        return _parse_one(body, media, agent)
    if media.mime != ALTERNATIVE:
        raise unsupported(media.mime)
    try:
        multipart = parse_multipart(body, media)
    except RemoteProtocolError as e:
        if e.status == 400:
            raise bad_body(agent, e.reason) from None
        raise
    part = _pick_alternative(multipart.parts, agent)
    return _parse_one(part.body, part.media_type, agent)


def component_names(calendar: Component) -> List[str]:
    """
    The scheduling component types inside C{calendar}, in order of first
    appearance, VTIMEZONE aside (the C{component} parameter, iSIP 2.4).
    """
    names: List[str] = []
    for comp in calendar.components:
        if comp.name != "VTIMEZONE" and comp.name not in names:
            names.append(comp.name)
    return names


def calendar_content_type(calendar: Component, *, as_xcal: bool = True) -> str:
    """
    The Content-Type value for C{calendar}: C{application/calendar+xml} or
    C{text/calendar;charset=utf-8}, with C{method} (when it has METHOD)
    and C{component} parameters.
    """
    params: Dict[str, Optional[str]] = {}
    if not as_xcal:
        params["charset"] = "utf-8"
    method = calendar.value("METHOD")
    if isinstance(method, str) and method.strip():
        params["method"] = method.strip().upper()
    names = component_names(calendar)
    if names:
        params["component"] = ",".join(names)
    return (XCAL if as_xcal else ICAL) + format_params(params)


def render_calendar(calendar: Component, *, as_xcal: bool = True) -> Tuple[str, bytes]:
    """
    Serialize a VCALENDAR for a SIP body.

    @param as_xcal: RFC 6321 xCal (iSIP's mandatory format) when true, else
        iCalendar text in UTF-8.
    @return: the Content-Type value (with C{method} and C{component}
        parameters) and the body.
    """
    content_type = calendar_content_type(calendar, as_xcal=as_xcal)
    if as_xcal:
        return content_type, to_xcal(calendar)
    return content_type, to_ical([calendar]).encode("utf-8")


__all__ = [
    "ACCEPTED_TYPES",
    "ALTERNATIVE",
    "CALENDAR_TYPES",
    "ICAL",
    "PLAIN",
    "XCAL",
    "CalendarBody",
    "bad_body",
    "calendar_content_type",
    "component_names",
    "parse_calendar_body",
    "render_calendar",
    "unsupported",
    "warning_value",
]
