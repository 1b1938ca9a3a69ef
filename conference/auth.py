# -*- test-case-name: tests.unit.test_auth -*-
"""
SIP digest authentication on twisted.cred: who is asking, proven.

L{conference.sip.digest} checks nonces and responses without I/O; this
module joins it to a L{Portal} so the stock checkers that C{--auth}
builds (C{file:}, C{memory:}) verify the password, and the application
receives an L{ISIPIdentity} avatar rather than trusting the From header.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union, cast
from urllib.parse import unquote

from twisted.cred.checkers import FilePasswordDB, InMemoryUsernamePasswordDatabaseDontUse
from twisted.cred.credentials import IUsernameDigestHash, IUsernameHashedPassword
from twisted.cred.error import UnauthorizedLogin, UnhandledCredentials
from twisted.cred.portal import IRealm, Portal
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from zope.interface import implementer

from conference.deferreds import PENDING, fired_result
from conference.interfaces import IAccounts, ISIPIdentity
from conference.reactors import default_reactor
from conference.sip.digest import (
    DigestCredentials,
    DigestError,
    DigestParseError,
    DigestRejectedError,
    DigestServer,
    NonceCheck,
    exact_uri_match,
    parse_auth_header,
    verify_response,
)
from conference.sip.errors import SIPProtocolError

# Methods that always need an authenticated identity: they write state.
ALWAYS_AUTHENTICATED = frozenset({"REGISTER", "BIND", "MESSAGE"})
# RFC 3261 section 22.1: ACK and CANCEL cannot be challenged.
NEVER_CHALLENGED = frozenset({"ACK", "CANCEL"})

# Characters allowed unescaped in a SIP URI user part (RFC 3261 section 25.1).
_USER_SAFE = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!~*'()&=+$,;?/"
)


def _escape_user(user: str) -> str:
    return "".join(
        c if c in _USER_SAFE else "".join(f"%{b:02X}" for b in c.encode("utf-8")) for c in user
    )


@implementer(ISIPIdentity)
@dataclass(frozen=True)
class SIPIdentity:
    """
    An authenticated caller: the avatar L{SIPRealm} returns.
    """

    username: str
    domain: str
    mechanism: str = "digest"

    @property
    def aor(self) -> str:
        """
        The address of record, C{sip:user@domain} (user part escaped).
        """
        return f"sip:{_escape_user(self.username)}@{self.domain.lower()}"


@implementer(IUsernameHashedPassword, IUsernameDigestHash)
class SIPDigestCredentials:
    """
    Parsed digest credentials bound to the request they came with, in the
    form twisted.cred checkers understand.

    C{username} is bytes (what L{IUsernameHashedPassword} and
    L{twisted.cred.checkers.FilePasswordDB} use); L{as_text} gives the
    same credentials with a str username, which the C{memory:} checker
    factory keys its users by.

    @ivar digest: the parsed credentials.
    @ivar method: the request method the response covers.
    @ivar body: the request body (used only for C{qop=auth-int}).
    """

    def __init__(
        self,
        digest: DigestCredentials,
        method: str,
        body: bytes = b"",
        *,
        text_username: bool = False,
    ) -> None:
        self.digest = digest
        self.method = method
        self.body = body
        self.username: Union[bytes, str] = (
            digest.username if text_username else digest.username.encode("utf-8")
        )

    def as_text(self) -> SIPDigestCredentials:
        """
        The same credentials with C{username} as str.
        """
        return SIPDigestCredentials(self.digest, self.method, self.body, text_username=True)

    def checkPassword(self, password: Union[bytes, str]) -> bool:
        """
        Whether the response was computed with this cleartext password.
        """
        return verify_response(self.digest, self.method, password=password, body=self.body)

    def checkHash(self, digestHash: Union[bytes, str]) -> bool:
        """
        Whether the response was computed with this HA1 (hex of
        H(username:realm:password)).  A hash whose length belongs to
        another algorithm than the client used cannot match.
        """
        ha1 = digestHash.decode("ascii") if isinstance(digestHash, bytes) else digestHash
        algorithm = self.digest.algorithm
        if len(ha1) != _HA1_LENGTH.get(algorithm):
            return False
        return verify_response(self.digest, self.method, ha1=ha1, body=self.body)


_HA1_LENGTH = {"MD5": 32, "SHA-256": 64}


@implementer(IRealm)
class SIPRealm:
    """
    Turn an authenticated username into an L{ISIPIdentity}.

    The login's C{mind} is the domain (realm) the caller proved itself
    in; the checker's avatar ID is the username (bytes or str).
    """

    def requestAvatar(
        self, avatarId: Any, mind: object, *interfaces: Any
    ) -> Tuple[Any, SIPIdentity, Callable[[], None]]:
        """
        Return C{(ISIPIdentity, identity, logout)}.

        @raise NotImplementedError: if L{ISIPIdentity} is not asked for or
            C{mind} is not the domain string.
        """
        if ISIPIdentity not in interfaces:
            raise NotImplementedError("SIPRealm only provides ISIPIdentity")
        if not isinstance(mind, str):
            raise NotImplementedError("SIPRealm needs the domain as mind")
        if isinstance(avatarId, bytes):
            username = avatarId.decode("utf-8", "replace")
        elif isinstance(avatarId, str):
            username = avatarId
        else:
            raise NotImplementedError("SIPRealm gives no anonymous identity")
        return ISIPIdentity, SIPIdentity(username, mind), lambda: None


class AuthPolicy:
    """
    Which methods must authenticate: REGISTER, BIND and MESSAGE always;
    INVITE if C{invite}; any others named in C{methods}.
    """

    def __init__(self, *, invite: bool = False, methods: Iterable[str] = ()) -> None:
        """
        @raise ValueError: if C{methods} names ACK or CANCEL, which RFC
            3261 section 22.1 says cannot be challenged.
        """
        extra = frozenset(m.upper() for m in methods)
        bad = extra & NEVER_CHALLENGED
        if bad:
            raise ValueError(f"{', '.join(sorted(bad))} cannot be challenged")
        self.invite = invite
        self.methods = ALWAYS_AUTHENTICATED | extra | ({"INVITE"} if invite else frozenset())

    def requires(self, method: str) -> bool:
        """
        Whether a request with this method (case-sensitive) must authenticate.
        """
        return method in self.methods


class UnauthorizedError(SIPProtocolError):
    """
    The answer to a request that did not authenticate: 401 (or 407) with
    fresh challenges in C{headers}, and why in C{reason} and C{detail}.
    """

    def __init__(
        self,
        detail: str,
        headers: Sequence[Tuple[str, str]],
        *,
        status: int = 401,
        stale: bool = False,
    ) -> None:
        super().__init__(f"Unauthorized ({detail})", status, list(headers))
        self.detail = detail
        self.stale = stale


class Authenticator:
    """
    Decide, for one request, whether it is authenticated and as whom.

    @ivar portal: logs credentials in; its realm should be a L{SIPRealm}.
    @ivar digest: issues nonces and checks everything but the password.
    @ivar policy: which methods need authentication.
    @ivar proxy: answer 407 with Proxy-Authenticate and read
        Proxy-Authorization, rather than 401, WWW-Authenticate and
        Authorization.
    """

    def __init__(
        self,
        portal: Portal,
        digest: Optional[DigestServer] = None,
        policy: Optional[AuthPolicy] = None,
        *,
        proxy: bool = False,
        uri_matches: Callable[[str, str], bool] = exact_uri_match,
    ) -> None:
        self.portal = portal
        self.digest = digest if digest is not None else DigestServer()
        self.policy = policy if policy is not None else AuthPolicy()
        self.proxy = proxy
        self.uri_matches = uri_matches

    @property
    def credentials_header(self) -> str:
        """
        The request header credentials arrive in.
        """
        return "Proxy-Authorization" if self.proxy else "Authorization"

    @property
    def challenge_header(self) -> str:
        """
        The response header challenges go in.
        """
        return "Proxy-Authenticate" if self.proxy else "WWW-Authenticate"

    def challenge(
        self, domain: str, now: float, detail: str = "credentials required", *, stale: bool = False
    ) -> UnauthorizedError:
        """
        Build the 401/407 answer with fresh challenges for C{domain}.
        """
        headers = [
            (self.challenge_header, value)
            for value in self.digest.challenges(domain, now, stale=stale)
        ]
        return UnauthorizedError(detail, headers, status=407 if self.proxy else 401, stale=stale)

    def authenticate(
        self,
        method: str,
        request_uri: str,
        authorization: Sequence[str],
        *,
        domain: str,
        now: float,
        body: bytes = b"",
    ) -> Deferred[Optional[ISIPIdentity]]:
        """
        Authenticate a request.

        @param request_uri: the Request-URI exactly as on the start line.
        @param authorization: every Authorization (or, with C{proxy},
            Proxy-Authorization) field value, in order.
        @param domain: the served domain the request is for (the realm).
        @return: a Deferred firing with the identity; with L{None} when the
            method needs no authentication and no credentials for C{domain}
            came; or failing with L{UnauthorizedError} (401/407 with
            challenges), L{DigestParseError} (400) for malformed
            credentials, or L{SIPProtocolError} (500) if no checker
            handles digest credentials or a checker failed.
        """
        try:
            digest = self._pick(authorization, domain)
        except DigestParseError as e:
            return fail(e)
        if digest is None:
            if not self.policy.requires(method):
                return succeed(None)
            return fail(self.challenge(domain, now))
        try:
            nonce = self.digest.check(
                digest, realm=domain, request_uri=request_uri, now=now, uri_matches=self.uri_matches
            )
        except DigestRejectedError as e:
            return fail(self.challenge(domain, now, e.detail, stale=e.stale))
        except DigestError as e:
            return fail(e)
        credentials = SIPDigestCredentials(digest, method, body)
        d = self._login(credentials, domain)
        result = fired_result(d)
        if result is not PENDING:
            # The checker answered at once (file: and memory: do): no chain.
            try:
                return succeed(self._accepted(result, digest, nonce, domain, now))
            except Exception:
                d = fail()
        else:
            d.addCallback(self._accepted, digest, nonce, domain, now)
        d.addErrback(self._refused, domain, now)
        return d

    def _pick(self, fields: Sequence[str], domain: str) -> Optional[DigestCredentials]:
        # RFC 3261 section 22.4: use the credentials for our realm; others
        # (Basic, or for another realm) are someone else's.
        for value in fields:
            words = value.split(None, 1)
            if not words or words[0].lower() != "digest":
                continue  # another scheme's syntax (token68 for Basic) is not ours
            _, params = parse_auth_header(value)
            if params.get("realm", "").lower() == domain.lower():
                return DigestCredentials.from_params(params)
        return None

    def _login(self, credentials: SIPDigestCredentials, domain: str) -> Deferred[Any]:
        d = self.portal.login(credentials, domain, ISIPIdentity)
        if fired_result(d) is not PENDING:
            return d  # logged in at once: nothing to retry

        def retry(failure: Failure) -> Any:
            # strcred's memory: checker keys users by str, the others by bytes.
            if not isinstance(failure.value, UnauthorizedLogin):
                return failure
            return self.portal.login(credentials.as_text(), domain, ISIPIdentity)

        d.addErrback(retry)
        return d

    def _accepted(
        self,
        result: Tuple[Any, Any, Callable[[], None]],
        digest: DigestCredentials,
        nonce: NonceCheck,
        domain: str,
        now: float,
    ) -> ISIPIdentity:
        _, avatar, logout = result
        logout()
        self.digest.accept(digest, nonce, now)
        return cast(ISIPIdentity, avatar)

    def _refused(self, failure: Failure, domain: str, now: float) -> Failure:
        error = failure.value
        if isinstance(error, DigestRejectedError):
            raise self.challenge(domain, now, error.detail, stale=error.stale)
        if isinstance(error, UnauthorizedLogin):
            raise self.challenge(domain, now, "wrong credentials")
        if isinstance(error, UnhandledCredentials):
            raise SIPProtocolError("no checker for SIP digest credentials", 500)
        if isinstance(error, SIPProtocolError):
            return failure
        raise SIPProtocolError("authentication backend failed", 500)

    def authenticate_request(
        self, request: Any, domain: str, now: float
    ) -> Deferred[Optional[ISIPIdentity]]:
        """
        L{authenticate} for a L{conference.sip.message.Request}, taking the
        Request-URI from C{request.raw_uri} when the parser keeps it, else
        C{str(request.uri)}.
        """
        raw = getattr(request, "raw_uri", None)
        request_uri = raw if isinstance(raw, str) else str(request.uri)
        fields: List[str] = list(request.header_fields(self.credentials_header.lower()))
        return self.authenticate(
            request.method, request_uri, fields, domain=domain, now=now, body=request.body
        )


@implementer(IAccounts)
class CheckerAccounts:
    """
    L{IAccounts} answered from the credential checkers that authenticate
    SIP digest (those C{--auth} builds): C{file:} (L{FilePasswordDB}) and
    C{memory:} (L{InMemoryUsernamePasswordDatabaseDontUse}) are asked for
    the user; a checker that provides L{IAccounts} itself is asked for the
    address; any other checker cannot tell.

    @ivar checkers: the checkers that can authenticate SIP digest.
    @ivar complete: whether they are the only source of identities; when
        identities also come from elsewhere (TLS client certificates), an
        address none of them knows cannot be told apart from a user.
    """

    def __init__(self, checkers: Iterable[Any], *, complete: bool = True) -> None:
        self.checkers = [c for c in checkers if _checks_digest(c)]
        self.complete = complete

    def is_account(self, address: str) -> Optional[bool]:
        """
        See L{IAccounts.is_account}.
        """
        scheme, _, rest = address.partition(":")
        user, at, _ = rest.rpartition("@")
        if scheme.lower() not in ("sip", "sips") or not (at and user):
            return False
        username = unquote(user)
        unknown = not self.complete
        for checker in self.checkers:
            known = _knows(checker, username, address)
            if known:
                return True
            unknown = unknown or known is None
        return None if unknown else False


def _checks_digest(checker: Any) -> bool:
    """
    Whether the portal would hand SIP digest credentials to C{checker}.
    """
    return any(
        i.implementedBy(SIPDigestCredentials) for i in getattr(checker, "credentialInterfaces", ())
    )


def _knows(checker: Any, username: str, address: str) -> Optional[bool]:
    """
    Whether C{checker} has the user C{username} (L{None}: cannot tell).
    """
    if IAccounts.providedBy(checker):
        known: Optional[bool] = checker.is_account(address)
        return known
    if isinstance(checker, FilePasswordDB):
        try:
            checker.getUser(username.encode("utf-8"))
        except KeyError:
            return False
        except (UnauthorizedLogin, OSError):
            return None  # the file cannot be read: no answer either way
        return True
    if isinstance(checker, InMemoryUsernamePasswordDatabaseDontUse):
        # Keyed by bytes, or by str when strcred's memory: factory filled it.
        users: Dict[Any, Any] = checker.users
        return username in users or username.encode("utf-8") in users
    return None


# How long a password file's modification time, once looked at, is trusted
# before it is looked at again: a changed file is read within this bound.
RECHECK_SECONDS = 1.0


class ReloadingPasswordFile(FilePasswordDB):
    """
    A C{file:} checker that reads its file once and again only when the
    file's modification time moves, where strcred's reads the whole file
    at every login (a tenth of an authenticated request's CPU).  The
    modification time itself is looked at no more than once per
    L{RECHECK_SECONDS} (a system call per login was a twentieth of an
    authenticated query), so an edited file is used within that bound.  A
    file that cannot be read, or has gone, refuses logins as before (from
    the next look at it).

    Logins are answered with an already fired Deferred: the password is
    checked at once, not through strcred's C{maybeDeferred} chain.
    """

    def __init__(self, source: FilePasswordDB, *, clock: Optional[IReactorTime] = None) -> None:
        super().__init__(
            source.filename,
            source.delim,
            source.ufield,
            source.pfield,
            source.caseSensitive,
            source.hash,
            cache=True,
        )
        self._clock = default_reactor(clock)
        self._checked_at: Optional[float] = None

    def getUser(self, username: bytes) -> Tuple[bytes, bytes]:
        now = self._clock.seconds()
        if (
            self._credCache is not None
            and self._checked_at is not None
            and 0 <= now - self._checked_at < RECHECK_SECONDS
        ):
            if not self.caseSensitive:
                username = username.lower()
            return username, self._credCache[username]
        try:
            found = super().getUser(username)
        except OSError as e:  # the file's mtime could not be read
            self._log.error("Unable to load credentials db: {e!r}", e=e)
            self._credCache = None
            self._checked_at = None
            raise UnauthorizedLogin() from e
        except KeyError:
            self._checked_at = now
            raise
        self._checked_at = now
        return found

    def requestAvatarId(self, credentials: Any) -> Deferred[Any]:
        """
        Strcred's check, answered at once: the user's stored value, then
        the credentials' own C{checkPassword} (or the configured hash).
        """
        if self.hash:
            return super().requestAvatarId(credentials)
        try:
            username, stored = self.getUser(credentials.username)
        except KeyError:
            return fail(UnauthorizedLogin())
        except UnauthorizedLogin:
            return fail()
        matched = credentials.checkPassword(stored)
        if isinstance(matched, Deferred):  # a checkPassword that answers later
            return matched.addCallback(self._cbPasswordMatch, username)
        return succeed(username) if matched else fail(UnauthorizedLogin())


def reloading(checkers: Iterable[Any], *, clock: Optional[IReactorTime] = None) -> List[Any]:
    """
    C{checkers} with each plain C{file:} checker (strcred's
    L{FilePasswordDB}) replaced by a L{ReloadingPasswordFile} of the same
    file, on C{clock} (the global reactor when L{None}).
    """
    return [
        ReloadingPasswordFile(checker, clock=clock) if type(checker) is FilePasswordDB else checker
        for checker in checkers
    ]


def make_portal(checkers: Iterable[Any], realm: Optional[IRealm] = None) -> Portal:
    """
    A portal over C{checkers} (for example C{options["credCheckers"]} from
    L{twisted.cred.strcred.AuthOptionMixin}) with a L{SIPRealm}.
    """
    return Portal(realm if realm is not None else SIPRealm(), list(checkers))


__all__ = [
    "ALWAYS_AUTHENTICATED",
    "RECHECK_SECONDS",
    "AuthPolicy",
    "CheckerAccounts",
    "ReloadingPasswordFile",
    "UnauthorizedError",
    "Authenticator",
    "SIPDigestCredentials",
    "SIPIdentity",
    "SIPRealm",
    "make_portal",
    "reloading",
]
