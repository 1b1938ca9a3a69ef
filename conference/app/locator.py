# -*- test-case-name: tests.unit.app.test_locator -*-
"""
Twisted's L{twisted.protocols.sip.ILocator} over a registration store, so
code written for C{twisted.protocols.sip} can ask where a user is.

It lives apart from L{conference.app.registrar} because it is the one
module that needs C{twisted.protocols.sip}, and importing that installs the
default reactor: nothing the server itself imports may do so, or an
application embedding the server could no longer choose its reactor after
importing it (see the architecture document).  Import this module only
once the reactor is installed.
"""

from __future__ import annotations

from typing import Any, List

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.protocols import sip
from zope.interface import implementer

from conference.interfaces import IRegistrationStore
from conference.records import RegistrationBinding
from conference.sip.uri import SIPURI, parse_uri


def twisted_url(uri: SIPURI) -> sip.URL:
    """
    Twisted's URL for a SIP URI (Twisted's C{Request} and C{Proxy} check
    for that class).
    """
    return sip.URL(  # type: ignore[no-untyped-call]
        uri.host,
        uri.username,
        uri.password,
        uri.port,
        uri.transport,
        uri.usertype,
        uri.method,
        uri.ttl,
        uri.maddr,
        uri.tag,
        uri.other,
        dict(uri.headers),
    )


@implementer(sip.ILocator)
class Locator:
    """
    The first live contact of a user, as a C{twisted.protocols.sip.URL}
    (a contact of another scheme as a L{conference.sip.uri.AbsoluteURI}).
    """

    def __init__(self, store: IRegistrationStore, reactor: IReactorTime) -> None:
        self.store = store
        self._reactor = reactor

    def getAddress(self, logicalURL: Any) -> Deferred[Any]:
        """
        Where C{logicalURL} (user@host) is registered now.

        @raise LookupError: (as a failed Deferred) if nowhere.
        """
        aor = f"sip:{logicalURL.username}@{logicalURL.host}"

        def first(bindings: List[RegistrationBinding]) -> Any:
            if not bindings:
                raise LookupError(f"{aor} is not registered")
            contact = parse_uri(bindings[0].contact)
            return twisted_url(contact) if isinstance(contact, SIPURI) else contact

        return self.store.get_bindings(aor, self._reactor.seconds()).addCallback(first)
