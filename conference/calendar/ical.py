# -*- test-case-name: tests.unit.calendar.test_ical -*-
"""
RFC 5545 iCalendar text to and from the model.  The C{icalendar} library
does the text-level work (unfolding, content-line splitting, parameter
quoting and RFC 6868 escapes, folding); values are typed here with
L{conference.calendar.values} so that they match what the xCal reader
produces, including RFC 6321's UNKNOWN for properties of unknown type.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, List, Sequence, Tuple, Union

from icalendar.parser import Contentlines, Parameters

from conference.calendar import values as cv
from conference.calendar.errors import CalendarError, ICalendarError
from conference.calendar.model import (
    DEFAULT_TYPES,
    MULTI_VALUED,
    Component,
    Property,
    normalize_param,
    value_type_for,
)
from conference.calendar.xcal_reader import MAX_NESTING

try:  # icalendar >= 7 keeps the folding helper private
    from icalendar.parser.string import _foldline as _fold
except ImportError:  # pragma: no cover - older icalendar
    from icalendar.parser import foldline as _fold

_NAME = re.compile(r"^[A-Za-z0-9-]+$")
# A property name may carry a vCard group prefix (C{contact.TEL}).
_PROPERTY_NAME = re.compile(r"^(?:[A-Za-z0-9-]+\.)?[A-Za-z0-9-]+$")

#: Properties whose VALUE parameter is required even for their default
#: type (RFC 7986 sections 5.10 and 5.11).
VALUE_REQUIRED = frozenset(["CONFERENCE", "IMAGE"])

#: Largest iCalendar text accepted, in characters.
MAX_CHARS = 1 << 20


def loads(
    text: Union[str, bytes], max_chars: int = MAX_CHARS, max_nesting: int = MAX_NESTING
) -> List[Component]:
    """
    Read iCalendar text; return its top-level components (normally one or
    more VCALENDARs).

    @param max_nesting: how deep components may nest (a VCALENDAR is 1);
        the default is what the stored xCal form can hold.
    @raise ICalendarError: naming the content line (1-based, after
        unfolding) and the fault.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ICalendarError(f"not UTF-8: {e.reason}", f"byte {e.start}") from None
    if len(text) > max_chars:
        raise ICalendarError(f"text is {len(text)} characters, the limit is {max_chars}")
    try:
        lines = Contentlines.from_ical(text)
    except ValueError as e:
        raise ICalendarError(f"not iCalendar content lines: {e}") from None
    stack: List[Component] = []
    result: List[Component] = []
    number = 0
    for line in lines:
        if not line:
            continue
        number += 1
        where = f"line {number}"
        try:
            name, params, raw = raw_parts_of(line)
        except ValueError:
            raise ICalendarError(f"malformed content line {str(line)[:60]!r}", where) from None
        name = name.upper()
        if name == "BEGIN":
            comp = Component(raw.strip().upper())
            if not _NAME.match(comp.name):
                raise ICalendarError(f"bad component name {raw!r}", where)
            if len(stack) >= max_nesting:
                raise ICalendarError(f"components nested deeper than {max_nesting}", where)
            (stack[-1].components if stack else result).append(comp)
            stack.append(comp)
        elif name == "END":
            if not stack or stack[-1].name != raw.strip().upper():
                open_ = stack[-1].name if stack else "nothing"
                raise ICalendarError(f"END:{raw.strip()} closes {open_}", where)
            stack.pop()
        else:
            if not stack:
                raise ICalendarError(f"property {name} outside any component", where)
            try:
                stack[-1].properties.append(read_property(name, params, raw))
            except CalendarError as e:
                raise ICalendarError(e.fault, f"{where} ({name})") from None
    if stack:
        raise ICalendarError(f"{stack[-1].name} is never ended", "end of text")
    return result


def raw_parts_of(line: Any) -> Tuple[str, Any, str]:
    """
    Split a content line into name, parameters and the value still
    escaped.  icalendar 7 has C{raw_parts}; icalendar 6 (the newest for
    Python 3.9, hence PyPy) only has C{parts}, which unescapes the value,
    so the split is done here with the same rule: the first C{;} or C{:}
    outside quotes ends the name, the first C{:} outside quotes the
    parameters.

    @raise ValueError: if the line has no name or no value separator.
    """
    raw_parts = getattr(line, "raw_parts", None)
    if raw_parts is not None:
        return raw_parts()  # type: ignore[no-any-return]
    name_end = value_start = -1
    quoted = False
    for i, ch in enumerate(line):
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in ";:":
            if name_end < 0:
                name_end = i
            if ch == ":":
                value_start = i
                break
    if name_end <= 0 or value_start < 0:
        raise ValueError("malformed content line")
    params_text = line[name_end + 1 : value_start]
    params = Parameters.from_ical(params_text, strict=False) if params_text else Parameters()
    return str(line[:name_end]), params, str(line[value_start + 1 :])


def load_calendar(text: Union[str, bytes], max_chars: int = MAX_CHARS) -> Component:
    """
    Read iCalendar text holding exactly one VCALENDAR.

    @raise ICalendarError: as L{loads}, or if there is not exactly one.
    """
    comps = loads(text, max_chars)
    cals = [c for c in comps if c.name == "VCALENDAR"]
    if len(cals) != 1 or len(comps) != 1:
        raise ICalendarError(f"expected one VCALENDAR, found {len(comps)} components")
    return cals[0]


def read_property(name: str, params: Any, raw: str) -> Property:
    """
    Type one property from its name, icalendar C{Parameters} and raw
    (still escaped) value text.

    @raise CalendarError: on a bad value or parameter.
    """
    prop = Property.__new__(Property)
    prop.name = name
    prop.params = {}
    given = None
    encoding = None
    for key, val in params.items():
        pname = str(key).upper()
        vals = [str(v) for v in val] if isinstance(val, list) else [str(val)]
        if pname == "VALUE":
            given = vals[0].upper()
            if given not in cv.VALUE_TYPES or given == cv.UNKNOWN:
                raise ICalendarError(f"unknown VALUE type {vals[0]!r}")
            continue
        if pname == "ENCODING":
            encoding = vals[0].upper()
        prop.params[pname] = normalize_param(pname, vals)
    vtype = value_type_for(name, given)
    if given is None and vtype == cv.DATE_TIME:
        # Leniency: a date or a period written without its VALUE parameter.
        first = raw.split(",", 1)[0]
        if len(first) == 8 and first.isdigit():
            vtype = cv.DATE
        elif "/" in first and name in ("RDATE", "FREEBUSY"):
            vtype = cv.PERIOD
    if encoding == "BASE64":
        # RFC 6321 section 3.1: binary keeps base64 (implied by the type),
        # any other type is decoded.
        del prop.params["ENCODING"]
        if vtype != cv.BINARY:
            try:
                raw = base64.b64decode("".join(raw.split()), validate=True).decode("utf-8")
            except (binascii.Error, ValueError):
                raise ICalendarError("ENCODING=BASE64 value is not base64 UTF-8") from None
    prop.value_type = vtype
    prop.values = _parse_values(name, vtype, raw)
    return prop


def _parse_values(name: str, vtype: str, raw: str) -> List[Any]:
    if name == "GEO" and vtype == cv.FLOAT:
        parts = raw.split(";")
        if len(parts) != 2:
            raise ICalendarError(f"GEO {raw!r} needs latitude;longitude")
        return [cv.ICAL_PARSERS[cv.FLOAT](p) for p in parts]
    if name == "REQUEST-STATUS" and vtype == cv.TEXT:
        parts = cv.split_unescaped(raw, ";")
        if len(parts) < 2:
            raise ICalendarError(f"REQUEST-STATUS {raw!r} needs code;description")
        if len(parts) > 3:
            parts = [*parts[:2], ";".join(parts[2:])]
        return [cv.unescape_text(p) for p in parts]
    if vtype == cv.UNKNOWN:
        return [raw]
    parser = cv.ICAL_PARSERS[vtype]
    if name in MULTI_VALUED:
        if vtype == cv.TEXT:
            return [parser(p) for p in cv.split_unescaped(raw, ",")]
        return [parser(p.strip()) for p in raw.split(",")]
    return [parser(raw)]


def format_values(prop: Property) -> str:
    """
    The property's value(s) as iCalendar text (escaped, comma-joined).
    """
    vtype = prop.value_type
    if prop.name == "GEO" and vtype == cv.FLOAT:
        return ";".join(cv.format_float(v) for v in prop.values)
    if prop.name == "REQUEST-STATUS" and vtype == cv.TEXT:
        return ";".join(cv.escape_text(v) for v in prop.values)
    fmt = cv.ICAL_FORMATTERS[vtype]
    return ",".join(fmt(v) for v in prop.values)


def property_line(prop: Property) -> str:
    """
    One unfolded content line for C{prop}, with VALUE added when the type
    is not the property's default (RFC 6321 section 3.5.1) and
    ENCODING=BASE64 for BINARY.
    """
    if not _PROPERTY_NAME.match(prop.name):
        raise ICalendarError(f"property name {prop.name!r} is not an iCalendar name")
    pieces = [prop.name]
    for pname, pvals in prop.params.items():
        if not _NAME.match(pname):
            raise ICalendarError(f"parameter name {pname!r} is not an iCalendar name", prop.name)
        pieces.append(f"{pname}={','.join(_param_value(v) for v in pvals)}")
    vtype = prop.value_type
    if vtype != cv.UNKNOWN and (
        vtype != DEFAULT_TYPES.get(prop.name) or prop.name in VALUE_REQUIRED
    ):
        pieces.append(f"VALUE={vtype}")
    if vtype == cv.BINARY:
        pieces.append("ENCODING=BASE64")
    try:
        value = format_values(prop)
    except (TypeError, ValueError, AttributeError, KeyError) as e:
        raise ICalendarError(f"cannot format value: {e}", prop.name) from None
    if "\n" in value or "\r" in value:
        raise ICalendarError("value would contain a raw line break", prop.name)
    return ";".join(pieces) + ":" + value


def _param_value(value: str) -> str:
    # RFC 6868 caret escapes, then RFC 5545 quoting when needed: always for
    # a backslash (icalendar's reader treats it as an escape) and for
    # blanks and '=' (its lenient reader strips blanks around ';' and '=').
    text = value.replace("^", "^^").replace("\r\n", "^n").replace("\n", "^n")
    text = text.replace('"', "^'")
    if not text or any(c in text for c in ":;,=\\ \t"):
        return f'"{text}"'
    return text


def dumps(components: Union[Component, Sequence[Component]]) -> str:
    """
    Serialize one component (normally a VCALENDAR) or several as folded
    iCalendar text with CRLF line ends.

    @raise ICalendarError: on a name or value iCalendar cannot carry.
    """
    if isinstance(components, Component):
        components = [components]
    out: List[str] = []
    for comp in components:
        _write(comp, out)
    return "\r\n".join(out) + "\r\n"


def _write(comp: Component, out: List[str]) -> None:
    if not _NAME.match(comp.name):
        raise ICalendarError(f"component name {comp.name!r} is not an iCalendar name")
    out.append(f"BEGIN:{comp.name}")
    for prop in comp.properties:
        out.append(_fold(property_line(prop)))
    for sub in comp.components:
        _write(sub, out)
    out.append(f"END:{comp.name}")


__all__ = [
    "MAX_CHARS",
    "dumps",
    "format_values",
    "load_calendar",
    "loads",
    "property_line",
    "read_property",
]
