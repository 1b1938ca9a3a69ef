# -*- test-case-name: tests.unit.calendar.test_xcal_reader -*-
"""
The RFC 6321 xCal reader: hardened parsing of untrusted XML and the walk of
the lxml tree into typed model values.  It is the hot path of every iSIP
request, so common property shapes take a tight fast path and anything else
(or anything wrong) goes through the strict reader, the single source of
the precise errors.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

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
_P = "{" + NS + "}"

#: Largest document accepted, in bytes (an iSIP body; a SIP message over
#: UDP is far smaller, TCP bodies rarely exceed this).
MAX_BYTES = 1 << 20
#: Deepest element nesting accepted (xCal itself needs about 12 levels).
MAX_DEPTH = 48
#: Deepest component nesting (a VCALENDAR is 1, its VEVENT 2, a VALARM in
#: that 3) whose xCal form fits L{MAX_DEPTH}: a component at nesting C{n} is
#: element C{2n} of the document and its parameter values lie 5 deeper.  The
#: iCalendar and legacy readers refuse deeper nesting, so that whatever they
#: accept can be stored as xCal and read back.
MAX_NESTING = (MAX_DEPTH - 5) // 2

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
_RECUR = _P + "recur"
_BOOLEAN = _P + "boolean"
_START = _P + "start"
_END = _P + "end"
_DURATION = _P + "duration"
_NAMES: Dict[str, str] = {}
_CACHE_LIMIT = 4096


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


def read_root(root: Any, max_depth: int = MAX_DEPTH, strict: bool = False) -> List[Component]:
    """
    Read the VCALENDAR components of an RFC 6321 root element
    (C{<icalendar>} or a lone C{<vcalendar>}) parsed by L{parse_xml}.

    @param strict: read every property with the strict reader only (the
        reference the fast path is tested against); the result is the same.
    @raise XCalError: on any fault, naming the element.
    """
    tag = root.tag
    if not isinstance(tag, str) or not tag.startswith(_P):
        raise XCalError("root element is not in the RFC 6321 namespace", "/")
    local = tag[len(_P) :]
    try:
        if local == "icalendar":
            return [
                _read_component(child, 2, max_depth, strict)
                for child in root
                if isinstance(child.tag, str)
            ]
        if local == "vcalendar":
            return [_read_component(root, 1, max_depth, strict)]
    except XCalError:
        raise
    except CalendarError as e:
        raise XCalError(e.fault, e.where) from None
    raise XCalError(f"root element {local!r} is not icalendar", "/")


def _read_component(elem: Any, depth: int, max_depth: int, strict: bool) -> Component:
    if depth > max_depth:
        raise XCalError(f"nesting deeper than {max_depth} elements", element_path(elem))
    tag = elem.tag
    if not tag.startswith(_P):
        raise XCalError("component element is not in the xCal namespace", element_path(elem))
    comp = Component(tag[len(_P) :])
    seen_props = seen_comps = False
    for child in elem:
        ctag = child.tag
        if ctag == _PROPERTIES:
            if seen_props:
                raise XCalError("second <properties> element", element_path(child))
            seen_props = True
            if strict:
                for prop_elem in child:
                    prop = _read_property(prop_elem, depth + 2, max_depth)
                    if prop is not None:
                        comp.properties.append(prop)
            else:
                _read_properties_fast(child, comp.properties, depth + 2, max_depth)
        elif ctag == _COMPONENTS:
            if seen_comps:
                raise XCalError("second <components> element", element_path(child))
            seen_comps = True
            for sub in child:
                if isinstance(sub.tag, str):
                    comp.components.append(_read_component(sub, depth + 2, max_depth, strict))
        elif isinstance(ctag, str) and ctag.startswith(_P):
            raise XCalError(
                "unexpected element (a component holds only properties and components)",
                element_path(child),
            )
    return comp


# --- fast path ------------------------------------------------------------------
#
# Each table below only holds shapes whose meaning is plain; a property the
# fast path does not fully understand (structured values, foreign or unknown
# elements, parameters it does not know, any syntax error) is read again,
# from scratch, by the strict reader, which either types it the same way or
# raises the precise error.  So the fast path never has to produce errors.

# Value element tag -> (value type, parser or None for text kept as is).
_FAST_VALUES: Dict[str, Tuple[str, Optional[Callable[[str], Any]]]] = {
    _P + name.lower(): (
        name,
        None if name in (cv.TEXT, cv.UNKNOWN, cv.URI, cv.CAL_ADDRESS) else parser,
    )
    for name, parser in cv.XML_PARSERS.items()
    if name != cv.BINARY  # its ENCODING parameter is dropped: strict path
}

# Property element tag -> NAME, or "" for the properties left to the strict
# reader (structured values).  Filled as tags are met, bounded.
_FAST_NAMES: Dict[Any, str] = {}
_STRUCTURED_NAMES = frozenset(["GEO", "REQUEST-STATUS"])

# Parameter element tag -> (NAME, mode); modes below.  VALUE is not listed
# (the strict reader drops it); unknown xCal-namespace parameters are added
# as they are met, bounded.
_PLAIN, _ENUM, _RSVP = 0, 1, 2
_FAST_PARAMS: Dict[Any, Tuple[str, int]] = {
    _P + name.lower(): (name, _RSVP if name == "RSVP" else _ENUM if name in ENUM_PARAMS else _PLAIN)
    for name in PARAM_TYPES
}
_PLAIN_VALUE_TAGS = frozenset(_P + t for t in ("text", "unknown", "uri", "cal-address"))
_TRUE = ("true", "1")
_FALSE = ("false", "0")
_UPPER_TRUE = ("TRUE", "1")

_new_property = Property.__new__


def _fast_name(tag: Any) -> str:
    # The NAME of a property element tag for the fast path, "" if none.
    if not isinstance(tag, str) or not tag.startswith(_P):
        return ""
    name = tag[len(_P) :].upper()
    if name in _STRUCTURED_NAMES:
        name = ""
    if len(_FAST_NAMES) < _CACHE_LIMIT:
        _FAST_NAMES[tag] = name
    return name


def _read_properties_fast(container: Any, out: List[Property], depth: int, max_depth: int) -> None:
    # Read each property under <properties> into out, in order.
    fast_names = _FAST_NAMES
    fast_values = _FAST_VALUES
    parameters = _PARAMETERS
    period_tag = _PERIOD
    for elem in container[:]:
        tag = elem.tag
        name = fast_names.get(tag)
        if name is None:
            name = _fast_name(tag)
        prop: Optional[Property] = None
        if name:
            params: Dict[str, Tuple[str, ...]] = {}
            vals: List[Any] = []
            vtype: Optional[str] = None
            for child in elem[:]:
                ctag = child.tag
                found = fast_values.get(ctag)
                if found is not None:
                    kind, parser = found
                    if vtype is None:
                        vtype = kind
                    elif vtype != kind:
                        break
                    if len(child):
                        break
                    text = child.text
                    if text is None:
                        text = ""
                    if parser is None:
                        vals.append(text)
                    else:
                        try:
                            vals.append(parser(text))
                        except CalendarError:
                            break
                elif ctag == parameters:
                    if not _read_parameters_fast(child, params):
                        break
                elif ctag == period_tag and (vtype is None or vtype == cv.PERIOD):
                    period = _read_period_fast(child)
                    if period is None:
                        break
                    vtype = cv.PERIOD
                    vals.append(period)
                else:
                    break
            else:
                if vtype is not None:
                    prop = _new_property(Property)
                    prop.name = name
                    prop.params = params
                    prop.value_type = vtype
                    prop.values = vals
        if prop is None:
            prop = _read_property(elem, depth, max_depth)
            if prop is None:
                continue
        out.append(prop)


def _read_parameters_fast(elem: Any, params: Dict[str, Tuple[str, ...]]) -> bool:
    # Read <parameters> into params; False if the strict reader must.
    fast_params = _FAST_PARAMS
    plain_tags = _PLAIN_VALUE_TAGS
    for param in elem[:]:
        ptag = param.tag
        info = fast_params.get(ptag)
        if info is None:
            if not isinstance(ptag, str) or not ptag.startswith(_P):
                return False
            pname = ptag[len(_P) :].upper()
            if pname == "VALUE" or len(fast_params) >= _CACHE_LIMIT:
                return False
            info = fast_params[ptag] = (pname, _PLAIN)
        kids = param[:]
        if len(kids) != 1:
            if not _read_values_fast(kids, info, params):
                return False
            continue
        val_elem = kids[0]
        if len(val_elem):
            return False
        vtag = val_elem.tag
        text = val_elem.text
        if text is None:
            text = ""
        pname, mode = info
        if vtag in plain_tags:
            if mode == _PLAIN:
                params[pname] = (text,)
                continue
            text = text.upper()
        elif vtag == _BOOLEAN:
            low = text.strip().lower()
            if low in _TRUE:
                text = "TRUE"
            elif low in _FALSE:
                text = "FALSE"
            else:
                return False
        else:
            return False
        if mode == _RSVP:
            params[pname] = ("TRUE" if text in _UPPER_TRUE else "FALSE",)
        else:
            params[pname] = (text,)
    return True


def _read_values_fast(
    kids: List[Any], info: Tuple[str, int], params: Dict[str, Tuple[str, ...]]
) -> bool:
    # A parameter of several values (or none); False if the strict reader must.
    pvals: List[str] = []
    for val_elem in kids:
        if len(val_elem):
            return False
        vtag = val_elem.tag
        text = val_elem.text
        if text is None:
            text = ""
        if vtag in _PLAIN_VALUE_TAGS:
            pvals.append(text)
        elif vtag == _BOOLEAN:
            low = text.strip().lower()
            if low in _TRUE:
                pvals.append("TRUE")
            elif low in _FALSE:
                pvals.append("FALSE")
            else:
                return False
        else:
            return False
    if not pvals:
        return False
    pname, mode = info
    if mode == _PLAIN:
        params[pname] = tuple(pvals)
    elif mode == _ENUM:
        params[pname] = tuple([p.upper() for p in pvals])
    else:
        params[pname] = tuple(["TRUE" if p.upper() in _UPPER_TRUE else "FALSE" for p in pvals])
    return True


def _read_period_fast(elem: Any) -> Optional[cv.Period]:
    # A <period> of start and end or duration; None if the strict reader must.
    start = end = duration = None
    try:
        for child in elem:
            if len(child):
                return None
            tag = child.tag
            text = child.text or ""
            if tag == _START:
                start = cv.parse_xml_date_time(text)
            elif tag == _END:
                end = cv.parse_xml_date_time(text)
            elif tag == _DURATION:
                duration = cv.parse_duration(text)
            else:
                return None
    except CalendarError:
        return None
    if start is None or (end is None) == (duration is None):
        return None
    return cv.Period(start, end, duration)


# --- strict path ------------------------------------------------------------------


def _text(elem: Any) -> str:
    if len(elem):
        raise XCalError("value element must hold only text", element_path(elem))
    text = elem.text
    return text if text is not None else ""


def _local_names(elem: Any) -> List[str]:
    # Local names of the element children of elem.
    return [etree.QName(c).localname for c in elem if isinstance(c.tag, str)]


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
        if len(_NAMES) < _CACHE_LIMIT:
            _NAMES[tag] = name
    prop = _new_property(Property)
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
    if name == "GEO" and _local_names(elem)[-2:] != ["latitude", "longitude"]:
        raise XCalError("geo needs latitude then longitude", element_path(elem))
    if name == "REQUEST-STATUS":
        locals_ = [
            etree.QName(c).localname
            for c in elem
            if isinstance(c.tag, str) and c.tag != _PARAMETERS
        ]
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
    for child in elem:
        if not isinstance(child.tag, str):
            continue
        qn = etree.QName(child)
        if qn.namespace != NS:
            continue
        items.append((qn.localname.upper(), _text(child)))
    try:
        return cv.recur_from_parts(items, "<recur>", xml=True)
    except CalendarError as e:
        raise XCalError(e.fault, element_path(elem)) from None


__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_NESTING",
    "NS",
    "check_depth",
    "element_path",
    "parse_xml",
    "read_root",
]
