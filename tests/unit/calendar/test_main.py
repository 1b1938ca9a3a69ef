# -*- test-case-name: tests.unit.calendar.test_main -*-
"""
Tests for L{conference.calendar.__main__}: the command line converts a real
.ics to xCal and back, prints free/busy, and reports errors cleanly.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
from typing import List, Tuple

from twisted.trial.unittest import SynchronousTestCase

from conference.calendar import ical, xcal
from conference.calendar.__main__ import main
from tests.shared import PROJECT_ROOT
from tests.unit.calendar.support import schema_errors, xcal_file


def run(*argv: str) -> Tuple[int, str, str]:
    """
    Run the CLI in-process; return (status, stdout, stderr).
    """
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


class ConvertTests(SynchronousTestCase):
    """
    xcal and ical sub-commands.
    """

    def setUp(self) -> None:
        """A temporary directory for written files."""
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(self._cleanup)

    def _cleanup(self) -> None:
        for name in os.listdir(self.tmp):
            os.remove(os.path.join(self.tmp, name))
        os.rmdir(self.tmp)

    def write(self, name: str, text: str) -> str:
        """Write C{text} to a temporary file and return its path."""
        path = os.path.join(self.tmp, name)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        return path

    def test_ics_to_xcal_and_back(self) -> None:
        """RFC 6321 B.1.1 (.ics) -> valid xCal -> the same calendar as iCalendar."""
        ics = str(xcal_file("examples-rfc6321", "rfc6321-B.1.1-example1.ics"))
        code, out, err = run("xcal", ics)
        self.assertEqual((code, err), (0, ""))
        self.assertIsNone(schema_errors(out.encode()))
        xml_path = self.write("out.xml", out)
        code, text, err = run("ical", xml_path)
        self.assertEqual((code, err), (0, ""))
        with open(ics, encoding="utf-8") as handle:
            self.assertEqual(ical.loads(text), ical.loads(handle.read()))

    def test_legacy_to_ical(self) -> None:
        """A legacy xCal file converts to iCalendar."""
        path = self.write(
            "legacy.xml",
            "<vcalendar><vevent><uid>u</uid>"
            "<dtstart>20020701T210000Z</dtstart></vevent></vcalendar>",
        )
        code, text, _ = run("ical", path)
        self.assertEqual(code, 0)
        self.assertIn("DTSTART:20020701T210000Z", text)

    def test_xcard_to_vcard(self) -> None:
        """An xCard file converts to vCard text."""
        path = str(xcal_file("sabre-pairs", "pairs", "036-testRFC6351Basic.xml"))
        code, text, _ = run("ical", path)
        self.assertEqual(code, 0)
        self.assertIn("FN:J. Doe", text)
        self.assertIn("N:Doe;J.;;;", text)

    def test_module_entry_point(self) -> None:
        """python -m conference.calendar runs as a program."""
        ics = str(xcal_file("examples-rfc6321", "rfc6321-B.1.1-example1.ics"))
        env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
        done = subprocess.run(
            [sys.executable, "-m", "conference.calendar", "xcal", ics],
            capture_output=True,
            env=env,
            check=False,
            timeout=60,
        )
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(len(xcal.loads(done.stdout)), 1)

    def test_freebusy(self) -> None:
        """freebusy prints a VFREEBUSY over the window, as iCalendar or xCal."""
        path = self.write(
            "cal.ics",
            "\r\n".join(
                [
                    "BEGIN:VCALENDAR",
                    "VERSION:2.0",
                    "PRODID:x",
                    "BEGIN:VEVENT",
                    "UID:w",
                    "DTSTAMP:20240101T000000Z",
                    "DTSTART:20240101T090000Z",
                    "DTEND:20240101T100000Z",
                    "RRULE:FREQ=WEEKLY;COUNT=10",
                    "END:VEVENT",
                    "END:VCALENDAR",
                    "",
                ]
            ),
        )
        args: List[str] = [
            "freebusy",
            path,
            "--start",
            "2024-01-01T00:00Z",
            "--end",
            "2024-01-15T00:00Z",
            "--attendee",
            "sip:a@x",
            "--now",
            "2024-01-01T00:00:00+00:00",
        ]
        code, text, _ = run(*args)
        self.assertEqual(code, 0)
        self.assertIn("FREEBUSY;FBTYPE=BUSY:20240101T090000Z/20240101T100000Z,2024010", text)
        self.assertIn("METHOD:PUBLISH", text)
        code, xml, _ = run(*args, "--format", "xcal")
        self.assertEqual(code, 0)
        self.assertIsNone(schema_errors(xml.encode()))

    def test_errors(self) -> None:
        """Bad input and missing files exit 1 with a message; bad usage exits 2."""
        bad = self.write("bad.ics", "BEGIN:VCALENDAR\r\nDTSTART:nope\r\nEND:VCALENDAR\r\n")
        code, _, err = run("xcal", bad)
        self.assertEqual(code, 1)
        self.assertIn("line 2 (DTSTART)", err)
        code, _, err = run("ical", os.path.join(self.tmp, "missing.xml"))
        self.assertEqual(code, 1)
        self.assertIn("cannot read", err)
        self.assertEqual(run("frob")[0], 2)
        self.assertEqual(run("freebusy", bad, "--start", "x", "--end", "y")[0], 2)
