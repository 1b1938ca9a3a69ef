# -*- test-case-name: tests.unit.test_logtext -*-
"""
A cheaper formatter for twistd's text log, with the same output.

The server logs one info event per transaction.  Under load, Twisted's
classic text formatter costs more than answering an OPTIONS: for every
event it builds a time zone and a C{datetime} and runs C{strftime}, looks
the system up through C{str.format}, and formats the message through
C{string.Formatter}.  L{ClassicText} writes the very same text
(C{"{time} [{system}] {message}\\n"}, continuation lines indented), but
formats the time once per second, the system once per logger, and the
message with C{str.format_map} when its format calls nothing (Twisted's
formatter adds only the C{"{f()}"} call syntax to C{str.format}).  Other
events go through Twisted's formatter with the cached time.

twistd builds its observer before the service exists;
L{speed_up_text_observers} gives twistd's text observers (and only those,
recognized by their formatter) this formatter when the service starts.
"""

from __future__ import annotations

from string import Formatter
from typing import Any, Callable, Dict, Iterable, Optional, Tuple

from twisted.logger import (
    FileLogObserver,
    LogLevel,
    LogPublisher,
    formatEventAsClassicLogText,
    formatTime,
    timeFormatRFC3339,
)

#: Formats remembered as calling something or not, at most.
MAX_FORMATS = 1000

# The closure twisted.logger.textFileLogObserver gives its observers.
_TWISTED_FORMATTER = "textFileLogObserver.<locals>.formatEvent"


class ClassicText:
    """
    Format events exactly as C{formatEventAsClassicLogText} with
    C{timeFormat} does, remembering the last second's time stamp and each
    logger's system text.
    """

    def __init__(
        self, time_format: Optional[str] = timeFormatRFC3339, min_level: Optional[LogLevel] = None
    ) -> None:
        """
        @param min_level: events below this level are not written (the
            server's C{--log-level}); L{None} writes every event.
        """
        self.time_format = time_format
        self.min_level = min_level
        self._second: Optional[int] = None
        self._stamp = "-"
        self._systems: Dict[Tuple[Any, Any], str] = {}
        self._plain_formats: Dict[str, bool] = {}

    def format_time(self, when: Optional[float]) -> str:
        """
        C{formatTime(when, time_format)}, computed once per whole second
        (the format has no finer field than seconds; a format that might,
        such as one with C{%f}, is not cached).
        """
        if when is None or self.time_format is None:
            return "-"
        if "%f" in self.time_format:
            return formatTime(when, self.time_format)
        second = int(when // 1)
        if second != self._second:
            self._stamp = formatTime(second, self.time_format)
            self._second = second
        return self._stamp

    def _system(self, event: Dict[str, Any]) -> Optional[str]:
        """
        The C{[system]} text of C{event} when it is the usual namespace and
        level, else None (then Twisted's formatter says it).
        """
        if "log_system" in event:
            return None
        key = (event.get("log_namespace", "-"), event.get("log_level"))
        system = self._systems.get(key)
        if system is None:
            namespace, level = key
            if not isinstance(namespace, str) or "\n" in namespace or len(self._systems) > 1000:
                return None
            system = f"{namespace}#{'-' if level is None else level.name}"
            self._systems[key] = system
        return system

    def __call__(self, event: Dict[str, Any]) -> Optional[str]:
        if self.min_level is not None:
            level = event.get("log_level")
            if isinstance(level, type(self.min_level)) and level < self.min_level:
                return None
        text = self._plain(event)
        if text is not None:
            return text
        return formatEventAsClassicLogText(event, formatTime=self.format_time)

    def _calls_nothing(self, fmt: str) -> bool:
        """
        Whether C{str.format_map} formats C{fmt} as Twisted's formatter
        does: no field calls (C{"{f()}"}) and the format parses; decided
        once per format text.
        """
        plain = self._plain_formats.get(fmt)
        if plain is None:
            try:
                fields = [field for _, field, _, _ in Formatter().parse(fmt) if field]
            except ValueError:
                fields = ["()"]
            plain = not any("()" in field for field in fields)
            if len(self._plain_formats) < MAX_FORMATS:
                self._plain_formats[fmt] = plain
        return plain

    def _plain(self, event: Dict[str, Any]) -> Optional[str]:
        """
        The line of an event Twisted's formatter would write the same way
        with C{str.format_map}: a text format calling nothing, no failure,
        nothing flattened, a cached system; L{None} otherwise, or when
        formatting fails (Twisted's formatter then says so).
        """
        fmt = event.get("log_format")
        if (
            not isinstance(fmt, str)
            or "log_failure" in event
            or "log_flattened" in event
            or "log_time" not in event
        ):
            return None
        system = self._system(event)
        if system is None or not self._calls_nothing(fmt):
            return None
        try:
            message = fmt.format_map(event)
        except Exception:  # Twisted's formatter reports what went wrong
            return None
        if not message:
            return None
        text = f"{self.format_time(event['log_time'])} [{system}] {message}\n"
        if "\n" in message:
            text = text[:-1].replace("\n", "\n\t") + "\n"
        return text


def _twisted_time_format(format_event: Callable[..., Any]) -> Tuple[bool, Optional[str]]:
    """
    Whether C{format_event} is the formatter C{textFileLogObserver} made,
    and the time format it closes over.
    """
    if getattr(format_event, "__qualname__", None) != _TWISTED_FORMATTER:
        return False, None
    code = getattr(format_event, "__code__", None)
    closure = getattr(format_event, "__closure__", None)
    if code is None or closure is None or "timeFormat" not in code.co_freevars:
        return False, None
    try:
        value = closure[code.co_freevars.index("timeFormat")].cell_contents
    except ValueError:  # an empty cell
        return False, None
    if value is not None and not isinstance(value, str):
        return False, None
    return True, value


def speed_up_text_observers(publisher: LogPublisher, min_level: Optional[LogLevel] = None) -> int:
    """
    Give every text observer C{textFileLogObserver} made among
    C{publisher}'s observers a L{ClassicText} with the same time format
    (and C{min_level}); other observers (JSON, syslog, custom ones) are
    left alone.

    @return: how many observers were changed.
    """
    changed = 0
    observers: Iterable[Any] = getattr(publisher, "_observers", ())
    for observer in list(observers):
        if not isinstance(observer, FileLogObserver):
            continue
        ours, time_format = _twisted_time_format(observer.formatEvent)
        if ours:
            observer.formatEvent = ClassicText(time_format, min_level)
            changed += 1
    return changed
