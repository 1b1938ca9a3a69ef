# -*- test-case-name: tests.loopback.test_caldav -*-
"""
Tests for L{conference.app.caldav}: the options, the parsers of CalDAV
answers, the bounds (timeout, size, errors, cache) with a fake HTTP agent,
and a real CalDAV server, Radicale, started on loopback.
"""

from __future__ import annotations

import base64
import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional, Tuple

from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.internet.task import Clock
from twisted.logger import ILogObserver, LogLevel, formatEvent, globalLogPublisher
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from conference.app.caldav import (
    CalDAVError,
    CalDAVFreeBusy,
    CalDAVMirror,
    busy_from_freebusy,
    busy_from_multistatus,
    organizer_objects,
    parse_source,
    read_credentials,
)
from conference.app.conferences import overlaps_busy, utc_datetime
from conference.app.core import RequestContext
from conference.calendar import parse_ical_calendar
from conference.interfaces import IConferenceStore
from conference.records import ConferenceRecord
from conference.service import ConferenceService, ServerConfig
from conference.sip.errors import RemoteProtocolError
from conference.sip.message import Request
from conference.store import Stores
from conference.store.memory import MemoryConferenceStore
from tests.unit.app.calendars import T0, conference_ical, conference_record
from tests.unit.app.test_focus import PEER, FocusFixture
from tests.unit.app.test_scheduler import ROOM, Harness, attendee_of_reply, xcal

reactor: Any = _reactor
UTC = timezone.utc
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)

FREEBUSY = b"""BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//test//EN\r
BEGIN:VFREEBUSY\r
DTSTAMP:20261201T080000Z\r
DTSTART:20261201T080000Z\r
DTEND:20261208T080000Z\r
FREEBUSY;FBTYPE=BUSY:20261201T090000Z/20261201T100000Z\r
FREEBUSY;FBTYPE=BUSY-TENTATIVE:20261202T090000Z/PT30M\r
FREEBUSY;FBTYPE=FREE:20261203T090000Z/20261203T100000Z\r
END:VFREEBUSY\r
END:VCALENDAR\r
"""


def event(uid: str, start: datetime, minutes: int = 60, extra: str = "") -> str:
    """
    A VCALENDAR with one VEVENT.
    """
    fmt = "%Y%m%dT%H%M%SZ"
    end = start + timedelta(minutes=minutes)
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:{NOW.strftime(fmt)}\r\nDTSTART:{start.strftime(fmt)}\r\n"
        f"DTEND:{end.strftime(fmt)}\r\nSUMMARY:x\r\n{extra}END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def multistatus(*calendars: str) -> bytes:
    """
    A calendar-query answer carrying C{calendars}.
    """
    parts = "".join(
        "<D:response><D:href>/a/c/x.ics</D:href><D:propstat><D:prop>"
        f"<C:calendar-data>{c.replace('&', '&amp;').replace('<', '&lt;')}</C:calendar-data>"
        "</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>"
        for c in calendars
    )
    return (
        '<?xml version="1.0"?><D:multistatus xmlns:D="DAV:" '
        f'xmlns:C="urn:ietf:params:xml:ns:caldav">{parts}</D:multistatus>'
    ).encode()


class OptionTests(SynchronousTestCase):
    """
    L{parse_source} and L{read_credentials}.
    """

    def test_source(self) -> None:
        """caldav:URL gives the URL; other forms are refused with a reason."""
        url = "http://127.0.0.1:5232/{user}/calendar/"
        self.assertEqual(parse_source("caldav:" + url), url)
        for bad in ("http://x/", "caldav:", "caldav:ftp://x/", "caldav:http://x/{who}/"):
            self.assertRaises(ValueError, parse_source, bad)

    def test_credentials(self) -> None:
        """The first line USER:PASSWORD is read; a missing file or bad line is an error."""
        path = self.mktemp()
        with open(path, "w", encoding="utf-8") as f:
            f.write("svc:pa:ss\nignored\n")
        self.assertEqual(read_credentials(path), ("svc", "pa:ss"))
        with open(path, "w", encoding="utf-8") as f:
            f.write("nocolon\n")
        self.assertRaises(ValueError, read_credentials, path)
        self.assertRaises(ValueError, read_credentials, path + ".missing")


class ParseTests(SynchronousTestCase):
    """
    Busy time from CalDAV answers.
    """

    def test_freebusy(self) -> None:
        """VFREEBUSY periods become (FBTYPE, interval)s; FREE is left out."""
        busy = busy_from_freebusy(FREEBUSY, NOW, NOW + timedelta(days=7))
        self.assertEqual(
            busy,
            [
                ("BUSY", (NOW + timedelta(hours=1), NOW + timedelta(hours=2))),
                (
                    "BUSY-TENTATIVE",
                    (NOW + timedelta(days=1, hours=1), NOW + timedelta(days=1, hours=1.5)),
                ),
            ],
        )

    def test_freebusy_garbage(self) -> None:
        """What is no calendar, or has no VFREEBUSY, is a CalDAVError."""
        for data in (b"<html>nope</html>", event("u", NOW).encode()):
            self.assertRaises(CalDAVError, busy_from_freebusy, data, NOW, NOW + timedelta(1))

    def test_multistatus(self) -> None:
        """Events in a multistatus give our own busy computation; bad objects are skipped."""
        data = multistatus(
            event("a", NOW + timedelta(hours=1)),
            "garbage",
            event("b", NOW + timedelta(hours=5), extra="TRANSP:TRANSPARENT\r\n"),
        )
        busy = busy_from_multistatus(data, "sip:alice@example.com", NOW, NOW + timedelta(1))
        self.assertEqual(busy, [("BUSY", (NOW + timedelta(hours=1), NOW + timedelta(hours=2)))])

    def test_multistatus_garbage(self) -> None:
        """What is no multistatus is a CalDAVError; entities are not expanded."""
        self.assertRaises(CalDAVError, busy_from_multistatus, b"{}", "a", NOW, NOW)
        bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
        self.assertRaises(CalDAVError, busy_from_multistatus, bomb, "a", NOW, NOW)


class Response:
    """
    A fake twisted.web response.
    """

    def __init__(self, code: int, ctype: str, body: bytes) -> None:
        from twisted.web.http_headers import Headers

        self.code = code
        self.headers = Headers({b"content-type": [ctype.encode()]})
        self.body = body

    def deliverBody(self, protocol: Any) -> None:
        from twisted.python.failure import Failure
        from twisted.web.client import ResponseDone

        for i in range(0, len(self.body), 1000):
            protocol.dataReceived(self.body[i : i + 1000])
        protocol.connectionLost(Failure(ResponseDone()))


class Agent:
    """
    A fake agent answering each request with the next of C{answers}
    (a Response, or None for never).
    """

    def __init__(self, *answers: Optional[Response]) -> None:
        self.answers = list(answers)
        self.requests: List[Tuple[bytes, bytes, Any]] = []

    def request(self, method: bytes, url: bytes, headers: Any, body: Any) -> Deferred[Any]:
        self.requests.append((method, url, headers))
        answer = self.answers.pop(0)
        return Deferred() if answer is None else succeed(answer)


class BoundsTests(SynchronousTestCase):
    """
    Whatever the CalDAV server does, busy() answers, within the timeout.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(NOW.timestamp())

    def source(self, agent: Agent, **kwargs: Any) -> CalDAVFreeBusy:
        return CalDAVFreeBusy(
            "http://cal.example/{user}/calendar/",
            reactor=self.clock,
            agent=agent,
            credentials=("svc", "pw"),
            **kwargs,
        )

    def busy(self, source: CalDAVFreeBusy) -> Any:
        return self.successResultOf(source.busy("sip:alice@example.com", self.clock.seconds()))

    def test_freebusy_query(self) -> None:
        """A free-busy-query answer is used, with {user} and Basic credentials."""
        agent = Agent(Response(200, "text/calendar; charset=utf-8", FREEBUSY))
        self.assertEqual(len(self.busy(self.source(agent))), 2)
        method, url, headers = agent.requests[0]
        self.assertEqual((method, url), (b"REPORT", b"http://cal.example/alice/calendar/"))
        self.assertEqual(headers.getRawHeaders(b"authorization"), [b"Basic c3ZjOnB3"])

    def test_fallback(self) -> None:
        """A server without free-busy-query gets a calendar-query."""
        agent = Agent(
            Response(501, "text/plain", b"no"),
            Response(207, "application/xml", multistatus(event("a", NOW + timedelta(hours=1)))),
        )
        self.assertEqual(len(self.busy(self.source(agent))), 1)
        self.assertEqual(agent.requests[1][2].getRawHeaders(b"depth"), [b"1"])

    def test_hang(self) -> None:
        """A server that never answers costs the timeout, then local data only."""
        source = self.source(Agent(None), timeout=2.0)
        d = source.busy("sip:alice@example.com", self.clock.seconds())
        self.assertNoResult(d)
        self.clock.advance(2.0)
        self.assertEqual(self.successResultOf(d), [])
        again = source.busy("sip:alice@example.com", self.clock.seconds())
        self.assertEqual(self.successResultOf(again), [])  # no second wait within the ttl

    def test_unauthorized(self) -> None:
        """401 degrades to no busy time."""
        self.assertEqual(self.busy(self.source(Agent(Response(401, "text/plain", b"")))), [])

    def test_huge(self) -> None:
        """An answer past max_bytes is abandoned."""
        big = Response(200, "text/calendar", b"X" * 50_000)
        self.assertEqual(self.busy(self.source(Agent(big), max_bytes=10_000)), [])

    def test_garbage(self) -> None:
        """A 207 that is no multistatus degrades to no busy time."""
        agent = Agent(Response(501, "", b""), Response(207, "text/html", b"<html>"))
        self.assertEqual(self.busy(self.source(agent)), [])

    def test_cache(self) -> None:
        """A second look within the ttl asks nothing; after it, the server again."""
        agent = Agent(
            Response(200, "text/calendar", FREEBUSY), Response(200, "text/calendar", FREEBUSY)
        )
        source = self.source(agent, ttl=60.0)
        self.busy(source)
        self.busy(source)
        self.assertEqual(len(agent.requests), 1)
        self.clock.advance(61)
        self.busy(source)
        self.assertEqual(len(agent.requests), 2)


def free_port() -> int:
    """
    A free TCP port on loopback.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RadicaleTests(TestCase):
    """
    Against Radicale on loopback, started here with a user alice.
    """

    def setUp(self) -> None:
        if importlib.util.find_spec("radicale") is None:
            if os.environ.get("CI"):
                raise AssertionError("radicale is not installed; the test extra should have it")
            raise SkipTest("radicale is not installed (pip install -e .[test])")
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        self.port = free_port()
        users = os.path.join(folder, "users")
        with open(users, "w", encoding="utf-8") as f:
            f.write("alice:secret\nconf:secret\n")
        config = os.path.join(folder, "config")
        with open(config, "w", encoding="utf-8") as f:
            f.write(
                f"[server]\nhosts = 127.0.0.1:{self.port}\n"
                "[auth]\ntype = htpasswd\n"
                f"htpasswd_filename = {users}\nhtpasswd_encryption = plain\n"
                f"[storage]\nfilesystem_folder = {folder}/collections\n"
                "[rights]\ntype = owner_only\n[logging]\nlevel = warning\n"
            )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "radicale", "--config", config],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.addCleanup(self._stop)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("radicale did not start") from None
                time.sleep(0.1)
        self.base = f"http://127.0.0.1:{self.port}/alice/calendar/"
        self.http("MKCALENDAR", self.base)
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
        self.http("PUT", self.base + "now.ics", event("now", start).encode(), "text/calendar")
        later = start + timedelta(days=2)
        self.http("PUT", self.base + "later.ics", event("later", later).encode(), "text/calendar")

    def _stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        if self.process.stderr is not None:
            self.process.stderr.close()

    def http(
        self, method: str, url: str, body: bytes = b"", ctype: str = "", user: str = "alice"
    ) -> int:
        """
        A blocking HTTP request as C{user} (test set-up only).
        """
        request = urllib.request.Request(url, data=body or None, method=method)
        token = base64.b64encode(f"{user}:secret".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        if ctype:
            request.add_header("Content-Type", ctype)
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)

    def source(self, **kwargs: Any) -> CalDAVFreeBusy:
        return CalDAVFreeBusy(
            f"http://127.0.0.1:{self.port}/{{user}}/calendar/",
            reactor=reactor,
            credentials=("alice", "secret"),
            timeout=10.0,
            **kwargs,
        )

    @inlineCallbacks
    def test_free_busy_query(self) -> Any:
        """Radicale's busy time holds both events, the current one first."""
        busy = yield self.source().busy("sip:alice@example.com", time.time())
        self.assertEqual(len(busy), 2)
        first = min(interval for _, interval in busy)
        self.assertLess(first[0].timestamp(), time.time() + 1)

    @inlineCallbacks
    def test_calendar_query(self) -> Any:
        """Computed from a calendar-query, the busy time is the same."""
        now = time.time()
        fb = yield self.source().busy("sip:alice@example.com", now)
        cq = yield self.source(prefer_freebusy=False).busy("sip:alice@example.com", now)
        self.assertEqual(sorted(i for _, i in cq), sorted(i for _, i in fb))

    @inlineCallbacks
    def test_write_conference(self) -> Any:
        """
        A conference written for its organizer is in Radicale, counts in
        the busy time, and goes again when deleted.
        """
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
        text = conference_ical(uid="w1@example.com", start=start)
        [(_, _, ical)] = organizer_objects(conference_record(parse_ical_calendar(text)))
        assert ical is not None
        source = self.source()
        yield source.write("sip:alice@example.com", "w1@example.com", ical)
        url = source.object_url("sip:alice@example.com", "w1@example.com")
        self.assertEqual(self.http("GET", url), 200)
        busy = yield self.source().busy("sip:alice@example.com", time.time())
        self.assertIn(start, [interval[0] for _, interval in busy])
        yield source.write("sip:alice@example.com", "w1@example.com", None)
        with self.assertRaises(urllib.error.HTTPError):
            self.http("GET", url)

    @inlineCallbacks
    def test_room_booking_conflict(self) -> Any:
        """
        Radicale's busy time of a room, read as the scheduler reads it,
        overlaps a booking at the same time and not one the day after.
        """
        now = time.time()
        busy = yield self.source().busy("sip:alice@example.com", now)
        start = datetime.now(UTC).replace(microsecond=0)
        over = parse_ical_calendar(conference_ical(uid="b1@example.com", start=start))
        free = parse_ical_calendar(
            conference_ical(uid="b2@example.com", start=start + timedelta(days=1))
        )
        window = timedelta(days=7)
        self.assertTrue(overlaps_busy(over, busy, utc_datetime(now), window))
        self.assertFalse(overlaps_busy(free, busy, utc_datetime(now), window))

    @inlineCallbacks
    def test_scheduler_declines_busy_room(self) -> Any:
        """
        The scheduler, reading a room's Radicale calendar, DECLINES a new
        booking over an event there and ACCEPTS one a day later.
        """
        room = f"http://127.0.0.1:{self.port}/conf/calendar/"
        self.http("MKCALENDAR", room, user="conf")
        taken = event("taken", T0 + timedelta(minutes=15)).encode()
        self.http("PUT", room + "taken.ics", taken, "text/calendar", user="conf")
        h = Harness()
        source = CalDAVFreeBusy(
            f"http://127.0.0.1:{self.port}/{{user}}/calendar/",
            reactor=reactor,
            credentials=("conf", "secret"),
            timeout=10.0,
            window=timedelta(days=30),
        )
        h.handler.external_busy = source.busy
        h.handler.external_window = source.window
        response = yield h.deliver(xcal(conference_ical(room=ROOM)))
        self.assertEqual(response.code, 200)
        ((_, calendar),) = h.outgoing()
        self.assertEqual(attendee_of_reply(calendar), (ROOM, "DECLINED"))
        self.assertIsNone(h.record())
        later = conference_ical(room=ROOM, uid="later@example.com", start=T0 + timedelta(days=1))
        response = yield h.deliver(xcal(later))
        self.assertEqual(response.code, 200)
        ((_, calendar),) = h.outgoing()
        self.assertEqual(attendee_of_reply(calendar), (ROOM, "ACCEPTED"))
        self.assertIsNotNone(h.record())

    @inlineCallbacks
    def test_wrong_password(self) -> Any:
        """A refused login (401) gives no busy time, and no error."""
        source = self.source()
        source.credentials = ("alice", "wrong")
        busy = yield source.busy("sip:alice@example.com", time.time())
        self.assertEqual(busy, [])

    @inlineCallbacks
    def test_no_calendar(self) -> Any:
        """A user without a calendar there has no CalDAV busy time."""
        busy = yield self.source().busy("sip:bob@example.com", time.time())
        self.assertEqual(busy, [])


class BusyPathTests(FocusFixture):
    """
    The focus's busy path (iSIP 4.5) with CalDAV busy time.
    """

    USER = "sip:bob@example.com"

    def caldav(self, *answers: Optional[Response]) -> None:
        """
        Give the focus a CalDAV source answering C{answers}.
        """
        source = CalDAVFreeBusy(
            "http://cal.example/{user}/", reactor=self.clock, agent=Agent(*answers), timeout=2.0
        )
        self.focus.users.external = source.busy

    def call(self) -> Request:
        return self.invite(self.USER, call_id="c1", from_="<sip:carol@example.com>;tag=c")

    def test_busy_in_caldav(self) -> None:
        """Busy now in CalDAV: 486 with Retry-After at the end of the busy period."""
        now = datetime.fromtimestamp(self.clock.seconds(), UTC)
        fmt = "%Y%m%dT%H%M%SZ"
        begin, end = now - timedelta(minutes=5), now + timedelta(minutes=30)
        period = f"{begin.strftime(fmt)}/{end.strftime(fmt)}"
        data = FREEBUSY.replace(b"20261201T090000Z/20261201T100000Z", period.encode())
        self.caldav(Response(200, "text/calendar", data))
        response = self.answer(self.call())
        self.assertEqual(response.code, 486)
        self.assertEqual(int(response.header("retry-after") or 0), 30 * 60)

    def test_caldav_hangs(self) -> None:
        """A hanging CalDAV server delays the answer by the timeout only; local data decides."""
        self.caldav(None)
        context = RequestContext(peer=PEER, now=self.clock.seconds())
        result = self.focus.handle_request(self.call(), context)
        assert isinstance(result, Deferred)
        self.assertNoResult(result)
        self.clock.advance(2.0)
        failure = self.failureResultOf(result, RemoteProtocolError)
        self.assertEqual(failure.value.status, 404)  # nothing known of bob here


class SchedulerTests(SynchronousTestCase):
    """
    The scheduler's booking check of a room against its CalDAV busy time,
    through L{CalDAVFreeBusy} with a fake agent: the same cache and
    timeout as the busy path, and a MESSAGE never held past the timeout.
    """

    def setUp(self) -> None:
        self.h = Harness()
        self.warnings: List[str] = []

        @implementer(ILogObserver)
        def observe(event: Dict[str, Any]) -> None:
            if event.get("log_level") == LogLevel.warn:
                self.warnings.append(formatEvent(event) or "")

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)

    def source(self, *answers: Optional[Response]) -> Agent:
        """
        Give the scheduler a CalDAV source whose agent answers C{answers}.
        """
        agent = Agent(*answers)
        source = CalDAVFreeBusy(
            "http://cal.example/{user}/calendar/",
            reactor=self.h.clock,
            agent=agent,
            timeout=2.0,
            window=timedelta(days=30),
        )
        self.h.handler.external_busy = source.busy
        self.h.handler.external_window = source.window
        return agent

    def test_busy_declined(self) -> None:
        """The room's free-busy-query answer is busy then: DECLINED, nothing stored."""
        agent = self.source(Response(200, "text/calendar", FREEBUSY))
        self.assertEqual(self.h.schedule(room=ROOM).code, 200)
        ((_, calendar),) = self.h.outgoing()
        self.assertEqual(attendee_of_reply(calendar), (ROOM, "DECLINED"))
        self.assertIsNone(self.h.record())
        self.assertEqual(agent.requests[0][1], b"http://cal.example/conf/calendar/")

    def test_hang_degrades(self) -> None:
        """
        A CalDAV server that never answers holds the MESSAGE for the timeout
        only; the booking is then decided on local data, and that is logged.
        """
        self.source(None)
        d = self.h.deliver(xcal(conference_ical(room=ROOM)))
        self.assertNoResult(d)
        self.h.clock.advance(2.0)
        self.assertEqual(self.successResultOf(d).code, 200)
        ((_, calendar),) = self.h.outgoing()
        self.assertEqual(attendee_of_reply(calendar), (ROOM, "ACCEPTED"))
        self.assertIsNotNone(self.h.record())
        [line] = self.warnings
        self.assertIn(f"CalDAV free/busy of {ROOM} unavailable", line)

    def test_cached(self) -> None:
        """A second booking within the cache's lifetime (at a FREE hour) asks the server nothing."""
        agent = self.source(Response(200, "text/calendar", FREEBUSY))
        self.h.schedule(room=ROOM)
        self.h.outgoing()
        later = conference_ical(room=ROOM, uid="later@example.com", start=T0 + timedelta(days=3))
        self.assertEqual(self.h.message(xcal(later)).code, 200)
        ((_, calendar),) = self.h.outgoing()
        self.assertEqual(attendee_of_reply(calendar), (ROOM, "ACCEPTED"))
        self.assertEqual(len(agent.requests), 1)


class MirrorTests(SynchronousTestCase):
    """
    L{CalDAVMirror}: stored conferences are written to their local
    organizers' CalDAV calendars.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.agent = Agent(*[Response(201, "", b"") for _ in range(4)])
        self.caldav = CalDAVFreeBusy(
            "http://cal.example/{user}/calendar/", reactor=self.clock, agent=self.agent
        )
        self.store = MemoryConferenceStore()
        self.mirror = CalDAVMirror(
            self.store, self.caldav, local=lambda aor: aor.endswith("@example.com")
        )

    def record(self, organizer: str = "sip:alice@example.com", **kwargs: Any) -> ConferenceRecord:
        text = conference_ical(uid="c 1@example.com", organizer=organizer, **kwargs)
        return conference_record(parse_ical_calendar(text))

    def test_interface(self) -> None:
        """The mirror is a conference store."""
        verifyObject(IConferenceStore, self.mirror)

    def test_organizer_written(self) -> None:
        """A stored conference is PUT for its organizer, as iCalendar without METHOD."""
        stored = self.successResultOf(self.mirror.put(self.record(), None))
        self.assertEqual(self.successResultOf(self.store.get(stored.uri)), stored)
        ((method, url, headers),) = self.agent.requests
        self.assertEqual(
            (method, url),
            (b"PUT", b"http://cal.example/alice/calendar/conference-c%201%40example.com.ics"),
        )
        self.assertEqual(headers.getRawHeaders(b"content-type"), [b"text/calendar; charset=utf-8"])
        [(organizer, uid, ical)] = organizer_objects(stored)
        self.assertEqual((organizer, uid), ("sip:alice@example.com", "c 1@example.com"))
        assert ical is not None
        self.assertIn(b"BEGIN:VEVENT", ical)
        self.assertNotIn(b"METHOD:", ical)

    def test_foreign_organizer_not_written(self) -> None:
        """A conference organized from another domain is stored only."""
        self.successResultOf(self.mirror.put(self.record("sip:zoe@elsewhere.example"), None))
        self.assertEqual(self.agent.requests, [])

    def test_cancelled_and_deleted(self) -> None:
        """A cancelled conference, and a deleted one, are DELETEd from CalDAV."""
        self.successResultOf(self.mirror.put(self.record(status="CANCELLED"), None))
        self.assertEqual(self.agent.requests[-1][0], b"DELETE")
        stored = self.successResultOf(self.mirror.put(self.record(), None))
        self.assertEqual(self.agent.requests[-1][0], b"PUT")
        self.assertTrue(self.successResultOf(self.mirror.delete(stored.uri)))
        self.assertEqual(self.agent.requests[-1][0], b"DELETE")
        self.assertIsNone(self.successResultOf(self.store.get(stored.uri)))

    def test_caldav_down(self) -> None:
        """A CalDAV server that hangs neither fails nor holds up the store write."""
        self.agent.answers = [None]
        stored = self.successResultOf(self.mirror.put(self.record(), None))
        self.clock.advance(self.caldav.timeout)  # the write gives up, logged
        self.assertIsNotNone(self.successResultOf(self.store.get(stored.uri)))

    def test_service_wiring(self) -> None:
        """--freebusy-write puts the mirror between the scheduler and the calendar store."""
        config = ServerConfig(
            listen=[],
            domains=["example.com"],
            store="memory",
            freebusy_source="http://127.0.0.1:1/{user}/",
            freebusy_write=True,
        )
        service = ConferenceService(config, reactor=self.clock)
        service._applications(Stores.memory())
        self.assertIsInstance(service.scheduler.conferences, CalDAVMirror)
        self.assertIsNotNone(service.focus.users.external)
        self.assertIsNotNone(service.scheduler.external_busy)
