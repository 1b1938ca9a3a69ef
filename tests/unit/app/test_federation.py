# -*- test-case-name: tests.unit.app.test_federation -*-
"""
Tests for L{conference.app.federation}: an organizer of another domain
schedules with a signed iTIP REQUEST and no digest; strangers' unsigned
messages, attendees' methods, signers who are not the ORGANIZER and
replays are handled as docs/federation.rst says, with no store changed by
a refusal.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional, Tuple

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from conference.app.calendarbody import parse_calendar_body
from conference.app.federation import (
    ORGANIZER_ONLY,
    SERVED,
    STRANGER,
    Federation,
)
from conference.app.trust import Opened
from conference.limits import Rate, RateLimiter
from conference.service import ConferenceService, ServerConfig
from conference.sip.errors import SIPProtocolError
from conference.sip.message import Request, Response, make_response
from conference.smime import SignerInfo
from tests.builders import make_request
from tests.unit.app.calendars import conference_ical
from tests.unit.app.test_scheduler import ROOM, XCAL, Harness, reply_ical, warning, xcal
from tests.unit.app.test_trust import settings, signed, trusted
from tests.unit.smime.pki import Identity, make_user, pki, write
from tests.unit.test_unauthenticated import snapshot

DORA = "sip:dora@example.org"
ERIN = "sip:erin@example.net"
_PEOPLE: Dict[str, Identity] = {}


def foreigner(address: str) -> Identity:
    """A certificate of the test CA for C{address} (another domain), made once."""
    if address not in _PEOPLE:
        _PEOPLE[address] = make_user(pki().ca, [address], common=address)
    return _PEOPLE[address]


def dora_request(**kwargs: Any) -> bytes:
    """Dora's conference REQUEST as xCal, Erin and Bob invited."""
    kwargs.setdefault("attendees", (ERIN, "sip:bob@example.com"))
    return xcal(conference_ical(organizer=DORA, **kwargs))


class Route:
    """
    Records what the messenger routes to any URI and answers 200.
    """

    def __init__(self) -> None:
        self.sent: List[Tuple[Request, str]] = []

    def send_to(self, request: Request, uri: str) -> Deferred[Response]:
        self.sent.append((request, uri))
        d: Deferred[Response] = Deferred()
        d.callback(make_response(request, 200))
        return d


class SchedulingTests(SynchronousTestCase):
    """
    Signed MESSAGEs without a SIP identity through the scheduler.
    """

    def setUp(self) -> None:
        self.h = trusted(Harness(), settings())
        self.federation = Federation(self.h.handler.trust, domain_of=self.h.router.domain_of)
        self.h.handler.federation = self.federation
        self.route = Route()
        self.h.messenger.route = self.route

    def send(self, pair: Tuple[str, bytes]) -> Response:
        ctype, body = pair
        return self.h.message(body, None, ROOM, content_type=ctype)

    def refused(self, pair: Tuple[str, bytes]) -> str:
        before = snapshot(self.h.stores)
        response = self.send(pair)
        self.assertEqual(response.code, 403)
        self.assertEqual(snapshot(self.h.stores), before)
        self.h.clock.advance(0)
        self.assertEqual(self.route.sent, [])
        return warning(response)

    def test_signed_organizer(self) -> None:
        """A REQUEST signed by its ORGANIZER of another domain creates the conference."""
        response = self.send(signed(foreigner(DORA), dora_request()))
        self.assertEqual(response.code, 200)
        record = self.h.record()
        assert record is not None
        self.assertEqual(record.organizer, DORA)

    def test_reply_goes_back_over_the_route(self) -> None:
        """The conference's REPLY goes to the organizer in her own domain."""
        self.send(signed(foreigner(DORA), dora_request()))
        self.h.clock.advance(0)
        uris = [uri for _, uri in self.route.sent]
        self.assertIn(DORA, uris)
        request = next(r for r, uri in self.route.sent if uri == DORA)
        self.assertIn(b"REPLY", request.body)

    def test_update(self) -> None:
        """A later signed REQUEST (SEQUENCE 1) updates the conference."""
        self.send(signed(foreigner(DORA), dora_request()))
        later = dora_request(sequence=1, attendees=(ERIN,))
        self.assertEqual(self.send(signed(foreigner(DORA), later)).code, 200)
        record = self.h.record()
        assert record is not None
        self.assertEqual(record.sequence, 1)

    def test_replay_ignored(self) -> None:
        """The same signed bytes again are answered 200 and change nothing."""
        pair = signed(foreigner(DORA), dora_request())
        self.send(pair)
        self.h.clock.advance(0)
        before, sent = snapshot(self.h.stores), len(self.route.sent)
        self.assertEqual(self.send(pair).code, 200)
        self.h.clock.advance(0)
        self.assertEqual(snapshot(self.h.stores), before)
        self.assertEqual(len(self.route.sent), sent)

    def test_unsigned_stranger(self) -> None:
        """Hostile: an unsigned REQUEST without identity is 403."""
        self.assertEqual(self.refused((XCAL, dora_request())), STRANGER)

    def test_signer_not_organizer(self) -> None:
        """Hostile: Erin signs Dora's REQUEST: 403 naming both."""
        text = self.refused(signed(foreigner(ERIN), dora_request()))
        self.assertEqual(text, f"S/MIME signer {ERIN} is not the ORGANIZER {DORA}")

    def test_attendee_method(self) -> None:
        """Hostile: a signed REPLY from another domain without identity is 403."""
        self.send(signed(foreigner(DORA), dora_request()))
        self.h.clock.advance(0)
        self.route.sent.clear()
        reply = xcal(reply_ical(ERIN, "ACCEPTED"))
        self.assertEqual(self.refused(signed(foreigner(ERIN), reply)), ORGANIZER_ONLY)

    def test_served_organizer(self) -> None:
        """A served user's signed REQUEST without a digest is refused: they authenticate."""
        text = self.refused(signed(pki().alice, xcal(conference_ical())))
        self.assertEqual(text, SERVED.format(organizer="sip:alice@example.com"))

    def test_untrusted_signer(self) -> None:
        """Hostile: a signer from a CA nobody trusts is 403."""
        rogue = make_user(pki().rogue_ca, [DORA])
        self.assertIn("S/MIME signature refused", self.refused(signed(rogue, dora_request())))

    def test_without_federation(self) -> None:
        """Without a Federation, a message without identity stays refused."""
        self.h.handler.federation = None
        text = self.refused(signed(foreigner(DORA), dora_request()))
        self.assertIn("authenticated identity", text)


class AdmitTests(SynchronousTestCase):
    """
    L{Federation.admit} cases the scheduler cannot easily reach.
    """

    def setUp(self) -> None:
        self.federation = Federation(
            settings(),
            domain_of=lambda host: "example.com" if host == "example.com" else None,
            limiter=RateLimiter(None, Rate(2, 60)),
            window=3600.0,
        )
        self.body = parse_calendar_body(dora_request(), XCAL, agent="example.com")
        self.now = datetime(2030, 6, 1, tzinfo=timezone.utc).timestamp()

    def opened(self, signing_time: Optional[datetime] = None) -> Opened:
        cert = foreigner(DORA).cert
        return Opened(None, b"", SignerInfo(frozenset({DORA}), cert, (), signing_time))

    def test_stale(self) -> None:
        """A signature made longer ago than the window is refused."""
        old = datetime.fromtimestamp(self.now, timezone.utc) - timedelta(hours=2)
        with self.assertRaises(SIPProtocolError) as caught:
            self.federation.admit(self.body, self.opened(old), b"x", agent="a", now=self.now)
        self.assertEqual(caught.exception.status, 403)

    def test_rate_limited_by_signer(self) -> None:
        """The signer's own bucket runs out: 503 with Retry-After."""
        for n in range(2):
            self.federation.admit(self.body, self.opened(), b"%d" % n, agent="a", now=self.now)
        with self.assertRaises(SIPProtocolError) as caught:
            self.federation.admit(self.body, self.opened(), b"3", agent="a", now=self.now)
        self.assertEqual(caught.exception.status, 503)
        self.assertIn("Retry-After", dict(caught.exception.headers))

    def test_replay_forgotten_after_window(self) -> None:
        """A remembered message is a replay within the window, not after."""
        self.federation.limiter = None
        self.federation.remember(b"m", self.now)
        self.assertIsNone(
            self.federation.admit(self.body, self.opened(), b"m", agent="a", now=self.now)
        )
        later = self.now + 3601
        self.assertEqual(
            self.federation.admit(self.body, self.opened(), b"m", agent="a", now=later), DORA
        )

    def test_bounded(self) -> None:
        """At most max_remembered digests are kept."""
        self.federation.max_remembered = 3
        for n in range(10):
            self.federation.remember(b"%d" % n, self.now)
        self.assertEqual(len(self.federation._seen), 3)


class CandidateTests(SynchronousTestCase):
    """
    L{Federation.candidate} and the service's authentication hook.
    """

    def setUp(self) -> None:
        folder = self.mktemp()
        ca = write(folder, "ca.pem", pki().ca.cert_pem())
        self.service = ConferenceService(
            ServerConfig(listen=[], domains=["example.com"], store="memory", smime_ca=ca)
        )

    def request(self, sender: str, ctype: str, credentials: bool = False) -> Request:
        headers = [("Content-Type", ctype)]
        if credentials:
            headers.append(("Authorization", 'Digest username="x"'))
        request = make_request(
            "MESSAGE", ROOM, body=b"x", headers=headers, from_=f"<{sender}>;tag=f1"
        )
        assert isinstance(request, Request)
        return request

    def test_candidates(self) -> None:
        """Only signed MESSAGEs from other domains skip the digest."""
        federation = self.service.federation
        assert federation is not None
        signed_type = 'multipart/signed;protocol="application/pkcs7-signature"'
        self.assertTrue(federation.candidate(self.request(DORA, signed_type)))
        pkcs7 = "application/pkcs7-mime;smime-type=signed-data"
        self.assertTrue(federation.candidate(self.request(DORA, pkcs7)))
        self.assertFalse(federation.candidate(self.request(DORA, XCAL)))
        self.assertFalse(federation.candidate(self.request("sip:a@example.com", signed_type)))

    def test_authenticate(self) -> None:
        """The service lets a candidate through without identity; others are refused."""
        signed_type = 'multipart/signed;protocol="application/pkcs7-signature"'
        let_through = self.service.authenticate(self.request(DORA, signed_type), 0)
        assert let_through is not None
        self.assertIsNone(self.successResultOf(let_through))
        failure = self.failureResultOf(self.service.authenticate(self.request(DORA, XCAL), 0))
        self.assertEqual(failure.value.status, 403)
        with_digest = self.request(DORA, signed_type, credentials=True)
        failure = self.failureResultOf(self.service.authenticate(with_digest, 0))
        self.assertEqual(failure.value.status, 403)  # checked as usual: no --auth here

    def test_no_ca_no_federation(self) -> None:
        """Without --smime-ca there is no federation."""
        service = ConferenceService(
            ServerConfig(listen=[], domains=["example.com"], store="memory")
        )
        self.assertIsNone(service.federation)
