# -*- test-case-name: tests.unit.app.test_control -*-
"""
Conference control on top of the focus: who may join and as
what (roles, guests and PINs from the calendar, L{conference.control.policy}),
what the conference looks like to its subscribers (a
L{conference.control.confinfo.ConferenceState} snapshot), and the moderator
actions (mute, unmute, lock, unlock, remove), each authorized by role and
followed by a conference-info update.

The SIP requests that ask for these (REFER, INFO) are in
L{conference.app.refer}; the operations page can call the same methods.
"""

from __future__ import annotations

import hashlib
from contextlib import suppress
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from conference.app.conferences import (
    calendar_of,
    current_instance,
    next_instance,
    timeline_of,
    utc_datetime,
)
from conference.app.focus import Focus
from conference.app.indialog import holds
from conference.app.roster import Participant
from conference.calendar.errors import CalendarError
from conference.calendar.itip import normalize_address
from conference.control.actions import PIN_ACCEPTED, PIN_FAILED, PIN_WRONG, PinEntry
from conference.control.confinfo import (
    CONNECTED,
    MUTED,
    ON_HOLD,
    ConferenceState,
    Description,
    Endpoint,
    Media,
    User,
    when,
)
from conference.control.policy import ALLOW, CalendarPolicy, Role, may_moderate, policy_of
from conference.records import ConferenceRecord
from conference.sip.errors import RemoteProtocolError

__all__ = ["ConferenceControl", "PinGuard", "uri_pin"]

log = Logger()

#: Wrong PINs allowed from one source for one conference within
#: L{PinGuard.window} seconds before it is refused outright.
PIN_TRIES = 3
#: Conferences whose policy is remembered at most (then forgotten at once).
MAX_POLICIES = 4096


class PinGuard:
    """
    Counts wrong PINs per conference and source, so a PIN cannot be
    guessed by trying: after C{tries} wrong ones within C{window} seconds
    every try is refused until the window has passed.
    """

    def __init__(self, tries: int = PIN_TRIES, window: float = 300.0) -> None:
        self.tries = tries
        self.window = window
        self._wrong: Dict[Tuple[str, str], List[float]] = {}

    def check(
        self, conference: str, source: str, expected: str, given: Optional[str], now: float
    ) -> None:
        """
        @raise RemoteProtocolError: 403 for a missing or wrong PIN, or for
            any PIN once the source used up its tries.
        """
        recent = self.refuse_if_locked_out(conference, source, now)
        if given is None:
            raise RemoteProtocolError("Forbidden (PIN required)", 403)
        if given != expected:
            self.wrong(conference, source, now, recent)
            raise RemoteProtocolError("Forbidden (wrong PIN)", 403)
        self._wrong.pop((conference, source), None)

    def refuse_if_locked_out(self, conference: str, source: str, now: float) -> List[float]:
        """
        The recent wrong tries of C{source} for C{conference}.

        @raise RemoteProtocolError: 403 once they used up their tries.
        """
        key = (conference, source)
        recent = [t for t in self._wrong.get(key, ()) if t > now - self.window]
        self._wrong[key] = recent
        if len(recent) >= self.tries:
            raise RemoteProtocolError("Forbidden (too many wrong PINs, try later)", 403)
        return recent

    def wrong(
        self, conference: str, source: str, now: float, recent: Optional[List[float]] = None
    ) -> None:
        """
        Count a wrong PIN from C{source} for C{conference}.
        """
        if recent is None:
            recent = [t for t in self._wrong.get((conference, source), ()) if t > now - self.window]
        recent.append(now)
        self._wrong[(conference, source)] = recent
        if len(self._wrong) > 10000:
            self._wrong = {k: v for k, v in self._wrong.items() if v and v[-1] > now - self.window}


def uri_pin(uri: Any) -> Optional[str]:
    """
    The PIN given in the user part of a Request-URI
    (C{sip:conf;pin=1234@example.com}), if any.
    """
    user = getattr(uri, "username", None) or ""
    for param in user.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "pin":
            return value.strip()
    return None


def _media_id(key: Any) -> str:
    return hashlib.sha1(repr(key).encode("utf-8")).hexdigest()[:12]


class ConferenceControl:
    """
    Roles, state snapshots and moderator actions for the conferences of
    one L{Focus}.

    @ivar listeners: called with a conference URI after each change (the
        conference event package's C{changed}); the focus's own listeners
        are told too.
    """

    def __init__(
        self,
        focus: Focus,
        *,
        default_guests: str = ALLOW,
        pins: Optional[PinGuard] = None,
        dtmf_pins: bool = False,
        admins: Iterable[str] = (),
    ) -> None:
        """
        @param admins: the server admins' addresses (C{--admin}): they
            moderate every conference.
        @param dtmf_pins: whether the media plane reports DTMF (its
            C{on_dtmf} calls L{on_dtmf}), so a caller without a PIN in the
            Request-URI may join to type it.
        """
        self.focus = focus
        self.default_guests = default_guests
        self.pins = pins if pins is not None else PinGuard()
        #: When the participants of a conference were told it ends (the
        #: lifecycle's C{ends_at}); L{None}: not yet.
        self.ending: Callable[[str], Optional[float]] = lambda uri: None
        self.dtmf_pins = dtmf_pins
        self.admins = frozenset(normalize_address(a) for a in admins)
        #: The last policy read per conference, with the calendar and
        #: settings it was read from.
        self._policies: Dict[str, Tuple[Any, Dict[str, str], CalendarPolicy]] = {}
        focus.admit = self._admit
        focus.listeners.append(self._apply_media)

    # Joining -----------------------------------------------------------------

    def policy(self, record: ConferenceRecord, calendar: Any) -> CalendarPolicy:
        """
        The policy of C{record}'s conference, read once per calendar and
        settings (a join asks for it; C{calendar_of} parses the calendar
        once per record version, so the same object comes back until the
        conference changes).
        """
        cached = self._policies.get(record.uri)
        if cached is not None and cached[0] is calendar and cached[1] == record.settings:
            return cached[2]
        policy = policy_of(calendar, record.settings, default_guests=self.default_guests)
        if len(self._policies) >= MAX_POLICIES:
            self._policies.clear()
        self._policies[record.uri] = (calendar, dict(record.settings), policy)
        return policy

    def _admit(self, join: Any, who: str) -> Role:
        """
        The role a joining caller gets (the focus's C{admit} hook).

        @raise RemoteProtocolError: 403 for someone the event does not
            admit, or a missing or wrong PIN.
        """
        policy = self.policy(join.record, join.calendar)
        identity = join.context.identity
        aor = str(identity.aor) if identity is not None else None
        role = policy.role_of(aor)
        if role is None:
            raise RemoteProtocolError("Forbidden (not invited to this conference)", 403)
        if policy.pin is not None and not (aor is not None and policy.is_member(aor)):
            given = uri_pin(join.request.uri)
            source = join.context.peer.host
            if given is None and self.dtmf_pins:
                self.pins.refuse_if_locked_out(join.record.uri, source, join.context.now)
                join.pin_entry = PinEntry(policy.pin, tries=self.pins.tries, source=source)
            else:
                self.pins.check(join.record.uri, source, policy.pin, given, join.context.now)
        return role

    def changed(self, uri: str) -> None:
        """
        C{uri}'s record changed (an iTIP message): give the members in it
        the roles the calendar gives them now.  Guests keep theirs (they
        may not be authenticated, so the calendar cannot name them).
        """
        d: Deferred[Any] = self.focus.stores.conferences.get(uri)
        d.addCallback(self._new_roles, uri)
        d.addErrback(lambda f: log.error("Roles of {uri} not updated: {f}", uri=uri, f=f))

    def _new_roles(self, record: Optional[ConferenceRecord], uri: str) -> None:
        if record is None:
            return
        try:
            policy = self.policy(record, calendar_of(record))
        except CalendarError:
            return
        changed = False
        for participant in self.focus.roster.participants(uri):
            old = participant.role
            if old is None or "guest" in old.names:
                continue
            new = policy.role_of(participant.identity)
            if new is not None and new != old:
                participant.role = new
                changed = True
        if changed:
            self.focus.notify_listeners(uri)

    def on_dtmf(self, session: Any, digit: str) -> None:
        """
        A digit from a participant (the media plane's C{on_dtmf}): while
        they type the PIN, check it; three wrong ones end the call.
        """
        conference = getattr(session, "conference", None)
        found = [p for p in self.focus.roster.participants(str(conference)) if p.session is session]
        if not found or found[0].pin_entry is None:
            return
        participant = found[0]
        entry = participant.pin_entry
        outcome = entry.digit(digit)
        if outcome == PIN_ACCEPTED:
            participant.pin_entry = None
            log.info("{who} gave the PIN of {uri}", who=participant.identity, uri=conference)
            self.focus.notify_listeners(participant.conference)
        elif outcome in (PIN_WRONG, PIN_FAILED):
            self.pins.wrong(participant.conference, entry.source, self.focus.seconds())
            if outcome == PIN_FAILED:
                self.focus.hang_up(participant.key, "wrong PIN three times")

    def _apply_media(self, uri: str) -> None:
        """
        Keep the media plane in step with who may speak and hear in
        C{uri} (after every change of it).
        """
        for participant in self.focus.roster.participants(uri):
            self._media_mute(participant)

    # State -------------------------------------------------------------------

    def state(self, uri: str, now: float) -> Deferred[Optional[ConferenceState]]:
        """
        The snapshot of C{uri} subscribers see now; L{None} when there is
        no such conference any more.
        """

        def found(record: Optional[ConferenceRecord]) -> Optional[ConferenceState]:
            if record is None:
                return None
            return self.snapshot(record, now)

        d: Deferred[Any] = self.focus.stores.conferences.get(uri)
        return d.addCallback(found)

    def snapshot(self, record: ConferenceRecord, now: float) -> ConferenceState:
        """
        The state of C{record}'s conference at C{now}.
        """
        participants = [
            p for p in self.focus.roster.participants(record.uri) if p.pin_entry is None
        ]
        calendar: Any = None
        xcal: Optional[bytes] = None
        subject: Optional[str] = None
        try:
            calendar = calendar_of(record)
            events = calendar.subcomponents("VEVENT")
            if events:
                subject = str(events[0].value("SUMMARY", "") or "") or None
            moment = utc_datetime(now)
            timeline = timeline_of(record, moment)
            instance = current_instance(timeline, moment, self.focus.early_join) or next_instance(
                timeline, moment
            )
            if instance is not None:
                xcal = self.focus.calendars.xcal(record, calendar, instance, now)
        except CalendarError as e:
            log.error("Conference {uri} has a bad stored calendar: {e}", uri=record.uri, e=e)
        users: Dict[str, List[Participant]] = {}
        for participant in participants:
            users.setdefault(normalize_address(participant.identity), []).append(participant)
        return ConferenceState(
            entity=record.uri,
            description=Description(
                subject=subject,
                free_text=_ending_note(self.ending(record.uri)),
                conf_uris=(record.uri,),
                maximum=self.focus.maximum(record),
                calendar=xcal,
            ),
            users=tuple(_user(entity, members) for entity, members in sorted(users.items())),
            locked=self.focus.is_locked(record),
            active=bool(participants),
        )

    # Moderator actions -------------------------------------------------------

    def is_moderator(self, record: ConferenceRecord, calendar: Any, by: Optional[str]) -> bool:
        """
        Whether C{by} (an authenticated address) moderates C{record}'s
        conference: L{may_moderate}, the rule the status page applies too.
        """
        return may_moderate(
            self.policy(record, calendar),
            by,
            owners=(record.organizer, record.owner),
            admin=by is not None and normalize_address(by) in self.admins,
        )

    def authorize(self, uri: str, by: Optional[str]) -> Deferred[ConferenceRecord]:
        """
        Fire with C{uri}'s record when C{by} (an authenticated address) is
        one of its moderators (L{is_moderator}).

        @raise RemoteProtocolError: (through the Deferred) 404 for no such
            conference, 403 for anyone else.
        """

        def found(record: Optional[ConferenceRecord]) -> ConferenceRecord:
            if record is None:
                raise RemoteProtocolError("Not Found (no such conference)", 404)
            try:
                calendar = calendar_of(record)
            except CalendarError:
                raise RemoteProtocolError("Conference unavailable", 500) from None
            if not self.is_moderator(record, calendar, by):
                raise RemoteProtocolError("Forbidden (only moderators may do that)", 403)
            return record

        d: Deferred[Any] = self.focus.stores.conferences.get(uri)
        return d.addCallback(found)

    def members(self, uri: str, target: str) -> List[Participant]:
        """
        The calls of C{target} (an address) in C{uri}.

        @raise RemoteProtocolError: 404 when they are not in it.
        """
        address = normalize_address(target)
        found = [
            p
            for p in self.focus.roster.participants(uri)
            if normalize_address(p.identity) == address
        ]
        if not found:
            raise RemoteProtocolError(f"Not Found ({address} is not in this conference)", 404)
        return found

    def set_muted(self, uri: str, target: str, by: Optional[str], muted: bool) -> Deferred[int]:
        """
        Mute or unmute every call of C{target} in C{uri}; fires with how
        many changed.
        """

        def act(record: ConferenceRecord) -> int:
            changed = 0
            for participant in self.members(uri, target):
                if participant.muted != muted:
                    participant.muted = muted
                    self._media_mute(participant)
                    changed += 1
            log.info(
                "{by} {what} {target} in {uri}",
                by=by,
                what="muted" if muted else "unmuted",
                target=target,
                uri=uri,
            )
            if changed:
                self.focus.notify_listeners(uri)
            return changed

        return self.authorize(uri, by).addCallback(act)

    def set_locked(self, uri: str, by: Optional[str], locked: bool) -> Deferred[bool]:
        """
        Lock or unlock C{uri} (a locked conference admits only moderators);
        fires with whether that changed anything.
        """

        def act(record: ConferenceRecord) -> bool:
            before = self.focus.is_locked(record)
            self.focus.locks[uri] = locked
            log.info("{by} {what} {uri}", by=by, what="locked" if locked else "unlocked", uri=uri)
            if before != locked:
                self.focus.notify_listeners(uri)
            return before != locked

        return self.authorize(uri, by).addCallback(act)

    def remove(self, uri: str, target: str, by: Optional[str]) -> Deferred[int]:
        """
        End every call of C{target} in C{uri} with BYE (RFC 4579 section
        5.5); fires with how many.
        """

        def act(record: ConferenceRecord) -> int:
            members = self.members(uri, target)
            if by is not None and normalize_address(target) == normalize_address(by):
                log.info("{by} removed themselves from {uri}", by=by, uri=uri)
            for participant in members:
                self.focus.hang_up(participant.key, f"removed by {by}")
            return len(members)

        return self.authorize(uri, by).addCallback(act)

    def end(self, uri: str, by: Optional[str], reason: str) -> Deferred[int]:
        """
        End the conference now: BYE to every participant; fires with how
        many calls were ended.  It stays scheduled (its next occurrence
        opens as usual).
        """

        def act(record: ConferenceRecord) -> int:
            count: int = self.focus.end_conference(uri, reason)
            log.info("{by} ended {uri} ({count} calls)", by=by, uri=uri, count=count)
            return count

        return self.authorize(uri, by).addCallback(act)

    def _media_mute(self, participant: Participant) -> None:
        """
        Tell the media plane, when it can mute (the mixer's C{mute}); the
        null media service mixes nothing, so the focus state is all there is.
        """
        mute: Optional[Callable[..., Any]] = getattr(self.focus.media, "mute", None)
        if mute is None or participant.session is None:
            return
        waiting = participant.pin_entry is not None
        incoming = participant.muted or waiting or _listen_only(participant)
        told = participant.media_told
        if told is not None and told[0] is participant.session and told[1:] == (incoming, waiting):
            return  # as it is already: every change of the conference comes here
        with suppress(RemoteProtocolError):  # the session closed meanwhile
            mute(participant.session, incoming=incoming, outgoing=waiting)
        participant.media_told = (participant.session, incoming, waiting)


def _ending_note(ends: Optional[float]) -> Optional[str]:
    """
    The note of a conference about to end, for C{<free-text>}.
    """
    if ends is None:
        return None
    return f"This conference ends at {when(ends)}."


def _listen_only(participant: Participant) -> bool:
    return bool(getattr(participant.role, "listen_only", False))


def _media_status(participant: Participant) -> str:
    """
    The audio's status from the participant's side (RFC 4575 section
    5.6.12): what they negotiated (a hold is C{sendonly} or C{inactive}),
    less the sending when the focus mixes nothing of theirs (muted,
    listen only).
    """
    direction = participant.direction
    if participant.muted or _listen_only(participant):
        return {"sendrecv": "recvonly", "sendonly": "inactive"}.get(direction, direction)
    return direction


def _user(entity: str, members: List[Participant]) -> User:
    roles: Tuple[str, ...] = ()
    for participant in members:
        names = getattr(participant.role, "names", None)
        if names:
            roles = tuple(names)
            break
    endpoints = []
    for participant in members:
        remote = getattr(participant.dialog, "remote_target", None)
        if holds(participant.direction):
            status = ON_HOLD
        else:
            status = MUTED if participant.muted else CONNECTED
        endpoints.append(
            Endpoint(
                entity=str(remote) if remote is not None else entity,
                status=status,
                joining_method=participant.joining_method,
                joined_at=participant.joined,
                referred_by=participant.referred_by,
                media=(Media(_media_id(participant.key), "audio", _media_status(participant)),),
            )
        )
    return User(entity=entity, roles=roles or ("participant",), endpoints=tuple(endpoints))
