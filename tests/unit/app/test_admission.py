# -*- test-case-name: tests.unit.app.test_admission -*-
"""
Tests for L{conference.app.admission} and how the focus applies it: the
media port exhaustion by anonymous callers.
"""

from __future__ import annotations

import random
from typing import Any, List, Optional, Tuple

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from conference.app.admission import DEFAULT_RETRY_AFTER, MediaAdmission, MediaRefused
from conference.app.core import CoreRouter, RequestContext
from conference.app.focus import Focus
from conference.app.media import NullMediaService
from conference.app.mixer import MixerMediaService
from conference.auth import SIPIdentity, UnauthorizedError
from conference.limits import RateLimiter
from conference.records import ConferenceRecord
from conference.sip.errors import SIPProtocolError
from conference.sip.message import Request, Response, error_response
from conference.sip.transaction import Peer
from conference.testing import memory_stores
from tests.builders import make_request
from tests.mediacontract import RTCP_RR, RTP_PACKET, FakeMediaReactor, with_direction
from tests.unit.app.calendars import T0, conference_calendar, conference_record
from tests.unit.app.test_focus import CONF, OFFER


class Session:
    """
    Just what the admission reads of a media session.
    """

    def __init__(self, last_activity: float, expects_media: bool = True) -> None:
        self.last_activity = last_activity
        self.expects_media = expects_media


class AdmissionTests(SynchronousTestCase):
    """
    The caps, the reserve and the inactivity sweep, without a focus.
    """

    def admission(self, **kwargs: Any) -> MediaAdmission:
        options: dict[str, Any] = {"reserve": 0.2, "per_source": 3, "per_caller": 2}
        options.update(kwargs)
        return MediaAdmission(10, **options)

    def admit(
        self,
        admission: MediaAdmission,
        host: str = "192.0.2.1",
        caller: str = "sip:x@example.com",
        *,
        authenticated: bool = False,
        attendee: bool = False,
    ) -> Any:
        return admission.admit(
            host=host, caller=caller, authenticated=authenticated, attendee=attendee, now=0.0
        )

    def test_reserve_kept_for_attendees(self) -> None:
        """Non-attendees get capacity minus the reserve; attendees the rest."""
        admission = self.admission(per_source=None, per_caller=None)
        for n in range(8):
            self.admit(admission, f"192.0.2.{n}")
        with self.assertRaises(MediaRefused) as caught:
            self.admit(admission, "192.0.2.99", authenticated=True)
        self.assertTrue(caught.exception.for_attendees)
        self.admit(admission, caller="sip:alice@example.com", authenticated=True, attendee=True)
        self.admit(admission, caller="sip:bob@example.com", authenticated=True, attendee=True)
        with self.assertRaises(MediaRefused) as caught:
            self.admit(admission, caller="sip:bob@example.com", authenticated=True, attendee=True)
        self.assertFalse(caught.exception.for_attendees)
        self.assertEqual(caught.exception.status, 503)
        self.assertEqual(caught.exception.headers, [("Retry-After", str(DEFAULT_RETRY_AFTER))])

    def test_attendee_needs_authentication(self) -> None:
        """An attendee flag without authentication does not open the reserve."""
        admission = self.admission(reserve=1.0)
        with self.assertRaises(MediaRefused):
            self.admit(admission, attendee=True)

    def test_per_source(self) -> None:
        """Non-attendees from one source hold at most per_source sessions; others still get in."""
        admission = self.admission()
        for n in range(3):
            self.admit(admission, caller=f"sip:u{n}@example.com")
        with self.assertRaises(MediaRefused):
            self.admit(admission, caller="sip:u9@example.com")
        self.admit(admission, "198.51.100.1")
        attendee = self.admit(
            admission, caller="sip:alice@example.com", authenticated=True, attendee=True
        )
        self.assertEqual(attendee.source, "")
        self.assertEqual(admission.count(source="192.0.2.1"), 3)

    def test_exempt_source_not_capped(self) -> None:
        """A source whose key is empty (exempt network) has no per-source cap."""
        admission = self.admission(source_key=RateLimiter().source_key, per_caller=None)
        for _ in range(8):
            self.admit(admission, "127.0.0.1")
        self.assertEqual(len(admission), 8)

    def test_per_caller_anonymous_apart(self) -> None:
        """An anonymous caller naming an identity does not use up that identity's sessions."""
        admission = self.admission(per_source=None)
        alice = "sip:alice@example.com"
        for n in range(2):
            self.admit(admission, f"192.0.2.{n}", caller=alice)
        with self.assertRaises(MediaRefused):
            self.admit(admission, "192.0.2.7", caller=alice)
        for _ in range(2):
            self.admit(admission, caller=alice, authenticated=True, attendee=True)
        self.assertEqual(admission.count(caller=alice), 2)
        self.assertEqual(admission.count(caller="unauthenticated " + alice), 2)

    def test_release_idempotent(self) -> None:
        """Releasing gives back every count once, however often it is called."""
        admission = self.admission()
        ticket = self.admit(admission)
        admission.release(ticket)
        admission.release(ticket)
        admission.release(None)
        self.assertEqual((len(admission), admission.count(source="192.0.2.1")), (0, 0))
        for _ in range(2):
            self.admit(admission)

    def test_idle_sweep(self) -> None:
        """Sessions quiet for the timeout are found; busy ones set the next check."""
        admission = self.admission(per_source=None, per_caller=None, timeout=60.0)
        quiet, busy, opening = (self.admit(admission) for _ in range(3))
        admission.opened(quiet, Session(0.0), "quiet")
        admission.opened(busy, Session(0.0), "busy")
        self.assertEqual(admission.next_check(), 60.0)
        busy.session.last_activity = 50.0
        self.assertEqual(admission.idle(60.0), [quiet])
        self.assertEqual(admission.next_check(), 110.0)
        self.assertIsNone(opening.session)  # not watched until open
        self.assertEqual(admission.retry_after(60.0), 50)

    def test_held_never_idle(self) -> None:
        """A session expecting no media (on hold) is not idle; it is looked at a timeout later."""
        admission = self.admission(per_source=None, per_caller=None, timeout=60.0)
        ticket = self.admit(admission)
        admission.opened(ticket, Session(0.0, expects_media=False), "held")
        self.assertEqual(admission.idle(1000.0), [])
        self.assertEqual(admission.next_check(), 1060.0)
        ticket.session.expects_media = True
        self.assertEqual(admission.idle(1060.0), [ticket])

    def test_sweep_not_too_often(self) -> None:
        """The next check is at least an eighth of the timeout away."""
        admission = self.admission(per_source=None, per_caller=None, timeout=80.0)
        ticket = self.admit(admission)
        admission.opened(ticket, Session(0.0), "t")
        ticket.session.last_activity = 0.5
        self.assertEqual(admission.idle(80.0), [])
        self.assertEqual(admission.next_check(), 90.0)

    def test_no_timeout(self) -> None:
        """Without a timeout nothing is ever idle and no check is scheduled."""
        admission = self.admission(timeout=None)
        ticket = self.admit(admission)
        admission.opened(ticket, Session(0.0), "t")
        self.assertEqual(admission.idle(10**9), [])
        self.assertIsNone(admission.next_check())

    def test_bad_settings(self) -> None:
        """A share outside 0..1 or no capacity is refused."""
        self.assertRaises(ValueError, MediaAdmission, 10, reserve=1.5)
        self.assertRaises(ValueError, MediaAdmission, 0)


ORGANIZER = SIPIdentity("alice", "example.com")
ATTENDEE = SIPIdentity("bob", "example.com")
STRANGER = SIPIdentity("carol", "example.com")


def challenge(request: Request, now: float) -> SIPProtocolError:
    """A stand-in for the server's digest challenge."""
    return UnauthorizedError("credentials required", [("WWW-Authenticate", "Digest x")])


class FocusAdmissionTests(SynchronousTestCase):
    """
    Media admission through the focus, with the null media service on a
    200-port range (100 port pairs), as in the audit.
    """

    def make_media(self, reactor: FakeMediaReactor) -> NullMediaService:
        return NullMediaService(reactor, port_range=(20000, 20199))

    def setUp(self) -> None:
        self.clock = FakeMediaReactor()
        self.clock.advance(T0.timestamp() + 60)
        self.stores = memory_stores()
        self.media = self.make_media(self.clock)
        self.sent: List[Tuple[Request, Peer]] = []
        self.focus = self.make_focus()
        record = conference_record(conference_calendar())
        self.successResultOf(
            self.stores.conferences.put(ConferenceRecord(**{**record.__dict__, "version": 0}), 0)
        )

    def make_focus(self, **kwargs: Any) -> Focus:
        router = CoreRouter(["example.com"], tag_factory=lambda: "tag", accept_ip_literals=True)
        tags = iter(range(10**6))
        return Focus(
            stores=self.stores,
            media=self.media,
            router=router,
            reactor=self.clock,
            send_request=self.send,
            local_address=lambda peer: ("127.0.0.1", 5060),
            tag_factory=lambda: f"ft{next(tags)}",
            branch_factory=lambda: "z9hG4bKfocus",
            max_participants=1000,
            admission=MediaAdmission(
                self.media.capacity,
                reserve=0.2,
                per_source=32,
                per_caller=4,
                timeout=60.0,
                source_key=RateLimiter().source_key,
            ),
            **kwargs,
        )

    def send(self, request: Request, peer: Peer) -> Deferred[Response]:
        self.sent.append((request, peer))
        return Deferred()

    def join(
        self,
        n: int,
        *,
        host: Optional[str] = None,
        caller: Optional[str] = None,
        identity: Optional[SIPIdentity] = None,
        offer: bytes = OFFER,
    ) -> Response:
        """INVITE (with an offer) number C{n}; anonymous unless C{identity}."""
        caller = caller or (identity.aor if identity else f"sip:anon{n}@example.net")
        request = make_request(
            "INVITE",
            CONF,
            call_id=f"call-{n}",
            from_=f"<{caller}>;tag=f{n}",
            headers=[("Contact", "<sip:x@192.0.2.10>"), ("Content-Type", "application/sdp")],
            body=offer,
        )
        peer = Peer("UDP", host or f"10.0.{n // 250}.{n % 250 + 1}", 5060, "udp")
        context = RequestContext(peer=peer, now=self.clock.seconds(), identity=identity)
        try:
            result: Any = self.focus.handle_request(request, context)
        except SIPProtocolError as e:
            return error_response(request, e, "t")
        if isinstance(result, Response):
            return result
        outcomes: List[Any] = []
        result.addBoth(outcomes.append)
        [outcome] = outcomes
        if isinstance(outcome, Response):
            return outcome
        error = outcome.value
        if isinstance(error, SIPProtocolError):
            return error_response(request, error, "t")
        raise error

    def test_anonymous_flood_leaves_room_for_attendees(self) -> None:
        """The audit's 99 anonymous joins: 80 get in, 19 get 503 + Retry-After; attendees join."""
        codes = [self.join(n).code for n in range(99)]
        self.assertEqual(codes, [200] * 80 + [503] * 19)
        refused = self.join(100)
        self.assertIsNotNone(refused.header("retry-after"))
        self.assertEqual(self.join(200, identity=ORGANIZER).code, 200)
        self.assertEqual(self.join(201, identity=ATTENDEE).code, 200)
        self.assertEqual(self.join(202, identity=STRANGER).code, 503)
        self.assertEqual(len(self.media.sessions), 82)

    def test_anonymous_over_share_challenged(self) -> None:
        """With credentials configured, an anonymous caller over the share is challenged."""
        self.focus = self.make_focus(challenge=challenge)
        for n in range(80):
            self.join(n)
        refused = self.join(80)
        self.assertEqual(refused.code, 401)
        self.assertEqual(refused.header("www-authenticate"), "Digest x")
        self.assertEqual(self.join(81, identity=ORGANIZER).code, 200)

    def test_full_capacity_is_503_for_all(self) -> None:
        """When every pair is held, attendees too get 503 with Retry-After, never a challenge."""
        self.focus = self.make_focus(challenge=challenge)
        assert self.focus.admission is not None
        self.focus.admission.per_caller = None  # one attendee on 20 phones
        for n in range(80):
            self.join(n)
        for n in range(20):
            self.assertEqual(self.join(100 + n, identity=ATTENDEE).code, 200)
        refused = self.join(200, identity=ORGANIZER)
        self.assertEqual(refused.code, 503)
        self.assertEqual(refused.header("retry-after"), "60")

    def test_per_source_cap(self) -> None:
        """One address gets 32 sessions; an attendee at the same address still joins."""
        codes = [self.join(n, host="203.0.113.5").code for n in range(33)]
        self.assertEqual(codes, [200] * 32 + [503])
        self.assertEqual(self.join(99, host="203.0.113.5", identity=ORGANIZER).code, 200)

    def test_per_anonymous_caller_cap(self) -> None:
        """One anonymous From gets 4 sessions, from however many addresses."""
        codes = [self.join(n, caller="sip:eve@example.net").code for n in range(5)]
        self.assertEqual(codes, [200] * 4 + [503])

    def test_forged_from_does_not_lock_out_organizer(self) -> None:
        """Anonymous joins naming the organizer do not count against the organizer."""
        for n in range(4):
            self.join(n, caller=ORGANIZER.aor)
        self.assertEqual(self.join(10, identity=ORGANIZER).code, 200)

    def test_quiet_sessions_reaped(self) -> None:
        """Without RTP for the timeout the call gets BYE and its ports are free again."""
        for n in range(80):
            self.join(n)
        self.assertEqual(self.join(80).code, 503)
        busy = next(iter(self.media.sessions.values()))
        for _ in range(7):
            self.clock.advance(10)
            busy.rtp.datagramReceived(RTP_PACKET, ("192.0.2.10", 4000))
        self.assertEqual(len(self.focus.calls), 1)
        self.assertEqual(len(self.sent), 79)
        self.assertTrue(all(bye.method == "BYE" for bye, _ in self.sent))
        self.assertEqual(list(self.media.sessions.values()), [busy])
        self.assertEqual(len(self.focus.admission or []), 1)
        self.assertEqual(self.join(81).code, 200)

    def test_rtcp_and_touch_keep_alive(self) -> None:
        """RTCP, or the media plane's touch, refreshes a session like RTP."""
        self.join(1)
        self.join(2)
        first, second = self.media.sessions.values()
        for _ in range(10):
            self.clock.advance(30)
            first.rtcp.datagramReceived(RTCP_RR, ("192.0.2.10", 4001))
            self.media.touch(second)
        self.assertEqual(len(self.focus.calls), 2)

    def test_held_not_reaped(self) -> None:
        """A participant who holds (a=inactive) sends nothing and is not cut."""
        self.join(1, offer=with_direction(OFFER, "inactive"))
        for _ in range(10):
            self.clock.advance(30)
        self.assertEqual(len(self.focus.calls), 1)
        self.assertEqual(self.sent, [])

    def test_malformed_packets_do_not_refresh(self) -> None:
        """Datagrams that are not RTP version 2 keep nothing alive."""
        self.join(1)
        [session] = self.media.sessions.values()
        for _ in range(7):
            self.clock.advance(10)
            session.rtp.datagramReceived(b"\x00" * 20, ("192.0.2.10", 4000))
        self.assertEqual(self.focus.calls, {})
        self.assertTrue(session.closed)

    def test_media_503_gets_retry_after(self) -> None:
        """The media service's own 503 (every port busy) carries Retry-After too."""
        self.clock.busy.update(range(20000, 20200))
        refused = self.join(1)
        self.assertEqual((refused.code, refused.phrase), (503, "No media ports available"))
        self.assertEqual(refused.header("retry-after"), "60")
        self.assertEqual(len(self.focus.admission or []), 0)

    def test_failed_offer_releases(self) -> None:
        """A join refused by the media service (488) gives its admission back."""
        request = make_request(
            "INVITE",
            CONF,
            headers=[("Contact", "<sip:x@192.0.2.10>"), ("Content-Type", "application/sdp")],
            body=OFFER.replace(b"RTP/AVP 0", b"RTP/AVP 96").replace(b"PCMU", b"opus"),
        )
        peer = Peer("UDP", "192.0.2.9", 5060, "udp")
        context = RequestContext(peer=peer, now=self.clock.seconds())
        self.failureResultOf(self.focus.handle_request(request, context), SIPProtocolError)
        self.assertEqual(len(self.focus.admission or []), 0)

    def test_bye_releases(self) -> None:
        """A BYE gives the admission back with the ports."""
        self.join(1)
        [call] = self.focus.calls.values()
        bye = make_request(
            "BYE",
            CONF,
            call_id="call-1",
            from_="<sip:anon1@example.net>;tag=f1",
            to=f"<{CONF}>;tag={call.dialog.local_tag}",
        )
        context = RequestContext(peer=call.peer, now=self.clock.seconds())
        self.assertEqual(self.focus.handle_request(bye, context).code, 200)  # type: ignore[union-attr]
        self.assertEqual(len(self.focus.admission or []), 0)
        self.assertEqual(self.media.sessions, {})


class MixerFocusAdmissionTests(FocusAdmissionTests):
    """
    The same through the focus with the built-in mixer (the default media
    service), where only the media the mixer accepts is activity.
    """

    def make_media(self, reactor: FakeMediaReactor) -> NullMediaService:
        return MixerMediaService(reactor, port_range=(20000, 20199), rng=random.Random(7))

    def test_strangers_do_not_keep_alive(self) -> None:
        """RTP and RTCP from an address other than the participant's keep nothing alive."""
        self.join(1)
        [session] = self.media.sessions.values()
        for _ in range(7):
            self.clock.advance(10)
            session.rtp.datagramReceived(RTP_PACKET, ("203.0.113.9", 4000))
            session.rtcp.datagramReceived(RTCP_RR, ("203.0.113.9", 4001))
        self.assertEqual(self.focus.calls, {})
        self.assertTrue(session.closed)
