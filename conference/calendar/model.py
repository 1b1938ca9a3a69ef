# -*- test-case-name: tests.unit.calendar.test_model -*-
"""
The one in-memory form of calendar data that every reader produces and
every writer consumes: components holding properties, properties holding
parameters and typed values.  Equality is structural so that round trips
between xCal, legacy xCal and iCalendar text can be checked on the model.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from conference.calendar import values as cv
from conference.calendar.errors import CalendarValueError

#: Default value type of each property (RFC 5545 section 3.7/3.8, RFC 7986,
#: RFC 6321 section 4.2 for XML).  Properties not listed have no known
#: default: read without a VALUE parameter they become UNKNOWN (RFC 6321 §5).
DEFAULT_TYPES: Dict[str, str] = {
    "CALSCALE": cv.TEXT,
    "METHOD": cv.TEXT,
    "PRODID": cv.TEXT,
    "VERSION": cv.TEXT,
    "ATTACH": cv.URI,
    "CATEGORIES": cv.TEXT,
    "CLASS": cv.TEXT,
    "COMMENT": cv.TEXT,
    "DESCRIPTION": cv.TEXT,
    "GEO": cv.FLOAT,
    "LOCATION": cv.TEXT,
    "PERCENT-COMPLETE": cv.INTEGER,
    "PRIORITY": cv.INTEGER,
    "RESOURCES": cv.TEXT,
    "STATUS": cv.TEXT,
    "SUMMARY": cv.TEXT,
    "COMPLETED": cv.DATE_TIME,
    "DTEND": cv.DATE_TIME,
    "DUE": cv.DATE_TIME,
    "DTSTART": cv.DATE_TIME,
    "DURATION": cv.DURATION,
    "FREEBUSY": cv.PERIOD,
    "TRANSP": cv.TEXT,
    "TZID": cv.TEXT,
    "TZNAME": cv.TEXT,
    "TZOFFSETFROM": cv.UTC_OFFSET,
    "TZOFFSETTO": cv.UTC_OFFSET,
    "TZURL": cv.URI,
    "ATTENDEE": cv.CAL_ADDRESS,
    "CONTACT": cv.TEXT,
    "ORGANIZER": cv.CAL_ADDRESS,
    "RECURRENCE-ID": cv.DATE_TIME,
    "RELATED-TO": cv.TEXT,
    "URL": cv.URI,
    "UID": cv.TEXT,
    "EXDATE": cv.DATE_TIME,
    "RDATE": cv.DATE_TIME,
    "RRULE": cv.RECUR,
    "ACTION": cv.TEXT,
    "REPEAT": cv.INTEGER,
    "TRIGGER": cv.DURATION,
    "CREATED": cv.DATE_TIME,
    "DTSTAMP": cv.DATE_TIME,
    "LAST-MODIFIED": cv.DATE_TIME,
    "SEQUENCE": cv.INTEGER,
    "REQUEST-STATUS": cv.TEXT,
    "XML": cv.TEXT,
    # RFC 7986
    "NAME": cv.TEXT,
    "REFRESH-INTERVAL": cv.DURATION,
    "SOURCE": cv.URI,
    "COLOR": cv.TEXT,
    "IMAGE": cv.URI,
    "CONFERENCE": cv.URI,
}

#: Properties whose iCalendar text holds a comma-separated list of values
#: (RFC 6321 section 3.4.1.1).
MULTI_VALUED = frozenset(["CATEGORIES", "RESOURCES", "FREEBUSY", "EXDATE", "RDATE"])

#: Properties with a structured (semicolon-separated) value.
STRUCTURED = frozenset(["GEO", "REQUEST-STATUS"])

#: Value type of known parameters in xCal (RFC 6321 appendix A 3.2, RFC 7986).
PARAM_TYPES: Dict[str, str] = {
    "ALTREP": cv.URI,
    "CN": cv.TEXT,
    "CUTYPE": cv.TEXT,
    "DELEGATED-FROM": cv.CAL_ADDRESS,
    "DELEGATED-TO": cv.CAL_ADDRESS,
    "DIR": cv.URI,
    "ENCODING": cv.TEXT,
    "FMTTYPE": cv.TEXT,
    "FBTYPE": cv.TEXT,
    "LANGUAGE": cv.TEXT,
    "MEMBER": cv.CAL_ADDRESS,
    "PARTSTAT": cv.TEXT,
    "RANGE": cv.TEXT,
    "RELATED": cv.TEXT,
    "RELTYPE": cv.TEXT,
    "ROLE": cv.TEXT,
    "RSVP": cv.BOOLEAN,
    "SENT-BY": cv.CAL_ADDRESS,
    "TZID": cv.TEXT,
    "DISPLAY": cv.TEXT,
    "EMAIL": cv.TEXT,
    "FEATURE": cv.TEXT,
    "LABEL": cv.TEXT,
}

#: Parameters whose values are case-insensitive enumerations (stored
#: upper-case so that C{rsvp=true} and C{RSVP=TRUE} compare equal).
ENUM_PARAMS = frozenset(
    ["CUTYPE", "ENCODING", "FBTYPE", "PARTSTAT", "RANGE", "RELATED", "RELTYPE", "ROLE", "RSVP"]
)

ParamInput = Union[str, Sequence[str]]


def normalize_param(name: str, value: ParamInput) -> Tuple[str, ...]:
    """
    Normalize one parameter's value(s) to a tuple of strings, upper-casing
    enumerated parameters and spelling booleans C{TRUE}/C{FALSE}.
    """
    vals = (value,) if isinstance(value, str) else tuple(value)
    if name in ENUM_PARAMS:
        vals = tuple(v.upper() for v in vals)
        if name == "RSVP":
            vals = tuple("TRUE" if v in ("TRUE", "1") else "FALSE" for v in vals)
    return vals


def python_type_check(vtype: str, value: Any) -> bool:
    """
    Whether C{value} is an acceptable Python value for C{vtype} (used to
    catch programming errors when building models).
    """
    expected: Dict[str, Tuple[type, ...]] = {
        cv.BINARY: (bytes,),
        cv.BOOLEAN: (bool,),
        cv.CAL_ADDRESS: (str,),
        cv.DATE: (date,),
        cv.DATE_TIME: (datetime,),
        cv.DURATION: (timedelta,),
        cv.FLOAT: (float, int),
        cv.INTEGER: (int,),
        cv.PERIOD: (cv.Period,),
        cv.RECUR: (cv.Recur,),
        cv.TEXT: (str,),
        cv.TIME: (time,),
        cv.URI: (str,),
        cv.UTC_OFFSET: (timedelta,),
        cv.UNKNOWN: (str,),
    }
    kinds = expected.get(vtype)
    if kinds is None:
        return False
    if vtype == cv.DATE and isinstance(value, datetime):
        return False
    if vtype in (cv.INTEGER, cv.FLOAT) and isinstance(value, bool):
        return False
    return isinstance(value, kinds)


class Property:
    """
    One property: an upper-case C{name}, C{params} (upper-case name ->
    tuple of string values, without VALUE, which C{value_type} replaces),
    a C{value_type} (see L{conference.calendar.values}) and the typed
    C{values} (several for multi-valued properties, two floats for GEO,
    code/description[/data] strings for REQUEST-STATUS).
    """

    __slots__ = ("name", "params", "value_type", "values")

    def __init__(
        self,
        name: str,
        values: Union[Any, List[Any]],
        params: Optional[Mapping[str, ParamInput]] = None,
        value_type: Optional[str] = None,
    ) -> None:
        self.name = name.upper()
        if not isinstance(values, list):
            values = [values]
        self.values: List[Any] = values
        if value_type is None:
            value_type = DEFAULT_TYPES.get(self.name, cv.TEXT)
            if value_type == cv.DATE_TIME and values and not isinstance(values[0], datetime):
                if isinstance(values[0], date):
                    value_type = cv.DATE
                elif isinstance(values[0], cv.Period):
                    value_type = cv.PERIOD
        self.value_type: str = value_type
        self.params: Dict[str, Tuple[str, ...]] = {}
        if params:
            for key, val in params.items():
                up = key.upper()
                if up != "VALUE":
                    self.params[up] = normalize_param(up, val)

    @property
    def value(self) -> Any:
        """
        The first (usually only) value.
        """
        return self.values[0] if self.values else None

    def param(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """
        The first value of parameter C{name}, or C{default}.
        """
        vals = self.params.get(name.upper())
        return vals[0] if vals else default

    def check(self) -> None:
        """
        Verify the Python values suit C{value_type}.

        @raise CalendarValueError: naming the property and the bad value.
        """
        if self.value_type not in cv.VALUE_TYPES:
            raise CalendarValueError(f"unknown value type {self.value_type!r}", self.name)
        if self.name == "GEO":
            if len(self.values) != 2:
                raise CalendarValueError("GEO needs latitude and longitude", self.name)
            return
        if self.name == "REQUEST-STATUS":
            if not 2 <= len(self.values) <= 3:
                raise CalendarValueError("needs code, description and optional data", self.name)
            return
        for value in self.values:
            if not python_type_check(self.value_type, value):
                raise CalendarValueError(f"{value!r} is not a {self.value_type} value", self.name)

    def canonical(self) -> Tuple[Any, ...]:
        """
        A comparable, order-normalized form (used for equality).
        """
        return (
            self.name,
            tuple(sorted(self.params.items())),
            self.value_type,
            tuple(_canon_value(v) for v in self.values),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Property):
            return NotImplemented
        return self.canonical() == other.canonical()

    def __hash__(self) -> int:
        return hash(repr(self.canonical()))

    def copy(self) -> Property:
        """
        A copy with its own parameter dict and value list.
        """
        new = Property.__new__(Property)
        new.name = self.name
        new.params = dict(self.params)
        new.value_type = self.value_type
        new.values = list(self.values)
        return new

    def __repr__(self) -> str:
        return f"Property({self.name!r}, {self.values!r}, {self.params!r}, {self.value_type!r})"


def _canon_value(value: Any) -> Any:
    # Aware datetimes compare by instant, naive ones by wall clock; keep the
    # distinction (floating vs UTC) visible in the canonical form.
    if isinstance(value, datetime):
        return (
            value.tzinfo is not None,
            value.replace(tzinfo=None)
            if not value.tzinfo
            else value.astimezone(cv.UTC).replace(tzinfo=None),
        )
    if isinstance(value, cv.Period):
        return tuple(_canon_value(p) for p in value)
    if isinstance(value, cv.Recur):
        return repr(value)
    if isinstance(value, float):
        return repr(value)
    return value


class Component:
    """
    A calendar component (VCALENDAR, VEVENT, VALARM, ...): an upper-case
    C{name}, its C{properties} in order and nested C{components}.

    Equality ignores the order of properties (iCalendar gives it no
    meaning) but not the order of sub-components.
    """

    __slots__ = ("components", "name", "properties")

    def __init__(
        self,
        name: str,
        properties: Optional[Iterable[Property]] = None,
        components: Optional[Iterable[Component]] = None,
    ) -> None:
        self.name = name.upper()
        self.properties: List[Property] = list(properties or ())
        self.components: List[Component] = list(components or ())

    # -- access ---------------------------------------------------------------

    def get(self, name: str) -> Optional[Property]:
        """
        The first property called C{name}, or L{None}.
        """
        up = name.upper()
        for prop in self.properties:
            if prop.name == up:
                return prop
        return None

    def get_all(self, name: str) -> List[Property]:
        """
        Every property called C{name}, in order.
        """
        up = name.upper()
        return [p for p in self.properties if p.name == up]

    def value(self, name: str, default: Any = None) -> Any:
        """
        The first value of the first property called C{name}, or C{default}.
        """
        prop = self.get(name)
        return default if prop is None or not prop.values else prop.values[0]

    def add(
        self,
        name: str,
        value: Union[Any, List[Any]],
        params: Optional[Mapping[str, ParamInput]] = None,
        value_type: Optional[str] = None,
    ) -> Property:
        """
        Append a new property and return it.
        """
        prop = Property(name, value, params, value_type)
        self.properties.append(prop)
        return prop

    def set(
        self,
        name: str,
        value: Union[Any, List[Any]],
        params: Optional[Mapping[str, ParamInput]] = None,
        value_type: Optional[str] = None,
    ) -> Property:
        """
        Replace every property called C{name} by one new property, kept at
        the position of the first one replaced.
        """
        prop = Property(name, value, params, value_type)
        for i, old in enumerate(self.properties):
            if old.name == prop.name:
                self.properties[i] = prop
                self.properties = [
                    p for j, p in enumerate(self.properties) if j <= i or p.name != prop.name
                ]
                return prop
        self.properties.append(prop)
        return prop

    def remove(self, name: str) -> int:
        """
        Remove every property called C{name}; return how many went.
        """
        up = name.upper()
        before = len(self.properties)
        self.properties = [p for p in self.properties if p.name != up]
        return before - len(self.properties)

    def subcomponents(self, name: Optional[str] = None) -> List[Component]:
        """
        Direct sub-components, optionally only those called C{name}.
        """
        if name is None:
            return list(self.components)
        up = name.upper()
        return [c for c in self.components if c.name == up]

    def walk(self, name: Optional[str] = None) -> Iterator[Component]:
        """
        This component and all descendants (depth first), optionally only
        those called C{name}.
        """
        up = name.upper() if name else None
        stack = [self]
        while stack:
            comp = stack.pop()
            if up is None or comp.name == up:
                yield comp
            stack.extend(reversed(comp.components))

    # -- comparison and copying --------------------------------------------------

    def canonical(self) -> Tuple[Any, ...]:
        """
        A comparable form: name, sorted property forms, sub-components.
        """
        return (
            self.name,
            tuple(sorted((p.canonical() for p in self.properties), key=repr)),
            tuple(c.canonical() for c in self.components),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Component):
            return NotImplemented
        return self.canonical() == other.canonical()

    def __hash__(self) -> int:
        return hash(repr(self.canonical()))

    def copy(self) -> Component:
        """
        A deep copy (properties and sub-components copied too).
        """
        return Component(
            self.name,
            [p.copy() for p in self.properties],
            [c.copy() for c in self.components],
        )

    def check(self) -> None:
        """
        Check every property value's Python type, recursively.

        @raise CalendarValueError: naming the property at fault.
        """
        for comp in self.walk():
            for prop in comp.properties:
                prop.check()

    def __repr__(self) -> str:
        return (
            f"<Component {self.name} {len(self.properties)} properties, "
            f"{len(self.components)} components>"
        )


def new_calendar(
    prodid: str = "-//conference//calendar//EN",
    method: Optional[str] = None,
    components: Iterable[Component] = (),
) -> Component:
    """
    Build a VCALENDAR with VERSION 2.0, C{prodid}, an optional METHOD and
    the given components.
    """
    cal = Component("VCALENDAR")
    cal.properties.append(Property("VERSION", "2.0"))
    cal.properties.append(Property("PRODID", prodid))
    if method is not None:
        cal.properties.append(Property("METHOD", method.upper()))
    cal.components.extend(components)
    return cal


def value_type_for(name: str, given: Optional[str]) -> str:
    """
    The value type to use for property C{name} read with VALUE=C{given}
    (or without VALUE: the default, else UNKNOWN per RFC 6321 section 5).
    """
    if given:
        return given.upper()
    return DEFAULT_TYPES.get(name, cv.UNKNOWN)


__all__ = [
    "DEFAULT_TYPES",
    "MULTI_VALUED",
    "PARAM_TYPES",
    "STRUCTURED",
    "Component",
    "Property",
    "new_calendar",
    "normalize_param",
    "value_type_for",
]
