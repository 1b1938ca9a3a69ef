# -*- test-case-name: tests.unit.app.test_roster -*-
"""
Who is in which conference, and until when.

The roster is the focus's view of its participants: one entry per dialog,
a per-conference maximum, and session-timer deadlines (RFC 4028) so a
participant who vanished without a BYE is taken out.  It is plain data
driven by C{now}; the focus arms one timer at L{Roster.next_deadline}.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any, Dict, Hashable, List, Optional, Tuple

from conference.sip.errors import RemoteProtocolError
from conference.sip.headers import parse_int_header, parse_params
from conference.sip.message import Request

DEFAULT_SESSION_EXPIRES = 1800
DEFAULT_MIN_SE = 90


class ConferenceFullError(Exception):
    """
    The conference already has its maximum number of participants.
    """


@dataclass
class Participant:
    """
    One participant: a dialog with the focus in one conference.

    @ivar key: the dialog id (Call-ID, local tag, remote tag).
    @ivar identity: who joined: the authenticated address of record, else
        the From URI (only for display; never for authorization).
    @ivar session: the media session (L{conference.interfaces.IMediaSession}).
    @ivar interval: the negotiated Session-Expires, or L{None} without
        session timers.
    @ivar expires_at: when the session lapses unless refreshed.
    @ivar role: the L{conference.control.policy.Role} from the calendar
        (L{None}: no role was worked out, a plain participant).
    @ivar muted: whether a moderator muted them (the focus mixes nothing
        they send).
    @ivar joining_method: C{dialed-in}, or C{dialed-out} when the focus
        called them.
    @ivar referred_by: the moderator who had the focus call them.
    @ivar pin_entry: while they type the conference's PIN by DTMF, its
        L{conference.control.actions.PinEntry}: they hear nothing, nobody
        hears them, subscribers do not see them.
    @ivar direction: what they do with the audio, from their side of the
        last offer/answer (C{sendonly} or C{inactive}: they hold).
    @ivar media_told: what the media plane was last told of their mute
        (the session, incoming, outgoing), so that a change elsewhere in the
        conference does not tell it again.
    """

    conference: str
    key: Hashable
    identity: str
    joined: float
    dialog: Any = None
    session: Any = None
    interval: Optional[int] = None
    refresher: str = "uac"
    expires_at: Optional[float] = None
    role: Any = None
    muted: bool = False
    joining_method: str = "dialed-in"
    referred_by: Optional[str] = None
    pin_entry: Any = None
    direction: str = "sendrecv"
    media_told: Any = None


@dataclass
class _Conference:
    members: Dict[Hashable, Participant] = field(default_factory=dict)
    version: int = 0


class Roster:
    """
    Participants of every conference this focus serves.
    """

    def __init__(self) -> None:
        self._conferences: Dict[str, _Conference] = {}
        self._by_key: Dict[Hashable, Participant] = {}
        self._deadlines: List[Tuple[float, int, Hashable]] = []
        self._sequence = 0

    def __len__(self) -> int:
        return len(self._by_key)

    def add(self, participant: Participant, maximum: Optional[int] = None) -> None:
        """
        Add C{participant}.

        @raise ConferenceFullError: if C{maximum} participants are in already.
        """
        entry = self._conferences.setdefault(participant.conference, _Conference())
        if maximum is not None and len(entry.members) >= maximum:
            raise ConferenceFullError(participant.conference)
        members = entry.members
        last = next(reversed(members.values()), None)
        members[participant.key] = participant
        if last is not None and participant.joined < last.joined:
            # Joined before the last one in (a call the focus made, adopted
            # once answered): keep the members in join order, so listing
            # them needs no sort.
            ordered = sorted(members.values(), key=lambda p: p.joined)
            members.clear()
            members.update((p.key, p) for p in ordered)
        entry.version += 1
        self._by_key[participant.key] = participant
        self._schedule(participant)

    def get(self, key: Hashable) -> Optional[Participant]:
        """
        The participant of a dialog, if any.
        """
        return self._by_key.get(key)

    def remove(self, key: Hashable) -> Optional[Participant]:
        """
        Take the participant of a dialog out; L{None} if unknown.
        """
        participant = self._by_key.pop(key, None)
        if participant is None:
            return None
        entry = self._conferences.get(participant.conference)
        if entry is not None:
            entry.members.pop(key, None)
            entry.version += 1
            if not entry.members:
                # Keep the version counting up across empty spells.
                entry.members = {}
        return participant

    def conferences(self) -> List[str]:
        """The URIs of the conferences someone is in, sorted."""
        return sorted(uri for uri in self._conferences if self.count(uri))

    def count(self, conference: str) -> int:
        """
        How many are in C{conference}.
        """
        entry = self._conferences.get(conference)
        return len(entry.members) if entry is not None else 0

    def participants(self, conference: str) -> List[Participant]:
        """
        Everyone in C{conference}, in the order they joined.
        """
        entry = self._conferences.get(conference)
        if entry is None:
            return []
        return list(entry.members.values())  # kept in join order by add

    def version(self, conference: str) -> int:
        """
        A number that changes whenever C{conference}'s roster does (for
        caches keyed by roster state).
        """
        entry = self._conferences.get(conference)
        return entry.version if entry is not None else 0

    def conferences_of(self, identity: str) -> List[str]:
        """
        The conferences C{identity} is in now.
        """
        return sorted({p.conference for p in self._by_key.values() if p.identity == identity})

    def refresh(self, key: Hashable, now: float, interval: Optional[int] = None) -> None:
        """
        A session refresh (re-INVITE or UPDATE) arrived for C{key}.
        """
        participant = self._by_key.get(key)
        if participant is None:
            return
        if interval is not None:
            participant.interval = interval
        if participant.interval is not None:
            participant.expires_at = now + participant.interval
            self._schedule(participant)

    def _schedule(self, participant: Participant) -> None:
        if participant.expires_at is None:
            return
        self._sequence += 1
        heapq.heappush(self._deadlines, (participant.expires_at, self._sequence, participant.key))

    def next_deadline(self) -> Optional[float]:
        """
        The earliest session expiry, for one timer.
        """
        while self._deadlines:
            when, _, key = self._deadlines[0]
            participant = self._by_key.get(key)
            if participant is not None and participant.expires_at == when:
                return when
            heapq.heappop(self._deadlines)
        return None

    def expired(self, now: float) -> List[Participant]:
        """
        Remove and return everyone whose session lapsed by C{now}.
        """
        gone: List[Participant] = []
        while self._deadlines and self._deadlines[0][0] <= now:
            when, _, key = heapq.heappop(self._deadlines)
            participant = self._by_key.get(key)
            if participant is not None and participant.expires_at == when:
                self.remove(key)
                gone.append(participant)
        return gone


@dataclass(frozen=True)
class SessionTimer:
    """
    The outcome of RFC 4028 negotiation for a 2xx.
    """

    interval: int
    refresher: str

    def header(self) -> str:
        """
        The Session-Expires value for the 2xx.
        """
        return f"{self.interval};refresher={self.refresher}"


def negotiate_session_timer(
    request: Request, *, min_se: int = DEFAULT_MIN_SE, default: int = DEFAULT_SESSION_EXPIRES
) -> Optional[SessionTimer]:
    """
    Decide the session timer of an INVITE or re-INVITE (RFC 4028 section 9).

    @return: L{None} when the caller does not support timers and asked for
        none; else the interval and refresher (the caller refreshes when it
        can, since the focus has no reason to).
    @raise RemoteProtocolError: 422 Session Interval Too Small, with
        Min-SE, when the requested interval is below C{min_se}.
    """
    value = request.header("session-expires")
    supported = {t.strip().lower() for t in request.header_values("supported")}
    if value is None:
        if "timer" not in supported:
            return None
        return SessionTimer(default, "uac")
    delta, _, params_text = value.partition(";")
    interval = parse_int_header(delta, "Session-Expires")
    if interval < min_se:
        raise RemoteProtocolError("Session Interval Too Small", 422, [("Min-SE", str(min_se))])
    params = parse_params(";" + params_text, "Session-Expires") if params_text else {}
    asked = (params.get("refresher") or "").lower()
    if asked not in ("uac", "uas"):
        asked = "uac" if "timer" in supported else "uas"
    if asked == "uac" and "timer" not in supported:
        asked = "uas"
    return SessionTimer(interval, asked)
