# -*- test-case-name: tests.interop.test_browser -*-
"""
The status pages in a real browser: Debian's headless C{chromium} logs in
to the running plugin's C{--http} endpoint, opens the timeline and a
conference page, saves screenshots (desktop and phone sized) and the test
checks what a person would see: conference names, the attendee list, and
the roster before, during and after a SIPp participant's call, which the
page's Mute, Lock and Remove actions change (Remove hangs SIPp up).

Set C{CONFERENCE_SCREENSHOTS} to a folder to keep the screenshots (they
are the ones docs/operations.rst shows).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from base64 import b64encode
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Dict, Generator, List, Optional, Tuple, Union
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.trial.unittest import SkipTest, TestCase

from conference.calendar import parse_ical_calendar, to_xcal
from conference.records import CalendarEntry, ConferenceRecord
from conference.store import open_stores
from tests.interop.harness import SCENARIOS, ServerProcess, free_port, require_tool, run

UTC = timezone.utc
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
]


def _stamp(when: datetime) -> str:
    return when.strftime("%Y%m%dT%H%M%SZ")


def _calendar(
    uid: str, room: str, summary: str, start: datetime, *, organizer: str, attendees: List[str]
) -> bytes:
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//tests//EN",
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"DTSTAMP:{_stamp(start - timedelta(days=1))}",
        f"DTSTART:{_stamp(start)}",
        f"DTEND:{_stamp(start + timedelta(hours=1))}",
        f"SUMMARY:{summary}",
        f"ORGANIZER:{organizer}",
        f"ATTENDEE;CUTYPE=ROOM:{room}",
        *attendees,
        "END:VEVENT",
        "END:VCALENDAR",
        "",
    ]
    return to_xcal(parse_ical_calendar("\r\n".join(lines)))


def later_today(hours: int) -> Callable[[datetime], timedelta]:
    """
    How to place an hour-long conference C{hours} ahead of now, or, if it
    would then end after midnight (UTC), C{hours + 1} back: the timeline
    shows today and this week, so a conference ahead of now falls off both
    late on a Sunday.
    """

    def offset(now: datetime) -> timedelta:
        midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        if now + timedelta(hours=hours + 1) <= midnight:
            return timedelta(hours=hours)
        return timedelta(hours=-(hours + 1))

    return offset


#: (room user, summary, start offset from now or how to work it out from
#: now, organizer, attendee lines)
CONFERENCES: List[
    Tuple[str, str, Union[timedelta, Callable[[datetime], timedelta]], str, List[str]]
] = [
    (
        "ops-review",
        "Ops review",
        timedelta(minutes=-5),
        "sip:alice@example.com",
        [
            "ATTENDEE;PARTSTAT=ACCEPTED:sip:bob@example.com",
            "ATTENDEE;PARTSTAT=TENTATIVE:sip:dave@example.com",
        ],
    ),
    (
        "planning",
        "Release planning",
        later_today(2),
        "sip:alice@example.com",
        ["ATTENDEE;PARTSTAT=NEEDS-ACTION:sip:bob@example.com"],
    ),
    (
        "carol-1on1",
        "Carol private",
        later_today(1),
        "sip:carol@example.com",
        ["ATTENDEE;PARTSTAT=ACCEPTED:sip:erin@example.com"],
    ),
]


@inlineCallbacks
def seed(path: Path) -> Generator[Deferred[Any], Any, datetime]:
    """
    Store L{CONFERENCES} around now.

    @return: (a Deferred firing with) the now they were placed around.
    """
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    stores = yield open_stores(f"sqlite:{path}", reactor)
    try:
        for user, summary, offset, organizer, attendees in CONFERENCES:
            uri = f"sip:{user}@example.com"
            calendar = _calendar(
                f"{user}@example.com",
                uri,
                summary,
                now + (offset if isinstance(offset, timedelta) else offset(now)),
                organizer=organizer,
                attendees=attendees,
            )
            record = ConferenceRecord(
                uri=uri, uid=f"{user}@example.com", organizer=organizer, calendar=calendar
            )
            yield stores.conferences.put(record, None)
            if organizer == "sip:alice@example.com":  # on her calendar too
                yield stores.calendars.put_entry(
                    CalendarEntry(organizer, record.uid, calendar, source="conference")
                )
    finally:
        yield stores.close()
    return now


def csrf_of(page: str) -> str:
    """
    The CSRF token of the action forms on a page.
    """
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert found is not None, page
    return found.group(1)


class BrowserTests(TestCase):
    """
    Headless Chromium against the running plugin.
    """

    @inlineCallbacks
    def setUp(self) -> Generator[Deferred[Any], Any, None]:  # type: ignore[override]
        self.chromium = require_tool("chromium", "chromium")
        require_tool("sipp")
        self.folder = Path(tempfile.mkdtemp(prefix="conference-browser-"))
        self.addCleanup(shutil.rmtree, str(self.folder), True)
        self.seeded = yield seed(self.folder / "web.sqlite")
        self.http_port = free_port()
        self.server = ServerProcess(
            [
                "--auth",
                "memory:alice:secret:bob:secret:carol:secret",
                "--domain",
                "example.com",
                "--store",
                f"sqlite:{self.folder / 'web.sqlite'}",
                "--http",
                f"tcp:{self.http_port}:interface=127.0.0.1",
            ]
        )
        self.addCleanup(self.server.cleanup)
        self.keep = os.environ.get("CONFERENCE_SCREENSHOTS")

    def same_week(self) -> None:
        """
        Skip unless the page just read is of the week the conferences were
        placed in: Monday 00:00 UTC between the two moves the timeline on.
        """
        if datetime.now(UTC).isocalendar()[:2] != self.seeded.isocalendar()[:2]:
            raise SkipTest("the week turned between seeding and reading the timeline")

    def url(self, path: str, user: str = "alice") -> str:
        return f"http://{user}:secret@127.0.0.1:{self.http_port}{path}"

    def browse(self, path: str, *args: str, user: str = "alice") -> str:
        """
        Run headless Chromium on C{path} with C{args}; its standard output.
        """
        profile = tempfile.mkdtemp(prefix="chromium-", dir=self.folder)
        result = run(
            [
                self.chromium,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                *args,
                self.url(path, user),
            ],
            timeout=90,
        )
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        return result.stdout

    def dom(self, path: str, user: str = "alice") -> str:
        return self.browse(path, "--dump-dom", user=user)

    def screenshot(self, path: str, name: str, width: int, height: int) -> Path:
        """
        Save a screenshot of C{path} at C{width}x{height} as C{name}.png.
        """
        target = self.folder / f"{name}.png"
        self.browse(path, f"--screenshot={target}", f"--window-size={width},{height}")
        self.assertTrue(target.exists() and target.stat().st_size > 1000, name)
        if self.keep:
            shutil.copy(target, Path(self.keep) / target.name)
        return target

    def get(self, path: str) -> bytes:
        """
        GET C{path} as alice (basic, from this machine); the body.
        """
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.http_port}{path}",
            headers={"Authorization": "Basic " + b64encode(b"alice:secret").decode()},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            body: bytes = answer.read()
        return body

    def api(self, path: str) -> Dict[str, Any]:
        data: Dict[str, Any] = json.loads(self.get(path))
        return data

    def act(self, action: str, token: str, participant: Optional[str] = None) -> int:
        """
        Post an action's form as alice (what its button sends); the status.
        """
        form = {"uri": "sip:ops-review@example.com", "csrf": token}
        if participant is not None:
            form["participant"] = participant
        connection = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=10)
        try:
            connection.request(
                "POST",
                f"/action/{action}",
                body=urlencode(form),
                headers={
                    "Authorization": "Basic " + b64encode(b"alice:secret").decode(),
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            )
            answer = connection.getresponse()
            answer.read()
            return answer.status
        finally:
            connection.close()

    def metrics(self) -> Dict[str, float]:
        """
        The server's /metrics samples by name and labels.
        """
        samples = {}
        for line in self.get("/metrics").decode("utf-8").splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
        return samples

    def test_timeline_and_conference(self) -> None:
        """The organizer sees their conferences, the attendees and a joining caller."""
        timeline = self.dom("/")
        self.same_week()
        self.assertIn("Ops review", timeline)
        self.assertIn("Release planning", timeline)
        self.assertNotIn("Carol private", timeline)
        self.assertIn("<svg", timeline)
        self.screenshot("/", "status-timeline", 1100, 800)
        self.screenshot("/", "status-timeline-phone", 390, 844)

        page_path = "/conference?uri=" + quote("sip:ops-review@example.com")
        page = self.dom(page_path)
        self.assertIn("sip:bob@example.com", page)
        self.assertIn("ACCEPTED", page)
        self.assertIn("sip:dave@example.com", page)
        self.assertIn("Nobody is in the conference now", page)

        inf = self.folder / "join.csv"
        inf.write_text("SEQUENTIAL\nops-review;\n")
        sipp = subprocess.Popen(
            [
                require_tool("sipp"),
                f"127.0.0.1:{self.server.port}",
                "-sf",
                str(SCENARIOS / "join_hold.xml"),
                "-inf",
                str(inf),
                "-m",
                "1",
                "-i",
                "127.0.0.1",
                "-nostdin",
                "-timeout",
                "60s",
                "-timeout_error",
            ],
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 8
            api_path = "/api/conference?uri=" + quote("sip:ops-review@example.com")
            while not self.api(api_path)["roster"] and time.monotonic() < deadline:
                time.sleep(0.2)
            during = self.dom(page_path)
            self.assertIn("In the conference now (1)", during)
            self.assertIn("sip:sipp@example.com", during)
            self.assertIn(">Mute</button>", during)
            self.assertIn("Lock (only moderators may join)", during)
            self.screenshot(page_path, "status-conference", 1100, 1000)
            self.screenshot(page_path, "status-conference-phone", 390, 844)

            # The buttons' forms, posted as the browser would: the roster
            # then shows the participant muted and the conference locked.
            token = csrf_of(during)
            [person] = self.api(api_path)["roster"]
            self.assertEqual(self.act("mute", token, person["key"]), 303)
            self.assertEqual(self.act("lock", token), 303)
            changed = self.dom(page_path)
            self.assertIn(">muted<", changed)
            self.assertIn(">Unmute</button>", changed)
            self.assertIn("(locked)", changed)
            self.assertIn("Unlock", changed)
            self.screenshot(page_path, "status-conference-muted", 1100, 1000)
            # Remove: the focus's BYE ends SIPp's scenario.
            self.assertEqual(self.act("remove", token, person["key"]), 303)
            self.assertEqual(sipp.wait(40), 0)
        finally:
            if sipp.poll() is None:
                sipp.kill()
                sipp.wait()
        after = self.dom(page_path)
        self.assertIn("Nobody is in the conference now", after)
        self.assertEqual(self.server.tracebacks(), [])
        # Chromium answered the digest challenge (offered before basic):
        # its logins are counted as digest, none refused.
        metrics = self.metrics()
        self.assertGreater(metrics['conference_web_logins_total{outcome="ok",scheme="digest"}'], 0)
        for outcome in ("wrong", "replayed", "malformed", "bad-uri"):
            key = f'conference_web_logins_total{{outcome="{outcome}",scheme="digest"}}'
            self.assertEqual(metrics[key], 0, outcome)
        self.assertEqual(metrics['conference_web_actions_total{action="mute",code="303"}'], 1)
        self.assertEqual(metrics['conference_web_actions_total{action="remove",code="303"}'], 1)

    def test_freebusy(self) -> None:
        """Alice's week shows her two conferences as busy blocks; bob may not look."""
        # From yesterday in Paris, so both (around now) are in the picture;
        # one crossing Paris midnight is drawn as two blocks.
        paris = datetime.now(ZoneInfo("Europe/Paris"))
        path = f"/freebusy?tz=Europe/Paris&start={(paris - timedelta(days=1)).date()}"
        page = self.dom(path)
        self.assertIn("Free/busy of sip:alice@example.com", page)
        self.assertIn("times in Europe/Paris", page)
        self.assertGreaterEqual(page.count("<title>BUSY "), 2)
        self.screenshot(path, "status-freebusy", 1100, 700)
        refused = self.dom("/freebusy?user=" + quote("sip:alice@example.com"), user="bob")
        self.assertIn("Only admins", refused)

    def test_stranger_and_login(self) -> None:
        """Without credentials the browser is refused (401); carol sees only hers."""
        refused = run(
            [
                self.chromium,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={tempfile.mkdtemp(dir=self.folder)}",
                "--dump-dom",
                f"http://127.0.0.1:{self.http_port}/",
            ],
            timeout=90,
        )
        # Headless Chromium cannot answer the login prompt: it shows nothing.
        self.assertNotIn("Ops review", refused.stdout)
        self.assertIn('"GET / HTTP/1.1" 401', self.server.log())
        carol = self.dom("/", user="carol")
        self.same_week()
        self.assertIn("Carol private", carol)
        self.assertNotIn("Ops review", carol)


class LaterTodayTests(TestCase):
    """
    L{later_today}: the seeded conferences stay on today's timeline at any hour.
    """

    def test_morning(self) -> None:
        """In the morning the conference is two hours ahead."""
        now = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
        self.assertEqual(later_today(2)(now), timedelta(hours=2))

    def test_ends_at_midnight(self) -> None:
        """At 21:00 its hour ends at midnight, still today: two hours ahead."""
        now = datetime(2026, 12, 6, 21, 0, tzinfo=UTC)
        self.assertEqual(later_today(2)(now), timedelta(hours=2))

    def test_late_on_sunday(self) -> None:
        """At 22:08 on a Sunday it is three hours back, not on Monday of the next week."""
        now = datetime(2026, 12, 6, 22, 8, tzinfo=UTC)
        self.assertEqual(later_today(2)(now), timedelta(hours=-3))
        self.assertEqual((now + later_today(2)(now)).date(), now.date())

    def test_one_hour_ahead_late_on_sunday(self) -> None:
        """At 23:02 on a Sunday, one hour ahead becomes two hours back (failed CI at 23:02)."""
        now = datetime(2026, 12, 6, 23, 2, tzinfo=UTC)
        self.assertEqual(later_today(1)(now), timedelta(hours=-2))
        self.assertEqual(
            later_today(1)(datetime(2026, 12, 6, 22, 0, tzinfo=UTC)), timedelta(hours=1)
        )
