# -*- test-case-name: tests.unit.web.test_views -*-
"""
What the status pages show, as plain data: the HTML pages and C{/api}
render the same dictionaries, so both always agree.

Everything is read through the stores' and the focus's public interfaces;
a store failure surfaces as L{conference.records.StoreError}, which the
resource answers with 503.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Dict, List, Optional

from conference.app.conferences import attendees_of, calendar_of, instances, master_events
from conference.calendar import CalendarError, parse_xcal_calendar
from conference.calendar.freebusy import busy_intervals
from conference.control.policy import policy_of
from conference.records import ConferenceRecord
from conference.web.access import Viewer

#: The longest free/busy picture, in days: bounds the recurrence expansion
#: one request can ask for.
MAX_FREEBUSY_DAYS = 31


class NotFound(Exception):
    """
    No such thing, or not one this viewer may see (the same answer, so
    existence does not leak across users).
    """


class Forbidden(Exception):
    """
    The viewer is logged in but may not do this.
    """


@dataclass
class Conference:
    """
    One conference as the pages show it.
    """

    record: ConferenceRecord
    summary: str
    attendees: List[Dict[str, str]]
    occurrences: List[Dict[str, datetime]]
    may_act: bool

    def as_json(self) -> Dict[str, Any]:
        """
        The JSON form (times as ISO 8601 UTC).
        """
        return {
            "uri": self.record.uri,
            "summary": self.summary,
            "organizer": self.record.organizer,
            "state": self.record.state,
            "attendees": self.attendees,
            "occurrences": [
                {"start": o["start"].isoformat(), "end": o["end"].isoformat()}
                for o in self.occurrences
            ],
            "may_act": self.may_act,
        }


def _summary(calendar: Any) -> str:
    for event in master_events(calendar):
        value = event.value("SUMMARY")
        if isinstance(value, str) and value.strip():
            return value.strip()
    return "(no summary)"


def describe(
    record: ConferenceRecord, viewer: Viewer, start: datetime, end: datetime
) -> Optional[Conference]:
    """
    C{record} as C{viewer} sees it, with its occurrences in C{[start,
    end)}; L{None} if the viewer may not see it or its calendar is bad.
    """
    try:
        calendar = calendar_of(record)
        people = attendees_of(calendar)
        found = instances(calendar, start, end)
        policy = policy_of(calendar, record.settings)
    except CalendarError:
        return None
    if not viewer.may_see(record, [address for address, _, _ in people], policy):
        return None
    return Conference(
        record=record,
        summary=_summary(calendar),
        attendees=[
            {"address": address, "partstat": partstat, "cutype": cutype}
            for address, partstat, cutype in people
        ],
        occurrences=[{"start": i.start, "end": i.end} for i in found],
        may_act=viewer.may_act_on(record, policy),
    )


async def visible_conferences(
    stores: Any, viewer: Viewer, start: datetime, end: datetime
) -> List[Conference]:
    """
    The conferences C{viewer} may see that occur within C{[start, end)},
    by first occurrence.
    """
    records: List[ConferenceRecord] = await stores.conferences.list()
    shown = [describe(r, viewer, start, end) for r in records]
    out = [c for c in shown if c is not None and c.occurrences]
    out.sort(key=lambda c: (c.occurrences[0]["start"], c.record.uri))
    return out


async def conference_page(
    stores: Any, focus: Any, viewer: Viewer, uri: str, now: datetime
) -> Dict[str, Any]:
    """
    One conference: its VEVENT, bindings and live roster.

    @raise NotFound: for an unknown conference or one the viewer may not see.
    """
    record: Optional[ConferenceRecord] = await stores.conferences.get(uri)
    if record is None:
        raise NotFound(uri)
    conference = describe(record, viewer, now - timedelta(days=1), now + timedelta(days=7))
    if conference is None:
        raise NotFound(uri)
    bindings = await stores.bindings.bindings(record.uri, now.timestamp())
    roster = focus.roster.participants(record.uri) if focus is not None else []
    page = conference.as_json()
    page["bindings"] = [
        {"disposition": b.disposition, "uri": b.uri, "expires": b.expires_at} for b in bindings
    ]
    page["roster"] = [
        {
            "identity": p.identity,
            "joined": datetime.fromtimestamp(p.joined, now.tzinfo).isoformat(),
            "key": participant_key(p.key),
            "muted": p.muted,
        }
        for p in roster
    ]
    page["locked"] = focus.is_locked(record) if focus is not None else False
    return page


def participant_key(key: Any) -> str:
    """
    A participant's dialog id as one string (the form actions name it by).
    """
    if isinstance(key, tuple):
        return " ".join(str(part) for part in key)
    return str(key)


async def freebusy(
    stores: Any, viewer: Viewer, user: str, start: datetime, days: int
) -> Dict[str, Any]:
    """
    C{user}'s busy time over C{days} days from C{start}.

    @raise Forbidden: for another user's time, unless the viewer is admin.
    @raise ValueError: for a range longer than L{MAX_FREEBUSY_DAYS}.
    """
    if not 1 <= days <= MAX_FREEBUSY_DAYS:
        raise ValueError(f"days must be 1..{MAX_FREEBUSY_DAYS}")
    if user != viewer.aor and not viewer.admin:
        raise Forbidden(user)
    end = start + timedelta(days=days)
    entries = await stores.calendars.entries(user)
    sources = []
    for entry in entries:
        try:
            sources.append(parse_xcal_calendar(entry.calendar))
        except CalendarError:
            continue
    busy = busy_intervals(sources, start, end, user=user)
    return {
        "user": user,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "busy": {
            fbtype: [{"start": s.isoformat(), "end": e.isoformat()} for s, e in spans]
            for fbtype, spans in sorted(busy.items())
        },
    }
