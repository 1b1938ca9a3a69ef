# -*- test-case-name: tests.unit.bindings.test_access -*-
"""
Who may change and who may see an owner's bindings (draft-schulzrinne-sip-bind-00
section 11), as pure functions over plain strings.

Bindings steer where a server sends private information, so updates need an
authenticated identity with a right over the owner, and queries show
everything only to those the owner shares with; keeping the rules here lets
BIND, OPTIONS, REGISTER and SUBSCRIBE apply the very same ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import AbstractSet, FrozenSet, List, Optional, Sequence

from conference.records import BindingRecord
from conference.sip.errors import RemoteProtocolError
from conference.sip.uri import SIPURI, parse_uri

__all__ = [
    "CONFERENCE",
    "SENT_BY",
    "USER",
    "AuthenticationRequired",
    "Owner",
    "check_update",
    "may_bind_disposition",
    "may_update",
    "normalize_aor",
    "sees_all",
    "visible_records",
]

CONFERENCE = "conference"
USER = "user"
#: The disposition by which a principal approves a SENT-BY delegate.
SENT_BY = "sent-by"


class AuthenticationRequired(RemoteProtocolError):
    """
    An update came without an authenticated identity: the wiring answers
    401 with a digest challenge.
    """

    def __init__(self) -> None:
        super().__init__("Binding updates need authentication", 401)


@lru_cache(maxsize=1024)
def _normalize_short(text: str) -> str:
    return _normalize(text)


def normalize_aor(text: str) -> str:
    """
    Reduce an address to what identifies it: C{scheme:user@host[:port]}
    with scheme and host lower-cased (the user part keeps its case, RFC 3261
    section 19.1.4), URI parameters and C{<>} dropped; a non-SIP URI is only
    lower-cased in its scheme; unparsable text is returned stripped.
    """
    # Remembered for short texts: access checks normalise the same few
    # addresses (owner, caller, admins) on every request.
    if len(text) <= 256:
        return _normalize_short(text)
    return _normalize(text)


def _normalize(text: str) -> str:
    text = text.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    try:
        uri = parse_uri(text)
    except RemoteProtocolError:
        return text
    if isinstance(uri, SIPURI):
        user = f"{uri.username}@" if uri.username else ""
        port = f":{uri.port}" if uri.port is not None else ""
        return f"{uri.scheme}:{user}{uri.host.lower()}{port}"
    return f"{uri.scheme}:{uri.opaque}"


@dataclass(frozen=True)
class Owner:
    """
    The owner of a set of bindings and those with a right over it.

    @ivar uri: the owner's URI (conference URI or address of record).
    @ivar kind: L{CONFERENCE} or L{USER}.
    @ivar organizer: for a conference, its owner's address: the organizer
        who created it, not the organizer of its current booking.
    @ivar attendees: for a conference, the attendees of its owner's bookings.
    """

    uri: str
    kind: str = USER
    organizer: Optional[str] = None
    attendees: FrozenSet[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.kind not in (CONFERENCE, USER):
            raise ValueError(f"owner kind must be {CONFERENCE!r} or {USER!r}")


def _same(a: Optional[str], b: Optional[str]) -> bool:
    return a is not None and b is not None and normalize_aor(a) == normalize_aor(b)


def _in(identity: str, group: AbstractSet[str]) -> bool:
    me = normalize_aor(identity)
    return any(normalize_aor(x) == me for x in group)


def may_update(
    identity: Optional[str], owner: Owner, admins: AbstractSet[str] = frozenset()
) -> bool:
    """
    Whether C{identity} may change C{owner}'s bindings: a server admin
    always; for a conference its owner (C{owner.organizer}); for a user the
    user.
    """
    if identity is None:
        return False
    if _in(identity, admins):
        return True
    if owner.kind == CONFERENCE:
        return _same(identity, owner.organizer)
    return _same(identity, owner.uri)


def check_update(
    identity: Optional[str], owner: Owner, admins: AbstractSet[str] = frozenset()
) -> str:
    """
    Return C{identity} if it may change C{owner}'s bindings.

    @raise AuthenticationRequired: (401) without an identity.
    @raise RemoteProtocolError: 403 naming the owner otherwise.
    """
    if identity is None:
        raise AuthenticationRequired()
    if not may_update(identity, owner, admins):
        raise RemoteProtocolError(f"Not allowed to change the bindings of {owner.uri}", 403)
    return identity


def may_bind_disposition(
    identity: Optional[str],
    owner: Owner,
    disposition: str,
    public: bool = False,
) -> bool:
    """
    Whether C{identity}, already allowed to update C{owner}, may bind
    C{disposition}: C{sent-by} only by the principal on their own address
    (not an admin, not for a conference) and never public.
    """
    if disposition.lower() != SENT_BY:
        return True
    return not public and owner.kind == USER and _same(identity, owner.uri)


def sees_all(identity: Optional[str], owner: Owner, admins: AbstractSet[str] = frozenset()) -> bool:
    """
    Whether C{identity} sees every binding of C{owner} (not only public
    ones): the owner, an admin, and for a conference its organizer and
    attendees.
    """
    if identity is None:
        return False
    if _in(identity, admins) or _same(identity, owner.uri):
        return True
    if owner.kind == CONFERENCE:
        return _same(identity, owner.organizer) or _in(identity, owner.attendees)
    return False


def _sees_sent_by(identity: Optional[str], owner: Owner, admins: AbstractSet[str]) -> bool:
    return identity is not None and (_same(identity, owner.uri) or _in(identity, admins))


def visible_records(
    records: Sequence[BindingRecord],
    identity: Optional[str],
    owner: Owner,
    admins: AbstractSet[str] = frozenset(),
) -> List[BindingRecord]:
    """
    The records of C{owner} that C{identity} (L{None}: anonymous) may see, in
    order: all of them for those L{sees_all} admits, else the public ones;
    C{sent-by} bindings only to the principal and admins.
    """
    everything = sees_all(identity, owner, admins)
    sent_by = _sees_sent_by(identity, owner, admins)
    out: List[BindingRecord] = []
    for record in records:
        if record.disposition == SENT_BY:
            if sent_by:
                out.append(record)
        elif everything or record.public:
            out.append(record)
    return out
