# -*- test-case-name: tests.interop.test_clients -*-
"""
Softphones register against the server on its default options: baresip and
linphonec (Debian's baresip 1.0 and linphone-cli 5.1), each run with the
server in a network namespace of their own, since both need a routable
address (see L{tests.interop.harness}).

They are why the default digest challenge is MD5 alone (docs/auth.rst):
baresip 1.0 gives up on any SHA-256 challenge, wherever it is listed.
Success is read from the server's store (the binding is there), and the
client's own log is shown when it is not.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any, Generator, List, Sequence

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from conference.store import open_stores
from tests.interop.harness import ServerProcess, require_netns, require_tool

USERS = "memory:alice:secret:bob:secret"
AOR = "sip:alice@example.com"

# Seconds a client gets to register; both take well under one.
REGISTER_TIMEOUT = 15.0

BARESIP_CONFIG = """\
sip_listen\t\t127.0.0.1:5080
module_path\t\t/usr/lib/baresip/modules
module_app\t\taccount.so
"""

BARESIP_ACCOUNT = '<sip:alice@example.com>;auth_pass=secret;outbound="sip:127.0.0.1:5060"\n'

LINPHONE_CONFIG = """\
[sip]
sip_port=5090
sip_tcp_port=0
sip_tls_port=0
default_proxy=0

[proxy_0]
reg_proxy=<sip:127.0.0.1:5060;transport=udp>
reg_identity=sip:alice@example.com
reg_expires=3600
reg_sendregister=1
publish=0

[auth_info_0]
username=alice
passwd=secret
realm=example.com
domain=example.com

[sound]
echocancellation=0
"""


class Client:
    """
    One softphone process inside the server's namespace, logging to a file.
    """

    def __init__(
        self,
        server: ServerProcess,
        args: Sequence[str],
        log: Path,
        env: Any = None,
    ) -> None:
        self.log_path = log
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            server.inside(args),
            cwd=server.folder,
            env=env,
            stdin=subprocess.PIPE,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        """
        What the client printed so far.
        """
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, command: bytes = b"") -> None:
        """
        Send C{command} on standard input (a client's quit), else SIGTERM;
        kill it if it is still there ten seconds later.
        """
        if self.process.poll() is None:
            try:
                if command:
                    assert self.process.stdin is not None
                    self.process.stdin.write(command)
                    self.process.stdin.flush()
                else:
                    self.process.terminate()
                self.process.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
        if self.process.stdin is not None:
            self.process.stdin.close()
        self._log.close()


class SoftphoneRegistrationTests(TestCase):
    """
    baresip and linphonec register with the server's default digest options.
    """

    def start_server(self, *extra: str) -> ServerProcess:
        require_netns()
        server = ServerProcess(["--domain", "example.com", "--auth", USERS, *extra], netns=True)
        self.addCleanup(server.cleanup)
        return server

    @inlineCallbacks
    def registered(
        self, server: ServerProcess, client: Client
    ) -> Generator[Deferred[Any], Any, List[str]]:
        """
        The contacts the server's store holds for alice, as soon as there
        are any, or none once the client exits or the time is up.
        """
        stores = yield open_stores(f"sqlite:{server.folder / 'conference.sqlite'}", reactor)
        try:
            deadline = time.monotonic() + REGISTER_TIMEOUT
            while True:
                bindings = yield stores.registrations.get_bindings(AOR, time.time())
                if bindings or client.process.poll() is not None or time.monotonic() > deadline:
                    return [b.contact for b in bindings]
                yield deferLater(reactor, 0.2, lambda: None)
        finally:
            yield stores.close()

    def start_baresip(self, server: ServerProcess) -> Client:
        baresip = require_tool("baresip", "baresip")
        folder = server.folder / "baresip"
        folder.mkdir()
        (folder / "config").write_text(BARESIP_CONFIG)
        (folder / "accounts").write_text(BARESIP_ACCOUNT)
        client = Client(server, [baresip, "-f", str(folder)], folder / "out.log")
        self.addCleanup(client.stop)
        return client

    def start_linphonec(self, server: ServerProcess) -> Client:
        linphonec = require_tool("linphonec", "linphone-cli")
        home = server.folder / "linphone"
        # linphone stays offline if it cannot open its database there.
        (home / ".local" / "share" / "linphone").mkdir(parents=True)
        (home / ".config").mkdir()
        config = home / "linphonerc"
        config.write_text(LINPHONE_CONFIG)
        env = dict(os.environ)
        env.update(
            HOME=str(home),
            XDG_DATA_HOME=str(home / ".local" / "share"),
            XDG_CONFIG_HOME=str(home / ".config"),
        )
        log = home / "linphone.log"
        client = Client(
            server,
            [linphonec, "-c", str(config), "-d", "6", "-l", str(log)],
            home / "out.log",
            env,
        )
        self.addCleanup(client.stop, b"quit\n")
        self.linphone_log = log
        return client

    def assert_registered(
        self, server: ServerProcess, client: Client, contacts: List[str], port: int
    ) -> None:
        detail = f"client:\n{client.log()[-3000:]}\nserver:\n{server.log()[-3000:]}"
        self.assertTrue([c for c in contacts if f"127.0.0.1:{port}" in c], detail)
        self.assertEqual(server.tracebacks(), [], detail)

    @inlineCallbacks
    def test_baresip_registers(self) -> Generator[Deferred[Any], Any, None]:
        """baresip 1.0 registers with the default options (one MD5 challenge)."""
        server = self.start_server()
        client = self.start_baresip(server)
        contacts = yield self.registered(server, client)
        self.assert_registered(server, client, contacts, 5080)

    @inlineCallbacks
    def test_linphonec_registers(self) -> Generator[Deferred[Any], Any, None]:
        """linphonec registers with the default options, answering with MD5."""
        server = self.start_server()
        client = self.start_linphonec(server)
        contacts = yield self.registered(server, client)
        self.assert_registered(server, client, contacts, 5090)
        self.assertIn("algorithm=MD5", self.linphone_log.read_text(errors="replace"))

    @inlineCallbacks
    def test_linphonec_takes_sha256_first(self) -> Generator[Deferred[Any], Any, None]:
        """With --digest-algorithms SHA-256,MD5 linphonec answers the topmost, SHA-256."""
        server = self.start_server("--digest-algorithms", "SHA-256,MD5")
        client = self.start_linphonec(server)
        contacts = yield self.registered(server, client)
        self.assert_registered(server, client, contacts, 5090)
        self.assertRegex(
            self.linphone_log.read_text(errors="replace"),
            r"Authorization: +Digest [^\r\n]*algorithm=SHA-256",
        )
