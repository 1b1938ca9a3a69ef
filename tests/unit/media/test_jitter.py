# -*- test-case-name: tests.unit.media.test_jitter -*-
"""
Tests for L{conference.media.jitter}: the jitter buffer on a simulated
clock (arrival times are given, the mixer's ticks are calls to C{pop}).
"""

from __future__ import annotations

import random
from typing import List, Optional, Tuple

import numpy as np
from twisted.trial.unittest import SynchronousTestCase

from conference.media.codecs import FRAME_SAMPLES, INTERNAL_RATE, Samples
from conference.media.jitter import CONCEAL_FRAMES, TRIM_AFTER, JitterBuffer

F = FRAME_SAMPLES
TICK = 0.02


def frame(n: int, size: int = F) -> Samples:
    """A recognisable frame: every sample is 100 * (n + 1) + 7."""
    return np.full(size, 100 * (n + 1) + 7, dtype=np.int16)


def label(samples: Optional[Samples]) -> Optional[int]:
    """Which L{frame} C{samples} is (None for silence, -1 for anything else)."""
    if samples is None:
        return None
    value = int(samples[0])
    if (value - 7) % 100 == 0 and np.all(samples == value):
        return (value - 7) // 100 - 1
    return -1


class Simulation:
    """
    Packets arriving at given times and a tick every 20 ms: returns
    what each tick played.
    """

    def __init__(self, buffer: JitterBuffer, start_ts: int = 1000) -> None:
        self.buffer = buffer
        self.start_ts = start_ts

    def run(
        self, arrivals: List[Tuple[float, int]], ticks: int, size: int = F, phase: float = 0.01
    ) -> List[Optional[int]]:
        """
        C{arrivals}: (time, packet number) pairs; packet n carries frame n
        at timestamp start + n * size.  Ticks happen at phase + k * 20 ms.
        """
        pending = sorted(arrivals)
        played: List[Optional[int]] = []
        for k in range(ticks):
            now = phase + k * TICK
            while pending and pending[0][0] <= now:
                at, n = pending.pop(0)
                self.buffer.push((self.start_ts + n * size) % 2**32, frame(n, size), at)
            played.append(label(self.buffer.pop()))
        return played


class JitterBufferTests(SynchronousTestCase):
    """
    Ordering, concealment, lateness and adaptation.
    """

    def test_in_order(self) -> None:
        """A steady stream is played frame by frame, each once, after the initial delay."""
        buffer = JitterBuffer()
        played = Simulation(buffer).run([(n * TICK, n) for n in range(20)], 21)
        self.assertEqual(played[:2], [None, 0])
        self.assertEqual(played[1:21], list(range(20)))
        self.assertEqual((buffer.played, buffer.concealed, buffer.late), (20, 0, 0))

    def test_reordered(self) -> None:
        """Packets swapped in transit are played in timestamp order."""
        arrivals = [(n * TICK, n) for n in range(10)]
        arrivals[4], arrivals[5] = (4 * TICK, 5), (5 * TICK - 0.001, 4)
        played = Simulation(JitterBuffer()).run(arrivals, 11)
        self.assertEqual(played, [None, *range(10)])

    def test_loss_concealed(self) -> None:
        """A lost frame is replaced by the previous one at half level, then play goes on."""
        buffer = JitterBuffer()
        arrivals = [(n * TICK, n) for n in range(10) if n != 4]
        sim = Simulation(buffer)
        pending = sorted(arrivals)
        out: List[Optional[Samples]] = []
        for k in range(11):
            now = 0.01 + k * TICK
            while pending and pending[0][0] <= now:
                at, n = pending.pop(0)
                buffer.push(sim.start_ts + n * F, frame(n), at)
            out.append(buffer.pop())
        concealed = out[5]
        assert concealed is not None
        self.assertTrue(np.all(concealed == frame(3) >> 1))
        self.assertEqual([label(x) for x in out[6:11]], [5, 6, 7, 8, 9])
        self.assertEqual(buffer.concealed, 1)

    def test_long_gap_goes_silent(self) -> None:
        """After CONCEAL_FRAMES concealed frames a longer gap is silence."""
        arrivals = [(n * TICK, n) for n in list(range(3)) + list(range(9, 12))]
        played = Simulation(JitterBuffer()).run(arrivals, 14)
        gap = played[4:10]
        self.assertEqual(gap[:CONCEAL_FRAMES], [-1] * CONCEAL_FRAMES)
        self.assertEqual(gap[CONCEAL_FRAMES:], [None] * (6 - CONCEAL_FRAMES))
        self.assertEqual(played[10:13], [9, 10, 11])

    def test_late_packet_dropped(self) -> None:
        """A packet arriving after its frame was played (concealed) is dropped and counted."""
        buffer = JitterBuffer()
        arrivals = [(n * TICK, n) for n in range(10) if n != 3] + [(0.2, 3)]
        Simulation(buffer).run(arrivals, 12)
        self.assertEqual(buffer.late, 1)

    def test_underrun_adds_delay(self) -> None:
        """A late stream (nothing buffered) holds the position instead of skipping audio."""
        buffer = JitterBuffer()
        # Packets 0-4 on time, then 5-9 each 35 ms late.
        arrivals = [(n * TICK + (0.035 if n >= 5 else 0), n) for n in range(10)]
        played = Simulation(buffer).run(arrivals, 14)
        self.assertEqual([p for p in played if p is not None and p >= 0], list(range(10)))
        self.assertEqual((buffer.late, buffer.played), (0, 10))
        self.assertEqual(played[6:8], [-1, 5])  # concealed once, then on, one frame later

    def test_trim(self) -> None:
        """A delay held above the target for TRIM_AFTER ticks loses one frame."""
        buffer = JitterBuffer()
        # A burst of six frames, then a steady stream: excess delay.
        arrivals = [(0.0, n) for n in range(6)] + [((n - 5) * TICK, n) for n in range(6, 60)]
        played = Simulation(buffer).run(arrivals, TRIM_AFTER + 30)
        self.assertGreaterEqual(buffer.trimmed, 1)
        numbers = [p for p in played if p is not None]
        self.assertEqual(numbers, sorted(numbers))
        self.assertEqual(len(set(numbers)), len(numbers))

    def test_duplicate(self) -> None:
        """The same timestamp twice is kept once."""
        buffer = JitterBuffer()
        self.assertTrue(buffer.push(0, frame(0), 0.0))
        self.assertFalse(buffer.push(0, frame(0), 0.001))
        self.assertEqual(buffer.duplicates, 1)

    def test_jump_resyncs(self) -> None:
        """A timestamp jump beyond the maximum delay resynchronises instead of waiting."""
        buffer = JitterBuffer()
        sim = Simulation(buffer)
        sim.run([(0.0, 0), (TICK, 1)], 3)
        buffer.push(sim.start_ts + 100000, frame(7), 0.06)
        self.assertEqual(buffer.resyncs, 1)
        self.assertEqual([label(buffer.pop()), label(buffer.pop())], [None, 7])

    def test_marker_resyncs_after_silence(self) -> None:
        """A talkspurt (marker bit) after the buffer ran dry starts at the target delay."""
        buffer = JitterBuffer()
        Simulation(buffer).run([(0.0, 0), (TICK, 1)], 8)
        buffer.push(1000 + 10 * F, frame(10), 0.2, marker=True)
        self.assertEqual([label(buffer.pop()), label(buffer.pop())], [None, 10])

    def test_timestamp_wrap(self) -> None:
        """Timestamps crossing 2**32 play on without a hiccup."""
        buffer = JitterBuffer()
        played = Simulation(buffer, start_ts=2**32 - 3 * F).run(
            [(n * TICK, n) for n in range(8)], 10
        )
        self.assertEqual(played[1:9], list(range(8)))
        self.assertEqual(buffer.resyncs, 0)

    def test_other_packet_sizes(self) -> None:
        """10 ms packets are joined and 30 ms packets split into 20 ms frames."""
        for size, count in ((F // 2, 40), (F * 3 // 2, 12)):
            buffer = JitterBuffer()
            pending = [(n * size / INTERNAL_RATE, n) for n in range(count)]
            samples = []
            for k in range(count * size // F + 1):
                while pending and pending[0][0] <= 0.01 + k * TICK:
                    at, n = pending.pop(0)
                    buffer.push(n * size, np.full(size, n + 1, dtype=np.int16), at)
                out = buffer.pop()
                samples.append(np.zeros(F, dtype=np.int16) if out is None else out)
            joined = np.concatenate(samples)
            expected = np.repeat(np.arange(1, count + 1, dtype=np.int16), size)
            start = int(np.argmax(joined != 0))
            self.assertTrue(np.array_equal(joined[start : start + len(expected)], expected), size)
            self.assertEqual((buffer.concealed, buffer.late, buffer.resyncs), (0, 0, 0))

    def test_adapts_to_jitter(self) -> None:
        """Arrival jitter raises the target delay; without jitter it stays at the minimum."""
        steady = JitterBuffer()
        Simulation(steady).run([(n * TICK, n) for n in range(100)], 100)
        self.assertEqual(steady.target, steady.min_delay)
        shaky = JitterBuffer()
        rng = random.Random(4)
        arrivals = [(n * TICK + rng.uniform(0, 0.06), n) for n in range(100)]
        Simulation(shaky).run(arrivals, 104)
        self.assertGreater(shaky.target, shaky.min_delay)
        self.assertLessEqual(shaky.target, shaky.max_delay)

    def test_overflow(self) -> None:
        """Beyond max_chunks packets the buffer refuses more."""
        buffer = JitterBuffer(max_chunks=4, max_delay=100 * F)
        kept = [buffer.push(n * F, frame(n), 0.0) for n in range(6)]
        self.assertEqual(kept, [True] * 4 + [False] * 2)
        self.assertEqual(buffer.overflow, 2)

    def test_reset_and_bounds(self) -> None:
        """reset forgets everything; bad delays are refused; empty packets ignored."""
        buffer = JitterBuffer()
        buffer.push(0, frame(0), 0.0)
        buffer.reset()
        self.assertIsNone(buffer.pop())
        self.assertEqual(buffer.depth, 0)
        self.assertFalse(buffer.push(0, np.zeros(0, dtype=np.int16), 0.0))
        self.assertRaises(ValueError, JitterBuffer, min_delay=0)
        self.assertRaises(ValueError, JitterBuffer, min_delay=400, max_delay=200)
