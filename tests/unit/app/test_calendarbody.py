# -*- test-case-name: tests.unit.app.test_calendarbody -*-
"""
Tests for L{conference.app.calendarbody}: reading calendar bodies in every
form a scheduling MESSAGE may carry, the errors for bad ones, and rendering
outgoing calendars with their Content-Type parameters.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from conference.app.calendarbody import (
    ACCEPTED_TYPES,
    parse_calendar_body,
    render_calendar,
    warning_value,
)
from conference.calendar import Component, new_calendar, to_ical, to_xcal
from conference.sip.errors import RemoteProtocolError
from conference.sip.headers import parse_media_type, parse_warning
from conference.sip.multipart import BodyPart, build_multipart
from tests.unit.app.calendars import conference_calendar, conference_ical

LEGACY = b"""<?xml version="1.0" encoding="UTF-8"?>
<iCalendar>
 <vCalendar method="REQUEST" version="2.0" prodid="-//tests//EN">
  <vevent>
   <organizer>sip:john.doe@example.com</organizer>
   <attendee cutype="ROOM">sip:conference-ds76fhzxq3@example.com</attendee>
   <dtstamp>20020611t190000z</dtstamp>
   <dtstart>20020701t210000z</dtstart>
   <dtend>20020701t230000z</dtend>
   <summary>IP telephony conference</summary>
   <uid>calsvr.example.com-873970198738777</uid>
   <status>confirmed</status>
  </vevent>
 </vCalendar>
</iCalendar>
"""


def warning_text(error: RemoteProtocolError) -> str:
    """
    The text of the 399 Warning an error carries.
    """
    values = [v for name, v in error.headers if name == "Warning"]
    assert len(values) == 1, error.headers
    (warning,) = parse_warning(values[0])
    assert warning.code == 399
    return warning.text


class ParseTests(SynchronousTestCase):
    """
    Reading received bodies.
    """

    def test_rfc6321(self) -> None:
        """An RFC 6321 body is read, with its Content-Type parameters."""
        body = to_xcal(conference_calendar())
        got = parse_calendar_body(
            body, "application/calendar+xml;method=REQUEST;component=VEVENT", agent="example.com"
        )
        self.assertEqual(got.calendar, conference_calendar())
        self.assertEqual(got.params, {"method": "REQUEST", "component": "VEVENT"})
        self.assertEqual(got.method, "REQUEST")
        self.assertEqual(got.mime, "application/calendar+xml")

    def test_legacy(self) -> None:
        """The legacy DTD xCal of the iSIP examples is read too."""
        got = parse_calendar_body(LEGACY, "application/calendar+xml", agent="example.com")
        (event,) = got.calendar.subcomponents("VEVENT")
        self.assertEqual(event.value("UID"), "calsvr.example.com-873970198738777")
        self.assertEqual(got.method, "REQUEST")

    def test_text_calendar(self) -> None:
        """text/calendar is read, in the charset it names."""
        text = conference_ical(extra="LOCATION:Café")
        got = parse_calendar_body(
            text.encode("latin-1"), "text/calendar; charset=ISO-8859-1", agent="example.com"
        )
        (event,) = got.calendar.subcomponents("VEVENT")
        self.assertEqual(event.value("LOCATION"), "Café")
        self.assertEqual(got.mime, "text/calendar")

    def test_unknown_charset(self) -> None:
        """An unknown charset is a 400 naming it."""
        error = self.assertRaises(
            RemoteProtocolError,
            parse_calendar_body,
            b"BEGIN:VCALENDAR",
            "text/calendar;charset=x-nothing",
            agent="example.com",
        )
        self.assertEqual(error.status, 400)
        self.assertIn("x-nothing", warning_text(error))

    def test_alternative(self) -> None:
        """In multipart/alternative the calendar part is used, text/plain skipped."""
        ctype, body = build_multipart(
            [
                BodyPart("text/plain", b"When: 1 Dec 2026 09:00 UTC"),
                BodyPart(
                    "application/calendar+xml;method=REQUEST;component=VEVENT",
                    to_xcal(conference_calendar()),
                ),
            ],
            "alternative",
        )
        got = parse_calendar_body(body, ctype, agent="example.com")
        self.assertEqual(got.calendar, conference_calendar())
        self.assertEqual(got.params["method"], "REQUEST")

    def test_alternative_text_calendar(self) -> None:
        """A text/calendar part of a multipart/alternative is read."""
        ctype, body = build_multipart(
            [
                BodyPart("text/plain", b"A meeting"),
                BodyPart("text/calendar;method=REQUEST", conference_ical().encode()),
            ],
            "alternative",
        )
        got = parse_calendar_body(body, parse_media_type(ctype), agent="example.com")
        self.assertEqual(got.mime, "text/calendar")

    def test_alternative_without_calendar(self) -> None:
        """A multipart/alternative with no calendar part is 415 with Accept."""
        ctype, body = build_multipart(
            [BodyPart("text/plain", b"hi"), BodyPart("text/html", b"<p>hi</p>")], "alternative"
        )
        error = self.assertRaises(
            RemoteProtocolError, parse_calendar_body, body, ctype, agent="example.com"
        )
        self.assertEqual(error.status, 415)
        self.assertIn(("Accept", ", ".join(ACCEPTED_TYPES)), error.headers)

    def test_transfer_encoding_in_part(self) -> None:
        """A Content-Transfer-Encoding inside a part is refused with 415."""
        ctype, body = build_multipart(
            [
                BodyPart("text/plain", b"hi"),
                BodyPart(
                    "text/calendar",
                    b"QkVHSU46VkNBTEVOREFS",
                    headers=(("Content-Transfer-Encoding", "base64"),),
                ),
            ],
            "alternative",
        )
        error = self.assertRaises(
            RemoteProtocolError, parse_calendar_body, body, ctype, agent="example.com"
        )
        self.assertEqual(error.status, 415)

    def test_broken_multipart(self) -> None:
        """A multipart without its close delimiter is a 400 with a Warning."""
        error = self.assertRaises(
            RemoteProtocolError,
            parse_calendar_body,
            b"--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n",
            "multipart/alternative;boundary=b",
            agent="example.com",
        )
        self.assertEqual(error.status, 400)
        self.assertIn("close delimiter", warning_text(error))

    def test_malformed_xml(self) -> None:
        """Malformed xCal is a 400 whose Warning names the fault."""
        error = self.assertRaises(
            RemoteProtocolError,
            parse_calendar_body,
            b"<icalendar xmlns='urn:ietf:params:xml:ns:icalendar-2.0'><vcalendar>",
            "application/calendar+xml",
            agent="example.com",
        )
        self.assertEqual(error.status, 400)
        self.assertTrue(warning_text(error))
        self.assertIn('399 example.com "', dict(error.headers)["Warning"])

    def test_empty(self) -> None:
        """An empty body is a 400."""
        error = self.assertRaises(
            RemoteProtocolError, parse_calendar_body, b"", "text/calendar", agent="example.com"
        )
        self.assertEqual(error.status, 400)
        self.assertIn("no calendar body", warning_text(error))

    def test_other_type(self) -> None:
        """A type that is not a calendar is 415 with Accept."""
        error = self.assertRaises(
            RemoteProtocolError, parse_calendar_body, b"hi", "text/plain", agent="example.com"
        )
        self.assertEqual(error.status, 415)
        self.assertIn("Accept", dict(error.headers))

    @settings(max_examples=200, deadline=None)
    @given(
        st.binary(max_size=300),
        st.sampled_from(
            [
                "application/calendar+xml",
                "text/calendar",
                "multipart/alternative;boundary=xyz",
                "text/calendar;charset=utf-16",
            ]
        ),
    )
    def test_garbage(self, body: bytes, ctype: str) -> None:
        """Any bytes give a calendar or a 400/415, never another exception."""
        try:
            got = parse_calendar_body(body, ctype, agent="example.com")
        except RemoteProtocolError as e:
            self.assertIn(e.status, (400, 415))
        else:
            self.assertEqual(got.calendar.name, "VCALENDAR")


class RenderTests(SynchronousTestCase):
    """
    Rendering outgoing calendars.
    """

    def test_xcal(self) -> None:
        """xCal output names method and component and parses back equal."""
        calendar = conference_calendar()
        ctype, body = render_calendar(calendar)
        self.assertEqual(ctype, "application/calendar+xml;method=REQUEST;component=VEVENT")
        got = parse_calendar_body(body, ctype, agent="x")
        self.assertEqual(got.calendar, calendar)

    def test_ical_several_components(self) -> None:
        """text/calendar output lists several component types, quoted."""
        calendar = conference_calendar()
        todo = Component("VTODO")
        todo.add("UID", "t1")
        calendar.components.append(todo)
        ctype, body = render_calendar(calendar, as_xcal=False)
        self.assertEqual(
            ctype, 'text/calendar;charset=utf-8;method=REQUEST;component="VEVENT,VTODO"'
        )
        self.assertEqual(parse_media_type(ctype).params["component"], "VEVENT,VTODO")
        self.assertEqual(body, to_ical([calendar]).encode("utf-8"))

    def test_no_method(self) -> None:
        """A calendar without METHOD gets no method parameter."""
        ctype, _ = render_calendar(new_calendar("-//x//EN"))
        self.assertEqual(ctype, "application/calendar+xml")

    def test_warning_value(self) -> None:
        """Warning values are 399, one line, quoted and shortened."""
        value = warning_value("example.com", 'bad "x"\r\n' + "y" * 500)
        (warning,) = parse_warning(value)
        self.assertEqual((warning.code, warning.agent), (399, "example.com"))
        self.assertTrue(warning.text.startswith('bad "x" y'))
        self.assertLessEqual(len(warning.text), 200)
