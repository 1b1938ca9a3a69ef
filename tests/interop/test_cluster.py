# -*- test-case-name: tests.interop.test_cluster -*-
"""
Kamailio in front of three nodes, with C{deploy/kamailio.cfg} as shipped.

A conference's media is mixed on one node, so every join of a conference
must reach the same node: the front end hashes the Request-URI user over
the nodes (dispatcher algorithm 7).  These tests prove that routing with
the real Kamailio and the real plugin, and what happens when a node dies:
Kamailio's OPTIONS probing takes it out of rotation, and a join sent to it
fails over to another node within a few seconds.  Requests within a dialog
follow Kamailio's Record-Route back to the node holding it.

Each test starts its own cluster on loopback ephemeral ports: three
C{twistd conference} nodes and Kamailio in the foreground with the
config's C{-A} defines pointing it at them.  L{ClusterTests} give the nodes
separate SQLite stores, each seeded with the same conferences (only the
routing is under test there); L{SharedStoreTests} put them on one
PostgreSQL schema, as deployed: a BIND through Kamailio reaches a
SUBSCRIBE held by another node (the store's change feed), and kill -9 of
the node taking BINDs mid-burst loses none that was acknowledged.  The routing tests join
conferences that do not exist, answered 404; which node answered is read
from the nodes' transaction log lines
(C{INVITE sip:X@example.com from 127.0.0.1:P/UDP -> 404}).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, Generator, List, Optional, Set, Tuple

from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.trial.unittest import TestCase

from conference.sip.message import Request, Response, make_response
from conference.sip.parser import parse_datagram
from tests.interop.harness import ServerProcess, free_port, require_tool, run
from tests.interop.test_bind import CONF, USERS, SIPClient, binding_uris, make_database
from tests.interop.test_focus import seed
from tests.interop.test_nodes import DIAL_OUT_IN, Subscriber, seed_dial_out
from tests.loopback.test_postgresql import fresh_schema
from tests.shared import PROJECT_ROOT

CONFIG = PROJECT_ROOT / "deploy" / "kamailio.cfg"
DOMAIN = "example.com"
# Seconds between Kamailio's OPTIONS probes, and failed probes before a node
# is inactive: small, so a dead node is noticed within seconds.
PING_INTERVAL = 1
PING_THRESHOLD = 2
# How long Kamailio waits for a node's first reply before failing over (ms).
FR_TIMER = 2000
# A join of a conference whose node died must be answered within this.
FAILOVER_LIMIT = 10.0
# A join answered faster than this did not wait for a dead node first.
NO_WAIT = FR_TIMER / 1000 * 0.75

SDP = (
    "v=0\r\n"
    "o=- 1 1 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\n"
    "m=audio 40000 RTP/AVP 0\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
)


class Kamailio:
    """
    One Kamailio running C{deploy/kamailio.cfg} in the foreground on a free
    loopback UDP port, dispatching to C{nodes}.
    """

    def __init__(self, nodes: List[ServerProcess], port: Optional[int] = None) -> None:
        """
        @param port: the UDP port to listen on (default: a free one).
        """
        kamailio = require_tool("kamailio", "kamailio")
        self.folder = Path(tempfile.mkdtemp(prefix="conference-kamailio-"))
        self.port = port if port is not None else free_port()
        ds_list = self.folder / "dispatcher.list"
        ds_list.write_text("".join(f"1 sip:127.0.0.1:{node.port} 0 0\n" for node in nodes))
        self.log_path = self.folder / "kamailio.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        # -DD: no daemon; -E: log to stderr; -n 1: one UDP worker; -Y: the
        # runtime folder (FIFOs, sockets) in ours rather than /run.
        self.process = subprocess.Popen(
            [
                kamailio,
                "-f",
                str(CONFIG),
                "-DD",
                "-E",
                "-n",
                "1",
                "-Y",
                str(self.folder),
                "-P",
                str(self.folder / "kamailio.pid"),
                *defines(self.port, ds_list),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Its own process group: the stop reaches its children too.
            start_new_session=True,
        )

    def log(self) -> str:
        """
        Everything Kamailio logged so far.
        """
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """
        Stop Kamailio and its children, and remove its folder.
        """
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        # Children left behind by a main process that died first.
        with contextlib.suppress(OSError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self._log.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def defines(port: int, ds_list: Path) -> List[str]:
    """
    The C{-A} command-line defines that point C{deploy/kamailio.cfg} at a
    test cluster.
    """
    return [
        "-A",
        f"LISTEN=udp:127.0.0.1:{port}",
        "-A",
        f'DS_LIST="{ds_list}"',
        "-A",
        f"PING_INTERVAL={PING_INTERVAL}",
        "-A",
        f"PING_THRESHOLD={PING_THRESHOLD}",
        "-A",
        f"FR_TIMER={FR_TIMER}",
    ]


class Cluster(TestCase):
    """
    Three nodes behind Kamailio, started for each test; what the tests
    share.  Subclasses say what store each node uses.
    """

    #: Options every node gets besides its store.
    node_args: List[str] = []
    #: Whether the nodes are told Kamailio is their front end (--front-end).
    front_end = False

    @inlineCallbacks
    def node_stores(self) -> Generator[Deferred[Any], Any, List[str]]:
        """
        The C{--store} of each node: separate SQLite files, each seeded
        with conf-now (on now), so any node can serve it.
        """
        stores = []
        for _ in range(3):
            folder = Path(tempfile.mkdtemp(prefix="conference-cluster-"))
            self.addCleanup(shutil.rmtree, str(folder), True)
            yield seed(folder / "node.sqlite")
            stores.append(f"sqlite:{folder / 'node.sqlite'}")
        return stores

    @inlineCallbacks
    def setUp(self) -> Generator[Deferred[Any], Any, None]:  # type: ignore[override]
        require_tool("kamailio", "kamailio")
        self.nodes: List[ServerProcess] = []
        self.sent = b""
        stores = yield self.node_stores()
        kamailio_port = free_port()
        front = ["--front-end", f"sip:127.0.0.1:{kamailio_port}"] if self.front_end else []
        for store in stores:
            # A stopping node waits for its transactions (Kamailio's probes
            # among them) up to --stop-timeout: 1 s is plenty here.  Debug
            # logging, since the answered probes are debug lines.
            args = ["--domain", DOMAIN, "--store", store, "--stop-timeout", "1"]
            node = ServerProcess([*args, "--log-level", "debug", *front, *self.node_args])
            self.addCleanup(node.cleanup)
            self.nodes.append(node)
        # Runs before the cleanups above: the nodes stop together.
        self.addCleanup(self.terminate_nodes)
        self.kamailio = Kamailio(self.nodes, kamailio_port)
        self.addCleanup(self.kamailio.stop)
        self.client = SIPClient(self.kamailio.port)
        self.addCleanup(self.client.close)
        self.wait_ready()

    def terminate_nodes(self) -> None:
        """
        Ask every node still running to stop (L{ServerProcess.cleanup} then
        waits for each).
        """
        for node in self.nodes:
            if node.process.poll() is None:
                node.process.terminate()

    def diagnostics(self) -> str:
        """
        The tails of Kamailio's and the nodes' logs, for failure messages.
        """
        parts = [f"kamailio:\n{self.kamailio.log()[-3000:]}"]
        parts += [f"node {node.port}:\n{node.log()[-1500:]}" for node in self.nodes]
        return "\n".join(parts)

    def wait_ready(self) -> None:
        """
        Wait until an OPTIONS sent through Kamailio is answered by a node.
        """
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.kamailio.process.poll() is not None:
                self.fail(f"kamailio exited early:\n{self.kamailio.log()}")
            response, _ = self.send("OPTIONS", f"sip:{DOMAIN}", timeout=1.0)
            if response is not None and response.code == 200:
                return
        self.fail(f"no answer through kamailio:\n{self.diagnostics()}")

    def send(
        self, method: str, uri: str, body: str = "", timeout: float = 5.0
    ) -> Tuple[Optional[Response], float]:
        """
        Send one request through Kamailio and wait for its final response;
        ACK a non-2xx final response to an INVITE (a 2xx is the caller's to
        ACK).  The request sent is kept in C{self.sent}.

        @return: the final response (None if none came within C{timeout})
            and the seconds it took.
        """
        headers = [("Contact", f"<sip:{self.client.user}@127.0.0.1:{self.client.local_port}>")]
        if body:
            headers.append(("Content-Type", "application/sdp"))
        call_id, data = self.client.build(method, uri, headers, uri=uri, authorize=False)
        if body:
            data = data.replace(
                b"Content-Length: 0\r\n\r\n",
                f"Content-Length: {len(body)}\r\n\r\n{body}".encode(),
            )
        self.sent = data
        started = time.monotonic()
        self.client.sock.sendto(data, ("127.0.0.1", self.kamailio.port))
        deadline = started + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None, time.monotonic() - started
            response = self.client.receive(left)
            if response is None:
                continue
            # Retransmitted answers to earlier requests are not this one's.
            if response.call_id != call_id or response.code < 200:
                continue
            elapsed = time.monotonic() - started
            if method == "INVITE" and response.code >= 300:
                self.client.sock.sendto(
                    follow_up(data, response, "ACK"), ("127.0.0.1", self.kamailio.port)
                )
            return response, elapsed

    def join(self, conference: str, timeout: float = 5.0) -> Tuple[Optional[Response], float]:
        """
        An INVITE with an SDP offer to C{conference} through Kamailio.
        """
        return self.send("INVITE", f"sip:{conference}@{DOMAIN}", SDP, timeout)

    def invites(self, conference: str) -> Dict[int, int]:
        """
        How many INVITEs to C{conference} each node answered, by node port
        (only nodes that answered any).
        """
        pattern = re.compile(rf"INVITE sip:{re.escape(conference)}@{re.escape(DOMAIN)} from ")
        counts = {node.port: len(pattern.findall(node.log())) for node in self.nodes}
        return {port: n for port, n in counts.items() if n}

    def answered(self, conference: str, total: int) -> Dict[int, int]:
        """
        L{invites} once the nodes logged C{total} INVITEs to C{conference}
        (a node logs a transaction just after sending its answer).
        """
        self.wait_for(
            f"{total} INVITEs to {conference} logged",
            lambda: sum(self.invites(conference).values()) >= total,
            timeout=5,
        )
        return self.invites(conference)

    def wait_for(self, what: str, predicate: Callable[[], bool], timeout: float) -> float:
        """
        Poll C{predicate} until true; fail after C{timeout}.

        @return: the seconds it took.
        """
        started = time.monotonic()
        while not predicate():
            if time.monotonic() - started > timeout:
                self.fail(f"{what} not within {timeout} s:\n{self.diagnostics()}")
            time.sleep(0.2)
        return time.monotonic() - started

    def node_of(self, conference: str) -> ServerProcess:
        """
        Join C{conference} once and return the node that answered.
        """
        response, _ = self.join(conference)
        self.assertIsNotNone(response, self.diagnostics())
        (port,) = self.answered(conference, 1)
        return next(node for node in self.nodes if node.port == port)


class ClusterTests(Cluster):
    """
    Routing by conference, probing, failover.
    """

    def test_config_check(self) -> None:
        """kamailio -c accepts deploy/kamailio.cfg as shipped and with the test's defines."""
        kamailio = require_tool("kamailio", "kamailio")
        ds_list = self.kamailio.folder / "dispatcher.list"
        for extra in ([], defines(free_port(), ds_list)):
            result = run([kamailio, "-c", "-f", str(CONFIG), *extra], timeout=30)
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            self.assertIn("config file ok", result.stdout + result.stderr)

    def test_conference_sticks_to_one_node(self) -> None:
        """Every INVITE to one conference reaches the same node; conferences spread over nodes."""
        conferences = [f"room{n}" for n in range(8)]
        for _ in range(3):
            for conference in conferences:
                response, _ = self.join(conference)
                self.assertIsNotNone(response, f"no answer for {conference}")
                assert response is not None
                self.assertEqual(response.code, 404, response.phrase)
        used: Set[int] = set()
        for conference in conferences:
            counts = self.answered(conference, 3)
            self.assertEqual(len(counts), 1, (conference, counts, self.diagnostics()))
            self.assertEqual(list(counts.values()), [3], (conference, counts))
            used.update(counts)
        self.assertGreater(len(used), 1, "every conference landed on one node")
        self.assertNotIn("failover", self.kamailio.log())
        for node in self.nodes:
            self.assertEqual(node.tracebacks(), [], node.log()[-3000:])

    def test_dialog_through_kamailio(self) -> None:
        """A join gets 200 with Kamailio's Record-Route; its ACK and BYE follow it to the node."""
        response, _ = self.join("conf-now")
        assert response is not None, self.diagnostics()
        self.assertEqual(response.code, 200, (response.phrase, self.diagnostics()))
        routes = response.header_values("record-route")
        self.assertEqual(len(routes), 1, routes)
        self.assertIn(f"sip:127.0.0.1:{self.kamailio.port};lr", routes[0])
        (port,) = self.answered("conf-now", 1)
        node = next(node for node in self.nodes if node.port == port)
        invite, kamailio = self.sent, ("127.0.0.1", self.kamailio.port)
        self.client.sock.sendto(follow_up(invite, response, "ACK"), kamailio)
        self.client.sock.sendto(follow_up(invite, response, "BYE", 2), kamailio)
        deadline = time.monotonic() + 5
        answer: Optional[Response] = None
        while answer is None and time.monotonic() < deadline:
            got = self.client.receive(deadline - time.monotonic())
            if got is not None and got.cseq.method == "BYE":
                answer = got
        self.assertIsNotNone(answer, self.diagnostics())
        assert answer is not None
        self.assertEqual(answer.code, 200, answer.phrase)
        # The node got the BYE from Kamailio, and no other node saw the call.
        bye = re.compile(rf"BYE sip:conf-now@\S+ from 127\.0\.0\.1:{self.kamailio.port}/UDP -> 200")
        self.wait_for("the BYE from Kamailio logged", lambda: bool(bye.search(node.log())), 5)
        for other in self.nodes:
            if other is not node:
                self.assertNotIn("conf-now", other.log())
        self.assertEqual(node.tracebacks(), [], node.log()[-3000:])

    def test_failover_after_kill(self) -> None:
        """kill -9 a conference's node: its joins are answered by one other node within seconds."""
        conference = "room1"
        dead = self.node_of(conference)
        os.kill(dead.process.pid, signal.SIGKILL)
        dead.process.wait()
        killed = time.monotonic()
        attempts: List[str] = []
        response: Optional[Response] = None
        # The first join may wait for Kamailio to give up on the dead node
        # (fr_timer, then failure_route); retry until a node answers.
        while time.monotonic() - killed < FAILOVER_LIMIT:
            response, took = self.join(conference, timeout=FR_TIMER / 1000 * 2 + 2)
            attempts.append(f"{response and response.code} after {took:.1f} s")
            if response is not None and response.code == 404:
                break
        failover = time.monotonic() - killed
        self.assertIsNotNone(response, (attempts, self.diagnostics()))
        assert response is not None
        self.assertEqual(response.code, 404, (attempts, self.diagnostics()))
        self.assertLess(failover, FAILOVER_LIMIT, attempts)
        survivors = self.answered(conference, 2)
        survivors.pop(dead.port, None)
        self.assertEqual(len(survivors), 1, survivors)
        # The dead node is now out of rotation: later joins go straight to
        # the same survivor, without waiting for a timeout.
        for _ in range(3):
            response, took = self.join(conference)
            assert response is not None, self.diagnostics()
            self.assertEqual(response.code, 404)
            self.assertLess(took, NO_WAIT, "a join waited for the dead node again")
        after = self.answered(conference, 5)
        after.pop(dead.port, None)
        self.assertEqual(list(after), list(survivors), after)
        log = self.kamailio.log()
        self.assertIn(f"node down: sip:127.0.0.1:{dead.port}", log)
        self.assertIn("failover of INVITE", log)

    def test_probing_marks_dead_node_down(self) -> None:
        """OPTIONS probing alone marks a node killed while idle inactive; its joins move at once."""
        conference = "room2"
        dead = self.node_of(conference)
        os.kill(dead.process.pid, signal.SIGKILL)
        dead.process.wait()
        took = self.wait_for(
            "probing to mark the dead node down",
            lambda: f"node down: sip:127.0.0.1:{dead.port}" in self.kamailio.log(),
            timeout=PING_INTERVAL * PING_THRESHOLD + FR_TIMER / 1000 * PING_THRESHOLD + 5,
        )
        self.assertNotIn("did not answer", self.kamailio.log(), took)
        response, elapsed = self.join(conference)
        assert response is not None, self.diagnostics()
        self.assertEqual(response.code, 404)
        self.assertLess(elapsed, NO_WAIT, "the join waited for the dead node")
        self.assertNotIn("failover", self.kamailio.log())

    def test_options_probes_answered(self) -> None:
        """Kamailio's OPTIONS probes reach every node and are answered 200."""
        probe = re.compile(
            rf"OPTIONS sip:127\.0\.0\.1:(\d+) from 127\.0\.0\.1:{self.kamailio.port}/UDP -> 200"
        )

        def probed() -> bool:
            for node in self.nodes:
                ports = probe.findall(node.log())
                if len(ports) < 2 or set(ports) != {str(node.port)}:
                    return False
            return True

        self.wait_for("two answered probes on every node", probed, timeout=10)
        self.assertNotIn("node down", self.kamailio.log())


def follow_up(invite: bytes, response: Response, method: str, cseq: int = 1) -> bytes:
    """
    A request that follows a final C{response} to C{invite} (Via, From,
    Call-ID as the INVITE; To with the response's tag): the ACK of a
    non-2xx (same branch, same Request-URI), or a request within the dialog
    a 2xx established (ACK, BYE): a new branch, to the response's Contact,
    along its Record-Route in reverse (RFC 3261 section 12.1.2).
    """
    lines = invite.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")
    _, uri, version = lines[0].split(" ")
    keep = ("via:", "from:", "call-id:", "max-forwards:")
    headers = [line for line in lines[1:] if line.lower().startswith(keep)]
    if response.code < 300:
        contact = response.header("contact") or ""
        uri = re.sub(r"^[^<]*<([^>]*)>.*$", r"\1", contact)
        branch = f"z9hG4bK{secrets.token_hex(8)}"
        headers = [re.sub(r"branch=[^;]*", f"branch={branch}", line) for line in headers]
        headers += [f"Route: {route}" for route in reversed(response.header_values("record-route"))]
    return (
        "\r\n".join(
            [
                f"{method} {uri} {version}",
                *headers,
                f"To: {response.header('to')}",
                f"CSeq: {cseq} {method}",
                "Content-Length: 0",
            ]
        )
        + "\r\n\r\n"
    ).encode()


class SharedStoreTests(Cluster):
    """
    The three nodes on one PostgreSQL schema, as deployed: a change made
    through one node reaches a subscription held by another, and killing a
    node loses no acknowledged write.
    """

    node_args = ["--auth", USERS]

    @inlineCallbacks
    def node_stores(self) -> Generator[Deferred[Any], Any, List[str]]:
        """One fresh PostgreSQL schema for all three, holding the test conference."""
        store = f"postgresql:{fresh_schema(self)}"
        yield make_database(store)
        return [store] * 3

    def binder(self) -> ServerProcess:
        """BIND once through Kamailio and return the node that answered it."""
        response = self.client.request(
            "BIND", CONF, [("Binding", "<http://probe/0>;disposition=web")]
        )
        self.assertEqual(response.code, 200, self.diagnostics())
        pattern = re.compile(r"BIND sip:example\.com from \S+ -> 200")

        def logged() -> List[ServerProcess]:
            return [node for node in self.nodes if pattern.search(node.log())]

        # A node logs the transaction just after sending its answer.
        self.wait_for("the BIND logged", lambda: bool(logged()), timeout=5)
        found = logged()
        self.assertEqual(len(found), 1, self.diagnostics())
        return found[0]

    def test_bind_reaches_subscriber_on_other_node(self) -> None:
        """A BIND through Kamailio (node A) is NOTIFYed by node B to the SUBSCRIBE it holds."""
        node_a = self.binder()
        node_b = next(node for node in self.nodes if node is not node_a)
        watcher = Subscriber(node_b.port)
        self.addCleanup(watcher.close)
        self.assertEqual(watcher.subscribe().code, 200, node_b.log()[-2000:])
        uri = "http://cluster.example.com/floor"
        bound = self.client.request("BIND", CONF, [("Binding", f"<{uri}>;disposition=web")])
        self.assertEqual(bound.code, 200, self.diagnostics())
        self.assertIn(uri, watcher.wait_for(uri), node_b.log()[-3000:])
        self.assertNotIn(f"BIND sip:{DOMAIN}", node_b.log())

    def test_kill_loses_no_acknowledged_write(self) -> None:
        """kill -9 of the node taking BINDs mid-burst: every acknowledged binding survives."""
        node_a = self.binder()
        acknowledged = {"http://probe/0"}
        pending: Dict[str, str] = {}
        kamailio = ("127.0.0.1", self.kamailio.port)

        def burst(first: int, count: int) -> None:
            for n in range(first, first + count):
                uri = f"http://burst/{n}"
                call_id, data = self.client.build(
                    "BIND", CONF, [("Binding", f"<{uri}>;disposition=web")]
                )
                pending[call_id] = uri
                self.client.sock.sendto(data, kamailio)

        def collect(seconds: float) -> None:
            deadline = time.monotonic() + seconds
            while pending and time.monotonic() < deadline:
                response = self.client.receive(0.2)
                if response is not None and response.code >= 200:
                    uri = pending.pop(response.call_id, "")
                    if response.code == 200 and uri:
                        acknowledged.add(uri)

        burst(1, 10)
        collect(3.0)
        # Ten more in flight when the node dies: some may be answered, some not.
        burst(11, 10)
        os.kill(node_a.process.pid, signal.SIGKILL)
        node_a.process.wait()
        collect(FR_TIMER / 1000 * 2 + 2)
        self.assertGreater(len(acknowledged), 10, self.diagnostics())
        # Another node answers the listing (after Kamailio fails over and a
        # new digest challenge).
        listing: Optional[Response] = None
        for _ in range(10):
            listing = self.client.request("BIND", CONF)
            if listing.code == 200:
                break
            time.sleep(0.5)
        assert listing is not None
        self.assertEqual(listing.code, 200, self.diagnostics())
        self.assertEqual(acknowledged - set(binding_uris(listing)), set(), self.diagnostics())
        for node in self.nodes:
            if node is not node_a:
                self.assertEqual(node.tracebacks(), [], node.log()[-3000:])


class FrontEndDialOutTests(Cluster):
    """
    Automatic dial-out in a cluster: the instance is handed, through
    Kamailio, to the node Kamailio routes the conference to, so the
    attendees called at DTSTART and those who join later meet on one node.
    """

    node_args = ["--auth", USERS]
    front_end = True
    timeout = 120

    @inlineCallbacks
    def node_stores(self) -> Generator[Deferred[Any], Any, List[str]]:
        """One PostgreSQL schema holding a dial-out conference due soon, bob registered."""
        store = f"postgresql:{fresh_schema(self)}"
        yield make_database(store)
        self.bob = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(self.bob.close)
        self.bob.bind(("127.0.0.1", 0))
        self.start = float(int(time.time()) + DIAL_OUT_IN)
        contact = f"sip:bob@127.0.0.1:{self.bob.getsockname()[1]}"
        yield seed_dial_out(store, contact, self.start)
        return [store] * 3

    def test_called_from_routed_node(self) -> None:
        """Bob is called once, by the node Kamailio dispatches the conference's requests to."""
        calls: Dict[str, int] = {}
        deadline = self.start + 8
        while time.time() < deadline:
            self.bob.settimeout(max(0.05, deadline - time.time()))
            try:
                data, source = self.bob.recvfrom(65536)
            except socket.timeout:
                break
            message = parse_datagram(data)
            if isinstance(message, Request) and message.method == "INVITE":
                calls[message.call_id or ""] = message.top_via.port or 5060
                reply = make_response(message, 486, to_tag="bob1").to_bytes()
                self.bob.sendto(reply, source)
        self.assertEqual(len(calls), 1, self.diagnostics())
        routed = re.findall(
            r"dispatch OPTIONS sip:dialout@example\.com to sip:127\.0\.0\.1:(\d+)",
            self.kamailio.log(),
        )
        self.assertEqual(len(routed), 3, self.diagnostics())  # one hand-over per node
        self.assertEqual(set(routed), {str(port) for port in calls.values()}, self.diagnostics())
        handed = [node for node in self.nodes if "handed to the front end" in node.log()]
        self.assertEqual(len(handed), 3, self.diagnostics())  # taken: nobody fell back
        self.assertEqual([t for node in self.nodes for t in node.tracebacks()], [])
