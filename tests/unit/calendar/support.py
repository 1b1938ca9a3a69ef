# -*- test-case-name: tests.unit.calendar -*-
"""
Shared fixtures for the calendar tests: the RFC 6321 schema (found through
tests.shared), a delegation policy double, sample builders and hypothesis
strategies for models, so every test module checks the same shapes.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, Tuple

from hypothesis import strategies as st
from lxml import etree
from zope.interface import implementer

from conference.calendar import values as cv
from conference.calendar.model import Component, Property, new_calendar
from conference.interfaces import IDelegationPolicy
from tests.shared import corpus

UTC = timezone.utc
_SCHEMA: List[Any] = []


def schema() -> Any:
    """
    The patched RFC 6321 RELAX NG schema, loaded once (SkipTest if the
    shared corpus is absent).
    """
    if not _SCHEMA:
        path = corpus("xcal", "schema", "rfc6321-xcal.patched.rng")
        _SCHEMA.append(etree.RelaxNG(etree.parse(str(path))))
    return _SCHEMA[0]


def schema_errors(document: bytes) -> Optional[str]:
    """
    L{None} if C{document} validates against the RFC 6321 schema, else the
    validator's last error.
    """
    rng = schema()
    if rng.validate(etree.fromstring(document)):
        return None
    return str(rng.error_log.last_error)


def xcal_file(*parts: str) -> Path:
    """
    A file of the shared xCal corpus (SkipTest when absent).
    """
    return corpus("xcal", *parts)


@implementer(IDelegationPolicy)
class Delegations:
    """
    A delegation policy holding explicit (principal, delegate) approvals.
    """

    def __init__(self, *approved: Tuple[str, str]) -> None:
        self.approved: Set[Tuple[str, str]] = set(approved)
        self.asked: List[Tuple[str, str, float]] = []

    def is_delegate_approved(self, principal: str, delegate: str, now: float) -> bool:
        """
        Approved only for the pairs given at construction.
        """
        self.asked.append((principal, delegate, now))
        return (principal, delegate) in self.approved


def conference_event(
    *,
    uid: str = "conf-1@example.com",
    organizer: str = "sip:alice@example.com",
    attendees: Tuple[str, ...] = ("sip:bob@example.com", "sip:carol@example.com"),
    sequence: int = 0,
    stamp: datetime = datetime(2024, 1, 1, 9, 0, tzinfo=UTC),
    start: datetime = datetime(2024, 1, 2, 10, 0, tzinfo=UTC),
    hours: int = 1,
    room: Optional[str] = "sip:room-1@conference.example.com",
) -> Component:
    """
    A VEVENT as the iSIP server sees conferences: ORGANIZER, ATTENDEEs, a
    ROOM attendee and a CONFERENCE property (RFC 7986).
    """
    ev = Component("VEVENT")
    ev.add("UID", uid)
    ev.add("DTSTAMP", stamp)
    ev.add("SEQUENCE", sequence)
    ev.add("DTSTART", start)
    ev.add("DTEND", start + timedelta(hours=hours))
    ev.add("SUMMARY", "Design review")
    ev.add("ORGANIZER", organizer, {"CN": "Alice"})
    for att in attendees:
        ev.add(
            "ATTENDEE",
            att,
            {
                "ROLE": "REQ-PARTICIPANT",
                "PARTSTAT": "NEEDS-ACTION",
                "RSVP": "TRUE",
                "CUTYPE": "INDIVIDUAL",
            },
        )
    if room is not None:
        ev.add("ATTENDEE", room, {"CUTYPE": "ROOM", "ROLE": "NON-PARTICIPANT"})
    ev.add(
        "CONFERENCE",
        "sip:conf-1@conference.example.com",
        {"VALUE": "URI", "FEATURE": ["AUDIO", "VIDEO"], "LABEL": "Bridge"},
    )
    return ev


def request(*events: Component, method: str = "REQUEST") -> Component:
    """
    A VCALENDAR with METHOD C{method} holding C{events}.
    """
    return new_calendar("-//test//EN", method, list(events))


# --- hypothesis strategies ---------------------------------------------------------

_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff")
    | st.sampled_from(["\n", "\t", ";", ",", "\\", ":", "<", "&", '"']),
    max_size=30,
)
_PARAM_TEXT = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs", "Cc"), blacklist_characters="\\\ufffe\uffff"
    ),
    min_size=1,
    max_size=12,
)
_UTC_DT = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0))
_FLOATING_DT = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1)).map(
    lambda d: d.replace(microsecond=0)
)
_DATE = st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 1, 1))
_DURATION = st.timedeltas(min_value=timedelta(days=-400), max_value=timedelta(days=400)).map(
    lambda d: timedelta(days=d.days, seconds=d.seconds)
)
_ADDRESS = st.from_regex(r"\A(sip|mailto):[a-z]{1,8}@[a-z]{1,8}\.example\.com\Z")


@st.composite
def recurs(draw: Any) -> cv.Recur:
    """
    Random RECUR values (FREQ, UNTIL or COUNT, INTERVAL, BYxxx, WKST).
    """
    freq = draw(st.sampled_from(sorted(cv.FREQS)))
    until: Any = None
    count = None
    pick = draw(st.integers(0, 2))
    if pick == 1:
        until = draw(st.one_of(_UTC_DT, _DATE))
    elif pick == 2:
        count = draw(st.integers(1, 500))
    by: Dict[str, Tuple[str, ...]] = {}
    if draw(st.booleans()):
        by["BYDAY"] = tuple(
            draw(st.lists(st.sampled_from(["MO", "-1SU", "2TU", "+3FR"]), min_size=1, max_size=3))
        )
    if draw(st.booleans()):
        by["BYMONTH"] = tuple(
            str(m) for m in draw(st.lists(st.integers(1, 12), min_size=1, max_size=3))
        )
    return cv.Recur(
        freq,
        until,
        count,
        interval=draw(st.one_of(st.none(), st.integers(1, 9))),
        by=by,
        wkst=draw(st.one_of(st.none(), st.sampled_from(sorted(cv.WEEKDAYS)))),
    )


@st.composite
def events(draw: Any) -> Component:
    """
    Random VEVENTs mixing every value type the server relies on.
    """
    ev = Component("VEVENT")
    ev.add("UID", draw(_TEXT.filter(bool)))
    ev.add("DTSTAMP", draw(_UTC_DT))
    start = draw(st.one_of(_UTC_DT, _FLOATING_DT, _DATE))
    if isinstance(start, datetime) and start.tzinfo is None and draw(st.booleans()):
        ev.add("DTSTART", start, {"TZID": "Europe/Helsinki"})
    else:
        ev.add("DTSTART", start)
    if draw(st.booleans()):
        ev.add("DURATION", draw(_DURATION))
    ev.add("SEQUENCE", draw(st.integers(0, 10**6)))
    ev.add("SUMMARY", draw(_TEXT))
    for _ in range(draw(st.integers(0, 3))):
        params: Dict[str, Any] = {"CN": draw(_PARAM_TEXT)}
        if draw(st.booleans()):
            params["PARTSTAT"] = draw(st.sampled_from(["ACCEPTED", "DECLINED", "TENTATIVE"]))
        if draw(st.booleans()):
            params["DELEGATED-TO"] = draw(st.lists(_ADDRESS, min_size=1, max_size=2))
        if draw(st.booleans()):
            params["RSVP"] = draw(st.sampled_from(["TRUE", "FALSE"]))
        ev.add("ATTENDEE", draw(_ADDRESS), params)
    if draw(st.booleans()):
        ev.add("CATEGORIES", draw(st.lists(_TEXT, min_size=1, max_size=3)))
    if draw(st.booleans()):
        lat = draw(st.floats(-90, 90, allow_nan=False))
        lon = draw(st.floats(-180, 180, allow_nan=False))
        ev.add("GEO", [lat, lon])
    if draw(st.booleans()):
        ev.add("RRULE", draw(recurs()))
    if draw(st.booleans()):
        ev.add("EXDATE", draw(st.lists(_UTC_DT, min_size=1, max_size=3)))
    if draw(st.booleans()):
        ev.add("RDATE", [cv.Period(draw(_UTC_DT), None, draw(_DURATION))], None, cv.PERIOD)
    if draw(st.booleans()):
        ev.add("ATTACH", draw(st.binary(max_size=40)), {"FMTTYPE": "text/plain"}, cv.BINARY)
    if draw(st.booleans()):
        ev.add("X-SCORE", draw(st.integers(-(10**9), 10**9)), None, cv.INTEGER)
    if draw(st.booleans()):
        ev.add("X-RAW", draw(st.from_regex(r"\A[A-Za-z0-9 ]{0,12}\Z")), None, cv.UNKNOWN)
    if draw(st.booleans()):
        ev.add("REQUEST-STATUS", ["2.0", draw(_TEXT)], None, cv.TEXT)
    if draw(st.booleans()):
        alarm = Component("VALARM")
        alarm.add("ACTION", "AUDIO")
        alarm.add("TRIGGER", draw(_DURATION), {"RELATED": "END"})
        ev.components.append(alarm)
    return ev


def calendars() -> Any:
    """
    Random VCALENDARs around L{events}.
    """
    return st.lists(events(), min_size=1, max_size=3).map(
        lambda evs: new_calendar("-//test//EN", "PUBLISH", evs)
    )


def prop(name: str, value: Any, **params: str) -> Property:
    """
    Shorthand for a L{Property} with keyword parameters.
    """
    return Property(name, value, {k.replace("_", "-"): v for k, v in params.items()})
