# -*- test-case-name: tests.unit.test_auth -*-
# mypy: allow-untyped-calls
"""
Tests for L{conference.auth}: digest on twisted.cred with the stock
checkers, the SIP realm and identity, and the authentication policy.
"""

from __future__ import annotations

import os
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.cred import strcred
from twisted.cred.checkers import (
    FilePasswordDB,
    ICredentialsChecker,
    InMemoryUsernamePasswordDatabaseDontUse,
)
from twisted.cred.credentials import IUsernameDigestHash, IUsernameHashedPassword
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import Portal
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from conference.auth import (
    ALWAYS_AUTHENTICATED,
    RECHECK_SECONDS,
    Authenticator,
    AuthPolicy,
    CheckerAccounts,
    ReloadingPasswordFile,
    SIPDigestCredentials,
    SIPIdentity,
    SIPRealm,
    UnauthorizedError,
    make_portal,
    reloading,
)
from conference.interfaces import IAccounts, ISIPIdentity
from conference.sip.digest import (
    RFC8760_ALGORITHMS,
    DigestParseError,
    DigestServer,
    compute_ha1,
    parse_auth_header,
    parse_credentials,
    quote,
)
from conference.sip.errors import SIPProtocolError
from tests.unit.sip.test_digest import DOMAIN, SECRET, URI, answer, counting_random


class FakeRequest:
    """
    The parts of a L{conference.sip.message.Request} the authenticator reads.
    """

    def __init__(self, method: str, uri: str, fields: Sequence[Tuple[str, str]] = ()) -> None:
        self.method = method
        self.uri = uri
        self.body = b""
        self.fields = list(fields)

    def header_fields(self, name: str) -> List[str]:
        """Every value of a header, by lower-case name."""
        return [v for n, v in self.fields if n.lower() == name]


class AuthenticatorTestsMixin:
    """
    Drive an L{Authenticator} through challenge and answer.
    """

    def makeAuthenticator(
        self, checker: Any, policy: Optional[AuthPolicy] = None, proxy: bool = False
    ) -> Authenticator:
        """An authenticator over one checker, with a deterministic server offering both."""
        server = DigestServer(
            SECRET, lifetime=60, algorithms=RFC8760_ALGORITHMS, random=counting_random()
        )
        return Authenticator(make_portal([checker]), server, policy, proxy=proxy)


class FlowTests(AuthenticatorTestsMixin, SynchronousTestCase):
    """
    The whole exchange with L{InMemoryUsernamePasswordDatabaseDontUse}.
    """

    def setUp(self) -> None:
        self.auth = self.makeAuthenticator(InMemoryUsernamePasswordDatabaseDontUse(alice=b"secret"))

    def refuse(self, d: Deferred[Optional[ISIPIdentity]]) -> UnauthorizedError:
        """The 401 a Deferred fails with."""
        error = self.failureResultOf(d, UnauthorizedError).value
        assert isinstance(error, UnauthorizedError)
        return error

    def login(
        self, authorization: Sequence[str], method: str = "REGISTER", now: float = 1001.0
    ) -> Deferred[Optional[ISIPIdentity]]:
        """Authenticate a request carrying these Authorization values."""
        return self.auth.authenticate(method, URI, authorization, domain=DOMAIN, now=now)

    def firstChallenge(self, algorithm: str = "MD5", now: float = 1000.0) -> str:
        """The challenge for C{algorithm} in a 401 to a bare REGISTER."""
        error = self.refuse(self.login([], now=now))
        for name, value in error.headers:
            self.assertEqual(name, "WWW-Authenticate")
            if f"algorithm={algorithm}," in value:
                return value
        raise AssertionError(f"no {algorithm} challenge")

    def test_no_credentials_challenged(self) -> None:
        """A REGISTER without credentials gets 401 with one challenge per algorithm."""
        error = self.refuse(self.login([]))
        self.assertEqual(error.status, 401)
        self.assertEqual(error.reason, "Unauthorized (credentials required)")
        algorithms = [parse_auth_header(v)[1]["algorithm"] for _, v in error.headers]
        self.assertEqual(algorithms, ["SHA-256", "MD5"])

    def test_md5_identity(self) -> None:
        """A right MD5 answer yields the caller's identity, not From's."""
        identity = self.successResultOf(self.login([answer(self.firstChallenge("MD5"))]))
        assert identity is not None
        self.assertTrue(verifyObject(ISIPIdentity, identity))
        self.assertEqual(identity.aor, "sip:alice@example.com")
        self.assertEqual((identity.username, identity.domain), ("alice", DOMAIN))
        self.assertEqual(identity.mechanism, "digest")

    def test_sha256_identity(self) -> None:
        """A right SHA-256 answer yields the identity too."""
        identity = self.successResultOf(self.login([answer(self.firstChallenge("SHA-256"))]))
        assert identity is not None
        self.assertEqual(identity.aor, "sip:alice@example.com")

    def test_wrong_password(self) -> None:
        """A wrong password gets a fresh, non-stale challenge."""
        error = self.refuse(self.login([answer(self.firstChallenge(), password="guess")]))
        self.assertEqual(error.detail, "wrong credentials")
        self.assertFalse(error.stale)
        self.assertEqual(len(error.headers), 2)

    def test_unknown_user(self) -> None:
        """An unknown user reads exactly like a wrong password."""
        error = self.refuse(self.login([answer(self.firstChallenge(), username="mallory")]))
        self.assertEqual(error.detail, "wrong credentials")

    def test_replay(self) -> None:
        """Replaying an accepted request is refused."""
        authorization = answer(self.firstChallenge())
        self.successResultOf(self.login([authorization]))
        error = self.refuse(self.login([authorization]))
        self.assertIn("replayed", error.detail)

    def test_stale(self) -> None:
        """A right answer on an expired nonce gets stale=true challenges."""
        authorization = answer(self.firstChallenge(now=1000.0))
        error = self.refuse(self.login([authorization], now=2000.0))
        self.assertTrue(error.stale)
        for _, value in error.headers:
            self.assertEqual(parse_auth_header(value)[1]["stale"], "true")

    def test_tampered_nonce(self) -> None:
        """A tampered nonce is refused before any checker runs."""
        challenge = self.firstChallenge()
        nonce = parse_auth_header(challenge)[1]["nonce"]
        error = self.refuse(self.login([answer(challenge, nonce=nonce[::-1])]))
        self.assertIn("nonce", error.detail)

    def test_rfc2069_refused(self) -> None:
        """Credentials without qop are refused with a challenge."""
        error = self.refuse(self.login([answer(self.firstChallenge(), qop=None)]))
        self.assertEqual(error.detail, "qop=auth is required")

    def test_malformed_is_400(self) -> None:
        """A malformed Authorization fails with a 400 naming the fault."""
        d = self.login(['Digest username="alice'])
        error = self.failureResultOf(d, DigestParseError).value
        assert isinstance(error, DigestParseError)
        self.assertEqual(error.status, 400)
        self.assertIn("unterminated", error.reason)

    def test_other_realm_and_basic_ignored(self) -> None:
        """Basic credentials and Digest for another realm are not ours."""
        other = answer(self.firstChallenge(), realm="example.org")
        error = self.refuse(self.login(["Basic YWxpY2U6c2VjcmV0", other]))
        self.assertEqual(error.detail, "credentials required")

    def test_ours_picked_among_several(self) -> None:
        """With credentials for several realms, ours are used."""
        challenge = self.firstChallenge()
        other = answer(challenge, realm="example.org")
        identity = self.successResultOf(self.login([other, answer(challenge)]))
        assert identity is not None
        self.assertEqual(identity.aor, "sip:alice@example.com")

    def test_optional_method_anonymous(self) -> None:
        """A method outside the policy without credentials is anonymous."""
        self.assertIsNone(self.successResultOf(self.login([], method="OPTIONS")))

    def test_optional_method_still_verified(self) -> None:
        """Credentials on an optional method are checked all the same."""
        authorization = answer(self.firstChallenge(), method="INVITE", password="guess")
        self.refuse(self.login([authorization], method="INVITE"))
        good = answer(self.firstChallenge(), method="INVITE")
        self.assertIsNotNone(self.successResultOf(self.login([good], method="INVITE")))

    def test_authenticate_request(self) -> None:
        """authenticate_request reads method, URI and Authorization fields."""
        challenge = self.firstChallenge()
        request = FakeRequest(
            "MESSAGE", URI, [("Authorization", answer(challenge, method="MESSAGE"))]
        )
        identity = self.successResultOf(self.auth.authenticate_request(request, DOMAIN, 1001.0))
        assert identity is not None
        self.assertEqual(identity.username, "alice")


_PARAMS = ["username", "nonce", "uri", "response", "algorithm", "qop", "nc", "cnonce", "opaque"]


class RobustnessTests(AuthenticatorTestsMixin, SynchronousTestCase):
    """
    Whatever a client sends, the outcome is an identity or a SIP error.
    """

    @settings(max_examples=200)
    @given(
        st.dictionaries(
            st.sampled_from(_PARAMS),
            st.text(max_size=12),
        )
    )
    def test_arbitrary_params(self, params: Dict[str, str]) -> None:
        """Arbitrary parameter values fail only with SIPProtocolError."""
        auth = self.makeAuthenticator(InMemoryUsernamePasswordDatabaseDontUse(alice=b"secret"))
        items = [f"{k}={quote(v)}" for k, v in params.items()]
        value = ", ".join(["Digest realm=" + quote(DOMAIN), *items])
        d = auth.authenticate("REGISTER", URI, [value], domain=DOMAIN, now=1000.0)
        error = self.failureResultOf(d, SIPProtocolError).value
        assert isinstance(error, SIPProtocolError)
        self.assertIn(error.status, (400, 401))


class CheckerTests(AuthenticatorTestsMixin, SynchronousTestCase):
    """
    The checkers C{--auth} builds through L{twisted.cred.strcred}.
    """

    def attempt(self, checker: Any, password: str) -> Deferred[Optional[ISIPIdentity]]:
        """Be challenged, answer with C{password}: the authentication's outcome."""
        auth = self.makeAuthenticator(checker)
        error = self.failureResultOf(
            auth.authenticate("REGISTER", URI, [], domain=DOMAIN, now=1000.0), UnauthorizedError
        ).value
        assert isinstance(error, UnauthorizedError)
        authorization = answer(error.headers[0][1], password=password)
        return auth.authenticate("REGISTER", URI, [authorization], domain=DOMAIN, now=1001.0)

    def roundTrip(self, checker: Any, password: str = "secret") -> Optional[ISIPIdentity]:
        """Challenge, answer, and return the identity."""
        d = self.attempt(checker, password)
        if password != "secret":
            self.failureResultOf(d, UnauthorizedError)
            return None
        return self.successResultOf(d)

    def test_memory_factory(self) -> None:
        """strcred's memory: checker (str keys) works unchanged."""
        checker = strcred.makeChecker("memory:alice:secret:bob:other")
        identity = self.roundTrip(checker)
        assert identity is not None
        self.assertEqual(identity.aor, "sip:alice@example.com")
        self.assertIsNone(self.roundTrip(checker, password="guess"))

    def test_file_factory(self) -> None:
        """strcred's file: checker (bytes keys) works unchanged."""
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("bob:other\nalice:secret\n")
        checker = strcred.makeChecker("file:" + path)
        identity = self.roundTrip(checker)
        assert identity is not None
        self.assertEqual(identity.username, "alice")
        self.assertIsNone(self.roundTrip(checker, password="guess"))

    def test_slow_checker(self) -> None:
        """A checker answering later gives the identity, or the 401, once it answers."""

        @implementer(ICredentialsChecker)
        class Slow:
            credentialInterfaces = (IUsernameDigestHash,)

            def __init__(self) -> None:
                self.pending: List[Tuple[Deferred[Any], Any]] = []

            def requestAvatarId(self, credentials: Any) -> Deferred[Any]:
                d: Deferred[Any] = Deferred()
                self.pending.append((d, credentials))
                return d

            def release(self) -> None:
                for d, credentials in self.pending:
                    ha1 = compute_ha1("SHA-256", "alice", DOMAIN, "secret")
                    if credentials.checkHash(ha1):
                        d.callback(b"alice")
                    else:
                        d.errback(UnauthorizedLogin())

        slow = Slow()
        right = self.attempt(slow, "secret")
        self.assertNoResult(right)
        slow.release()
        identity = self.successResultOf(right)
        assert identity is not None
        self.assertEqual(identity.aor, "sip:alice@example.com")
        slow.pending.clear()
        wrong = self.attempt(slow, "guess")
        slow.release()
        self.failureResultOf(wrong, UnauthorizedError)

    def logs_in(self, checker: Any, password: str) -> Optional[bool]:
        """
        Whether answering the challenge with C{password} authenticates
        (L{None}: it failed otherwise than unauthorized).
        """
        d = self.attempt(checker, password)
        outcome: List[Optional[bool]] = []
        d.addCallbacks(
            lambda _: outcome.append(True),
            lambda f: outcome.append(False if f.check(UnauthorizedError) else None),
        )
        [result] = outcome
        return result

    def test_file_read_when_changed(self) -> None:
        """A file: checker is read once, again only after the file changed, and gone refuses."""
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("alice:secret\n")
        clock = Clock()
        [checker] = reloading([strcred.makeChecker("file:" + path)], clock=clock)
        self.assertIsInstance(checker, ReloadingPasswordFile)
        reads: List[int] = []
        load = checker._loadCredentials

        def counted() -> Any:
            reads.append(1)
            return load()

        checker._loadCredentials = counted  # type: ignore[method-assign]
        self.assertTrue(self.logs_in(checker, "secret"))
        self.assertTrue(self.logs_in(checker, "secret"))
        self.assertEqual(len(reads), 1)
        with open(path, "w") as f:
            f.write("alice:changed\n")
        os.utime(path, (time.time() + 5, time.time() + 5))
        clock.advance(RECHECK_SECONDS)
        self.assertIs(self.logs_in(checker, "secret"), False)
        self.assertTrue(self.logs_in(checker, "changed"))
        self.assertEqual(len(reads), 2)
        os.remove(path)
        clock.advance(RECHECK_SECONDS)
        self.assertIs(self.logs_in(checker, "changed"), False)
        self.flushLoggedErrors()

    def test_file_looked_at_once_per_bound(self) -> None:
        """Within RECHECK_SECONDS a file: checker trusts what it read; after it, sees the edit."""
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("alice:secret\n")
        clock = Clock()
        [checker] = reloading([strcred.makeChecker("file:" + path)], clock=clock)
        self.assertTrue(self.logs_in(checker, "secret"))
        with open(path, "w") as f:
            f.write("alice:changed\n")
        os.utime(path, (time.time() + 5, time.time() + 5))
        clock.advance(RECHECK_SECONDS / 2)
        self.assertTrue(self.logs_in(checker, "secret"))
        self.assertIs(self.logs_in(checker, "guess"), False)
        clock.advance(RECHECK_SECONDS / 2)
        self.assertIs(self.logs_in(checker, "secret"), False)
        self.assertTrue(self.logs_in(checker, "changed"))

    def test_file_login_answers_at_once(self) -> None:
        """A file: checker's login Deferred has fired when requestAvatarId returns."""
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("alice:secret\n")
        [checker] = reloading([strcred.makeChecker("file:" + path)], clock=Clock())
        server = DigestServer(SECRET, random=counting_random())
        challenge = server.challenges(DOMAIN, 1000.0)[0]
        digest = parse_credentials(answer(challenge, password="secret"))
        credentials = SIPDigestCredentials(digest, "REGISTER")
        self.assertEqual(self.successResultOf(checker.requestAvatarId(credentials)), b"alice")
        wrong = SIPDigestCredentials(parse_credentials(answer(challenge, password="x")), "REGISTER")
        self.failureResultOf(checker.requestAvatarId(wrong), UnauthorizedLogin)
        nobody = parse_credentials(answer(challenge, username="mallory"))
        stranger = SIPDigestCredentials(nobody, "REGISTER")
        self.failureResultOf(checker.requestAvatarId(stranger), UnauthorizedLogin)

    def test_other_checkers_kept(self) -> None:
        """reloading leaves checkers other than strcred's file: one as they are."""
        memory = strcred.makeChecker("memory:alice:secret")
        self.assertEqual(reloading([memory]), [memory])

    def test_no_checker_is_500(self) -> None:
        """A portal with no checker for digest fails with a 500."""
        server = DigestServer(SECRET, random=counting_random())
        auth = Authenticator(Portal(SIPRealm(), []), server)
        challenge = server.challenges(DOMAIN, 1000.0)[0]
        d = auth.authenticate("REGISTER", URI, [answer(challenge)], domain=DOMAIN, now=1001.0)
        error = self.failureResultOf(d, SIPProtocolError).value
        assert isinstance(error, SIPProtocolError)
        self.assertEqual(error.status, 500)


class ProxyTests(AuthenticatorTestsMixin, SynchronousTestCase):
    """
    The 407 / Proxy-Authorization variant.
    """

    def test_proxy_headers(self) -> None:
        """Proxy mode answers 407 and reads Proxy-Authorization."""
        auth = self.makeAuthenticator(
            InMemoryUsernamePasswordDatabaseDontUse(alice=b"secret"), proxy=True
        )
        error = self.failureResultOf(
            auth.authenticate("MESSAGE", URI, [], domain=DOMAIN, now=1000.0), UnauthorizedError
        ).value
        assert isinstance(error, UnauthorizedError)
        self.assertEqual(error.status, 407)
        self.assertEqual({n for n, _ in error.headers}, {"Proxy-Authenticate"})
        request = FakeRequest(
            "MESSAGE",
            URI,
            [("Proxy-Authorization", answer(error.headers[1][1], method="MESSAGE"))],
        )
        identity = self.successResultOf(auth.authenticate_request(request, DOMAIN, 1001.0))
        self.assertIsNotNone(identity)


class PolicyTests(SynchronousTestCase):
    """
    Which methods need authentication.
    """

    def test_always(self) -> None:
        """REGISTER, BIND and MESSAGE always need it; OPTIONS does not."""
        policy = AuthPolicy()
        self.assertEqual(ALWAYS_AUTHENTICATED, {"REGISTER", "BIND", "MESSAGE"})
        for method in ALWAYS_AUTHENTICATED:
            self.assertTrue(policy.requires(method))
        self.assertFalse(policy.requires("OPTIONS"))
        self.assertFalse(policy.requires("INVITE"))

    def test_invite_and_extra(self) -> None:
        """INVITE and extra methods are opt-in."""
        policy = AuthPolicy(invite=True, methods=["subscribe"])
        self.assertTrue(policy.requires("INVITE"))
        self.assertTrue(policy.requires("SUBSCRIBE"))
        self.assertFalse(policy.requires("BYE"))

    def test_ack_cancel_refused(self) -> None:
        """ACK and CANCEL cannot be made to need authentication."""
        e = self.assertRaises(ValueError, AuthPolicy, methods=["ACK", "cancel"])
        self.assertIn("ACK, CANCEL", str(e))

    def test_policy_applied(self) -> None:
        """An INVITE without credentials is challenged when policy says so."""
        auth = Authenticator(
            make_portal([InMemoryUsernamePasswordDatabaseDontUse()]),
            DigestServer(SECRET),
            AuthPolicy(invite=True),
        )
        d = auth.authenticate("INVITE", URI, [], domain=DOMAIN, now=0.0)
        self.failureResultOf(d, UnauthorizedError)


class RealmAndCredentialsTests(SynchronousTestCase):
    """
    L{SIPRealm}, L{SIPIdentity} and L{SIPDigestCredentials} alone.
    """

    def credentials(self, algorithm: str = "MD5") -> SIPDigestCredentials:
        """Credentials answering a fresh challenge for C{algorithm}."""
        server = DigestServer(SECRET, algorithms=RFC8760_ALGORITHMS)
        challenge = next(
            v for v in server.challenges(DOMAIN, 0.0) if f"algorithm={algorithm}," in v
        )
        return SIPDigestCredentials(parse_credentials(answer(challenge)), "REGISTER")

    def test_interfaces(self) -> None:
        """The credentials provide both cred interfaces."""
        creds = self.credentials()
        self.assertTrue(verifyObject(IUsernameHashedPassword, creds))
        self.assertTrue(verifyObject(IUsernameDigestHash, creds))
        self.assertEqual(creds.username, b"alice")
        self.assertEqual(creds.as_text().username, "alice")

    def test_check_password(self) -> None:
        """checkPassword takes bytes or str passwords."""
        creds = self.credentials()
        self.assertTrue(creds.checkPassword(b"secret"))
        self.assertTrue(creds.checkPassword("secret"))
        self.assertFalse(creds.checkPassword(b"guess"))

    def test_check_hash(self) -> None:
        """checkHash takes an HA1 of the client's algorithm only."""
        md5 = self.credentials("MD5")
        self.assertTrue(md5.checkHash(compute_ha1("MD5", "alice", DOMAIN, "secret").encode()))
        self.assertFalse(md5.checkHash(compute_ha1("SHA-256", "alice", DOMAIN, "secret")))
        sha = self.credentials("SHA-256")
        self.assertTrue(sha.checkHash(compute_ha1("SHA-256", "alice", DOMAIN, "secret")))
        self.assertFalse(sha.checkHash(compute_ha1("MD5", "alice", DOMAIN, "secret")))

    def test_realm_avatar(self) -> None:
        """The realm turns bytes or str avatar IDs into identities."""
        realm = SIPRealm()
        iface, avatar, logout = realm.requestAvatar(b"alice", "Example.COM", ISIPIdentity)
        self.assertIs(iface, ISIPIdentity)
        self.assertEqual(avatar.aor, "sip:alice@example.com")
        self.assertIsNone(logout())
        _, avatar, _ = realm.requestAvatar("bob", DOMAIN, ISIPIdentity)
        self.assertEqual(avatar.username, "bob")

    def test_realm_refusals(self) -> None:
        """Other interfaces, a non-domain mind or anonymity are refused."""
        realm = SIPRealm()
        self.assertRaises(NotImplementedError, realm.requestAvatar, b"a", DOMAIN)
        self.assertRaises(NotImplementedError, realm.requestAvatar, b"a", None, ISIPIdentity)
        self.assertRaises(NotImplementedError, realm.requestAvatar, (), DOMAIN, ISIPIdentity)

    def test_aor_escaped(self) -> None:
        """User parts with reserved characters are percent-escaped."""
        identity = SIPIdentity("a b@c", "example.com")
        self.assertEqual(identity.aor, "sip:a%20b%40c@example.com")
        self.assertEqual(SIPIdentity("jörg", "x.org").aor, "sip:j%C3%B6rg@x.org")


@implementer(IAccounts)
class ListedAccounts:
    """
    A checker of its own that also answers L{IAccounts} (a directory).
    """

    credentialInterfaces = (IUsernameDigestHash,)

    def __init__(self, *addresses: str) -> None:
        self.addresses = set(addresses)

    def requestAvatarId(self, credentials: Any) -> Deferred[Any]:
        raise NotImplementedError("not used by these tests")

    def is_account(self, address: str) -> Optional[bool]:
        return address in self.addresses


class CheckerAccountsTests(SynchronousTestCase):
    """
    L{CheckerAccounts}: which addresses are accounts' according to the
    checkers C{--auth} builds.
    """

    def test_interface(self) -> None:
        """CheckerAccounts provides IAccounts."""
        self.assertTrue(verifyObject(IAccounts, CheckerAccounts([])))

    def test_memory(self) -> None:
        """strcred's memory: checker (str keys) and a bytes-keyed one are both asked."""
        accounts = CheckerAccounts(
            [
                strcred.makeChecker("memory:alice:secret"),
                InMemoryUsernamePasswordDatabaseDontUse(bob=b"x"),
            ]
        )
        self.assertTrue(accounts.is_account("sip:alice@example.com"))
        self.assertTrue(accounts.is_account("sip:bob@other.example.org"))
        self.assertFalse(accounts.is_account("sip:room@example.com"))
        self.assertFalse(accounts.is_account("sip:example.com"))

    def test_file(self) -> None:
        """strcred's file: checker is asked; escaped user parts are unescaped first."""
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("bob:other\nj\u00f6rg:secret\n")
        accounts = CheckerAccounts([strcred.makeChecker("file:" + path)])
        self.assertTrue(accounts.is_account("sip:bob@example.com"))
        self.assertTrue(accounts.is_account(SIPIdentity("j\u00f6rg", "example.com").aor))
        self.assertFalse(accounts.is_account("sip:alice@example.com"))

    def test_unreadable_file(self) -> None:
        """A file: checker whose file is gone cannot tell."""
        accounts = CheckerAccounts([FilePasswordDB(self.mktemp())])
        self.assertIsNone(accounts.is_account("sip:bob@example.com"))

    def test_directory_checker(self) -> None:
        """A checker providing IAccounts answers for itself."""
        accounts = CheckerAccounts([ListedAccounts("sip:carol@example.com")])
        self.assertTrue(accounts.is_account("sip:carol@example.com"))
        self.assertFalse(accounts.is_account("sip:dave@example.com"))

    def test_unknown_checker(self) -> None:
        """A digest checker of unknown kind cannot tell, unless another knows the user."""

        class Opaque:
            credentialInterfaces = (IUsernameHashedPassword,)

        accounts = CheckerAccounts([Opaque(), strcred.makeChecker("memory:alice:secret")])
        self.assertIsNone(accounts.is_account("sip:room@example.com"))
        self.assertTrue(accounts.is_account("sip:alice@example.com"))

    def test_other_checkers_ignored(self) -> None:
        """Checkers that cannot authenticate SIP digest (anonymous) are not asked."""
        accounts = CheckerAccounts([strcred.makeChecker("anonymous")])
        self.assertEqual(accounts.checkers, [])
        self.assertFalse(accounts.is_account("sip:room@example.com"))

    def test_incomplete(self) -> None:
        """With identities from elsewhere (TLS), an unknown user cannot be told apart."""
        accounts = CheckerAccounts([strcred.makeChecker("memory:alice:secret")], complete=False)
        self.assertTrue(accounts.is_account("sip:alice@example.com"))
        self.assertIsNone(accounts.is_account("sip:room@example.com"))
