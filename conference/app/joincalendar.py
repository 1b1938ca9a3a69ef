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

from typing import Any, Dict, FrozenSet, Optional, Tuple

from conference.app.busy import SDP, XCAL, Signer
from conference.app.conferences import Instance, attendees_of, join_calendar, utc_datetime
from conference.app.roster import Roster
from conference.calendar import to_ical, to_xcal
from conference.records import ConferenceRecord
from conference.sip.multipart import BodyPart, Envelope, build_multipart, envelope

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
        #: The attendees' addresses, by conference URI and record version.
        self._attendees: Dict[Tuple[str, Any], FrozenSet[str]] = {}
        #: The multipart/mixed bodies around each cached calendar part.
        self._envelopes: Dict[Tuple[str, bytes], Envelope] = {}

    def part(
        self, record: ConferenceRecord, calendar: Any, instance: Instance, fmt: str, now: float
    ) -> Tuple[str, bytes]:
        """
        The content type and body of the calendar part of a join's 200:
        xCal (C{fmt} L{XCAL}) or iCalendar text, signed when configured.
        """
        return self._render(record, calendar, instance, (fmt, self.sign), now)

    def with_sdp(
        self,
        record: ConferenceRecord,
        calendar: Any,
        instance: Instance,
        fmt: str,
        now: float,
        *,
        sdp: bytes,
    ) -> Tuple[str, bytes]:
        """
        The Content-Type and body of a join's 200: multipart/mixed with the
        SDP answer (disposition C{session}) and the calendar part of
        L{part} (C{render;handling=optional}).  The multipart around them
        is built once per calendar part; a join only puts its SDP in.
        """
        calendar_part = self.part(record, calendar, instance, fmt, now)
        made = self._envelopes.get(calendar_part)
        if made is None:
            content_type, body = calendar_part
            made = envelope(
                BodyPart(SDP, b"", disposition="session"),
                [BodyPart(content_type, body, disposition="render;handling=optional")],
            )
            if len(self._envelopes) > self.limit:
                self._envelopes.clear()
            self._envelopes[calendar_part] = made
        filled = made.fill(sdp)
        if filled is not None:
            return filled
        content_type, body = calendar_part
        return build_multipart(
            [
                BodyPart(SDP, sdp, disposition="session"),
                BodyPart(content_type, body, disposition="render;handling=optional"),
            ]
        )

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
        attendees = self._attendees.get((record.uri, record.version))
        if attendees is None:  # once per conference version, not per join
            attendees = frozenset(a for a, _, _ in attendees_of(calendar))
            if len(self._attendees) > self.limit:
                self._attendees.clear()
            self._attendees[record.uri, record.version] = attendees
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
