# -*- test-case-name: tests.unit.sip.test_events -*-
"""
The rules of RFC 6665 that every event package shares: reading the Event
header field, granting an Expires, and writing Subscription-State.

The C{binding} package (L{conference.bindings.subscription}) and the
C{conference} package (RFC 4575, L{conference.confinfo}) both decide their
SUBSCRIBEs with these, so the two cannot drift apart on lifetimes or
syntax.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

from conference.sip.errors import RemoteProtocolError
from conference.sip.headers import TOKEN_RE, parse_int_header, parse_params

__all__ = [
    "SubscriptionPolicy",
    "bad_event",
    "grant_expires",
    "parse_event_header",
    "subscription_state",
]

_STATES = ("active", "pending", "terminated")
_REASONS = ("deactivated", "probation", "rejected", "timeout", "giveup", "noresource", "invariant")


@dataclass(frozen=True)
class SubscriptionPolicy:
    """
    Lifetimes of subscriptions.

    @ivar default_expires: granted when the SUBSCRIBE has no Expires (the
        package's default, RFC 6665 section 7.2).
    @ivar min_expires: shorter non-zero requests get 423 with Min-Expires.
    @ivar max_expires: longer requests are cut to this.
    """

    default_expires: int = 3600
    min_expires: int = 60
    max_expires: int = 86400


def bad_event(packages: Sequence[str]) -> RemoteProtocolError:
    """
    The 489 for an event package not served here, with Allow-Events
    listing C{packages} (RFC 6665 section 8.2.2).
    """
    return RemoteProtocolError("Bad Event", 489, [("Allow-Events", ", ".join(packages))])


def parse_event_header(
    value: Optional[str], packages: Sequence[str]
) -> Tuple[str, Dict[str, Optional[str]]]:
    """
    Split an Event value into its event type and parameters.  The type is
    compared byte by byte (RFC 6665 section 8.2.1) with C{packages}.

    @raise RemoteProtocolError: 489 with Allow-Events for a missing Event
        or a package not in C{packages}; 400 for a malformed value or an
        C{id} without a value.
    """
    if value is None:
        raise bad_event(packages)
    text = value.strip(" \t")
    semi = text.find(";")
    name = (text if semi < 0 else text[:semi]).strip(" \t")
    if not TOKEN_RE.fullmatch(name):
        raise RemoteProtocolError("Bad Event: event type is not a token")
    params = parse_params(text[len(text) if semi < 0 else semi :], "Event")
    if name not in packages:
        raise bad_event(packages)
    if "id" in params and not params["id"]:
        raise RemoteProtocolError("Bad Event: id without a value")
    return name, params


def grant_expires(expires: Optional[str], policy: SubscriptionPolicy) -> int:
    """
    The lifetime granted for a SUBSCRIBE's Expires value: the default when
    absent, cut to the maximum when longer, 0 for a fetch.

    @raise RemoteProtocolError: 400 for a malformed value or one past
        delta-seconds (2**32-1, RFC 3261 section 25.1); 423 with
        Min-Expires for a non-zero lifetime under the minimum.
    """
    if expires is None:
        return policy.default_expires
    asked = parse_int_header(expires, "Expires")
    if asked and asked < policy.min_expires:
        raise RemoteProtocolError(
            "Interval Too Brief", 423, [("Min-Expires", str(policy.min_expires))]
        )
    return min(asked, policy.max_expires)


def subscription_state(
    state: str,
    expires: Optional[int] = None,
    reason: Optional[str] = None,
    retry_after: Optional[int] = None,
) -> str:
    """
    A Subscription-State value (RFC 6665 section 8.2.3): C{active} or
    C{pending} with C{expires}, C{terminated} with a C{reason}.

    @raise ValueError: for an unknown state or reason, or parameters that
        do not go with the state.
    """
    if state not in _STATES:
        raise ValueError(f"unknown subscription state {state!r}")
    if reason is not None and reason not in _REASONS:
        raise ValueError(f"unknown termination reason {reason!r}")
    if state == "terminated":
        if expires is not None:
            raise ValueError("a terminated subscription has no expires")
        out = state + (f";reason={reason}" if reason else "")
        if retry_after is not None:
            out += f";retry-after={retry_after}"
        return out
    if reason is not None or retry_after is not None:
        raise ValueError(f"reason and retry-after go with terminated, not {state}")
    return state + (f";expires={expires}" if expires is not None else "")
