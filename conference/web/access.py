# -*- test-case-name: tests.unit.web.test_access -*-
"""
Who is looking at the status pages and what they may see and do.

Logins are checked by the same portal as SIP digest (the C{--auth}
checkers), so a person uses their SIP account: HTTP digest (RFC 7616,
SHA-256 or MD5, the SIP digest code with the first C{--domain} as realm),
which never sends the password, or HTTP basic, which does and is therefore
accepted only over TLS or from a loopback client.  CSRF tokens for actions
are derived from the login, so no session state is kept.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Iterable, List, Optional, Sequence, Tuple

from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin, UnhandledCredentials
from twisted.cred.portal import Portal
from twisted.internet.defer import Deferred, succeed

from conference.auth import SIPDigestCredentials
from conference.control.policy import CalendarPolicy, may_moderate
from conference.interfaces import ISIPIdentity
from conference.records import ConferenceRecord
from conference.sip.digest import (
    DigestError,
    DigestRejectedError,
    DigestReplayError,
    DigestServer,
    parse_credentials,
)

#: The digest algorithms offered to browsers, strongest first (Chromium
#: and Firefox answer SHA-256; MD5 for older clients and tools).
WEB_DIGEST_ALGORITHMS = ("SHA-256", "MD5")

# Outcomes of a login attempt (docs/operations.rst, "Metrics").
OK = "ok"
#: No credentials: a browser's first request, answered with the challenge.
MISSING = "missing"
#: An C{Authorization} header that cannot be read, or of another scheme.
MALFORMED = "malformed"
#: Wrong password, unknown user or domain, a nonce this server did not
#: issue for that realm: anything that proves nobody.
WRONG = "wrong"
#: A right digest response on an expired nonce (answered C{stale=true}).
STALE = "stale"
#: A digest nonce count seen already: the same header sent again.
REPLAYED = "replayed"
#: Basic credentials where basic is not accepted (plain HTTP from afar).
INSECURE = "insecure"
#: A digest whose C{uri} is not the request's target (400, RFC 7616 3.4.6).
BAD_URI = "bad-uri"
#: Every outcome, exported at 0 until it happens.
LOGIN_OUTCOMES = (OK, MISSING, MALFORMED, WRONG, STALE, REPLAYED, INSECURE, BAD_URI)


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


@dataclass(frozen=True)
class Login:
    """
    The result of one login attempt.

    @ivar viewer: who logged in, or L{None}.
    @ivar scheme: C{digest}, C{basic}, C{none} (no credentials) or
        C{other} (an unknown scheme).
    @ivar outcome: one of L{LOGIN_OUTCOMES}.
    """

    viewer: Optional[Viewer]
    scheme: str
    outcome: str

    @property
    def stale(self) -> bool:
        """
        Whether only the nonce's age was wrong: the next challenge says
        C{stale=true} and browsers retry without asking the user again.
        """
        return self.outcome == STALE


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
        clock: Callable[[], float] = time.time,
    ) -> None:
        """
        @param clock: the time digest nonces are issued and checked by.
        """
        self.portal = portal
        self.domains = [d.lower() for d in domains] or ["localhost"]
        self.admins = frozenset(a.lower() for a in admins)
        self._secret = secret if secret is not None else os.urandom(32)
        self._clock = clock
        self.digest = DigestServer(
            hashlib.sha256(b"conference-web-digest\x00" + self._secret).digest(),
            algorithms=WEB_DIGEST_ALGORITHMS,
        )
        #: Login attempts by (scheme, outcome), for C{/metrics}.
        self.logins: Counter[Tuple[str, str]] = Counter()

    def challenges(self, *, basic: bool, stale: bool = False) -> List[bytes]:
        """
        The C{WWW-Authenticate} values of a 401: digest for the first
        domain, one per algorithm, then basic where it is accepted.
        """
        now = self._clock()
        found = self.digest.challenges(self.domains[0], now, stale=stale)
        out = [c.encode("utf-8") for c in found]
        if basic:
            out.append(b'Basic realm="conference", charset="UTF-8"')
        return out

    def authenticate(
        self,
        header: Optional[bytes],
        method: bytes = b"GET",
        uri: bytes = b"/",
        *,
        basic: bool = True,
    ) -> Deferred[Login]:
        """
        What an C{Authorization} header proves: the viewer, or why not
        (the caller answers 401 with L{challenges}, C{stale=true} when
        L{Login.stale}).  Each attempt is counted in L{logins}.

        @param method: the HTTP method, which a digest response covers.
        @param uri: the request target, which a digest's C{uri} must equal.
        @param basic: whether basic credentials are accepted (TLS or a
            loopback client); if not they are refused as C{insecure}.
        """
        if not header or not header.strip():
            return succeed(self._count(Login(None, "none", MISSING)))
        scheme = header.strip().split(None, 1)[0].lower()
        if scheme == b"digest":
            d = self._digest_login(header, method, uri)
        elif scheme != b"basic":
            d = succeed(Login(None, "other", MALFORMED))
        elif not basic:
            d = succeed(Login(None, "basic", INSECURE))
        else:
            d = self._basic_login(header)
        return d.addCallback(self._count)

    def login(
        self,
        header: Optional[bytes],
        method: bytes = b"GET",
        uri: bytes = b"/",
        *,
        basic: bool = True,
    ) -> Deferred[Optional[Viewer]]:
        """
        The viewer an C{Authorization} header proves, or L{None} when it is
        missing, malformed, wrong or stale (L{authenticate} says which).
        """
        return self.authenticate(header, method, uri, basic=basic).addCallback(
            lambda done: done.viewer
        )

    def _count(self, done: Login) -> Login:
        self.logins[(done.scheme, done.outcome)] += 1
        return done

    def _basic_login(self, header: bytes) -> Deferred[Login]:
        """
        Check basic credentials (C{user} in the first domain, or
        C{user@domain}) against the portal.
        """
        parsed = parse_basic(header)
        if parsed is None:
            return succeed(Login(None, "basic", MALFORMED))
        user, password = parsed
        name, at, domain = user.rpartition("@")
        if not at:
            name, domain = user, self.domains[0]
        domain = domain.lower()
        if domain not in self.domains:
            return succeed(Login(None, "basic", WRONG))
        credentials = UsernamePassword(name.encode("utf-8"), password.encode("utf-8"))
        d = self.portal.login(credentials, domain, ISIPIdentity)

        def retry(failure: Any) -> Any:
            # strcred's memory: checker keys users (and passwords) by str,
            # the others by bytes; as Authenticator does for SIP digest.
            failure.trap(UnauthorizedLogin)
            text = UsernamePassword(name, password)  # type: ignore[arg-type]
            return self.portal.login(text, domain, ISIPIdentity)

        d.addErrback(retry)
        return d.addCallbacks(
            lambda result: Login(self._viewer(result), "basic", OK),
            lambda failure: _refused(failure, "basic"),
        )

    def _digest_login(self, header: bytes, method: bytes, uri: bytes) -> Deferred[Login]:
        """
        Check RFC 7616 digest credentials: the nonce, realm and C{uri}
        here (L{DigestServer.check}), the response by the portal's
        checkers (which hold what SIP digest needs), then the nonce count.
        """
        now = self._clock()
        try:
            credentials = parse_credentials(header.decode("utf-8"))
        except (DigestError, UnicodeDecodeError):
            return succeed(Login(None, "digest", MALFORMED))
        realm = credentials.realm.lower()
        if realm not in self.domains:
            return succeed(Login(None, "digest", WRONG))
        try:
            nonce = self.digest.check(
                credentials, realm=realm, request_uri=uri.decode("utf-8", "replace"), now=now
            )
        except DigestReplayError:
            return succeed(Login(None, "digest", REPLAYED))
        except DigestRejectedError:
            return succeed(Login(None, "digest", WRONG))
        except DigestError:  # the uri is not the request's (RFC 7616 3.4.6)
            return succeed(Login(None, "digest", BAD_URI))
        hashed = SIPDigestCredentials(credentials, method.decode("ascii", "replace"))
        d = self.portal.login(hashed, realm, ISIPIdentity)

        def retry(failure: Any) -> Any:
            failure.trap(UnauthorizedLogin)
            return self.portal.login(hashed.as_text(), realm, ISIPIdentity)

        def proven(result: Any) -> Login:
            try:
                self.digest.accept(credentials, nonce, now)
            except DigestReplayError:
                return Login(None, "digest", REPLAYED)
            except DigestRejectedError as e:
                return Login(None, "digest", STALE if e.stale else WRONG)
            return Login(self._viewer(result), "digest", OK)

        d.addErrback(retry)
        return d.addCallbacks(proven, lambda failure: _refused(failure, "digest"))

    def _viewer(self, result: Any) -> Viewer:
        aor = str(result[1].aor)
        return Viewer(aor, aor.lower() in self.admins)

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
        if token is None:
            return False
        # As bytes: compare_digest refuses str with non-ASCII characters.
        expected = self.csrf_token(viewer).encode("ascii")
        return hmac.compare_digest(token.encode("utf-8", "surrogatepass"), expected)


def _refused(failure: Any, scheme: str) -> Login:
    """
    Wrong credentials, or ones no checker handles: no viewer.
    """
    failure.trap(UnauthorizedLogin, UnhandledCredentials)
    return Login(None, scheme, WRONG)
