# -*- test-case-name: tests.test_benchmarks -*-
"""
Measures, with SIPp, authenticated BIND updates (each a durable commit
before its 200) and queries per second on the SQLite store (and PostgreSQL
when C{$CONFERENCE_TEST_POSTGRES} names a database), with 100 and with
100,000 stored bindings, and the query latency in both cases, beside the
memory store in the same run.

Each SIPp call is challenged once (401) and then sends C{--per-challenge}
authenticated requests on that nonce (nonce count 1, 2, ...): the table
gives BIND transactions per second and authenticated updates (or queries)
per second. The stored bindings are written straight into the store before
the server starts, spread over owners of 100 bindings each; the owner
queried (alice) has ten. Query latency is taken at the same rate for both
sizes, by SIPp (whole milliseconds) and by a digest-authenticating probe
sending one query at a time (microseconds).

    python benchmarks/bench_bind.py [--quick] [--json FILE] [--per-challenge K]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import socket
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Generator, List, Optional, Sequence, Tuple

from bench_sip import Plan, conference_env, find_max_rate, free_udp_port, run_sipp, say, warm_up
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
from probe import LOOPBACK, percentile

HERE = Path(__file__).resolve().parent
DOMAIN = "example.com"
USERS = 10  # owners the updates refresh a binding of, one each
PER_OWNER = 100  # stored bindings per filler owner
SIZES = (100, 100_000)
TARGET_UPDATES = 2000.0
TARGET_QUERIES = 10000.0
TARGET_LATENCY_RATIO = 1.5
ENVIRONMENT = "CONFERENCE_TEST_POSTGRES"


@dataclass
class BindResult:
    """
    One store, size and kind of request: the highest passing call rate,
    what it means in transactions and authenticated requests, and CPU and
    latency at 80% of it.
    """

    store: str
    size: int
    kind: str  # "update" or "query"
    per_challenge: int
    max_calls: int
    runs: int
    max_cpu_percent: float = 0.0
    load_calls: int = 0
    cpu_percent: float = 0.0
    cpu_us_per_request: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0

    @property
    def transactions(self) -> int:
        """
        BIND transactions per second at the highest passing rate.
        """
        return self.max_calls * (1 + self.per_challenge)

    @property
    def authenticated(self) -> int:
        """
        Authenticated updates (or queries) per second there.
        """
        return self.max_calls * self.per_challenge


@dataclass
class Latency:
    """
    Query latency at one fixed rate on one store size.
    """

    store: str
    size: int
    calls: int
    sipp_p50_ms: float
    sipp_p99_ms: float
    probe_p50_us: float
    probe_p99_us: float
    probe_lost: int


# Child mode: loading the store ------------------------------------------


def load_store(description: str, total: int) -> None:
    """
    Make the store hold C{total} bindings besides alice's ten and the
    update owners' (which the run writes): filler owners of L{PER_OWNER}
    each. Other owners' bindings are left alone; C{total} counts them too.
    """
    from twisted.internet.defer import inlineCallbacks
    from twisted.internet.task import react

    from conference.records import BindingRecord
    from conference.store import open_stores

    wanted = max(total - 10 - USERS, 0)

    @inlineCallbacks
    def run(reactor: Any) -> Generator[Any, Any, None]:
        stores = yield open_stores(description, reactor)
        now = time.time()
        try:
            # A fresh start: forget every binding (all expire before then).
            yield stores.bindings.purge(now + 10 * 365 * 86400)
            for first in range(0, wanted, PER_OWNER):
                owner = f"sip:filler{first // PER_OWNER}@{DOMAIN}"
                records = [
                    BindingRecord(
                        owner, "web", f"http://filler.example.com/{n}", now + 86400, f"f{n}"
                    )
                    for n in range(first, min(first + PER_OWNER, wanted))
                ]
                yield stores.bindings.apply(owner, [], records, now, max_bindings=PER_OWNER)
        finally:
            yield stores.close()

    react(run)


# A digest-authenticating query probe ------------------------------------


class QueryProbe:
    """
    alice querying her bindings one BIND at a time on one nonce (nonce
    count 1, 2, ...), timed with C{perf_counter}.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.local = self.sock.getsockname()
        self.nonce: Optional[Tuple[str, str, str]] = None
        self.nc = 0

    def close(self) -> None:
        """
        Close the socket.
        """
        self.sock.close()

    def _request(self, n: str) -> bytes:
        from conference.sip.digest import compute_ha1, compute_response

        host, lport = self.local
        lines = [
            "BIND sip:example.com SIP/2.0",
            f"Via: SIP/2.0/UDP {host}:{lport};branch=z9hG4bKq{n}",
            f"From: <sip:alice@{DOMAIN}>;tag=q{n}",
            f"To: <sip:alice@{DOMAIN}>",
            f"Call-ID: q{n}@{host}",
            "CSeq: 1 BIND",
            "Max-Forwards: 70",
        ]
        if self.nonce is not None:
            realm, nonce, opaque = self.nonce
            self.nc += 1
            cnonce = secrets.token_hex(4)
            ha1 = compute_ha1("MD5", "alice", realm, "secret")
            uri = f"sip:{DOMAIN}"
            digest = compute_response(
                "MD5", ha1, nonce=nonce, method="BIND", uri=uri, qop="auth", nc=self.nc,
                cnonce=cnonce,
            )  # fmt: skip
            lines.append(
                f'Authorization: Digest username="alice", realm="{realm}", nonce="{nonce}", '
                f'uri="{uri}", response="{digest}", algorithm=MD5, qop=auth, '
                f'nc={self.nc:08x}, cnonce="{cnonce}", opaque="{opaque}"'
            )
        return ("\r\n".join([*lines, "Content-Length: 0"]) + "\r\n\r\n").encode()

    def query(self, timeout: float = 1.0) -> Optional[float]:
        """
        One query: seconds to its 200 (after a fresh challenge when the
        nonce was refused), or None when it got none in time.
        """
        for _ in range(2):
            n = secrets.token_hex(6)
            wanted = f"q{n}@".encode()
            started = time.perf_counter()
            self.sock.sendto(self._request(n), (LOOPBACK, self.port))
            deadline = started + timeout
            while True:
                left = deadline - time.perf_counter()
                if left <= 0:
                    return None
                self.sock.settimeout(left)
                try:
                    data = self.sock.recv(65536)
                except socket.timeout:
                    return None
                if wanted in data and not data.startswith(b"SIP/2.0 1"):
                    break
            took = time.perf_counter() - started
            if data.startswith(b"SIP/2.0 200"):
                return took
            found = re.search(rb'realm="([^"]*)".*?nonce="([^"]*)"(?:.*?opaque="([^"]*)")?', data)
            if not data.startswith(b"SIP/2.0 401") or found is None:
                return None
            self.nonce = (
                found.group(1).decode(),
                found.group(2).decode(),
                (found.group(3) or b"").decode(),
            )
            self.nc = 0
        return None


def probe_queries(port: int, seconds: float, interval: float) -> Tuple[List[float], int]:
    """
    Query one at a time for C{seconds} (bounded in count too): (times, lost).
    """
    probe = QueryProbe(port)
    times: List[float] = []
    lost = 0
    try:
        probe.query()  # the challenge
        end = time.monotonic() + seconds
        for _ in range(int(seconds / interval) + 1):
            if time.monotonic() >= end:
                break
            took = probe.query()
            if took is None:
                lost += 1
            else:
                times.append(took)
            time.sleep(interval)
    finally:
        probe.close()
    return times, lost


# Measuring --------------------------------------------------------------


def scenario(kind: str, per_challenge: int, folder: Path) -> Path:
    """
    The scenario for C{kind}, its authenticated block repeated
    C{per_challenge} times.
    """
    source = SCENARIOS / f"bind_{kind}.xml"
    if per_challenge == 1:
        return source
    text = source.read_text()
    head, rest = text.split("  <!-- authenticated -->\n", 1)
    block, tail = rest.split("  <!-- /authenticated -->\n", 1)
    target = folder / f"bind_{kind}_x{per_challenge}.xml"
    target.write_text(head + block * per_challenge + tail)
    return target


def start_server(
    name: str, description: str, folder: Path, users: Path, env: Dict[str, str]
) -> CommandServer:
    """
    C{twistd conference} on a store, with the benchmark's users and no
    rate limits (every request comes from 127.0.0.1 and a few identities).
    """
    port = free_udp_port()
    options = ["--domain", DOMAIN, "--store", description, "--auth", f"file:{users}"]
    options += ["--rate-limit", "off", "--identity-rate-limit", "off"]
    return CommandServer(
        name, conference_command(folder, port, options), folder, port=port, env=env
    )


def search(
    sipp: str,
    server: CommandServer,
    kind: str,
    *,
    store: str,
    size: int,
    per_challenge: int,
    extra: Sequence[str],
    plan: Plan,
    folder: Path,
) -> BindResult:
    """
    The highest passing call rate of one kind of request, then CPU and
    SIPp's response times at 80% of it.
    """
    path = scenario(kind, per_challenge, folder)
    warm_up(sipp, path, server, plan, folder, label=kind, extra=extra)
    max_calls, runs, max_cpu = find_max_rate(sipp, path, server, plan, folder, extra=extra)
    result = BindResult(store, size, kind, per_challenge, max_calls, runs, max_cpu)
    if max_calls:
        load = loaded_run(
            sipp,
            path,
            server,
            rate=max(int(max_calls * 0.8), 10),
            plan=plan,
            folder=folder,
            extra=extra,
        )
        result.load_calls = load.rate
        result.cpu_percent = load.cpu_percent
        result.cpu_us_per_request = load.cpu_us_per_call / (1 + per_challenge)
        result.p50_ms, result.p99_ms = load.p50_ms, load.p99_ms
    return result


def latency(
    sipp: str, server: CommandServer, rate: int, *, store: str, size: int, plan: Plan, folder: Path
) -> Latency:
    """
    Query latency at C{rate} calls per second: SIPp's and the probe's.
    """
    probed: List[float] = []
    lost = [0]

    def during() -> None:
        times, missing = probe_queries(server.port, plan.duration * 0.9, 0.005)
        probed.extend(times)
        lost[0] = missing

    path = scenario("query", 1, folder)
    load = loaded_run(
        sipp, path, server, rate=rate, plan=plan, folder=folder, extra=AUTH_URI, during=during
    )
    result = Latency(
        store,
        size,
        rate,
        load.p50_ms,
        load.p99_ms,
        1e6 * percentile(probed, 50),
        1e6 * percentile(probed, 99),
        lost[0],
    )
    say(
        f"  {store}/{size} latency at {rate}/s: probe p50={result.probe_p50_us:.0f}us "
        f"p99={result.probe_p99_us:.0f}us ({len(probed)} queries, {lost[0]} lost)"
    )
    return result


AUTH_URI = ["-auth_uri", DOMAIN]


def table(results: Sequence[BindResult], latencies: Sequence[Latency]) -> str:
    """
    The results, the latency comparison and the targets.
    """
    head = (
        f"{'store':10} {'size':>7} {'kind':6} {'K':>2} {'calls/s':>8} {'BIND tx/s':>9} "
        f"{'auth/s':>7} {'cpu%':>5} {'@80%':>6} {'cpu%':>5} {'us/tx':>7} {'p50/p99 ms':>11}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        bound = "*" if r.max_cpu_percent < 80.0 else " "
        lines.append(
            f"{r.store:10} {r.size:7d} {r.kind:6} {r.per_challenge:2d} {r.max_calls:7d}{bound} "
            f"{r.transactions:9d} {r.authenticated:7d} {r.max_cpu_percent:5.0f} "
            f"{r.load_calls:6d} {r.cpu_percent:5.0f} {r.cpu_us_per_request:7.1f} "
            f"{r.p50_ms:5.0f}/{r.p99_ms:<5.0f}"
        )
    lines.append(
        "K: authenticated requests per 401 challenge; calls/s: SIPp calls (1 + K BIND "
        "transactions each); auth/s = K x calls/s; * under 80% of the server's core."
    )
    if latencies:
        lines += ["", "query latency at a fixed rate (SIPp ms; probe us, one query at a time)"]
        for q in latencies:
            lines.append(
                f"  {q.store:10} {q.size:7d} at {q.calls}/s: sipp {q.sipp_p50_ms:.0f}/"
                f"{q.sipp_p99_ms:.0f} ms  probe p50 {q.probe_p50_us:.0f} us  p99 "
                f"{q.probe_p99_us:.0f} us  lost {q.probe_lost}"
            )
    by = {(r.store, r.size, r.kind): r for r in results}
    lines += ["", "ratios and targets"]
    memory = {r.kind: r for r in results if r.store == "memory"}
    for r in results:
        if r.store == "memory":
            continue
        base = memory.get(r.kind)
        if base is not None and base.authenticated:
            lines.append(
                f"  {r.store}/{r.size} {r.kind}: {r.authenticated / base.authenticated:.2f}x "
                f"the memory store's authenticated rate"
            )
    for store in dict.fromkeys(r.store for r in results if r.store != "memory"):
        for kind, target in (("update", TARGET_UPDATES), ("query", TARGET_QUERIES)):
            for size in SIZES:
                got = by.get((store, size, kind))
                if got is None:
                    continue
                verdict = "meets" if got.authenticated >= target else "BELOW"
                lines.append(
                    f"  {store}/{size} {kind} per s >= {target:.0f}: {got.authenticated} "
                    f"({got.authenticated / target:.2f}x of target) {verdict}"
                )
        pair = [q for q in latencies if q.store == store]
        if len(pair) == 2 and pair[0].probe_p50_us:
            for label, small, large in (
                ("probe p50", pair[0].probe_p50_us, pair[1].probe_p50_us),
                ("probe p99", pair[0].probe_p99_us, pair[1].probe_p99_us),
            ):
                ratio = large / small if small else 0.0
                verdict = "meets" if ratio <= TARGET_LATENCY_RATIO else "BELOW"
                lines.append(
                    f"  {store} query latency {SIZES[1]}/{SIZES[0]} ({label}): {ratio:.2f}x "
                    f"(target <= {TARGET_LATENCY_RATIO}x) {verdict}"
                )
        small_q, large_q = by.get((store, SIZES[0], "query")), by.get((store, SIZES[1], "query"))
        if small_q and large_q and small_q.max_calls:
            lines.append(
                f"  {store} query rate {SIZES[1]}/{SIZES[0]}: "
                f"{large_q.max_calls / small_q.max_calls:.2f}x"
            )
    return "\n".join(lines)


def write_users(folder: Path) -> Tuple[Path, Path]:
    """
    The server's password file and SIPp's injection file for the updates.
    """
    users = folder / "users.txt"
    inf = folder / "update.csv"
    names = [(f"u{n}", f"pw{n}") for n in range(USERS)]
    users.write_text("alice:secret\n" + "".join(f"{u}:{p}\n" for u, p in names))
    inf.write_text(
        "SEQUENTIAL\n"
        + "".join(f"{u};[authentication username={u} password={p}];\n" for u, p in names)
    )
    return users, inf


def bench_store(
    sipp: str,
    label: str,
    description: str,
    sizes: Sequence[int],
    *,
    per_challenge: int,
    plan: Plan,
    folder: Path,
) -> Tuple[List[BindResult], List[Latency]]:
    """
    Updates, queries and (for more than one size) query latency on one
    store; the server restarts on each size's freshly loaded store.
    """
    users, inf = write_users(folder)
    env = conference_env(folder)
    results: List[BindResult] = []
    latencies: List[Latency] = []
    latency_rate = 0
    for size in sizes:
        if label != "memory":
            started = time.monotonic()
            run_child(HERE / "bench_bind.py", ["--load", description, str(size)], timeout=600)
            say(f"  {label}: {size} bindings stored in {time.monotonic() - started:.1f} s")
        server = start_server(f"{label}-{size}", description, folder, users, env)
        try:
            seeded = run_sipp(
                sipp,
                SCENARIOS / "bind_seed.xml",
                server=server,
                rate=20,
                duration=1.0,
                folder=folder,
                extra=AUTH_URI,
            )
            if seeded.successful != seeded.calls:
                raise RuntimeError(
                    f"{label}: seeding alice's bindings failed:\n{server.log_tail()}"
                )
            for kind, extra in (("update", ["-inf", str(inf), *AUTH_URI]), ("query", AUTH_URI)):
                results.append(
                    search(
                        sipp,
                        server,
                        kind,
                        store=label,
                        size=size,
                        per_challenge=per_challenge,
                        extra=extra,
                        plan=plan,
                        folder=folder,
                    )
                )
            if len(sizes) > 1:
                latency_rate = latency_rate or max(int(results[-1].max_calls * 0.8), 10)
                latencies.append(
                    latency(
                        sipp, server, latency_rate, store=label, size=size, plan=plan, folder=folder
                    )
                )
        finally:
            server.stop()
            if server.tracebacks():
                say(f"  {server.name}: {server.tracebacks()} traceback(s) in {server.log_path}")
    return results, latencies


def main(argv: Optional[List[str]] = None) -> int:
    """
    Run the benchmark (or the store-loading child mode) and print the table.
    """
    parser = argparse.ArgumentParser(description="BIND updates and queries per second")
    parser.add_argument("--quick", action="store_true", help="a short smoke run (under ~90 s)")
    parser.add_argument("--sipp", default="sipp", help="the SIPp program")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--per-challenge",
        type=int,
        default=1,
        help="authenticated BINDs per 401 challenge (nonce count 1..K); default 1",
    )
    parser.add_argument(
        "--store", action="append", choices=["memory", "sqlite", "postgresql"], help="repeatable"
    )
    parser.add_argument("--load", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.load:
        load_store(args.load[0], int(args.load[1]))
        return 0
    sipp = shutil.which(args.sipp)
    if sipp is None:
        say(f"{args.sipp} not found (Debian: apt-get install sip-tester)")
        return 2
    if not 1 <= args.per_challenge <= 20:
        parser.error("--per-challenge must be 1 to 20")
    pin_self()
    plan = QUICK if args.quick else FULL
    folder = Path(tempfile.mkdtemp(prefix="conference-bench-bind-"))
    backends: List[Tuple[str, str, Sequence[int]]] = [
        ("memory", "memory", (10 + USERS,)),
        ("sqlite", f"sqlite:{folder / 'bind.sqlite'}", SIZES),
    ]
    if os.environ.get(ENVIRONMENT):
        backends.append(("postgresql", f"postgresql:{os.environ[ENVIRONMENT]}", SIZES))
    elif not args.store or "postgresql" in args.store:
        say(f"  postgresql: skipped (${ENVIRONMENT} not set; see .ci/postgres.sh)")
    if args.store:
        backends = [b for b in backends if b[0] in args.store]
    started = time.monotonic()
    results: List[BindResult] = []
    latencies: List[Latency] = []
    try:
        for label, description, sizes in backends:
            done, timed = bench_store(
                sipp,
                label,
                description,
                sizes,
                per_challenge=args.per_challenge,
                plan=plan,
                folder=folder,
            )
            results += done
            latencies += timed
    finally:
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(folder, ignore_errors=True)
    print(header_line(started, args.quick, f", K={args.per_challenge}"))
    print(table(results, latencies))
    if args.json is not None:
        document = {
            "results": [asdict(r) for r in results],
            "latency": [asdict(q) for q in latencies],
        }
        args.json.write_text(json.dumps(document, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
