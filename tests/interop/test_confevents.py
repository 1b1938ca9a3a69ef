# -*- test-case-name: tests.interop.test_confevents -*-
"""
The conference event package (RFC 4575) and moderator requests against
the real plugin, driven by SIPp: an attendee subscribes, gets the full
conference-info NOTIFY and unsubscribes; a REFER by someone who is no
moderator is refused, and one naming the conference itself is a loop; the
organizer's control INFOs in her call.  And linphonec as a real
subscriber: calling the conference, it sees the C{isfocus} Contact,
subscribes by itself and takes the full document.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Generator, Optional

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from tests.interop.harness import ServerProcess, require_netns, require_tool, run_sipp
from tests.interop.test_bind import USERS, make_database
from tests.interop.test_clients import LINPHONE_CONFIG, Client
from tests.interop.test_focus import seed

_server: Optional[ServerProcess] = None
_moderated: Optional[ServerProcess] = None


class ConferenceEventsInteropTests(TestCase):
    """
    SIPp against a server on a SQLite store holding one conference.
    """

    @inlineCallbacks
    def setUp(self) -> Generator[Deferred[Any], Any, None]:  # type: ignore[override]
        global _server
        require_tool("sipp")
        if _server is None or _server.process.poll() is not None:
            folder = Path(tempfile.mkdtemp(prefix="conference-events-"))
            database = folder / "events.sqlite"
            yield make_database(database)
            _server = ServerProcess(
                ["--auth", USERS, "--domain", "example.com", "--store", f"sqlite:{database}"]
            )
            atexit.register(_server.cleanup)
            atexit.register(shutil.rmtree, str(folder), True)
        self.proc = _server

    def sipp(self, scenario: str, user: str, transport: str = "u1") -> None:
        failure = run_sipp(
            self.proc,
            scenario,
            *("-s", "conf", "-au", user, "-ap", "secret", "-auth_uri", "conf@example.com"),
            timeout=10,
            transport=transport,
        )
        self.assertFalse(failure, failure)
        self.assertEqual(self.proc.tracebacks(), [], self.proc.log()[-3000:])

    def test_subscribe(self) -> None:
        """SIPp subscribes as an attendee, gets the full conference-info NOTIFY, unsubscribes."""
        self.sipp("conference_subscribe.xml", "bob")

    def test_subscribe_tcp(self) -> None:
        """Over TCP, the NOTIFYs come back on the connection SIPp opened (the outbound path)."""
        self.sipp("conference_subscribe.xml", "bob", "t1")

    def test_refer_refused(self) -> None:
        """A REFER by a participant is 403, one naming the conference is 482."""
        self.sipp("refer_refuse.xml", "bob")


class ModeratorInteropTests(TestCase):
    """
    SIPp as the organizer of a conference that is on now, against a server
    that authenticates INVITEs (so roles are known).
    """

    @inlineCallbacks
    def setUp(self) -> Generator[Deferred[Any], Any, None]:  # type: ignore[override]
        global _moderated
        require_tool("sipp")
        if _moderated is None or _moderated.process.poll() is not None:
            folder = Path(tempfile.mkdtemp(prefix="conference-moderate-"))
            yield seed(folder / "focus.sqlite")
            _moderated = ServerProcess(
                [
                    "--auth",
                    USERS,
                    "--auth-invite",
                    "--domain",
                    "example.com",
                    "--store",
                    f"sqlite:{folder / 'focus.sqlite'}",
                ]
            )
            atexit.register(_moderated.cleanup)
            atexit.register(shutil.rmtree, str(folder), True)
        self.proc = _moderated

    def test_info_commands(self) -> None:
        """In her call the organizer locks (200); bad commands are 404, 400 and 482."""
        failure = run_sipp(
            self.proc,
            "moderate.xml",
            *("-s", "conf-now", "-au", "alice", "-ap", "secret"),
            *("-auth_uri", "conf-now@example.com"),
            timeout=15,
        )
        self.assertFalse(failure, failure)
        self.assertEqual(self.proc.tracebacks(), [], self.proc.log()[-3000:])
        self.assertIn("locked sip:conf-now@example.com", self.proc.log())


class LinphoneSubscriberTests(TestCase):
    """
    linphonec (liblinphone 5.1) subscribes to the conference it calls.
    """

    @inlineCallbacks
    def test_linphonec_subscribes(self) -> Generator[Deferred[Any], Any, None]:
        """linphonec calls, subscribes with Event: conference and answers the full NOTIFY 200."""
        require_netns()
        linphonec = require_tool("linphonec", "linphone-cli")
        folder = Path(self.mktemp()).resolve()
        folder.mkdir()
        yield seed(folder / "focus.sqlite")
        server = ServerProcess(
            [
                "--domain",
                "example.com",
                "--auth",
                USERS,
                "--store",
                f"sqlite:{folder / 'focus.sqlite'}",
            ],
            netns=True,
        )
        self.addCleanup(server.cleanup)
        home = server.folder / "linphone"
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
            server, [linphonec, "-c", str(config), "-d", "6", "-l", str(log)], home / "out.log", env
        )
        self.addCleanup(client.stop, b"quit\n")
        notified = re.compile(r"NOTIFY sip:alice@\S+ to \S+ -> 200")
        deadline = time.monotonic() + 20
        called = False
        while time.monotonic() < deadline and not notified.search(server.log()):
            if not called and "REGISTER sip:example.com from" in server.log():
                assert client.process.stdin is not None
                # By address: the phone resolves no domain in the namespace.
                client.process.stdin.write(b"call sip:conf-now@127.0.0.1:5060\n")
                client.process.stdin.flush()
                called = True
            yield deferLater(reactor, 0.2, lambda: None)
        detail = f"client:\n{client.log()[-2000:]}\nserver:\n{server.log()[-3000:]}"
        self.assertRegex(server.log(), r"SUBSCRIBE sip:conf-now@\S+ from \S+ -> 200", detail)
        self.assertRegex(server.log(), notified, detail)
        self.assertIn('state="full" version="1"', log.read_text(errors="replace"), detail)
        self.assertEqual(server.tracebacks(), [], detail)
