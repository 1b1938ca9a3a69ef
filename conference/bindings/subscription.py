# -*- test-case-name: tests.unit.bindings.test_subscription -*-
"""
The C{binding} event package (RFC 6665) that answers the draft's open issue
of subscribing to changes in bindings (section 9), as pure rules.

A SUBSCRIBE with C{Event: binding} (optionally C{;disposition=...} to watch
only some dispositions) is decided here, and every NOTIFY's header fields
are built here with the same visibility rules as queries, so the wiring
only has to keep dialogs and timers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import AbstractSet, FrozenSet, List, Optional, Sequence, Tuple

from conference.bindings.access import Owner, visible_records
from conference.bindings.logic import binding_headers, without_one_time
from conference.records import BindingRecord
from conference.sip.errors import RemoteProtocolError
from conference.sip.events import (
    SubscriptionPolicy,
    grant_expires,
    parse_event_header,
    subscription_state,
)
from conference.sip.headers import TOKEN_RE, format_params, parse_accept, split_list

__all__ = [
    "EVENT_PACKAGE",
    "BindingSubscription",
    "NotifyContent",
    "SubscriptionPolicy",
    "decide_subscription",
    "notify_content",
    "parse_event",
    "subscription_state",
]

EVENT_PACKAGE = "binding"
_DEFAULT_POLICY = SubscriptionPolicy()


@dataclass(frozen=True)
class BindingSubscription:
    """
    An accepted subscription.

    @ivar expires: the lifetime granted, 0 for a fetch (one NOTIFY, then
        terminated).
    @ivar dispositions: the dispositions watched, L{None} for all.
    @ivar event_id: the Event's C{id} parameter, echoed in every NOTIFY.
    """

    expires: int
    dispositions: Optional[FrozenSet[str]] = None
    event_id: Optional[str] = None

    @property
    def event(self) -> str:
        """
        The Event value for NOTIFYs: C{binding}, with C{id} and the
        disposition filter as subscribed.
        """
        params: dict[str, Optional[str]] = {}
        if self.event_id is not None:
            params["id"] = self.event_id
        if self.dispositions is not None:
            params["disposition"] = ",".join(sorted(self.dispositions))
        return EVENT_PACKAGE + format_params(params)

    def matches(self, record: BindingRecord) -> bool:
        """
        Whether C{record} is of a watched disposition.
        """
        return self.dispositions is None or record.disposition in self.dispositions


def parse_event(
    value: Optional[str],
) -> Tuple[Optional[str], Optional[FrozenSet[str]]]:
    """
    Check an Event value for the C{binding} package and return its C{id}
    and disposition filter (C{disposition=conference} or, for several,
    C{disposition="conference,web"}; L{None}: all).

    @raise RemoteProtocolError: 489 with Allow-Events for a missing or other
        event package; 400 for a malformed value or filter.
    """
    _, params = parse_event_header(value, (EVENT_PACKAGE,))
    event_id = params.get("id")
    dispositions: Optional[FrozenSet[str]] = None
    if "disposition" in params:
        raw = params["disposition"] or ""
        items = [d for part in split_list(raw) for d in part.split()]
        if not items or not all(TOKEN_RE.fullmatch(d) for d in items):
            raise RemoteProtocolError("Bad Event: disposition filter is not a list of tokens")
        dispositions = frozenset(d.lower() for d in items)
    return event_id, dispositions


def decide_subscription(
    event: Optional[str],
    expires: Optional[str],
    accept: Sequence[str] = (),
    policy: SubscriptionPolicy = _DEFAULT_POLICY,
) -> BindingSubscription:
    """
    Decide a SUBSCRIBE from its Event, Expires and Accept values (the caller
    has already applied the query authorization of
    L{conference.bindings.access}).

    The package sends its state in Binding header fields with no body, so
    Accept negotiates nothing; it is only checked for syntax.

    @raise RemoteProtocolError: 489 for another event package; 400 for a
        malformed Event, Expires or Accept; 423 with Min-Expires for a
        lifetime under the minimum (0 is a fetch and always allowed).
    """
    event_id, dispositions = parse_event(event)
    for value in accept:
        parse_accept(value)
    granted = grant_expires(expires, policy)
    return BindingSubscription(granted, dispositions, event_id)


@dataclass(frozen=True)
class NotifyContent:
    """
    What a NOTIFY of the C{binding} package carries.

    @ivar headers: Event, Subscription-State and one Binding per visible
        binding (full state every time; none means the owner has none).
    @ivar body: always empty: the state is in the headers.
    """

    headers: Tuple[Tuple[str, str], ...]
    body: bytes = b""


def notify_content(
    subscription: BindingSubscription,
    records: Sequence[BindingRecord],
    *,
    subscriber: Optional[str],
    owner: Owner,
    now: float,
    expires_at: float,
    admins: AbstractSet[str] = frozenset(),
    reason: Optional[str] = None,
) -> NotifyContent:
    """
    The headers of a NOTIFY to C{subscriber} about C{owner}'s C{records}:
    only live records of watched dispositions the subscriber may see (as
    for a query), never one-time ones (they are handed out by queries);
    the subscription is active with its remaining lifetime until
    C{expires_at}, terminated with C{reason} (C{timeout} once it has
    lapsed) otherwise.
    """
    remaining = math.ceil(expires_at - now)
    if reason is None and remaining > 0:
        state = subscription_state("active", expires=remaining)
    else:
        state = subscription_state("terminated", reason=reason or "timeout")
    shown = [
        r
        for r in without_one_time(visible_records(records, subscriber, owner, admins))
        if subscription.matches(r)
    ]
    headers: List[Tuple[str, str]] = [
        ("Event", subscription.event),
        ("Subscription-State", state),
    ]
    headers.extend(binding_headers(shown, now))
    return NotifyContent(tuple(headers))
