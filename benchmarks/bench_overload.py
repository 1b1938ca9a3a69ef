# -*- test-case-name: tests.test_benchmarks -*-
"""
The full server past its capacity, with SIPp: first the highest sustained
INVITE -> 404 rate (as C{bench_sip.py} finds it), then offered at 2x and 4x
that rate for C{--duration} seconds each with overload shedding on
(C{--overload-lag-ms}, default 100), then at half the capacity right after,
to see it recover.

Reported per offered load: goodput (INVITEs answered 404, per second) as a
ratio of the capacity, how many were refused 503 (shed) or failed
otherwise, SIPp's retransmissions, the p99 response time of the admitted
calls, the server's CPU (of one core: a busy core means the refusals and
the calls admitted beside them used it all, an idle one that shedding
refused more than it had to) and its resident memory before and after.
Goals (the overload issue): goodput >= 90% of capacity, no retransmission
storm, p99 of admitted calls < 50 ms, recovery within 2 s, memory flat.

    python benchmarks/bench_overload.py [--quick] [--duration S] [--factors 2,4]
        [--flow invite|join]

With C{--flow join} the load is bench_focus.py's full join (the server
seeded as there), an expensive path where a refusal is a small fraction
of an answer.

Traffic goes only to 127.0.0.1; the server runs on core 1, SIPp on core 0.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from bench_focus import join_inf, start_full

# Beside this file (run as a script, its folder is first on sys.path).
from bench_sip import (
    FULL,
    QUICK,
    RunResult,
    Server,
    find_max_rate,
    run_sipp,
    say,
    scenario_file,
    stop_server,
    warm_up,
)
from common import SCENARIOS, pin_self
from probe import invite_final, percentile

#: The flows that can be overloaded, and how the table names them.
FLOWS = {"invite": "INVITE -> 404", "join": "join: INVITE -> 200 -> ACK -> BYE"}


@dataclass
class Overloaded:
    """
    One offered load against the measured capacity.
    """

    factor: float
    offered: int
    run: RunResult
    rss_before_kb: int
    rss_after_kb: int

    def goodput(self) -> float:
        """
        Calls answered as when not overloaded, per second of the run (SIPp
        itself may take longer than planned to offer them all).
        """
        return self.run.successful / self.run.elapsed if self.run.elapsed else 0.0

    def goodput_ratio(self, capacity: int) -> float:
        """
        L{goodput} over the capacity.
        """
        return self.goodput() / capacity if capacity else 0.0


def rss_kb(pid: int) -> int:
    """
    The resident set of process C{pid}, in KiB (0 where /proc is absent).
    """
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def offer(
    sipp: str,
    scenario: Path,
    server: Server,
    rate: int,
    duration: float,
    *,
    folder: Path,
    extra: Sequence[str] = (),
    during: Optional[Callable[[], None]] = None,
) -> RunResult:
    """
    One SIPp run at C{rate} for C{duration} seconds, response times kept;
    C{during} runs while SIPp does.
    """
    return run_sipp(
        sipp,
        scenario,
        server=server,
        rate=rate,
        duration=duration,
        folder=folder,
        rtt=True,
        extra=extra,
        during=during,
    )


def recovered(failed_per_second: List[int]) -> str:
    """
    From when the run after the load answered every call, by the seconds
    SIPp counted failures in (the goal: within 2 s).
    """
    failing = [n for n, failed in enumerate(failed_per_second) if failed]
    if not failing:
        return "every call answered"
    if failing[-1] == len(failed_per_second) - 1:
        return "calls still failing in its last second"
    return f"every call answered after its first {failing[-1] + 1} s"


def report(
    capacity: int,
    runs: List[Overloaded],
    recovery: Optional[RunResult],
    flow: str = "INVITE -> 404",
    capacity_cpu: Optional[float] = None,
) -> str:
    """
    The result table.  Its C{cpu%} column (the server's, of one core)
    tells a server that ran out of CPU from one that shed more than it
    had to: goodput under capacity with the core busy is the cost of the
    refusals and of what the calls admitted beside them cost; with the
    core idle, it is the shedding's own doing.

    @param capacity_cpu: the server's CPU % in the run that set the
        capacity, if known.
    """
    at = "" if capacity_cpu is None else f" (server at {capacity_cpu:.0f}% of its core)"
    lines = [
        f"capacity ({flow}, every call answered, no retransmission): {capacity}/s{at}",
        "",
        f"{'offered':>10} {'goodput':>9} {'ratio':>6} {'shed/failed':>12} {'retrans':>8} "
        f"{'p99 ms':>7} {'cpu%':>5} {'RSS KiB before -> after':>26}",
    ]
    for r in runs:
        lines.append(
            f"{r.factor:>4.0f}x {r.offered:>4d}/s {r.goodput():>7.0f}/s "
            f"{r.goodput_ratio(capacity):>6.2f} {r.run.failed:>12d} "
            f"{r.run.retransmissions:>8d} {percentile(r.run.rtt_ms, 99):>7.1f} "
            f"{r.run.cpu_percent:>5.0f} {r.rss_before_kb:>12d} -> {r.rss_after_kb:<10d}"
        )
    if recovery is not None:
        lines += [
            "",
            f"right after, at half capacity ({recovery.rate}/s): "
            f"{recovery.successful}/{recovery.calls} answered, {recovery.failed} failed, "
            f"{recovery.retransmissions} retransmissions, "
            f"p99 {percentile(recovery.rtt_ms, 99):.1f} ms",
            f"failed per second: {recovery.failed_per_second} "
            f"({recovered(recovery.failed_per_second)})",
        ]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    """
    Run the benchmark and print the table.
    """
    parser = argparse.ArgumentParser(description="goodput of the full server past capacity")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--duration", type=float, help="seconds per offered load (default 30)")
    parser.add_argument("--factors", default="2,4", help="offered loads, times capacity")
    parser.add_argument("--sipp", default="sipp", help="the SIPp program")
    parser.add_argument(
        "--flow",
        choices=sorted(FLOWS),
        default="invite",
        help="invite: INVITE -> 404 (the cheapest path); join: a full join "
        "(INVITE -> 200 SDP + VEVENT -> ACK -> BYE), as bench_focus.py makes it",
    )
    args = parser.parse_args(argv)
    sipp = shutil.which(args.sipp)
    if sipp is None:
        say(f"{args.sipp} not found (Debian: apt-get install sip-tester)")
        return 2
    pin_self()
    plan = QUICK if args.quick else FULL
    duration = args.duration or (5.0 if args.quick else 30.0)
    folder = Path(tempfile.mkdtemp(prefix="conference-overload-"))
    started = time.monotonic()
    runs: List[Overloaded] = []
    recovery: Optional[RunResult] = None
    capacity = 0
    capacity_cpu: Optional[float] = None
    try:
        extra: List[str] = []
        if args.flow == "join":
            server: Server = start_full(folder)
            scenario = SCENARIOS / "focus_join.xml"
            extra = ["-inf", str(join_inf(folder))]
        else:
            server = Server("full", sys.executable, "full", 404, folder)
        try:
            if args.flow == "invite":
                final = invite_final(server.port) or 404
                scenario = scenario_file("invite", final, folder)
            warm_up(sipp, scenario, server, plan, folder, label=args.flow, extra=extra)
            capacity, _, capacity_cpu = find_max_rate(
                sipp, scenario, server, plan, folder, extra=extra
            )
            if capacity == 0:
                say("  no rate passed; nothing to overload")
                return 1
            for factor in (float(f) for f in args.factors.split(",")):
                rate = int(capacity * factor)
                server.settle(plan.settle_cap)
                before = rss_kb(server.process.pid)
                run = offer(sipp, scenario, server, rate, duration, folder=folder, extra=extra)
                runs.append(Overloaded(factor, rate, run, before, rss_kb(server.process.pid)))
                say(
                    f"  {factor:.0f}x {rate}/s: ok={run.successful}/{run.calls} "
                    f"failed={run.failed} retrans={run.retransmissions} cpu={run.cpu_percent:.0f}%"
                )
            # No settling: how soon does it serve normally again?
            recovery = offer(
                sipp, scenario, server, max(capacity // 2, 10), 2.0, folder=folder, extra=extra
            )
        finally:
            stop_server(server)
    finally:
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(folder, ignore_errors=True)
    print(
        f"{time.strftime('%Y-%m-%d')}  {'quick' if args.quick else 'full'} plan, "
        f"{time.monotonic() - started:.0f} s, {duration:.0f} s per load, cores: "
        f"{os.cpu_count()}, load average {os.getloadavg()[0]:.1f}, "
        f"{Path(sys.executable).name} {sys.version.split()[0]}"
    )
    print(report(capacity, runs, recovery, FLOWS[args.flow], capacity_cpu))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
