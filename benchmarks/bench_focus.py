# -*- test-case-name: tests.unit.test_bench_fixed -*-
"""
Measures, with SIPp, the focus's two call paths, full joins (INVITE -> 200
multipart/mixed with SDP and the VEVENT -> ACK -> BYE -> 200) and refusals
(INVITE -> 486 with a VFREEBUSY body and Retry-After -> ACK), beside a bare
C{twisted.protocols.sip} responder answering the same flows with canned
bodies in the same run, so the results are ratios.

The full server runs on a SQLite store holding a conference open now (with
a participant limit far above what a run can reach) and one that opens in
three hours. Before the load, one join and one refusal are made by hand:
they check the bodies and give the bare responder the same bytes to send.
For each server and flow the highest passing rate is searched as in
C{bench_sip.py}; at 80% of it SIPp's setup times (INVITE to final answer)
give p50/p99.

    python benchmarks/bench_focus.py [--quick] [--json FILE] [--only full|bare]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Generator, List, Optional, Sequence, Tuple

from bench_sip import Plan, conference_env, find_max_rate, free_udp_port, say, warm_up
from common import (
    FULL,
    QUICK,
    SCENARIOS,
    CommandServer,
    conference_command,
    header_line,
    loaded_run,
    pin_self,
    run_child,
)
from probe import LOOPBACK

HERE = Path(__file__).resolve().parent
OPEN_USER = "bench-now"
LATER_USER = "bench-later"
DOMAIN = "example.com"
# Each participant takes an RTP and an RTCP port; below Linux's ephemeral range.
RTP_PORTS = "20000-31999"
# Full joins per second of one core (the scale goal; a bare responder does ~9,000).
TARGET_JOINS = 2000.0
TARGET_SETUP_P99_MS = 20.0
TARGET_BUSY_RATIO = 0.5
FLOWS = ("join", "busy")


@dataclass
class FlowResult:
    """
    One server on one flow: its highest passing rate and, at 80% of it,
    CPU and setup times.
    """

    server: str
    flow: str
    max_rate: int
    runs: int
    max_cpu_percent: float = 0.0
    load_rate: int = 0
    load_passed: bool = False
    cpu_percent: float = 0.0
    cpu_us_per_call: float = 0.0
    setup_p50_ms: float = 0.0
    setup_p99_ms: float = 0.0

    @property
    def capacity(self) -> float:
        """
        Calls per second one core could take, by CPU per call at 80% load.
        """
        return 1e6 / self.cpu_us_per_call if self.cpu_us_per_call else 0.0


# Child modes: seeding the store and the bare responder ------------------


def _stamp(when: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(when))


def _calendar(user: str, start: float, minutes: int) -> bytes:
    from conference.calendar import parse_ical_calendar, to_xcal

    uri = f"sip:{user}@{DOMAIN}"
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//bench_focus//EN",
        "BEGIN:VEVENT",
        f"UID:{user}@{DOMAIN}",
        f"DTSTAMP:{_stamp(start - 86400)}",
        f"DTSTART:{_stamp(start)}",
        f"DTEND:{_stamp(start + minutes * 60)}",
        "SUMMARY:Benchmark",
        f"ORGANIZER:sip:alice@{DOMAIN}",
        f"ATTENDEE;CUTYPE=ROOM:{uri}",
        f"ATTENDEE;PARTSTAT=ACCEPTED:sip:bob@{DOMAIN}",
        "END:VEVENT",
        "END:VCALENDAR",
        "",
    ]
    result: bytes = to_xcal(parse_ical_calendar("\r\n".join(lines)))
    return result


def seed(path: str) -> None:
    """
    Write the two conferences into a new SQLite store at C{path}.
    """
    from twisted.internet.defer import inlineCallbacks
    from twisted.internet.task import react

    from conference.records import ConferenceRecord
    from conference.store import open_stores

    @inlineCallbacks
    def run(reactor: Any) -> Generator[Any, Any, None]:
        now = float(int(time.time()))
        stores = yield open_stores(f"sqlite:{path}", reactor)
        try:
            for user, start, minutes in (
                (OPEN_USER, now - 300, 24 * 60),
                (LATER_USER, now + 3 * 3600, 60),
            ):
                record = ConferenceRecord(
                    uri=f"sip:{user}@{DOMAIN}",
                    uid=f"{user}@{DOMAIN}",
                    organizer=f"sip:alice@{DOMAIN}",
                    calendar=_calendar(user, start, minutes),
                    settings={"max_participants": "1000000"},
                )
                yield stores.conferences.put(record, None)
        finally:
            yield stores.close()

    react(run)


def serve_bare(port: int, canned_path: str) -> None:
    """
    The bare responder answering the focus flows with the full server's
    captured bodies: INVITE to the open conference 200 (SDP + VEVENT,
    isfocus Contact), to the other 486 (VFREEBUSY, Retry-After), BYE 200.
    """
    from bare_responder import BareResponder
    from twisted.internet import reactor
    from twisted.protocols import sip

    canned = json.loads(Path(canned_path).read_text())

    class FocusResponder(BareResponder):
        def handle_request(self, message: sip.Request, addr: Tuple[str, int]) -> None:
            method = message.method
            if method == "ACK":
                return
            if method == "INVITE":
                flow = "join" if f":{OPEN_USER}@" in message.uri.toString() else "busy"
                answer = canned[flow]
                response = self._response(int(answer["code"]), message)
                for name, value in answer["headers"]:
                    response.addHeader(name, value)
                if flow == "join":
                    response.addHeader("contact", f"<sip:{OPEN_USER}@{LOOPBACK}:{port}>;isfocus")
                body: str = answer["body"]
                response.addHeader("content-length", str(len(body.encode("utf-8"))))
                response.body = body
                self.deliverResponse(response)
                self.answered += 1
                return
            if method == "BYE":
                response = self._response(200, message)
                response.addHeader("content-length", "0")
                self.deliverResponse(response)
                self.answered += 1
                return
            super().handle_request(message, addr)

    responder = FocusResponder(200)
    udp: Any = reactor
    udp.listenUDP(port, responder, interface=LOOPBACK, maxPacketSize=65535)
    udp.run()


# Capturing the full server's answers ------------------------------------


def _invite(user: str, local: Tuple[str, int], port: int, n: str) -> bytes:
    host, lport = local
    sdp = (
        f"v=0\r\no=py 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
        "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    )
    return (
        f"INVITE sip:{user}@{DOMAIN} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:{lport};branch=z9hG4bKcap{n};rport\r\n"
        f"From: <sip:py@{DOMAIN}>;tag=cap{n}\r\n"
        f"To: <sip:{user}@{DOMAIN}>\r\n"
        f"Call-ID: cap-{n}@{host}\r\n"
        "CSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
        f"Contact: <sip:py@{host}:{lport}>\r\n"
        "Accept: application/sdp, application/calendar+xml\r\n"
        "Content-Type: application/sdp\r\n"
        f"Content-Length: {len(sdp)}\r\n\r\n{sdp}"
    ).encode()


def _split(data: bytes) -> Tuple[int, Dict[str, List[str]], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("utf-8", "replace").split("\r\n")
    code = int(lines[0].split(" ", 2)[1])
    headers: Dict[str, List[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return code, headers, body


def _in_dialog(method: str, answer: Dict[str, List[str]], local: Tuple[str, int], n: str) -> bytes:
    host, lport = local
    target = re.search(r"<([^>]+)>", answer["contact"][0]) if "contact" in answer else None
    uri = target.group(1) if target else f"sip:{OPEN_USER}@{DOMAIN}"
    cseq = 1 if method == "ACK" else 2
    return (
        f"{method} {uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:{lport};branch=z9hG4bKcap{n}{method.lower()};rport\r\n"
        f"From: <sip:py@{DOMAIN}>;tag=cap{n}\r\n"
        f"To: {answer['to'][0]}\r\n"
        f"Call-ID: cap-{n}@{host}\r\n"
        f"CSeq: {cseq} {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def capture(port: int) -> Dict[str, Any]:
    """
    One join (then BYE) and one refusal against the full server: checks
    their bodies and returns them for the bare responder.

    @raise RuntimeError: when an answer is not what the flow expects.
    """
    canned: Dict[str, Any] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        sock.settimeout(5.0)
        local = sock.getsockname()
        for flow, user, wanted in (("join", OPEN_USER, 200), ("busy", LATER_USER, 486)):
            n = f"{flow}{os.getpid()}"
            sock.sendto(_invite(user, local, port, n), (LOOPBACK, port))
            code, body = 100, b""
            headers: Dict[str, List[str]] = {}
            for _ in range(10):
                code, headers, body = _split(sock.recv(65536))
                if code >= 200:
                    break
            if code != wanted:
                raise RuntimeError(f"{flow}: INVITE to {user} answered {code}, not {wanted}")
            kind = headers.get("content-type", [""])[0]
            if flow == "join":
                checks = [
                    "multipart/mixed" in kind,
                    b"application/calendar+xml;method=REQUEST;component=VEVENT" in body,
                    b"m=audio" in body,
                    "isfocus" in headers.get("contact", [""])[0],
                ]
            else:
                checks = ["component=VFREEBUSY" in kind, b"<vfreebusy>" in body]
                checks.append(headers.get("retry-after", [""])[0].isdigit())
            if not all(checks):
                raise RuntimeError(f"{flow}: unexpected answer {headers} {body[:300]!r}")
            sock.sendto(_in_dialog("ACK", headers, local, n), (LOOPBACK, port))
            if flow == "join":
                sock.sendto(_in_dialog("BYE", headers, local, n), (LOOPBACK, port))
                for _ in range(10):
                    if _split(sock.recv(65536))[0] >= 200:
                        break
            kept = [("content-type", kind)]
            if "retry-after" in headers:
                kept.append(("retry-after", headers["retry-after"][0]))
            canned[flow] = {"code": code, "headers": kept, "body": body.decode("utf-8")}
    return canned


# Measuring --------------------------------------------------------------


def measure(
    sipp: str, server: CommandServer, flow: str, inf: Path, *, plan: Plan, folder: Path
) -> FlowResult:
    """
    The highest passing rate of one flow, then CPU and setup times at 80%.
    """
    scenario = SCENARIOS / f"focus_{flow}.xml"
    extra = ["-inf", str(inf)]
    warm_up(sipp, scenario, server, plan, folder, label=flow, extra=extra)
    max_rate, runs, max_cpu = find_max_rate(sipp, scenario, server, plan, folder, extra=extra)
    result = FlowResult(server.name, flow, max_rate, runs, max_cpu_percent=max_cpu)
    if max_rate == 0:
        return result
    load = loaded_run(
        sipp,
        scenario,
        server,
        rate=max(int(max_rate * 0.8), 10),
        plan=plan,
        folder=folder,
        extra=extra,
    )
    result.load_rate = load.rate
    result.load_passed = load.passed
    result.cpu_percent = load.cpu_percent
    result.cpu_us_per_call = load.cpu_us_per_call
    result.setup_p50_ms = load.p50_ms
    result.setup_p99_ms = load.p99_ms
    return result


def table(results: Sequence[FlowResult]) -> str:
    """
    The results, the ratios against the bare responder and the targets.
    """
    head = (
        f"{'server':7} {'flow':5} {'max/s':>7} {'cpu%':>5} {'@80%/s':>7} {'cpu%':>5} "
        f"{'us/call':>8} {'cap/s':>7} {'setup p50/p99 ms':>17}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        bound = "*" if r.max_cpu_percent < 80.0 else " "
        ok = "" if r.load_passed or not r.load_rate else " (80% run failed)"
        lines.append(
            f"{r.server:7} {r.flow:5} {r.max_rate:6d}{bound} {r.max_cpu_percent:5.0f} "
            f"{r.load_rate:7d} {r.cpu_percent:5.0f} {r.cpu_us_per_call:8.1f} "
            f"{r.capacity:7.0f} {r.setup_p50_ms:8.0f}/{r.setup_p99_ms:<8.0f}{ok}"
        )
    lines.append("* under 80% of the server's core at max/s: SIPp or the cap was the limit.")
    by = {(r.server, r.flow): r for r in results}
    lines += ["", "ratios, full / bare (same run)"]
    for flow in FLOWS:
        full, bare = by.get(("full", flow)), by.get(("bare", flow))
        if full and bare and bare.max_rate and bare.capacity:
            lines.append(
                f"  {flow:5} max rate {full.max_rate / bare.max_rate:5.2f}x  "
                f"CPU capacity {full.capacity / bare.capacity:5.2f}x"
            )
    lines += ["", "targets"]
    join = by.get(("full", "join"))
    if join is not None:
        verdict = "meets" if join.max_rate >= TARGET_JOINS else "BELOW"
        lines.append(
            f"  joins/s >= {TARGET_JOINS:.0f}: {join.max_rate} "
            f"({join.max_rate / TARGET_JOINS:.2f}x of target; CPU capacity "
            f"{join.capacity:.0f}/s) {verdict}"
        )
        verdict = "meets" if join.load_rate and join.setup_p99_ms < TARGET_SETUP_P99_MS else "BELOW"
        lines.append(
            f"  setup p99 < {TARGET_SETUP_P99_MS:.0f} ms at 80% ({join.load_rate}/s): "
            f"{join.setup_p99_ms:.0f} ms {verdict}"
        )
    busy, bare_busy = by.get(("full", "busy")), by.get(("bare", "busy"))
    if busy and bare_busy and bare_busy.max_rate and bare_busy.capacity:
        ratio = min(busy.max_rate / bare_busy.max_rate, busy.capacity / bare_busy.capacity)
        verdict = "meets" if ratio >= TARGET_BUSY_RATIO else "BELOW"
        lines.append(f"  486+VFREEBUSY >= {TARGET_BUSY_RATIO}x bare: {ratio:.2f}x {verdict}")
    return "\n".join(lines)


def run_server(
    sipp: str,
    name: str,
    server: CommandServer,
    inf: Dict[str, Path],
    *,
    plan: Plan,
    folder: Path,
) -> List[FlowResult]:
    """
    Both flows against one running server; stops it at the end.
    """
    results: List[FlowResult] = []
    try:
        for flow in FLOWS:
            results.append(measure(sipp, server, flow, inf[flow], plan=plan, folder=folder))
    finally:
        server.stop()
        if server.tracebacks():
            say(f"  {name}: {server.tracebacks()} traceback(s) in {server.log_path}")
    return results


def start_full(folder: Path, python: str = sys.executable) -> CommandServer:
    """
    The full server, run by C{python}, on a SQLite store seeded in
    C{folder} (a conference open now, bench-now, and one later,
    bench-later), with the limits that would refuse a benchmark's calls
    turned off.
    """
    store = folder / "focus.sqlite"
    run_child(HERE / "bench_focus.py", ["--seed", str(store)], timeout=60)
    port = free_udp_port()
    options = ["--domain", DOMAIN, "--store", f"sqlite:{store}", "--rtp-ports", RTP_PORTS]
    options += ["--max-participants", "1000000", "--rate-limit", "off"]
    options += ["--identity-rate-limit", "off"]
    # Every SIPp call has the same anonymous From.
    options += ["--max-media-per-caller", "0"]
    env = conference_env(folder)
    command = conference_command(folder, port, options, python)
    return CommandServer("full", command, folder, port=port, env=env)


def start_bare(folder: Path, canned: Dict[str, Any], python: str = sys.executable) -> CommandServer:
    """
    The bare responder, run by C{python}, answering the focus flows with
    C{canned} (what L{capture} returned).
    """
    canned_path = folder / "canned.json"
    canned_path.write_text(json.dumps(canned))
    port = free_udp_port()
    command = [python, str(HERE / "bench_focus.py"), "--serve-bare", str(port)]
    command += ["--canned", str(canned_path)]
    return CommandServer("bare", command, folder, port=port, env=conference_env(folder))


def join_inf(folder: Path, user: str = OPEN_USER) -> Path:
    """The SIPp injection file naming the conference C{user} (one field)."""
    inf = folder / f"{user}.csv"
    inf.write_text(f"SEQUENTIAL\n{user};\n")
    return inf


def main(argv: Optional[List[str]] = None) -> int:
    """
    Run the benchmark (or a child mode) and print the table.
    """
    parser = argparse.ArgumentParser(description="Focus joins and 486s: full server vs bare")
    parser.add_argument("--quick", action="store_true", help="a short smoke run (under ~90 s)")
    parser.add_argument("--sipp", default="sipp", help="the SIPp program")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--only", action="append", choices=["full", "bare"])
    parser.add_argument("--seed", help=argparse.SUPPRESS)
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--canned", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seed:
        seed(args.seed)
        return 0
    if args.serve_bare:
        serve_bare(args.serve_bare, args.canned)
        return 0
    sipp = shutil.which(args.sipp)
    if sipp is None:
        say(f"{args.sipp} not found (Debian: apt-get install sip-tester)")
        return 2
    pin_self()
    plan = QUICK if args.quick else FULL
    only = args.only or ["full", "bare"]
    folder = Path(tempfile.mkdtemp(prefix="conference-bench-focus-"))
    started = time.monotonic()
    results: List[FlowResult] = []
    inf = {"join": join_inf(folder, OPEN_USER), "busy": join_inf(folder, LATER_USER)}
    try:
        full = start_full(folder)
        try:
            canned = capture(full.port)
        except (RuntimeError, OSError):
            full.stop()
            raise
        say(
            f"  full: join and 486 bodies checked ({len(canned['join']['body'])} and "
            f"{len(canned['busy']['body'])} bytes)"
        )
        if "full" in only:
            results += run_server(sipp, "full", full, inf, plan=plan, folder=folder)
        else:
            full.stop()
        if "bare" in only:
            bare = start_bare(folder, canned)
            results += run_server(sipp, "bare", bare, inf, plan=plan, folder=folder)
    finally:
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(folder, ignore_errors=True)
    print(header_line(started, args.quick))
    print(table(results))
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
