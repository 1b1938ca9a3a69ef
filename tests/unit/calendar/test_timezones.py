# -*- test-case-name: tests.unit.calendar.test_timezones -*-
"""
Tests for L{conference.calendar.timezones}: IANA names, vendor-prefixed
names, VTIMEZONE-only zones, floating times and DATE values.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from twisted.trial.unittest import SynchronousTestCase

from conference.calendar import ical
from conference.calendar.errors import CalendarValueError
from conference.calendar.model import Property
from conference.calendar.timezones import TimezoneResolver, observances_bounded
from tests.unit.calendar.support import UTC, xcal_file

CUSTOM = """BEGIN:VCALENDAR\r
BEGIN:VTIMEZONE\r
TZID:Custom Eastern\r
BEGIN:STANDARD\r
DTSTART:19701101T020000\r
RRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=11\r
TZOFFSETFROM:-0400\r
TZOFFSETTO:-0500\r
END:STANDARD\r
BEGIN:DAYLIGHT\r
DTSTART:19700308T020000\r
RRULE:FREQ=YEARLY;BYDAY=2SU;BYMONTH=3\r
TZOFFSETFROM:-0500\r
TZOFFSETTO:-0400\r
END:DAYLIGHT\r
END:VTIMEZONE\r
END:VCALENDAR\r
"""


class ResolverTests(SynchronousTestCase):
    """
    TZID resolution and instants.
    """

    def test_iana(self) -> None:
        """An IANA TZID maps to zoneinfo, DST included."""
        resolver = TimezoneResolver()
        summer = resolver.to_utc(datetime(2024, 7, 1, 12), "Europe/Helsinki")
        winter = resolver.to_utc(datetime(2024, 1, 1, 12), "Europe/Helsinki")
        self.assertEqual((summer.hour, winter.hour), (9, 10))

    def test_vendor_prefix(self) -> None:
        """A vendor-prefixed TZID falls back to its last segments."""
        resolver = TimezoneResolver()
        zone = resolver.zone("/softwarestudio.org/Olson_20011030_5/Europe/Helsinki")
        self.assertEqual(datetime(2024, 1, 1, tzinfo=zone).utcoffset(), timedelta(hours=2))

    def test_vtimezone(self) -> None:
        """A TZID known only from a VTIMEZONE is built from it."""
        resolver = TimezoneResolver([ical.load_calendar(CUSTOM)])
        self.assertEqual(resolver.to_utc(datetime(2024, 7, 1, 12), "Custom Eastern").hour, 16)
        self.assertEqual(resolver.to_utc(datetime(2024, 1, 1, 12), "Custom Eastern").hour, 17)

    def test_rfc_example_zone(self) -> None:
        """RFC 6321 example 2's US/Eastern resolves (zoneinfo knows the alias)."""
        resolver = TimezoneResolver()
        resolver.add_calendar(
            ical.load_calendar(
                "BEGIN:VCALENDAR\r\n"
                + xcal_file("examples-rfc6321", "rfc6321-B.2.1-example2.ics").read_text()
            )
        )
        self.assertEqual(resolver.to_utc(datetime(2006, 1, 2, 12), "US/Eastern").hour, 17)

    def test_unknown(self) -> None:
        """An unknown TZID is a CalendarValueError naming it."""
        error = self.assertRaises(CalendarValueError, TimezoneResolver().zone, "Mars/Base")
        self.assertIn("Mars/Base", str(error))

    def test_floating_and_dates(self) -> None:
        """Floating times and DATEs use the floating zone; aware values convert."""
        resolver = TimezoneResolver(floating=timezone(timedelta(hours=2)))
        self.assertEqual(resolver.to_utc(datetime(2024, 1, 1, 12)).hour, 10)
        self.assertEqual(resolver.to_utc(date(2024, 1, 2)), datetime(2024, 1, 1, 22, tzinfo=UTC))
        aware = datetime(2024, 1, 1, 12, tzinfo=UTC)
        self.assertEqual(resolver.to_utc(aware), aware)
        self.assertEqual(resolver.local(aware), datetime(2024, 1, 1, 12))
        self.assertEqual(resolver.local(date(2024, 1, 2)), datetime(2024, 1, 2))
        self.assertIs(resolver.zone_of(aware, "Europe/Helsinki"), UTC)

    def test_property_utc(self) -> None:
        """property_utc reads TZID from the property."""
        resolver = TimezoneResolver()
        prop = Property("DTSTART", datetime(2024, 1, 1, 12), {"TZID": "Europe/Helsinki"})
        self.assertEqual(resolver.property_utc(prop).hour, 10)
        self.assertRaises(CalendarValueError, resolver.property_utc, Property("SUMMARY", "x"))

    def test_outlook_zone(self) -> None:
        """A yearly rule from 1601, as Outlook writes them, is converted."""
        text = CUSTOM.replace("19701101", "16010101").replace("19700308", "16010101")
        resolver = TimezoneResolver([ical.load_calendar(text)])
        self.assertEqual(resolver.to_utc(datetime(2024, 7, 1, 12), "Custom Eastern").hour, 16)

    def test_costly_observances_refused(self) -> None:
        """Observance rules that would make every lookup scan (MINUTELY, never matching,
        before 1601, too frequent) make the zone unknown instead of blocking."""
        rules = [
            ("RRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=11", "RRULE:FREQ=MINUTELY"),
            ("RRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=11", "RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"),
            ("RRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=11", "RRULE:FREQ=YEARLY;BYMONTHDAY=1"),
            ("DTSTART:19701101T020000", "DTSTART:15001101T020000"),
        ]
        for old, new in rules:
            calendar = ical.load_calendar(CUSTOM.replace(old, new))
            self.assertFalse(observances_bounded(calendar.components[0]), new)
            error = self.assertRaises(
                CalendarValueError, TimezoneResolver([calendar]).zone, "Custom Eastern"
            )
            self.assertIn("unknown time zone", str(error))
