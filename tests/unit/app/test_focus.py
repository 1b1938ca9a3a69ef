# -*- test-case-name: tests.unit.app.test_focus -*-
"""
Tests for L{conference.app.focus} and L{conference.app.busy}: joining,
refusals with free/busy, dialogs, session timers and the user path
(requests within a dialog: L{tests.unit.app.test_indialog}).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Dict, List, Optional, Tuple, cast

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.logger import ILogObserver, LogEvent, LogLevel, formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from conference.app import focus as focus_app
from conference.app.core import CoreRouter, RequestContext
from conference.app.focus import Focus
from conference.calendar import parse_ical_calendar, parse_xcal_calendar
from conference.interfaces import IMediaService, IMediaSession, IRequestHandler
from conference.records import CalendarEntry, ConferenceRecord, RegistrationBinding
from conference.sip.errors import RemoteProtocolError
from conference.sip.message import Request, Response
from conference.sip.multipart import parse_multipart
from conference.sip.transaction import Peer
from conference.testing import memory_stores
from tests.builders import make_request
from tests.unit.app.calendars import T0, conference_calendar, conference_ical, conference_record

PEER = Peer("UDP", "192.0.2.10", 5062, "udp")
OFFER = (
    b"v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)
ANSWER = (
    b"v=0\r\no=focus 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 20000 RTP/AVP 0\r\n"
)
CONF = "sip:conf@example.com"


@implementer(IMediaSession)
class FakeSession:
    def __init__(self, conference: str, participant: str) -> None:
        self.conference = conference
        self.participant = participant
        self.local_sdp = ANSWER
        self.closed = False
        self.answer: Optional[bytes] = None
        self.last_activity = 0.0
        self.expects_media = True


@implementer(IMediaService)
class FakeMedia:
    """
    Answers at once (or when the test fires C{pending}) and records closes.
    """

    capacity = 1000

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.sessions: List[FakeSession] = []
        self.hold: Optional[Deferred[IMediaSession]] = None
        self.warnings: List[Tuple[IMediaSession, float, float]] = []

    def answer(self, conference: str, participant: str, offer: bytes) -> Deferred[IMediaSession]:
        if b"m=video" in offer and b"m=audio" not in offer:
            d: Deferred[IMediaSession] = Deferred()
            d.errback(RemoteProtocolError("Not Acceptable Here", 488))
            return d
        session = FakeSession(conference, participant)
        session.last_activity = self.clock.seconds()
        self.sessions.append(session)
        if self.hold is not None:
            held = self.hold
            held.addCallback(lambda _: session)
            return held
        return succeed(session)

    def offer(self, conference: str, participant: str) -> Deferred[IMediaSession]:
        session = FakeSession(conference, participant)
        session.last_activity = self.clock.seconds()
        self.sessions.append(session)
        return succeed(session)

    def complete(self, session: IMediaSession, answer: bytes) -> None:
        if b"m=audio" not in answer:
            raise RemoteProtocolError("Bad SDP answer", 400)
        session.answer = answer  # type: ignore[attr-defined]

    def update(self, session: IMediaSession, offer: bytes) -> Deferred[bytes]:
        return succeed(ANSWER)

    def close(self, session: IMediaSession) -> None:
        session.closed = True  # type: ignore[attr-defined]

    def touch(self, session: IMediaSession) -> None:
        session.last_activity = self.clock.seconds()  # type: ignore[attr-defined]

    def warn(self, session: IMediaSession, ends_at: float) -> None:
        self.warnings.append((session, ends_at, self.clock.seconds()))


class FocusFixture(SynchronousTestCase):
    """
    The focus over memory stores, a fake clock and fake media.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(T0.timestamp() + 60)  # one minute into the conference
        self.stores = memory_stores()
        self.media = FakeMedia(self.clock)
        self.sent: List[Tuple[Request, Peer]] = []
        router = CoreRouter(["example.com"], tag_factory=lambda: "tag", accept_ip_literals=True)
        self.focus = Focus(
            stores=self.stores,
            media=self.media,
            router=router,
            reactor=self.clock,
            send_request=self.send,
            local_address=lambda peer: ("127.0.0.1", 5060),
            tag_factory=lambda: f"ft{len(self.focus.calls)}",
            branch_factory=lambda: "z9hG4bKfocus",
        )
        self.store(conference_calendar())

    def send(self, request: Request, peer: Peer) -> Deferred[Response]:
        self.sent.append((request, peer))
        return Deferred()

    def store(self, calendar: Any, **settings: str) -> ConferenceRecord:
        record = conference_record(calendar)
        record = ConferenceRecord(**{**record.__dict__, "settings": settings, "version": 0})
        existing = self.successResultOf(self.stores.conferences.get(record.uri))
        expected = existing.version if existing is not None else 0
        return self.successResultOf(self.stores.conferences.put(record, expected))

    def invite(
        self,
        uri: str = CONF,
        *,
        accept: Optional[str] = "application/sdp, application/calendar+xml",
        body: bytes = OFFER,
        headers: Tuple[Tuple[str, str], ...] = (),
        call_id: str = "call-1",
        from_: str = "<sip:bob@example.com>;tag=bob1",
    ) -> Request:
        extra = list(headers)
        if accept is not None:
            extra.append(("Accept", accept))
        extra.append(("Contact", "<sip:bob@192.0.2.10:5062>"))
        if body:
            extra.append(("Content-Type", "application/sdp"))
        return make_request("INVITE", uri, headers=extra, body=body, call_id=call_id, from_=from_)

    def answer(self, request: Request) -> Response:
        context = RequestContext(peer=PEER, now=self.clock.seconds())
        try:
            result = self.focus.handle_request(request, context)
        except RemoteProtocolError as e:
            return Response(e.status, e.reason)
        if isinstance(result, Deferred):
            outcomes: List[Any] = []
            result.addBoth(outcomes.append)
            [outcome] = outcomes
            if isinstance(outcome, Response):
                return outcome
            error = outcome.value
            if isinstance(error, RemoteProtocolError):
                return Response(error.status, error.reason)
            raise error
        return result

    def parts(self, response: Response) -> Dict[str, bytes]:
        content_type = response.content_type
        assert content_type is not None
        multipart = parse_multipart(response.body, content_type)
        return {p.media_type.mime if p.media_type else "": p.body for p in multipart.parts}


class FocusTests(FocusFixture):
    """
    Joining conferences, refusals, dialogs and timers.
    """

    def test_interface(self) -> None:
        """The focus is a request handler."""
        self.assertTrue(verifyObject(IRequestHandler, self.focus))

    def test_join_multipart(self) -> None:
        """A join with Accept listing xCal gets SDP plus the VEVENT, isfocus Contact."""
        response = self.answer(self.invite())
        self.assertEqual(response.code, 200)
        assert response.content_type is not None
        self.assertEqual(response.content_type.mime, "multipart/mixed")
        parts = self.parts(response)
        self.assertEqual(parts["application/sdp"], ANSWER)
        calendar = parse_xcal_calendar(parts["application/calendar+xml"])
        self.assertEqual(calendar.value("METHOD"), "REQUEST")
        [event] = calendar.subcomponents("VEVENT")
        self.assertEqual(event.value("CONFERENCE"), CONF)
        self.assertEqual(event.value("DTSTART"), T0)
        self.assertIn(";isfocus", response.header("contact") or "")
        self.assertEqual(self.focus.roster.count(CONF), 1)
        multipart = parse_multipart(response.body, response.content_type)
        dispositions = [p.header("content-disposition") for p in multipart.parts]
        self.assertEqual(dispositions, ["session", "render;handling=optional"])

    def test_join_body_envelope_reused(self) -> None:
        """Joins of one conference version share the multipart built around its calendar part."""
        first = self.answer(self.invite(call_id="a", from_="<sip:yan@example.com>;tag=y"))
        second = self.answer(self.invite(call_id="b", from_="<sip:zed@example.com>;tag=z"))
        self.assertEqual(second.header("content-type"), first.header("content-type"))
        self.assertEqual(self.parts(second), self.parts(first))
        self.assertEqual(self.parts(second)["application/sdp"], ANSWER)

    def test_join_sdp_only(self) -> None:
        """No Accept (or SDP only): the answer is SDP alone."""
        for accept in (None, "application/sdp"):
            response = self.answer(self.invite(accept=accept, call_id=f"c-{accept}"))
            self.assertEqual(response.code, 200)
            self.assertEqual(response.header("content-type"), "application/sdp")
            self.assertEqual(response.body, ANSWER)

    def test_join_text_calendar(self) -> None:
        """Accept listing only text/calendar gets the VEVENT as iCalendar text."""
        response = self.answer(self.invite(accept="application/sdp, text/calendar"))
        parts = self.parts(response)
        calendar = parse_ical_calendar(parts["text/calendar"].decode("utf-8"))
        self.assertEqual(len(calendar.subcomponents("VEVENT")), 1)

    def test_no_sdp_acceptable(self) -> None:
        """Accept without SDP is 406."""
        self.assertEqual(self.answer(self.invite(accept="text/plain")).code, 406)

    def test_calendar_part_cached(self) -> None:
        """Joins of non-attendees reuse the serialized VEVENT: one rendering for two joins."""
        from conference.app import joincalendar as focus_module

        calls: List[Any] = []
        real = focus_module.join_calendar  # type: ignore[attr-defined]

        def counting(*args: Any, **kwargs: Any) -> Any:
            calls.append(args)
            return real(*args, **kwargs)

        self.patch(focus_module, "join_calendar", counting)
        first = self.answer(self.invite(call_id="a", from_="<sip:yan@example.com>;tag=y"))
        second = self.answer(self.invite(call_id="b", from_="<sip:zed@example.com>;tag=z"))
        self.assertEqual(len(calls), 1)
        self.assertEqual(
            self.parts(first)["application/calendar+xml"],
            self.parts(second)["application/calendar+xml"],
        )

    def test_attendee_shown_accepted(self) -> None:
        """An attendee who is in shows PARTSTAT=ACCEPTED to those who join after."""
        context = RequestContext(peer=PEER, now=self.clock.seconds())
        self.focus.handle_request(self.invite(call_id="a"), context)
        response = self.answer(self.invite(call_id="b", from_="<sip:zed@example.com>;tag=z"))
        calendar = parse_xcal_calendar(self.parts(response)["application/calendar+xml"])
        [event] = calendar.subcomponents("VEVENT")
        partstats = {str(p.values[0]): p.param("PARTSTAT") for p in event.get_all("ATTENDEE")}
        self.assertEqual(partstats["sip:bob@example.com"], "ACCEPTED")

    def test_not_open_yet(self) -> None:
        """Before the early-join margin: 486 with VFREEBUSY and Retry-After until it opens."""
        self.store(conference_calendar(start=T0 + timedelta(hours=2)))
        response = self.answer(self.invite())
        self.assertEqual(response.code, 486)
        opens = T0 + timedelta(hours=2) - timedelta(minutes=10)
        self.assertEqual(
            int(response.header("retry-after") or 0), int(opens.timestamp() - self.clock.seconds())
        )
        assert response.content_type is not None
        self.assertEqual(response.content_type.params.get("component"), "VFREEBUSY")
        calendar = parse_xcal_calendar(response.body)
        [fb] = calendar.subcomponents("VFREEBUSY")
        [busy] = fb.get_all("FREEBUSY")
        self.assertEqual(busy.param("FBTYPE"), "BUSY-UNAVAILABLE")
        self.assertEqual(busy.values[0].stop, opens)

    def test_refusals_stable_until(self) -> None:
        """Only the not-open-yet 486 promises to stand (until it opens); a locked one does not."""
        self.store(conference_calendar(start=T0 + timedelta(hours=2)))
        opens = T0 + timedelta(hours=2) - timedelta(minutes=10)
        first = self.answer(self.invite(call_id="a"))
        again = self.answer(self.invite(call_id="b"))  # from the remembered decision
        self.assertEqual(
            (first.stable_until, again.stable_until), (opens.timestamp(), opens.timestamp())
        )
        self.store(conference_calendar(), locked="true")
        locked = self.answer(self.invite(call_id="c"))
        self.assertEqual((locked.code, locked.stable_until), (486, None))

    def test_busy_part_once_a_second(self) -> None:
        """Repeated 486s of one conference in one second share one VFREEBUSY, made once."""
        self.store(conference_calendar(start=T0 + timedelta(hours=2)))
        first = self.answer(self.invite(call_id="a"))
        second = self.answer(self.invite(call_id="b"))
        self.assertEqual((first.code, second.code), (486, 486))
        self.assertEqual(first.body, second.body)
        self.assertEqual(self.focus.busy_parts.made, 1)
        self.clock.advance(1)
        self.assertNotEqual(self.answer(self.invite(call_id="c")).body, first.body)
        self.assertEqual(self.focus.busy_parts.made, 2)

    def test_not_open_decided_once(self) -> None:
        """Refusals before the opening come from the remembered decision, until the opening."""
        self.store(conference_calendar(start=T0 + timedelta(hours=2)))
        first = self.answer(self.invite(call_id="a"))
        self.assertEqual(len(self.focus.closed), 1)
        self.clock.advance(3600)
        second = self.answer(self.invite(call_id="b"))
        self.assertEqual((first.code, second.code), (486, 486))
        retries = [int(r.header("retry-after") or 0) for r in (first, second)]
        self.assertEqual(retries[0] - retries[1], 3600)
        self.clock.advance(3600 - 600)  # the early-join margin: open now
        self.assertEqual(self.answer(self.invite(call_id="c")).code, 200)
        self.assertEqual(self.focus.outcomes["not-open"], 2)

    def test_not_open_rewritten(self) -> None:
        """A new version of the conference is decided afresh: moved to now, or cancelled."""
        self.store(conference_calendar(start=T0 + timedelta(hours=2)))
        self.assertEqual(self.answer(self.invite(call_id="a")).code, 486)
        self.store(conference_calendar())
        self.assertEqual(self.answer(self.invite(call_id="b")).code, 200)
        self.store(conference_calendar(start=T0 + timedelta(hours=2)))
        self.assertEqual(self.answer(self.invite(call_id="c")).code, 486)
        self.store(conference_calendar(start=T0 + timedelta(hours=2), status="CANCELLED"))
        self.assertEqual(self.answer(self.invite(call_id="d")).code, 410)

    def test_full(self) -> None:
        """A full conference answers 486 with Retry-After at the instance end."""
        self.store(conference_calendar(), max_participants="1")
        self.assertEqual(self.answer(self.invite(call_id="a")).code, 200)
        response = self.answer(self.invite(call_id="b", from_="<sip:c@example.com>;tag=c"))
        self.assertEqual(response.code, 486)
        self.assertEqual(int(response.header("retry-after") or 0), 59 * 60)

    def test_locked(self) -> None:
        """A locked conference answers 486."""
        self.store(conference_calendar(), locked="true")
        self.assertEqual(self.answer(self.invite()).code, 486)

    def test_cancelled_and_ended(self) -> None:
        """A cancelled conference is 410; so is one whose last instance ended."""
        self.store(conference_calendar(status="CANCELLED"))
        self.assertEqual(self.answer(self.invite()).code, 410)
        self.store(conference_calendar(start=T0 - timedelta(days=2)))
        self.assertEqual(self.answer(self.invite(call_id="x")).code, 410)

    def test_unknown(self) -> None:
        """An address nobody uses is 404."""
        self.assertEqual(self.answer(self.invite("sip:nobody@example.com")).code, 404)

    def bye(self, joined: Response) -> Request:
        """The BYE of bob's call C{call-1}, answered C{joined}."""
        return make_request(
            "BYE",
            CONF,
            to=joined.header("to"),
            call_id="call-1",
            cseq=2,
            from_="<sip:bob@example.com>;tag=bob1",
        )

    def test_bye(self) -> None:
        """BYE ends the call: 200, out of the roster, media closed."""
        response = self.answer(self.invite())
        bye = self.bye(response)
        self.assertEqual(self.answer(bye).code, 200)
        self.assertEqual(self.focus.roster.count(CONF), 0)
        self.assertTrue(self.media.sessions[0].closed)
        self.assertEqual(self.answer(bye).code, 481)

    def test_one_line_per_participation(self) -> None:
        """A join logs nothing; its end logs one info line: who, where, how long, why."""
        events: List[LogEvent] = []
        observe = cast(ILogObserver, events.append)
        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        response = self.answer(self.invite())
        self.assertEqual([e for e in events if e.get("log_namespace") == focus_app.__name__], [])
        self.clock.advance(12.5)
        bye = self.bye(response)
        self.answer(bye)
        [event] = [e for e in events if e.get("log_namespace") == focus_app.__name__]
        self.assertEqual(event["log_level"], LogLevel.info)
        self.assertEqual(
            formatEvent(event),
            f"sip:bob@example.com joined {CONF} for 12.5 s, left (BYE); 0 in; call-id=call-1",
        )
        self.assertEqual((event["seconds"], event["why"], event["count"]), (12.5, "BYE", 0))

    def test_session_timer_expiry(self) -> None:
        """A session not refreshed in time is ended with BYE."""
        response = self.answer(
            self.invite(headers=(("Supported", "timer"), ("Session-Expires", "90;refresher=uac")))
        )
        self.assertEqual(response.header("session-expires"), "90;refresher=uac")
        self.clock.advance(89)
        self.assertEqual(self.sent, [])
        self.clock.advance(1)
        self.assertEqual([r.method for r, _ in self.sent], ["BYE"])
        self.assertEqual(self.focus.roster.count(CONF), 0)

    def test_two_xx_timeout(self) -> None:
        """A 2xx never acknowledged ends the call with BYE."""
        request = self.invite()
        self.answer(request)
        self.focus.handle_timeout(request)
        self.assertEqual([r.method for r, _ in self.sent], ["BYE"])

    def test_cancel_before_answer(self) -> None:
        """A CANCEL while media is being set up releases it and adds nobody."""
        self.media.hold = Deferred()
        request = self.invite()
        context = RequestContext(peer=PEER, now=self.clock.seconds())
        result = self.focus.handle_request(request, context)
        assert isinstance(result, Deferred)
        self.focus.handle_cancel(request, context)
        self.media.hold.callback(None)  # type: ignore[arg-type]
        failure = self.failureResultOf(result, RemoteProtocolError)
        self.assertEqual(failure.value.status, 487)
        self.assertTrue(self.media.sessions[0].closed)
        self.assertEqual(self.focus.roster.count(CONF), 0)

    def test_media_refusal(self) -> None:
        """An offer the media cannot answer gets its 488."""
        body = OFFER.replace(b"m=audio", b"m=video")
        self.assertEqual(self.answer(self.invite(body=body)).code, 488)

    def test_session_interval_too_small(self) -> None:
        """A Session-Expires under Min-SE is 422."""
        response = self.answer(self.invite(headers=(("Session-Expires", "10"),)))
        self.assertEqual(response.code, 422)

    def test_stop_releases_media(self) -> None:
        """Stopping the focus releases every call's media."""
        self.answer(self.invite())
        self.focus.stop()
        self.assertTrue(self.media.sessions[0].closed)
        self.assertEqual(self.focus.calls, {})


class UserPathTests(FocusFixture):
    """
    INVITEs to users of a served domain (no conference at that address).
    """

    USER = "sip:bob@example.com"

    def test_free_registered_redirected(self) -> None:
        """A free registered user gets 302 with their contacts."""
        binding = RegistrationBinding(
            "sip:bob@192.0.2.20:5070", self.clock.seconds() + 600, 0.5, "r", 1
        )
        self.successResultOf(
            self.stores.registrations.set_bindings(self.USER, [binding], [], self.clock.seconds())
        )
        response = self.answer(
            self.invite(self.USER, call_id="u1", from_="<sip:carol@example.com>;tag=c")
        )
        self.assertEqual(response.code, 302)
        self.assertEqual(response.header_values("contact"), ["<sip:bob@192.0.2.20:5070>;q=0.5"])

    def test_tag_drawn_for_answers_only(self) -> None:
        """A 404 to an unknown address draws no To tag; a user's 302 draws one, its own."""
        drawn: List[str] = []

        def tag() -> str:
            drawn.append(f"t{len(drawn)}")
            return drawn[-1]

        self.focus._tag = tag
        self.assertEqual(self.answer(self.invite("sip:nobody@example.com")).code, 404)
        self.assertEqual(drawn, [])
        binding = RegistrationBinding(
            "sip:bob@192.0.2.20:5070", self.clock.seconds() + 600, None, "r", 1
        )
        self.successResultOf(
            self.stores.registrations.set_bindings(self.USER, [binding], [], self.clock.seconds())
        )
        response = self.answer(self.invite(self.USER, call_id="u0"))
        self.assertEqual(response.code, 302)
        self.assertEqual((drawn, response.to.tag), (["t0"], "t0"))

    def test_session_timer_left_to_sessions(self) -> None:
        """A Session-Expires under Min-SE is no 422 to a user's 404 or 302 (no session)."""
        small = (("Session-Expires", "10"),)
        response = self.answer(self.invite("sip:nobody@example.com", headers=small))
        self.assertEqual(response.code, 404)
        binding = RegistrationBinding(
            "sip:bob@192.0.2.20:5070", self.clock.seconds() + 600, None, "r", 1
        )
        self.successResultOf(
            self.stores.registrations.set_bindings(self.USER, [binding], [], self.clock.seconds())
        )
        response = self.answer(self.invite(self.USER, call_id="u3", headers=small))
        self.assertEqual(response.code, 302)

    def test_user_in_conference_busy(self) -> None:
        """A user in a conference gets 486 with VFREEBUSY and Retry-After at its end."""
        self.answer(self.invite())  # bob joins the conference
        response = self.answer(
            self.invite(self.USER, call_id="u2", from_="<sip:carol@example.com>;tag=c")
        )
        self.assertEqual(response.code, 486)
        self.assertEqual(int(response.header("retry-after") or 0), 59 * 60)
        calendar = parse_xcal_calendar(response.body)
        [fb] = calendar.subcomponents("VFREEBUSY")
        self.assertEqual(fb.value("ORGANIZER"), self.USER)

    def test_published_busy(self) -> None:
        """An OPAQUE published event now makes the user busy; unregistered and free is 480."""
        entry = CalendarEntry(
            self.USER,
            "busy-1",
            _xcal(
                conference_ical(
                    uid="busy-1", method="PUBLISH", start=T0, organizer=self.USER, attendees=()
                )
            ),
        )
        self.successResultOf(self.stores.calendars.put_entry(entry))
        response = self.answer(
            self.invite(self.USER, call_id="u3", from_="<sip:carol@example.com>;tag=c")
        )
        self.assertEqual(response.code, 486)
        self.clock.advance(3600)
        response = self.answer(
            self.invite(self.USER, call_id="u4", from_="<sip:carol@example.com>;tag=c")
        )
        self.assertEqual(response.code, 480)
        self.assertIsNone(response.header("retry-after"))

    def schedule_message(self, body: str, identity: str) -> Response:
        """
        A scheduling MESSAGE (xCal) by C{identity} (a user name), answered by
        a scheduler over this focus's stores.
        """
        from conference.app.scheduler import SchedulingHandler
        from conference.auth import SIPIdentity

        router = CoreRouter(["example.com"], tag_factory=lambda: "tag")
        scheduler = SchedulingHandler(
            self.stores.conferences,
            self.stores.calendars,
            self.stores.bindings,
            self.stores.registrations,
            None,
            domain_of=router.domain_of,
            default_domain="example.com",
        )
        request = make_request(
            "MESSAGE",
            "sip:conf-2@example.com",
            body=_xcal(body),
            headers=[("Content-Type", "application/calendar+xml")],
        )
        who = SIPIdentity(identity, "example.com")
        context = RequestContext(PEER, self.clock.seconds(), identity=who)
        response = self.successResultOf(scheduler.handle_request(request, context))
        self.assertEqual(response.code, 200)
        return response

    def test_organizer_cannot_make_attendee_busy(self) -> None:
        """Alice writing Bob ACCEPTED leaves Bob reachable; only his own REPLY makes him busy."""
        binding = RegistrationBinding(
            "sip:bob@192.0.2.20:5070", self.clock.seconds() + 7200, None, "r", 1
        )
        now = self.clock.seconds()
        self.successResultOf(self.stores.registrations.set_bindings(self.USER, [binding], [], now))
        request = conference_ical(
            uid="mtg-2", room="sip:conf-2@example.com", attendees=(self.USER,)
        ).replace(f"PARTSTAT=NEEDS-ACTION;RSVP=TRUE:{self.USER}", f"PARTSTAT=ACCEPTED:{self.USER}")
        self.assertIn(f"PARTSTAT=ACCEPTED:{self.USER}", request)
        self.schedule_message(request, "alice")
        invite = self.invite(self.USER, call_id="u5", from_="<sip:carol@example.com>;tag=c")
        self.assertEqual(self.answer(invite).code, 302)
        reply = "\r\n".join(
            [
                "BEGIN:VCALENDAR",
                "VERSION:2.0",
                "PRODID:-//tests//EN",
                "METHOD:REPLY",
                "BEGIN:VEVENT",
                "UID:mtg-2",
                "DTSTAMP:20261201T090000Z",
                "ORGANIZER:sip:alice@example.com",
                f"ATTENDEE;PARTSTAT=ACCEPTED:{self.USER}",
                "END:VEVENT",
                "END:VCALENDAR",
                "",
            ]
        )
        self.schedule_message(reply, "bob")
        invite = self.invite(self.USER, call_id="u6", from_="<sip:carol@example.com>;tag=c")
        self.assertEqual(self.answer(invite).code, 486)


def _xcal(text: str) -> bytes:
    from conference.calendar import to_xcal

    return to_xcal(parse_ical_calendar(text))
