# -*- test-case-name: tests.unit.test_side_by_side -*-
"""
Run benchmarks under CPython and PyPy one after the other, and print their
tables together, so every figure has its counterpart on the other runtime
measured the same hour (docs/benchmarks.rst, "Which runtime").

Each benchmark script is run as it is, with the interpreter in front: the
servers it starts use C{sys.executable}, so under PyPy they run on PyPy.
An interpreter that cannot import the server (no venv with the project
installed) is reported and skipped, never half-measured.

    python benchmarks/side_by_side.py --pypy-python .venv-pypy/bin/python \\
        bench_overload.py --quick
    python benchmarks/side_by_side.py bench_media.py bench_focus.py --quick
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
DEFAULT_PYPY = HERE.parent / ".venv-pypy" / "bin" / "python"


@dataclass
class Outcome:
    """One benchmark under one interpreter: its table, or why there is none."""

    benchmark: str
    runtime: str
    seconds: float
    output: str
    error: Optional[str] = None


def usable(python: str) -> Optional[str]:
    """Why C{python} cannot run the benchmarks, or L{None} when it can."""
    try:
        check = subprocess.run(
            [python, "-c", "import conference, twisted"],
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except OSError as e:
        return str(e)
    if check.returncode:
        lines = check.stderr.strip().splitlines()
        return lines[-1] if lines else f"exit status {check.returncode}"
    return None


def run_one(benchmark: str, runtime: str, python: str, extra: Sequence[str]) -> Outcome:
    """Run C{benchmark} (a script beside this one) with C{python}."""
    started = time.monotonic()
    answer = subprocess.run(
        [python, str(HERE / benchmark), *extra],
        check=False,
        capture_output=True,
        text=True,
        cwd=str(HERE),
    )
    seconds = time.monotonic() - started
    if answer.returncode:
        tail = "\n".join(answer.stderr.strip().splitlines()[-5:])
        return Outcome(benchmark, runtime, seconds, answer.stdout, tail or "failed")
    return Outcome(benchmark, runtime, seconds, answer.stdout)


def runtimes(pypy: Optional[str]) -> List[Tuple[str, str]]:
    """(label, python): this CPython, and PyPy when given or found."""
    found = [("cpython", sys.executable)]
    candidate = pypy or (str(DEFAULT_PYPY) if DEFAULT_PYPY.exists() else None)
    if candidate is None:
        sys.stderr.write("PyPy skipped: no --pypy-python and no .venv-pypy\n")
        return found
    problem = usable(candidate)
    if problem is not None:
        sys.stderr.write(f"PyPy skipped: {candidate} cannot import the server: {problem}\n")
        return found
    return [*found, ("pypy", candidate)]


def report(outcomes: Sequence[Outcome]) -> str:
    """The tables, one benchmark after the other, each runtime labelled."""
    parts: List[str] = []
    for outcome in outcomes:
        head = f"== {outcome.benchmark} on {outcome.runtime} ({outcome.seconds:.0f} s)"
        body = outcome.output.rstrip() if outcome.error is None else f"FAILED: {outcome.error}"
        parts.append(f"{head}\n{body}\n")
    return "\n".join(parts)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("benchmarks", nargs="+", help="scripts beside this one, e.g. bench_sip.py")
    parser.add_argument("--pypy-python", default=None, help="a PyPy with the project installed")
    args, extra = parser.parse_known_args(argv)
    unknown = [name for name in args.benchmarks if not (HERE / name).is_file()]
    if unknown:
        parser.error(f"no such benchmark: {', '.join(unknown)}")
    found = runtimes(args.pypy_python)
    outcomes = [
        run_one(benchmark, label, python, extra)
        for benchmark in args.benchmarks
        for label, python in found
    ]
    print(report(outcomes))
    return 1 if any(o.error for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
