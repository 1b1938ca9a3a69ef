# -*- test-case-name: tests.web.test_access -*-
"""
Who is looking at the status pages and what they may see and do.

Logins are HTTP basic credentials checked by the same portal as SIP
digest (the C{--auth} checkers), so a person uses their SIP account; basic
sends the password in the clear, which is why docs/operations.rst asks for
an C{ssl:} endpoint anywhere but loopback.  CSRF tokens for actions are
derived from the login, so no session state is kept.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence

from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin, UnhandledCredentials
from twisted.cred.portal import Portal
from twisted.internet.defer import Deferred, succeed

from conference.control.policy import CalendarPolicy, may_moderate
from conference.interfaces import ISIPIdentity
from conference.records import ConferenceRecord


@dataclass(frozen=True)
class Viewer:
    """
    A logged-in person.

    @ivar aor: their address of record, C{sip:user@domain}.
    @ivar admin: whether it is one of the C{--admin} addresses.
    """

    aor: str
    admin: bool = False

    def may_act_on(self, record: ConferenceRecord, policy: Optional[CalendarPolicy] = None) -> bool:
        """
        Whether this viewer moderates the conference (end it, mute,
        remove, lock): the rule SIP moderators are held to
        (L{may_moderate}), with C{policy} read from its calendar (without
        it, only admins, the organizer and the owner).
        """
        return may_moderate(
            policy if policy is not None else CalendarPolicy(),
            self.aor,
            owners=(record.organizer, record.owner),
            admin=self.admin,
        )

    def may_see(
        self,
        record: ConferenceRecord,
        attendees: Iterable[str],
        policy: Optional[CalendarPolicy] = None,
    ) -> bool:
        """
        Whether this viewer may see the conference: who may act on it,
        and its attendees.
        """
        return self.may_act_on(record, policy) or self.aor in set(attendees)


def parse_basic(header: Optional[bytes]) -> Optional[tuple[str, str]]:
    """
    The C{(username, password)} of an C{Authorization: Basic} header, or
    L{None} for a missing or malformed one.
    """
    if not header:
        return None
    scheme, _, encoded = header.strip().partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    user, colon, password = decoded.partition(":")
    if not colon or not user:
        return None
    return user, password


class Gate:
    """
    Logs viewers in against the SIP portal and issues CSRF tokens.

    @ivar domains: the served domains; a username without C{@domain}
        logs in to the first.
    """

    def __init__(
        self,
        portal: Portal,
        domains: Sequence[str],
        admins: Iterable[str],
        *,
        secret: Optional[bytes] = None,
    ) -> None:
        self.portal = portal
        self.domains = [d.lower() for d in domains] or ["localhost"]
        self.admins = frozenset(a.lower() for a in admins)
        self._secret = secret if secret is not None else os.urandom(32)

    def login(self, header: Optional[bytes]) -> Deferred[Optional[Viewer]]:
        """
        The viewer an C{Authorization} header proves, or L{None} when it is
        missing, malformed or wrong (the caller answers 401).
        """
        parsed = parse_basic(header)
        if parsed is None:
            return succeed(None)
        user, password = parsed
        name, at, domain = user.rpartition("@")
        if not at:
            name, domain = user, self.domains[0]
        domain = domain.lower()
        if domain not in self.domains:
            return succeed(None)
        credentials = UsernamePassword(name.encode("utf-8"), password.encode("utf-8"))
        d = self.portal.login(credentials, domain, ISIPIdentity)

        def retry(failure: Any) -> Any:
            # strcred's memory: checker keys users (and passwords) by str,
            # the others by bytes; as Authenticator does for SIP digest.
            failure.trap(UnauthorizedLogin)
            text = UsernamePassword(name, password)  # type: ignore[arg-type]
            return self.portal.login(text, domain, ISIPIdentity)

        d.addErrback(retry)

        def logged_in(result: Any) -> Viewer:
            identity = result[1]
            aor = str(identity.aor)
            return Viewer(aor, aor.lower() in self.admins)

        def refused(failure: Any) -> None:
            failure.trap(UnauthorizedLogin, UnhandledCredentials)

        return d.addCallbacks(logged_in, refused)

    def csrf_token(self, viewer: Viewer) -> str:
        """
        The token forms of C{viewer} carry: an HMAC of their address with
        this process's secret (a new process invalidates open forms).
        """
        return hmac.new(self._secret, viewer.aor.encode("utf-8"), hashlib.sha256).hexdigest()

    def check_csrf(self, viewer: Viewer, token: Optional[str]) -> bool:
        """
        Whether C{token} is C{viewer}'s CSRF token.
        """
        return token is not None and hmac.compare_digest(token, self.csrf_token(viewer))
