# -*- test-case-name: tests.unit.calendar.test_legacy -*-
"""
Tests for L{conference.calendar.legacy}: the DTD-based xCal of
draft-ietf-calsch-many-xcal-02, as in the iSIP draft's examples (rebuilt
from the draft's flattened text), read into the same model.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from twisted.trial.unittest import SynchronousTestCase

from conference.calendar import ical, xcal
from conference.calendar import values as cv
from conference.calendar.errors import XCalError
from tests.unit.calendar.support import UTC, schema_errors

# iSIP section 4.1, rebuilt around the text the draft keeps.
ISIP_4_1 = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE iCalendar PUBLIC "-//IETF//DTD XCAL//iCalendar XML//EN"
  "http://www.ietf.org/internet-drafts/draft-ietf-calsch-many-xcal-02.txt">
<iCalendar>
 <vCalendar method="REQUEST" version="2.0" prodid="-//hacksw/handcal//NONSGML 1.0//EN">
  <vevent>
   <organizer>sip:john.doe@example.com</organizer>
   <attendee cutype="ROOM">sip:conference-ds76fhzxq3@example.com</attendee>
   <attendee role="REQ-PARTICIPANT" rsvp="TRUE">sip:alice@example.com</attendee>
   <attendee xml:lang="fi" cn="Bob">sip:bob@example.com</attendee>
   <attendee>sip:fubar.com</attendee>
   <dtstamp>20020611t190000z</dtstamp>
   <dtstart>20020701t210000z</dtstart>
   <dtend>20020701t230000z</dtend>
   <summary>IP telephony conference</summary>
   <description>Review of foo.xml.</description>
   <uid>calsvr.example.com-873970198738777</uid>
   <attach>ftp://ftp.bar.com/pub/docs/foo.xml</attach>
   <status>confirmed</status>
  </vevent>
 </vCalendar>
</iCalendar>
"""

# iSIP section 4.2's attendees, in the vCalendar 1.0 style the draft shows.
ISIP_4_2 = b"""<iCalendar><vCalendar method="REQUEST" version="2.0" prodid="x">
<vevent>
 <organizer>sip:foo1@example.com</organizer>
 <attendee>role=chair;attstat=accepted:sip:foo1@example.com</attendee>
 <attendee>rsvp=yes;type=individual:sip:foo2@example.com</attendee>
 <dtstamp>20020611t190000z</dtstamp>
 <dtstart>20020701t170000z</dtstart>
 <dtend>20020701t173000z</dtend>
 <summary>phone conference</summary>
 <uid>calsvr.example.com-8739701987387771</uid>
 <sequence>0</sequence>
 <status>confirmed</status>
</vevent></vCalendar></iCalendar>"""

# iSIP section 4.5: free/busy in a 486 Busy Here (with an internal subset).
ISIP_4_5 = b"""<?xml version="1.0"?>
<!DOCTYPE iCalendar PUBLIC "-//IETF//DTD XCAL//iCalendar XML//EN" "xcal.dtd" [
  <!ELEMENT note (#PCDATA)>
]>
<iCalendar><vCalendar method="PUBLISH" version="2.0" prodid="x">
<vfreebusy>
 <uid>20020313T133000@ical1.host.com</uid>
 <dtstamp>20020104T133010Z</dtstamp>
 <organizer>sip:alice.doe@host.com</organizer>
 <dtstart>20020313T141711Z</dtstart>
 <dtend>20020410T141711Z</dtend>
 <freebusy fbtype="BUSY">20020314T233000Z/20020315T003000Z,20020316T153000Z/PT1H</freebusy>
 <freebusy>20020318T030000Z/20020318T040000Z</freebusy>
</vfreebusy></vCalendar></iCalendar>"""


class ReadTests(SynchronousTestCase):
    """
    Legacy documents read into the model.
    """

    def test_isip_request(self) -> None:
        """The 4.1 example: calendar attributes, typed values, parameters as attributes."""
        cal = xcal.load_calendar(ISIP_4_1)
        self.assertEqual(cal.value("METHOD"), "REQUEST")
        self.assertEqual(cal.value("VERSION"), "2.0")
        [ev] = cal.subcomponents("VEVENT")
        self.assertEqual(ev.value("DTSTART"), datetime(2002, 7, 1, 21, 0, tzinfo=UTC))
        atts = ev.get_all("ATTENDEE")
        self.assertEqual(atts[0].params, {"CUTYPE": ("ROOM",)})
        self.assertEqual(atts[1].params, {"ROLE": ("REQ-PARTICIPANT",), "RSVP": ("TRUE",)})
        self.assertEqual(atts[2].params, {"LANGUAGE": ("fi",), "CN": ("Bob",)})
        self.assertEqual(ev.get("ATTACH").value_type, cv.URI)  # type: ignore[union-attr]

    def test_converts_to_valid_rfc6321(self) -> None:
        """The legacy request, re-written, is valid RFC 6321 and survives iCalendar."""
        cal = xcal.load_calendar(ISIP_4_1)
        out = xcal.dumps(cal)
        self.assertIsNone(schema_errors(out))
        self.assertEqual(xcal.load_calendar(out), cal)
        self.assertEqual(ical.load_calendar(ical.dumps(cal)), cal)

    def test_vcalendar1_attendees(self) -> None:
        """'role=chair;attstat=accepted:sip:...' splits into parameters and address."""
        [ev] = xcal.load_calendar(ISIP_4_2).subcomponents("VEVENT")
        first, second = ev.get_all("ATTENDEE")
        self.assertEqual(first.value, "sip:foo1@example.com")
        self.assertEqual(first.params, {"ROLE": ("CHAIR",), "PARTSTAT": ("ACCEPTED",)})
        self.assertEqual(second.params, {"RSVP": ("TRUE",), "CUTYPE": ("INDIVIDUAL",)})

    def test_freebusy(self) -> None:
        """The 4.5 free/busy reads periods, lists and FBTYPE despite its internal subset."""
        [fb] = xcal.load_calendar(ISIP_4_5).subcomponents("VFREEBUSY")
        first, second = fb.get_all("FREEBUSY")
        self.assertEqual(first.param("FBTYPE"), "BUSY")
        self.assertEqual(len(first.values), 2)
        self.assertEqual(first.values[1].duration, timedelta(hours=1))
        self.assertEqual(second.value_type, cv.PERIOD)

    def test_bare_vcalendar_root_and_case(self) -> None:
        """A bare VCALENDAR root in any case, with METHOD as a child element, is read."""
        cal = xcal.load_calendar(
            b"<VCALENDAR><METHOD>PUBLISH</METHOD><VTODO>"
            b"<UID>t</UID><DUE value='DATE'>20020101</DUE>"
            b"<CATEGORIES>a, b</CATEGORIES><GEO>1.5;2.5</GEO>"
            b"<REQUEST-STATUS>2.0;Success</REQUEST-STATUS>"
            b"</VTODO></VCALENDAR>"
        )
        [todo] = cal.subcomponents("VTODO")
        self.assertEqual(todo.get("DUE").value_type, cv.DATE)  # type: ignore[union-attr]
        self.assertEqual(todo.get("CATEGORIES").values, ["a", "b"])  # type: ignore[union-attr]
        self.assertEqual(todo.get("GEO").values, [1.5, 2.5])  # type: ignore[union-attr]
        self.assertEqual(todo.value("REQUEST-STATUS"), "2.0")
        self.assertEqual(cal.value("METHOD"), "PUBLISH")

    def test_date_without_value(self) -> None:
        """An 8-digit DTSTART is read as a DATE."""
        cal = xcal.load_calendar(
            b"<vcalendar><vevent><dtstart>20020701</dtstart></vevent></vcalendar>"
        )
        self.assertEqual(cal.components[0].get("DTSTART").value_type, cv.DATE)  # type: ignore

    def test_text_not_unescaped(self) -> None:
        """Text content is literal: backslashes and commas stay."""
        cal = xcal.load_calendar(
            b"<vcalendar><vevent><summary>a\\, b</summary></vevent></vcalendar>"
        )
        self.assertEqual(cal.components[0].value("SUMMARY"), "a\\, b")


class ErrorTests(SynchronousTestCase):
    """
    Bad legacy documents get precise errors.
    """

    def test_bad_date(self) -> None:
        """A bad date names its element."""
        error = self.assertRaises(
            XCalError,
            xcal.loads,
            b"<vcalendar><vevent><dtstart>july</dtstart></vevent></vcalendar>",
        )
        self.assertEqual(error.where, "/vcalendar/vevent/dtstart")
        self.assertIn("DATE-TIME", error.fault)

    def test_nested_vcalendar(self) -> None:
        """vCalendar cannot nest."""
        error = self.assertRaises(XCalError, xcal.loads, b"<vcalendar><vcalendar/></vcalendar>")
        self.assertIn("cannot nest", str(error))

    def test_property_with_children(self) -> None:
        """A property element holding elements is refused."""
        error = self.assertRaises(
            XCalError,
            xcal.loads,
            b"<vcalendar><vevent><summary><b>x</b></summary></vevent></vcalendar>",
        )
        self.assertIn("only text", str(error))

    def test_other_child_of_root(self) -> None:
        """Only vCalendar elements may sit in iCalendar."""
        error = self.assertRaises(XCalError, xcal.loads, b"<iCalendar><vevent/></iCalendar>")
        self.assertIn("only vCalendar", str(error))

    def test_bad_value_type(self) -> None:
        """An unknown value attribute is refused."""
        error = self.assertRaises(
            XCalError,
            xcal.loads,
            b"<vcalendar><vevent><x-a value='WHAT'>1</x-a></vevent></vcalendar>",
        )
        self.assertIn("unknown value type", str(error))

    def test_depth(self) -> None:
        """Deep component nesting is refused."""
        data = b"<vcalendar>" + b"<valarm>" * 30 + b"</valarm>" * 30 + b"</vcalendar>"
        error = self.assertRaises(XCalError, xcal.loads, data, max_depth=10)
        self.assertIn("nesting deeper", str(error))

    def test_component_nesting(self) -> None:
        """Components nested deeper than RFC 6321 storage allows are refused, as in iCalendar."""
        data = b"<vcalendar>" + b"<valarm>" * 30 + b"</valarm>" * 30 + b"</vcalendar>"
        error = self.assertRaises(XCalError, xcal.loads, data)
        self.assertIn("components nested deeper than 21", str(error))

    def test_entities_refused(self) -> None:
        """Entity declarations are refused in the legacy form too."""
        data = b'<!DOCTYPE vcalendar [<!ENTITY a "b">]><vcalendar>&a;</vcalendar>'
        self.assertRaises(XCalError, xcal.loads, data)
