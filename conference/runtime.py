# -*- test-case-name: tests.unit.test_runtime -*-
"""
The interpreter's memory manager, tuned and watched for a long-running SIP
server.

A loaded server keeps tens of thousands of transactions alive for their
timers (Timer J: 32 s) while it makes and drops the objects of every
request, and each runtime's defaults handle that pattern badly: CPython's
collector visits the live transactions again and again, and PyPy's nursery
(the size of the L2 cache, often 1 MiB) fills a few times per join, so the
objects of requests in progress are copied into the old generation and
collected there.  CPython can be tuned from inside the process; PyPy only
from its environment (C{PYPY_GC_NURSERY} and C{PYPY_GC_INCREMENT_STEP},
read when the interpreter starts), so for PyPy the server says what to set
(docs/benchmarks.rst, "PyPy's nursery" and "Completed transactions as
table rows").  Either way the old generation's collections still pause the
server now and then; L{watch_collector} reports those pauses (and
L{compile_clock} the time PyPy's JIT spends compiling), so that the
overload control does not take the queue they leave for load.
"""

from __future__ import annotations

import gc
import importlib
import os
import re
import sys
import time
from typing import Any, Callable, Dict, Mapping, Optional

from twisted.logger import Logger

log = Logger()

#: Young-generation threshold when tuning CPython (its default: 700).
GC_THRESHOLD = 50_000

#: The PyPy nursery the server should run with (C{PYPY_GC_NURSERY}): a
#: join costs half what it does with a 1 MiB nursery, and larger ones gain
#: little more (docs/benchmarks.rst, "PyPy's nursery").
PYPY_NURSERY = "16MB"

#: PyPy's environment variable for the nursery's size.
NURSERY_VARIABLE = "PYPY_GC_NURSERY"

#: The step of PyPy's incremental major collections the server should run
#: with (C{PYPY_GC_INCREMENT_STEP}): PyPy's default is a multiple of the
#: nursery, so with L{PYPY_NURSERY} a step pauses the server for some
#: 40 ms; 1 MB steps pause it for a few, at a few percent more CPU, which
#: keeps joins' setup p99 near 10 ms at 1,500/s on a core.
PYPY_INCREMENT_STEP = "1MB"

#: PyPy's environment variable for that step.
INCREMENT_VARIABLE = "PYPY_GC_INCREMENT_STEP"

#: What a PyPy server's environment should set, and to what.
PYPY_ENVIRONMENT: Mapping[str, str] = {
    NURSERY_VARIABLE: PYPY_NURSERY,
    INCREMENT_VARIABLE: PYPY_INCREMENT_STEP,
}

#: The JIT parameters a PyPy server sets once it serves (C{pypyjit.set_param},
#: twistd's C{--pypy-jit}).  PyPy decays every JIT counter by 4% at each
#: minor collection, so the busier the server, the faster its counters
#: decay: with joins at full load a path taken some hundreds of times a
#: second is compiled after ten seconds or more, and one taken first under
#: overload (its refusals) stays interpreted while the overload lasts.
#: C{decay=0} keeps the counts, so such a path is compiled within a second
#: or two (docs/benchmarks.rst, "PyPy's JIT counters").
PYPY_JIT = "decay=0"

# What pypyjit.set_param takes: a word, or name=value pairs.
_JIT_WORDS = frozenset({"default", "off"})
_JIT_PAIR = re.compile(r"[a-z_]+=[^,=\s]+\Z")

# Why, for the advice: what each variable left at PyPy's default costs.
_DEFAULT_COST = {
    NURSERY_VARIABLE: "its default nursery (the L2 cache's size) makes a conference "
    "join cost about twice as much CPU",
    INCREMENT_VARIABLE: "its default major collection step (a multiple of the nursery) "
    "pauses the server some 40 ms at a time",
}


def tune_gc() -> None:
    """
    Tune the garbage collector for a long-running server, once it is
    serving.

    On CPython: freeze what start-up created (modules, handlers, caches) so
    collections no longer visit it, and raise the young-generation
    threshold to L{GC_THRESHOLD}.  With the default threshold, small swings
    in the number of live objects keep triggering collections that promote
    the live transactions and then visit them again in full collections,
    which costs more CPU than answering the requests.  The request path
    makes no reference cycles, so the rare cyclic garbage waits for
    L{GC_THRESHOLD} objects.

    On PyPy, which has no such knobs at run time: log once what to set in
    the environment when the nursery was left at PyPy's default
    (L{nursery_advice}).
    """
    advice = nursery_advice(sys.implementation.name, os.environ)
    if advice is not None:
        log.info("{advice}", advice=advice)
    freeze = getattr(gc, "freeze", None)
    set_threshold = getattr(gc, "set_threshold", None)
    get_threshold = getattr(gc, "get_threshold", None)
    if freeze is None or set_threshold is None or get_threshold is None:
        return
    gc.collect()
    freeze()
    _, older, oldest = get_threshold()
    set_threshold(GC_THRESHOLD, older, oldest)


def check_jit_parameters(text: str) -> str:
    """
    Check the form of a JIT parameter string for L{tune_jit}: empty, one of
    PyPy's words (C{default}, C{off}), or comma-separated C{name=value}
    pairs.  Whether PyPy knows each name only PyPy can say (L{tune_jit}).

    @return: C{text} without surrounding blanks.
    @raise ValueError: naming what is malformed.
    """
    value = text.strip()
    if not value or value in _JIT_WORDS:
        return value
    for pair in value.split(","):
        if not _JIT_PAIR.match(pair):
            raise ValueError(
                f"{pair!r} is not NAME=VALUE (PyPy's JIT parameters, such as {PYPY_JIT})"
            )
    return value


def tune_jit(parameters: str, set_param: Optional[Callable[[str], None]] = None) -> bool:
    """
    Set PyPy's JIT parameters to C{parameters} (L{PYPY_JIT}, unless the
    operator chose others); nothing on CPython, or for an empty string (the
    JIT keeps what the interpreter was started with, C{pypy --jit ...}).
    A string PyPy refuses is logged, not raised: the server serves on with
    the JIT as it was.

    @param set_param: PyPy's C{pypyjit.set_param} (looked up when L{None}).
    @return: whether the parameters were set.
    """
    if not parameters:
        return False
    if set_param is None:
        try:
            set_param = importlib.import_module("pypyjit").set_param
        except ImportError:
            return False  # CPython: no JIT to tune
    try:
        set_param(parameters)
    except ValueError:
        log.error(
            "PyPy refused the JIT parameters {parameters!r} (--pypy-jit); "
            "its JIT runs as it was started",
            parameters=parameters,
        )
        return False
    return True


def watch_collector(report: Callable[[float], None]) -> Callable[[], None]:
    """
    Call C{report} with the seconds each pause of the collector took: on
    PyPy each step of a major collection (its C{gc.hooks}, chained after
    any hook already set), on CPython each collection of any generation
    (C{gc.callbacks}).  Those are the pauses that leave a queue of
    requests behind them on a loaded server
    (L{conference.overload.ProportionalShedding.paused}).  On CPython the
    young generation counts too: L{tune_gc} lets it grow to
    L{GC_THRESHOLD} objects, and collecting that many takes tens of
    milliseconds, as long as the queue's target (docs/benchmarks.rst,
    "The young generation's pauses").

    @return: a function that stops the watch (and restores a hook that
        was replaced).
    """
    hooks = getattr(gc, "hooks", None)
    if hooks is not None:  # PyPy
        previous = hooks.on_gc_collect_step

        def step(stats: Any) -> None:
            if previous is not None:
                previous(stats)
            report(stats.duration)

        hooks.on_gc_collect_step = step

        def unhook() -> None:
            if hooks.on_gc_collect_step is step:
                hooks.on_gc_collect_step = previous

        return unhook
    started = [0.0]

    def callback(phase: str, info: Dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            report(time.perf_counter() - started[0])

    gc.callbacks.append(callback)

    def remove() -> None:
        if callback in gc.callbacks:
            gc.callbacks.remove(callback)

    return remove


def compile_clock() -> Optional[Callable[[], float]]:
    """
    On PyPy, a clock of the seconds its JIT has spent compiling so far
    (tracing, aborted traces included, and the backend), read from the
    JIT's own counters; elsewhere L{None}.  While the JIT compiles, the
    server reads no requests, as in a collector's pause: a queue that time
    leaves is warming up, not load (L{conference.overload.ProportionalShedding}).
    Reading it costs a few microseconds, and it sets no hook.
    """
    try:
        pypyjit = importlib.import_module("pypyjit")
        snapshot = pypyjit.get_stats_snapshot
    except (ImportError, AttributeError):
        return None

    def seconds() -> float:
        times = snapshot().counter_times
        return float(times.get("TRACING", 0.0)) + float(times.get("BACKEND", 0.0))

    return seconds


def nursery_advice(implementation: str, environ: Mapping[str, str]) -> Optional[str]:
    """
    What to tell the operator of a server on C{implementation} (the
    C{sys.implementation.name}) started with C{environ}: on PyPy, each
    variable of L{PYPY_ENVIRONMENT} left unset (or blank), with its value
    and why; otherwise nothing.  A value the operator chose is theirs.

    @return: the advice as one log line, or L{None}.
    """
    if implementation != "pypy":
        return None
    unset = [name for name in PYPY_ENVIRONMENT if not environ.get(name, "").strip()]
    if not unset:
        return None
    costs = "; ".join(_DEFAULT_COST[name] for name in unset)
    settings = " ".join(f"{name}={PYPY_ENVIRONMENT[name]}" for name in unset)
    return (
        f"PyPy runs with its defaults: {costs}.  Set {settings} in the server's "
        f"environment (docs/benchmarks.rst)"
    )


__all__ = [
    "GC_THRESHOLD",
    "INCREMENT_VARIABLE",
    "NURSERY_VARIABLE",
    "PYPY_ENVIRONMENT",
    "PYPY_INCREMENT_STEP",
    "PYPY_JIT",
    "PYPY_NURSERY",
    "check_jit_parameters",
    "compile_clock",
    "nursery_advice",
    "tune_gc",
    "tune_jit",
    "watch_collector",
]
