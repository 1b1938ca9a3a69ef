# -*- test-case-name: tests.unit.sip.test_digest -*-
# mypy: allow-untyped-calls
"""
Tests for L{conference.sip.digest}: RFC 7616 vectors, the auth-param
grammar, stateless nonces, and replay refusal.
"""

from __future__ import annotations

import hashlib
import itertools
from typing import Callable, Dict, Iterator, List, Optional

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from conference.sip.digest import (
    DEFAULT_ALGORITHMS,
    HASHES,
    RFC8760_ALGORITHMS,
    VERIFIED_MAX,
    DigestCredentials,
    DigestParseError,
    DigestRejectedError,
    DigestReplayError,
    DigestServer,
    NonceCounter,
    _constructor,
    _parse_auth_header,
    _parse_plain,
    compute_ha1,
    compute_response,
    hash_hex,
    parse_auth_header,
    parse_credentials,
    quote,
    verify_response,
)

# RFC 7616 section 3.9.1.
RFC_USER = "Mufasa"
RFC_PASSWORD = "Circle of Life"
RFC_REALM = "http-auth@example.org"
RFC_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
RFC_MD5 = "8ca523f5e9506fed4657c9700eebdbec"
RFC_SHA256 = "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"

RFC_AUTHORIZATION = (
    'Digest username="Mufasa",\r\n       realm="http-auth@example.org",\r\n'
    '       uri="/dir/index.html",\r\n       algorithm=SHA-256,\r\n'
    f'       nonce="{RFC_NONCE}",\r\n       nc=00000001,\r\n'
    f'       cnonce="{RFC_CNONCE}",\r\n       qop=auth,\r\n'
    f'       response="{RFC_SHA256}",\r\n       opaque="{RFC_OPAQUE}"'
)

DOMAIN = "example.com"
URI = "sip:example.com"
SECRET = b"0123456789abcdef0123456789abcdef"


def counting_random() -> Callable[[int], bytes]:
    """
    A deterministic salt source: 1, 2, 3, ... as big-endian bytes.
    """
    counter: Iterator[int] = itertools.count(1)
    return lambda n: next(counter).to_bytes(n, "big")


def answer(
    challenge: str,
    *,
    username: str = "alice",
    password: str = "secret",
    method: str = "REGISTER",
    uri: str = URI,
    nc: int = 1,
    cnonce: str = "0a4f113b",
    qop: Optional[str] = "auth",
    body: bytes = b"",
    realm: Optional[str] = None,
    nonce: Optional[str] = None,
    opaque: Optional[str] = None,
) -> str:
    """
    Answer a challenge the way a UAC does; the keyword arguments let a
    test lie about any part.
    """
    _, params = parse_auth_header(challenge)
    algorithm = params.get("algorithm", "MD5")
    realm = params["realm"] if realm is None else realm
    nonce = params["nonce"] if nonce is None else nonce
    opaque = params.get("opaque") if opaque is None else opaque
    ha1 = compute_ha1(algorithm, username, realm, password)
    response = compute_response(
        algorithm,
        ha1,
        nonce=nonce,
        method=method,
        uri=uri,
        qop=qop,
        nc=nc,
        cnonce=cnonce,
        body=body,
    )
    value = (
        f"Digest username={quote(username)}, realm={quote(realm)}, nonce={quote(nonce)}, "
        f"uri={quote(uri)}, response={quote(response)}, algorithm={algorithm}"
    )
    if qop is not None:
        value += f", qop={qop}, nc={nc:08x}, cnonce={quote(cnonce)}"
    if opaque is not None:
        value += f", opaque={quote(opaque)}"
    return value


class VectorTests(SynchronousTestCase):
    """
    The worked examples of RFC 7616 section 3.9.1.
    """

    def test_md5(self) -> None:
        """The MD5 example's response is reproduced exactly."""
        ha1 = compute_ha1("MD5", RFC_USER, RFC_REALM, RFC_PASSWORD)
        got = compute_response(
            "MD5",
            ha1,
            nonce=RFC_NONCE,
            method="GET",
            uri="/dir/index.html",
            qop="auth",
            nc=1,
            cnonce=RFC_CNONCE,
        )
        self.assertEqual(got, RFC_MD5)

    def test_sha256(self) -> None:
        """The SHA-256 example's response is reproduced exactly."""
        ha1 = compute_ha1("SHA-256", RFC_USER, RFC_REALM, RFC_PASSWORD)
        got = compute_response(
            "SHA-256",
            ha1,
            nonce=RFC_NONCE,
            method="GET",
            uri="/dir/index.html",
            qop="auth",
            nc=1,
            cnonce=RFC_CNONCE,
        )
        self.assertEqual(got, RFC_SHA256)

    @given(st.binary(max_size=300))
    def test_md5_constructor_is_md5(self, data: bytes) -> None:
        """The MD5 the server hashes with (built-in or hashlib's) is hashlib's MD5."""
        self.assertEqual(hash_hex("MD5", data), hashlib.md5(data).hexdigest())
        self.assertEqual(hash_hex("SHA-256", data), hashlib.sha256(data).hexdigest())

    def test_md5_without_builtin(self) -> None:
        """Without a built-in _md5 module, hashlib's constructor is used."""
        import importlib

        real = importlib.import_module

        def no_md5(name: str, package: Optional[str] = None) -> object:
            if name == "_md5":
                raise ImportError(name)
            return real(name, package)

        self.patch(importlib, "import_module", no_md5)
        self.assertIs(_constructor("md5"), hashlib.md5)
        self.assertIs(_constructor("sha256"), hashlib.sha256)

    def test_parse_example_authorization(self) -> None:
        """The RFC's folded Authorization field parses to its parameters."""
        creds = parse_credentials(RFC_AUTHORIZATION)
        self.assertEqual(
            (creds.username, creds.realm, creds.uri, creds.algorithm),
            (RFC_USER, RFC_REALM, "/dir/index.html", "SHA-256"),
        )
        self.assertEqual((creds.qop, creds.nc, creds.cnonce), ("auth", 1, RFC_CNONCE))
        self.assertEqual(creds.opaque, RFC_OPAQUE)

    def test_verify_example_with_password(self) -> None:
        """verify_response accepts the example with the cleartext password."""
        creds = parse_credentials(RFC_AUTHORIZATION)
        self.assertTrue(verify_response(creds, "GET", password=RFC_PASSWORD))
        self.assertFalse(verify_response(creds, "GET", password="Circle of Death"))
        self.assertFalse(verify_response(creds, "POST", password=RFC_PASSWORD))

    def test_verify_example_with_ha1(self) -> None:
        """verify_response accepts the example with a precomputed HA1."""
        creds = parse_credentials(RFC_AUTHORIZATION)
        ha1 = compute_ha1("SHA-256", RFC_USER, RFC_REALM, RFC_PASSWORD)
        self.assertTrue(verify_response(creds, "GET", ha1=ha1.upper()))
        self.assertFalse(verify_response(creds, "GET", ha1="0" * 64))

    def test_verify_needs_one_secret(self) -> None:
        """Giving both or neither of password and HA1 is a programming error."""
        creds = parse_credentials(RFC_AUTHORIZATION)
        self.assertRaises(ValueError, verify_response, creds, "GET")
        self.assertRaises(ValueError, verify_response, creds, "GET", password="x", ha1="y")

    def test_unknown_algorithm(self) -> None:
        """hash_hex refuses algorithms outside the table; verify says no."""
        self.assertRaises(ValueError, hash_hex, "SHA-1", b"x")
        creds = parse_credentials(RFC_AUTHORIZATION.replace("SHA-256", "SHA-512-256"))
        self.assertFalse(verify_response(creds, "GET", password=RFC_PASSWORD))

    def test_hash_hex_every_algorithm(self) -> None:
        """hash_hex gives hashlib's digest for each algorithm in the table, in any case."""
        for algorithm, name in HASHES.items():
            expected = hashlib.new(name, b"alice:example.com:secret").hexdigest()
            self.assertEqual(hash_hex(algorithm, "alice:example.com:secret"), expected)
            self.assertEqual(hash_hex(algorithm.lower(), b"alice:example.com:secret"), expected)

    def test_auth_int_covers_body(self) -> None:
        """With qop=auth-int a different body gives a different response."""
        first = compute_response(
            "MD5", "a" * 32, nonce="n", method="M", uri="u", qop="auth-int", nc=1, cnonce="c"
        )
        second = compute_response(
            "MD5",
            "a" * 32,
            nonce="n",
            method="M",
            uri="u",
            qop="auth-int",
            nc=1,
            cnonce="c",
            body=b"x",
        )
        self.assertNotEqual(first, second)

    def test_qop_needs_nc_and_cnonce(self) -> None:
        """compute_response with a qop but no nc is a programming error."""
        self.assertRaises(
            ValueError, compute_response, "MD5", "a", nonce="n", method="M", uri="u", qop="auth"
        )


class ParseTests(SynchronousTestCase):
    """
    The auth-param grammar of RFC 3261 section 25 / RFC 7235.
    """

    def test_escapes_and_empty_elements(self) -> None:
        """Quoted pairs unescape; empty list elements are skipped."""
        scheme, params = parse_auth_header('Digest  a="x\\"y\\\\z" ,, B=tok ,')
        self.assertEqual(scheme, "Digest")
        self.assertEqual(params, {"a": 'x"y\\z', "b": "tok"})

    def test_scheme_only(self) -> None:
        """A bare scheme has no parameters."""
        self.assertEqual(parse_auth_header("Digest"), ("Digest", {}))

    def test_plain_field(self) -> None:
        """A field as clients write it is split by the patterns, values as sent."""
        value = (
            'Digest username="alice", realm="example.com", nonce="a1b2", uri="sip:x@y;p=1",'
            ' response="0f", algorithm=MD5, qop=auth, nc=00000001, cnonce="c d"'
        )
        plain = _parse_plain(value)
        self.assertIsNotNone(plain)
        self.assertEqual(plain, _parse_auth_header(value))

    @settings(max_examples=400)
    @given(st.text(alphabet='Digest ab=",\\\t\r\n\x01\xe9', max_size=30))
    def test_patterns_agree(self, value: str) -> None:
        """The patterns accept only what the reader accepts, and read it the same way."""
        plain = _parse_plain("Digest " + value)
        if plain is not None:
            self.assertEqual(plain, _parse_auth_header("Digest " + value))

    def assertParseError(self, value: str, fragment: str) -> None:
        """Parsing C{value} fails with a reason mentioning C{fragment}."""
        e = self.assertRaises(DigestParseError, parse_auth_header, value)
        self.assertIn(fragment, e.reason)
        self.assertEqual(e.status, 400)

    def test_faults_named(self) -> None:
        """Each grammar fault gives a 400 whose reason names it."""
        self.assertParseError('Digest a="unterminated', "unterminated quoted string")
        self.assertParseError("Digest a=1, a=2", "appears twice")
        self.assertParseError("Digest a", "has no '='")
        self.assertParseError("Digest a=1 b=2", "expected ','")
        self.assertParseError('Digest a="x\x01"', "control character")
        self.assertParseError('Digest a="x\\', "quoted-pair")
        self.assertParseError("Digest a=", "a value for a")
        self.assertParseError("", "authentication scheme")
        self.assertParseError("Digest,a=1", "after scheme")

    def test_credentials_required_params(self) -> None:
        """Credentials lacking a required parameter are refused by name."""
        for name in ("username", "realm", "nonce", "uri", "response"):
            params = dict(username="u", realm="r", nonce="n", uri="sip:x", response="ab")
            del params[name]
            e = self.assertRaises(DigestParseError, DigestCredentials.from_params, params)
            self.assertIn(f"missing {name}", e.reason)

    def test_credentials_value_faults(self) -> None:
        """Malformed nc, response, qop without cnonce, userhash are refused."""
        base = 'Digest username="u", realm="r", nonce="n", uri="sip:x", response="ab"'
        cases = {
            base + ", qop=auth, cnonce=c": "without nc",
            base + ", qop=auth, nc=1": "8 hexadecimal",
            base + ", qop=auth, nc=00000001": "without cnonce",
            base.replace('"ab"', '"zz"'): "not hexadecimal",
            base + ", userhash=true": "userhash",
            base + ", username*=UTF-8''x": "username*",
            'Basic realm="r"': "not Digest",
        }
        for value, fragment in cases.items():
            e = self.assertRaises(DigestParseError, parse_credentials, value)
            self.assertIn(fragment, e.reason)

    def test_credentials_defaults(self) -> None:
        """Without algorithm the credentials say MD5; case is normalised."""
        creds = parse_credentials(
            'digest username="u", realm="r", nonce="n", uri="sip:x", response="AB", QOP=Auth, '
            "nc=0000000A, cnonce=c"
        )
        self.assertEqual((creds.algorithm, creds.qop, creds.nc), ("MD5", "auth", 10))
        self.assertEqual(creds.response, "ab")

    @settings(max_examples=200)
    @given(
        st.dictionaries(
            st.text("abcdefghijklmnopqrstuvwxyz-_", min_size=1, max_size=10),
            st.text(
                st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\x7f"),
                max_size=20,
            ),
            max_size=6,
        )
    )
    def test_round_trip(self, params: Dict[str, str]) -> None:
        """Any parameters, quoted with quote(), parse back unchanged."""
        value = "Digest " + ", ".join(f"{k}={quote(v)}" for k, v in params.items())
        self.assertEqual(parse_auth_header(value), ("Digest", params))

    @settings(max_examples=200)
    @given(st.text(max_size=60))
    def test_garbage_never_escapes(self, value: str) -> None:
        """Arbitrary text parses or fails with DigestParseError, nothing else."""
        try:
            scheme, _ = parse_auth_header(value)
        except DigestParseError as e:
            self.assertEqual(e.status, 400)
        else:
            self.assertTrue(scheme)


class ServerTests(SynchronousTestCase):
    """
    Challenges and verification by L{DigestServer}.
    """

    def setUp(self) -> None:
        self.server = DigestServer(
            SECRET, lifetime=60, algorithms=RFC8760_ALGORITHMS, random=counting_random()
        )

    def challenge(self, now: float = 1000.0, algorithm: str = "MD5") -> str:
        """The challenge the server issues for C{algorithm}."""
        for value in self.server.challenges(DOMAIN, now):
            if f"algorithm={algorithm}," in value:
                return value
        raise AssertionError(f"no {algorithm} challenge")

    def verify(self, authorization: str, now: float = 1001.0, **kwargs: object) -> None:
        """Run the server's full check on an Authorization value."""
        self.server.verify(
            parse_credentials(authorization),
            realm=DOMAIN,
            method="REGISTER",
            request_uri=URI,
            now=now,
            password="secret",
            **kwargs,  # type: ignore[arg-type]
        )

    def rejected(self, authorization: str, now: float = 1001.0) -> DigestRejectedError:
        """The rejection the server's check raises."""
        error: DigestRejectedError = self.assertRaises(
            DigestRejectedError, self.verify, authorization, now
        )
        return error

    def test_challenge_format(self) -> None:
        """One challenge per algorithm, in the given order, qop=auth, same nonce."""
        values = self.server.challenges(DOMAIN, 1000.0)
        self.assertEqual(RFC8760_ALGORITHMS, ("SHA-256", "MD5"))
        parsed = [parse_auth_header(v)[1] for v in values]
        self.assertEqual([p["algorithm"] for p in parsed], ["SHA-256", "MD5"])
        self.assertEqual({p["realm"] for p in parsed}, {DOMAIN})
        self.assertEqual({p["qop"] for p in parsed}, {"auth"})
        self.assertEqual(len({p["nonce"] for p in parsed}), 1)
        self.assertNotIn("stale", parsed[0])

    def test_default_md5_alone(self) -> None:
        """By default the one challenge is MD5, which every client can answer."""
        server = DigestServer(SECRET)
        self.assertEqual(server.algorithms, DEFAULT_ALGORITHMS)
        values = server.challenges(DOMAIN, 1000.0)
        self.assertEqual([parse_auth_header(v)[1]["algorithm"] for v in values], ["MD5"])

    def test_md5_first_order(self) -> None:
        """MD5 then SHA-256 when so configured: first-challenge-only peers get MD5."""
        server = DigestServer(SECRET, algorithms=["MD5", "SHA-256"])
        values = server.challenges(DOMAIN, 1000.0)
        self.assertEqual([parse_auth_header(v)[1]["algorithm"] for v in values], ["MD5", "SHA-256"])

    def test_stale_challenge(self) -> None:
        """A stale challenge carries stale=true."""
        values = self.server.challenges(DOMAIN, 1000.0, stale=True)
        self.assertEqual(parse_auth_header(values[0])[1]["stale"], "true")

    def test_nonces_unique(self) -> None:
        """Two challenges in the same second get different nonces."""
        self.assertNotEqual(
            self.server.make_nonce(DOMAIN, 5.0), self.server.make_nonce(DOMAIN, 5.0)
        )

    def test_md5_accepted(self) -> None:
        """A correct MD5 answer verifies."""
        self.verify(answer(self.challenge(algorithm="MD5")))
        self.assertEqual(len(self.server.counter), 1)

    def test_sha256_accepted(self) -> None:
        """A correct SHA-256 answer verifies."""
        self.verify(answer(self.challenge(algorithm="SHA-256")))
        self.assertEqual(len(self.server.counter), 1)

    def test_ha1_accepted(self) -> None:
        """The server verifies with a stored HA1 instead of a password."""
        ha1 = compute_ha1("MD5", "alice", DOMAIN, "secret")
        self.server.verify(
            parse_credentials(answer(self.challenge())),
            realm=DOMAIN,
            method="REGISTER",
            request_uri=URI,
            now=1001.0,
            ha1=ha1,
        )
        self.assertEqual(len(self.server.counter), 1)

    def test_auth_int_accepted(self) -> None:
        """qop=auth-int with the right body verifies."""
        authorization = answer(self.challenge(), qop="auth-int", body=b"v=0")
        self.verify(authorization, body=b"v=0")
        e = self.assertRaises(
            DigestRejectedError, self.verify, answer(self.challenge(), qop="auth-int"), body=b"x"
        )
        self.assertEqual(e.detail, "wrong credentials")

    def test_wrong_password(self) -> None:
        """A wrong password is refused, not stale, and records nothing."""
        e = self.rejected(answer(self.challenge(), password="guess"))
        self.assertEqual((e.detail, e.stale, e.status), ("wrong credentials", False, 401))
        self.assertEqual(len(self.server.counter), 0)

    def test_stale_after_expiry(self) -> None:
        """A right answer on an expired nonce is refused with stale=true."""
        e = self.rejected(answer(self.challenge(now=1000.0)), now=1061.0)
        self.assertEqual((e.detail, e.stale), ("nonce expired", True))

    def test_expired_and_wrong_not_stale(self) -> None:
        """A wrong answer on an expired nonce is not called stale."""
        e = self.rejected(answer(self.challenge(now=1000.0), password="guess"), now=1061.0)
        self.assertFalse(e.stale)

    def test_nonce_from_future_is_stale(self) -> None:
        """A nonce stamped well after now (clock went back) is stale."""
        e = self.rejected(answer(self.challenge(now=2000.0)), now=1000.0)
        self.assertTrue(e.stale)

    def test_replay_refused(self) -> None:
        """The same nonce count twice is refused; a higher one is accepted."""
        challenge = self.challenge()
        self.verify(answer(challenge, nc=1))
        e = self.rejected(answer(challenge, nc=1))
        self.assertIn("replayed", e.detail)
        self.assertIsInstance(e, DigestReplayError)
        self.assertFalse(e.stale)
        self.verify(answer(challenge, nc=2))
        self.assertIn("replayed", self.rejected(answer(challenge, nc=2)).detail)
        self.assertIn("replayed", self.rejected(answer(challenge, nc=1)).detail)

    def test_first_nc_may_skip(self) -> None:
        """A first use with nc above 1 is accepted (sipsak counts globally)."""
        self.verify(answer(self.challenge(), nc=7))
        self.assertEqual(len(self.server.counter), 1)

    def test_tampered_nonce(self) -> None:
        """A nonce with one digit changed fails its integrity check."""
        _, params = parse_auth_header(self.challenge())
        nonce = params["nonce"]
        tampered = nonce[:20] + ("0" if nonce[20] != "0" else "1") + nonce[21:]
        e = self.rejected(answer(self.challenge(), nonce=tampered))
        self.assertIn("not valid for realm", e.detail)
        self.assertFalse(e.stale)

    def test_malformed_nonce(self) -> None:
        """A nonce this server could never have issued is refused."""
        e = self.rejected(answer(self.challenge(), nonce="abc"))
        self.assertEqual(e.detail, "nonce was not issued by this server")

    def test_nonce_from_other_realm(self) -> None:
        """A nonce issued for another realm does not verify in this one."""
        other = self.server.challenges("example.org", 1000.0)[1]
        _, params = parse_auth_header(other)
        e = self.rejected(answer(self.challenge(), nonce=params["nonce"]))
        self.assertIn("not valid for realm example.com", e.detail)

    def test_nonce_from_other_secret(self) -> None:
        """A nonce from a server with another secret is refused."""
        other = DigestServer(b"x" * 32).challenges(DOMAIN, 1000.0)[0]
        _, params = parse_auth_header(other)
        self.rejected(answer(self.challenge(), nonce=params["nonce"]))

    def test_realm_mismatch(self) -> None:
        """Credentials for another realm are refused by name."""
        e = self.rejected(answer(self.challenge(), realm="example.org"))
        self.assertEqual(e.detail, "realm example.org is not example.com")

    def test_no_qop_refused(self) -> None:
        """RFC 2069 credentials (no qop) are refused: qop=auth is required."""
        e = self.rejected(answer(self.challenge(), qop=None))
        self.assertEqual(e.detail, "qop=auth is required")

    def test_unknown_qop_refused(self) -> None:
        """A qop other than auth or auth-int is refused."""
        e = self.rejected(answer(self.challenge(), qop="conf"))
        self.assertIn("qop conf", e.detail)

    def test_uri_mismatch(self) -> None:
        """A uri parameter that is not the Request-URI is a 400."""
        e = self.assertRaises(
            DigestParseError, self.verify, answer(self.challenge(), uri="sip:other.example")
        )
        self.assertEqual(e.status, 400)
        self.assertIn("Request-URI", e.reason)

    def test_opaque_mismatch(self) -> None:
        """A changed opaque is refused; an absent one is tolerated."""
        e = self.rejected(answer(self.challenge(), opaque="00"))
        self.assertEqual(e.detail, "opaque does not match")
        e = self.rejected(answer(self.challenge(), opaque="\u00e9t\u00e9"))
        self.assertEqual(e.detail, "opaque does not match")
        creds = parse_credentials(answer(self.challenge()))
        params = dict(creds.params)
        del params["opaque"]
        self.server.verify(
            DigestCredentials.from_params(params),
            realm=DOMAIN,
            method="REGISTER",
            request_uri=URI,
            now=1001.0,
            password="secret",
        )
        self.assertEqual(len(self.server.counter), 1)

    def test_algorithm_not_offered(self) -> None:
        """A server offering only MD5 refuses SHA-256 credentials."""
        md5_only = DigestServer(SECRET, algorithms=["md5"])
        self.assertEqual(md5_only.algorithms, ("MD5",))
        challenge = md5_only.challenges(DOMAIN, 1000.0)[0].replace("MD5", "SHA-256")
        e = self.assertRaises(
            DigestRejectedError,
            md5_only.verify,
            parse_credentials(answer(challenge)),
            realm=DOMAIN,
            method="REGISTER",
            request_uri=URI,
            now=1001.0,
            password="secret",
        )
        self.assertEqual(e.detail, "algorithm SHA-256 is not offered")

    def test_forgotten_nonce_stale_only_with_password(self) -> None:
        """A nonce the full table forgot is stale for a right answer only."""
        server = DigestServer(SECRET, lifetime=60, max_nonces=1, random=counting_random())
        first = server.challenges(DOMAIN, 1000.0)[0]
        second = server.challenges(DOMAIN, 1001.0)[0]

        def verify(authorization: str) -> None:
            server.verify(
                parse_credentials(authorization),
                realm=DOMAIN,
                method="REGISTER",
                request_uri=URI,
                now=1002.0,
                password="secret",
            )

        verify(answer(first))
        verify(answer(second))
        wrong = self.assertRaises(DigestRejectedError, verify, answer(first, nc=2, password="x"))
        self.assertEqual((wrong.detail, wrong.stale), ("wrong credentials", False))
        right = self.assertRaises(DigestRejectedError, verify, answer(first, nc=2))
        self.assertEqual((right.detail, right.stale), ("nonce expired", True))

    def test_constructor_checks(self) -> None:
        """Short secrets, empty or unknown algorithms and bad lifetimes fail."""
        self.assertRaises(ValueError, DigestServer, b"short")
        self.assertRaises(ValueError, DigestServer, SECRET, algorithms=["SHA-1"])
        self.assertRaises(ValueError, DigestServer, SECRET, algorithms=[])
        self.assertRaises(ValueError, DigestServer, SECRET, lifetime=0)
        self.assertEqual(len(DigestServer().opaque(DOMAIN)), 32)

    def test_nonce_mac_checked_once(self) -> None:
        """A nonce whose MAC was found right is not hashed again, in that realm only."""
        macs: List[bytes] = []
        real = self.server._mac

        def counted(stamp: bytes, realm: str) -> bytes:
            macs.append(stamp)
            return real(stamp, realm)

        self.server._mac = counted  # type: ignore[method-assign]
        nonce = self.server.make_nonce(DOMAIN, 1000.0)
        first = self.server.check_nonce(nonce, DOMAIN, 1001.0)
        self.assertEqual(self.server.check_nonce(nonce, DOMAIN.upper(), 1002.0), first)
        self.assertEqual(len(macs), 2)  # made once, checked once
        self.assertRaises(DigestRejectedError, self.server.check_nonce, nonce, "other.org", 1001.0)
        self.assertTrue(self.server.check_nonce(nonce, DOMAIN, 1000.0 + 61).stale)

    def test_tampered_nonce_after_genuine(self) -> None:
        """A tampered copy of a remembered nonce is still refused."""
        nonce = self.server.make_nonce(DOMAIN, 1000.0)
        self.server.check_nonce(nonce, DOMAIN, 1001.0)
        tampered = nonce[:-1] + ("0" if nonce[-1] != "0" else "1")
        self.assertRaises(DigestRejectedError, self.server.check_nonce, tampered, DOMAIN, 1001.0)

    def test_remembered_bounded(self) -> None:
        """At most VERIFIED_MAX checked nonces are remembered."""
        for i in range(VERIFIED_MAX + 5):
            self.server.check_nonce(self.server.make_nonce(DOMAIN, 1000.0 + i), DOMAIN, 1000.0)
        self.assertLessEqual(len(self.server._verified), VERIFIED_MAX)

    def test_opaque_remembered(self) -> None:
        """The opaque value is the same string for a realm however it is cased."""
        self.assertIs(self.server.opaque(DOMAIN), self.server.opaque(DOMAIN.upper()))
        self.assertNotEqual(self.server.opaque(DOMAIN), self.server.opaque("other.org"))


class NonceCounterTests(SynchronousTestCase):
    """
    The bounded table of nonce counts.
    """

    def test_expired_forgotten(self) -> None:
        """Entries whose nonce expired leave when a new one is recorded."""
        counter = NonceCounter(lifetime=10, max_nonces=100)
        counter.record("a", 0, 1, now=1)
        counter.record("b", 5, 1, now=20)
        self.assertEqual(len(counter), 1)

    def test_bounded_and_safe(self) -> None:
        """Past the bound the oldest goes, and its nonce turns stale."""
        counter = NonceCounter(lifetime=100, max_nonces=2)
        counter.record("a", 1, 1, now=3)
        counter.record("b", 2, 1, now=3)
        counter.record("c", 3, 1, now=3)
        self.assertEqual(len(counter), 2)
        e = self.assertRaises(DigestRejectedError, counter.check, "a", 1, 5)
        self.assertTrue(e.stale)
        counter.check("d", 4, 1)
        self.assertRaises(DigestRejectedError, counter.check, "c", 3, 1)

    def test_positive_bound(self) -> None:
        """A table of no entries is refused."""
        self.assertRaises(ValueError, NonceCounter, 10, 0)
