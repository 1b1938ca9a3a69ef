# -*- test-case-name: tests.unit.app.test_bookings -*-
"""
How the scheduler stores what an iTIP message decided, so that one message
can neither amplify into many copies nor be half applied
(docs/scheduling.rst):

 - An event may list at most L{Bookings.max_attendees} attendees; more is
   413 before anything is processed or stored.
 - A conference is stored once.  The local participants who hold a booking
   in their calendars (for free/busy) get entries that I{refer} to it
   (L{holders_of}), written in the same transaction as the conference
   itself, so a crash stores both or neither.
 - Everything an organizer stores (their conferences, their published
   objects) is capped at L{Bookings.max_organizer_bytes}, checked by the
   store in the writing transaction; more is 403.
 - A stale retry (iTIP 3.4) of a message whose conference is stored
   repairs that conference's entries, for data written before the above.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Set

from twisted.logger import Logger

from conference.app.calendarbody import warning_value
from conference.app.conferences import (
    CONFERENCE_CUTYPES,
    all_cancelled,
    scheduling_components,
    subset,
    uids_of,
)
from conference.calendar import Component, normalize_address, parse_xcal_calendar
from conference.interfaces import ICalendarStore, IConferenceStore
from conference.records import CalendarEntry, ConferenceRecord
from conference.sip.errors import RemoteProtocolError

log = Logger()

#: The default most attendees of one event (UID): two and a half times the
#: default --max-participants, since not every attendee joins at once.
DEFAULT_MAX_ATTENDEES = 250
#: The default most bytes one organizer's conferences and published
#: objects may take in the store: about ninety conferences of 250
#: attendees each (some 46 KB of xCal), or the --max-conferences default
#: of 100 ordinary ones many times over.
DEFAULT_MAX_ORGANIZER_BYTES = 4 * 1024 * 1024
#: The PARTSTATs for which an attendee holds a booking in their calendar.
GOING = ("ACCEPTED", "TENTATIVE")


def attendee_counts(calendar: Component) -> Dict[str, int]:
    """
    How many distinct attendees (addresses, normalised) each event (UID)
    of C{calendar} lists, over its master and overridden instances.
    """
    found: Dict[str, Set[str]] = {}
    for comp in scheduling_components(calendar):
        uid = comp.value("UID")
        addresses = found.setdefault(str(uid) if uid is not None else "", set())
        for prop in comp.get_all("ATTENDEE"):
            if isinstance(prop.value, str):
                addresses.add(normalize_address(prop.value))
    return {uid: len(addresses) for uid, addresses in found.items()}


def too_many_attendees(agent: str, uid: str, count: int, limit: int) -> RemoteProtocolError:
    """
    The 413 for an event with C{count} attendees when C{limit} is allowed.
    """
    fault = f"event {uid} has {count} attendees; at most {limit} are allowed"
    return RemoteProtocolError(
        "Request Entity Too Large (too many attendees)",
        413,
        [("Warning", warning_value(agent, fault))],
    )


def holders_of(state: Component, uri: str, is_local: Callable[[str], bool]) -> Dict[str, List[str]]:
    """
    Who holds each booking (UID) of a conference's calendar C{state} in
    their own calendar: its organizer, and each attendee who is ACCEPTED
    or TENTATIVE for some instance, as long as the booking is not
    cancelled as a whole; never the conference itself nor other rooms and
    resources; only addresses C{is_local} accepts.

    @return: UID -> sorted addresses (an empty list for a booking nobody
        holds).
    """
    out: Dict[str, List[str]] = {}
    for uid in uids_of(state):
        booking = subset(state, lambda u, uid=uid: u == uid)  # type: ignore[misc]
        if all_cancelled(booking):
            out[uid] = []
            continue
        wanted: Set[str] = set()
        for comp in scheduling_components(booking):
            organizer = comp.value("ORGANIZER")
            if isinstance(organizer, str):
                wanted.add(normalize_address(organizer))
            for att in comp.get_all("ATTENDEE"):
                if not isinstance(att.value, str):
                    continue
                address = normalize_address(att.value)
                if address == uri or (att.param("CUTYPE") or "").upper() in CONFERENCE_CUTYPES:
                    continue
                if (att.param("PARTSTAT") or "").upper() in GOING:
                    wanted.add(address)
        out[uid] = sorted(a for a in wanted if is_local(a))
    return out


def entry_calendar(entry: CalendarEntry) -> Component:
    """
    The VCALENDAR of a calendar entry: its own, or for one that refers to
    a conference, that conference's components of the entry's UID.

    @raise conference.calendar.CalendarError: if the stored document is bad.
    """
    calendar = parse_xcal_calendar(entry.calendar)
    if entry.conference is None:
        return calendar
    return subset(calendar, lambda uid: uid == entry.uid, calendar.value("METHOD"))


class Bookings:
    """
    The scheduler's writes, under its caps (see the module docstring).

    @ivar max_attendees: the most attendees per event (L{None}: no cap).
    @ivar max_organizer_bytes: the most bytes an organizer stores
        (L{None}: no cap).
    """

    def __init__(
        self,
        conferences: IConferenceStore,
        calendars: ICalendarStore,
        domain_of: Callable[[str], Optional[str]],
        *,
        max_attendees: Optional[int] = DEFAULT_MAX_ATTENDEES,
        max_organizer_bytes: Optional[int] = DEFAULT_MAX_ORGANIZER_BYTES,
    ) -> None:
        self.conferences = conferences
        self.calendars = calendars
        self.domain_of = domain_of
        self.max_attendees = max_attendees
        self.max_organizer_bytes = max_organizer_bytes

    def is_local(self, address: str) -> bool:
        """
        Whether C{address} is a user of a served domain (C{sip:user@host}).
        """
        scheme, _, rest = address.partition(":")
        user, at, host = rest.rpartition("@")
        return scheme == "sip" and bool(at and user) and self.domain_of(host) is not None

    def check(self, calendar: Component, agent: str) -> None:
        """
        Refuse a calendar with an event of too many attendees.

        @raise RemoteProtocolError: 413 with a Warning naming the event.
        """
        if self.max_attendees is None:
            return
        for uid, count in attendee_counts(calendar).items():
            if count > self.max_attendees:
                log.info(
                    "Refused event {uid} of {count} attendees (at most {limit})",
                    uid=uid,
                    count=count,
                    limit=self.max_attendees,
                )
                raise too_many_attendees(agent, uid, count, self.max_attendees)

    async def store(
        self,
        new: ConferenceRecord,
        previous: Optional[ConferenceRecord],
        state: Component,
        *,
        max_per_organizer: Optional[int],
    ) -> ConferenceRecord:
        """
        Store conference C{new} (whose calendar is C{state}) over
        C{previous} and, in the same transaction, its holders' entries.

        @raise conference.records.ConflictError: if C{previous} is
            no longer current.
        @raise conference.records.LimitExceededError: if a cap would
            be exceeded.
        """
        return await self.conferences.put(
            new,
            previous.version if previous is not None else 0,
            max_per_organizer=max_per_organizer,
            max_organizer_bytes=self.max_organizer_bytes,
            holders=holders_of(state, new.uri, self.is_local),
        )

    async def repair(self, record: ConferenceRecord, state: Component, now: float) -> int:
        """
        Bring the entries of the stored conference C{record} (whose
        calendar is C{state}) in line with it: a no-op unless an earlier
        write was lost half way.

        @return: how many entries were added or removed.
        """
        changed = await self.conferences.set_holders(
            record.uri, record.version, holders_of(state, record.uri, self.is_local), now
        )
        if changed:
            log.info(
                "Repaired {n} calendar entries of {uri} on a retried message",
                n=changed,
                uri=record.uri,
            )
        return changed

    async def publish(self, owner: str, entries: Sequence[CalendarEntry]) -> None:
        """
        Store the published objects C{entries} of C{owner} in one
        transaction, under the organizer byte cap.

        @raise conference.records.LimitExceededError: over the cap.
        """
        await self.calendars.put_entries(
            owner, entries, max_organizer_bytes=self.max_organizer_bytes
        )


__all__ = [
    "DEFAULT_MAX_ATTENDEES",
    "DEFAULT_MAX_ORGANIZER_BYTES",
    "Bookings",
    "attendee_counts",
    "entry_calendar",
    "holders_of",
    "too_many_attendees",
]
