# -*- test-case-name: tests.unit.test_bench_fixed -*-
"""
What the focus and BIND benchmarks share beyond C{bench_sip.py}: a server
started from an arbitrary command line (still pinned to its core and
measured from C{/proc}), the C{twistd conference} command line from the
source tree, child helpers run in a fresh process (they need a reactor of
their own), and a run at a fixed load that gives SIPp's response times.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from bench_sip import (
    LOAD_CORE,
    SERVER_CORE,
    Plan,
    RunResult,
    Server,
    pin,
    run_sipp,
    say,
)
from probe import LOOPBACK, percentile

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCENARIOS = HERE / "scenarios"

# Short plans for a bounded quick run: a couple of searches must fit in ~90 s.
QUICK = Plan(
    duration=1.0,
    start_rate=200,
    max_rate=6400,
    doublings=5,
    bisections=1,
    warmup=0.3,
    settle_cap=1.0,
    retries=0,
    warmup_limit=90.0,
)
FULL = Plan(
    duration=5.0,
    start_rate=200,
    max_rate=25600,
    doublings=8,
    bisections=3,
    warmup=3.0,
    settle_cap=6.0,
    retries=1,
    warmup_limit=240.0,
)


class CommandServer(Server):
    """
    A server under test started from any command line, with
    L{bench_sip.Server}'s readiness check (an OPTIONS answered), CPU
    accounting, settling and stopping.
    """

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        folder: Path,
        *,
        port: int,
        env: Optional[Dict[str, str]] = None,
    ) -> None:
        # Server.__init__ builds its own command line; this replaces it.
        self.name = name
        self.port = port
        self.folder = folder / name
        self.folder.mkdir(parents=True, exist_ok=True)
        self.log_path = self.folder / "server.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                list(args),
                cwd=self.folder,
                env=env if env is not None else dict(os.environ),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=pin(SERVER_CORE),  # noqa: PLW1509 - no threads here
            )
        self._wait_ready()

    def tracebacks(self) -> int:
        """
        How many tracebacks the server logged.
        """
        return self.log_tail(10**8).count("Traceback")


def conference_command(
    folder: Path, port: int, options: Sequence[str], python: str = sys.executable
) -> List[str]:
    """
    The C{twistd -n conference} command line on UDP and TCP C{port} of
    127.0.0.1, from this source tree (the plugin file is copied into a
    C{twisted/plugins} folder under C{folder}, see L{bench_sip.conference_env}),
    run by C{python}.
    """
    return [
        python,
        "-c",
        "from twisted.scripts.twistd import run; run()",
        "--nodaemon",
        "--pidfile=",
        "conference",
        "--listen",
        f"udp:{port}:interface={LOOPBACK}",
        "--listen",
        f"tcp:{port}:interface={LOOPBACK}",
        *options,
    ]


def run_child(script: Path, args: Sequence[str], timeout: float) -> str:
    """
    Run C{python script args...} (a helper mode of a benchmark, with a
    reactor of its own) on the load core and return its standard output.

    @raise RuntimeError: when it fails or overruns C{timeout}.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(HERE), env.get("PYTHONPATH", "")])
    try:
        done = subprocess.run(
            [sys.executable, str(script), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
            stdin=subprocess.DEVNULL,
            preexec_fn=pin(LOAD_CORE),
        )
    except subprocess.TimeoutExpired as e:
        raise RuntimeError(f"{script.name} {' '.join(args)}: over {timeout} s") from e
    if done.returncode != 0:
        raise RuntimeError(f"{script.name} {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


@dataclass
class Loaded:
    """
    One SIPp run at a fixed rate, with SIPp's response times (whole
    milliseconds) of the timed request.
    """

    rate: int
    passed: bool
    cpu_percent: float
    cpu_us_per_call: float
    p50_ms: float
    p99_ms: float
    samples: int


def loaded_run(
    sipp: str,
    scenario: Path,
    server: Server,
    *,
    rate: int,
    plan: Plan,
    folder: Path,
    extra: Sequence[str] = (),
    during: Optional[Callable[[], None]] = None,
) -> Loaded:
    """
    SIPp at C{rate} for the plan's duration with C{-trace_rtt}: CPU and
    response times there (the scenario marks what is timed with
    C{start_rtd}/C{rtd}).
    """
    server.settle(plan.settle_cap)
    run: RunResult = run_sipp(
        sipp,
        scenario,
        server=server,
        rate=rate,
        duration=plan.duration,
        folder=folder,
        rtt=True,
        during=during,
        extra=extra,
    )
    result = Loaded(
        rate=rate,
        passed=run.passed,
        cpu_percent=run.cpu_percent,
        cpu_us_per_call=1e6 * run.cpu_seconds / run.calls if run.calls else 0.0,
        p50_ms=percentile(run.rtt_ms, 50),
        p99_ms=percentile(run.rtt_ms, 99),
        samples=len(run.rtt_ms),
    )
    say(
        f"  {server.name:10} {scenario.stem:12} at {rate}/s: "
        f"{'pass' if run.passed else 'FAIL'} ok={run.successful}/{run.calls} "
        f"cpu={run.cpu_percent:.0f}% p50={result.p50_ms:.0f}ms p99={result.p99_ms:.0f}ms"
    )
    return result


def header_line(started: float, quick: bool, extra: str = "") -> str:
    """
    The first line of a benchmark's printed report.
    """
    return (
        f"{time.strftime('%Y-%m-%d %H:%M')}  {'quick' if quick else 'full'} plan, "
        f"{time.monotonic() - started:.0f} s, cores: {os.cpu_count()}, "
        f"load average {os.getloadavg()[0]:.1f}, {Path(sys.executable).name} "
        f"{sys.version.split()[0]}{extra}"
    )


def pin_self() -> None:
    """
    Move this process (and the SIPp it starts) to the load core.
    """
    pin(LOAD_CORE)()
