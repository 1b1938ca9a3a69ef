# -*- test-case-name: tests.unit.control.test_confinfo -*-
"""
Conference state documents of the RFC 4575 event package
(C{application/conference-info+xml}), built from plain values.

A L{ConferenceState} is a snapshot of one conference as its subscribers
see it; L{full_document} renders it whole and L{partial_document} renders
what changed between two snapshots (RFC 4575 section 4.6: changed users
whole, departed ones C{state="deleted"}).  The conference's VEVENT travels
as its xCal document (RFC 6321), an extension element in the xCal
namespace at the end of C{<conference-description>}, so one subscription
shows both the schedule and the roster (iSIP section 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Dict, Optional, Tuple

from lxml import etree

__all__ = [
    "CONTENT_TYPE",
    "EVENT_PACKAGE",
    "NS",
    "XCAL_NS",
    "ConferenceState",
    "Description",
    "Endpoint",
    "Media",
    "User",
    "full_document",
    "partial_document",
    "when",
]

EVENT_PACKAGE = "conference"
CONTENT_TYPE = "application/conference-info+xml"
NS = "urn:ietf:params:xml:ns:conference-info"
XCAL_NS = "urn:ietf:params:xml:ns:icalendar-2.0"
_Q = "{" + NS + "}"

#: Endpoint status values of RFC 4575 section 5.6.4 that the focus uses.
CONNECTED = "connected"
MUTED = "muted-via-focus"
ON_HOLD = "on-hold"
DIALING_OUT = "dialing-out"
DISCONNECTED = "disconnected"


@dataclass(frozen=True)
class Media:
    """
    One media stream of an endpoint (RFC 4575 section 5.6.12).

    @ivar status: from the endpoint's side: C{sendrecv}; C{recvonly} when
        the focus does not mix what the endpoint sends (muted, or a
        listen-only role); C{sendonly} or C{inactive} while it holds.
    """

    id: str
    type: str = "audio"
    status: str = "sendrecv"


@dataclass(frozen=True)
class Endpoint:
    """
    One device of a user in the conference (RFC 4575 section 5.6).

    @ivar status: C{connected}, C{muted-via-focus}, C{dialing-out}, ...
    @ivar joining_method: C{dialed-in} or C{dialed-out}.
    @ivar joined_at: when it joined (POSIX seconds).
    @ivar referred_by: the moderator who had the focus dial it out.
    """

    entity: str
    status: str = CONNECTED
    joining_method: str = "dialed-in"
    joined_at: Optional[float] = None
    referred_by: Optional[str] = None
    media: Tuple[Media, ...] = ()


@dataclass(frozen=True)
class User:
    """
    One user (an address of record) with their endpoints and roles.
    """

    entity: str
    display: Optional[str] = None
    roles: Tuple[str, ...] = ()
    endpoints: Tuple[Endpoint, ...] = ()


@dataclass(frozen=True)
class Description:
    """
    What C{<conference-description>} says.

    @ivar free_text: a note for the participants (the warning that the
        conference is about to end).
    @ivar calendar: the conference's VEVENT as an xCal document, embedded
        as is.
    """

    subject: Optional[str] = None
    display: Optional[str] = None
    free_text: Optional[str] = None
    conf_uris: Tuple[str, ...] = ()
    maximum: Optional[int] = None
    calendar: Optional[bytes] = None


@dataclass(frozen=True)
class ConferenceState:
    """
    A snapshot of one conference.

    @ivar users: by address, in a stable order.
    """

    entity: str
    description: Description = field(default_factory=Description)
    users: Tuple[User, ...] = ()
    locked: bool = False
    active: bool = True

    def by_entity(self) -> Dict[str, User]:
        """
        The users keyed by their address.
        """
        return {u.entity: u for u in self.users}


def _sub(parent: etree._Element, name: str, text: Optional[str] = None) -> etree._Element:
    element = etree.SubElement(parent, _Q + name)
    if text is not None:
        element.text = text
    return element


def when(seconds: float) -> str:
    """
    An xs:dateTime in UTC for POSIX C{seconds}.
    """
    moment = datetime.fromtimestamp(int(seconds), timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _description(parent: etree._Element, description: Description) -> None:
    element = _sub(parent, "conference-description")
    if description.display:
        _sub(element, "display-text", description.display)
    if description.subject:
        _sub(element, "subject", description.subject)
    if description.free_text:
        _sub(element, "free-text", description.free_text)
    if description.conf_uris:
        uris = _sub(element, "conf-uris")
        for uri in description.conf_uris:
            entry = _sub(uris, "entry")
            _sub(entry, "uri", uri)
            _sub(entry, "purpose", "participation")
    if description.maximum is not None:
        _sub(element, "maximum-user-count", str(description.maximum))
    media = _sub(_sub(element, "available-media"), "entry")
    media.set("label", "audio")
    _sub(media, "type", "audio")
    _sub(media, "status", "sendrecv")
    if description.calendar:
        element.append(etree.fromstring(description.calendar))


def _state(parent: etree._Element, state: ConferenceState) -> None:
    element = _sub(parent, "conference-state")
    _sub(element, "user-count", str(len(state.users)))
    _sub(element, "active", "true" if state.active else "false")
    _sub(element, "locked", "true" if state.locked else "false")


def _user(parent: etree._Element, user: User) -> None:
    element = _sub(parent, "user")
    element.set("entity", user.entity)
    element.set("state", "full")
    if user.display:
        _sub(element, "display-text", user.display)
    if user.roles:
        roles = _sub(element, "roles")
        for role in user.roles:
            _sub(roles, "entry", role)
    for endpoint in user.endpoints:
        _endpoint(element, endpoint)


def _endpoint(parent: etree._Element, endpoint: Endpoint) -> None:
    element = _sub(parent, "endpoint")
    element.set("entity", endpoint.entity)
    element.set("state", "full")
    if endpoint.referred_by:
        referred = _sub(element, "referred")
        _sub(referred, "by", endpoint.referred_by)
    _sub(element, "status", endpoint.status)
    _sub(element, "joining-method", endpoint.joining_method)
    if endpoint.joined_at is not None:
        info = _sub(element, "joining-info")
        _sub(info, "when", when(endpoint.joined_at))
    for medium in endpoint.media:
        media = _sub(element, "media")
        media.set("id", medium.id)
        _sub(media, "type", medium.type)
        _sub(media, "status", medium.status)


def _root(entity: str, state: str, version: int) -> etree._Element:
    root = etree.Element(_Q + "conference-info", nsmap={None: NS})
    root.set("entity", entity)
    root.set("state", state)
    root.set("version", str(version))
    return root


def _serialize(root: etree._Element) -> bytes:
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def full_document(state: ConferenceState, version: int) -> bytes:
    """
    The whole state of a conference (C{state="full"}).
    """
    root = _root(state.entity, "full", version)
    _description(root, state.description)
    _state(root, state)
    users = _sub(root, "users")
    for user in state.users:
        _user(users, user)
    return _serialize(root)


def partial_document(old: ConferenceState, new: ConferenceState, version: int) -> Optional[bytes]:
    """
    What changed from C{old} to C{new} (C{state="partial"}), or L{None}
    when nothing did: the description and the conference state whole when
    they changed, then each new or changed user whole and each departed
    user as C{state="deleted"}.
    """
    if old == new:
        return None
    root = _root(new.entity, "partial", version)
    if old.description != new.description:
        _description(root, new.description)
    if (len(old.users), old.locked, old.active) != (len(new.users), new.locked, new.active):
        _state(root, new)
    before, after = old.by_entity(), new.by_entity()
    changed = [u for u in new.users if before.get(u.entity) != u]
    gone = [entity for entity in before if entity not in after]
    if changed or gone:
        users = _sub(root, "users")
        users.set("state", "partial")
        for user in changed:
            _user(users, user)
        for entity in gone:
            element = _sub(users, "user")
            element.set("entity", entity)
            element.set("state", "deleted")
    return _serialize(root)
