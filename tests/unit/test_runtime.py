"""
Tests for L{conference.runtime}: the garbage collector tuned and watched for a server,
and PyPy's JIT tuned.
"""

from __future__ import annotations

import gc
import os
import sys
import types
from typing import Any, Dict, List, cast

from twisted.logger import ILogObserver, LogLevel, globalLogPublisher
from twisted.trial import unittest

from conference import runtime


class NurseryAdviceTests(unittest.TestCase):
    """
    L{runtime.nursery_advice} tells a PyPy server's operator what to set.
    """

    def test_pypy_defaults(self) -> None:
        """PyPy with neither variable set is told both, with their values."""
        advice = runtime.nursery_advice("pypy", {"PATH": "/usr/bin"})
        assert advice is not None
        self.assertIn(f"{runtime.NURSERY_VARIABLE}={runtime.PYPY_NURSERY}", advice)
        self.assertIn(f"{runtime.INCREMENT_VARIABLE}={runtime.PYPY_INCREMENT_STEP}", advice)

    def test_pypy_step_unset(self) -> None:
        """With the nursery chosen, only the collection step is advised."""
        advice = runtime.nursery_advice("pypy", {runtime.NURSERY_VARIABLE: "4MB"})
        assert advice is not None
        self.assertIn(runtime.INCREMENT_VARIABLE, advice)
        self.assertNotIn(runtime.NURSERY_VARIABLE, advice)

    def test_pypy_both_set(self) -> None:
        """PyPy whose variables the operator chose, whatever the values, gets no advice."""
        chosen = {runtime.NURSERY_VARIABLE: "4MB", runtime.INCREMENT_VARIABLE: "8MB"}
        self.assertIsNone(runtime.nursery_advice("pypy", chosen))

    def test_pypy_nursery_blank(self) -> None:
        """An empty variable is PyPy's default, so the advice still names it."""
        blank = {runtime.NURSERY_VARIABLE: " ", runtime.INCREMENT_VARIABLE: "1MB"}
        advice = runtime.nursery_advice("pypy", blank)
        assert advice is not None
        self.assertIn(runtime.NURSERY_VARIABLE, advice)

    def test_cpython(self) -> None:
        """CPython, whose collector is tuned from inside, gets no advice."""
        self.assertIsNone(runtime.nursery_advice("cpython", {}))


class TuneGCTests(unittest.TestCase):
    """
    L{runtime.tune_gc} freezes start-up's objects and raises the threshold
    on CPython, and logs the nursery advice on PyPy.
    """

    def setUp(self) -> None:
        self.events: List[Dict[str, Any]] = []
        observer = cast(ILogObserver, self.events.append)
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)

    def _no_freeze(self) -> None:
        """Make this interpreter look like PyPy to tune_gc: no gc.freeze."""
        if hasattr(gc, "freeze"):
            self.patch(gc, "freeze", None)

    def test_cpython_threshold(self) -> None:
        """On CPython the young generation's threshold becomes GC_THRESHOLD and the rest stay."""
        if not hasattr(gc, "freeze"):
            raise unittest.SkipTest("no gc.freeze on this interpreter")
        before = gc.get_threshold()
        self.addCleanup(gc.set_threshold, *before)
        self.addCleanup(gc.unfreeze)
        runtime.tune_gc()
        self.assertEqual(gc.get_threshold(), (runtime.GC_THRESHOLD, before[1], before[2]))
        self.assertGreater(gc.get_freeze_count(), 0)

    def test_advice_logged(self) -> None:
        """On PyPy with the default nursery, tune_gc logs the advice once at info level."""
        self.patch(sys, "implementation", _Implementation("pypy"))
        self.patch(os, "environ", {})
        self._no_freeze()
        runtime.tune_gc()
        advice = [e for e in self.events if e.get("log_namespace") == "conference.runtime"]
        self.assertEqual(len(advice), 1)
        self.assertEqual(advice[0]["log_level"], LogLevel.info)
        self.assertIn(runtime.PYPY_NURSERY, advice[0]["advice"])

    def test_no_advice_when_set(self) -> None:
        """With the nursery and the step set, tune_gc logs nothing."""
        self.patch(sys, "implementation", _Implementation("pypy"))
        self.patch(os, "environ", dict(runtime.PYPY_ENVIRONMENT))
        self._no_freeze()
        runtime.tune_gc()
        self.assertEqual(
            [e for e in self.events if e.get("log_namespace") == "conference.runtime"], []
        )


class CheckJITParametersTests(unittest.TestCase):
    """
    L{runtime.check_jit_parameters} checks the form of C{--pypy-jit}.
    """

    def test_pairs(self) -> None:
        """Comma-separated NAME=VALUE pairs pass, without surrounding blanks."""
        checked = runtime.check_jit_parameters(" decay=0,threshold=500 ")
        self.assertEqual(checked, "decay=0,threshold=500")
        self.assertEqual(runtime.check_jit_parameters(runtime.PYPY_JIT), runtime.PYPY_JIT)

    def test_words_and_empty(self) -> None:
        """PyPy's words (default, off) and the empty string (keep the JIT as started) pass."""
        for text in ("default", "off", "", "  "):
            self.assertEqual(runtime.check_jit_parameters(text), text.strip())

    def test_malformed(self) -> None:
        """A name without a value, an empty pair or blanks between pairs are refused, named."""
        for text, bad in [("decay", "'decay'"), ("decay=0,,a=1", "''"), ("decay=0 a=1", "a=1")]:
            with self.assertRaises(ValueError) as caught:
                runtime.check_jit_parameters(text)
            self.assertIn(bad, str(caught.exception))


class TuneJITTests(unittest.TestCase):
    """
    L{runtime.tune_jit} sets PyPy's JIT parameters, and only those asked.
    """

    def setUp(self) -> None:
        self.events: List[Dict[str, Any]] = []
        observer = cast(ILogObserver, self.events.append)
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        self.set: List[str] = []

    def test_set(self) -> None:
        """The parameters go to PyPy's set_param as one string."""
        self.assertTrue(runtime.tune_jit("decay=0", self.set.append))
        self.assertEqual(self.set, ["decay=0"])

    def test_empty_keeps(self) -> None:
        """An empty string sets nothing: the JIT stays as the interpreter was started."""
        self.assertFalse(runtime.tune_jit("", self.set.append))
        self.assertEqual(self.set, [])

    def test_refused_logged(self) -> None:
        """Parameters PyPy refuses are logged once as an error, not raised."""

        def refuse(text: str) -> None:
            raise ValueError("error in JIT parameters string")

        self.assertFalse(runtime.tune_jit("nosuch=1", refuse))
        errors = [e for e in self.events if e.get("log_level") == LogLevel.error]
        self.assertEqual(len(errors), 1)
        self.assertEqual(errors[0]["parameters"], "nosuch=1")

    def test_interpreter(self) -> None:
        """Without a stand-in it sets PyPy's own JIT, and does nothing on CPython."""
        pypy = sys.implementation.name == "pypy"
        self.assertEqual(runtime.tune_jit(runtime.PYPY_JIT), pypy)


class CompileClockTests(unittest.TestCase):
    """
    L{runtime.compile_clock} reads how long PyPy's JIT has compiled.
    """

    def test_counters(self) -> None:
        """The clock is the JIT's tracing plus backend seconds, read at each call."""
        times = {"TRACING": 0.5, "BACKEND": 0.25, "OPTIMIZER": 9.0}
        snapshot = types.SimpleNamespace(counter_times=times)
        fake = types.ModuleType("pypyjit")
        fake.get_stats_snapshot = lambda: snapshot  # type: ignore[attr-defined]
        real = sys.modules.get("pypyjit")
        sys.modules["pypyjit"] = fake
        if real is None:
            self.addCleanup(sys.modules.pop, "pypyjit")
        else:
            self.addCleanup(sys.modules.__setitem__, "pypyjit", real)
        clock = runtime.compile_clock()
        assert clock is not None
        self.assertEqual(clock(), 0.75)
        times["TRACING"] = 1.5
        self.assertEqual(clock(), 1.75)

    def test_interpreter(self) -> None:
        """On PyPy the clock reads its JIT and never goes back; elsewhere there is none."""
        clock = runtime.compile_clock()
        if sys.implementation.name != "pypy":
            self.assertIsNone(clock)
            return
        assert clock is not None
        first = clock()
        self.assertGreaterEqual(clock(), first)


class _Implementation:
    """A stand-in for C{sys.implementation} naming another interpreter."""

    def __init__(self, name: str) -> None:
        self.name = name


class WatchCollectorTests(unittest.TestCase):
    """
    L{runtime.watch_collector} reports the collector's pauses, on the
    interpreter the tests run on and through PyPy's hooks.
    """

    def test_full_collection_reported(self) -> None:
        """A full collection is reported as a pause of some seconds, and not once unwatched."""
        pauses: List[float] = []
        stop = runtime.watch_collector(pauses.append)
        gc.collect()
        sum(range(1000))  # PyPy runs its hooks at the next bytecodes
        self.assertTrue(pauses, "no pause reported")
        self.assertTrue(all(0 <= p < 60 for p in pauses), pauses)
        stop()
        count = len(pauses)
        gc.collect()
        sum(range(1000))
        self.assertEqual(len(pauses), count)

    def test_young_collection_reported(self) -> None:
        """A collection of the young generation alone is reported as a pause too."""
        pauses: List[float] = []
        stop = runtime.watch_collector(pauses.append)
        self.addCleanup(stop)
        gc.collect(0)
        sum(range(1000))  # PyPy runs its hooks at the next bytecodes
        self.assertTrue(pauses, "no pause reported")
        self.assertTrue(all(0 <= p < 60 for p in pauses), pauses)

    def test_pypy_hook_chained(self) -> None:
        """On PyPy, a step hook already set still runs, and is set back when the watch stops."""
        earlier: List[float] = []
        hooks = _Hooks(lambda stats: earlier.append(stats.duration))
        previous = hooks.on_gc_collect_step
        self.patch(runtime, "gc", _PyPyGC(hooks))
        pauses: List[float] = []
        stop = runtime.watch_collector(pauses.append)
        hooks.on_gc_collect_step(_Stats(0.04))
        self.assertEqual((pauses, earlier), ([0.04], [0.04]))
        stop()
        self.assertIs(hooks.on_gc_collect_step, previous)


class _Stats:
    """What PyPy hands a step hook: the step's duration in seconds."""

    def __init__(self, duration: float) -> None:
        self.duration = duration


class _Hooks:
    """A stand-in for PyPy's C{gc.hooks}."""

    def __init__(self, step: Any) -> None:
        self.on_gc_collect_step = step


class _PyPyGC:
    """A stand-in for PyPy's C{gc} module, which has C{hooks}."""

    def __init__(self, hooks: _Hooks) -> None:
        self.hooks = hooks
