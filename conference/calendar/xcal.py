# -*- test-case-name: tests.calendar.test_xcal -*-
"""
RFC 6321 xCal, read and written with lxml.  This is the server's wire
format for iSIP bodies, so the reader is hardened (no entities, no DTD or
network access, bounded size and depth) and every fault becomes an
L{XCalError} naming the element; the writer builds the tree directly with
C{etree.SubElement}, which keeps serialization cheap.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from lxml import etree

from conference.calendar import values as cv
from conference.calendar.errors import CalendarError, XCalError
from conference.calendar.model import (
    DEFAULT_TYPES,
    ENUM_PARAMS,
    PARAM_TYPES,
    Component,
    Property,
    normalize_param,
)

NS = "urn:ietf:params:xml:ns:icalendar-2.0"
VCARD_NS = "urn:ietf:params:xml:ns:vcard-4.0"
_P = "{" + NS + "}"

#: Largest document accepted, in bytes (an iSIP body; a SIP message over
#: UDP is far smaller, TCP bodies rarely exceed this).
MAX_BYTES = 1 << 20
#: Deepest element nesting accepted (xCal itself needs about 12 levels).
MAX_DEPTH = 48

_INTERNAL_SUBSET = re.compile(rb"<!DOCTYPE[^\[>]*\[(.*?)\]\s*>", re.S)
_ENTITY_DECL = re.compile(rb"<!ENTITY\s+(?:%\s+)?([^\s>]+)")

_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
)

# Value element tag -> (value type, parser of its text content).
_SCALARS: Dict[str, Tuple[str, Callable[[str], Any]]] = {
    _P + name.lower(): (name, parser) for name, parser in cv.XML_PARSERS.items()
}
_PROPERTIES = _P + "properties"
_COMPONENTS = _P + "components"
_PARAMETERS = _P + "parameters"
_PERIOD = _P + "period"
_NAMES: Dict[str, str] = {}
_RECUR = _P + "recur"


def element_path(elem: Any) -> str:
    """
    A readable path of C{elem} (local names, 1-based index among siblings
    of the same name), for error messages.
    """
    parts: List[str] = []
    node = elem
    while node is not None:
        tag = node.tag if isinstance(node.tag, str) else "?"
        local = etree.QName(tag).localname
        parent = node.getparent()
        if parent is not None:
            same = [c for c in parent if c.tag == node.tag]
            if len(same) > 1:
                local += f"[{same.index(node) + 1}]"
        parts.append(local)
        node = parent
    return "/" + "/".join(reversed(parts))


def parse_xml(data: Union[bytes, str], max_bytes: int = MAX_BYTES) -> Any:
    """
    Parse untrusted XML with the hardened parser and return the root.

    Entity declarations (internal or external) and entity references are
    refused outright; an external DTD is never fetched; documents larger
    than C{max_bytes} are refused before parsing.

    @raise XCalError: naming the fault.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not isinstance(data, bytes):
        raise XCalError("document must be bytes or str", "/")
    if len(data) > max_bytes:
        raise XCalError(f"document is {len(data)} bytes, the limit is {max_bytes}", "/")
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as e:
        raise XCalError(f"not well-formed XML: {e.msg}", f"/ (line {e.lineno})") from None
    except ValueError as e:
        raise XCalError(f"not parseable XML: {e}", "/") from None
    if root is None:
        raise XCalError("empty document", "/")
    if root.getroottree().docinfo.internalDTD is not None:
        # The parser resolves no entities, but a declaration is refused
        # outright.  The internal subset is read from the bytes: lxml's
        # DTD.iterentities() is a Cython generator, and PyPy's cpyext
        # aborts the process when it finalizes one.
        subset = _INTERNAL_SUBSET.search(data)
        if subset is not None:
            declared = _ENTITY_DECL.search(subset.group(1))
            if declared is not None:
                name = declared.group(1).decode("utf-8", "replace")
                raise XCalError(
                    f"entity declaration {name!r} refused (no entities allowed)", "<!DOCTYPE>"
                )
    return root


def check_depth(elem: Any, base: int, max_depth: int) -> None:
    """
    Refuse a subtree nested deeper than C{max_depth}, its root being at
    depth C{base} (iteratively, so a deep tree cannot exhaust the stack).

    @raise XCalError: naming the first element too deep.
    """
    stack = [(elem, base)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise XCalError(f"nesting deeper than {max_depth} elements", element_path(node))
        stack.extend((child, depth + 1) for child in node)


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
    qname = etree.QName(tag)
    if qname.namespace == NS:
        try:
            if qname.localname == "icalendar":
                return [_read_component(child, 2, max_depth) for child in _elements(root)]
            if qname.localname == "vcalendar":
                return [_read_component(root, 1, max_depth)]
        except XCalError:
            raise
        except CalendarError as e:
            raise XCalError(e.fault, e.where) from None
        raise XCalError(f"root element {qname.localname!r} is not icalendar", "/")
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


def _elements(parent: Any) -> List[Any]:
    # Children that are elements (comments/PIs are removed by the parser).
    return [c for c in parent if isinstance(c.tag, str)]


def _read_component(elem: Any, depth: int, max_depth: int) -> Component:
    if depth > max_depth:
        raise XCalError(f"nesting deeper than {max_depth} elements", element_path(elem))
    qname = etree.QName(elem.tag)
    if qname.namespace != NS:
        raise XCalError("component element is not in the xCal namespace", element_path(elem))
    comp = Component(qname.localname)
    seen_props = seen_comps = False
    for child in elem:
        tag = child.tag
        if tag == _PROPERTIES:
            if seen_props:
                raise XCalError("second <properties> element", element_path(child))
            seen_props = True
            for prop_elem in child:
                prop = _read_property(prop_elem, depth + 2, max_depth)
                if prop is not None:
                    comp.properties.append(prop)
        elif tag == _COMPONENTS:
            if seen_comps:
                raise XCalError("second <components> element", element_path(child))
            seen_comps = True
            for sub in child:
                if isinstance(sub.tag, str):
                    comp.components.append(_read_component(sub, depth + 2, max_depth))
        elif isinstance(tag, str) and tag.startswith(_P):
            raise XCalError(
                "unexpected element (a component holds only properties and components)",
                element_path(child),
            )
    return comp


def _text(elem: Any) -> str:
    if len(elem):
        raise XCalError("value element must hold only text", element_path(elem))
    text = elem.text
    return text if text is not None else ""


def _read_property(elem: Any, depth: int, max_depth: int) -> Optional[Property]:
    tag = elem.tag
    if not isinstance(tag, str):
        return None
    if not tag.startswith(_P):
        # RFC 6321 section 4.1: a foreign element directly inside
        # <properties> becomes the XML property.
        check_depth(elem, depth, max_depth)
        xml = etree.tostring(elem, encoding="unicode", with_tail=False)
        return Property("XML", xml, None, cv.TEXT)
    name = _NAMES.get(tag)
    if name is None:
        name = tag[len(_P) :].upper()
        if len(_NAMES) < 4096:
            _NAMES[tag] = name
    prop = Property.__new__(Property)
    prop.name = name
    prop.params = {}
    vals: List[Any] = []
    vtype: Optional[str] = None
    for child in elem:
        ctag = child.tag
        scalar = _SCALARS.get(ctag)
        if scalar is not None:
            kind, parser = scalar
            if len(child):
                raise XCalError("value element must hold only text", element_path(child))
            text = child.text
            try:
                vals.append(parser(text if text is not None else ""))
            except CalendarError as e:
                raise XCalError(e.fault, element_path(child)) from None
        elif ctag == _PARAMETERS:
            _read_parameters(child, prop.params)
            continue
        elif ctag == _PERIOD:
            kind = cv.PERIOD
            vals.append(_read_period(child))
        elif ctag == _RECUR:
            kind = cv.RECUR
            vals.append(_read_recur(child))
        elif name == "GEO" and ctag in (_P + "latitude", _P + "longitude"):
            kind = cv.FLOAT
            try:
                vals.append(cv.XML_PARSERS[cv.FLOAT](_text(child)))
            except CalendarError as e:
                raise XCalError(e.fault, element_path(child)) from None
        elif name == "REQUEST-STATUS" and ctag in (
            _P + "code",
            _P + "description",
            _P + "data",
        ):
            kind = cv.TEXT
            vals.append(_text(child))
        elif isinstance(ctag, str) and ctag.startswith(_P):
            raise XCalError("unknown value type element", element_path(child))
        else:
            continue  # foreign elements below a property are ignored (§4.1)
        if vtype is None:
            vtype = kind
        elif vtype != kind:
            raise XCalError(
                f"mixes value types {vtype.lower()} and {kind.lower()}", element_path(child)
            )
    if vtype is None:
        text = (elem.text or "").strip()
        default = DEFAULT_TYPES.get(name, cv.UNKNOWN)
        if not text or default not in cv.XML_PARSERS:
            raise XCalError("property has no value element", element_path(elem))
        # Leniency for RFC 6321 B.2.2's erratum (<tzid>US/Eastern</tzid>):
        # bare text is a value of the property's default type.
        try:
            vals.append(cv.XML_PARSERS[default](text))
        except CalendarError as e:
            raise XCalError(e.fault, element_path(elem)) from None
        vtype = default
    if name == "GEO" and [etree.QName(c).localname for c in _elements(elem)][-2:] != [
        "latitude",
        "longitude",
    ]:
        raise XCalError("geo needs latitude then longitude", element_path(elem))
    if name == "REQUEST-STATUS":
        locals_ = [etree.QName(c).localname for c in _elements(elem) if c.tag != _PARAMETERS]
        if locals_ not in (["code", "description"], ["code", "description", "data"]):
            raise XCalError("request-status needs code, description[, data]", element_path(elem))
    prop.value_type = vtype
    prop.values = vals
    if vtype == cv.BINARY and prop.params.get("ENCODING") == ("BASE64",):
        del prop.params["ENCODING"]
    return prop


# Parameter element tag -> (NAME, enumerated?) for the known parameters.
_PARAM_INFO: Dict[str, Tuple[str, bool]] = {
    _P + name.lower(): (name, name in ENUM_PARAMS) for name in PARAM_TYPES
}
_PLAIN_VALUE_TAGS = frozenset(_P + t for t in ("text", "unknown", "uri", "cal-address"))


def _read_parameters(elem: Any, params: Dict[str, Tuple[str, ...]]) -> None:
    for param in elem:
        ptag = param.tag
        info = _PARAM_INFO.get(ptag)
        if info is None:
            if not isinstance(ptag, str) or not ptag.startswith(_P):
                continue
            info = (ptag[len(_P) :].upper(), False)
        pname, enum = info
        if pname == "VALUE":
            continue
        pvals: List[str] = []
        for val_elem in param:
            vtag = val_elem.tag
            if vtag in _PLAIN_VALUE_TAGS and not len(val_elem):
                text = val_elem.text
                pvals.append(text if text is not None else "")
                continue
            scalar = _SCALARS.get(vtag)
            if scalar is None:
                if not isinstance(vtag, str) or not vtag.startswith(_P):
                    continue
                raise XCalError("unknown parameter value element", element_path(val_elem))
            kind, parser = scalar
            try:
                pvals.append(cv.format_ical_value(kind, parser(_text(val_elem))))
            except CalendarError as e:
                raise XCalError(e.fault, element_path(val_elem)) from None
        if not pvals:
            raise XCalError("parameter has no value element", element_path(param))
        if not enum:
            params[pname] = tuple(pvals)
        elif pname == "RSVP":
            params[pname] = normalize_param(pname, pvals)
        elif len(pvals) == 1:
            params[pname] = (pvals[0].upper(),)
        else:
            params[pname] = tuple(p.upper() for p in pvals)


_START = _P + "start"
_END = _P + "end"
_DURATION = _P + "duration"


def _read_period(elem: Any) -> cv.Period:
    start = end = duration = None
    try:
        for child in elem:
            tag = child.tag
            if len(child):
                raise XCalError("value element must hold only text", element_path(child))
            text = child.text or ""
            if tag == _START:
                start = cv.parse_xml_date_time(text)
            elif tag == _END:
                end = cv.parse_xml_date_time(text)
            elif tag == _DURATION:
                duration = cv.parse_duration(text)
            elif isinstance(tag, str):
                raise XCalError("unexpected element in period", element_path(child))
    except CalendarError as e:
        if isinstance(e, XCalError):
            raise
        raise XCalError(e.fault, element_path(elem)) from None
    if start is None or (end is None) == (duration is None):
        raise XCalError("period needs start and exactly one of end/duration", element_path(elem))
    return cv.Period(start, end, duration)


def _read_recur(elem: Any) -> cv.Recur:
    items: List[Tuple[str, str]] = []
    for child in _elements(elem):
        qn = etree.QName(child)
        if qn.namespace != NS:
            continue
        items.append((qn.localname.upper(), _text(child)))
    try:
        return cv.recur_from_parts(items, "<recur>", xml=True)
    except CalendarError as e:
        raise XCalError(e.fault, element_path(elem)) from None


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
