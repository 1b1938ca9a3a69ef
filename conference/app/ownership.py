# -*- test-case-name: tests.unit.app.test_ownership -*-
"""
Whose an address is, for conferences and their bindings.

A conference may be created only where no user of this server lives: a
user's address taken for a conference would hand their calls and their
bindings to whoever created it.  A conference's bindings belong to its
owner, the organizer who created it, not to whoever organizes its current
booking; a conference whose bookings are all cancelled gives its bindings
up.  The rules are stated in docs/scheduling.rst and docs/bind.rst.
"""

from __future__ import annotations

from typing import Callable, Iterable, Optional

from twisted.logger import Logger

from conference.app.conferences import CANCELLED
from conference.interfaces import IAccounts, IBindingStore, ICalendarStore, IRegistrationStore
from conference.records import ConferenceRecord, StoreError

__all__ = [
    "CONFERENCE_PREFIX",
    "UserDirectory",
    "in_conference_namespace",
    "release_bindings",
    "release_when_cancelled",
]

log = Logger()

#: The user parts reserved for conferences: the factory's URIs are
#: C{sip:conf-<hex>@domain}, and a named conference URI may always be
#: created in this namespace when no user is known there.
CONFERENCE_PREFIX = "conf-"


def in_conference_namespace(address: str) -> bool:
    """
    Whether the user part of C{address} (C{sip:user@domain}) is in the
    namespace reserved for conferences (L{CONFERENCE_PREFIX}, any case).
    """
    user = address.partition(":")[2].rpartition("@")[0]
    return user.lower().startswith(CONFERENCE_PREFIX) and len(user) > len(CONFERENCE_PREFIX)


class UserDirectory:
    """
    Tells whether an address of a served domain is a user's: a known
    account (L{IAccounts}), a registered address of record, or an address
    with bindings or calendar entries of its own.

    @ivar accounts: the accounts, or L{None} when the server has none to
        ask (then no address is an account).
    """

    def __init__(
        self,
        registrations: IRegistrationStore,
        bindings: IBindingStore,
        calendars: ICalendarStore,
        accounts: Optional[IAccounts] = None,
    ) -> None:
        self.registrations = registrations
        self.bindings = bindings
        self.calendars = calendars
        self.accounts = accounts

    async def why_user(self, address: str, now: float) -> Optional[str]:
        """
        Why C{address} (normalised) may be a user's, as a phrase for a 403
        ("is a registered user"), or L{None} when it is no user's and may
        become a conference.  An address the accounts cannot judge is
        taken for a user's unless it is in the conference namespace.
        """
        if await self.registrations.get_bindings(address, now):
            return "is a registered user"
        known = self.accounts.is_account(address) if self.accounts is not None else False
        if known:
            return "is a user's account"
        if await self.bindings.bindings(address, now):
            return "is a user's address (it has bindings)"
        if await self.bindings.owner_dispositions(address) is not None:
            return "is a user's address (it has binding settings)"
        if await self.calendars.entries(address):
            return "is a user's address (it has calendar entries)"
        if known is None and not in_conference_namespace(address):
            return (
                "may be a user's address (accounts cannot be checked here); "
                f"name the conference {CONFERENCE_PREFIX}...@domain or use the factory"
            )
        return None


async def release_bindings(
    store: IBindingStore,
    uri: str,
    now: float,
    listeners: Iterable[Callable[[str], None]] = (),
) -> int:
    """
    Remove every binding of the conference C{uri} and its own disposition
    setting, and tell C{listeners} (the binding subscriptions) when
    bindings went.  A store fault is logged, not raised: what was asked
    of the conference is done, and the bindings stay its owner's.

    @return: how many live bindings were removed.
    """
    try:
        records = await store.bindings(uri, now)
        removals = sorted({(r.disposition, None) for r in records})
        if removals:
            await store.apply(uri, removals, [], now, max_bindings=len(records))
        if await store.owner_dispositions(uri) is not None:
            await store.set_owner_dispositions(uri, None)
    except StoreError as e:
        log.error("Bindings of cancelled {uri} not released: {error}", uri=uri, error=e)
        return 0
    if records:
        log.info("Cancelled {uri} released {n} binding(s)", uri=uri, n=len(records))
        for listener in listeners:
            try:
                listener(uri)
            except Exception:
                log.failure("Binding change listener failed for {owner}", owner=uri)
    return len(records)


async def release_when_cancelled(
    store: IBindingStore,
    before: Optional[ConferenceRecord],
    after: ConferenceRecord,
    now: float,
    listeners: Iterable[Callable[[str], None]] = (),
) -> int:
    """
    L{release_bindings} of a conference that C{after} (just stored over
    C{before}) cancels: every booking of it is cancelled now and was not.

    @return: how many live bindings were removed.
    """
    if after.state != CANCELLED or (before is not None and before.state == CANCELLED):
        return 0
    return await release_bindings(store, after.uri, now, listeners)
