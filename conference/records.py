# -*- test-case-name: tests.unit.test_records -*-
"""
The plain records every store keeps, whatever its backend.

They are frozen dataclasses of simple values (strings, numbers, bytes), so
the memory, SQLite and PostgreSQL backends store exactly the same thing and
the contract tests can compare them for equality.  They live outside
L{conference.store} so that the sans-I/O cores (L{conference.bindings})
can use them without importing the store package and its database pools.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Collection, Dict, Mapping, Optional

#: Who holds each booking of a conference in their calendar: UID -> the
#: addresses (owners) whose calendar entries refer to it.
Holders = Mapping[str, Collection[str]]


class StoreError(Exception):
    """
    A store could not do what was asked.
    """


class ConflictError(StoreError):
    """
    A write expected a version of a record that is no longer current
    (another writer got there first); re-read and retry.
    """


class LimitExceededError(StoreError):
    """
    A write would take an owner over a configured limit (bindings per
    owner, conferences per organizer, data size).
    """


@dataclass(frozen=True)
class RegistrationBinding:
    """
    One registered contact of an address of record (RFC 3261 section 10).

    @ivar contact: the Contact URI as registered (wire form).
    @ivar expires_at: POSIX time at which it lapses.
    @ivar q: its preference, 0.0 to 1.0 (L{None} if not given).
    @ivar call_id: and C{cseq}: of the REGISTER that last set it, to refuse
        out-of-order updates (RFC 3261 section 10.3 step 7).
    """

    contact: str
    expires_at: float
    q: Optional[float]
    call_id: str
    cseq: int


@dataclass(frozen=True)
class ConferenceRecord:
    """
    A scheduled conference.

    @ivar uri: its SIP URI, the key (C{sip:conf-...@example.com}).
    @ivar uid: the iCalendar UID of its VEVENT (unique across conferences).
    @ivar organizer: the ORGANIZER's calendar address (C{sip:alice@...}).
    @ivar calendar: the stored iTIP state: an RFC 6321 xCal document
        holding the VCALENDAR with the master VEVENT and any overridden
        instances.
    @ivar sequence: the SEQUENCE of the master VEVENT.
    @ivar state: C{"scheduled"} or C{"cancelled"}.
    @ivar settings: per-conference settings as strings (for example
        C{max_participants}, C{early_join}, C{locked}).
    @ivar version: bumped by the store on every write, for optimistic
        concurrency (see L{ConflictError}); 0 for a record never stored.
    @ivar owner: whose the conference URI and its bindings are: the
        organizer who created it, kept while later bookings come and go
        (C{""} in records stored before owners were recorded).
    """

    uri: str
    uid: str
    organizer: str
    calendar: bytes
    sequence: int = 0
    state: str = "scheduled"
    settings: Dict[str, str] = field(default_factory=dict)
    version: int = 0
    created: float = 0.0
    updated: float = 0.0
    owner: str = ""


@dataclass(frozen=True)
class CalendarEntry:
    """
    One calendar object of a user: a conference they accepted or busy time
    they published, used to compute their free/busy.

    @ivar owner: the user's address of record (C{sip:bob@example.com}).
    @ivar uid: the iCalendar UID (unique per owner).
    @ivar calendar: an RFC 6321 xCal document (VCALENDAR).  For an entry
        that refers to a conference, the conference's own stored calendar
        (one copy shared by every holder, which may hold other bookings:
        the entry is its components of UID C{uid}).
    @ivar source: where it came from: C{"publish"} or C{"conference"}.
    @ivar conference: the URI of the conference the entry refers to (set
        by L{conference.interfaces.IConferenceStore.put} from its
        C{holders}), or L{None} for an entry holding its own copy.
    """

    owner: str
    uid: str
    calendar: bytes
    source: str = "publish"
    updated: float = 0.0
    conference: Optional[str] = None


@dataclass(frozen=True)
class BindingRecord:
    """
    One BIND binding (draft-schulzrinne-sip-bind-00) of an owner.

    @ivar owner: the SIP URI bound to (a conference URI or an address of
        record), normalised.
    @ivar disposition: what the binding is for (C{conference},
        C{configuration}, C{boot}, C{sent-by}, ...), lower case.
    @ivar uri: the bound URI; for inline data a C{data:} URI is rebuilt
        from C{data} and C{content_type} when handed out.
    @ivar expires_at: POSIX time at which it lapses.
    @ivar etag: an opaque version tag, new on every change.
    @ivar one_time: handed out once, then gone (the draft's C{expires=1}).
    @ivar issuer: the authenticated identity that created it.
    @ivar public: whether anyone may see it in a query (else only the
        owner and, for a conference, its attendees).
    @ivar data: inline content (from a C{data:} or C{cid:} URI), or None.
    @ivar content_type: the MIME type of C{data}.
    """

    owner: str
    disposition: str
    uri: str
    expires_at: float
    etag: str
    one_time: bool = False
    issuer: str = ""
    public: bool = False
    data: Optional[bytes] = None
    content_type: Optional[str] = None
    created: float = 0.0
