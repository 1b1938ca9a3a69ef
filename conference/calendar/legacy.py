# -*- test-case-name: tests.unit.calendar.test_legacy -*-
"""
Reader for the DTD-based xCal of draft-ietf-calsch-many-xcal-02, the form
the iSIP draft's examples use, so that bodies from such clients land in the
same model as RFC 6321 xCal.  It is only a reader: the server answers in
RFC 6321.

Our reading of the draft (documented in docs/calendar.rst):

  - no namespace; element and attribute names are matched without regard
    to case (C{vCalendar}, C{vcalendar}, C{VCALENDAR});
  - the root is C{iCalendar} holding C{vCalendar} elements, or a bare
    C{vCalendar};
  - C{vCalendar} carries METHOD, VERSION, PRODID and CALSCALE as
    attributes (child elements of those names are accepted too);
  - components are child elements named after the component
    (C{vevent}, C{valarm}, ...), nested directly, without wrappers;
  - every other child element is a property; its text is the value in
    iCalendar syntax (C{20020701T210000Z}, C{P1H}, periods with C{/}),
    compared case-insensitively, without backslash escaping (XML escapes
    instead); multi-valued properties are comma-separated;
  - parameters are attributes named after the parameter (C{cn},
    C{partstat}, C{sent-by}, ...), C{xml:lang} is LANGUAGE and C{value}
    the value type;
  - leniency for the iSIP examples: an ATTENDEE/ORGANIZER text of the
    vCalendar 1.0 shape C{role=chair;attstat=accepted:sip:foo@example.com}
    is split into parameters and address (ATTSTAT/STATUS -> PARTSTAT,
    TYPE -> CUTYPE, RSVP yes/no -> TRUE/FALSE), and an 8-digit value of a
    DATE-TIME property is read as a DATE.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional

from lxml import etree

from conference.calendar import values as cv
from conference.calendar.errors import CalendarError, CalendarValueError, XCalError
from conference.calendar.model import (
    DEFAULT_TYPES,
    MULTI_VALUED,
    Component,
    Property,
    normalize_param,
)
from conference.calendar.xcal_reader import MAX_NESTING, element_path

COMPONENT_NAMES = frozenset(
    [
        "vcalendar",
        "vevent",
        "vtodo",
        "vjournal",
        "vfreebusy",
        "vtimezone",
        "standard",
        "daylight",
        "valarm",
    ]
)
#: Properties whose TEXT value is an enumeration; the iSIP examples write
#: them in lower case (C{confirmed}), RFC 6321's schema wants upper case.
ENUMERATED = frozenset(["STATUS", "TRANSP", "CLASS", "ACTION", "METHOD", "CALSCALE"])
CALENDAR_ATTRIBUTES = ("method", "version", "prodid", "calscale")
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_VCAL1_ADDRESS = re.compile(r"^((?:[A-Za-z-]+=[^:;=]*;)*[A-Za-z-]+=[^:;=]*):(.+)$")
_VCAL1_PARAM_NAMES = {"ATTSTAT": "PARTSTAT", "STATUS": "PARTSTAT", "TYPE": "CUTYPE"}


def _local(elem: Any) -> Optional[str]:
    tag = elem.tag
    if not isinstance(tag, str):
        return None
    return str(etree.QName(tag).localname).lower()


def read_root(root: Any, max_depth: int) -> List[Component]:
    """
    Read a parsed legacy document (root C{iCalendar} or C{vCalendar}).

    @raise XCalError: naming the element at fault.
    """
    name = _local(root)
    try:
        if name == "vcalendar":
            return [_read_component(root, 1, max_depth)]
        cals: List[Component] = []
        for child in root:
            local = _local(child)
            if local is None:
                continue
            if local != "vcalendar":
                raise XCalError("only vCalendar elements may appear here", element_path(child))
            cals.append(_read_component(child, 2, max_depth))
        return cals
    except XCalError:
        raise
    except CalendarError as e:
        raise XCalError(e.fault, e.where) from None


def _is_component(local: str) -> bool:
    return local in COMPONENT_NAMES or (local.startswith("x-") and local.endswith("-component"))


def _read_component(elem: Any, depth: int, max_depth: int, level: int = 1) -> Component:
    # level: the component nesting (vCalendar is 1), bounded like the
    # iCalendar reader's so that what is read can be stored as RFC 6321.
    if depth > max_depth:
        raise XCalError(f"nesting deeper than {max_depth} elements", element_path(elem))
    if level > MAX_NESTING:
        raise XCalError(f"components nested deeper than {MAX_NESTING}", element_path(elem))
    local = _local(elem) or ""
    comp = Component(local)
    if local == "vcalendar":
        for key, value in elem.attrib.items():
            attr = etree.QName(key).localname.lower()
            if attr in CALENDAR_ATTRIBUTES:
                text = value.strip().upper() if attr.upper() in ENUMERATED else value.strip()
                comp.properties.append(Property(attr, text, None, cv.TEXT))
    for child in elem:
        clocal = _local(child)
        if clocal is None:
            continue
        if etree.QName(child.tag).namespace is not None:
            continue  # foreign elements: not part of the legacy vocabulary
        if _is_component(clocal):
            if clocal == "vcalendar":
                raise XCalError("vCalendar cannot nest", element_path(child))
            comp.components.append(_read_component(child, depth + 1, max_depth, level + 1))
        else:
            if len(child):
                raise XCalError("property element must hold only text", element_path(child))
            try:
                comp.properties.append(_read_property(child, clocal))
            except XCalError:
                raise
            except CalendarError as e:
                raise XCalError(e.fault, element_path(child)) from None
    return comp


def _read_property(elem: Any, local: str) -> Property:
    name = local.upper()
    params: Dict[str, List[str]] = {}
    given_type: Optional[str] = None
    for key, value in elem.attrib.items():
        if key == _XML_LANG:
            params["LANGUAGE"] = [value]
            continue
        pname = etree.QName(key).localname.upper()
        if pname == "VALUE":
            given_type = value.strip().upper()
            if given_type not in cv.VALUE_TYPES:
                raise XCalError(f"unknown value type {value!r}", element_path(elem))
        else:
            params[pname] = [v.strip() for v in _split_param(value)]
    text = (elem.text or "").strip()
    vtype = given_type or DEFAULT_TYPES.get(name, cv.TEXT)
    if vtype == cv.CAL_ADDRESS:
        text = _vcal1_address(text, params)
    if given_type is None and vtype == cv.DATE_TIME and re.fullmatch(r"\d{8}", text):
        vtype = cv.DATE
    if given_type is None and name in ("RDATE",) and "/" in text:
        vtype = cv.PERIOD
    prop = Property.__new__(Property)
    prop.name = name
    prop.params = {k: normalize_param(k, v) for k, v in params.items()}
    prop.value_type = vtype
    if name in ENUMERATED and vtype == cv.TEXT:
        text = text.upper()
    prop.values = _parse_values(name, vtype, text)
    return prop


def _split_param(value: str) -> List[str]:
    # Attribute values of list parameters (DELEGATED-TO, MEMBER) are
    # comma-separated, optionally quoted.
    pieces = [p.strip().strip('"') for p in value.split(",")] if '"' in value else [value]
    return pieces if len(pieces) > 1 else [value.strip().strip('"')]


def _vcal1_address(text: str, params: Dict[str, List[str]]) -> str:
    m = _VCAL1_ADDRESS.match(text)
    if m is None or ":" in m.group(1):
        return text
    for piece in m.group(1).split(";"):
        key, _, val = piece.partition("=")
        key = _VCAL1_PARAM_NAMES.get(key.upper(), key.upper())
        val = val.strip()
        if key == "RSVP":
            val = "TRUE" if val.upper() in ("YES", "TRUE", "1") else "FALSE"
        params.setdefault(key, [val])
    return m.group(2).strip()


def _parse_values(name: str, vtype: str, text: str) -> List[Any]:
    if name == "GEO":
        lat, sep, lon = text.partition(";")
        if not sep:
            lat, sep, lon = text.partition(",")
        if not sep:
            raise CalendarValueError(f"GEO {text!r} needs latitude;longitude")
        return [cv.ICAL_PARSERS[cv.FLOAT](lat.strip()), cv.ICAL_PARSERS[cv.FLOAT](lon.strip())]
    if name == "REQUEST-STATUS" and vtype == cv.TEXT:
        parts = text.split(";", 2)
        if len(parts) < 2:
            raise CalendarValueError(f"REQUEST-STATUS {text!r} needs code;description")
        return [p.strip() for p in parts]
    if vtype in (cv.TEXT, cv.UNKNOWN):
        if name in MULTI_VALUED:
            return [p.strip() for p in text.split(",")]
        return [text]
    if vtype in (cv.URI, cv.CAL_ADDRESS):
        return [text]
    parser = cv.ICAL_PARSERS[vtype]
    if vtype in (cv.DATE_TIME, cv.DATE, cv.PERIOD, cv.TIME, cv.DURATION, cv.RECUR):
        text = text.upper()
    pieces = [p.strip() for p in text.split(",")] if name in MULTI_VALUED else [text]
    return [parser(p) for p in pieces]


__all__ = ["COMPONENT_NAMES", "read_root"]
