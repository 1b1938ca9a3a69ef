# -*- test-case-name: tests.unit.calendar.test_ical -*-
"""
Tests for L{conference.calendar.ical}: RFC 5545 text to and from the
model, VALUE and ENCODING handling, unknown properties, folding and
precise errors.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from twisted.trial.unittest import SynchronousTestCase

from conference.calendar import ical, xcal
from conference.calendar import values as cv
from conference.calendar.errors import ICalendarError
from conference.calendar.model import Component, Property, new_calendar
from conference.calendar.xcal_reader import MAX_NESTING
from tests.unit.calendar.support import UTC, calendars, conference_event, request, xcal_file


def cal(*lines: str) -> str:
    """
    A VCALENDAR with the given content lines, CRLF-terminated.
    """
    return "\r\n".join(["BEGIN:VCALENDAR", *lines, "END:VCALENDAR", ""])


class ReadTests(SynchronousTestCase):
    """
    Reading iCalendar text.
    """

    def test_rfc_example(self) -> None:
        """RFC 6321 B.1.1 reads into a typed model."""
        comp = ical.load_calendar(
            xcal_file("examples-rfc6321", "rfc6321-B.1.1-example1.ics").read_text()
        )
        event = comp.subcomponents("VEVENT")[0]
        self.assertEqual(event.value("DTSTART"), date(2008, 10, 6))
        self.assertEqual(event.value("DTSTAMP"), datetime(2008, 2, 5, 19, 12, 24, tzinfo=UTC))
        self.assertEqual(event.value("SUMMARY"), "Planning meeting")

    def test_value_param_sets_type(self) -> None:
        """VALUE selects the type and is not kept as a parameter."""
        prop = ical.load_calendar(cal("X-N;VALUE=INTEGER:42")).get("X-N")
        assert prop is not None
        self.assertEqual((prop.value_type, prop.values, prop.params), (cv.INTEGER, [42], {}))

    def test_unknown_property_kept_raw(self) -> None:
        """A property of unknown type without VALUE is UNKNOWN, value unprocessed."""
        prop = ical.load_calendar(cal("X-THING:a\\,b;c")).get("X-THING")
        assert prop is not None
        self.assertEqual((prop.value_type, prop.value), (cv.UNKNOWN, "a\\,b;c"))
        self.assertIn("X-THING:a\\,b;c", ical.dumps(ical.load_calendar(cal("X-THING:a\\,b;c"))))

    def test_text_unescaped(self) -> None:
        """TEXT escapes are undone; multi-valued TEXT splits on unescaped commas only."""
        comp = ical.load_calendar(cal("SUMMARY:a\\, b\\; c\\nd\\\\", "CATEGORIES:x\\,y,z"))
        self.assertEqual(comp.value("SUMMARY"), "a, b; c\nd\\")
        self.assertEqual(comp.get("CATEGORIES").values, ["x,y", "z"])  # type: ignore[union-attr]

    def test_base64_non_binary_decoded(self) -> None:
        """ENCODING=BASE64 on a non-binary value is decoded (RFC 6321 section 3.1)."""
        prop = ical.load_calendar(cal("SUMMARY;ENCODING=BASE64:SGVsbG8=")).get("SUMMARY")
        assert prop is not None
        self.assertEqual((prop.value, prop.params), ("Hello", {}))

    def test_binary_kept(self) -> None:
        """BINARY values decode to bytes and are written back with VALUE and ENCODING."""
        text = cal("ATTACH;VALUE=BINARY;ENCODING=BASE64;FMTTYPE=text/plain:SGVsbG8=")
        prop = ical.load_calendar(text).get("ATTACH")
        assert prop is not None
        self.assertEqual((prop.value, prop.params), (b"Hello", {"FMTTYPE": ("text/plain",)}))
        line = ical.property_line(prop)
        self.assertIn("VALUE=BINARY", line)
        self.assertIn("ENCODING=BASE64", line)

    def test_lenient_date_and_period(self) -> None:
        """A date or period without VALUE (as sabre writes them) is still typed right."""
        comp = ical.load_calendar(cal("RDATE:20081006,20091006", "FREEBUSY:20110517T120000Z/P1H"))
        self.assertEqual(comp.get("RDATE").value_type, cv.DATE)  # type: ignore[union-attr]
        fb = comp.get("FREEBUSY")
        assert fb is not None
        self.assertEqual(fb.value.duration, timedelta(hours=1))

    def test_geo_and_request_status(self) -> None:
        """GEO and REQUEST-STATUS read as their structured parts."""
        comp = ical.load_calendar(cal("GEO:37.5;-122.25", "REQUEST-STATUS:2.8;Ok\\, x;A:b\\;c"))
        self.assertEqual(comp.get("GEO").values, [37.5, -122.25])  # type: ignore[union-attr]
        rs = comp.get("REQUEST-STATUS")
        assert rs is not None
        self.assertEqual(rs.values, ["2.8", "Ok, x", "A:b;c"])

    def test_parameters_quoted_and_caret(self) -> None:
        """Quoted parameter values and RFC 6868 caret escapes are read."""
        comp = ical.load_calendar(
            cal('ATTENDEE;CN="Doe, ^\'J^\'";DELEGATED-TO="mailto:a@x","mailto:b@x":mailto:c@x')
        )
        att = comp.get("ATTENDEE")
        assert att is not None
        self.assertEqual(att.param("CN"), 'Doe, "J"')
        self.assertEqual(att.params["DELEGATED-TO"], ("mailto:a@x", "mailto:b@x"))

    def test_several_calendars(self) -> None:
        """A stream may hold several VCALENDARs."""
        self.assertEqual(len(ical.loads(cal("PRODID:a") + cal("PRODID:b"))), 2)


class WriteTests(SynchronousTestCase):
    """
    Writing iCalendar text.
    """

    def test_value_added_when_not_default(self) -> None:
        """VALUE is written only when the type is not the property's default."""
        comp = new_calendar()
        comp.add("DTSTART", date(2024, 1, 2))
        comp.add("DTEND", datetime(2024, 1, 2, 10, 0))
        text = ical.dumps(comp)
        self.assertIn("DTSTART;VALUE=DATE:20240102", text)
        self.assertIn("DTEND:20240102T100000", text)

    def test_folding(self) -> None:
        """Long lines are folded at 75 octets and unfold to the same value."""
        comp = new_calendar()
        comp.add("DESCRIPTION", "é" * 120)
        text = ical.dumps(comp)
        self.assertTrue(all(len(line.encode()) <= 75 for line in text.split("\r\n")))
        self.assertEqual(ical.load_calendar(text), comp)

    def test_parameter_quoting(self) -> None:
        """Parameter values with delimiters, spaces or backslashes are quoted."""
        prop = Property(
            "ATTENDEE", "mailto:a@x", {"CN": "A; B", "X-P": " sp", "X-Q": "a\\b", "X-R": "0 ="}
        )
        line = ical.property_line(prop)
        self.assertIn('CN="A; B"', line)
        self.assertIn('X-P=" sp"', line)
        self.assertIn('X-Q="a\\b"', line)
        self.assertEqual(
            ical.load_calendar(ical.dumps(new_calendar(components=[Component("VEVENT", [prop])])))
            .components[0]
            .get("ATTENDEE"),
            prop,
        )

    def test_conference_event(self) -> None:
        """A conference VEVENT survives text; CONFERENCE carries VALUE=URI (RFC 7986)."""
        comp = request(conference_event())
        text = ical.dumps(comp)
        self.assertIn("CONFERENCE;FEATURE=AUDIO,VIDEO;LABEL=Bridge;VALUE=URI:sip:conf-1", text)
        self.assertEqual(ical.load_calendar(text), comp)

    def test_bad_names_refused(self) -> None:
        """Names iCalendar cannot carry are refused."""
        comp = new_calendar()
        comp.properties.append(Property("BAD NAME", "x"))
        self.assertRaises(ICalendarError, ical.dumps, comp)
        self.assertRaises(ICalendarError, ical.dumps, Component("A B"))

    @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
    @given(calendars())
    def test_round_trip(self, comp: Component) -> None:
        """iCal -> model -> iCal -> model is stable and agrees with xCal."""
        text = ical.dumps(comp)
        again = ical.load_calendar(text)
        self.assertEqual(again, comp)
        self.assertEqual(ical.dumps(again), text)
        self.assertEqual(xcal.load_calendar(xcal.dumps(again)), comp)


class ErrorTests(SynchronousTestCase):
    """
    Bad text gets an ICalendarError naming the line.
    """

    def check(self, text: str, where: str, fault: str) -> None:
        """Assert reading C{text} fails at C{where} with C{fault}."""
        error = self.assertRaises(ICalendarError, ical.loads, text)
        self.assertIn(where, str(error.where))
        self.assertIn(fault, error.fault)

    def test_bad_value(self) -> None:
        """A bad date-time names its line and property."""
        self.check(cal("DTSTART:2024-01-01"), "line 2 (DTSTART)", "not a valid DATE-TIME")

    def test_unbalanced(self) -> None:
        """END without matching BEGIN, and BEGIN never ended, are refused."""
        self.check("BEGIN:VCALENDAR\r\nEND:VEVENT\r\n", "line 2", "closes VCALENDAR")
        self.check("BEGIN:VCALENDAR\r\n", "end of text", "never ended")

    def test_property_outside(self) -> None:
        """A property before any BEGIN is refused."""
        self.check("VERSION:2.0\r\n", "line 1", "outside any component")

    def test_unknown_value_type(self) -> None:
        """An unknown VALUE type is refused."""
        self.check(cal("X-A;VALUE=BOGUS:1"), "line 2", "unknown VALUE type")

    def test_bad_base64(self) -> None:
        """Undecodable ENCODING=BASE64 is refused."""
        self.check(cal("SUMMARY;ENCODING=BASE64:***"), "line 2", "not base64")

    def test_not_utf8(self) -> None:
        """Bytes that are not UTF-8 are refused."""
        error = self.assertRaises(ICalendarError, ical.loads, b"BEGIN:VCALENDAR\r\n\xff\r\n")
        self.assertIn("not UTF-8", str(error))

    def test_too_long(self) -> None:
        """Text over the limit is refused."""
        error = self.assertRaises(ICalendarError, ical.loads, cal("X-A:" + "a" * 100), 50)
        self.assertIn("limit is 50", str(error))

    def test_malformed_line(self) -> None:
        """A content line without a name is refused."""
        self.check(cal(";;;"), "line 2", "malformed content line")

    def test_geo_shape(self) -> None:
        """GEO needs two floats."""
        self.check(cal("GEO:1.0"), "line 2", "latitude;longitude")

    def test_one_calendar(self) -> None:
        """load_calendar insists on exactly one VCALENDAR."""
        self.assertRaises(ICalendarError, ical.load_calendar, cal() + cal())

    def test_nesting(self) -> None:
        """Components nested deeper than the stored xCal form can hold are refused."""

        def nested(levels: int) -> str:
            opened = "".join("BEGIN:VALARM\r\n" for _ in range(levels))
            closed = "".join("END:VALARM\r\n" for _ in range(levels))
            return "BEGIN:VCALENDAR\r\n" + opened + closed + "END:VCALENDAR\r\n"

        (calendar,) = ical.loads(nested(MAX_NESTING - 1))
        stored = xcal.dumps(calendar)
        self.assertEqual(xcal.loads(stored), [calendar])
        for levels in (MAX_NESTING, 600):
            error = self.assertRaises(ICalendarError, ical.loads, nested(levels))
            self.assertIn(f"nested deeper than {MAX_NESTING}", error.fault)
