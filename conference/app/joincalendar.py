# -*- test-case-name: tests.unit.app.test_focus,tests.unit.app.test_control -*-
"""
The conference's VEVENT as participants and subscribers see it: the
current instance with the attendees who are in marked ACCEPTED
(L{conference.app.conferences.join_calendar}), serialized once per
conference version, instance, attendees present and format, so neither a
join nor a conference-info NOTIFY does XML (or signing) work in the
common case.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from conference.app.busy import XCAL, Signer
from conference.app.conferences import Instance, attendees_of, join_calendar, utc_datetime
from conference.app.roster import Roster
from conference.calendar import to_ical, to_xcal
from conference.records import ConferenceRecord

__all__ = ["JoinCalendars"]

_PARAMS = ";method=REQUEST;component=VEVENT"


class JoinCalendars:
    """
    A cache of rendered join calendars.

    @ivar sign: wraps the parts handed to joining callers as
        C{multipart/signed}; L{None} sends them bare.
    """

    def __init__(self, roster: Roster, sign: Optional[Signer] = None, limit: int = 4096) -> None:
        self.roster = roster
        self.sign = sign
        self.limit = limit
        self._cache: Dict[Tuple[Any, ...], Tuple[str, bytes]] = {}

    def part(
        self, record: ConferenceRecord, calendar: Any, instance: Instance, fmt: str, now: float
    ) -> Tuple[str, bytes]:
        """
        The content type and body of the calendar part of a join's 200:
        xCal (C{fmt} L{XCAL}) or iCalendar text, signed when configured.
        """
        return self._render(record, calendar, instance, (fmt, self.sign), now)

    def xcal(
        self, record: ConferenceRecord, calendar: Any, instance: Instance, now: float
    ) -> bytes:
        """
        The bare xCal document (for the conference-info documents).
        """
        return self._render(record, calendar, instance, (XCAL, None), now)[1]

    def _render(
        self,
        record: ConferenceRecord,
        calendar: Any,
        instance: Instance,
        how: Tuple[str, Optional[Signer]],
        now: float,
    ) -> Tuple[str, bytes]:
        fmt, sign = how
        attendees = {a for a, _, _ in attendees_of(calendar)}
        present = frozenset(
            p.identity for p in self.roster.participants(record.uri) if p.identity in attendees
        )
        key = (record.uri, record.version, instance.start, present, fmt, sign is not None)
        cached = self._cache.get(key)
        if cached is None:
            vcal = join_calendar(record, calendar, instance, utc_datetime(now), sorted(present))
            if fmt == XCAL:
                cached = (XCAL + _PARAMS + ';charset="utf-8"', to_xcal(vcal))
            else:
                cached = (
                    "text/calendar" + _PARAMS + ";charset=utf-8",
                    to_ical([vcal]).encode("utf-8"),
                )
            if sign is not None:  # signed once per cache entry
                cached = sign(*cached)
            if len(self._cache) > self.limit:
                self._cache.clear()
            self._cache[key] = cached
        return cached
