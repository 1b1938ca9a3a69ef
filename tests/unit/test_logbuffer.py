"""
Tests for L{conference.logbuffer}: twistd's text log written in batches,
warnings at once, everything written when the service stops.
"""

from __future__ import annotations

import io
from typing import Any, List

from twisted.internet.task import Clock
from twisted.logger import (
    FileLogObserver,
    LogLevel,
    LogPublisher,
    jsonFileLogObserver,
    textFileLogObserver,
)
from twisted.trial.unittest import SynchronousTestCase

from conference import logbuffer
from conference.logbuffer import BatchedWriter, batch_text_observers
from conference.logtext import speed_up_text_observers
from tests.unit.test_logtext import summary_event, twisted_text


class CountingFile(io.StringIO):
    """A text file that counts the writes and flushes it gets."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: List[str] = []
        self.flushes = 0

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)

    def flush(self) -> None:
        self.flushes += 1


class BinaryFile:
    """A binary file like twistd's LogFile: bytes in, counted."""

    def __init__(self) -> None:
        self.writes: List[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def flush(self) -> None:
        pass


class BatchedWriterTests(SynchronousTestCase):
    """
    L{BatchedWriter} holds lines until its interval ends, then writes them
    in one call.
    """

    def test_one_write_per_interval(self) -> None:
        """Lines written within the interval reach the file together when it ends."""
        out, clock = CountingFile(), Clock()
        writer = BatchedWriter(out, clock, 0.05)
        for line in ("a\n", "b\n", "c\n"):
            writer.write(line)
            writer.flush()  # as the observer does after every line
        self.assertEqual(out.writes, [])
        clock.advance(0.049)
        self.assertEqual(out.writes, [])
        clock.advance(0.001)
        self.assertEqual((out.writes, out.flushes), (["a\nb\nc\n"], 1))
        writer.write("d\n")
        clock.advance(0.05)
        self.assertEqual(out.writes, ["a\nb\nc\n", "d\n"])

    def test_bytes(self) -> None:
        """A binary file gets the lines' bytes joined."""
        out, clock = BinaryFile(), Clock()
        writer = BatchedWriter(out, clock, 0.05)
        writer.write(b"a\n")
        writer.write(b"b\n")
        clock.advance(0.05)
        self.assertEqual(out.writes, [b"a\nb\n"])

    def test_limit(self) -> None:
        """A batch that reaches BATCH_LIMIT is written at once, and its timer cancelled."""
        self.patch(logbuffer, "BATCH_LIMIT", 10)
        out, clock = CountingFile(), Clock()
        writer = BatchedWriter(out, clock, 0.05)
        writer.write("12345\n")
        writer.write("67890\n")
        self.assertEqual(out.writes, ["12345\n67890\n"])
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_flush_now_empty(self) -> None:
        """Nothing held, nothing written."""
        out = CountingFile()
        BatchedWriter(out, Clock(), 0.05).flush_now()
        self.assertEqual((out.writes, out.flushes), ([], 0))


def text_publisher(out: Any) -> LogPublisher:
    """A publisher with twistd's text observer on C{out}, sped up as the service does."""
    publisher = LogPublisher()
    publisher.addObserver(textFileLogObserver(out))
    speed_up_text_observers(publisher)
    return publisher


class BatchTextObserversTests(SynchronousTestCase):
    """
    L{batch_text_observers} batches twistd's text observers only, writes
    warnings at once, and gives everything back on L{logbuffer.Batches.stop}.
    """

    def test_same_text_later(self) -> None:
        """The lines are those the observer wrote before, written when the interval ends."""
        out, clock = CountingFile(), Clock()
        publisher = text_publisher(out)
        batches = batch_text_observers(publisher, clock, 0.05)
        self.assertEqual(len(batches.writers), 1)
        publisher(summary_event())
        publisher(summary_event())
        self.assertEqual(out.getvalue(), "")
        clock.advance(0.05)
        self.assertEqual(out.getvalue(), twisted_text(summary_event()) * 2)
        self.assertEqual(len(out.writes), 1)

    def test_warning_at_once(self) -> None:
        """A warning is written at once, after the lines held before it."""
        out, clock = CountingFile(), Clock()
        publisher = text_publisher(out)
        batch_text_observers(publisher, clock, 0.05)
        warn = {**summary_event(), "log_level": LogLevel.warn}
        publisher(summary_event())
        publisher(warn)
        self.assertEqual(out.getvalue(), twisted_text(summary_event()) + twisted_text(warn))

    def test_odd_level_held(self) -> None:
        """An event whose level is not a LogLevel is held like any other, without error."""
        out, clock = CountingFile(), Clock()
        publisher = text_publisher(out)
        batch_text_observers(publisher, clock, 0.05)
        publisher({**summary_event(), "log_level": LogLevel.info})
        batches_urgent = publisher._observers[-1]
        batches_urgent({"log_level": "loud"})
        self.assertEqual(out.getvalue(), "")
        clock.advance(0.05)
        self.assertEqual(out.getvalue(), twisted_text(summary_event()))

    def test_stop(self) -> None:
        """Stopping writes what is held and lets the observer write each line again."""
        out, clock = CountingFile(), Clock()
        publisher = text_publisher(out)
        batches = batch_text_observers(publisher, clock, 0.05)
        publisher(summary_event())
        batches.stop()
        self.assertEqual(out.getvalue(), twisted_text(summary_event()))
        self.assertEqual(clock.getDelayedCalls(), [])
        publisher(summary_event())
        self.assertEqual(len(out.writes), 2)  # straight through
        self.assertEqual(len(publisher._observers), 1)  # the warning watch is gone

    def test_others_left_alone(self) -> None:
        """JSON, custom and not-yet-sped-up observers are not batched; nor is any at 0."""
        publisher = LogPublisher()
        publisher.addObserver(jsonFileLogObserver(io.StringIO()))
        publisher.addObserver(FileLogObserver(io.StringIO(), lambda event: "x\n"))
        publisher.addObserver(textFileLogObserver(io.StringIO()))
        self.assertEqual(batch_text_observers(publisher, Clock(), 0.05).writers, [])
        speed_up_text_observers(publisher)
        self.assertEqual(batch_text_observers(publisher, Clock(), 0.0).writers, [])
        self.assertEqual(len(publisher._observers), 3)

    def test_not_twice(self) -> None:
        """An observer already batched is not wrapped again."""
        publisher = text_publisher(CountingFile())
        clock = Clock()
        self.assertEqual(len(batch_text_observers(publisher, clock, 0.05).writers), 1)
        self.assertEqual(batch_text_observers(publisher, clock, 0.05).writers, [])
