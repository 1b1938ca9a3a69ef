# -*- test-case-name: tests.unit.test_bench_fixed -*-
"""
CPU per call at one fixed rate, the full server and the bare responder
taking turns: the same-run ratio without the rate search.

``bench_sip.py`` finds each server's highest passing rate and reads its
CPU at 80% of it in one-second (quick) or six-second (full) runs, with
``/proc``'s CPU counted in ticks: one run moves a call's cost by several
percent, and a goal of 0.5x was met by one quick plan and missed by the
next.  Here both servers run side by side (pinned to the same core, only
one of them under load at a time) and SIPp drives each in turn at the
same rate for ``--seconds``, ``--rounds`` times; what is reported is the
median cost of each and the ratio of the medians, with the range of the
per-round ratios, which says how far one round could be trusted.

Scenarios C{options} and C{invite} (-> 404) run against the server on its
memory store, as in C{bench_sip.py}; C{busy} (INVITE -> 486 with the
VFREEBUSY -> ACK) and C{join} (INVITE -> 200 SDP + VEVENT -> ACK -> BYE)
against the focus on the SQLite store C{bench_focus.py} seeds, with the
bare responder answering the bodies the full server gave.

    python benchmarks/bench_fixed.py --scenario invite --rate 3000
    python benchmarks/bench_fixed.py --scenario busy --rate 3000
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

from bench_focus import (
    LATER_USER,
    OPEN_USER,
    capture,
    join_inf,
    start_bare,
    start_full,
)
from bench_sip import (
    QUICK,
    Server,
    run_sipp,
    say,
    scenario_file,
    stop_server,
    usable_python,
    warm_up,
)
from common import SCENARIOS, pin_self
from probe import invite_final

#: The servers, in the order each round runs them.
SERVERS = ("full", "bare")
#: The focus flows, by scenario: the conference each calls.
FOCUS = {"busy": LATER_USER, "join": OPEN_USER}


def summary(costs: Mapping[str, Sequence[float]], scenario: str, rate: int) -> str:
    """
    The report for one scenario: each server's per-round CPU microseconds
    per call and their median, then the bare responder's median over the
    full server's (the goal's ratio: higher is better) and the range of
    the same ratio round by round.

    @raise ValueError: when a server has no rounds, or rounds of unequal
        number.
    """
    full, bare = list(costs["full"]), list(costs["bare"])
    if not full or len(full) != len(bare):
        raise ValueError("each server needs the same number of rounds, at least one")
    lines = [f"{scenario} at {rate}/s, {len(full)} rounds, CPU us per call:"]
    for name in SERVERS:
        rounds = " ".join(f"{c:7.1f}" for c in costs[name])
        lines.append(f"  {name:5} {rounds}   median {statistics.median(costs[name]):7.1f}")
    ratio = statistics.median(bare) / statistics.median(full)
    per_round = [b / f for b, f in zip(bare, full)]
    lines.append(
        f"  full / bare by CPU: {ratio:.2f}x (rounds {min(per_round):.2f}x to "
        f"{max(per_round):.2f}x)"
    )
    return "\n".join(lines)


def alternate(
    sipp: str,
    scenario: Path,
    servers: Dict[str, Server],
    *,
    rate: int,
    seconds: float,
    rounds: int,
    folder: Path,
    extra: Sequence[str] = (),
) -> Dict[str, List[float]]:
    """
    C{rounds} rounds, each one run of C{seconds} at C{rate} per server in
    L{SERVERS} order: the CPU microseconds per call of each run, by
    server.  A run with failed calls is reported (the rate was past that
    server's capacity, so its cost is not the one at this load).
    C{extra} are more SIPp arguments.
    """
    costs: Dict[str, List[float]] = {name: [] for name in SERVERS}
    for number in range(rounds):
        for name in SERVERS:
            server = servers[name]
            server.settle(QUICK.settle_cap)
            run = run_sipp(
                sipp,
                scenario,
                server=server,
                rate=rate,
                duration=seconds,
                folder=folder,
                extra=extra,
            )
            cost = 1e6 * run.cpu_seconds / run.calls if run.calls else 0.0
            costs[name].append(cost)
            if not run.passed:
                say(f"  round {number + 1} {name}: {run.failed} calls failed (past capacity?)")
    return costs


def main(argv: Optional[List[str]] = None) -> int:
    """
    Start both servers, warm them up, alternate, print the report.
    """
    parser = argparse.ArgumentParser(description="full server vs bare responder at one rate")
    parser.add_argument("--scenario", choices=["options", "invite", *FOCUS], default="invite")
    parser.add_argument("--rate", type=int, default=3000, help="calls per second (both)")
    parser.add_argument("--seconds", type=float, default=15.0, help="per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--python", default=sys.executable, help="the servers' interpreter")
    parser.add_argument("--sipp", default="sipp", help="the SIPp program")
    args = parser.parse_args(argv)
    if args.rate < 1 or args.seconds <= 0 or args.rounds < 1:
        parser.error("--rate, --seconds and --rounds must be positive")
    python = usable_python(args.python, "--python", "nothing to measure")
    if python is None:
        return 2
    sipp = shutil.which(args.sipp)
    if sipp is None:
        say(f"{args.sipp} not found (Debian: apt-get install sip-tester)")
        return 2
    pin_self()
    folder = Path(tempfile.mkdtemp(prefix="conference-bench-fixed-"))
    servers: Dict[str, Server] = {}
    started = time.monotonic()
    extra: List[str] = []
    try:
        if args.scenario in FOCUS:
            servers["full"] = start_full(folder, python)
            canned = capture(servers["full"].port)
            final = int(canned[args.scenario]["code"])
            servers["bare"] = start_bare(folder, canned, python)
            scenario = SCENARIOS / f"focus_{args.scenario}.xml"
            extra = ["-inf", str(join_inf(folder, FOCUS[args.scenario]))]
        else:
            servers["full"] = Server("full", python, "full", 405, folder)
            final = invite_final(servers["full"].port) or 405
            # The bare responder answers the INVITE as the full server does.
            servers["bare"] = Server("bare", python, "bare", final, folder)
            scenario = scenario_file(args.scenario, final, folder)
        for name in SERVERS:
            warm_up(sipp, scenario, servers[name], QUICK, folder, label=args.scenario, extra=extra)
        costs = alternate(
            sipp,
            scenario,
            servers,
            rate=args.rate,
            seconds=args.seconds,
            rounds=args.rounds,
            folder=folder,
            extra=extra,
        )
    except (RuntimeError, OSError) as e:
        say(f"could not run: {e}")
        return 1
    finally:
        for server in servers.values():
            stop_server(server)
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(folder, ignore_errors=True)
    print(
        f"{time.strftime('%Y-%m-%d %H:%M')}  {time.monotonic() - started:.0f} s, "
        f"load average {os.getloadavg()[0]:.1f}, INVITE final {final}, "
        f"{Path(python).name}"
    )
    print(summary(costs, args.scenario, args.rate))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
