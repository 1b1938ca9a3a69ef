# -*- test-case-name: tests.unit.bindings.test_logic -*-
"""
The semantics of BIND (draft-schulzrinne-sip-bind-00 section 6) as pure
functions: a request's Binding values and the owner's current records go in,
a plan for the store (or the refusal to answer) comes out.

Keeping the rules apart from the stores and the wiring lets every backend
apply exactly the same plan atomically, and lets tests check each rule
without a network or a database.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from typing import (
    AbstractSet,
    Callable,
    Dict,
    FrozenSet,
    List,
    Optional,
    Sequence,
    Set,
    Tuple,
)

from conference.bindings.access import SENT_BY, Owner, may_bind_disposition, visible_records
from conference.bindings.data import (
    DEFAULT_MAX_DATA,
    InlineData,
    build_data_uri,
    resolve_inline,
)
from conference.bindings.headers import (
    AcceptBinding,
    BindingValue,
    format_accept_binding,
    format_binding,
)
from conference.records import BindingRecord
from conference.sip.errors import RemoteProtocolError
from conference.sip.multipart import Multipart

__all__ = [
    "DEFAULT_DISPOSITIONS",
    "REFUSED_REASON",
    "BindPlan",
    "BindingPolicy",
    "BindingRefused",
    "QueryResult",
    "accepted_dispositions",
    "binding_headers",
    "format_record",
    "headers_stable_until",
    "interval_too_brief",
    "limit_refusal",
    "plan_bind",
    "plan_query",
    "random_etag",
    "record_value",
    "update_answer",
    "without_one_time",
]

#: Dispositions accepted when configuration names none.
DEFAULT_DISPOSITIONS: FrozenSet[str] = frozenset(
    ["conference", "configuration", "boot", "presence", "cpl", "web", SENT_BY]
)
#: The reason phrase of our answer to the draft's "4?? (Binding refused)".
REFUSED_REASON = "Binding Refused"


@dataclass(frozen=True)
class BindingPolicy:
    """
    Server policy for bindings.

    @ivar dispositions: accepted dispositions (L{None}: any, C{*}), unless
        the store names an owner's own set.
    @ivar default_expires: seconds granted when a binding names none, and
        the lifetime of a one-time binding that is never handed out.
    @ivar min_expires: shorter requested lifetimes (other than 0 and 1) get
        423 with this as Min-Expires.
    @ivar max_expires: longer requested lifetimes are cut to this.
    @ivar max_bindings: the most live bindings an owner may hold.
    @ivar max_uri_length: the longest bound URI (inline data excepted).
    @ivar max_data_size: the most bytes of inline data per binding.
    """

    dispositions: Optional[FrozenSet[str]] = DEFAULT_DISPOSITIONS
    default_expires: int = 3600
    min_expires: int = 60
    max_expires: int = 30 * 86400
    max_bindings: int = 32
    max_uri_length: int = 512
    max_data_size: int = DEFAULT_MAX_DATA

    def __post_init__(self) -> None:
        if not 2 <= self.min_expires <= self.default_expires <= self.max_expires:
            raise ValueError("need 2 <= min_expires <= default_expires <= max_expires")


class BindingRefused(RemoteProtocolError):
    """
    A binding of a disposition the owner does not accept (from this
    issuer): 403 "Binding Refused" with the Accept-Binding that is accepted.

    @ivar refused: the refused dispositions, in request order.
    @ivar accept: what is accepted.
    """

    def __init__(self, refused: Sequence[str], accept: AcceptBinding) -> None:
        super().__init__(REFUSED_REASON, 403, [("Accept-Binding", format_accept_binding(accept))])
        self.refused = list(refused)
        self.accept = accept


def interval_too_brief(min_expires: int) -> RemoteProtocolError:
    """
    The 423 for a binding lifetime under C{min_expires}.
    """
    return RemoteProtocolError("Interval Too Brief", 423, [("Min-Expires", str(min_expires))])


def limit_refusal(max_bindings: int) -> RemoteProtocolError:
    """
    The 403 for an owner over C{max_bindings} (also what the wiring sends
    when the store raises L{conference.records.LimitExceededError}).
    """
    return RemoteProtocolError(f"Too many bindings (at most {max_bindings} per owner)", 403)


def random_etag() -> str:
    """
    A fresh opaque entity tag.
    """
    return secrets.token_hex(8)


def accepted_dispositions(
    policy: BindingPolicy,
    owner: Owner,
    issuer: Optional[str] = None,
    owner_dispositions: Optional[AbstractSet[str]] = None,
) -> AcceptBinding:
    """
    What C{owner} accepts (from C{issuer}, if given): the owner's own set
    when the store has one, else the configured set; C{sent-by} only where
    L{may_bind_disposition} allows it (with C{*} that cannot be shown).
    """
    base = owner_dispositions if owner_dispositions is not None else policy.dispositions
    accept = AcceptBinding.of(base)
    if accept.any or SENT_BY not in accept.dispositions:
        return accept
    identity = issuer if issuer is not None else owner.uri
    if owner.kind == "user" and may_bind_disposition(identity, owner, SENT_BY):
        return accept
    return AcceptBinding(accept.dispositions - {SENT_BY})


@dataclass(frozen=True)
class BindPlan:
    """
    What a BIND does, for L{IBindingStore.apply} to carry out atomically.

    @ivar removals: (disposition, URI) pairs to delete, the URI L{None} to
        delete every binding of the disposition; applied before upserts.
    @ivar upserts: records to add or replace (keyed by owner, disposition,
        URI), with the expiry really granted.
    @ivar bindings: the owner's live bindings once the plan is applied.
    """

    removals: Tuple[Tuple[str, Optional[str]], ...] = ()
    upserts: Tuple[BindingRecord, ...] = ()
    bindings: Tuple[BindingRecord, ...] = ()

    @property
    def changes(self) -> bool:
        """
        Whether applying the plan changes anything.
        """
        return bool(self.removals or self.upserts)


def _granted(value: BindingValue, policy: BindingPolicy) -> Tuple[int, bool]:
    if value.expires is None:
        return policy.default_expires, False
    if value.expires == 1:
        return policy.default_expires, True
    if value.expires < policy.min_expires:
        raise interval_too_brief(policy.min_expires)
    return min(value.expires, policy.max_expires), False


def _resolve(
    value: BindingValue, body: Optional[Multipart], policy: BindingPolicy
) -> Tuple[str, Optional[InlineData]]:
    uri = value.uri
    assert uri is not None
    inline = resolve_inline(uri, body, max_size=policy.max_data_size)
    if inline is not None:
        return build_data_uri(inline.content_type, inline.data), inline
    if len(uri) > policy.max_uri_length:
        raise RemoteProtocolError(
            f"Binding URI longer than {policy.max_uri_length} characters", 403
        )
    return uri, None


def plan_bind(
    values: Sequence[BindingValue],
    current: Sequence[BindingRecord],
    *,
    owner: Owner,
    issuer: str,
    now: float,
    policy: BindingPolicy,
    owner_dispositions: Optional[AbstractSet[str]] = None,
    body: Optional[Multipart] = None,
    new_etag: Callable[[], str] = random_etag,
) -> BindPlan:
    """
    Plan a BIND update by C{issuer} (already allowed to update C{owner}, see
    L{conference.bindings.access.check_update}) of C{owner}'s C{current}
    records.

    Values apply in order: C{<uri>} adds or refreshes, C{expires=0} removes
    it, the disposition alone (no URI, no expires or C{expires=0}) removes
    all of that disposition, C{expires=1} makes a one-time binding.  Inline
    C{data:} and C{cid:} URIs are stored as data under their canonical
    C{data:} URI.  Nothing is planned unless every value is acceptable.

    @raise BindingRefused: (403) if a disposition is not accepted from this
        issuer (removals are always allowed, C{sent-by} aside).
    @raise RemoteProtocolError: 400 for a disposition-only value with a
        lifetime or a bad C{data:}/C{cid:} URI; 413 for inline data over the
        limit; 423 with Min-Expires for a too short lifetime; 403 for a URI
        over the length limit or an owner over the binding limit.
    """
    accept = accepted_dispositions(policy, owner, issuer, owner_dispositions)
    refused: List[str] = []
    live = {(r.disposition, r.uri): r for r in current if r.expires_at > now}
    working: Dict[Tuple[str, str], BindingRecord] = dict(live)
    cleared: Set[str] = set()
    removed: Set[Tuple[str, str]] = set()
    touched: Set[Tuple[str, str]] = set()
    too_brief = False
    for value in values:
        disposition = value.disposition
        removal = value.uri is None or value.expires == 0
        allowed = may_bind_disposition(issuer, owner, disposition, value.public and not removal)
        if not allowed or not (removal or accept.accepts(disposition)):
            if disposition not in refused:
                refused.append(disposition)
            continue
        if value.uri is None:
            if value.expires not in (None, 0):
                raise RemoteProtocolError(
                    "Bad Binding: a value without a URI removes its disposition; "
                    "it takes no expires other than 0"
                )
            cleared.add(disposition)
            for key in [k for k in working if k[0] == disposition]:
                del working[key]
                touched.discard(key)
            continue
        uri, inline = _resolve(value, body, policy)
        key = (disposition, uri)
        if value.expires == 0:
            if working.pop(key, None) is not None and key in live:
                removed.add(key)
            touched.discard(key)
            continue
        try:
            seconds, one_time = _granted(value, policy)
        except RemoteProtocolError:
            too_brief = True
            continue
        old = working.get(key)
        unchanged = old is not None and (old.public, old.one_time) == (value.public, one_time)
        if value.etag is not None:
            etag = value.etag
        elif old is not None and unchanged:
            etag = old.etag
        else:
            etag = new_etag()
        working[key] = BindingRecord(
            owner=owner.uri,
            disposition=disposition,
            uri=uri,
            expires_at=now + seconds,
            etag=etag,
            one_time=one_time,
            issuer=issuer,
            public=value.public,
            data=inline.data if inline is not None else None,
            content_type=inline.content_type if inline is not None else None,
            created=old.created if old is not None else now,
        )
        touched.add(key)
        removed.discard(key)
    if refused:
        raise BindingRefused(refused, accept)
    if too_brief:
        raise interval_too_brief(policy.min_expires)
    if len(working) > policy.max_bindings and len(working) > len(live):
        raise limit_refusal(policy.max_bindings)
    removals: List[Tuple[str, Optional[str]]] = [(d, None) for d in sorted(cleared)]
    removals.extend(sorted(k for k in removed if k[0] not in cleared))
    upserts = tuple(working[k] for k in working if k in touched)
    return BindPlan(tuple(removals), upserts, tuple(working.values()))


# Answers --------------------------------------------------------------------


def record_value(record: BindingRecord, now: float) -> BindingValue:
    """
    The Binding value that shows C{record} at C{now}: its remaining
    lifetime in whole seconds, never 1 (which means one-time) nor 0 for a
    live binding; inline data as a C{data:} URI.
    """
    if record.one_time:
        expires = 1
    else:
        expires = max(2, math.ceil(record.expires_at - now))
    uri = record.uri
    if record.data is not None:
        uri = build_data_uri(record.content_type, record.data)
    return BindingValue(uri, record.disposition, expires, record.etag or None, record.public)


#: Field values written, by record: the record itself (kept, so its id is
#: not reused meanwhile), the lifetime shown and the text.  The binding
#: cache hands out the same records query after query, and a value changes
#: only when its lifetime shown does (once a second).
_FORMATTED: Dict[int, Tuple[BindingRecord, int, str]] = {}
#: Values remembered at most (all forgotten when full).
FORMATTED_MAX = 4096


def format_record(record: BindingRecord, now: float) -> str:
    """
    C{record} as a Binding field value (see L{record_value}).
    """
    expires = 1 if record.one_time else max(2, math.ceil(record.expires_at - now))
    key = id(record)
    known = _FORMATTED.get(key)
    if known is not None and known[0] is record and known[1] == expires:
        return known[2]
    text = format_binding(record_value(record, now))
    if len(_FORMATTED) >= FORMATTED_MAX:
        _FORMATTED.clear()
    _FORMATTED[key] = (record, expires, text)
    return text


def binding_headers(records: Sequence[BindingRecord], now: float) -> List[Tuple[str, str]]:
    """
    One (C{Binding}, value) header per live record, in order: what a 200 to
    BIND, an OPTIONS or REGISTER answer and a NOTIFY carry.
    """
    return [("Binding", format_record(r, now)) for r in records if r.expires_at > now]


#: How much sooner than the exact moment L{headers_stable_until} says the
#: headers may change: the float subtractions behind an expires value
#: round, and a second written early costs one recomputation.
STABLE_MARGIN = 0.001


def headers_stable_until(records: Sequence[BindingRecord], now: float) -> float:
    """
    Until when L{binding_headers} of C{records} stays what it is at C{now}:
    for every C{t} from C{now} to (not including) the time returned, the
    headers at C{t} are the headers at C{now}.  The first change is a
    record expiring or its expires value going down by a second (one-time
    records always say 1, and a value never goes below 2); infinity when
    nothing is live.  So an answer made of them can be kept until then.
    """
    until = math.inf
    for record in records:
        expires_at = record.expires_at
        if expires_at <= now:
            continue
        if record.one_time:
            change = expires_at
        else:
            left = math.ceil(expires_at - now)
            change = expires_at if left <= 2 else expires_at - (left - 1)
        until = min(until, change)
    return until - STABLE_MARGIN


@dataclass(frozen=True)
class QueryResult:
    """
    What a query shows.

    @ivar shown: the visible records to list as they are.
    @ivar one_time: visible one-time records; each is listed only if the
        store's C{take_one_time} claims it for this answer.
    """

    shown: Tuple[BindingRecord, ...]
    one_time: Tuple[BindingRecord, ...]


def plan_query(
    records: Sequence[BindingRecord],
    identity: Optional[str],
    owner: Owner,
    now: float,
    *,
    admins: AbstractSet[str] = frozenset(),
    dispositions: Optional[AbstractSet[str]] = None,
) -> QueryResult:
    """
    Sort the live records C{identity} may see (see
    L{conference.bindings.access.visible_records}), optionally only of
    C{dispositions}, into those shown as they are and the one-time ones to
    claim first.
    """
    shown: List[BindingRecord] = []
    once: List[BindingRecord] = []
    for record in visible_records(records, identity, owner, admins):
        if record.expires_at <= now:
            continue
        if dispositions is not None and record.disposition not in dispositions:
            continue
        (once if record.one_time else shown).append(record)
    return QueryResult(tuple(shown), tuple(once))


def update_answer(
    plan: BindPlan,
    identity: str,
    owner: Owner,
    now: float,
    *,
    admins: AbstractSet[str] = frozenset(),
) -> List[Tuple[str, str]]:
    """
    The Binding headers of the 200 to an update: every live binding the
    issuer may see once the plan is applied, one-time ones included (they
    are shown to their issuer, not handed out).
    """
    return binding_headers(visible_records(plan.bindings, identity, owner, admins), now)


def without_one_time(records: Sequence[BindingRecord]) -> List[BindingRecord]:
    """
    C{records} without the one-time ones (for answers that must not hand
    them out, such as NOTIFY).
    """
    return [r for r in records if not r.one_time]
