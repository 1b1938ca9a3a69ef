# -*- test-case-name: tests.interop.test_storefaults -*-
"""
Store faults against the real plugin: C{kill
-9} in the middle of a burst of scheduling MESSAGEs leaves no conference
without its calendar entries once the unanswered ones are retried, and a
damaged SQLite file stops the server at start with one clear line.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Generator, List, Optional, Set, Tuple

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.trial.unittest import TestCase

from conference.sip.message import Response
from conference.sip.parser import parse_datagram
from conference.store import open_stores
from tests.interop.harness import ServerProcess
from tests.interop.test_bind import USERS, SIPClient

FACTORY = "sip:conference@example.com"
ARGS = ["--auth", USERS, "--domain", "example.com", "--identity-rate-limit", "off"]


def request_ical(uid: str) -> bytes:
    """
    Alice's REQUEST of a conference through the factory, bob invited.  Only
    bob's own REPLY could make him hold it (docs/scheduling.rst), so alice,
    the organizer, is its one holder.
    """
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//tests//EN",
        "METHOD:REQUEST",
        "BEGIN:VEVENT",
        f"UID:{uid}",
        "DTSTAMP:20261101T090000Z",
        "DTSTART:20261201T090000Z",
        "DTEND:20261201T100000Z",
        "SEQUENCE:0",
        "ORGANIZER:sip:alice@example.com",
        f"ATTENDEE;CUTYPE=ROOM;PARTSTAT=NEEDS-ACTION:{FACTORY}",
        "ATTENDEE;PARTSTAT=NEEDS-ACTION:sip:bob@example.com",
        "END:VEVENT",
        "END:VCALENDAR",
        "",
    ]
    return "\r\n".join(lines).encode()


def message(client: SIPClient, uid: str) -> tuple[str, bytes]:
    """
    A MESSAGE (with alice's credentials for the last nonce) scheduling
    C{uid}, and its Call-ID.
    """
    body = request_ical(uid)
    call_id, data = client.build(
        "MESSAGE", FACTORY, [("Content-Type", "text/calendar")], uri=FACTORY
    )
    head = data.replace(b"Content-Length: 0\r\n", b"Content-Length: %d\r\n" % len(body))
    return call_id, head + body


class ExitingServer(ServerProcess):
    """
    A server expected to stop by itself at start: waits for it to exit.
    """

    def _wait_ready(self) -> None:
        self.process.wait(30)


class CrashTests(TestCase):
    """
    Every conference scheduled before or around C{kill -9} ends with its
    calendar entries.
    """

    def test_kill_during_scheduling(self) -> Deferred[None]:
        """
        kill -9 during a burst of REQUESTs; after a restart the unanswered
        ones are sent again, and then every conference has the calendar
        entry of its organizer.
        """
        folder = Path(tempfile.mkdtemp(prefix="conference-storefaults-"))
        self.addCleanup(shutil.rmtree, str(folder), True)
        return self.kill_during_scheduling(f"sqlite:{folder / 'crash.sqlite'}")

    def test_kill_during_scheduling_postgresql(self) -> Deferred[None]:
        """
        The same with --store postgresql: (a fresh schema on the test server).
        """
        from tests.loopback.test_postgresql import fresh_schema

        return self.kill_during_scheduling(f"postgresql:{fresh_schema(self)}")

    @inlineCallbacks
    def kill_during_scheduling(self, store: str) -> Generator[Deferred[Any], Any, None]:
        """
        Schedule in a burst on C{store}, kill -9, restart, retry what was
        not answered, and check every conference and its entries.
        """
        args = [*ARGS, "--store", store, "--max-conferences", "1000"]
        first = ServerProcess(args)
        self.addCleanup(first.cleanup)
        client = SIPClient(first.port)
        self.addCleanup(client.close)
        self.assertEqual(client.request("OPTIONS", "sip:example.com").code, 200)
        warm = client.request("BIND", "sip:alice@example.com")  # learn a nonce
        self.assertEqual(warm.code, 200, warm.phrase)
        sent: Dict[str, str] = {}  # Call-ID -> UID
        pending: Dict[str, str] = {}  # sent, not acknowledged (200)
        refused: List[Tuple[float, str]] = []  # (when to send again, UID) after a 503
        acknowledged: Set[str] = set()
        codes: List[int] = []
        client.sock.setblocking(False)

        def send(uid: Optional[str] = None) -> None:
            if uid is None:
                uid = f"crash-{len(sent)}-{secrets.token_hex(4)}@example.com"
            call_id, data = message(client, uid)
            sent[call_id] = pending[call_id] = uid
            client.sock.sendto(data, ("127.0.0.1", first.port))

        # A closed loop of 20 requests in flight.  PyPy, still cold, answers
        # many of them 503 at first (its queue stands at 20 times a cold
        # request's work): like a phone, the client sends a refused request
        # again a little later (100 ms, not the Retry-After's seconds),
        # freeing its slot meanwhile.  (When refusals held their slots, a
        # cold PyPy once got 36 of 40 acknowledgements in a minute: the
        # loop ran out of slots.)
        deadline = time.monotonic() + 60
        while len(acknowledged) < 40 and time.monotonic() < deadline:
            now = time.monotonic()
            if len(pending) < 20 and refused and refused[0][0] <= now:
                send(refused.pop(0)[1])
            elif len(pending) < 20:
                send()
            else:
                time.sleep(0.001)
            for uid in self._drain(client, pending, acknowledged, codes):
                refused.append((time.monotonic() + 0.1, uid))
        for _ in range(20):  # a last volley, so the kill surely finds work in flight
            send()
        os.kill(first.process.pid, 9)
        first.process.wait()
        refused += [(0.0, uid) for uid in self._drain(client, pending, acknowledged, codes)]
        for n, (_, uid) in enumerate(refused):  # sent again after the restart too
            pending[f"refused-{n}"] = uid
        self.assertGreaterEqual(len(acknowledged), 40, (codes[-20:], first.log()[-2000:]))
        self.assertTrue(pending, "the kill came after every MESSAGE was answered")
        second = ServerProcess([*args])
        self.addCleanup(second.cleanup)
        retry = SIPClient(second.port)
        self.addCleanup(retry.close)
        retry.request("BIND", "sip:alice@example.com")
        for uid in sorted(pending.values()):
            answer = self._send(retry, second.port, uid)
            self.assertEqual(answer.code, 200, (answer.phrase, second.log()[-2000:]))
        second.stop()  # releases the file for the check below
        log = second.log_path.read_text(errors="replace")
        self.assertNotIn("Traceback", log, log[-3000:])
        stores = yield open_stores(store, reactor)
        self.addCleanup(stores.close)
        missing = []
        for uid in sorted(sent.values()):
            record = yield stores.conferences.get_by_uid(uid)
            if record is None:
                missing.append((uid, "conference"))
                continue
            entries = yield stores.calendars.entries("sip:alice@example.com")
            if not any(e.uid == uid and e.conference == record.uri for e in entries):
                missing.append((uid, "sip:alice@example.com"))
        self.assertEqual(missing, [])

    def _send(self, client: SIPClient, port: int, uid: str) -> Response:
        """
        Send the MESSAGE scheduling C{uid}, again after a 401 with its
        fresh nonce, and return the final answer.
        """
        for attempt in range(2):
            _, data = message(client, uid)
            client.sock.sendto(data, ("127.0.0.1", port))
            answer = client.receive()
            assert answer is not None, f"no answer to the MESSAGE of {uid}"
            if answer.code != 401 or attempt:
                return answer
            client.learn(answer)
        raise AssertionError("unreachable")

    def _drain(
        self, client: SIPClient, pending: Dict[str, str], acknowledged: Set[str], codes: List[int]
    ) -> List[str]:
        """
        Read the answers that arrived: a 200 acknowledges its request, a
        503 takes it out of C{pending} too.

        @return: the UIDs of the pending requests refused 503.
        """
        refused: List[str] = []
        while True:
            try:
                data = client.sock.recv(65536)
            except (BlockingIOError, socket.timeout):
                return refused
            answer = parse_datagram(data)
            if isinstance(answer, Response):
                codes.append(answer.code)
                call_id = answer.call_id
                if call_id is None or call_id not in pending:
                    continue
                if answer.code == 200:
                    acknowledged.add(pending.pop(call_id))
                elif answer.code == 503:
                    refused.append(pending.pop(call_id))


class CorruptStartTests(TestCase):
    """
    A damaged SQLite file is refused at start.
    """

    @inlineCallbacks
    def test_corrupt_database(self) -> Generator[Deferred[Any], Any, None]:
        """
        C{twistd -n conference} stops at start with exit status 1 and one
        line naming the option, the file and the damage, and no traceback.
        """
        folder = Path(tempfile.mkdtemp(prefix="conference-corrupt-"))
        self.addCleanup(shutil.rmtree, str(folder), True)
        path = folder / "damaged.sqlite"
        stores = yield open_stores(f"sqlite:{path}", reactor)
        for i in range(200):
            yield stores.bindings.set_owner_dispositions(f"sip:user{i}@example.com", ["web"] * 1)
        yield stores.close()
        with open(path, "r+b") as f:
            f.seek(2 * 4096)
            f.write(b"\xff" * 4096)
        server = ExitingServer([*ARGS, "--store", f"sqlite:{path}"])
        self.addCleanup(server.cleanup)
        log = server.log()
        self.assertEqual(server.tracebacks(), [], log)
        lines = [line for line in log.splitlines() if "corrupt database" in line]
        self.assertEqual(len(lines), 1, log)
        self.assertIn(f"Cannot start: --store: SQLite store {path}: ", lines[0])
        self.assertEqual(server.process.returncode, 1, log)
