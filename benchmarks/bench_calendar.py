# -*- test-case-name: tests.unit.calendar -*-
"""
Benchmark of the calendar core against raw lxml, for the calendar core's targets:
build+serialize and parse of a 10-attendee VEVENT and of a 100-period
VFREEBUSY, and free/busy of 1,000 weekly events (100 occurrences each)
over 30 days.  Every figure is printed with the raw-lxml figure for the
same document measured in the same run, and their ratio.

  PYTHONPATH=. python benchmarks/bench_calendar.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, List, Tuple

from lxml import etree

from conference.calendar import values as cv
from conference.calendar import xcal
from conference.calendar.freebusy import build_freebusy
from conference.calendar.model import Component, Property, new_calendar

UTC = timezone.utc
NS = "{" + xcal.NS + "}"
T0 = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)


def rate(func: Callable[[], Any], seconds: float) -> float:
    """
    Calls per second of C{func}: the best of three runs of about
    C{seconds} each.
    """
    func()
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            func()
        spent = time.perf_counter() - start
        if spent >= seconds / 10:
            break
        n *= 2
    per_run = max(1, int(n * seconds / max(spent, 1e-9)))
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(per_run):
            func()
        best = max(best, per_run / (time.perf_counter() - start))
    return best


# --- the documents ------------------------------------------------------------


def build_event() -> Component:
    """
    A VCALENDAR REQUEST with one conference VEVENT of 10 attendees.
    """
    ev = Component("VEVENT")
    add = ev.properties.append
    add(Property("UID", "conf-0001@conference.example.com", None, cv.TEXT))
    add(Property("DTSTAMP", T0, None, cv.DATE_TIME))
    add(Property("SEQUENCE", 0, None, cv.INTEGER))
    add(Property("DTSTART", T0 + timedelta(days=1), None, cv.DATE_TIME))
    add(Property("DTEND", T0 + timedelta(days=1, hours=1), None, cv.DATE_TIME))
    add(Property("SUMMARY", "Weekly design review", None, cv.TEXT))
    add(Property("ORGANIZER", "sip:alice@example.com", {"CN": "Alice"}, cv.CAL_ADDRESS))
    for i in range(10):
        add(
            Property(
                "ATTENDEE",
                f"sip:user{i}@example.com",
                {
                    "CN": f"User {i}",
                    "ROLE": "REQ-PARTICIPANT",
                    "PARTSTAT": "NEEDS-ACTION",
                    "RSVP": "TRUE",
                    "CUTYPE": "INDIVIDUAL",
                },
                cv.CAL_ADDRESS,
            )
        )
    return new_calendar("-//bench//EN", "REQUEST", [ev])


def raw_event() -> bytes:
    """
    The same document as L{build_event} written with bare lxml calls.
    """
    sub = etree.SubElement
    root = etree.Element(NS + "icalendar", nsmap={None: xcal.NS})
    cal = sub(root, NS + "vcalendar")
    props = sub(cal, NS + "properties")
    for name, value in (("version", "2.0"), ("prodid", "-//bench//EN"), ("method", "REQUEST")):
        sub(sub(props, NS + name), NS + "text").text = value
    ev = sub(sub(cal, NS + "components"), NS + "vevent")
    p = sub(ev, NS + "properties")
    sub(sub(p, NS + "uid"), NS + "text").text = "conf-0001@conference.example.com"
    sub(sub(p, NS + "dtstamp"), NS + "date-time").text = "2024-01-01T09:00:00Z"
    sub(sub(p, NS + "sequence"), NS + "integer").text = "0"
    sub(sub(p, NS + "dtstart"), NS + "date-time").text = "2024-01-02T09:00:00Z"
    sub(sub(p, NS + "dtend"), NS + "date-time").text = "2024-01-02T10:00:00Z"
    sub(sub(p, NS + "summary"), NS + "text").text = "Weekly design review"
    org = sub(p, NS + "organizer")
    sub(sub(sub(org, NS + "parameters"), NS + "cn"), NS + "text").text = "Alice"
    sub(org, NS + "cal-address").text = "sip:alice@example.com"
    for i in range(10):
        att = sub(p, NS + "attendee")
        params = sub(att, NS + "parameters")
        for name, value in (
            ("cn", f"User {i}"),
            ("role", "REQ-PARTICIPANT"),
            ("partstat", "NEEDS-ACTION"),
        ):
            sub(sub(params, NS + name), NS + "text").text = value
        sub(sub(params, NS + "rsvp"), NS + "boolean").text = "true"
        sub(sub(params, NS + "cutype"), NS + "text").text = "INDIVIDUAL"
        sub(att, NS + "cal-address").text = f"sip:user{i}@example.com"
    return bytes(etree.tostring(root, xml_declaration=True, encoding="utf-8"))


def build_freebusy_doc() -> Component:
    """
    A VCALENDAR REPLY with a VFREEBUSY of 100 BUSY periods.
    """
    fb = Component("VFREEBUSY")
    add = fb.properties.append
    add(Property("DTSTAMP", T0, None, cv.DATE_TIME))
    add(Property("UID", "fb-0001@conference.example.com", None, cv.TEXT))
    add(Property("ORGANIZER", "sip:bob@example.com", None, cv.CAL_ADDRESS))
    add(Property("ATTENDEE", "sip:alice@example.com", None, cv.CAL_ADDRESS))
    add(Property("DTSTART", T0, None, cv.DATE_TIME))
    add(Property("DTEND", T0 + timedelta(days=50), None, cv.DATE_TIME))
    periods = [
        cv.Period(T0 + timedelta(hours=12 * i), T0 + timedelta(hours=12 * i + 1))
        for i in range(100)
    ]
    add(Property("FREEBUSY", periods, {"FBTYPE": "BUSY"}, cv.PERIOD))
    return new_calendar("-//bench//EN", "REPLY", [fb])


def raw_freebusy() -> bytes:
    """
    The same document as L{build_freebusy_doc} with bare lxml calls.
    """
    sub = etree.SubElement
    root = etree.Element(NS + "icalendar", nsmap={None: xcal.NS})
    cal = sub(root, NS + "vcalendar")
    props = sub(cal, NS + "properties")
    for name, value in (("version", "2.0"), ("prodid", "-//bench//EN"), ("method", "REPLY")):
        sub(sub(props, NS + name), NS + "text").text = value
    fb = sub(sub(cal, NS + "components"), NS + "vfreebusy")
    p = sub(fb, NS + "properties")
    sub(sub(p, NS + "dtstamp"), NS + "date-time").text = "2024-01-01T09:00:00Z"
    sub(sub(p, NS + "uid"), NS + "text").text = "fb-0001@conference.example.com"
    sub(sub(p, NS + "organizer"), NS + "cal-address").text = "sip:bob@example.com"
    sub(sub(p, NS + "attendee"), NS + "cal-address").text = "sip:alice@example.com"
    sub(sub(p, NS + "dtstart"), NS + "date-time").text = "2024-01-01T09:00:00Z"
    sub(sub(p, NS + "dtend"), NS + "date-time").text = "2024-02-20T09:00:00Z"
    busy = sub(p, NS + "freebusy")
    sub(sub(sub(busy, NS + "parameters"), NS + "fbtype"), NS + "text").text = "BUSY"
    for i in range(100):
        period = sub(busy, NS + "period")
        start = T0 + timedelta(hours=12 * i)
        sub(period, NS + "start").text = start.strftime("%Y-%m-%dT%H:%M:%SZ")
        sub(period, NS + "end").text = (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return bytes(etree.tostring(root, xml_declaration=True, encoding="utf-8"))


def weekly_calendar() -> Component:
    """
    1,000 events, each weekly with 100 occurrences, spread over a week.
    """
    cal = new_calendar("-//bench//EN")
    for i in range(1000):
        ev = Component("VEVENT")
        start = T0 + timedelta(minutes=10 * i)
        ev.add("UID", f"weekly-{i}@example.com")
        ev.add("DTSTAMP", T0)
        ev.add("DTSTART", start)
        ev.add("DTEND", start + timedelta(minutes=30))
        ev.add("RRULE", cv.Recur("WEEKLY", count=100))
        if i % 7 == 0:
            ev.add("STATUS", "TENTATIVE")
        cal.components.append(ev)
    return cal


def bare_walk(elem: Any) -> int:
    """
    Touch the tag and text of every element below C{elem}, building
    nothing: the least any reader walking the lxml tree must do.  Returns
    the number of elements.
    """
    count = 0
    for child in elem[:]:
        count += 1
        child.tag  # noqa: B018 - the lxml tag string is built on access
        if len(child):
            count += bare_walk(child)
        else:
            child.text  # noqa: B018 - likewise the text
    return count


# --- main ------------------------------------------------------------------------


def main(argv: List[str]) -> int:
    """
    Run the benchmark and print the table; exit status 0.
    """
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter runs (noisier)")
    args = parser.parse_args(argv)
    seconds = 0.3 if args.quick else 1.5
    hardened = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    event_doc = xcal.dumps(build_event())
    fb_doc = xcal.dumps(build_freebusy_doc())
    assert etree.tostring(etree.fromstring(event_doc), method="c14n") == etree.tostring(
        etree.fromstring(raw_event()), method="c14n"
    ), "benchmark documents differ"
    assert etree.tostring(etree.fromstring(fb_doc), method="c14n") == etree.tostring(
        etree.fromstring(raw_freebusy()), method="c14n"
    ), "benchmark documents differ"
    rows: List[Tuple[str, float, float]] = [
        (
            "VEVENT (10 attendees) build+serialize",
            rate(lambda: xcal.dumps(build_event()), seconds),
            rate(raw_event, seconds),
        ),
        (
            "VFREEBUSY (100 periods) build+serialize",
            rate(lambda: xcal.dumps(build_freebusy_doc()), seconds),
            rate(raw_freebusy, seconds),
        ),
        (
            "VEVENT (10 attendees) parse to model",
            rate(lambda: xcal.loads(event_doc), seconds),
            rate(lambda: etree.fromstring(event_doc, hardened), seconds),
        ),
        (
            "VFREEBUSY (100 periods) parse to model",
            rate(lambda: xcal.loads(fb_doc), seconds),
            rate(lambda: etree.fromstring(fb_doc, hardened), seconds),
        ),
    ]
    print(f"{'operation':44} {'ours/s':>10} {'raw lxml/s':>11} {'ratio':>6}")
    for name, ours, raw in rows:
        print(f"{name:44} {ours:10,.0f} {raw:11,.0f} {ours / raw:6.2f}")
    elements = bare_walk(etree.fromstring(event_doc, hardened)) + 1
    floor = rate(lambda: bare_walk(etree.fromstring(event_doc, hardened)), seconds)
    print(
        f"VEVENT raw lxml parse + bare walk of its {elements} elements (tag and text, "
        f"no model): {floor:,.0f}/s; ours is {rows[2][1] / floor:.2f} of it"
    )
    cal = weekly_calendar()
    start = time.perf_counter()
    fb = build_freebusy([cal], T0, T0 + timedelta(days=30), T0, attendee="sip:a@example.com")
    spent = time.perf_counter() - start
    periods = sum(len(p.values) for p in fb.get_all("FREEBUSY"))
    raw_fb = rate(raw_freebusy, seconds)
    print(
        f"free/busy, 1,000 weekly events x 100 over 30 days: {spent * 1000:.0f} ms "
        f"({periods} merged periods; {spent * raw_fb:.0f}x one raw lxml 100-period "
        "VFREEBUSY build+serialize)"
    )
    print(
        f"targets: VEVENT build+serialize >= 8,000/s: {rows[0][1]:,.0f}/s; "
        f"parses >= 20,000/s: {rows[2][1]:,.0f}/s (VEVENT), {rows[3][1]:,.0f}/s (VFREEBUSY)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
