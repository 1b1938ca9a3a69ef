# -*- test-case-name: tests.unit.calendar.test_values -*-
"""
Tests for L{conference.calendar.values}: every value type in its iCalendar
and xCal spelling, errors, and hypothesis round trips of the parsers.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from conference.calendar import values as cv
from conference.calendar.errors import CalendarValueError
from tests.unit.calendar.support import UTC, recurs


class SpellingTests(SynchronousTestCase):
    """
    Both spellings of each type.
    """

    def test_pairs(self) -> None:
        """Each (type, iCalendar text, xCal text, value) parses and formats both ways."""
        cases: Any = [
            (cv.DATE, "20110517", "2011-05-17", date(2011, 5, 17)),
            (cv.DATE_TIME, "20110517T120000", "2011-05-17T12:00:00", datetime(2011, 5, 17, 12)),
            (
                cv.DATE_TIME,
                "20110517T120000Z",
                "2011-05-17T12:00:00Z",
                datetime(2011, 5, 17, 12, tzinfo=UTC),
            ),
            (cv.TIME, "120000", "12:00:00", time(12)),
            (cv.TIME, "120000Z", "12:00:00Z", time(12, tzinfo=UTC)),
            (cv.UTC_OFFSET, "-0500", "-05:00", -timedelta(hours=5)),
            (cv.UTC_OFFSET, "+013015", "+01:30:15", timedelta(hours=1, minutes=30, seconds=15)),
            (cv.BOOLEAN, "TRUE", "true", True),
            (cv.INTEGER, "-42", "-42", -42),
            (cv.FLOAT, "0.5", "0.5", 0.5),
            (cv.BINARY, "SGVsbG8=", "SGVsbG8=", b"Hello"),
            (cv.URI, "http://x/a,b", "http://x/a,b", "http://x/a,b"),
            (cv.CAL_ADDRESS, "mailto:a@b", "mailto:a@b", "mailto:a@b"),
            (cv.TEXT, "a\\, b\\; c\\\\\\nd", "a, b; c\\\nd", "a, b; c\\\nd"),
            (cv.UNKNOWN, "raw\\,x", "raw\\,x", "raw\\,x"),
        ]
        for vtype, text, xml, value in cases:
            self.assertEqual(cv.parse_ical_value(vtype, text), value, (vtype, text))
            self.assertEqual(cv.format_ical_value(vtype, value), text, (vtype, text))
            self.assertEqual(cv.XML_PARSERS[vtype](xml), value, (vtype, xml))
            self.assertEqual(cv.XML_FORMATTERS[vtype](value), xml, (vtype, xml))

    def test_durations(self) -> None:
        """Durations: weeks, days and times, negative, and the xCal spelling."""
        self.assertEqual(cv.parse_duration("P1W"), timedelta(weeks=1))
        self.assertEqual(
            cv.parse_duration("-P1DT2H3M4S"), -timedelta(days=1, hours=2, minutes=3, seconds=4)
        )
        self.assertEqual(cv.parse_duration("P1H"), timedelta(hours=1))  # lenient
        self.assertEqual(cv.format_duration(timedelta(days=14)), "P2W")
        self.assertEqual(cv.format_duration(timedelta(0)), "PT0S")
        self.assertEqual(cv.format_duration(timedelta(days=1, seconds=5)), "P1DT5S")
        self.assertEqual(cv.format_xml_duration(timedelta(minutes=15)), "PT0H15M")
        self.assertEqual(cv.format_xml_duration(timedelta(seconds=30)), "PT0H0M30S")
        self.assertEqual(cv.format_xml_duration(timedelta(days=2)), "P2D")

    def test_period(self) -> None:
        """Periods with an end or a duration; stop computes the end."""
        period = cv.parse_ical_period("20110517T120000Z/PT1H")
        self.assertEqual(period.stop, datetime(2011, 5, 17, 13, tzinfo=UTC))
        self.assertEqual(cv.format_ical_period(period), "20110517T120000Z/PT1H")
        ended = cv.parse_ical_period("20110517T120000/20110518T120000")
        self.assertEqual(ended.end, datetime(2011, 5, 18, 12))

    def test_recur(self) -> None:
        """RECUR parses, keeps BYxxx lists and formats in schema order."""
        recur = cv.parse_recur("BYMONTH=10;FREQ=YEARLY;BYDAY=-1SU,2MO;UNTIL=20200101T000000Z")
        self.assertEqual(recur.by, {"BYMONTH": ("10",), "BYDAY": ("-1SU", "2MO")})
        self.assertEqual(
            cv.format_recur(recur), "FREQ=YEARLY;UNTIL=20200101T000000Z;BYDAY=-1SU,2MO;BYMONTH=10"
        )
        self.assertEqual(cv.recur_items(recur, xml=True)[1], ("UNTIL", "2020-01-01T00:00:00Z"))
        self.assertEqual(recur, cv.parse_recur(cv.format_recur(recur)))
        self.assertIn("FREQ=YEARLY", repr(recur))

    def test_recur_ranges(self) -> None:
        """BYxxx numbers outside RFC 5545's grammar (BYMONTHDAY=0, BYSETPOS=0, ...) are refused."""
        bad = [
            "BYMONTHDAY=0",
            "BYMONTHDAY=32",
            "BYSETPOS=0",
            "BYSETPOS=-367",
            "BYYEARDAY=367",
            "BYWEEKNO=-54",
            "BYMONTH=13",
            "BYMONTH=-1",
            "BYHOUR=24",
            "BYMINUTE=60",
            "BYSECOND=61",
            "BYHOUR=+1",
            "BYDAY=0MO",
            "BYDAY=54SU",
            "BYMONTHDAY=00001",
        ]
        for part in bad:
            with self.assertRaises(CalendarValueError, msg=part):
                cv.parse_recur("FREQ=YEARLY;" + part)
        edges = "FREQ=YEARLY;BYSECOND=60;BYMONTHDAY=-31;BYYEARDAY=-366;BYWEEKNO=53;BYDAY=-53SU"
        recur = cv.parse_recur(edges)
        self.assertEqual(recur.by["BYDAY"], ("-53SU",))
        self.assertEqual(cv.parse_recur(cv.format_recur(recur)), recur)

    def test_float_without_exponent(self) -> None:
        """Tiny and huge floats are written without exponent and read back exactly."""
        for value in (1e-30, 1.5e22, -0.0001):
            text = cv.format_float(value)
            self.assertNotIn("e", text)
            self.assertEqual(float(text), value)

    def test_leap_second(self) -> None:
        """A leap second (60) is accepted as 59, in both spellings."""
        self.assertEqual(cv.parse_ical_date_time("20161231T235960Z").second, 59)
        self.assertEqual(cv.parse_xml_date_time("2016-12-31T23:59:60Z").second, 59)

    def test_xml_date_time_strict(self) -> None:
        """The fast xCal date-time path refuses what the strict one refuses."""
        for bad in (
            "2011-05-17 12:00:00",
            "2011-05-17T1a:00:00Z",
            "2011-05-17T12:00:00+01:00",
            "2011-05-17T12:00:00.5",
            "2011-5-17T12:00:00Z",
            "2011-05-17T12:00:00z",
        ):
            self.assertRaises(CalendarValueError, cv.parse_xml_date_time, bad)
        self.assertEqual(cv.parse_xml_date_time("2011-05-17T12:00:00"), datetime(2011, 5, 17, 12))


class ErrorTests(SynchronousTestCase):
    """
    Malformed values raise CalendarValueError naming value and type.
    """

    def test_errors(self) -> None:
        """Each malformed value is refused with its type named."""
        cases = [
            (cv.DATE, "2011-05-17"),
            (cv.DATE, "20111317"),
            (cv.DATE_TIME, "20110517T1200"),
            (cv.DURATION, "P"),
            (cv.DURATION, "PT"),
            (cv.DURATION, "P1DT"),
            (cv.DURATION, "1H"),
            (cv.UTC_OFFSET, "0500"),
            (cv.UTC_OFFSET, "+0575"),
            (cv.BOOLEAN, "yes"),
            (cv.INTEGER, "4.2"),
            (cv.FLOAT, "nan"),
            (cv.FLOAT, "abc"),
            (cv.BINARY, "***"),
            (cv.TIME, "25:00:00"),
            (cv.PERIOD, "20110517T120000Z"),
            (cv.RECUR, "COUNT=3"),
            (cv.RECUR, "FREQ=DAILY;COUNT=0"),
            (cv.RECUR, "FREQ=DAILY;BYDAY=XX"),
            (cv.RECUR, "FREQ=DAILY;COUNT=1;UNTIL=20200101"),
            (cv.RECUR, "FREQ=DAILY;FREQ=WEEKLY"),
            (cv.RECUR, "FREQ=DAILY;FOO=1"),
            (cv.RECUR, "FREQ=DAILY;BYMONTH=x"),
            (cv.RECUR, "FREQ=DAILY;WKST=XX"),
            (cv.RECUR, "FREQ=DAILY;COUNT"),
            (cv.RECUR, "FREQ=FORTNIGHTLY"),
        ]
        for vtype, text in cases:
            error = self.assertRaises(CalendarValueError, cv.parse_ical_value, vtype, text)
            self.assertIn(vtype, str(error), (vtype, text))
        self.assertRaises(CalendarValueError, cv.parse_ical_value, "NOPE", "x")
        self.assertRaises(CalendarValueError, cv.XML_PARSERS[cv.TIME], "120000")


_UTC_DT = st.datetimes(
    min_value=datetime(1, 1, 1),
    max_value=datetime(9999, 12, 31),
    timezones=st.sampled_from([UTC, None]),
).map(lambda d: d.replace(microsecond=0))


class RoundTripTests(SynchronousTestCase):
    """
    Parsers invert formatters.
    """

    @settings(max_examples=200, deadline=None)
    @given(_UTC_DT)
    def test_date_time(self, value: datetime) -> None:
        """Date-times survive both spellings."""
        self.assertEqual(cv.parse_ical_date_time(cv.format_ical_date_time(value)), value)
        self.assertEqual(cv.parse_xml_date_time(cv.format_xml_date_time(value)), value)

    @settings(max_examples=200, deadline=None)
    @given(st.timedeltas(min_value=timedelta(days=-(10**5)), max_value=timedelta(days=10**5)))
    def test_duration(self, value: timedelta) -> None:
        """Durations (whole seconds) survive both spellings."""
        value = timedelta(days=value.days, seconds=value.seconds)
        self.assertEqual(cv.parse_duration(cv.format_duration(value)), value)
        self.assertEqual(cv.parse_duration(cv.format_xml_duration(value)), value)

    @settings(max_examples=200, deadline=None)
    @given(st.text())
    def test_text_escape(self, value: str) -> None:
        """TEXT escaping inverts (CR is written as a line break)."""
        value = value.replace("\r", "")
        self.assertEqual(cv.unescape_text(cv.escape_text(value)), value)
        self.assertEqual(
            [
                cv.unescape_text(p)
                for p in cv.split_unescaped(
                    cv.escape_text(value) + "," + cv.escape_text(value), ","
                )
            ],
            [value, value],
        )

    @settings(max_examples=200, deadline=None)
    @given(recurs())
    def test_recur(self, value: cv.Recur) -> None:
        """Recurrence rules survive text and xCal part lists."""
        self.assertEqual(cv.parse_recur(cv.format_recur(value)), value)
        self.assertEqual(cv.recur_from_parts(cv.recur_items(value, xml=True), "", True), value)

    @settings(max_examples=200, deadline=None)
    @given(st.integers(-86399, 86399))
    def test_utc_offset(self, seconds: int) -> None:
        """UTC offsets survive both spellings."""
        value = timedelta(seconds=seconds)
        for vtype_map in (
            (cv.ICAL_PARSERS, cv.ICAL_FORMATTERS),
            (cv.XML_PARSERS, cv.XML_FORMATTERS),
        ):
            parse, fmt = vtype_map[0][cv.UTC_OFFSET], vtype_map[1][cv.UTC_OFFSET]
            self.assertEqual(parse(fmt(value)), value)
