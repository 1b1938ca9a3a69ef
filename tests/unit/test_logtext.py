# -*- test-case-name: tests.unit.test_logtext -*-
"""
Tests for L{conference.logtext}.
"""

from __future__ import annotations

import io
from typing import Any, Dict, List

from hypothesis import given
from hypothesis import strategies as st
from twisted.logger import (
    FileLogObserver,
    LogLevel,
    LogPublisher,
    formatEventAsClassicLogText,
    formatTime,
    jsonFileLogObserver,
    textFileLogObserver,
    timeFormatRFC3339,
)
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from conference import logtext
from conference.logtext import ClassicText, speed_up_text_observers

WHEN = 1_780_000_000.25


def twisted_text(event: Dict[str, Any], time_format: Any = timeFormatRFC3339) -> Any:
    """What Twisted's own text observer writes for C{event}."""
    return formatEventAsClassicLogText(event, formatTime=lambda e: formatTime(e, time_format))


def summary_event(**extra: Any) -> Dict[str, Any]:
    """A per-transaction event as conference.transport.server logs it."""
    event: Dict[str, Any] = {
        "log_format": "{transaction_summary}",
        "transaction_summary": "OPTIONS sip:a@b from 127.0.0.1:5/UDP -> 200 (0.1 ms) call-id=x",
        "log_time": WHEN,
        "log_namespace": "conference.transport.server",
        "log_level": LogLevel.info,
        "status": 200,
    }
    event.update(extra)
    return event


class ClassicTextTests(SynchronousTestCase):
    """
    ClassicText writes what formatEventAsClassicLogText writes.
    """

    def test_summary(self) -> None:
        """The per-transaction summary comes out as Twisted formats it."""
        event = summary_event()
        self.assertEqual(ClassicText()(event), twisted_text(event))

    def test_summary_multiline(self) -> None:
        """Continuation lines of a summary are indented as Twisted does."""
        event = summary_event(transaction_summary="one\ntwo\nthree")
        self.assertEqual(ClassicText()(event), twisted_text(event))

    def test_other_events(self) -> None:
        """Other events (system, failure, no time, no format) come out unchanged."""
        failure = Failure(ValueError("bad"))
        events: List[Dict[str, Any]] = [
            {"log_format": "hello {x}", "x": 3, "log_time": WHEN, "log_level": LogLevel.warn},
            {"log_format": "hi", "log_time": WHEN, "log_system": "udp"},
            {"log_format": "hi", "log_namespace": "n"},
            {"log_time": WHEN},
            summary_event(log_failure=failure),
            summary_event(log_system="sys"),
            summary_event(transaction_summary=""),
            summary_event(log_level=None),
        ]
        for event in events:
            self.assertEqual(ClassicText()(event), twisted_text(event))

    def test_plain_formats(self) -> None:
        """Formats with fields, conversions, specs, attributes, calls or errors match Twisted's."""

        class Thing:
            name = "thing"

            def __repr__(self) -> str:
                return "<Thing>"

        base = {
            "log_time": WHEN,
            "log_namespace": "conference.app.focus",
            "log_level": LogLevel.info,
        }
        formats = [
            "{who} joined {uri} ({n} in)",
            "{s:.0f} s left, {ratio:.1%}",
            "{thing!r} and {thing.name} and {thing}",
            "{{literal}} {who}",
            "{missing} is not there",
            "{who.nothing} fails",
            "{thing.name()} is a call",
            "line one {who}\nline two",
            "",
            "{bad",
        ]
        for fmt in formats:
            event = {
                **base,
                "log_format": fmt,
                "who": "sip:a@example.com",
                "uri": "sip:room@example.com",
                "n": 3,
                "s": 12.6,
                "ratio": 0.25,
                "thing": Thing(),
            }
            self.assertEqual(ClassicText()(event), twisted_text(event), fmt)

    def test_parentheses_plain(self) -> None:
        """Literal parentheses take the plain path; only a field call goes to Twisted's."""
        used: List[Dict[str, Any]] = []

        def twisted(event: Dict[str, Any], formatTime: Any) -> Any:
            used.append(event)
            return formatEventAsClassicLogText(event, formatTime=formatTime)

        self.patch(logtext, "formatEventAsClassicLogText", twisted)
        joined = {**summary_event(), "log_format": "{who} joined ({n} in)", "who": "a", "n": 2}
        called = {**summary_event(), "log_format": "{who.upper()} left", "who": "a"}
        text = ClassicText()
        self.assertEqual(text(joined), twisted_text(joined))
        self.assertEqual(used, [])
        self.assertEqual(text(called), twisted_text(called))
        self.assertEqual(used, [called])

    @given(st.text(max_size=40), st.text(max_size=20))
    def test_plain_any_text(self, fmt: str, value: str) -> None:
        """Any format text and value come out as Twisted writes them."""
        event = {
            "log_time": WHEN,
            "log_namespace": "n",
            "log_level": LogLevel.info,
            "log_format": fmt,
            "v": value,
        }
        self.assertEqual(ClassicText()(event), twisted_text(event))

    def test_time_per_second(self) -> None:
        """The time stamp follows the second, including a custom format."""
        formatter = ClassicText("%H:%M:%S")
        for when in (WHEN, WHEN + 0.5, WHEN + 1.0, WHEN - 3600):
            self.assertEqual(formatter.format_time(when), formatTime(when, "%H:%M:%S"))
        self.assertEqual(ClassicText(None).format_time(WHEN), "-")
        self.assertEqual(ClassicText().format_time(None), "-")
        fine = ClassicText("%S.%f")
        self.assertEqual(fine.format_time(WHEN), formatTime(WHEN, "%S.%f"))


class SpeedUpTests(SynchronousTestCase):
    """
    speed_up_text_observers changes only twistd's text observers.
    """

    def test_text_observer(self) -> None:
        """A text observer gets ClassicText and writes the same lines."""
        out = io.StringIO()
        publisher = LogPublisher()
        observer = textFileLogObserver(out, timeFormat="%Y %H:%M:%S")
        publisher.addObserver(observer)
        self.assertEqual(speed_up_text_observers(publisher), 1)
        self.assertIsInstance(observer.formatEvent, ClassicText)
        publisher(summary_event())
        self.assertEqual(out.getvalue(), twisted_text(summary_event(), "%Y %H:%M:%S"))

    def test_min_level(self) -> None:
        """With a least level, events below it are not written; the others are, unchanged."""
        out = io.StringIO()
        publisher = LogPublisher()
        publisher.addObserver(textFileLogObserver(out))
        self.assertEqual(speed_up_text_observers(publisher, LogLevel.info), 1)
        debug = {**summary_event(), "log_level": LogLevel.debug}
        warn = {**summary_event(), "log_level": LogLevel.warn}
        publisher(debug)
        self.assertEqual(out.getvalue(), "")
        publisher(summary_event())
        publisher(warn)
        self.assertEqual(out.getvalue(), twisted_text(summary_event()) + twisted_text(warn))

    def test_others_left_alone(self) -> None:
        """JSON and custom-format file observers are not changed."""
        publisher = LogPublisher()
        json_observer = jsonFileLogObserver(io.StringIO())
        custom = FileLogObserver(io.StringIO(), lambda event: "x\n")
        publisher.addObserver(json_observer)
        publisher.addObserver(custom)
        before = (json_observer.formatEvent, custom.formatEvent)
        self.assertEqual(speed_up_text_observers(publisher), 0)
        self.assertEqual((json_observer.formatEvent, custom.formatEvent), before)
