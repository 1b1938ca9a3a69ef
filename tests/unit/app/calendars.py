# -*- test-case-name: tests.unit.app.test_conferences -*-
"""
iCalendar fixtures for the application tests: conference VEVENTs in
RFC 5545 text, parsed by the calendar core.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Iterable, Optional

from conference.calendar import Component, parse_ical_calendar
from conference.records import ConferenceRecord

UTC = timezone.utc
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def stamp(when: datetime) -> str:
    """
    iCalendar UTC date-time text.
    """
    return when.strftime("%Y%m%dT%H%M%SZ")


def conference_ical(
    *,
    uid: str = "conf-1@example.com",
    room: str = "sip:conf@example.com",
    organizer: str = "sip:alice@example.com",
    attendees: Iterable[str] = ("sip:bob@example.com",),
    start: datetime = T0,
    duration: timedelta = timedelta(hours=1),
    rrule: Optional[str] = None,
    exdate: Optional[datetime] = None,
    method: str = "REQUEST",
    sequence: int = 0,
    status: str = "CONFIRMED",
    extra: str = "",
) -> str:
    """
    A VCALENDAR with one conference VEVENT, the room as a ROOM attendee.
    """
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//tests//EN",
        f"METHOD:{method}",
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"DTSTAMP:{stamp(start - timedelta(days=1))}",
        f"DTSTART:{stamp(start)}",
        f"DTEND:{stamp(start + duration)}",
        f"SEQUENCE:{sequence}",
        f"STATUS:{status}",
        "SUMMARY:Weekly sync",
        "DESCRIPTION:Agenda: everything",
        f"ORGANIZER;CN=Alice:{organizer}",
        f"ATTENDEE;CUTYPE=ROOM;ROLE=NON-PARTICIPANT;PARTSTAT=NEEDS-ACTION:{room}",
    ]
    lines += [f"ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:{a}" for a in attendees]
    if rrule:
        lines.append(f"RRULE:{rrule}")
    if exdate:
        lines.append(f"EXDATE:{stamp(exdate)}")
    if extra:
        lines.append(extra)
    lines += ["END:VEVENT", "END:VCALENDAR", ""]
    return "\r\n".join(lines)


def conference_calendar(**kwargs: object) -> Component:
    """
    L{conference_ical}, parsed.
    """
    return parse_ical_calendar(conference_ical(**kwargs))  # type: ignore[arg-type]


def conference_record(calendar: Component, uri: str = "sip:conf@example.com") -> ConferenceRecord:
    """
    A stored conference for C{calendar}.
    """
    from conference.app.conferences import master_events, organizer_of, serialize

    master = master_events(calendar)[0]
    return ConferenceRecord(
        uri=uri,
        uid=str(master.value("UID")),
        organizer=organizer_of(calendar) or "",
        calendar=serialize(calendar),
        sequence=int(master.value("SEQUENCE", 0) or 0),
        version=1,
    )
