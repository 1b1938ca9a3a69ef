# -*- test-case-name: tests.interop.test_focus -*-
"""
The focus against real peers: SIPp joins a conference and gets SDP plus
the VEVENT, is refused with 486 + VFREEBUSY + Retry-After for a conference
not open yet and for a busy user; the bodies validate against the RFC 6321
schema; the conference survives a restart of the server (SQLite store).
"""

from __future__ import annotations

import atexit
import shutil
import socket
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Generator, Optional

from lxml import etree
from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.trial.unittest import TestCase

from conference.calendar import parse_ical_calendar, to_xcal
from conference.records import CalendarEntry, ConferenceRecord
from conference.sip.multipart import parse_multipart
from conference.store import open_stores
from tests.builders import parse_response, request_bytes
from tests.interop.harness import ServerProcess, run_sipp
from tests.shared import corpus

SCENARIOS = Path(__file__).parent / "scenarios"
UTC = timezone.utc
OFFER = (
    b"v=0\r\no=t 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def _stamp(when: datetime) -> str:
    return when.strftime("%Y%m%dT%H%M%SZ")


def _calendar(
    uid: str,
    room: str,
    start: datetime,
    minutes: int = 60,
    organizer: str = "sip:alice@example.com",
) -> bytes:
    text = "\r\n".join(
        [
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//tests//EN",
            "BEGIN:VEVENT",
            f"UID:{uid}",
            f"DTSTAMP:{_stamp(start - timedelta(days=1))}",
            f"DTSTART:{_stamp(start)}",
            f"DTEND:{_stamp(start + timedelta(minutes=minutes))}",
            "SUMMARY:Interop",
            f"ORGANIZER:{organizer}",
            f"ATTENDEE;CUTYPE=ROOM:{room}",
            "ATTENDEE;PARTSTAT=ACCEPTED:sip:bob@example.com",
            "END:VEVENT",
            "END:VCALENDAR",
            "",
        ]
    )
    return to_xcal(parse_ical_calendar(text))


@inlineCallbacks
def seed(path: Path) -> Generator[Deferred[Any], Any, None]:
    """
    A conference on now, one later today, and a busy user (carol).
    """
    now = datetime.now(UTC).replace(microsecond=0)
    stores = yield open_stores(f"sqlite:{path}", reactor)
    try:
        for user, start in (
            ("conf-now", now - timedelta(minutes=5)),
            ("conf-later", now + timedelta(hours=3)),
        ):
            uri = f"sip:{user}@example.com"
            record = ConferenceRecord(
                uri=uri,
                uid=f"{user}@example.com",
                organizer="sip:alice@example.com",
                calendar=_calendar(f"{user}@example.com", uri, start),
            )
            yield stores.conferences.put(record, None)
        yield stores.calendars.put_entry(
            CalendarEntry(
                "sip:carol@example.com",
                "carol-busy",
                _calendar(
                    "carol-busy",
                    "sip:room@example.com",
                    now - timedelta(minutes=10),
                    30,
                    "sip:carol@example.com",
                ),
            )
        )
    finally:
        yield stores.close()


_server: Optional[ServerProcess] = None
_folder: Optional[Path] = None


def _schema() -> Any:
    return etree.RelaxNG(etree.parse(str(corpus("xcal", "schema", "rfc6321-xcal.patched.rng"))))


def schema_errors(document: bytes) -> Optional[str]:
    """
    RFC 6321 schema errors of C{document}, or None.  The CONFERENCE
    property (RFC 7986) postdates the schema, so it is checked apart and
    removed before validation.
    """
    tree = etree.fromstring(document)
    ns = "urn:ietf:params:xml:ns:icalendar-2.0"
    for elem in tree.iter(f"{{{ns}}}conference"):
        elem.getparent().remove(elem)
    rng = _schema()
    if rng.validate(tree):
        return None
    return str(rng.error_log.last_error)


class FocusInteropTests(TestCase):
    """
    SIPp and a plain UDP client against the running plugin.
    """

    @inlineCallbacks
    def setUp(self) -> Generator[Deferred[Any], Any, None]:  # type: ignore[override]
        global _server, _folder
        if _server is None or _server.process.poll() is not None:
            _folder = Path(tempfile.mkdtemp(prefix="conference-focus-"))
            yield seed(_folder / "focus.sqlite")
            _server = self.start(_folder)
            atexit.register(shutil.rmtree, str(_folder), True)
        self.proc = _server

    def start(self, folder: Path) -> ServerProcess:
        server = ServerProcess(
            [
                "--auth",
                "memory:alice:secret:bob:secret",
                "--domain",
                "example.com",
                "--store",
                f"sqlite:{folder / 'focus.sqlite'}",
            ]
        )
        atexit.register(server.cleanup)
        return server

    def sipp(self, scenario: str, field: str, *extra: str) -> None:
        inf = self.proc.folder / f"{scenario}.csv"
        inf.write_text(f"SEQUENTIAL\n{field};\n")
        failure = run_sipp(self.proc, scenario, "-inf", str(inf), *extra)
        self.assertFalse(failure, failure)

    def invite(self, user: str, accept: str = "application/sdp, application/calendar+xml") -> Any:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(5)
            port = sock.getsockname()[1]
            data = request_bytes(
                "INVITE",
                f"sip:{user}@example.com",
                via_host=f"127.0.0.1:{port}",
                branch=f"z9hG4bK{time.monotonic_ns()}",
                call_id=f"py-{time.monotonic_ns()}",
                headers=[
                    ("Accept", accept),
                    ("Contact", f"<sip:py@127.0.0.1:{port}>"),
                    ("Content-Type", "application/sdp"),
                ],
                body=OFFER,
                from_="<sip:py@example.com>;tag=py",
            )
            sock.sendto(data, ("127.0.0.1", self.proc.port))
            while True:
                response = parse_response(sock.recv(65536))
                if response.code >= 200:
                    return response

    def test_join_sipp(self) -> None:
        """SIPp joins: 200 multipart/mixed with SDP and the VEVENT, isfocus; BYE ends it."""
        self.sipp("join.xml", "conf-now")
        self.assertEqual(self.proc.tracebacks(), [])

    def test_join_body_validates(self) -> None:
        """The VEVENT part validates against the RFC 6321 schema and has CONFERENCE."""
        response = self.invite("conf-now")
        self.assertEqual(response.code, 200)
        multipart = parse_multipart(response.body, response.content_type)
        [calendar] = [
            p.body for p in multipart.parts if p.media_type.mime == "application/calendar+xml"
        ]
        self.assertIn(b"<conference>", calendar)
        self.assertIn(b"sip:conf-now@example.com", calendar)
        self.assertIsNone(schema_errors(calendar))

    def test_reinvite_hold_resume_sipp(self) -> None:
        """SIPp joins, holds (sendonly, answered recvonly) and resumes (sendrecv) by
        re-INVITE, then leaves; each 200's SDP says so, with its o= version raised."""
        self.sipp("join_reinvite.xml", "conf-now")
        self.assertEqual(self.proc.tracebacks(), [])

    def test_not_open_sipp(self) -> None:
        """A conference not open yet: SIPp gets 486 with VFREEBUSY and Retry-After."""
        self.sipp("busy.xml", "conf-later")

    def test_busy_user_sipp(self) -> None:
        """A user with an event now: SIPp gets 486 with their VFREEBUSY and Retry-After."""
        self.sipp("busy.xml", "carol")

    def test_busy_body_validates(self) -> None:
        """The 486's VFREEBUSY validates against the RFC 6321 schema; Retry-After is in it."""
        response = self.invite("conf-later")
        self.assertEqual(response.code, 486)
        retry = int(response.header("retry-after"))
        self.assertTrue(3 * 3600 - 600 - 60 <= retry <= 3 * 3600 - 600 + 5, retry)
        self.assertIsNone(schema_errors(response.body))

    def test_unknown_and_406(self) -> None:
        """An unknown address is 404; an Accept without SDP is 406."""
        self.assertEqual(self.invite("nobody").code, 404)
        self.assertEqual(self.invite("conf-now", accept="text/plain").code, 406)

    def test_schedule_then_join(self) -> None:
        """README's flow: schedule a room by MESSAGE with SIPp, then join it with SIPp."""
        self.sipp("schedule_room.xml", "-", "-auth_uri", "weekly@example.com")
        self.sipp("join.xml", "weekly")
        self.assertIn("joined sip:weekly@example.com", self.proc.log())

    def test_restart_keeps_conference(self) -> None:
        """After a restart the conference is still there (SQLite store)."""
        global _server
        assert _folder is not None
        self.proc.stop()
        _server = self.proc = self.start(_folder)
        self.assertEqual(self.invite("conf-now").code, 200)
