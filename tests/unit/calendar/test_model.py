# -*- test-case-name: tests.unit.calendar.test_model -*-
"""
Tests for L{conference.calendar.model}: construction defaults, parameter
normalization, access helpers, equality (order of properties ignored) and
type checks.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from twisted.trial.unittest import SynchronousTestCase

from conference.calendar import values as cv
from conference.calendar.errors import CalendarValueError
from conference.calendar.model import (
    Component,
    Property,
    new_calendar,
    normalize_param,
    python_type_check,
    value_type_for,
)
from tests.unit.calendar.support import UTC


class PropertyTests(SynchronousTestCase):
    """
    Properties.
    """

    def test_default_types(self) -> None:
        """Types default from the property name, DATE/PERIOD from the Python value."""
        self.assertEqual(Property("DTSTART", datetime(2024, 1, 1)).value_type, cv.DATE_TIME)
        self.assertEqual(Property("DTSTART", date(2024, 1, 1)).value_type, cv.DATE)
        period = cv.Period(datetime(2024, 1, 1, tzinfo=UTC), None, timedelta(hours=1))
        self.assertEqual(Property("RDATE", [period]).value_type, cv.PERIOD)
        self.assertEqual(Property("X-FOO", "a").value_type, cv.TEXT)
        self.assertEqual(Property("conference", "sip:c@x").value_type, cv.URI)

    def test_params_normalized(self) -> None:
        """Names upper-cased, VALUE dropped, enumerations upper-cased, RSVP spelled TRUE."""
        prop = Property(
            "attendee",
            "mailto:a@b",
            {"partstat": "accepted", "rsvp": "1", "value": "CAL-ADDRESS", "cn": "Ann"},
        )
        self.assertEqual(prop.name, "ATTENDEE")
        self.assertEqual(
            prop.params, {"PARTSTAT": ("ACCEPTED",), "RSVP": ("TRUE",), "CN": ("Ann",)}
        )
        self.assertEqual(prop.param("cn"), "Ann")
        self.assertIsNone(prop.param("dir"))
        self.assertEqual(normalize_param("RSVP", ["no"]), ("FALSE",))

    def test_check(self) -> None:
        """check() refuses Python values that do not suit the type."""
        Property("DTSTART", datetime(2024, 1, 1)).check()
        bad = Property("DTSTART", "tomorrow", None, cv.DATE_TIME)
        error = self.assertRaises(CalendarValueError, bad.check)
        self.assertIn("DTSTART", str(error))
        self.assertRaises(CalendarValueError, Property("GEO", [1.0]).check)
        self.assertRaises(CalendarValueError, Property("REQUEST-STATUS", ["2.0"]).check)
        self.assertRaises(CalendarValueError, Property("X", "a", None, "NOPE").check)
        self.assertFalse(python_type_check(cv.DATE, datetime(2024, 1, 1)))
        self.assertFalse(python_type_check(cv.INTEGER, True))

    def test_copy_independent(self) -> None:
        """A copy has its own parameters and values."""
        prop = Property("CATEGORIES", ["a"], {"LANGUAGE": "en"})
        other = prop.copy()
        other.values.append("b")
        other.params["LANGUAGE"] = ("fi",)
        self.assertEqual((prop.values, prop.param("LANGUAGE")), (["a"], "en"))

    def test_equality(self) -> None:
        """Properties compare by content; floating and UTC times differ; hashable."""
        a = Property("DTSTART", datetime(2024, 1, 1, 12, tzinfo=UTC))
        self.assertEqual(a, Property("DTSTART", datetime(2024, 1, 1, 12, tzinfo=UTC)))
        self.assertNotEqual(a, Property("DTSTART", datetime(2024, 1, 1, 12)))
        self.assertEqual(hash(a), hash(a.copy()))
        self.assertNotEqual(a, "DTSTART")
        self.assertIn("DTSTART", repr(a))

    def test_value_type_for(self) -> None:
        """VALUE wins; without it the default, else UNKNOWN."""
        self.assertEqual(value_type_for("X-A", "integer"), cv.INTEGER)
        self.assertEqual(value_type_for("DTSTART", None), cv.DATE_TIME)
        self.assertEqual(value_type_for("X-A", None), cv.UNKNOWN)


class ComponentTests(SynchronousTestCase):
    """
    Components.
    """

    def test_access(self) -> None:
        """get, get_all, value, set, remove, subcomponents and walk."""
        cal = new_calendar("-//x//EN", "request")
        self.assertEqual(cal.value("METHOD"), "REQUEST")
        ev = Component("vevent")
        ev.add("ATTENDEE", "mailto:a@x")
        ev.add("SUMMARY", "s")
        ev.add("ATTENDEE", "mailto:b@x")
        alarm = Component("VALARM")
        ev.components.append(alarm)
        cal.components.append(ev)
        self.assertEqual([p.value for p in ev.get_all("attendee")], ["mailto:a@x", "mailto:b@x"])
        self.assertEqual(ev.value("NOPE", 7), 7)
        ev.set("ATTENDEE", "mailto:c@x")
        self.assertEqual([p.name for p in ev.properties], ["ATTENDEE", "SUMMARY"])
        self.assertEqual(ev.set("LOCATION", "here").value, "here")
        self.assertEqual(ev.remove("SUMMARY"), 1)
        self.assertEqual([c.name for c in cal.walk()], ["VCALENDAR", "VEVENT", "VALARM"])
        self.assertEqual(list(cal.walk("valarm")), [alarm])
        self.assertEqual(cal.subcomponents("VEVENT"), [ev])
        self.assertEqual(cal.subcomponents(), [ev])
        self.assertIn("VEVENT", repr(ev))

    def test_equality_ignores_property_order(self) -> None:
        """Property order does not matter; component order and content do."""
        a = Component("VEVENT", [Property("UID", "1"), Property("SUMMARY", "x")])
        b = Component("VEVENT", [Property("SUMMARY", "x"), Property("UID", "1")])
        self.assertEqual(a, b)
        self.assertEqual(hash(a), hash(b))
        self.assertNotEqual(a, Component("VEVENT", [Property("UID", "1")]))
        c1 = Component("VCALENDAR", components=[a, Component("VTODO")])
        c2 = Component("VCALENDAR", components=[Component("VTODO"), a])
        self.assertNotEqual(c1, c2)
        self.assertNotEqual(a, "VEVENT")

    def test_deep_copy(self) -> None:
        """copy() is deep."""
        cal = new_calendar(components=[Component("VEVENT", [Property("UID", "1")])])
        other = cal.copy()
        other.components[0].properties[0].values[0] = "2"
        self.assertEqual(cal.components[0].value("UID"), "1")
        self.assertEqual(cal, cal.copy())

    def test_check_recursive(self) -> None:
        """check() looks into sub-components."""
        cal = new_calendar(
            components=[Component("VEVENT", [Property("SEQUENCE", "one", None, cv.INTEGER)])]
        )
        self.assertRaises(CalendarValueError, cal.check)
