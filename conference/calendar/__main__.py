# -*- test-case-name: tests.unit.calendar.test_main -*-
"""
Command line for the calendar core, for operators and interop testing:
convert a file between iCalendar text and xCal, or print a VFREEBUSY for
the events in a file.  This is the only module of the package that touches
files; the library itself stays sans-I/O.

  python -m conference.calendar xcal FILE.ics
  python -m conference.calendar ical FILE.xml      (xCard gives vCard text)
  python -m conference.calendar freebusy FILE --start 2024-01-01T00:00Z --end 2024-01-08T00:00Z
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from typing import List, Optional, Sequence, TextIO

from conference.calendar import freebusy, ical, xcal, xcard
from conference.calendar.errors import CalendarError
from conference.calendar.model import Component, new_calendar


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    with open(path, "rb") as handle:
        return handle.read(max(xcal.MAX_BYTES, ical.MAX_CHARS) + 1)


def _load_any(data: bytes, cards: bool = False) -> List[Component]:
    # xCal (either form) if it looks like XML, else iCalendar text; with
    # cards, xCard too.
    if data.lstrip()[:1] == b"<":
        if cards and xcal.parse_xml(data).tag == "{" + xcard.NS + "}vcards":
            return xcard.loads(data)
        return xcal.loads(data)
    return ical.loads(data)


def _when(text: str) -> datetime:
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed


def build_parser() -> argparse.ArgumentParser:
    """
    The argument parser (sub-commands C{xcal}, C{ical}, C{freebusy}).
    """
    parser = argparse.ArgumentParser(
        prog="python -m conference.calendar",
        description="Convert between iCalendar and xCal, or compute free/busy time.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    to_xcal = sub.add_parser("xcal", help="iCalendar text (or legacy xCal) -> RFC 6321 xCal")
    to_xcal.add_argument("file", help="input file, '-' for standard input")
    to_ical = sub.add_parser(
        "ical", help="xCal (RFC 6321 or legacy) -> iCalendar text (xCard -> vCard text)"
    )
    to_ical.add_argument("file", help="input file, '-' for standard input")
    fb = sub.add_parser("freebusy", help="VFREEBUSY for the events of a file")
    fb.add_argument("file", help="iCalendar or xCal input, '-' for standard input")
    fb.add_argument("--start", required=True, type=_when, help="window start (ISO 8601)")
    fb.add_argument("--end", required=True, type=_when, help="window end (ISO 8601)")
    fb.add_argument("--attendee", help="calendar user whose free/busy this is")
    fb.add_argument("--organizer", help="who asked (ORGANIZER of the VFREEBUSY)")
    fb.add_argument("--now", type=_when, help="DTSTAMP (default: the current time)")
    fb.add_argument(
        "--format", choices=("ical", "xcal"), default="ical", help="output format (default ical)"
    )
    return parser


def main(
    argv: Optional[Sequence[str]] = None,
    stdout: Optional[TextIO] = None,
    stderr: Optional[TextIO] = None,
) -> int:
    """
    Run the command line; return the exit status (0 ok, 1 bad input, 2
    usage error).
    """
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return int(e.code) if isinstance(e.code, int) else 2
    try:
        data = _read(args.file)
        if args.command == "xcal":
            out.write(xcal.dumps(_load_any(data), pretty=True).decode("utf-8"))
        elif args.command == "ical":
            out.write(ical.dumps(_load_any(data, cards=True)).replace("\r\n", "\n"))
        else:
            now = args.now or datetime.now(timezone.utc)
            fb = freebusy.build_freebusy(
                _load_any(data),
                args.start,
                args.end,
                now,
                organizer=args.organizer,
                attendee=args.attendee,
            )
            cal = new_calendar(method="PUBLISH", components=[fb])
            if args.format == "xcal":
                out.write(xcal.dumps(cal, pretty=True).decode("utf-8"))
            else:
                out.write(ical.dumps(cal).replace("\r\n", "\n"))
    except OSError as e:
        err.write(f"error: cannot read {args.file}: {e.strerror or e}\n")
        return 1
    except CalendarError as e:
        err.write(f"error: {e}\n")
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
