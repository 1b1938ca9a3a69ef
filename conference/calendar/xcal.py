# -*- test-case-name: tests.unit.calendar.test_xcal -*-
"""
RFC 6321 xCal, read and written with lxml.  This is the server's wire
format for iSIP bodies, so the reader (L{conference.calendar.xcal_reader})
is hardened (no entities, no DTD or network access, bounded size and
depth) and every fault becomes an L{XCalError} naming the element; the
writer emits the document text directly, which keeps serialization cheap.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Sequence, Tuple, Union

from lxml import etree

from conference.calendar import values as cv
from conference.calendar.errors import CalendarError, XCalError
from conference.calendar.model import PARAM_TYPES, Component, Property
from conference.calendar.xcal_reader import (
    MAX_BYTES,
    MAX_DEPTH,
    NS,
    check_depth,
    element_path,
    parse_xml,
    read_root,
)

VCARD_NS = "urn:ietf:params:xml:ns:vcard-4.0"
_P = "{" + NS + "}"
_PROPERTIES = _P + "properties"
_COMPONENTS = _P + "components"
_PARAMETERS = _P + "parameters"
_PERIOD = _P + "period"
_RECUR = _P + "recur"


def loads(
    data: Union[bytes, str], max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH
) -> List[Component]:
    """
    Read an xCal document into VCALENDAR components.

    The form is detected from the root element: the RFC 6321 namespace
    gives RFC 6321 xCal; a root C{icalendar}/C{vcalendar} in no namespace
    is the legacy DTD form of draft-ietf-calsch-many-xcal-02
    (L{conference.calendar.legacy}).

    @param data: the document (bytes; a str is encoded as UTF-8).
    @param max_bytes: size limit.
    @param max_depth: nesting limit.
    @return: the VCALENDAR components, in document order.
    @raise XCalError: on any malformed, unsafe or non-xCal input.
    """
    root = parse_xml(data, max_bytes)
    tag = root.tag
    if not isinstance(tag, str):
        raise XCalError("root is not an element", "/")
    if tag.startswith(_P):
        return read_root(root, max_depth)
    qname = etree.QName(tag)
    if qname.namespace is None and qname.localname.lower() in ("icalendar", "vcalendar"):
        from conference.calendar import legacy

        return legacy.read_root(root, max_depth)
    if qname.namespace == VCARD_NS:
        raise XCalError(
            "this is xCard (RFC 6351), not a calendar: read it with conference.calendar.xcard",
            "/" + qname.localname,
        )
    raise XCalError(f"root element {tag!r} is neither RFC 6321 xCal nor legacy xCal", "/")


def load_calendar(
    data: Union[bytes, str], max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH
) -> Component:
    """
    Read an xCal document that must hold exactly one VCALENDAR (the iSIP
    case) and return it.

    @raise XCalError: as L{loads}, or if there is not exactly one.
    """
    cals = loads(data, max_bytes, max_depth)
    if len(cals) != 1:
        raise XCalError(f"expected one vcalendar, found {len(cals)}", "/icalendar")
    return cals[0]


# --- writer -------------------------------------------------------------------

_SubElement = etree.SubElement
_XML_FORMATTERS = cv.XML_FORMATTERS


def to_element(calendars: Union[Component, Sequence[Component]]) -> Any:
    """
    Build the C{<icalendar>} element for one VCALENDAR or several.

    @raise XCalError: if a value cannot be written (a bad Python value or
        characters XML cannot carry), naming the property.
    """
    if isinstance(calendars, Component):
        calendars = [calendars]
    root = etree.Element(_P + "icalendar", nsmap={None: NS})
    for cal in calendars:
        _write_component(root, cal)
    return root


def dumps(calendars: Union[Component, Sequence[Component]], pretty: bool = False) -> bytes:
    """
    Serialize one VCALENDAR (or several) as an RFC 6321 document (UTF-8,
    with an XML declaration).

    A model that holds what RFC 6321's schema requires (VERSION, PRODID,
    DTSTAMP, UID, ...) serializes to a document valid against it;
    C{<components>} is always written for VCALENDAR (the schema requires
    it) and for other components only when they have sub-components.

    The document is written as text directly (several times faster than
    building an lxml tree, see docs/calendar.rst); L{to_element} builds
    the equivalent tree, and C{pretty=True} goes through it.

    @raise XCalError: as L{to_element}.
    """
    if isinstance(calendars, Component):
        calendars = [calendars]
    if pretty:
        root = to_element(calendars)
        return bytes(
            etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)
        )
    out = [_HEADER]
    try:
        for cal in calendars:
            _emit_component(out, cal)
    except CalendarError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, IndexError):
        to_element(calendars)  # raises the precise XCalError
        raise
    out.append("</icalendar>")
    doc = "".join(out)
    if _BAD_XML_CHARS.search(doc) is not None:
        to_element(calendars)  # names the property holding the character
        raise XCalError("text holds a character XML cannot carry", "/icalendar")
    return doc.encode("utf-8")


_HEADER = "<?xml version='1.0' encoding='utf-8'?>\n<icalendar xmlns=\"" + NS + '">'
_BAD_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_XML_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")
_TAGS: Dict[str, Tuple[str, str]] = {}


def _tags(name: str) -> Tuple[str, str]:
    # "<name>" and "</name>" for an iCalendar name (cached, bounded).
    found = _TAGS.get(name)
    if found is not None:
        return found
    if not _XML_NAME.match(name):
        raise XCalError(f"{name!r} cannot be an xCal element name", name)
    low = name.lower()
    pair = (f"<{low}>", f"</{low}>")
    if len(_TAGS) < 4096:
        _TAGS[name] = pair
    return pair


def _esc(text: str) -> str:
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    if "\r" in text:
        text = text.replace("\r", "&#13;")
    return text


def _emit_component(out: List[str], comp: Component) -> None:
    open_, close = _tags(comp.name)
    out.append(open_)
    out.append("<properties>")
    for prop in comp.properties:
        _emit_property(out, prop)
    out.append("</properties>")
    if comp.components or comp.name == "VCALENDAR":
        out.append("<components>")
        for sub in comp.components:
            _emit_component(out, sub)
        out.append("</components>")
    out.append(close)


def _emit_property(out: List[str], prop: Property) -> None:
    name = prop.name
    vtype = prop.value_type
    if name == "XML" and vtype == cv.TEXT:
        foreign = _foreign_element(prop.values[0] if prop.values else "")
        if foreign is not None:
            out.append(etree.tostring(foreign, encoding="unicode", with_tail=False))
            return
    open_, close = _tags(name)
    out.append(open_)
    if prop.params:
        out.append("<parameters>")
        for pname, pvals in prop.params.items():
            popen, pclose = _tags(pname)
            ptype = PARAM_TYPES.get(pname, cv.UNKNOWN)
            out.append(popen)
            if ptype == cv.BOOLEAN:
                for pv in pvals:
                    out.append(
                        "<boolean>true</boolean>"
                        if pv.upper() in ("TRUE", "1")
                        else "<boolean>false</boolean>"
                    )
            else:
                vopen, vclose = _VALUE_TAGS[ptype]
                for pv in pvals:
                    out.append(vopen + _esc(pv) + vclose)
            out.append(pclose)
        out.append("</parameters>")
    if name == "GEO" and len(prop.values) == 2:
        out.append(
            f"<latitude>{cv.format_float(prop.values[0])}</latitude>"
            f"<longitude>{cv.format_float(prop.values[1])}</longitude>"
        )
    elif name == "REQUEST-STATUS" and vtype == cv.TEXT:
        for tag, val in zip(("code", "description", "data"), prop.values):
            out.append(f"<{tag}>{_esc(val)}</{tag}>")
    elif vtype == cv.PERIOD:
        for period in prop.values:
            out.append("<period><start>" + cv.format_xml_date_time(period.start) + "</start>")
            if period.end is not None:
                out.append("<end>" + cv.format_xml_date_time(period.end) + "</end></period>")
            else:
                out.append(
                    "<duration>" + cv.format_xml_duration(period.duration) + "</duration></period>"
                )
    elif vtype == cv.RECUR:
        for recur in prop.values:
            out.append("<recur>")
            for part, val in cv.recur_items(recur, xml=True):
                low = part.lower()
                out.append(f"<{low}>{_esc(val)}</{low}>")
            out.append("</recur>")
    else:
        fmt = _XML_FORMATTERS[vtype]
        vopen, vclose = _VALUE_TAGS[vtype]
        if vtype in _ESCAPED_TYPES:
            for value in prop.values:
                out.append(vopen + _esc(fmt(value)) + vclose)
        else:
            for value in prop.values:
                out.append(vopen + fmt(value) + vclose)
    out.append(close)


_VALUE_TAGS: Dict[str, Tuple[str, str]] = {
    t: (f"<{t.lower()}>", f"</{t.lower()}>") for t in cv.VALUE_TYPES
}
_ESCAPED_TYPES = frozenset([cv.TEXT, cv.UNKNOWN, cv.URI, cv.CAL_ADDRESS, cv.BINARY])


def _write_component(parent: Any, comp: Component) -> None:
    elem = _SubElement(parent, _P + comp.name.lower())
    props = _SubElement(elem, _PROPERTIES)
    for prop in comp.properties:
        try:
            _write_property(props, prop)
        except CalendarError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            raise XCalError(f"cannot write value: {e}", f"{comp.name}/{prop.name}") from None
    if comp.components or comp.name == "VCALENDAR":
        subs = _SubElement(elem, _COMPONENTS)
        for sub in comp.components:
            _write_component(subs, sub)


def _write_property(props: Any, prop: Property) -> None:
    name = prop.name
    if name == "XML" and prop.value_type == cv.TEXT:
        foreign = _foreign_element(prop.values[0] if prop.values else "")
        if foreign is not None:
            props.append(foreign)
            return
    elem = _SubElement(props, _P + name.lower())
    if prop.params:
        params = _SubElement(elem, _PARAMETERS)
        for pname, pvals in prop.params.items():
            pelem = _SubElement(params, _P + pname.lower())
            ptype = PARAM_TYPES.get(pname, cv.UNKNOWN)
            if ptype == cv.BOOLEAN:
                for pv in pvals:
                    _SubElement(pelem, _P + "boolean").text = (
                        "true" if pv.upper() in ("TRUE", "1") else "false"
                    )
            else:
                ptag = _P + ptype.lower()
                for pv in pvals:
                    _SubElement(pelem, ptag).text = pv
    vtype = prop.value_type
    if name == "GEO":
        _SubElement(elem, _P + "latitude").text = cv.format_float(prop.values[0])
        _SubElement(elem, _P + "longitude").text = cv.format_float(prop.values[1])
    elif name == "REQUEST-STATUS" and vtype == cv.TEXT:
        for tag, val in zip(("code", "description", "data"), prop.values):
            _SubElement(elem, _P + tag).text = val
    elif vtype == cv.PERIOD:
        for period in prop.values:
            pel = _SubElement(elem, _PERIOD)
            _SubElement(pel, _P + "start").text = cv.format_xml_date_time(period.start)
            if period.end is not None:
                _SubElement(pel, _P + "end").text = cv.format_xml_date_time(period.end)
            else:
                _SubElement(pel, _P + "duration").text = cv.format_xml_duration(period.duration)
    elif vtype == cv.RECUR:
        for recur in prop.values:
            rel = _SubElement(elem, _RECUR)
            for part, val in cv.recur_items(recur, xml=True):
                _SubElement(rel, _P + part.lower()).text = val
    else:
        fmt = _XML_FORMATTERS[vtype]
        tag = _P + vtype.lower()
        for value in prop.values:
            _SubElement(elem, tag).text = fmt(value)


def _foreign_element(text: str) -> Any:
    # The XML property's value back as the foreign element it came from.
    if not text.lstrip().startswith("<"):
        return None
    try:
        elem = parse_xml(text)
    except XCalError:
        return None
    ns = etree.QName(elem).namespace
    if ns is None or ns == NS:
        return None
    return elem


__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "NS",
    "dumps",
    "check_depth",
    "element_path",
    "load_calendar",
    "loads",
    "parse_xml",
    "to_element",
]
