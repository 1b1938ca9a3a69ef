# -*- test-case-name: tests.unit.test_bench_sip -*-
"""
Finds, with SIPp, the highest sustained call rate the full C{conference}
server handles, and the same for a bare C{twisted.protocols.sip} responder
in the same run, so the result is a ratio that does not depend on the
machine.

For each server and each scenario (OPTIONS -> 200; INVITE -> final -> ACK)
the rate is doubled until a run fails, then bisected. A run passes when every
call succeeds with no retransmission and SIPp finishes on time. At 80% of the
highest passing rate it then measures the server's CPU (utime + stime from
C{/proc}) and response times (SIPp's C{-trace_rtt}, millisecond resolution,
and a microsecond probe sending one request at a time alongside).

The server under test runs on core 1 and SIPp (and this script) on core 0,
where the machine has two. Traffic goes only to 127.0.0.1.

    python benchmarks/bench_sip.py [--quick] [--pypy] [--final CODE] [--only NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

# Beside this file (run as a script, its folder is first on sys.path).
from probe import LOOPBACK, invite_final, percentile, probe_during, probe_once

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The server's package from this tree, ahead of any installed copy: the
# servers under test run from the tree (PYTHONPATH), and the benchmarks
# share a few of its constants.
if str(ROOT) not in sys.path:
    sys.path.insert(1, str(ROOT))
SCENARIOS = HERE / "scenarios"
SERVER_CORE = 1
LOAD_CORE = 0
PYPY_MODULES = "twisted, lxml, icalendar, zope.interface, OpenSSL, dateutil, recurring_ical_events"


def server_environment() -> Dict[str, str]:
    """
    The environment the servers under test run in: this one, with PyPy's
    nursery and collection step as a PyPy server asks its operator to set
    them (L{conference.runtime.PYPY_ENVIRONMENT}, docs/benchmarks.rst)
    unless they are set already, so PyPy is measured as it should be
    deployed.  CPython ignores the variables.
    """
    from conference.runtime import PYPY_ENVIRONMENT

    env = dict(os.environ)
    for name, value in PYPY_ENVIRONMENT.items():
        env.setdefault(name, value)
    return env


def conference_env(folder: Path) -> Dict[str, str]:
    """
    A L{server_environment} in which C{twistd} finds this tree's
    C{conference} package and its plugin (copied into a C{twisted/plugins}
    folder under C{folder}), without installing anything.
    """
    plugins = folder / "pluginpath" / "twisted" / "plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "twisted_plugins" / "conference_plugin.py", plugins)
    env = server_environment()
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), str(folder / "pluginpath"), env.get("PYTHONPATH", "")]
    )
    return env


@dataclass(frozen=True)
class Plan:
    """
    How long and how far to search: the quick plan is a smoke test.
    """

    duration: float  # seconds of traffic per run
    start_rate: int
    max_rate: int
    doublings: int  # cap on the number of doubling steps
    bisections: int
    warmup: float  # seconds of traffic per warm-up run (see warm_up)
    settle_cap: float  # most seconds to wait for the server to go idle
    retries: int  # more tries of a failed run before it counts as failed
    warmup_limit: float = 60.0  # most seconds of warm-up before measuring anyway


FULL = Plan(
    duration=6.0,
    start_rate=400,
    max_rate=51200,
    doublings=8,
    bisections=4,
    warmup=4.0,
    settle_cap=8.0,
    retries=1,
    warmup_limit=240.0,
)
QUICK = Plan(
    duration=1.0,
    start_rate=400,
    max_rate=12800,
    doublings=5,
    bisections=1,
    warmup=0.5,
    settle_cap=2.0,
    retries=0,
    warmup_limit=90.0,
)


@dataclass
class RunResult:
    """
    One SIPp run at a fixed rate.
    """

    rate: int
    calls: int
    successful: int
    failed: int
    retransmissions: int
    elapsed: float
    cpu_seconds: float
    rtt_ms: List[float] = field(default_factory=list)
    #: Calls failed in each second of the run (SIPp's periodic counts).
    failed_per_second: List[int] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """
        Every call succeeded, none retransmitted, and on time.
        """
        on_time = self.elapsed <= self.calls / self.rate * 1.25 + 1.0
        return (
            self.successful == self.calls
            and self.failed == 0
            and self.retransmissions == 0
            and on_time
        )

    @property
    def cpu_percent(self) -> float:
        """
        The server's CPU use over the run, as % of one core.
        """
        return 100.0 * self.cpu_seconds / self.elapsed if self.elapsed else 0.0


@dataclass
class Measurement:
    """
    One server on one scenario: the highest sustained rate and the figures
    at 80% of it.
    """

    server: str
    scenario: str
    max_rate: int
    runs: int
    max_cpu_percent: float = 0.0
    load_rate: int = 0
    cpu_percent: float = 0.0
    cpu_us_per_call: float = 0.0
    sipp_p50_ms: float = 0.0
    sipp_p99_ms: float = 0.0
    probe_p50_us: float = 0.0
    probe_p99_us: float = 0.0
    probe_lost: int = 0

    @property
    def capacity(self) -> float:
        """
        Calls per second one core could take, by CPU per call at 80% load.
        """
        return 1e6 / self.cpu_us_per_call if self.cpu_us_per_call else 0.0

    @property
    def load_bound(self) -> bool:
        """
        True where the server was not the bottleneck at its highest rate
        (under 80% of its core): SIPp or the search's cap limited it.
        """
        return self.max_cpu_percent < 80.0


# Processes --------------------------------------------------------------


def pin(core: int) -> Callable[[], None]:
    """
    A C{preexec_fn} that moves the child to one core, where it can.
    """

    def preexec() -> None:
        if hasattr(os, "sched_setaffinity") and core < (os.cpu_count() or 1):
            os.sched_setaffinity(0, {core})

    return preexec


def free_udp_port() -> int:
    """
    A UDP and TCP port free on 127.0.0.1 right now.
    """
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((LOOPBACK, 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((LOOPBACK, port))
                except OSError:
                    continue
        return port
    raise RuntimeError("no free port found")


class Server:
    """
    One server under test, as a subprocess pinned to L{SERVER_CORE}.
    """

    def __init__(self, name: str, python: str, kind: str, final: int, folder: Path) -> None:
        self.name = name
        self.port = free_udp_port()
        self.folder = folder / name
        self.folder.mkdir(parents=True)
        if kind == "full":
            env = conference_env(self.folder)
            args = [
                python,
                "-c",
                "from twisted.scripts.twistd import run; run()",
                "--nodaemon",
                "--pidfile=",
                "conference",
                "--listen",
                f"udp:{self.port}:interface={LOOPBACK}",
                "--listen",
                f"tcp:{self.port}:interface={LOOPBACK}",
                "--store",
                "memory",
            ]
        else:
            env = server_environment()
            script = str(HERE / "bare_responder.py")
            args = [python, script, "--port", str(self.port), "--final", str(final)]
        self.log_path = self.folder / "server.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                args,
                cwd=self.folder,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=pin(SERVER_CORE),  # noqa: PLW1509 - no threads here
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log_tail()}")
            if probe_once(self.port, "options", timeout=0.5) is not None:
                return
        raise RuntimeError(f"{self.name} did not answer OPTIONS:\n{self.log_tail()}")

    def log_tail(self, size: int = 3000) -> str:
        """
        The end of what the server logged.
        """
        return self.log_path.read_text(errors="replace")[-size:]

    def cpu_seconds(self) -> float:
        """
        The server's utime + stime so far, from C{/proc/PID/stat}.
        """
        try:
            text = Path(f"/proc/{self.process.pid}/stat").read_text()
        except OSError:
            return 0.0
        fields = text.rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        return ticks / os.sysconf("SC_CLK_TCK")

    def settle(self, cap: float) -> None:
        """
        Wait (at most C{cap} seconds) until the server uses under 5% CPU.
        """
        deadline = time.monotonic() + cap
        before = self.cpu_seconds()
        while time.monotonic() < deadline:
            time.sleep(0.25)
            after = self.cpu_seconds()
            if after - before < 0.0125:
                return
            before = after

    def stop(self) -> None:
        """
        Stop it (SIGTERM, then SIGKILL after 15 s).
        """
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


# SIPp -------------------------------------------------------------------


def scenario_file(name: str, final: int, folder: Path) -> Path:
    """
    The scenario to run: C{invite.xml} rewritten for another final code
    (and, for a 2xx, an ACK with a branch of its own).
    """
    source = SCENARIOS / f"{name}.xml"
    if name != "invite" or final == 405:
        return source
    text = source.read_text().replace('response="405"', f'response="{final}"')
    if 200 <= final < 300:
        text = text.replace(
            "[last_Via:]",
            "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]",
        )
    target = folder / f"invite_{final}.xml"
    target.write_text(text)
    return target


def run_sipp(
    sipp: str,
    scenario: Path,
    *,
    server: Server,
    rate: int,
    duration: float,
    folder: Path,
    rtt: bool = False,
    during: Optional[Callable[[], None]] = None,
    extra: Sequence[str] = (),
) -> RunResult:
    """
    One SIPp run of C{rate * duration} calls; counts from its C{-trace_stat}.
    C{during} runs here while SIPp does; C{extra} are more SIPp arguments
    (C{-inf FILE}, C{-auth_uri URI}, ...).
    """
    calls = max(int(rate * duration), 20)
    work = Path(tempfile.mkdtemp(prefix="sipp-", dir=folder))
    stat = work / "stat.csv"
    args = [sipp, f"{LOOPBACK}:{server.port}", "-sf", str(scenario), "-i", LOOPBACK]
    args += ["-p", "0", "-t", "u1", "-nostdin", "-r", str(rate), "-m", str(calls)]
    args += ["-buff_size", str(4 * 1024 * 1024)]
    args += ["-l", str(calls), "-timeout", f"{int(duration * 3 + 30)}s"]
    args += ["-trace_stat", "-stf", str(stat), "-fd", "1"]
    if rtt:
        args += ["-trace_rtt", "-rtt_freq", "1"]
    args += list(extra)
    cpu_before = server.cpu_seconds()
    started = time.monotonic()
    process = subprocess.Popen(
        args,
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        preexec_fn=pin(LOAD_CORE),  # noqa: PLW1509 - no threads here
    )
    try:
        if during is not None:
            during()
        process.wait(duration * 3 + 60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)
    elapsed = time.monotonic() - started
    cpu = server.cpu_seconds() - cpu_before
    counts = read_stat(stat)
    failed_per_second = per_second(stat, "FailedCall(P)")
    times: List[float] = []
    if rtt:
        for path in work.glob("*_rtt.csv"):
            for line in path.read_text().splitlines()[1:]:
                parts = line.split(";")
                if len(parts) >= 2:
                    times.append(float(parts[1]))
    shutil.rmtree(work, ignore_errors=True)
    return RunResult(
        rate=rate,
        calls=calls,
        successful=counts.get("SuccessfulCall(C)", 0),
        failed=counts.get("FailedCall(C)", 0),
        retransmissions=counts.get("Retransmissions(C)", 0),
        elapsed=elapsed,
        cpu_seconds=cpu,
        rtt_ms=times,
        failed_per_second=failed_per_second,
    )


def stat_lines(path: Path) -> List[List[str]]:
    """
    The lines of a SIPp statistics file, split into fields, the header
    first; none when it cannot be read.
    """
    try:
        return [line.split(";") for line in path.read_text().splitlines() if line.strip()]
    except OSError:
        return []


def read_stat(path: Path) -> Dict[str, int]:
    """
    The cumulative counters on the last line of a SIPp statistics file.
    """
    lines = stat_lines(path)
    if len(lines) < 2:
        return {}
    result: Dict[str, int] = {}
    for name, value in zip(lines[0], lines[-1]):
        if value.isdigit():
            result[name] = int(value)
    return result


def per_second(path: Path, name: str) -> List[int]:
    """
    The per-period counter C{name} of a SIPp statistics file written with
    C{-fd 1}, summed by the second of the run it counts (index 0: the
    first second).  SIPp labels each line with the whole seconds elapsed
    when it was written; the lines it adds at the end of a run, with the
    label of the line before, count the part of a second after it.
    """
    lines = stat_lines(path)
    header = lines[0] if lines else []
    if name not in header or "ElapsedTime(C)" not in header:
        return []
    column, clock = header.index(name), header.index("ElapsedTime(C)")
    seconds: List[int] = []
    previous = 0
    for fields in lines[1:]:
        try:
            hours, minutes, whole = (int(part) for part in fields[clock].split(":"))
            value = int(fields[column])
        except (IndexError, ValueError):
            continue
        label = hours * 3600 + minutes * 60 + whole
        if label == 0:
            continue  # the line written as the run starts
        index = label - 1 if label > previous else label
        previous = label
        seconds.extend([0] * (index + 1 - len(seconds)))
        seconds[index] += value
    return seconds


# The search -------------------------------------------------------------


def stop_server(server: Server) -> None:
    """
    Stop C{server} and say whether its log holds tracebacks.
    """
    server.stop()
    tracebacks = server.log_tail(10**7).count("Traceback")
    if tracebacks:
        say(f"  {server.name}: {tracebacks} traceback(s) in {server.log_path}")


def say(text: str) -> None:
    """
    Progress, on standard error (the table goes to standard output).
    """
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def find_max_rate(
    sipp: str,
    scenario: Path,
    server: Server,
    plan: Plan,
    folder: Path,
    *,
    extra: Sequence[str] = (),
) -> Tuple[int, int, float]:
    """
    The highest passing rate (0 when even the lowest tried fails), the
    number of runs it took and the server's CPU % in that passing run:
    doubling from C{plan.start_rate} (halving when that fails), then
    bisecting between the last pass and the first fail.
    """
    runs = 0
    cpu_at = {0: 0.0}

    def attempt(rate: int) -> bool:
        nonlocal runs
        # A failed run is tried once more: other load on a shared machine
        # can stall a server for longer than T1 without its own doing.
        for _ in range(1 + plan.retries):
            runs += 1
            server.settle(plan.settle_cap)
            result = run_sipp(
                sipp,
                scenario,
                server=server,
                rate=rate,
                duration=plan.duration,
                folder=folder,
                extra=extra,
            )
            verdict = "pass" if result.passed else "FAIL"
            say(
                f"  {server.name:10} {scenario.stem:8} {rate:6d}/s: {verdict} "
                f"ok={result.successful}/{result.calls} failed={result.failed} "
                f"retrans={result.retransmissions} {result.elapsed:.1f}s "
                f"cpu={result.cpu_percent:.0f}% load={os.getloadavg()[0]:.1f}"
            )
            if result.passed:
                cpu_at[rate] = result.cpu_percent
                return True
        return False

    low, high = 0, 0
    rate = plan.start_rate
    if attempt(rate):
        low = rate
        for _ in range(plan.doublings):
            rate *= 2
            if rate > plan.max_rate:
                return low, runs, cpu_at[low]
            if not attempt(rate):
                high = rate
                break
            low = rate
        else:
            return low, runs, cpu_at[low]
    else:
        high = rate
        for _ in range(4):
            rate //= 2
            if rate < 10:
                return 0, runs, 0.0
            if attempt(rate):
                low = rate
                break
            high = rate
        else:
            return 0, runs, 0.0
    for _ in range(plan.bisections):
        middle = (low + high) // 2
        if high - low <= max(10, low // 20):
            break
        if attempt(middle):
            low = middle
        else:
            high = middle
    return low, runs, cpu_at[low]


# Warm-up runs stop once the last STEADY_RUNS cost the same CPU per call
# within STEADY (the largest at most this much above the smallest).
STEADY = 0.1
STEADY_RUNS = 3
# ... and the last is no lower than every earlier one by more than this.
STILL_FALLING = 0.05
# Shortest warm-up run: a shorter one is a few CPU clock ticks and too noisy.
WARM_STEP = 4.0


def is_steady(costs: Sequence[float]) -> bool:
    """
    Whether the last L{STEADY_RUNS} warm-up runs' CPU per call agree within
    L{STEADY} (three, not two, because a JIT's costs fall in steps, with
    short plateaus between them) and the last is not a new low by more
    than L{STILL_FALLING}.
    """
    last = costs[-STEADY_RUNS:]
    if len(last) < STEADY_RUNS or max(last) > (1 + STEADY) * min(last):
        return False
    # Still falling: the last run is a new low, clearly below every earlier
    # one (a JIT's slow final descent, which stays within the band above).
    return costs[-1] >= (1 - STILL_FALLING) * min(costs[:-1])


def warm_up(
    sipp: str,
    scenario: Path,
    server: Server,
    plan: Plan,
    folder: Path,
    *,
    label: str,
    extra: Sequence[str] = (),
) -> List[float]:
    """
    Run C{scenario} at the plan's start rate until the server's CPU per call
    holds still (L{is_steady}), or
    C{plan.warmup_limit} seconds of runs.  A JIT needs it: PyPy took a
    minute of joins to compile the focus's paths (2,300 microseconds of CPU
    per join in the first 20 s, 800 from the third minute on), so figures
    taken after a fixed few seconds measured its compiler, not the server.
    CPython is steady from the start.

    @return: the CPU microseconds per call of each warm-up run.
    """
    step = max(plan.warmup, WARM_STEP)
    costs: List[float] = []
    started = time.monotonic()
    steady = False
    while not steady and time.monotonic() - started < plan.warmup_limit:
        server.settle(plan.settle_cap)
        run = run_sipp(
            sipp,
            scenario,
            server=server,
            rate=plan.start_rate,
            duration=step,
            folder=folder,
            extra=extra,
        )
        costs.append(1e6 * run.cpu_seconds / run.calls if run.calls else 0.0)
        steady = is_steady(costs)
    shown = " ".join(f"{cost:.0f}" for cost in costs)
    verdict = "steady" if steady else f"NOT steady after {plan.warmup_limit:.0f} s"
    say(f"  {server.name:10} {label:8} warm-up us/call: {shown} ({verdict})")
    return costs


def measure(
    sipp: str, name: str, scenario: Path, server: Server, *, plan: Plan, folder: Path
) -> Measurement:
    """
    The highest sustained rate, then CPU and response times at 80% of it.
    """
    warm_up(sipp, scenario, server, plan, folder, label=name)
    max_rate, runs, max_cpu = find_max_rate(sipp, scenario, server, plan, folder)
    result = Measurement(server=server.name, scenario=name, max_rate=max_rate, runs=runs)
    result.max_cpu_percent = max_cpu
    if max_rate == 0:
        return result
    load = max(int(max_rate * 0.8), 10)
    probed: List[float] = []
    lost = [0]

    def probe() -> None:
        times, missing = probe_during(server.port, name, plan.duration * 0.9, 0.01)
        probed.extend(times)
        lost[0] = missing

    server.settle(plan.settle_cap)
    run = run_sipp(
        sipp,
        scenario,
        server=server,
        rate=load,
        duration=plan.duration,
        folder=folder,
        rtt=True,
        during=probe,
    )
    result.load_rate = load
    result.cpu_percent = run.cpu_percent
    result.cpu_us_per_call = 1e6 * run.cpu_seconds / run.calls if run.calls else 0.0
    result.sipp_p50_ms = percentile(run.rtt_ms, 50)
    result.sipp_p99_ms = percentile(run.rtt_ms, 99)
    result.probe_p50_us = 1e6 * percentile(probed, 50)
    result.probe_p99_us = 1e6 * percentile(probed, 99)
    result.probe_lost = lost[0]
    say(
        f"  {server.name:10} {name:8} at {load}/s: {'pass' if run.passed else 'FAIL'} "
        f"cpu={run.cpu_percent:.0f}% probe p50={result.probe_p50_us:.0f}us"
    )
    return result


def table(results: Sequence[Measurement]) -> str:
    """
    The results, then each other server's ratios against the bare
    responder on the same interpreter (C{bare} for C{full}, C{bare-pypy}
    for C{full-pypy}) and against C{bare}.
    """
    head = (
        f"{'server':10} {'scenario':8} {'max/s':>7} {'cpu%':>5} {'@80%/s':>7} {'cpu%':>5} "
        f"{'us/call':>8} {'cap/s':>7} {'p50 us':>8} {'p99 us':>8} {'sipp p50/p99 ms':>15}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        bound = "*" if r.load_bound else " "
        lines.append(
            f"{r.server:10} {r.scenario:8} {r.max_rate:6d}{bound} {r.max_cpu_percent:5.0f} "
            f"{r.load_rate:7d} {r.cpu_percent:5.0f} {r.cpu_us_per_call:8.1f} "
            f"{r.capacity:7.0f} {r.probe_p50_us:8.0f} {r.probe_p99_us:8.0f} "
            f"{r.sipp_p50_ms:7.0f}/{r.sipp_p99_ms:<7.0f}"
        )
    lines.append(
        "* the server used under 80% of its core at that rate: SIPp, the cap or other load "
        "on the machine bounded it, so cap/s (1e6 / us per call) is the fairer capacity."
    )
    bare = {(r.server, r.scenario): r for r in results if r.server.startswith("bare")}
    lines.append("")
    lines.append("ratios (target: full >= 0.5x bare)")
    for r in results:
        if r.server.startswith("bare"):
            continue
        for base_name in dict.fromkeys([r.server.replace("full", "bare"), "bare"]):
            b = bare.get((base_name, r.scenario))
            if b is None or not b.max_rate or not b.capacity:
                continue
            rate_ratio = r.max_rate / b.max_rate
            cap_ratio = r.capacity / b.capacity
            verdict = "meets" if min(rate_ratio, cap_ratio) >= 0.5 else "BELOW"
            lines.append(
                f"  {r.server:10} / {base_name:10} {r.scenario:8} max rate {rate_ratio:5.2f}x"
                f"  CPU capacity {cap_ratio:5.2f}x  {verdict} target"
            )
    return "\n".join(lines)


def usable_python(path: str, option: str, otherwise: str) -> Optional[str]:
    """
    The interpreter C{path} names (for C{option}), made absolute, or None
    (with the reason said, then C{otherwise}) when it is missing or lacks
    the server's dependencies.
    """
    found = shutil.which(path)
    if found is None:
        say(f"{option}: {path} not found; {otherwise}")
        return None
    check = subprocess.run(
        [found, "-c", f"import {PYPY_MODULES}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check.returncode != 0:
        last = (check.stderr.strip().splitlines() or ["?"])[-1]
        say(f"{option}: {found} lacks the server's dependencies ({last}); {otherwise}")
        return None
    # Absolute: the servers start in folders of their own.
    return os.path.abspath(found)


def pypy_python(path: str) -> Optional[str]:
    """
    The PyPy interpreter to use, or None (with the reason said) when it is
    missing or lacks the server's dependencies (L{usable_python}).
    """
    return usable_python(path, "--pypy", "skipping the PyPy rows")


def main(argv: Optional[List[str]] = None) -> int:
    """
    Run the benchmark and print the table.
    """
    parser = argparse.ArgumentParser(description="SIP throughput: full server vs bare responder")
    parser.add_argument("--quick", action="store_true", help="a short smoke run (under ~60 s)")
    parser.add_argument("--pypy", action="store_true", help="also run both servers under PyPy")
    parser.add_argument("--pypy-python", default="pypy3", help="the PyPy interpreter")
    parser.add_argument(
        "--final",
        type=int,
        help="the INVITE's final code (default: what the full server answers)",
    )
    parser.add_argument("--sipp", default="sipp", help="the SIPp program")
    parser.add_argument("--scenario", action="append", choices=["options", "invite"])
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--only",
        action="append",
        choices=["full", "bare", "full-pypy", "bare-pypy"],
        help="run only these servers (repeatable)",
    )
    args = parser.parse_args(argv)
    sipp = shutil.which(args.sipp)
    if sipp is None:
        say(f"{args.sipp} not found (Debian: apt-get install sip-tester)")
        return 2
    pin(LOAD_CORE)()
    plan = QUICK if args.quick else FULL
    # The full server first: the bare one answers INVITE as it does.
    servers: List[Tuple[str, str, str]] = [
        ("full", sys.executable, "full"),
        ("bare", sys.executable, "bare"),
    ]
    if args.pypy:
        pypy = pypy_python(args.pypy_python)
        if pypy is not None:
            servers += [("full-pypy", pypy, "full"), ("bare-pypy", pypy, "bare")]
    if args.only:
        servers = [s for s in servers if s[0] in args.only]
    folder = Path(tempfile.mkdtemp(prefix="conference-bench-"))
    results: List[Measurement] = []
    started = time.monotonic()
    final: Optional[int] = args.final
    try:
        for name, python, kind in servers:
            try:
                server = Server(name, python, kind, final or 405, folder)
            except (RuntimeError, OSError) as e:
                say(f"  {name}: could not start, skipped: {e}")
                continue
            if final is None:
                final = invite_final(server.port) or 405
                say(f"  {name}: INVITE is answered {final}; measuring that path")
            try:
                for scenario in args.scenario or ["options", "invite"]:
                    path = scenario_file(scenario, final, folder)
                    results.append(measure(sipp, scenario, path, server, plan=plan, folder=folder))
            finally:
                stop_server(server)
    finally:
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(folder, ignore_errors=True)
    print(
        f"{time.strftime('%Y-%m-%d')}  {'quick' if args.quick else 'full'} plan, "
        f"{time.monotonic() - started:.0f} s, cores: {os.cpu_count()}, "
        f"load average {os.getloadavg()[0]:.1f}, "
        f"INVITE final {final}, {Path(sys.executable).name} "
        f"{sys.version.split()[0]}"
    )
    print(table(results))
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
