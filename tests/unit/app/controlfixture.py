# -*- test-case-name: tests.unit.app.test_control,tests.unit.app.test_confevents -*-
"""
A focus with conference control and the conference event package over
memory stores, a fake clock and fake media, for the conference control
tests: calls join and leave, subscribers subscribe, NOTIFYs are recorded.
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import ILogObserver, LogEvent, LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from conference.app.confevents import ConferenceSubscriptions
from conference.app.control import ConferenceControl
from conference.app.core import CoreRouter, RequestContext
from conference.app.focus import Focus
from conference.app.notifier import EventRouter
from conference.app.refer import ModeratorRequests
from conference.auth import SIPIdentity
from conference.calendar import parse_ical_calendar
from conference.control.policy import ALLOW
from conference.records import ConferenceRecord
from conference.sip.message import Request, Response, make_response
from conference.sip.transaction import Peer
from conference.testing import memory_stores
from tests.builders import make_request
from tests.unit.app.calendars import T0, conference_ical, conference_record
from tests.unit.app.test_focus import OFFER, FakeMedia

CONF = "sip:conf@example.com"
ALICE = SIPIdentity("alice", "example.com")  # organizer
BOB = SIPIdentity("bob", "example.com")  # attendee
CAROL = SIPIdentity("carol", "example.com")  # chair
DAVE = SIPIdentity("dave", "example.com")  # non-participant
EVE = SIPIdentity("eve", "example.com")  # not invited


def conference_text(extra: str = "") -> str:
    """
    The test conference: Alice organizes, Bob attends, Carol chairs, Dave
    listens.
    """
    text = conference_ical(attendees=("sip:bob@example.com",), extra=extra)
    return text.replace(
        "ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:sip:bob@example.com",
        "ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:sip:bob@example.com\r\n"
        "ATTENDEE;ROLE=CHAIR:sip:carol@example.com\r\n"
        "ATTENDEE;ROLE=NON-PARTICIPANT:sip:dave@example.com",
    )


class Sender:
    """
    Records the requests the focus and the notifier send; NOTIFYs are
    answered 200 at once, other requests (BYE, INVITE) never.
    """

    def __init__(self) -> None:
        self.sent: List[Tuple[Request, Peer]] = []

    def send_request(self, request: Request, peer: Peer) -> Deferred[Response]:
        self.sent.append((request, peer))
        if request.method == "NOTIFY":
            d: Deferred[Response] = Deferred()
            d.callback(make_response(request, 200))
            return d
        return Deferred()

    def of(self, method: str) -> List[Request]:
        return [r for r, _ in self.sent if r.method == method]


class ControlFixture(SynchronousTestCase):
    """
    The focus, its control and the conference event package.
    """

    default_guests = ALLOW
    extra = ""

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(T0.timestamp() + 60)
        self.stores = memory_stores()
        self.media = FakeMedia(self.clock)
        self.sender = Sender()
        self.router = CoreRouter(
            ["example.com"], tag_factory=lambda: "tag", accept_ip_literals=True
        )
        self.focus = Focus(
            stores=self.stores,
            media=self.media,
            router=self.router,
            reactor=self.clock,
            send_request=self.sender.send_request,
            local_address=lambda peer: ("127.0.0.1", 5060),
            tag_factory=lambda: f"ft{len(self.focus.calls)}",
            branch_factory=lambda: "z9hG4bKfocus",
        )
        self.control = ConferenceControl(self.focus, default_guests=self.default_guests)
        self.events = ConferenceSubscriptions(
            self.control,
            self.router.domain_of,
            self.sender,
            self.clock,
            tag_factory=lambda: "subtag",
            branch_factory=lambda: "z9hG4bKnotify",
        )
        self.moderation = ModeratorRequests(
            self.control,
            self.router.domain_of,
            self.sender,
            self.clock,
            tag_factory=lambda: "refertag",
            branch_factory=lambda: "z9hG4bKrefer",
        )
        router = EventRouter()
        router.add("conference", self.events)
        self.router.add_handler(self.focus)
        self.router.add_handler(router)
        self.router.add_handler(self.moderation)
        self.store(self.extra)
        self.cseq = 1

    def store(self, extra: str = "", **settings: str) -> ConferenceRecord:
        record = conference_record(parse_ical_calendar(conference_text(extra)))
        record = ConferenceRecord(**{**record.__dict__, "settings": settings, "version": 0})
        existing = self.successResultOf(self.stores.conferences.get(record.uri))
        expected = existing.version if existing is not None else 0
        return self.successResultOf(self.stores.conferences.put(record, expected))

    def watch_errors(self) -> List[LogEvent]:
        """
        The warnings and errors logged from now until the test ends.
        """
        errors: List[LogEvent] = []

        @implementer(ILogObserver)
        def observe(event: LogEvent) -> None:
            if event["log_level"] >= LogLevel.warn:
                errors.append(event)

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        return errors

    def dispatch(self, request: Request, identity: Optional[SIPIdentity] = None) -> Response:
        context = RequestContext(
            Peer("UDP", "192.0.2.10", 5062, "udp"), self.clock.seconds(), identity=identity
        )
        answer = self.router.dispatch(request, context)
        out: List[Any] = []
        if isinstance(answer, Deferred):
            answer.addBoth(out.append)
        else:
            out.append(answer)
        assert out and isinstance(out[0], Response), out
        return out[0]

    def join(
        self,
        who: Optional[SIPIdentity],
        *,
        uri: str = CONF,
        name: Optional[str] = None,
        body: bytes = OFFER,
    ) -> Response:
        """
        An INVITE to C{uri} as C{who} (anonymous with C{name} as From)
        carrying the SDP offer C{body}.
        """
        user = who.username if who is not None else (name or "anon")
        self.cseq += 1
        request = make_request(
            "INVITE",
            uri,
            call_id=f"call-{user}-{self.cseq}",
            from_=f"<sip:{user}@example.com>;tag={user}1",
            headers=[
                ("Contact", f"<sip:{user}@192.0.2.10:5062>"),
                ("Content-Type", "application/sdp"),
            ],
            body=body,
        )
        return self.dispatch(request, who)

    def in_call(
        self,
        joined: Response,
        method: str,
        *,
        body: bytes = b"",
        headers: Tuple[Tuple[str, str], ...] = (),
        identity: Optional[SIPIdentity] = None,
    ) -> Response:
        """
        A request in the call the 200 C{joined} answered.
        """
        self.cseq += 1
        extra = list(headers)
        if body:
            extra.append(("Content-Type", "application/x-conference-control"))
        request = make_request(
            method,
            "sip:conf@127.0.0.1:5060",
            call_id=joined.call_id,
            from_=joined.header("from") or "",
            to=joined.header("to") or "",
            cseq=self.cseq + 10,
            headers=extra,
            body=body,
        )
        return self.dispatch(request, identity)

    def subscribe(
        self,
        who: Optional[SIPIdentity] = BOB,
        *,
        expires: Optional[str] = "600",
        to_tag: Optional[str] = None,
        call_id: str = "sub-1",
        headers: Tuple[Tuple[str, str], ...] = (),
        event: str = "conference",
        uri: str = CONF,
    ) -> Response:
        extra = [("Event", event), ("Contact", "<sip:sub@192.0.2.1:5070>"), *headers]
        if expires is not None:
            extra.append(("Expires", expires))
        self.cseq += 1
        request = make_request(
            "SUBSCRIBE",
            uri,
            to=f"<{uri}>" + (f";tag={to_tag}" if to_tag else ""),
            call_id=call_id,
            cseq=self.cseq,
            headers=extra,
            from_=f"<sip:{(who or BOB).username}@example.com>;tag=sub1",
        )
        return self.dispatch(request, who)

    def notifies(self) -> List[Request]:
        """
        The NOTIFYs sent so far, after letting the scheduled ones go.
        """
        self.clock.advance(0)
        return self.sender.of("NOTIFY")
