# -*- test-case-name: tests.unit.calendar.test_errors -*-
"""
Tests for L{conference.calendar.errors}: error messages and the
REQUEST-STATUS catalogue.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from conference.calendar.errors import (
    STATUS,
    CalendarError,
    CalendarValueError,
    RequestStatus,
    XCalError,
    parse_request_status,
    status,
)


class ErrorTests(SynchronousTestCase):
    """
    Exception types.
    """

    def test_message(self) -> None:
        """The message is 'where: fault', or just the fault."""
        error = XCalError("bad value", "/icalendar/vcalendar")
        self.assertEqual(str(error), "/icalendar/vcalendar: bad value")
        self.assertEqual((error.fault, error.where), ("bad value", "/icalendar/vcalendar"))
        self.assertEqual(str(CalendarValueError("oops")), "oops")
        self.assertIsInstance(error, CalendarError)


class StatusTests(SynchronousTestCase):
    """
    REQUEST-STATUS values.
    """

    def test_catalogue(self) -> None:
        """Named statuses carry RFC 5546 codes; data can be attached."""
        self.assertEqual(status("no-authority"), RequestStatus("3.8", "No authority"))
        self.assertEqual(status("missing", "UID").data, "UID")
        self.assertTrue(status("success").success)
        self.assertFalse(STATUS["busy"].success)
        self.assertRaises(KeyError, status, "nope")

    def test_parse(self) -> None:
        """Received codes must be dotted digits of class 1-5."""
        self.assertEqual(parse_request_status("2.0", "Success"), RequestStatus("2.0", "Success"))
        self.assertEqual(parse_request_status("3.1.1", "x", "d").data, "d")
        for bad in ("2", "2.x", "9.0", "1.2.3.4"):
            self.assertRaises(CalendarValueError, parse_request_status, bad, "x")
