# -*- test-case-name: tests.unit.app.test_bind -*-
"""
The BIND method (draft-schulzrinne-sip-bind-00) wired to the binding store:
who may query or update (who owns the To URI is L{conference.app.owners}),
the atomic update, and the Binding headers that REGISTER and OPTIONS
answers carry for discovery.

The rules themselves live in L{conference.bindings}; this module only reads
the stores, applies the plan, and answers once the store has committed, so a
200 always describes bindings that survive a crash.
"""

from __future__ import annotations

from collections import Counter
from typing import (
    AbstractSet,
    Any,
    Callable,
    Dict,
    FrozenSet,
    Iterable,
    List,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from conference.app.core import RequestContext
from conference.app.owners import (
    MaybeDeferred,
    OwnerResolver,
    conference_owner,
    failed_deferred,
    store_failure,
)
from conference.bindings.access import (
    USER,
    Owner,
    check_update,
    normalize_aor,
    visible_records,
)
from conference.bindings.data import body_multipart
from conference.bindings.headers import BindingValue, format_accept_binding, parse_bindings
from conference.bindings.logic import (
    BindingPolicy,
    BindPlan,
    accepted_dispositions,
    binding_headers,
    headers_stable_until,
    plan_bind,
    plan_query,
)
from conference.deferreds import as_deferred, then
from conference.interfaces import IBindingStore, IRequestHandler
from conference.records import BindingRecord
from conference.sip.errors import RemoteProtocolError, SIPProtocolError
from conference.sip.message import Request, Response, make_response
from conference.sip.transaction_model import new_tag
from conference.store.cache import CachedBindingStore, uncached

__all__ = [
    "BODY_TYPES",
    "BindHandler",
    "Headers",
    "OwnerResolver",
    "conference_owner",
    "identity_of",
    "store_failure",
]

log = Logger()

#: Body types a BIND may carry: multipart bodies whose parts C{cid:} URIs name.
BODY_TYPES = ("multipart/mixed", "multipart/related", "multipart/alternative")

#: The most Accept-Binding values remembered (by owner, caller and set).
MAX_ACCEPT_VALUES = 4096

Headers = List[Tuple[str, str]]
Challenge = Callable[[Request, float], Exception]


def identity_of(context: RequestContext) -> Optional[str]:
    """
    The authenticated caller's address of record, or L{None}.
    """
    identity = context.identity
    aor = getattr(identity, "aor", None) if identity is not None else None
    return str(aor) if aor else None


def _failed_answer(failure: Failure, max_bindings: int) -> Deferred[Any]:
    """
    A failed Deferred with the SIP answer L{store_failure} makes of
    C{failure}.
    """
    d: Deferred[Any] = Deferred()
    try:
        d.errback(store_failure(failure, max_bindings))
    except Exception:
        d.errback(Failure())
    return d


#: Discovery answers kept at most (all are dropped when full: callers
#: and owners come from peers).
MAX_DISCOVERIES = 4096


class _Discovery:
    """
    A discovery answer kept by L{BindHandler._discovery_now}: its headers,
    what they were made from, and from and until when they hold.
    """

    __slots__ = (
        "admins",
        "bindings",
        "dispositions",
        "headers",
        "owner",
        "policy",
        "since",
        "until",
    )

    def __init__(
        self,
        snapshot: Tuple[object, object],
        *,
        owner: Owner,
        policy: BindingPolicy,
        admins: FrozenSet[str],
        since: float,
        until: float,
        headers: Tuple[Tuple[str, str], ...],
    ) -> None:
        self.bindings, self.dispositions = snapshot
        self.owner = owner
        self.policy = policy
        self.admins = admins
        self.since = since
        self.until = until
        self.headers = headers


@implementer(IRequestHandler)
class BindHandler:
    """
    Answers BIND: a query without Binding headers, else an atomic update by
    the owner, the organizer of a conference or an admin.

    @ivar store: the L{IBindingStore}.
    @ivar owners: the L{OwnerResolver}.
    @ivar policy: the L{BindingPolicy} (accepted dispositions, lifetimes,
        limits).
    @ivar admins: normalised addresses of server admins.
    @ivar listeners: callables told the owner URI after every committed
        change (the subscription notifier).
    """

    methods = ("BIND",)
    accepts: Dict[str, Sequence[str]] = {"BIND": BODY_TYPES}

    def __init__(
        self,
        store: IBindingStore,
        owners: OwnerResolver,
        *,
        policy: Optional[BindingPolicy] = None,
        admins: Iterable[str] = (),
        challenge: Optional[Challenge] = None,
        tag_factory: Callable[[], str] = new_tag,
    ) -> None:
        """
        @param challenge: builds the 401 for C{(request, now)} when a BIND
            arrives without an identity (the core normally challenges
            first); without it such a BIND gets a plain 401.
        """
        self.store = store
        self.owners = owners
        self.policy = policy if policy is not None else BindingPolicy()
        self.admins: FrozenSet[str] = frozenset(normalize_aor(a) for a in admins)
        self.listeners: List[Callable[[str], None]] = []
        self._challenge = challenge
        self._tag_factory = tag_factory
        #: BIND updates by outcome (applied, or the refusal's reason), for /metrics.
        self.updates: Counter[str] = Counter()
        # Accept-Binding values already written, with the policy they were
        # written under (see _accept_value).
        self._accept_values: Dict[Tuple[Any, ...], Tuple[BindingPolicy, str]] = {}
        # Discovery answers by (owner URI, caller), see _discovery_now.
        self._discoveries: Dict[Tuple[str, Optional[str]], _Discovery] = {}

    # IRequestHandler -------------------------------------------------------

    def handle_request(
        self, request: Request, context: RequestContext
    ) -> Union[Response, Deferred[Response]]:
        """
        Answer a BIND; every fault becomes its 4xx (or a 503 when the store
        fails), never an exception.  A query is answered at once when the
        stores answer at once (the binding cache's hits, the memory store).
        """
        try:
            values = parse_bindings(request.header_fields("binding"))
            identity = identity_of(context)
            if identity is None:
                raise self._unauthenticated(request, context.now)
            target = request.to.uri
        except SIPProtocolError as e:
            if request.header_fields("binding"):  # an update, refused before it is read
                count_update(Failure(e), self.updates)
            return failed_deferred(e)
        if not values:
            return self._query_answer(request, target, identity, context.now)
        d: Deferred[Any] = self.owners.resolve(target)
        d.addCallback(self._update, request, values, identity, context.now)
        d.addBoth(count_update, self.updates)
        return d

    def handle_ack(self, request: Request, context: RequestContext) -> None:
        """
        BIND has no ACK; nothing to do.
        """

    def handle_cancel(self, request: Request, context: RequestContext) -> None:
        """
        BIND is not INVITE; nothing to cancel.
        """

    def handle_timeout(self, request: Request) -> None:
        """
        BIND is not INVITE; nothing awaits an ACK.
        """

    # Queries ---------------------------------------------------------------

    def accept_binding(self, owner: Owner, identity: Optional[str]) -> Deferred[str]:
        """
        The Accept-Binding value for C{owner} as seen by C{identity}: the
        owner's own set from the store, else the configured one.
        """
        d: Deferred[str] = as_deferred(lambda: self._accept_binding_now(owner, identity))
        return d.addErrback(store_failure, self.policy.max_bindings)

    def _accept_binding_now(self, owner: Owner, identity: Optional[str]) -> MaybeDeferred[str]:
        def value(own: Optional[FrozenSet[str]]) -> str:
            return self._accept_value(owner, identity, own)

        return then(self.store.owner_dispositions(owner.uri), value)

    def _accept_value(
        self, owner: Owner, identity: Optional[str], own: Optional[FrozenSet[str]]
    ) -> str:
        """
        The Accept-Binding value for C{owner}'s set C{own} (or the policy's)
        as C{identity} sees it: worked out once per owner, caller and set
        while the policy stays (every OPTIONS to a user carries one), and
        bounded, since owners and callers come from peers.
        """
        policy = self.policy
        key = (owner.uri, owner.kind, identity, own)
        known = self._accept_values.get(key)
        if known is not None and known[0] is policy:
            return known[1]
        value = format_accept_binding(accepted_dispositions(policy, owner, identity, own))
        if len(self._accept_values) >= MAX_ACCEPT_VALUES:
            self._accept_values.clear()
        self._accept_values[key] = (policy, value)
        return value

    def query(
        self,
        owner: Owner,
        identity: Optional[str],
        now: float,
        dispositions: Optional[AbstractSet[str]] = None,
    ) -> Deferred[List[BindingRecord]]:
        """
        The live bindings of C{owner} that C{identity} may see, handing out
        (consuming) the one-time ones this caller claims first.  An
        unauthenticated caller is never handed one-time bindings: taking
        one deletes it, and nothing an anonymous peer sends may change the
        store.

        @return: a Deferred firing with the records, ordered by disposition
            then URI.
        """
        d: Deferred[List[BindingRecord]] = as_deferred(
            lambda: self._query_now(owner, identity, now, dispositions)
        )
        return d.addErrback(_first_error).addErrback(store_failure, self.policy.max_bindings)

    def _query_now(
        self,
        owner: Owner,
        identity: Optional[str],
        now: float,
        dispositions: Optional[AbstractSet[str]] = None,
    ) -> MaybeDeferred[List[BindingRecord]]:
        """
        L{query}, answered at once when the store answers at once and there
        is no one-time binding to claim; store faults not translated.
        """

        def claim(records: List[BindingRecord]) -> MaybeDeferred[List[BindingRecord]]:
            result = plan_query(
                records, identity, owner, now, admins=self.admins, dispositions=dispositions
            )
            one_time = result.one_time if identity is not None else []
            if not one_time:
                return sorted(result.shown, key=_record_order)
            claims = [
                self.store.take_one_time(owner.uri, r.disposition, r.uri, now) for r in one_time
            ]

            def merge(taken: List[bool]) -> List[BindingRecord]:
                out = list(result.shown)
                out.extend(r for r, ok in zip(one_time, taken) if ok)
                return sorted(out, key=_record_order)

            gathered: Deferred[List[bool]] = gatherResults(claims, consumeErrors=True)
            return gathered.addCallback(merge)

        return then(self.store.bindings(owner.uri, now), claim)

    def discovery_headers(
        self, owner: Owner, identity: Optional[str], now: float
    ) -> Deferred[Headers]:
        """
        What a REGISTER or OPTIONS answer about C{owner} carries (draft
        section 5): its Binding headers as a query by C{identity} shows
        them, then its Accept-Binding.
        """
        d = self.query(owner, identity, now)

        def with_accept(records: List[BindingRecord]) -> Deferred[Headers]:
            headers = binding_headers(records, now)
            accept = self.accept_binding(owner, identity)
            return accept.addCallback(lambda value: [*headers, ("Accept-Binding", value)])

        return d.addCallback(with_accept)

    def _discovery_now(
        self, owner: Owner, identity: Optional[str], now: float
    ) -> MaybeDeferred[Headers]:
        """
        L{discovery_headers}, answered at once when the stores answer at
        once (see L{_query_now}); otherwise L{discovery_headers} itself,
        and store faults raised when they come at once, as the 503 (or 403)
        L{store_failure} makes of them.

        Behind the binding cache, an answer made at once is kept with the
        cache's entries it was made from (L{CachedBindingStore.snapshot})
        and given again, without a read, while those entries stand and
        time has not changed it (L{headers_stable_until}): every OPTIONS
        to a user and every BIND query carries these headers, and the same
        callers ask about the same owners again and again.
        """
        store = self.store
        cache = store if isinstance(store, CachedBindingStore) else None
        known = self._discoveries.get((owner.uri, identity)) if cache is not None else None
        if cache is not None and known is not None:
            snapshot = cache.snapshot(owner.uri, now)
            if (
                snapshot is not None
                and known.bindings is snapshot[0]
                and known.dispositions is snapshot[1]
                and known.since <= now < known.until
                and known.policy is self.policy
                and known.admins is self.admins
                and (known.owner is owner or known.owner == owner)
            ):
                cache.hits += 2  # the two reads this answer stands for
                return list(known.headers)
        max_bindings = self.policy.max_bindings
        try:
            records = self._query_now(owner, identity, now)
            if isinstance(records, Deferred):
                d = records.addErrback(_first_error).addErrback(store_failure, max_bindings)
                return d.addCallback(lambda found: self._with_accept(found, owner, identity, now))
            headers = self._with_accept(records, owner, identity, now)
        except Exception:
            store_failure(Failure(), max_bindings)  # raises a store fault's SIP answer
            raise
        if cache is not None and not isinstance(headers, Deferred):
            self._remember_discovery(
                cache, owner, identity, now=now, records=records, headers=headers
            )
        return headers

    def _remember_discovery(
        self,
        cache: CachedBindingStore,
        owner: Owner,
        identity: Optional[str],
        *,
        now: float,
        records: List[BindingRecord],
        headers: Headers,
    ) -> None:
        """
        Keep the discovery answer C{headers}, just made at once from the
        cache: nothing ran between its reads and this, so the cache's
        entries now are the ones it was made from.
        """
        snapshot = cache.snapshot(owner.uri, now)
        if snapshot is None:
            return
        kept = self._discoveries
        if len(kept) >= MAX_DISCOVERIES:
            kept.clear()
        kept[owner.uri, identity] = _Discovery(
            snapshot,
            owner=owner,
            policy=self.policy,
            admins=self.admins,
            since=now,
            until=headers_stable_until(records, now),
            headers=tuple(headers),
        )

    def _with_accept(
        self, records: List[BindingRecord], owner: Owner, identity: Optional[str], now: float
    ) -> MaybeDeferred[Headers]:
        headers = binding_headers(records, now)
        accept = self._accept_binding_now(owner, identity)
        if isinstance(accept, Deferred):
            later = accept.addErrback(store_failure, self.policy.max_bindings)
            return later.addCallback(lambda value: [*headers, ("Accept-Binding", value)])
        headers.append(("Accept-Binding", accept))
        return headers

    def _query_answer(
        self, request: Request, target: Any, identity: Optional[str], now: float
    ) -> Union[Response, Deferred[Response]]:
        """
        The 200 to a query of C{target}'s bindings: at once when the owner
        lookup and the binding reads answer at once, else a Deferred;
        faults (404, the store's 503) always as a failed Deferred.
        """

        def answer(owner: Optional[Owner]) -> MaybeDeferred[Response]:
            if owner is None:
                raise RemoteProtocolError(
                    f"{target} is not a conference nor an address of record", 404
                )
            headers = self._discovery_now(owner, identity, now)
            return then(headers, lambda found: self._ok(request, found))

        try:
            found = self.owners.find_now(self.owners.key(target), cached=True)
            if isinstance(found, Deferred):
                d: Deferred[Any] = found.addErrback(store_failure).addCallback(answer)
                return d
            response = answer(found)
        except Exception:
            return _failed_answer(Failure(), self.policy.max_bindings)
        return response

    # Updates ---------------------------------------------------------------

    def _update(
        self,
        owner: Owner,
        request: Request,
        values: Sequence[BindingValue],
        identity: str,
        now: float,
    ) -> Deferred[Response]:
        check_update(identity, owner, self.admins)
        body = body_multipart(
            request.content_type, request.body, max_size=4 * self.policy.max_data_size + 4096
        )
        committed = uncached(self.store)  # plan on what is committed, not on a cache
        current = committed.bindings(owner.uri, now)
        own = committed.owner_dispositions(owner.uri)
        read: Deferred[List[Any]] = gatherResults([current, own], consumeErrors=True)
        read.addErrback(_first_error)
        read.addErrback(store_failure, self.policy.max_bindings)

        def plan(results: List[Any]) -> Tuple[BindPlan, Optional[FrozenSet[str]]]:
            records, dispositions = results
            return (
                plan_bind(
                    values,
                    records,
                    owner=owner,
                    issuer=identity,
                    now=now,
                    policy=self.policy,
                    owner_dispositions=dispositions,
                    body=body,
                ),
                dispositions,
            )

        def apply(planned: Tuple[BindPlan, Optional[FrozenSet[str]]]) -> Deferred[Response]:
            bind_plan, dispositions = planned
            accept = format_accept_binding(
                accepted_dispositions(self.policy, owner, identity, dispositions)
            )
            if bind_plan.changes:
                applied = self.store.apply(
                    owner.uri,
                    bind_plan.removals,
                    bind_plan.upserts,
                    now,
                    max_bindings=self.policy.max_bindings,
                )
                applied.addErrback(store_failure, self.policy.max_bindings)
                applied.addCallback(self._committed, owner)
            else:
                applied = succeed(list(bind_plan.bindings))

            def answer(records: List[BindingRecord]) -> Response:
                shown = visible_records(records, identity, owner, self.admins)
                headers = binding_headers(shown, now)
                headers.append(("Accept-Binding", accept))
                return self._ok(request, headers)

            return applied.addCallback(answer)

        return read.addCallback(plan).addCallback(apply)

    def _committed(self, records: List[BindingRecord], owner: Owner) -> List[BindingRecord]:
        for listener in list(self.listeners):
            try:
                listener(owner.uri)
            except Exception:
                log.failure("Binding change listener failed for {owner}", owner=owner.uri)
        return records

    # Helpers ---------------------------------------------------------------

    def _ok(self, request: Request, headers: Headers) -> Response:
        return make_response(request, 200, to_tag=self._tag_factory(), headers=headers)

    def _unauthenticated(self, request: Request, now: float) -> Exception:
        if self._challenge is not None:
            return self._challenge(request, now)
        return RemoteProtocolError("Binding updates need authentication", 401)

    # Discovery hooks -------------------------------------------------------

    def options_hook(self, request: Request, context: RequestContext) -> Any:
        """
        For L{conference.app.core.CoreRouter.options_hooks}: the Binding
        and Accept-Binding headers of the conference or user an OPTIONS is
        addressed to (as a query by its caller would show them); nothing
        for an OPTIONS to the server itself.  The headers come at once
        when the stores answer at once, else through a Deferred.
        """
        try:
            key = self.owners.key(request.uri)
        except RemoteProtocolError as e:
            return failed_deferred(e)
        if key is None:
            # The server or a domain itself: no owner, nothing to look up.
            return []
        identity = identity_of(context)
        try:
            owner = self.owners.find_now(key, cached=True)
        except Exception:
            store_failure(Failure())  # raises a store fault's SIP answer
            raise
        if isinstance(owner, Deferred):
            d: Deferred[Any] = owner.addErrback(store_failure)
            return d.addCallback(lambda found: self._hook_headers(found, identity, context.now))
        return self._hook_headers(owner, identity, context.now)

    def _hook_headers(self, owner: Optional[Owner], identity: Optional[str], now: float) -> Any:
        """
        The headers (or a Deferred of them) for an OPTIONS to C{owner}.
        """
        if owner is None:
            return []
        return self._discovery_now(owner, identity, now)

    def register_hook(
        self, aor: str, identity: Optional[str], now: float
    ) -> Deferred[Sequence[Tuple[str, str]]]:
        """
        For L{conference.app.registrar.Registrar}'s C{bindings} hook: the
        Binding and Accept-Binding headers of C{aor} for its 200.  A store
        fault gives no headers rather than failing the registration.
        """
        owner = Owner(aor, USER)
        d: Deferred[Any] = self.discovery_headers(owner, identity, now)

        def quiet(failure: Failure) -> Headers:
            if not failure.check(SIPProtocolError):  # a store fault was logged already
                log.failure("Bindings of {aor} not added to REGISTER", failure, aor=aor)
            return []

        return d.addErrback(quiet)


#: The reason a refused BIND update is counted under, by status code.
REFUSAL_REASONS = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    413: "too-large",
    423: "too-brief",
    503: "store-unavailable",
}


def count_update(result: Any, updates: Counter[str]) -> Any:
    """
    Count a BIND update's outcome in C{updates}: C{applied}, or the
    reason for its refusal (C{other} for a code not in L{REFUSAL_REASONS}).
    """
    if isinstance(result, Failure):
        error = result.value
        status = error.status if isinstance(error, SIPProtocolError) else 500
        updates[REFUSAL_REASONS.get(status, "other")] += 1
    else:
        updates["applied"] += 1
    return result


def _record_order(record: BindingRecord) -> Tuple[str, str]:
    return (record.disposition, record.uri)


def _first_error(failure: Failure) -> Failure:
    """
    Unwrap the FirstError of a gatherResults.
    """
    from twisted.internet.defer import FirstError

    if isinstance(failure.value, FirstError):
        sub: Failure = failure.value.subFailure
        return sub
    return failure
