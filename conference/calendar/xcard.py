# -*- test-case-name: tests.unit.calendar.test_xcard -*-
"""
A reader for RFC 6351 xCard, so that the xCard half of the sabre/vobject
conformance pairs (and vCards that travel with calendars, such as an
organizer's card) convert to vCard text with the same hardened parser.
vCards are not calendars: L{conference.calendar.xcal.loads} refuses them,
and this module is called explicitly (the command line detects them).

Values are not typed: each property's value is kept as vCard text (its
parts escaped and joined with C{;} for structured values, C{,} for lists)
with the UNKNOWN value type, so L{conference.calendar.ical.dumps} writes
it unchanged.  This is enough to convert, not to interpret, vCards.
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple, Union

from lxml import etree

from conference.calendar import values as cv
from conference.calendar.errors import XCalError
from conference.calendar.model import Component, Property
from conference.calendar.xcal import MAX_BYTES, MAX_DEPTH, check_depth, element_path, parse_xml

NS = "urn:ietf:params:xml:ns:vcard-4.0"
_P = "{" + NS + "}"

#: Structured properties: their parts, in order (RFC 6351 appendix A).
STRUCTURED: Dict[str, Tuple[str, ...]] = {
    "N": ("surname", "given", "additional", "prefix", "suffix"),
    "ADR": ("pobox", "ext", "street", "locality", "region", "code", "country"),
    "GENDER": ("sex", "text"),
    "CLIENTPIDMAP": ("sourceid", "uri"),
}
#: Properties whose several values are components (C{;}), not a list (C{,}).
SEMICOLON_LISTS = frozenset(["ORG"])
#: xCard value elements.
VALUE_ELEMENTS = frozenset(
    [
        "text",
        "uri",
        "date",
        "time",
        "date-time",
        "date-and-or-time",
        "timestamp",
        "boolean",
        "integer",
        "float",
        "utc-offset",
        "language-tag",
        "unknown",
    ]
)


def loads(
    data: Union[bytes, str], max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH
) -> List[Component]:
    """
    Read an xCard document into VCARD components.

    @raise XCalError: on malformed, unsafe or non-xCard input, naming the
        element.
    """
    root = parse_xml(data, max_bytes)
    if root.tag != _P + "vcards":
        raise XCalError("root element is not xCard <vcards>", "/")
    cards: List[Component] = []
    for card in root:
        if not isinstance(card.tag, str):
            continue
        if card.tag != _P + "vcard":
            raise XCalError("only <vcard> elements may appear here", element_path(card))
        cards.append(_read_card(card, max_depth))
    return cards


def _read_card(elem: Any, max_depth: int) -> Component:
    comp = Component("VCARD")
    for child in elem:
        if not isinstance(child.tag, str):
            continue
        if child.tag == _P + "group":
            group = child.get("name", "")
            if not group or not group.replace("-", "").isalnum():
                raise XCalError(
                    "group needs a name of letters, digits and '-'", element_path(child)
                )
            for prop in child:
                if isinstance(prop.tag, str):
                    comp.properties.append(_read_property(prop, group, max_depth))
        else:
            comp.properties.append(_read_property(child, "", max_depth))
    if comp.get("VERSION") is None:
        comp.properties.insert(0, Property("VERSION", "4.0", None, cv.UNKNOWN))
    return comp


def _text(elem: Any) -> str:
    if len(elem):
        raise XCalError("value element must hold only text", element_path(elem))
    return elem.text or ""


def _read_property(elem: Any, group: str, max_depth: int) -> Property:
    prefix = f"{group}." if group else ""
    qname = etree.QName(elem)
    if qname.namespace != NS:
        # RFC 6351 section 5: foreign elements become the XML property.
        check_depth(elem, sum(1 for _ in elem.iterancestors()) + 1, max_depth)
        xml = etree.tostring(elem, encoding="unicode", with_tail=False)
        return Property(prefix + "XML", cv.escape_text(xml), None, cv.UNKNOWN)
    name = str(qname.localname).upper()
    params: Dict[str, List[str]] = {}
    parts: List[Tuple[str, List[str]]] = []
    for child in elem:
        if not isinstance(child.tag, str):
            continue
        cq = etree.QName(child)
        if cq.namespace != NS:
            continue
        local = str(cq.localname)
        if local == "parameters":
            for param in child:
                if not isinstance(param.tag, str):
                    continue
                pname = str(etree.QName(param).localname).upper()
                params[pname] = [_text(v) for v in param if isinstance(v.tag, str)]
                if not params[pname]:
                    raise XCalError("parameter has no value element", element_path(param))
            continue
        if parts and parts[-1][0] == local and name not in STRUCTURED:
            parts[-1][1].append(_text(child))
        else:
            parts.append((local, [_text(child)]))
    if not parts:
        raise XCalError("property has no value element", element_path(elem))
    expected = STRUCTURED.get(name)
    if expected is not None:
        value = ";".join(",".join(cv.escape_text(v) for v in vals) for _, vals in parts)
    else:
        for local, _ in parts:
            if local not in VALUE_ELEMENTS:
                raise XCalError("unknown value type element", element_path(elem) + "/" + local)
        values = [v for _, vals in parts for v in vals]
        sep = ";" if name in SEMICOLON_LISTS else ","
        value = sep.join(cv.escape_text(v) for v in values)
    return Property(prefix + name, value, params or None, cv.UNKNOWN)


__all__ = ["NS", "STRUCTURED", "loads"]
