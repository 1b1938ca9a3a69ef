# -*- test-case-name: tests.unit.app.test_owners,tests.unit.app.test_bind -*-
"""
Whose bindings a URI names (a stored conference, whose owner and
attendees, or an address of record) for BIND, OPTIONS, REGISTER and
SUBSCRIBE, and how a store fault met on the way is answered.

Lookups for queries are remembered for a second (L{OWNER_MAX_AGE}): a
query is read-only and thousands a second name the same few owners;
updates always look again (docs/bind.rst, "Caching").
"""

from __future__ import annotations

from typing import Any, Callable, Dict, FrozenSet, List, Optional, Tuple, TypeVar, Union

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from conference.app.conferences import owner_of
from conference.app.core import store_refusal
from conference.bindings.access import CONFERENCE, USER, Owner, normalize_aor
from conference.bindings.logic import limit_refusal
from conference.deferreds import PENDING, as_deferred, fired_result, then
from conference.interfaces import IAccounts, IConferenceStore
from conference.records import ConferenceRecord, LimitExceededError, StoreError
from conference.sip.errors import RemoteProtocolError, SIPProtocolError
from conference.sip.uri import SIPURI

__all__ = [
    "OWNER_CACHE_MAX",
    "OWNER_MAX_AGE",
    "DomainOf",
    "OwnerResolver",
    "conference_owner",
    "failed_deferred",
    "store_failure",
]

log = Logger()

_V = TypeVar("_V")
MaybeDeferred = Union[_V, "Deferred[_V]"]
DomainOf = Callable[[str], Optional[str]]

#: Seconds an owner lookup is reused for queries (L{OwnerResolver}).
OWNER_MAX_AGE = 1.0
#: Owner lookups remembered at most.
OWNER_CACHE_MAX = 4096


def store_failure(failure: Failure, max_bindings: int = 0) -> Failure:
    """
    Turn a store failure into the SIP answer: the binding limit is the
    403 of L{limit_refusal}; any other store fault is a 503 with
    Retry-After (nothing was committed); protocol errors pass through.
    """
    error = failure.value
    if isinstance(error, SIPProtocolError):
        return failure
    if isinstance(error, LimitExceededError):
        raise limit_refusal(max_bindings)
    if isinstance(error, StoreError):
        raise store_refusal(error, "Binding store")
    return failure


def _calendar_addresses(record: ConferenceRecord) -> Tuple[str, FrozenSet[str]]:
    """
    The owner of a stored conference (L{owner_of}) and the ATTENDEE
    addresses of the owner's own live bookings in its calendar (master and
    overridden VEVENTs, cancelled ones left out): those of other
    organizers' bookings of the same URI have no say.  No attendees when
    the calendar cannot be read.
    """
    from conference.calendar import CalendarError, normalize_address, parse_xcal_calendar

    owner = owner_of(record)
    attendees = set()
    try:
        calendar = parse_xcal_calendar(record.calendar)
    except (CalendarError, ValueError) as e:
        log.warn("Conference {uri} has an unreadable calendar: {error}", uri=record.uri, error=e)
        return owner, frozenset()
    for event in calendar.walk("VEVENT"):
        prop = event.get("ORGANIZER")
        organizer = prop.value if prop is not None else None
        if not isinstance(organizer, str) or normalize_address(organizer) != owner:
            continue
        if str(event.value("STATUS", "")).upper() == "CANCELLED":
            continue
        for attendee in event.get_all("ATTENDEE"):
            if attendee.value and (attendee.param("CUTYPE") or "").upper() != "ROOM":
                attendees.add(str(attendee.value))
    return owner, frozenset(attendees)


def conference_owner(record: ConferenceRecord, uri: Optional[str] = None) -> Owner:
    """
    The binding owner a stored conference is: its owner (the organizer
    who created it) may change its bindings; the attendees of the owner's
    bookings (the room itself excepted) see them too.
    """
    owner, attendees = _calendar_addresses(record)
    return Owner(uri or record.uri, CONFERENCE, owner or None, attendees)


class OwnerResolver:
    """
    Finds whose bindings a URI names: a stored conference, else the address
    of record C{sip:user@domain} of a served domain.  A conference whose
    address is a known account's (one created before that account was)
    is that user's: their bindings are theirs.

    @ivar conferences: where conferences are looked up.
    @ivar domain_of: maps a host to the served domain it names, or L{None}.
    @ivar accounts: the server's accounts, or L{None}.
    @ivar max_age: seconds a lookup for a query (L{find_now} with
        C{cached}) is reused, when a clock was given; updates always look
        again.
    """

    def __init__(
        self,
        conferences: IConferenceStore,
        domain_of: DomainOf,
        accounts: Optional[IAccounts] = None,
        *,
        seconds: Optional[Callable[[], float]] = None,
        max_age: float = OWNER_MAX_AGE,
    ) -> None:
        """
        @param seconds: the clock lookups for queries are remembered by;
            without it nothing is remembered.
        """
        self.conferences = conferences
        self.domain_of = domain_of
        self.accounts = accounts
        self.max_age = max_age
        self._seconds = seconds
        self._owners: Dict[Tuple[str, str], Tuple[float, Owner]] = {}

    def forget(self) -> None:
        """
        Drop every remembered lookup.
        """
        self._owners.clear()

    def _remembered(self, key: Tuple[str, str]) -> Optional[Owner]:
        if self._seconds is None:
            return None
        entry = self._owners.get(key)
        if entry is None:
            return None
        age = self._seconds() - entry[0]
        return entry[1] if 0.0 <= age < self.max_age else None

    def _remember(
        self, key: Tuple[str, str], read_at: float, owner: Optional[Owner]
    ) -> Optional[Owner]:
        owners = self._owners
        if owner is None:
            return None
        if key not in owners and len(owners) >= OWNER_CACHE_MAX:
            del owners[next(iter(owners))]
        owners[key] = (read_at, owner)
        return owner

    def _conference(self, record: ConferenceRecord, canonical: str) -> Owner:
        """
        The owner a URI with the stored conference C{record} names.
        """
        if self.accounts is not None and self.accounts.is_account(canonical):
            return Owner(canonical, USER)
        return conference_owner(record, canonical)

    def key(self, uri: Any) -> Optional[Tuple[str, str]]:
        """
        C{(owner URI, as written normalised)} for a URI with a user part in
        a served domain; L{None} if it has no user part.

        @raise RemoteProtocolError: 404 if its domain is not served here.
        """
        if not isinstance(uri, SIPURI) or not uri.username or not uri.host:
            return None
        domain = self.domain_of(uri.host)
        if domain is None:
            raise RemoteProtocolError(f"Domain {uri.host.lower()} not served here", 404)
        return f"sip:{uri.username}@{domain}", normalize_aor(f"sip:{uri.username}@{uri.host}")

    def find(self, uri: Any) -> Deferred[Optional[Owner]]:
        """
        The owner C{uri} names, or L{None} when it names none (no user
        part: the server or a domain itself).

        @return: a Deferred; it fails with a 404 L{RemoteProtocolError}
            for a domain not served here, or as L{store_failure}.
        """
        try:
            key = self.key(uri)
        except RemoteProtocolError as e:
            return failed_deferred(e)
        return self._find(key)

    def _find(self, key: Optional[Tuple[str, str]]) -> Deferred[Optional[Owner]]:
        d: Deferred[Optional[Owner]] = as_deferred(lambda: self.find_now(key))
        return d.addErrback(store_failure)

    def find_now(
        self, key: Optional[Tuple[str, str]], cached: bool = False
    ) -> MaybeDeferred[Optional[Owner]]:
        """
        The owner for a L{key}: the owner itself when the conference store
        answers at once (the memory store does), else a Deferred.  Store
        faults are not translated (see L{store_failure}).

        @param cached: a lookup for a query: one made less than
            L{max_age} seconds ago may answer (docs/bind.rst, "Caching").
        """
        if key is None:
            return None
        if cached and self._seconds is not None:
            known = self._remembered(key)
            if known is not None:
                return known
            read_at = self._seconds()
            return then(self.find_now(key), lambda owner: self._remember(key, read_at, owner))
        canonical, written = key
        candidates = [canonical] + ([written] if written != canonical else [])
        for index, candidate in enumerate(candidates):
            d = self.conferences.get(candidate)
            record = fired_result(d)
            if record is PENDING:
                return self._look_later(d, candidates, index, canonical)
            if record is not None:
                return self._conference(record, canonical)
        return Owner(canonical, USER)

    def _look_later(
        self,
        d: Deferred[Optional[ConferenceRecord]],
        candidates: List[str],
        index: int,
        canonical: str,
    ) -> Deferred[Optional[Owner]]:
        """
        L{find_now} from C{candidates[index]} on, whose lookup C{d} has not
        answered yet.
        """

        def found(record: Optional[ConferenceRecord]) -> Any:
            if record is not None:
                return self._conference(record, canonical)
            if index + 1 >= len(candidates):
                return Owner(canonical, USER)
            following = self.conferences.get(candidates[index + 1])
            return self._look_later(following, candidates, index + 1, canonical)

        return d.addCallback(found)

    def resolve(self, uri: Any) -> Deferred[Owner]:
        """
        The owner C{uri} names.

        @return: a Deferred failing with a 404 L{RemoteProtocolError} when
            it names no conference nor address of record of a served domain.
        """
        try:
            key = self.key(uri)
        except RemoteProtocolError as e:
            return failed_deferred(e)
        if key is None:
            return failed_deferred(
                RemoteProtocolError(f"{uri} is not a conference nor an address of record", 404)
            )

        def present(owner: Optional[Owner]) -> Owner:
            assert owner is not None
            return owner

        return self._find(key).addCallback(present)


def failed_deferred(error: Exception) -> Deferred[Any]:
    """
    A Deferred that has failed with C{error}.
    """
    d: Deferred[Any] = Deferred()
    d.errback(Failure(error))
    return d
