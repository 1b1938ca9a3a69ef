# -*- test-case-name: tests.unit.web.test_access -*-
"""
Tests for L{conference.web.access}.
"""

from __future__ import annotations

import base64
from typing import Tuple

from hypothesis import given
from hypothesis import strategies as st
from twisted.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
from twisted.trial.unittest import SynchronousTestCase

from conference.auth import make_portal
from conference.records import ConferenceRecord
from conference.web.access import Gate, Viewer, parse_basic
from tests.unit.web.fixture import digest_authorization


def basic(text: str) -> bytes:
    return b"Basic " + base64.b64encode(text.encode("utf-8"))


class ParseBasicTests(SynchronousTestCase):
    """
    The Authorization header.
    """

    def test_parse(self) -> None:
        """User and password come out; a password may contain colons."""
        self.assertEqual(parse_basic(basic("alice:a:b")), ("alice", "a:b"))

    def test_malformed(self) -> None:
        """Missing, other schemes, bad base64, no colon, no user: None."""
        for header in (None, b"", b"Digest x", b"Basic ***", basic("alice"), basic(":pw")):
            self.assertIsNone(parse_basic(header))

    @given(st.binary(max_size=100))
    def test_any_bytes(self, header: bytes) -> None:
        """Arbitrary headers never raise."""
        result = parse_basic(b"Basic " + header)
        self.assertTrue(result is None or isinstance(result, tuple))


class GateTests(SynchronousTestCase):
    """
    Logging in against the SIP portal, and CSRF tokens.
    """

    def setUp(self) -> None:
        checker = InMemoryUsernamePasswordDatabaseDontUse(alice=b"pw", root=b"pw")
        self.gate = Gate(
            make_portal([checker]),
            ["example.com", "other.org"],
            ["sip:root@example.com"],
            secret=b"k",
        )

    def test_login(self) -> None:
        """A right password gives the viewer's address; admins are marked."""
        self.assertEqual(
            self.successResultOf(self.gate.login(basic("alice:pw"))),
            Viewer("sip:alice@example.com", False),
        )
        self.assertEqual(
            self.successResultOf(self.gate.login(basic("root:pw"))),
            Viewer("sip:root@example.com", True),
        )

    def test_domain(self) -> None:
        """user@domain logs in to a served domain; an unserved one fails."""
        viewer = self.successResultOf(self.gate.login(basic("alice@OTHER.org:pw")))
        self.assertEqual(viewer, Viewer("sip:alice@other.org", False))
        self.assertIsNone(self.successResultOf(self.gate.login(basic("alice@evil.com:pw"))))

    def test_text_checker(self) -> None:
        """Users of strcred's memory: checker (str keys and passwords) log in too."""
        checker = InMemoryUsernamePasswordDatabaseDontUse()
        checker.users = {"dora": "pw"}  # type: ignore[dict-item]
        gate = Gate(make_portal([checker]), ["example.com"], [])
        viewer = self.successResultOf(gate.login(basic("dora:pw")))
        self.assertEqual(viewer, Viewer("sip:dora@example.com", False))
        self.assertIsNone(self.successResultOf(gate.login(basic("dora:no"))))

    def test_refused(self) -> None:
        """A wrong password or unknown user gives None, not a failure."""
        self.assertIsNone(self.successResultOf(self.gate.login(basic("alice:nope"))))
        self.assertIsNone(self.successResultOf(self.gate.login(basic("mallory:pw"))))

    def test_csrf(self) -> None:
        """A viewer's token checks for them only; a new secret changes it."""
        alice, root = Viewer("sip:alice@example.com"), Viewer("sip:root@example.com", True)
        token = self.gate.csrf_token(alice)
        self.assertTrue(self.gate.check_csrf(alice, token))
        self.assertFalse(self.gate.check_csrf(root, token))
        self.assertFalse(self.gate.check_csrf(alice, None))
        other = Gate(self.gate.portal, ["example.com"], [], secret=b"other")
        self.assertFalse(other.check_csrf(alice, token))

    @given(st.text(max_size=80))
    def test_csrf_any_text(self, token: str) -> None:
        """Any submitted token (non-ASCII, surrogates) is refused, never an error."""
        self.assertFalse(self.gate.check_csrf(Viewer("sip:alice@example.com"), token))

    def test_rights(self) -> None:
        """Organizer and owner act, attendees only see, admins do both."""
        record = ConferenceRecord(
            uri="sip:c@example.com",
            uid="u",
            organizer="sip:alice@example.com",
            calendar=b"",
            owner="sip:olga@example.com",
        )
        attendees = ["sip:bob@example.com"]
        for aor, see, act in (
            ("sip:alice@example.com", True, True),
            ("sip:olga@example.com", True, True),
            ("sip:bob@example.com", True, False),
            ("sip:carol@example.com", False, False),
        ):
            viewer = Viewer(aor)
            self.assertEqual(
                (viewer.may_see(record, attendees), viewer.may_act_on(record)), (see, act)
            )
        admin = Viewer("sip:root@example.com", True)
        self.assertTrue(admin.may_see(record, attendees) and admin.may_act_on(record))


class DigestLoginTests(SynchronousTestCase):
    """
    HTTP digest (RFC 7616) against the SIP portal: the SIP digest code with
    the first domain as realm.
    """

    def setUp(self) -> None:
        checker = InMemoryUsernamePasswordDatabaseDontUse(alice=b"pw")
        self.now = 1_000_000.0
        self.gate = Gate(
            make_portal([checker]), ["example.com"], [], secret=b"k", clock=lambda: self.now
        )

    def header(self, nc: int = 1, uri: str = "/", password: str = "pw") -> bytes:
        """Digest credentials answering a fresh challenge."""
        challenge = self.gate.challenges(basic=False)[0].decode()
        return digest_authorization(challenge, "alice", password, uri, nc=nc).encode()

    def test_login(self) -> None:
        """A right digest gives the viewer, even where basic is not accepted."""
        viewer = self.successResultOf(self.gate.login(self.header(), b"GET", b"/", basic=False))
        self.assertEqual(viewer, Viewer("sip:alice@example.com"))

    def test_replay(self) -> None:
        """The same nonce count again is refused (a replayed Authorization)."""
        header = self.header()
        self.assertIsNotNone(self.successResultOf(self.gate.login(header, b"GET", b"/")))
        self.assertIsNone(self.successResultOf(self.gate.login(header, b"GET", b"/")))

    def test_stale(self) -> None:
        """An old nonce is refused as stale, so the next challenge says stale=true."""
        header = self.header()
        self.now += 3600
        done = self.successResultOf(self.gate.authenticate(header, b"GET", b"/"))
        self.assertEqual((done.viewer, done.outcome, done.stale), (None, "stale", True))
        self.assertIn(b"stale=true", self.gate.challenges(basic=False, stale=True)[0])

    def test_md5(self) -> None:
        """The MD5 challenge, answered with MD5, logs in too (older clients and tools)."""
        challenge = self.gate.challenges(basic=False)[1].decode()
        self.assertIn("algorithm=MD5", challenge)
        header = digest_authorization(challenge, "alice", "pw", "/", algorithm="MD5").encode()
        viewer = self.successResultOf(self.gate.login(header, b"GET", b"/", basic=False))
        self.assertEqual(viewer, Viewer("sip:alice@example.com"))

    def outcome(self, header: bytes, uri: bytes = b"/", *, basic: bool = True) -> Tuple[str, str]:
        """The (scheme, outcome) of one attempt, no viewer unless ok."""
        done = self.successResultOf(self.gate.authenticate(header, b"GET", uri, basic=basic))
        self.assertEqual(done.viewer is not None, done.outcome == "ok")
        return (done.scheme, done.outcome)

    def test_outcomes(self) -> None:
        """Each attempt is told apart and counted: ok, wrong, replayed, stale, bad-uri..."""
        header = self.header()
        self.assertEqual(self.outcome(header), ("digest", "ok"))
        self.assertEqual(self.outcome(header), ("digest", "replayed"))
        self.assertEqual(self.outcome(self.header(password="x")), ("digest", "wrong"))
        self.assertEqual(self.outcome(self.header(), b"/other"), ("digest", "bad-uri"))
        self.assertEqual(self.outcome(b'Digest username="alice'), ("digest", "malformed"))
        forged = self.header().replace(b'realm="example.com"', b'realm="example.org"')
        self.assertEqual(self.outcome(forged), ("digest", "wrong"))
        self.assertEqual(self.outcome(b""), ("none", "missing"))
        self.assertEqual(self.outcome(b"Bearer x"), ("other", "malformed"))
        self.assertEqual(self.outcome(basic("alice:pw"), basic=False), ("basic", "insecure"))
        self.assertEqual(self.outcome(basic("alice:pw")), ("basic", "ok"))
        self.assertEqual(self.outcome(basic("alice:no")), ("basic", "wrong"))
        self.assertEqual(self.outcome(b"Basic !!"), ("basic", "malformed"))
        stale = self.header()
        self.now += 3600
        self.assertEqual(self.outcome(stale), ("digest", "stale"))
        self.assertEqual(self.gate.logins[("digest", "ok")], 1)
        self.assertEqual(self.gate.logins[("digest", "replayed")], 1)
        self.assertEqual(sum(self.gate.logins.values()), 13)

    @given(st.binary(max_size=200))
    def test_any_digest_bytes(self, tail: bytes) -> None:
        """Arbitrary digest headers never raise and never log in."""
        done = self.successResultOf(self.gate.authenticate(b"Digest " + tail, b"GET", b"/"))
        self.assertIsNone(done.viewer)

    def test_other_uri_or_method(self) -> None:
        """A digest for another URI or method does not log in."""
        self.assertIsNone(self.successResultOf(self.gate.login(self.header(), b"GET", b"/x")))
        self.assertIsNone(self.successResultOf(self.gate.login(self.header(), b"POST", b"/")))

    def test_basic_refused_when_not_allowed(self) -> None:
        """Basic credentials, right or not, are refused where basic is not accepted."""
        self.assertIsNone(self.successResultOf(self.gate.login(basic("alice:pw"), basic=False)))
