# -*- test-case-name: tests.app.test_conferences -*-
"""
What a conference's calendar says: its organizer and attendees, which
instance is on now, when the next one opens, whether it is over, whether it
overlaps another booking, and the VEVENT a participant gets when joining.

Plain functions over the calendar model and L{ConferenceRecord}, so the
focus, the scheduler and the busy path read conferences the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

from conference.calendar import (
    Component,
    Outgoing,
    Property,
    new_calendar,
    parse_xcal_calendar,
    to_xcal,
)
from conference.calendar import values as cv
from conference.calendar.freebusy import expand
from conference.calendar.itip import normalize_address
from conference.calendar.timezones import TimezoneResolver
from conference.records import ConferenceRecord

UTC = timezone.utc
PRODID = "-//conference//iSIP focus//EN"
DEFAULT_EARLY_JOIN = timedelta(minutes=10)
# How far ahead "is there another instance" looks: recurring conferences
# with gaps longer than this count as over.
HORIZON = timedelta(days=400)

SCHEDULED = "scheduled"
CANCELLED = "cancelled"


@dataclass(frozen=True)
class Instance:
    """
    One occurrence of a conference.

    @ivar start: and C{end}: UTC.
    @ivar event: the VEVENT that describes it (the master, or the override
        with its RECURRENCE-ID).
    @ivar recurrence_id: the instance's original start (UTC) for a
        recurring conference, else L{None}.
    """

    start: datetime
    end: datetime
    event: Component
    recurrence_id: Optional[datetime]


def utc_datetime(now: float) -> datetime:
    """
    POSIX time as an aware UTC datetime.
    """
    return datetime.fromtimestamp(now, UTC)


_parsed: Dict[Tuple[str, int, bytes], Component] = {}


def calendar_of(record: ConferenceRecord) -> Component:
    """
    The stored VCALENDAR of a conference, parsed once per record version.

    @raise conference.calendar.CalendarError: if the stored document is bad.
    """
    key = (record.uri, record.version, record.calendar)
    cached = _parsed.get(key)
    if cached is None:
        if len(_parsed) > 1024:
            _parsed.clear()
        cached = _parsed[key] = parse_xcal_calendar(record.calendar)
    return cached


def master_events(calendar: Component) -> List[Component]:
    """
    The VEVENTs without RECURRENCE-ID (one per UID).
    """
    return [e for e in calendar.subcomponents("VEVENT") if e.get("RECURRENCE-ID") is None]


def overrides_of(calendar: Component, uid: str) -> List[Component]:
    """
    The overridden instances of C{uid}.
    """
    return [
        e
        for e in calendar.subcomponents("VEVENT")
        if e.get("RECURRENCE-ID") is not None and e.value("UID") == uid
    ]


def organizer_of(calendar: Component) -> Optional[str]:
    """
    The normalised ORGANIZER address of the first event.
    """
    for event in master_events(calendar) or calendar.subcomponents("VEVENT"):
        value = event.value("ORGANIZER")
        if isinstance(value, str):
            return normalize_address(value)
    return None


def attendees_of(calendar: Component) -> List[Tuple[str, str, str]]:
    """
    C{(address, PARTSTAT, CUTYPE)} of every ATTENDEE of the master events,
    addresses normalised.
    """
    out: List[Tuple[str, str, str]] = []
    for event in master_events(calendar):
        for prop in event.get_all("ATTENDEE"):
            if prop.values and isinstance(prop.values[0], str):
                out.append(
                    (
                        normalize_address(prop.values[0]),
                        (prop.param("PARTSTAT") or "NEEDS-ACTION").upper(),
                        (prop.param("CUTYPE") or "INDIVIDUAL").upper(),
                    )
                )
    return out


def is_cancelled(record: ConferenceRecord, calendar: Component) -> bool:
    """
    Whether the conference as a whole is cancelled.
    """
    if record.state == CANCELLED:
        return True
    masters = master_events(calendar)
    return bool(masters) and all(str(e.value("STATUS", "")).upper() == "CANCELLED" for e in masters)


def instances(calendar: Component, start: datetime, end: datetime) -> List[Instance]:
    """
    The live (not cancelled) instances of every event overlapping
    C{[start, end)}, sorted by start.
    """
    resolver = TimezoneResolver([calendar])
    found: List[Instance] = []
    for master in master_events(calendar):
        uid = master.value("UID")
        overrides = overrides_of(calendar, uid) if isinstance(uid, str) else []
        for s, e, comp in expand(master, overrides, start, end, resolver=resolver):
            if str(comp.value("STATUS", "")).upper() == "CANCELLED":
                continue
            recurring = master.get("RRULE") is not None or master.get("RDATE") is not None
            rid_prop = comp.get("RECURRENCE-ID")
            if rid_prop is not None and isinstance(rid_prop.value, datetime):
                rid: Optional[datetime] = resolver.property_utc(rid_prop)
            else:
                rid = s if recurring else None
            found.append(Instance(s, e, comp, rid))
    found.sort(key=lambda i: (i.start, i.end))
    return found


def current_instance(
    calendar: Component, now: datetime, early: timedelta = DEFAULT_EARLY_JOIN
) -> Optional[Instance]:
    """
    The instance open at C{now}: from C{early} before its start until its
    end.  Of several, the one that started first.
    """
    for instance in instances(calendar, now, now + early + timedelta(seconds=1)):
        if instance.start - early <= now < instance.end:
            return instance
    return None


def next_instance(calendar: Component, now: datetime) -> Optional[Instance]:
    """
    The first instance that starts after C{now}, within L{HORIZON}.
    """
    for instance in instances(calendar, now, now + HORIZON):
        if instance.start > now:
            return instance
    return None


def is_over(calendar: Component, now: datetime) -> bool:
    """
    Whether no instance is on now or to come within L{HORIZON}.
    """
    return not any(i.end > now for i in instances(calendar, now, now + HORIZON))


def overlaps(
    first: Component, second: Component, now: datetime, horizon: timedelta = HORIZON
) -> bool:
    """
    Whether any instance of C{first} overlaps one of C{second} between
    C{now} and C{now + horizon} (for booking a conference URI twice).
    """
    end = now + horizon
    theirs = instances(second, now, end)
    if not theirs:
        return False
    for mine in instances(first, now, end):
        for other in theirs:
            if mine.start < other.end and other.start < mine.end:
                return True
    return False


def serialize(calendar: Component) -> bytes:
    """
    The RFC 6321 form stored in L{ConferenceRecord.calendar}.
    """
    return to_xcal(calendar)


def join_calendar(
    record: ConferenceRecord,
    calendar: Component,
    instance: Instance,
    now: datetime,
    roster: Sequence[str] = (),
) -> Component:
    """
    The VCALENDAR (METHOD REQUEST) handed to a joining participant: the
    current instance's VEVENT with ORGANIZER, ATTENDEEs and their PARTSTAT,
    DTSTART/DTEND of this instance in UTC, SUMMARY, DESCRIPTION, UID,
    SEQUENCE, STATUS and a CONFERENCE property (RFC 7986) with the
    conference URI (iSIP section 4.4).

    @param roster: addresses of the attendees who are in the conference
        now; they are shown ACCEPTED.  (Participants who are no attendee
        are not listed, so the rendering depends only on which attendees
        are in, and the focus can cache it.)
    """
    source = instance.event
    event = Component("VEVENT")
    add = event.properties.append
    add(Property("UID", source.value("UID", record.uid)))
    add(Property("DTSTAMP", now.replace(microsecond=0)))
    if instance.recurrence_id is not None:
        add(Property("RECURRENCE-ID", instance.recurrence_id.replace(microsecond=0)))
    add(Property("DTSTART", instance.start.replace(microsecond=0)))
    add(Property("DTEND", instance.end.replace(microsecond=0)))
    add(Property("SEQUENCE", int(source.value("SEQUENCE", record.sequence) or 0)))
    add(Property("STATUS", str(source.value("STATUS", "CONFIRMED")).upper()))
    for name in ("SUMMARY", "DESCRIPTION", "LOCATION", "ORGANIZER"):
        prop = source.get(name)
        if prop is not None:
            add(prop.copy())
    in_now = {normalize_address(a) for a in roster}
    for prop in source.get_all("ATTENDEE"):
        copy = prop.copy()
        if prop.values and normalize_address(str(prop.values[0])) in in_now:
            copy.params["PARTSTAT"] = ("ACCEPTED",)
        add(copy)
    add(
        Property(
            "CONFERENCE",
            record.uri,
            {"VALUE": "URI", "FEATURE": ("AUDIO",), "LABEL": "Join by SIP"},
            cv.URI,
        )
    )
    # Every time is in UTC, so the calendar needs no VTIMEZONE.
    return new_calendar(PRODID, "REQUEST", [event])


# Bookings (for the scheduler) ---------------------------------------------

SCHEDULER_PRODID = "-//conference//iSIP scheduler//EN"
BUSY_STATUS = ("4.0", "Event conflict. Date-time is busy.")
CONFERENCE_CUTYPES = frozenset(["ROOM", "RESOURCE"])


def scheduling_components(calendar: Component) -> List[Component]:
    """
    The components of C{calendar} other than VTIMEZONE.
    """
    return [c for c in calendar.components if c.name != "VTIMEZONE"]


def uids_of(calendar: Component) -> List[str]:
    """
    The distinct UIDs of the scheduling components, in order.
    """
    out: List[str] = []
    for comp in scheduling_components(calendar):
        uid = comp.value("UID")
        if isinstance(uid, str) and uid not in out:
            out.append(uid)
    return out


def subset(
    calendar: Component, keep: Callable[[str], bool], method: Optional[str] = None
) -> Component:
    """
    A VCALENDAR with the VTIMEZONEs of C{calendar} and copies of its
    scheduling components whose UID C{keep} accepts.
    """
    zones = [c.copy() for c in calendar.components if c.name == "VTIMEZONE"]
    comps = [c.copy() for c in scheduling_components(calendar) if keep(str(c.value("UID", "")))]
    return new_calendar(SCHEDULER_PRODID, method, zones + comps)


def is_conference_attendee(prop: Property, uri: str) -> bool:
    """
    Whether ATTENDEE C{prop} is the conference C{uri} (CUTYPE ROOM or
    RESOURCE).
    """
    return (
        isinstance(prop.value, str)
        and normalize_address(prop.value) == uri
        and (prop.param("CUTYPE") or "").upper() in CONFERENCE_CUTYPES
    )


def lists_conference(calendar: Component, uri: str) -> bool:
    """
    Whether every master component (or, without masters, every component)
    invites C{uri} as a ROOM or RESOURCE attendee.
    """
    comps = [c for c in scheduling_components(calendar) if c.get("RECURRENCE-ID") is None]
    comps = comps or scheduling_components(calendar)
    return bool(comps) and all(
        any(is_conference_attendee(a, uri) for a in c.get_all("ATTENDEE")) for c in comps
    )


def decline(calendar: Component, uri: str, now: float) -> Outgoing:
    """
    The conference's REPLY DECLINED (REQUEST-STATUS 4.0) to a REQUEST
    that would double-book it, addressed to the ORGANIZER.
    """
    stamp = datetime.fromtimestamp(int(now), UTC)
    replies: List[Component] = []
    organizer: Optional[str] = None
    for comp in scheduling_components(calendar):
        reply = Component(
            comp.name,
            [
                p.copy()
                for p in comp.properties
                if p.name not in ("ATTENDEE", "DTSTAMP", "REQUEST-STATUS")
            ],
        )
        reply.add("DTSTAMP", stamp)
        reply.add("ATTENDEE", uri, {"CUTYPE": "ROOM", "PARTSTAT": "DECLINED"})
        reply.add("REQUEST-STATUS", list(BUSY_STATUS))
        replies.append(reply)
        value = comp.value("ORGANIZER")
        if organizer is None and isinstance(value, str):
            organizer = value
    zones = [c.copy() for c in calendar.components if c.name == "VTIMEZONE"]
    reply_calendar = new_calendar(SCHEDULER_PRODID, "REPLY", zones + replies)
    return Outgoing("REPLY", (organizer,) if organizer else (), reply_calendar)


def all_cancelled(calendar: Component) -> bool:
    masters = master_events(calendar) or scheduling_components(calendar)
    return bool(masters) and all(str(c.value("STATUS", "")).upper() == "CANCELLED" for c in masters)


def prune(calendar: Component, keep_uid: str, now: float) -> Component:
    """
    Drop from a conference's calendar the other bookings (UIDs) that are
    cancelled or over, so a reused conference URI does not accumulate
    them.
    """
    from conference.app.conferences import is_over

    now_dt = utc_datetime(now)
    gone: Set[str] = set()
    for uid in uids_of(calendar):
        if uid == keep_uid:
            continue
        alone = subset(calendar, lambda u, uid=uid: u == uid)  # type: ignore[misc]
        if all_cancelled(alone) or is_over(alone, now_dt):
            gone.add(uid)
    if not gone:
        return calendar
    kept = calendar.copy()
    kept.components = [
        c for c in kept.components if c.name == "VTIMEZONE" or c.value("UID") not in gone
    ]
    return kept


def owner_of(record: ConferenceRecord) -> str:
    """
    The owner of a stored conference, whose its URI and bindings are: the
    organizer who created it (for a record stored without one, its
    organizer).
    """
    return record.owner or record.organizer


def record_for(
    uri: str, state: Component, previous: Optional[ConferenceRecord], now: float
) -> ConferenceRecord:
    """
    The conference record holding C{state}: its UID, ORGANIZER and SEQUENCE
    are those of the first booking (the previous record's when it is still
    there), its state C{cancelled} when every booking is.  Its owner is the
    previous record's: the organizer who created it, whoever books it later.
    """
    masters = master_events(state) or scheduling_components(state)
    primary = masters[0]
    if previous is not None:
        for master in masters:
            if master.value("UID") == previous.uid:
                primary = master
                break
    organizer = primary.value("ORGANIZER")
    sequence = primary.value("SEQUENCE", 0)
    address = normalize_address(organizer) if isinstance(organizer, str) else ""
    return ConferenceRecord(
        uri=uri,
        uid=str(primary.value("UID")),
        organizer=address,
        calendar=to_xcal(state),
        sequence=sequence if isinstance(sequence, int) else 0,
        state=CANCELLED if all_cancelled(state) else SCHEDULED,
        settings=dict(previous.settings) if previous is not None else {},
        version=previous.version if previous is not None else 0,
        created=previous.created if previous is not None else now,
        updated=now,
        owner=owner_of(previous) if previous is not None else address,
    )
