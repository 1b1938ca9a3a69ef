# -*- test-case-name: tests.interop.test_bind -*-
"""
BIND against the real plugin: SIPp adds, queries, refuses, deletes and
subscribes; sipsak's OPTIONS shows the bindings; and bindings acknowledged
with a 200 survive C{kill -9} of a server on the SQLite store.

The server runs on a SQLite file holding one conference
(C{sip:conf@example.com}, organized by alice, attended by bob), written
before it starts through the store API.
"""

from __future__ import annotations

import atexit
import os
import re
import secrets
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Generator, List, Optional, Sequence, Set, Tuple, Union

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.trial.unittest import TestCase

from conference.records import ConferenceRecord
from conference.sip.digest import compute_ha1, compute_response, parse_auth_header
from conference.sip.message import Message, Response
from conference.sip.parser import parse_datagram
from conference.store import open_stores
from tests.interop.harness import ServerProcess, require_tool, run, run_sipp

SCENARIOS = Path(__file__).parent / "scenarios"
USERS = "memory:alice:secret:bob:secret:carol:secret"
CONF = "sip:conf@example.com"
# The binding bind_add.xml makes, bind_query.xml lists and bind_delete.xml removes.
FLOOR = "<http://floor.example.com/c1>;disposition=conference"

CALENDAR = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//tests//EN
BEGIN:VEVENT
UID:interop-conf@example.com
DTSTAMP:20261130T090000Z
DTSTART:20261201T090000Z
DTEND:20261201T100000Z
ORGANIZER:sip:alice@example.com
ATTENDEE;CUTYPE=ROOM:sip:conf@example.com
ATTENDEE;PARTSTAT=NEEDS-ACTION:sip:bob@example.com
END:VEVENT
END:VCALENDAR
"""


@inlineCallbacks
def make_database(path: Union[Path, str]) -> Generator[Deferred[Any], Any, None]:
    """
    Create the store C{path} names (a SQLite file, or a full C{--store}
    description) with the test conference in it.
    """
    from conference.calendar import parse_ical_calendar, to_xcal

    description = path if isinstance(path, str) else f"sqlite:{path}"
    stores = yield open_stores(description, reactor)
    try:
        record = ConferenceRecord(
            uri=CONF,
            uid="interop-conf@example.com",
            organizer="sip:alice@example.com",
            calendar=to_xcal(parse_ical_calendar(CALENDAR.replace("\n", "\r\n"))),
        )
        yield stores.conferences.put(record, None)
    finally:
        yield stores.close()


class SIPClient:
    """
    A UDP client that answers digest challenges itself (MD5, qop=auth).
    """

    def __init__(self, port: int, user: str = "alice", password: str = "secret") -> None:
        self.port = port
        self.user = user
        self.password = password
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(3.0)
        self.local_port = self.sock.getsockname()[1]
        self.nonce: Optional[Tuple[str, str]] = None
        self.nc = 0

    def close(self) -> None:
        self.sock.close()

    def build(
        self,
        method: str,
        to: str,
        headers: Sequence[Tuple[str, str]] = (),
        *,
        uri: str = "sip:example.com",
        call_id: Optional[str] = None,
        authorize: bool = True,
    ) -> Tuple[str, bytes]:
        """
        A request (and its Call-ID), with credentials for the last nonce.
        """
        call_id = call_id or secrets.token_hex(8)
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.local_port};branch=z9hG4bK{secrets.token_hex(8)}",
            f"From: <sip:{self.user}@example.com>;tag={secrets.token_hex(4)}",
            f"To: <{to}>",
            f"Call-ID: {call_id}",
            f"CSeq: 1 {method}",
            "Max-Forwards: 70",
            *(f"{name}: {value}" for name, value in headers),
        ]
        if authorize and self.nonce is not None:
            realm, nonce = self.nonce
            self.nc += 1
            cnonce = secrets.token_hex(4)
            ha1 = compute_ha1("MD5", self.user, realm, self.password)
            response = compute_response(
                "MD5",
                ha1,
                nonce=nonce,
                method=method,
                uri=uri,
                qop="auth",
                nc=self.nc,
                cnonce=cnonce,
            )
            lines.append(
                f'Authorization: Digest username="{self.user}", realm="{realm}", '
                f'nonce="{nonce}", uri="{uri}", response="{response}", algorithm=MD5, '
                f'qop=auth, nc={self.nc:08x}, cnonce="{cnonce}"'
            )
        lines.append("Content-Length: 0")
        return call_id, ("\r\n".join(lines) + "\r\n\r\n").encode()

    def receive(self, timeout: float = 3.0) -> Optional[Response]:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return None
        message = parse_datagram(data)
        return message if isinstance(message, Response) else None

    def learn(self, response: Response) -> None:
        """
        Keep the MD5 nonce of a 401.
        """
        for value in response.header_fields("www-authenticate"):
            _, params = parse_auth_header(value)
            if params.get("algorithm", "MD5").upper() == "MD5":
                self.nonce = (params["realm"], params["nonce"])
                self.nc = 0
                return

    def request(
        self, method: str, to: str, headers: Sequence[Tuple[str, str]] = (), **kw: object
    ) -> Response:
        """
        Send a request, answer one challenge, return the final response.
        """
        for _ in range(2):
            _, data = self.build(method, to, headers, **kw)  # type: ignore[arg-type]
            self.sock.sendto(data, ("127.0.0.1", self.port))
            response = self.receive()
            assert response is not None, f"no answer to {method}"
            if response.code != 401:
                return response
            self.learn(response)
        assert response is not None
        return response


def binding_uris(message: Message) -> List[str]:
    """
    The URIs in the Binding headers of a response (or a NOTIFY).
    """
    return re.findall(r"<([^>]*)>", " ".join(message.header_fields("binding")))


_server: Optional[ServerProcess] = None
_folder: Optional[Path] = None


class BindInteropTests(TestCase):
    """
    SIPp and sipsak against a server with a SQLite store.
    """

    @inlineCallbacks
    def setUp(self):  # type: ignore[no-untyped-def,override]
        global _server, _folder
        if _server is None or _server.process.poll() is not None:
            _folder = Path(tempfile.mkdtemp(prefix="conference-bind-"))
            database = _folder / "bind.sqlite"
            yield make_database(database)
            _server = ServerProcess(
                ["--auth", USERS, "--domain", "example.com", "--store", f"sqlite:{database}"]
            )
            atexit.register(_server.cleanup)
            atexit.register(shutil.rmtree, str(_folder), True)
        self.proc = _server
        self.client = SIPClient(self.proc.port)
        self.addCleanup(self.client.close)

    def sipp(self, scenario: str, user: str, auth_uri: str = "example.com") -> None:
        failure = run_sipp(
            self.proc,
            scenario,
            *("-s", "conf", "-au", user, "-ap", "secret", "-auth_uri", auth_uri),
            timeout=10,
        )
        self.assertFalse(failure, failure)
        self.assertEqual(self.proc.tracebacks(), [], self.proc.log()[-3000:])

    def query(self, owner: str = CONF) -> List[str]:
        response = self.client.request("BIND", owner)
        self.assertEqual(response.code, 200, response.phrase)
        return binding_uris(response)

    def test_add(self) -> None:
        """SIPp binds a URI to a conference: 401 first, then 200 listing it."""
        self.sipp("bind_add.xml", "alice")
        self.assertIn("http://floor.example.com/c1", self.query())

    def test_query(self) -> None:
        """An attendee's SIPp query (BIND without Binding) lists the conference's bindings."""
        added = self.client.request("BIND", CONF, [("Binding", FLOOR)])
        self.assertEqual(added.code, 200)
        self.sipp("bind_query.xml", "bob")

    def test_refuse(self) -> None:
        """An unknown disposition is 403 Binding Refused with Accept-Binding; nothing changes."""
        self.sipp("bind_refuse.xml", "alice")
        self.assertFalse([u for u in self.query() if "refuse.example.com" in u])

    def test_delete(self) -> None:
        """SIPp removes a binding with expires=0."""
        added = self.client.request("BIND", CONF, [("Binding", FLOOR)])
        self.assertIn("http://floor.example.com/c1", binding_uris(added))
        self.sipp("bind_delete.xml", "alice")
        self.assertNotIn("http://floor.example.com/c1", self.query())

    def test_subscribe(self) -> None:
        """SIPp subscribes, gets a NOTIFY with a BIND's new binding, then unsubscribes."""
        self.sipp("bind_subscribe.xml", "bob", auth_uri="conf@example.com")

    def test_unauthenticated_401(self) -> None:
        """A BIND without credentials is challenged and changes nothing."""
        _, data = self.client.build(
            "BIND",
            CONF,
            [("Binding", "<http://anon.example.com>;disposition=web")],
            authorize=False,
        )
        self.client.sock.sendto(data, ("127.0.0.1", self.proc.port))
        response = self.client.receive()
        assert response is not None
        self.assertEqual(response.code, 401)
        self.assertTrue(response.header("www-authenticate"))
        self.assertNotIn("http://anon.example.com", self.query())

    def test_options_sipsak(self) -> None:
        """sipsak's OPTIONS to a user shows its public Binding headers and Accept-Binding."""
        sipsak = require_tool("sipsak")
        carol = SIPClient(self.proc.port, "carol")
        self.addCleanup(carol.close)
        response = carol.request(
            "BIND",
            "sip:carol@example.com",
            [
                ("Binding", "<http://carol.example.com/card>;disposition=web;public"),
                ("Binding", "<http://carol.example.com/secret>;disposition=configuration"),
            ],
        )
        self.assertEqual(response.code, 200)
        result = run([sipsak, "-vv", "-s", f"sip:carol@127.0.0.1:{self.proc.port}"], timeout=15)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("Binding: <http://carol.example.com/card>;disposition=web", result.stdout)
        self.assertNotIn("carol.example.com/secret", result.stdout)
        self.assertIn("Accept-Binding:", result.stdout)
        self.assertRegex(result.stdout, r"Allow: [^\r\n]*BIND")


class CrashTests(TestCase):
    """
    Every binding acknowledged with a 200 survives C{kill -9}.
    """

    def test_kill_during_burst(self) -> Deferred[None]:
        """kill -9 during a burst of BINDs: every binding that got a 200 is there after restart."""
        folder = Path(tempfile.mkdtemp(prefix="conference-crash-"))
        self.addCleanup(shutil.rmtree, str(folder), True)
        return self.kill_during_burst(f"sqlite:{folder / 'crash.sqlite'}")

    def test_kill_during_burst_postgresql(self) -> Deferred[None]:
        """The same with --store postgresql: (a fresh schema on the test server)."""
        from tests.loopback.test_postgresql import fresh_schema

        return self.kill_during_burst(f"postgresql:{fresh_schema(self)}")

    @inlineCallbacks
    def kill_during_burst(self, store: str) -> Generator[Deferred[Any], Any, None]:
        """
        Start the server on C{store}, BIND in a burst, kill -9, restart and
        check every acknowledged binding is stored.
        """
        yield make_database(store)
        args = [
            "--auth",
            USERS,
            "--domain",
            "example.com",
            "--store",
            store,
            "--max-bindings",
            "1000",
        ]
        first = ServerProcess(args)
        self.addCleanup(first.cleanup)
        client = SIPClient(first.port)
        self.addCleanup(client.close)
        warm = client.request("BIND", CONF, [("Binding", "<http://crash/0>;disposition=web")])
        self.assertEqual(warm.code, 200)
        acknowledged = {"http://crash/0"}
        pending: Dict[str, str] = {}
        client.sock.setblocking(False)
        codes: List[int] = []
        deadline = time.monotonic() + 20
        n = 0

        def send_one() -> None:
            nonlocal n
            n += 1
            uri = f"http://crash/{n}"
            call_id, data = client.build("BIND", CONF, [("Binding", f"<{uri}>;disposition=web")])
            pending[call_id] = uri
            client.sock.sendto(data, ("127.0.0.1", first.port))

        # Keep up to 40 BINDs in flight until 80 got their 200, then kill -9
        # mid-burst: the ones in flight will never be answered.  Under load
        # the server may shed some with 503; those are simply not owed.
        while len(acknowledged) < 80 and time.monotonic() < deadline:
            if len(pending) < 40:
                send_one()
            else:
                time.sleep(0.001)
            self._drain(client, pending, acknowledged, codes)
        # A fast server may have answered what was in flight: fill the window
        # again just before the kill, so it surely comes mid-burst.
        while len(pending) < 40:
            send_one()
        os.kill(first.process.pid, 9)
        first.process.wait()
        self._drain(client, pending, acknowledged, codes)
        self.assertGreaterEqual(len(acknowledged), 80, (codes[-20:], first.log()[-2000:]))
        self.assertTrue(pending, "the kill came after every BIND was answered")
        second = ServerProcess(args)
        self.addCleanup(second.cleanup)
        client2 = SIPClient(second.port)
        self.addCleanup(client2.close)
        # A server just started on a loaded machine may still shed (503).
        for _ in range(20):
            listing = client2.request("BIND", CONF)
            if listing.code != 503:
                break
            time.sleep(0.5)
        self.assertEqual(listing.code, 200, second.log()[-2000:])
        stored = set(binding_uris(listing))
        self.assertEqual(acknowledged - stored, set(), second.log()[-2000:])
        self.assertEqual(second.tracebacks(), [])

    def _drain(
        self,
        client: SIPClient,
        pending: Dict[str, str],
        acknowledged: Set[str],
        codes: List[int],
    ) -> None:
        while True:
            try:
                data = client.sock.recv(65536)
            except (BlockingIOError, socket.timeout):
                return
            message = parse_datagram(data)
            if not isinstance(message, Response) or message.code < 200:
                continue
            codes.append(message.code)
            # A 503 is overload shedding (docs/limits.rst): not done, so
            # not owed after the restart, and its slot goes to a new BIND.
            self.assertIn(message.code, (200, 503), message)
            uri = pending.pop(message.call_id, None)
            if uri is not None and message.code == 200:
                acknowledged.add(uri)
