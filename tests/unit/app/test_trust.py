# -*- test-case-name: tests.unit.app.test_trust -*-
"""
Tests for L{conference.app.trust} and the hostile cases: S/MIME
bodies opened and correlated with the calendar before the iTIP engine
runs, SENT-BY approvals made by BIND, replayed digest nonces, and the
server's own signatures on 200, 486 and iTIP MESSAGE calendar parts.

Every hostile case checks the documented answer (docs/trust.rst) and
that no store changed.  A flood from one source is covered by
L{tests.unit.test_limits}.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any, Dict, List, Optional, Sequence, Tuple

from twisted.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
from twisted.trial.unittest import SynchronousTestCase

from conference.app.calendarbody import ACCEPTED_TYPES, parse_calendar_body
from conference.app.trust import (
    SMIME_TYPES,
    TrustSettings,
    acting_addresses,
    authority,
    load_trust_settings,
    open_body,
    signer_identity,
)
from conference.calendar import parse_ical_calendar
from conference.service import ConferenceService, ServerConfig
from conference.sip.digest import compute_ha1, compute_response, parse_auth_header
from conference.sip.errors import RemoteProtocolError
from conference.sip.headers import parse_media_type, parse_warning
from conference.sip.message import Response
from conference.sip.multipart import parse_multipart
from conference.sip.transaction import Peer
from conference.smime import (
    Credentials,
    SMIMEConfigError,
    entity_bytes,
    envelope,
    sign_part,
    verify_signed,
)
from conference.testing import memory_stores
from tests.builders import request_bytes
from tests.unit.app.calendars import T0, conference_calendar, conference_ical, conference_record
from tests.unit.app.test_scheduler import (
    ALICE,
    BOB,
    CAROL,
    ROOM,
    XCAL,
    Harness,
    partstat,
    reply_ical,
    warning,
    xcal,
)
from tests.unit.smime.pki import Identity, make_user, pki, write
from tests.unit.test_service import UDPMemoryReactor
from tests.unit.test_unauthenticated import RecordingSender, snapshot

_EXTRA: Dict[str, Identity] = {}


def person(name: str) -> Identity:
    """A certificate of the test CA for C{sip:NAME@example.com}, made once."""
    if name not in _EXTRA:
        _EXTRA[name] = make_user(pki().ca, [f"sip:{name}@example.com"], common=name)
    return _EXTRA[name]


def signed(who: Identity, body: bytes, content_type: str = XCAL) -> Tuple[str, bytes]:
    """C{body} as a multipart/signed by C{who}."""
    return sign_part(content_type, body, cert=who.cert, key=who.key)


def settings(*, require: bool = False, creds: bool = True, ca: bool = True) -> TrustSettings:
    """S/MIME settings over the test PKI, with the server's credentials."""
    p = pki()
    credentials = Credentials(p.server.cert, p.server.key) if creds else None
    return TrustSettings(p.trust if ca else None, credentials, require)


def trusted(h: Harness, trust: TrustSettings) -> Harness:
    """Give a scheduler harness S/MIME settings."""
    h.handler.trust = trust
    h.handler.accepts = {"MESSAGE": ACCEPTED_TYPES + SMIME_TYPES}
    return h


def refusal_of(call: Any) -> RemoteProtocolError:
    """The error C{call} raises."""
    try:
        call()
    except RemoteProtocolError as e:
        return e
    raise AssertionError("no error raised")


def warning_text(error: RemoteProtocolError) -> str:
    """The Warning text an error carries."""
    values = [v for n, v in error.headers if n == "Warning"]
    assert values, error
    return parse_warning(values[0])[0].text


class SettingsTests(SynchronousTestCase):
    """Loading the S/MIME options."""

    def setUp(self) -> None:
        p = pki()
        folder = self.mktemp()
        self.ca = write(folder, "ca.pem", p.ca.cert_pem())
        self.cert = write(folder, "server.pem", p.server.cert_pem())
        self.key = write(folder, "server.key", p.server.key_pem(b"pw"))

    def test_load(self) -> None:
        """A CA, a certificate and its key (with password) load; credentials sign."""
        loaded = load_trust_settings(self.ca, self.cert, self.key, "pw", require_signature=True)
        self.assertTrue(loaded.enabled and loaded.require_signature)
        self.assertIsNotNone(loaded.credentials)
        self.assertIsNotNone(loaded.signer)

    def test_nothing(self) -> None:
        """Without options S/MIME is off and nothing signs."""
        nothing = load_trust_settings()
        self.assertFalse(nothing.enabled)
        self.assertIsNone(nothing.signer)

    def test_errors(self) -> None:
        """Each inconsistent or unreadable setting names the option."""
        cases = [
            ((None, self.cert, None, None, False), "--smime-cert and --smime-key"),
            ((None, None, None, "pw", False), "--smime-key-password needs"),
            ((None, None, None, None, True), "--require-signature needs --smime-ca"),
            (("/nonexistent.pem", None, None, None, False), "--smime-ca /nonexistent.pem"),
            ((None, self.cert, self.key, "wrong", False), "--smime-cert"),
        ]
        for (ca, cert, key, password, require), text in cases:
            with self.assertRaises(SMIMEConfigError) as caught:
                load_trust_settings(ca, cert, key, password, require_signature=require)
            self.assertIn(text, str(caught.exception))


class OpenBodyTests(SynchronousTestCase):
    """L{open_body}: S/MIME layers removed, faults answered with Warnings."""

    def setUp(self) -> None:
        self.body = xcal(conference_ical())
        self.now = T0.timestamp()

    def open(self, content_type: str, body: bytes, trust: Optional[TrustSettings] = None) -> Any:
        return open_body(trust or settings(), body, content_type, agent="example.com", now=self.now)

    def test_plain(self) -> None:
        """A body that is not S/MIME comes back unchanged and unsigned."""
        opened = self.open(XCAL, self.body)
        self.assertEqual((opened.body, opened.signer), (self.body, None))

    def test_signed(self) -> None:
        """A multipart/signed by Alice gives the calendar and Alice's identities."""
        opened = self.open(*signed(pki().alice, self.body))
        self.assertEqual(opened.content_type.mime, XCAL)
        self.assertIn("sip:alice@example.com", opened.signer.identities)
        self.assertEqual(
            parse_calendar_body(opened.body, opened.content_type, agent="x").method, "REQUEST"
        )

    def test_encrypted_then_signed(self) -> None:
        """An envelope to the server around a signature opens to the signer's calendar."""
        ctype, body = signed(pki().alice, self.body)
        outer = envelope(entity_bytes(ctype, body), [pki().server.cert])
        opened = self.open(*outer)
        self.assertTrue(opened.encrypted)
        self.assertIn("sip:alice@example.com", opened.signer.identities)

    def test_undecipherable(self) -> None:
        """Encrypted data with no server key configured is 493 with a Warning."""
        outer = envelope(entity_bytes(XCAL, self.body), [pki().server.cert])
        error = refusal_of(lambda: self.open(*outer, trust=settings(creds=False)))
        self.assertEqual(error.status, 493)
        self.assertIn("cannot decrypt", warning_text(error))

    def test_altered(self) -> None:
        """A body changed after signing is 403 with the digest fault in the Warning."""
        ctype, body = signed(pki().alice, self.body)
        error = refusal_of(lambda: self.open(ctype, body.replace(b"alice@", b"alixe@")))
        self.assertEqual(error.status, 403)
        self.assertIn("S/MIME signature refused", warning_text(error))

    def test_no_ca(self) -> None:
        """Without --smime-ca a signature cannot be checked: 403, said so."""
        error = refusal_of(lambda: self.open(*signed(pki().alice, self.body), settings(ca=False)))
        self.assertEqual((error.status, warning_text(error)), (403, NO_TRUST_TEXT))

    def test_malformed(self) -> None:
        """Garbage pkcs7-mime is 400 with a Warning."""
        error = refusal_of(
            lambda: self.open("application/pkcs7-mime; smime-type=signed-data", b"garbage")
        )
        self.assertEqual(error.status, 400)
        self.assertIn("bad S/MIME body", warning_text(error))

    def test_other_protocol(self) -> None:
        """A multipart/signed of another protocol is 415 with Accept."""
        ctype = 'multipart/signed; protocol="application/pgp-signature"; boundary=b'
        error = refusal_of(lambda: self.open(ctype, b"--b\r\n\r\nx\r\n--b\r\n\r\ny\r\n--b--\r\n"))
        self.assertEqual(error.status, 415)


NO_TRUST_TEXT = "S/MIME signature cannot be checked: no trusted CA configured"


class CorrelationTests(SynchronousTestCase):
    """Which identity the iTIP engine gets (iSIP section 3, steps 1-5)."""

    def body(self, text: str) -> Any:
        return parse_calendar_body(text.encode(), "text/calendar", agent="x")

    def test_acting_addresses(self) -> None:
        """Organizer methods name the ORGANIZER (and SENT-BY); REPLY the ATTENDEE."""
        calendar = parse_ical_calendar(
            conference_ical().replace("ORGANIZER;", 'ORGANIZER;SENT-BY="sip:dave@example.com";')
        )
        self.assertEqual(
            acting_addresses(calendar, "REQUEST"),
            ("ORGANIZER", ["sip:alice@example.com", "sip:dave@example.com"]),
        )
        reply = parse_ical_calendar(reply_ical("sip:bob@example.com", "ACCEPTED"))
        self.assertEqual(acting_addresses(reply, "REPLY"), ("ATTENDEE", ["sip:bob@example.com"]))

    def test_signer_identity_matching(self) -> None:
        """Of several identities, the one that is the ORGANIZER is chosen (normalised)."""
        who = make_user(
            pki().ca, ["sip:zed@example.com", "sip:alice@EXAMPLE.com;transport=tls"], common="multi"
        )
        ctype, body = signed(who, b"x", "text/plain")
        signer = open_body(settings(), body, ctype, agent="x", now=T0.timestamp()).signer
        assert signer is not None
        calendar = conference_calendar()
        self.assertEqual(signer_identity(signer, calendar, "REQUEST"), "sip:alice@example.com")
        other = conference_calendar(organizer="sip:nobody@example.com")
        self.assertEqual(signer_identity(signer, other, "REQUEST"), "sip:alice@example.com")

    def test_unsigned(self) -> None:
        """Unsigned: the digest identity counts, unless signatures are required (403)."""
        body = self.body(conference_ical())
        self.assertEqual(
            authority(settings(), body, None, "sip:alice@example.com", agent="x"),
            "sip:alice@example.com",
        )
        error = refusal_of(
            lambda: authority(settings(require=True), body, None, "sip:a@x", agent="x")
        )
        self.assertEqual(error.status, 403)
        self.assertEqual(warning_text(error), "iTIP must be S/MIME-signed on this server")

    def test_signer_wins(self) -> None:
        """Signed by Alice but digest-authenticated as Bob: Alice counts (logged)."""
        ctype, data = signed(pki().alice, xcal(conference_ical()))
        opened = open_body(settings(), data, ctype, agent="x", now=T0.timestamp())
        body = self.body(conference_ical())
        found = authority(settings(), body, opened.signer, "sip:bob@example.com", agent="x")
        self.assertEqual(found, "sip:alice@example.com")


class SignedSchedulingTests(SynchronousTestCase):
    """
    Signed MESSAGEs through the scheduler, and the hostile cases that need
    no SIP layer: each refused with its Warning, no store changed.
    """

    def setUp(self) -> None:
        self.h = trusted(Harness(), settings())

    def send(self, pair: Tuple[str, bytes], identity: Any = ALICE) -> Response:
        ctype, body = pair
        return self.h.message(body, identity, ROOM, content_type=ctype)

    def refused(self, pair: Tuple[str, bytes], identity: Any, code: int = 403) -> str:
        before = snapshot(self.h.stores)
        response = self.send(pair, identity)
        self.assertEqual(response.code, code)
        self.assertEqual(snapshot(self.h.stores), before)
        self.assertEqual(self.h.outgoing(), [])
        return warning(response)

    def test_signed_request(self) -> None:
        """A REQUEST signed by its ORGANIZER creates the conference."""
        self.assertEqual(self.send(signed(pki().alice, xcal(conference_ical()))).code, 200)
        record = self.h.record()
        assert record is not None
        self.assertEqual(record.organizer, "sip:alice@example.com")

    def test_digest_bob_organizer_alice(self) -> None:
        """Hostile: valid digest as Bob, unsigned, ORGANIZER Alice: 403 (iTIP 3.8)."""
        text = self.refused((XCAL, xcal(conference_ical())), BOB)
        self.assertIn("not the ORGANIZER sip:alice@example.com", text)

    def test_signed_by_other_identity(self) -> None:
        """Hostile: Alice's digest, body signed by Bob, ORGANIZER Alice: 403."""
        text = self.refused(signed(person("bob"), xcal(conference_ical())), ALICE)
        self.assertEqual(
            text, "S/MIME signer sip:bob@example.com is not the ORGANIZER sip:alice@example.com"
        )

    def test_reply_for_another_attendee(self) -> None:
        """Hostile: a REPLY for Bob, signed by Carol (or digest as Carol): 403."""
        self.assertEqual(self.send(signed(pki().alice, xcal(conference_ical()))).code, 200)
        self.h.outgoing()
        reply = xcal(reply_ical("sip:bob@example.com", "DECLINED"))
        text = self.refused(signed(person("carol"), reply), CAROL)
        self.assertIn("is not the ATTENDEE sip:bob@example.com", text)
        text = self.refused((XCAL, reply), CAROL)
        self.assertIn("3.8", text)
        self.assertEqual(partstat(self.h.record(), "sip:bob@example.com"), "NEEDS-ACTION")

    def test_signed_reply(self) -> None:
        """Bob's signed REPLY is applied even over Carol's digest identity."""
        self.send(signed(pki().alice, xcal(conference_ical())))
        reply = xcal(reply_ical("sip:bob@example.com", "ACCEPTED"))
        self.assertEqual(self.send(signed(person("bob"), reply), CAROL).code, 200)
        self.assertEqual(partstat(self.h.record(), "sip:bob@example.com"), "ACCEPTED")

    def test_expired(self) -> None:
        """Hostile: a certificate that expired: 403 naming the expiry."""
        text = self.refused(signed(pki().expired, xcal(conference_ical())), ALICE)
        self.assertIn("expired", text)

    def test_untrusted(self) -> None:
        """Hostile: Mallory's certificate for Alice from an untrusted CA: 403."""
        text = self.refused(signed(pki().mallory, xcal(conference_ical())), ALICE)
        self.assertIn("S/MIME signature refused", text)

    def test_altered(self) -> None:
        """Hostile: a body altered after signing: 403."""
        ctype, body = signed(pki().alice, xcal(conference_ical()))
        text = self.refused((ctype, body.replace(b"alice@", b"alixe@")), ALICE)
        self.assertIn("S/MIME signature refused", text)

    def test_require_signature(self) -> None:
        """With signatures required, Alice's own unsigned REQUEST is 403."""
        trusted(self.h, settings(require=True))
        text = self.refused((XCAL, xcal(conference_ical())), ALICE)
        self.assertEqual(text, "iTIP must be S/MIME-signed on this server")

    def test_off_is_415(self) -> None:
        """A server without S/MIME settings answers S/MIME bodies 415."""
        h = Harness()
        ctype, body = signed(pki().alice, xcal(conference_ical()))
        self.assertEqual(h.message(body, ALICE, ROOM, content_type=ctype).code, 415)

    def test_itip_messages_signed(self) -> None:
        """With credentials the conference's REPLY MESSAGE is signed by the server."""
        self.h.messenger.sign = settings().signer
        self.send(signed(pki().alice, xcal(conference_ical())))
        self.h.clock.advance(0)
        ((request, _),) = self.h.sender.sent
        ctype = request.header("content-type")
        assert ctype is not None
        verified = verify_signed(ctype, request.body, trust=pki().trust, now=T0.timestamp())
        self.assertIn("sip:conference@example.com", verified.signer.identities)
        self.assertEqual(verified.content_type.params.get("method"), "REPLY")


# Through the whole service ------------------------------------------------------

PEER = Peer("UDP", "192.0.2.60", 5062)
CONTACT = ("Contact", "<sip:alice@192.0.2.60:5062>")
USERS = {"alice": b"secret", "bob": b"secret", "dave": b"secret"}
SDP = (
    b"v=0\r\no=- 1 1 IN IP4 192.0.2.60\r\ns=-\r\nc=IN IP4 192.0.2.60\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


class ServiceHarness:
    """
    A L{ConferenceService} over memory stores and a memory reactor at T0,
    with a client that answers digest challenges.
    """

    def __init__(self, test: SynchronousTestCase, **config: Any) -> None:
        self.test = test
        self.reactor = UDPMemoryReactor()
        self.reactor.advance(T0.timestamp())
        self.stores = memory_stores()
        checker = InMemoryUsernamePasswordDatabaseDontUse(**USERS)
        self.service = ConferenceService(
            ServerConfig(
                listen=["tcp:0:interface=192.0.2.10"],
                domains=["example.com"],
                store="memory",
                checkers=[checker],
                **config,
            ),
            reactor=self.reactor,
            stores=self.stores,
        )
        self.service.startService()
        test.successResultOf(self.service.ready)
        self.sender = RecordingSender()
        self.service.sip.add_sender(None, self.sender)
        self.last_authorization = ""
        test.addCleanup(self.service.stopService)

    def raw(self, data: bytes) -> Response:
        count = len(self.sender.sent)
        self.service.sip.datagram_received(data, PEER)
        finals = [r for r in self.sender.responses()[count:] if r.code >= 200]
        assert finals, "no final response"
        return finals[-1]

    def build(
        self,
        method: str,
        uri: str,
        headers: Sequence[Tuple[str, str]] = (),
        body: bytes = b"",
        *,
        user: str = "alice",
        authorization: Optional[str] = None,
    ) -> bytes:
        extra = list(headers)
        if authorization is not None:
            extra.append(("Authorization", authorization))
        return request_bytes(
            method,
            uri,
            branch="z9hG4bK" + secrets.token_hex(8),
            call_id=secrets.token_hex(8),
            via_host="192.0.2.60:5062",
            from_=f"<sip:{user}@example.com>;tag={secrets.token_hex(4)}",
            headers=extra,
            body=body,
        )

    def request(
        self,
        method: str,
        uri: str,
        headers: Sequence[Tuple[str, str]] = (),
        body: bytes = b"",
        user: str = "alice",
    ) -> Response:
        """Send a request; answer a 401 with MD5 digest (qop=auth, nc 1)."""
        response = self.raw(self.build(method, uri, headers, body, user=user))
        if response.code != 401:
            return response
        challenge = next(
            params
            for _, params in (
                parse_auth_header(v) for v in response.header_fields("www-authenticate")
            )
            if params.get("algorithm", "MD5").upper() == "MD5"
        )
        realm, nonce, cnonce = challenge["realm"], challenge["nonce"], secrets.token_hex(4)
        ha1 = compute_ha1("MD5", user, realm, USERS[user].decode())
        digest = compute_response(
            "MD5", ha1, nonce=nonce, method=method, uri=uri, qop="auth", nc=1, cnonce=cnonce
        )
        self.last_authorization = (
            f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
            f'response="{digest}", algorithm=MD5, qop=auth, nc=00000001, cnonce="{cnonce}"'
        )
        return self.raw(
            self.build(method, uri, headers, body, user=user, authorization=self.last_authorization)
        )

    def schedule(self, user: str = "alice", pair: Optional[Tuple[str, bytes]] = None) -> Response:
        ctype, body = pair or (XCAL, xcal(conference_ical(start=T0 + timedelta(days=1))))
        return self.request("MESSAGE", ROOM, [("Content-Type", ctype)], body, user)

    def bind(self, headers: Sequence[Tuple[str, str]]) -> Response:
        return self.request(
            "BIND",
            "sip:alice@example.com",
            [("Contact", "<sip:alice@192.0.2.60:5062>"), *headers],
        )

    def record(self) -> Any:
        return self.test.successResultOf(self.stores.conferences.get(ROOM))


def delegated() -> Tuple[str, bytes]:
    """Alice's REQUEST sent by Dave (SENT-BY), unsigned."""
    text = conference_ical(start=T0 + timedelta(days=1)).replace(
        "ORGANIZER;CN=Alice:", 'ORGANIZER;CN=Alice;SENT-BY="sip:dave@example.com":'
    )
    return XCAL, xcal(text)


class ServiceTrustTests(SynchronousTestCase):
    """Hostile cases through digest, BIND and the scheduler of the service."""

    def test_replayed_nonce(self) -> None:
        """Hostile: replaying a used nonce count (new transaction) is 401; nothing changes."""
        s = ServiceHarness(self)
        self.assertEqual(s.schedule().code, 200)
        before = snapshot(s.stores)
        body = xcal(conference_ical(start=T0 + timedelta(days=1), sequence=1))
        replay = s.build(
            "MESSAGE", ROOM, [("Content-Type", XCAL)], body, authorization=s.last_authorization
        )
        response = s.raw(replay)
        self.assertEqual(response.code, 401)
        self.assertEqual(snapshot(s.stores), before)

    def test_sent_by_approval_by_bind(self) -> None:
        """Alice's sent-by BIND lets Dave schedule for her; withdrawing it refuses him."""
        s = ServiceHarness(self)
        before = snapshot(s.stores)
        response = s.schedule("dave", delegated())
        self.assertEqual(response.code, 403)  # Hostile: SENT-BY without approval.
        self.assertIn("approved delegate", warning(response))
        self.assertEqual(snapshot(s.stores), before)
        binding = ("Binding", "<sip:dave@example.com>;disposition=sent-by;expires=600")
        self.assertEqual(s.bind([binding]).code, 200)
        self.assertEqual(s.schedule("dave", delegated()).code, 200)
        self.assertEqual(s.record().organizer, "sip:alice@example.com")
        gone = ("Binding", "<sip:dave@example.com>;disposition=sent-by;expires=0")
        self.assertEqual(s.bind([gone]).code, 200)
        before = snapshot(s.stores)
        update = xcal(
            conference_ical(start=T0 + timedelta(days=1), sequence=1).replace(
                "ORGANIZER;CN=Alice:", 'ORGANIZER;CN=Alice;SENT-BY="sip:dave@example.com":'
            )
        )
        response = s.schedule("dave", (XCAL, update))
        self.assertEqual(response.code, 403)
        self.assertEqual(snapshot(s.stores), before)

    def test_sent_by_expired(self) -> None:
        """Hostile: SENT-BY after the approval's expiry is 403; nothing changes."""
        s = ServiceHarness(self)
        binding = ("Binding", "<sip:dave@example.com>;disposition=sent-by;expires=60")
        self.assertEqual(s.bind([binding]).code, 200)
        s.reactor.advance(61)
        before = snapshot(s.stores)
        response = s.schedule("dave", delegated())
        self.assertEqual(response.code, 403)
        self.assertIn("approved delegate", warning(response))
        self.assertEqual(snapshot(s.stores), before)

    def test_sent_by_needs_digest(self) -> None:
        """A sent-by BIND without credentials is challenged and stores nothing."""
        s = ServiceHarness(self)
        before = snapshot(s.stores)
        data = s.build(
            "BIND",
            "sip:alice@example.com",
            [("Binding", "<sip:dave@example.com>;disposition=sent-by;expires=600")],
        )
        self.assertEqual(s.raw(data).code, 401)
        self.assertEqual(snapshot(s.stores), before)


class ServiceSigningTests(SynchronousTestCase):
    """The service with S/MIME options: signed scheduling, signed answers."""

    def setUp(self) -> None:
        p = pki()
        folder = self.mktemp()
        self.s = ServiceHarness(
            self,
            smime_ca=write(folder, "ca.pem", p.ca.cert_pem()),
            smime_cert=write(folder, "server.pem", p.server.cert_pem()),
            smime_key=write(folder, "server.key", p.server.key_pem()),
        )

    def calendar_part(self, response: Response) -> Any:
        ctype = response.header("content-type")
        assert ctype is not None
        media = parse_media_type(ctype)
        if media.mime == "multipart/signed":
            return verify_signed(media, response.body, trust=pki().trust, now=T0.timestamp())
        (part,) = [
            p
            for p in parse_multipart(response.body, media).parts
            if p.media_type.mime != "application/sdp"
        ]
        return verify_signed(part.media_type, part.body, trust=pki().trust, now=T0.timestamp())

    def test_signed_schedule(self) -> None:
        """A MESSAGE signed by Alice schedules through the service."""
        pair = signed(pki().alice, xcal(conference_ical(start=T0 + timedelta(days=1))))
        self.assertEqual(self.s.schedule("alice", pair).code, 200)
        self.assertIsNotNone(self.s.record())

    def test_join_200_signed_and_cached(self) -> None:
        """The join's VEVENT part is signed by the server, once per cache entry."""
        record = conference_record(conference_calendar(), ROOM)
        self.successResultOf(self.s.stores.conferences.put(record, None))
        focus = self.s.service.focus
        calls: List[int] = []
        sign = focus.calendars.sign
        assert sign is not None

        def counting(ctype: str, body: bytes) -> Tuple[str, bytes]:
            calls.append(1)
            return sign(ctype, body)

        focus.calendars.sign = counting
        accept = [("Accept", "application/sdp, application/calendar+xml")]
        sdp = [("Content-Type", "application/sdp"), CONTACT, *accept]
        first = self.s.request("INVITE", ROOM, sdp, SDP)
        self.assertEqual(first.code, 200, str(first))
        verified = self.calendar_part(first)
        self.assertIn("sip:conference@example.com", verified.signer.identities)
        self.assertEqual(verified.content_type.mime, XCAL)
        self.assertEqual(len(calls), 1)
        again = focus.calendars.part(record, conference_calendar(), _instance(), XCAL, 0.0)
        self.assertEqual(len(calls), 1)  # the cached signed part
        self.assertEqual(again[0].split(";", 1)[0], "multipart/signed")

    def test_486_signed(self) -> None:
        """A conference not open yet answers 486 with a server-signed VFREEBUSY."""
        later = conference_calendar(start=T0 + timedelta(days=2))
        self.successResultOf(self.s.stores.conferences.put(conference_record(later, ROOM), None))
        headers = [
            ("Content-Type", "application/sdp"),
            ("Accept", "application/sdp, text/calendar"),
        ]
        busy = self.s.request("INVITE", ROOM, headers, SDP)
        self.assertEqual(busy.code, 486)
        verified = self.calendar_part(busy)
        self.assertIn(b"VFREEBUSY", verified.body)


def _instance() -> Any:
    from conference.app.conferences import current_instance

    found = current_instance(conference_calendar(), T0)
    assert found is not None
    return found


class OptionsTests(SynchronousTestCase):
    """The S/MIME options of C{twistd conference}."""

    def setUp(self) -> None:
        p = pki()
        folder = self.mktemp()
        self.ca = write(folder, "ca.pem", p.ca.cert_pem())
        self.cert = write(folder, "server.pem", p.server.cert_pem())
        self.key = write(folder, "server.key", p.server.key_pem(b"pw"))
        self.password = write(folder, "password.txt", b"pw\n")

    def parse(self, *args: str) -> Any:
        from conference.tap import Options

        options = Options()
        options.parseOptions(list(args))
        return options

    def test_config(self) -> None:
        """The options reach the ServerConfig; the password file's first line is read."""
        from conference.tap import config_from_options

        options = self.parse(
            "--smime-ca", self.ca, "--smime-cert", self.cert, "--smime-key", self.key,
            "--smime-key-password-file", self.password, "--require-signature",
        )  # fmt: skip
        config = config_from_options(options)
        self.assertEqual(
            (config.smime_ca, config.smime_cert, config.smime_key),
            (self.ca, self.cert, self.key),
        )
        self.assertEqual((config.smime_key_password, config.require_signature), ("pw", True))

    def test_usage_errors(self) -> None:
        """Bad S/MIME settings are usage errors naming the option."""
        from twisted.python.usage import UsageError

        cases = [
            (["--require-signature"], "--require-signature needs --smime-ca"),
            (["--smime-cert", self.cert], "--smime-cert and --smime-key"),
            (["--smime-ca", "/nonexistent.pem"], "--smime-ca /nonexistent.pem"),
            (["--smime-cert", self.cert, "--smime-key", self.key], "--smime-cert"),
            (
                ["--smime-key-password", "pw", "--smime-key-password-file", self.password],
                "not both",
            ),
        ]
        for args, text in cases:
            with self.assertRaises(UsageError) as caught:
                self.parse(*args)
            self.assertIn(text, str(caught.exception))
