# -*- test-case-name: tests.unit.test_logbuffer -*-
"""
twistd's text log written in batches.

The server logs one line per transaction, and twistd's text observer
writes each line to an unbuffered file and flushes it, under a lock:
one system call per line, a few percent of the CPU of a request at
thousands a second.  L{batch_text_observers} gives those observers (the
ones L{conference.logtext.speed_up_text_observers} recognised as twistd's)
a
L{BatchedWriter}, which collects the lines and writes them in one call
at most L{BatchedWriter.interval} seconds after the first of a batch (as
access logs with a flush interval do), at once for warnings and worse,
and when the service stops.  A process killed outright loses at most
that interval's lines; every other way out writes them.
"""

from __future__ import annotations

from typing import Any, List, Optional, Union

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import FileLogObserver, ILogObserver, LogLevel, LogPublisher
from zope.interface import implementer

from conference.logtext import ClassicText

#: Write a batch once it holds this many characters or bytes, whatever the
#: interval: a burst of lines is not held in memory.
BATCH_LIMIT = 64 * 1024

# Events at these levels are written at once, with what came before
# them: what an operator looks for first is never held back.  A set, so
# that an event with a stray level value is simply not one of them.
_URGENT = frozenset({LogLevel.warn, LogLevel.error, LogLevel.critical})


class BatchedWriter:
    """
    A file for a text log observer that holds what is written until
    L{flush_now}, which a timer calls L{interval} seconds after the first
    line of each batch.  L{flush} (which the observer calls after every
    line) does nothing, since the batch decides when to write.
    """

    def __init__(self, out: Any, clock: IReactorTime, interval: float) -> None:
        """
        @param out: the observer's file (text or binary, as the observer
            writes to it).
        @param interval: the most seconds a line waits, above zero.
        """
        self.out = out
        self.interval = interval
        self._clock = clock
        self._parts: List[Union[str, bytes]] = []
        self._size = 0
        self._call: Optional[IDelayedCall] = None

    def write(self, data: Union[str, bytes]) -> None:
        """
        Keep C{data} for the next batch.
        """
        self._parts.append(data)
        self._size += len(data)
        if self._size >= BATCH_LIMIT:
            self.flush_now()
        elif self._call is None:
            self._call = self._clock.callLater(self.interval, self._timed_out)

    def flush(self) -> None:
        """
        Nothing: the batch is written by L{flush_now}.
        """

    def _timed_out(self) -> None:
        self._call = None
        self.flush_now()

    def flush_now(self) -> None:
        """
        Write what is held in one call and flush the file.
        """
        call, self._call = self._call, None
        if call is not None and call.active():
            call.cancel()
        parts, self._parts, self._size = self._parts, [], 0
        if not parts:
            return
        if isinstance(parts[0], bytes):
            self.out.write(b"".join(parts))  # type: ignore[arg-type]
        else:
            self.out.write("".join(parts))  # type: ignore[arg-type]
        self.out.flush()


@implementer(ILogObserver)
class _UrgentFlush:
    """
    An observer after the batched ones: writes their batches at once when
    a warning or worse was logged.
    """

    def __init__(self, writers: List[BatchedWriter]) -> None:
        self.writers = writers

    def __call__(self, event: Any) -> None:
        if event.get("log_level") in _URGENT:
            for writer in self.writers:
                writer.flush_now()


class Batches:
    """
    The observers L{batch_text_observers} changed, to write out and give
    back their files when the service stops (L{stop}).
    """

    def __init__(
        self,
        publisher: LogPublisher,
        observers: List[FileLogObserver],
        writers: List[BatchedWriter],
    ) -> None:
        self.publisher = publisher
        self.observers = observers
        self.writers = writers
        self._urgent = _UrgentFlush(writers)
        if writers:
            publisher.addObserver(self._urgent)

    def stop(self) -> None:
        """
        Write every batch and let the observers write directly again.
        """
        for observer, writer in zip(self.observers, self.writers):
            writer.flush_now()
            observer._outFile = writer.out
        if self.writers:
            self.publisher.removeObserver(self._urgent)
        self.observers, self.writers = [], []


def batch_text_observers(publisher: LogPublisher, clock: IReactorTime, interval: float) -> Batches:
    """
    Give every text observer of twistd's among C{publisher}'s observers
    (a L{FileLogObserver} formatting with L{ClassicText}, as
    L{conference.logtext.speed_up_text_observers} leaves them) a
    L{BatchedWriter} of C{interval} seconds; none when C{interval} is zero
    or less.  Other observers (JSON, syslog, an embedder's) are left alone.

    @return: what was changed, to L{Batches.stop} when the service stops.
    """
    observers: List[FileLogObserver] = []
    writers: List[BatchedWriter] = []
    if interval > 0:
        for observer in list(getattr(publisher, "_observers", ())):
            if not isinstance(observer, FileLogObserver):
                continue
            out = getattr(observer, "_outFile", None)
            if not isinstance(observer.formatEvent, ClassicText) or isinstance(out, BatchedWriter):
                continue
            if not callable(getattr(out, "write", None)) or not callable(
                getattr(out, "flush", None)
            ):
                continue
            writer = BatchedWriter(out, clock, interval)
            observer._outFile = writer  # type: ignore[assignment]
            observers.append(observer)
            writers.append(writer)
    return Batches(publisher, observers, writers)
