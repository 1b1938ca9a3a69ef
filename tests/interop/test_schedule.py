# -*- test-case-name: tests.interop.test_schedule -*-
"""
Scheduling by MESSAGE against the real plugin: SIPp
registers alice, schedules a conference with an authenticated MESSAGE
carrying an RFC 6321 REQUEST to the factory, and receives and answers the
conference's iTIP REPLY (ACCEPTED), which the server sends as a MESSAGE of
its own to alice's registered contact.
"""

from __future__ import annotations

import re

from twisted.trial.unittest import TestCase

from tests.interop.harness import ServerProcess, require_tool, run, udp_exchange
from tests.interop.test_bind import SCENARIOS

USERS = "memory:alice:secret:bob:secret"


class ScheduleInteropTests(TestCase):
    """
    SIPp schedules a conference and gets its REPLY.
    """

    def setUp(self) -> None:
        self.proc = ServerProcess(["--auth", USERS, "--domain", "example.com"])
        self.addCleanup(self.proc.cleanup)

    def allows_message(self) -> bool:
        """
        Whether the server answers MESSAGE (the scheduler is installed).
        """
        probe = (
            b"OPTIONS sip:example.com SIP/2.0\r\n"
            b"Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKprobe1;rport\r\n"
            b"From: <sip:probe@example.com>;tag=p\r\nTo: <sip:example.com>\r\n"
            b"Call-ID: probe-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
            b"Content-Length: 0\r\n\r\n"
        )
        answer = udp_exchange(self.proc.port, probe) or b""
        allow = re.search(rb"(?im)^Allow:(.*)$", answer)
        return allow is not None and b"MESSAGE" in allow.group(1)

    def test_schedule_by_message(self) -> None:
        """A MESSAGE REQUEST is challenged, accepted, and REPLYed ACCEPTED."""
        self.assertTrue(
            self.allows_message(),
            "the server does not answer MESSAGE: install_scheduler is not wired "
            "into ConferenceService._applications",
        )
        sipp = require_tool("sipp")
        folder = self.proc.folder
        users = folder / "users.csv"
        users.write_text("SEQUENTIAL\nalice;secret\n")
        errors = folder / "sipp-schedule.err"
        messages = folder / "sipp-schedule-messages.log"
        result = run(
            [
                sipp,
                f"127.0.0.1:{self.proc.port}",
                "-sf",
                str(SCENARIOS / "schedule.xml"),
                "-oocsf",
                str(SCENARIOS / "schedule_reply.xml"),
                "-inf",
                str(users),
                "-t",
                "u1",
                "-m",
                "1",
                "-i",
                "127.0.0.1",
                "-nostdin",
                "-timeout",
                "15s",
                "-timeout_error",
                "-trace_err",
                "-error_file",
                str(errors),
                "-trace_msg",
                "-message_file",
                str(messages),
                "-auth_uri",
                "example.com",
            ],
            cwd=folder,
            timeout=30,
        )
        detail = errors.read_text(errors="replace") if errors.exists() else ""
        log = self.proc.log()
        self.assertEqual(
            result.returncode,
            0,
            f"sipp failed:\n{result.stdout[-1500:]}\n{result.stderr[-1500:]}"
            f"\n{detail[-3000:]}\nserver log:\n{log[-3000:]}",
        )
        trace = messages.read_text(errors="replace") if messages.exists() else ""
        replies = [
            chunk
            for chunk in trace.split("----------------------------------------------")
            if re.search(r"(?m)^MESSAGE sip:alice@127\.0\.0\.1:\d+ SIP/2\.0", chunk)
        ]
        self.assertEqual(len(replies), 1, trace[-3000:])
        self.assertIn("method=REPLY", replies[0])
        self.assertIn("<partstat><text>ACCEPTED</text></partstat>", replies[0])
        self.assertRegex(replies[0], r"<cal-address>sip:conf-[0-9a-f]+@example.com</cal-address>")
        self.assertRegex(log, r"iTIP REPLY MESSAGE to sip:alice@127\.0\.0\.1:\d+ answered 200")
        self.assertEqual(self.proc.tracebacks(), [], log[-3000:])
