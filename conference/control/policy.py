# -*- test-case-name: tests.unit.control.test_policy -*-
"""
Who may do what in a conference, read from its calendar.

The ORGANIZER and attendees with C{ROLE=CHAIR} are moderators; attendees
with C{ROLE=NON-PARTICIPANT} listen only; other attendees take part.
People who are not on the ATTENDEE list are guests, admitted as the event
says in C{X-CONFERENCE-GUESTS} (C{ALLOW}, C{LISTEN} or C{DENY}); a PIN
comes from C{X-CONFERENCE-PIN} or the record's C{pin} setting (BIND), and
C{X-CONFERENCE-DIAL-OUT:TRUE} has the focus call the attendees at DTSTART.
Roles are only ever given to an authenticated identity: an anonymous
caller is a guest whatever its From says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, Mapping, Optional, Tuple

from conference.calendar.itip import normalize_address
from conference.calendar.model import Component

__all__ = [
    "ALLOW",
    "DENY",
    "LISTEN",
    "CalendarPolicy",
    "Role",
    "may_moderate",
    "policy_of",
]

ALLOW = "ALLOW"
LISTEN = "LISTEN"
DENY = "DENY"
GUEST_MODES = (ALLOW, LISTEN, DENY)

GUESTS_PROPERTY = "X-CONFERENCE-GUESTS"
PIN_PROPERTY = "X-CONFERENCE-PIN"
DIAL_OUT_PROPERTY = "X-CONFERENCE-DIAL-OUT"


@dataclass(frozen=True)
class Role:
    """
    A participant's role.

    @ivar names: the C{<roles>} entries of RFC 4575 (C{organizer},
        C{chair}, C{participant}, C{listener}, C{guest}).
    @ivar moderator: may mute, remove, dial out and lock.
    @ivar listen_only: the focus mixes nothing this participant sends.
    """

    names: Tuple[str, ...]
    moderator: bool = False
    listen_only: bool = False


ORGANIZER_ROLE = Role(("organizer", "chair"), moderator=True)
CHAIR_ROLE = Role(("chair",), moderator=True)
PARTICIPANT_ROLE = Role(("participant",))
LISTENER_ROLE = Role(("listener",), listen_only=True)
GUEST_ROLE = Role(("guest",))
LISTENING_GUEST_ROLE = Role(("guest", "listener"), listen_only=True)


@dataclass(frozen=True)
class CalendarPolicy:
    """
    What a conference's calendar says about its people.

    @ivar organizer: the normalised ORGANIZER address.
    @ivar attendees: normalised attendee address -> its ROLE parameter
        (C{REQ-PARTICIPANT} when absent); rooms and resources left out.
    @ivar guests: C{ALLOW}, C{LISTEN} or C{DENY}.
    @ivar pin: the PIN callers must give, if any.
    @ivar dial_out: whether the focus calls the attendees at DTSTART.
    """

    organizer: Optional[str] = None
    attendees: Mapping[str, str] = field(default_factory=dict)
    guests: str = ALLOW
    pin: Optional[str] = None
    dial_out: bool = False

    def is_member(self, address: str) -> bool:
        """
        Whether C{address} is the organizer or an attendee.
        """
        address = normalize_address(address)
        return address == self.organizer or address in self.attendees

    def role_of(self, identity: Optional[str]) -> Optional[Role]:
        """
        The role of the authenticated C{identity} (L{None}: anonymous), or
        L{None} when the event does not admit them.
        """
        if identity is not None:
            address = normalize_address(identity)
            if address == self.organizer:
                return ORGANIZER_ROLE
            role = self.attendees.get(address)
            if role == "CHAIR":
                return CHAIR_ROLE
            if role == "NON-PARTICIPANT":
                return LISTENER_ROLE
            if role is not None:
                return PARTICIPANT_ROLE
        if self.guests == ALLOW:
            return GUEST_ROLE
        if self.guests == LISTEN:
            return LISTENING_GUEST_ROLE
        return None


def _masters(calendar: Component) -> list[Component]:
    events = calendar.subcomponents("VEVENT")
    return [e for e in events if e.get("RECURRENCE-ID") is None] or events


def policy_of(
    calendar: Component,
    settings: Optional[Mapping[str, str]] = None,
    *,
    default_guests: str = ALLOW,
) -> CalendarPolicy:
    """
    Read the policy of a conference from its calendar (the first master
    VEVENT that says) and its record's settings (a C{pin} setting wins over
    the VEVENT's, a C{guests} setting over C{X-CONFERENCE-GUESTS}).

    @param default_guests: the guest mode when nothing says (the service
        passes C{DENY} when it authenticates INVITEs, C{ALLOW} when it
        cannot tell attendees from others).
    """
    organizer: Optional[str] = None
    attendees: Dict[str, str] = {}
    guests: Optional[str] = None
    pin: Optional[str] = None
    dial_out = False
    for event in _masters(calendar):
        value = event.value("ORGANIZER")
        if organizer is None and isinstance(value, str):
            organizer = normalize_address(value)
        for prop in event.get_all("ATTENDEE"):
            if not prop.values or not isinstance(prop.values[0], str):
                continue
            if (prop.param("CUTYPE") or "INDIVIDUAL").upper() in ("ROOM", "RESOURCE"):
                continue
            address = normalize_address(prop.values[0])
            attendees.setdefault(address, (prop.param("ROLE") or "REQ-PARTICIPANT").upper())
        said = str(event.value(GUESTS_PROPERTY, "") or "").strip().upper()
        if guests is None and said in GUEST_MODES:
            guests = said
        code = str(event.value(PIN_PROPERTY, "") or "").strip()
        if pin is None and code:
            pin = code
        if str(event.value(DIAL_OUT_PROPERTY, "") or "").strip().upper() == "TRUE":
            dial_out = True
    settings = settings or {}
    if settings.get("pin"):
        pin = settings["pin"].strip()
    if settings.get("guests", "").upper() in GUEST_MODES:
        guests = settings["guests"].upper()
    return CalendarPolicy(
        organizer=organizer,
        attendees=attendees,
        guests=guests or default_guests,
        pin=pin or None,
        dial_out=dial_out,
    )


def may_moderate(
    policy: CalendarPolicy,
    address: Optional[str],
    *,
    owners: Iterable[Optional[str]] = (),
    admin: bool = False,
) -> bool:
    """
    The one moderator rule, for SIP (REFER, INFO) and the status page
    alike: a server admin (C{--admin}), whoever the conference record
    names as organizer or owner (C{owners}), and whom its calendar makes
    a moderator (the ORGANIZER, C{ATTENDEE;ROLE=CHAIR}).  Anonymous
    callers (C{address} L{None}) never are.
    """
    if address is None:
        return False
    if admin:
        return True
    who = normalize_address(address)
    if any(owner and normalize_address(owner) == who for owner in owners):
        return True
    role = policy.role_of(who)
    return role is not None and role.moderator
