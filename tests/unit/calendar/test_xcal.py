# -*- test-case-name: tests.unit.calendar.test_xcal -*-
"""
Tests for L{conference.calendar.xcal}: the sabre xCal pairs and RFC 6321
examples, schema validity of what we write, round trips, the hardened
parser (XXE, billion laughs, size and depth caps) and precise errors.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, List, Tuple

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from twisted.trial.unittest import SynchronousTestCase

from conference.calendar import ical, xcal
from conference.calendar import values as cv
from conference.calendar.errors import XCalError
from conference.calendar.freebusy import build_freebusy
from conference.calendar.model import Component, Property, new_calendar
from tests.unit.calendar.support import (
    UTC,
    calendars,
    conference_event,
    request,
    schema_errors,
    xcal_file,
)

NS = xcal.NS


def doc(body: str) -> bytes:
    """
    An RFC 6321 document with C{body} inside one vcalendar's properties.
    """
    return (
        f'<icalendar xmlns="{NS}"><vcalendar><properties>{body}</properties>'
        "<components/></vcalendar></icalendar>"
    ).encode()


def normal(comps: List[Component]) -> List[Tuple[Any, ...]]:
    """
    A comparison form for the sabre pairs: per property its component,
    name, parameters (without VALUE/ENCODING, which only restate the
    type) and its value(s) rendered as iCalendar text.
    """
    out: List[Tuple[Any, ...]] = []
    for top in comps:
        for comp in top.walk():
            out.append((comp.name,))
            for prop in comp.properties:
                params = tuple(sorted(prop.params.items()))
                out.append((comp.name, prop.name, params, ical.format_values(prop)))
    return sorted(out)


class SabrePairTests(SynchronousTestCase):
    """
    The sabre/vobject xCal -> iCalendar pairs (xCal ones; see
    L{XCardTests} for the xCard ones).
    """

    def test_every_xcal_pair(self) -> None:
        """Each xCal pair converts to iCalendar equal (parsed) to the expected text."""
        pairs = sorted(xcal_file("sabre-pairs", "pairs").glob("*.xml"))
        checked = 0
        for xml_path in pairs:
            data = xml_path.read_bytes()
            if b"urn:ietf:params:xml:ns:vcard-4.0" in data:
                continue
            model = xcal.loads(data)
            text = ical.dumps(model)
            ics = xml_path.with_suffix(".ics")
            if ics.exists():
                expected = ical.loads(ics.read_text())
                self.assertEqual(normal(ical.loads(text)), normal(expected), xml_path.name)
            # and both round trips are the identity on the model
            self.assertEqual(ical.loads(text), model, xml_path.name)
            self.assertEqual(xcal.loads(xcal.dumps(model)), model, xml_path.name)
            checked += 1
        self.assertEqual(checked, 35)

    def test_example2_pair_matches_rfc_text(self) -> None:
        """Pair 002 (no .ics) equals RFC 6321 B.2.1 but for the RFC's own two slips."""
        model = xcal.loads(
            xcal_file("sabre-pairs", "pairs", "002-testRFC6321Example2.xml").read_bytes()
        )
        text = xcal_file("examples-rfc6321", "rfc6321-B.2.1-example2.ics").read_text()
        expected = ical.loads("BEGIN:VCALENDAR\r\n" + text)
        self.assertEqual(without_slips(normal(model)), without_slips(normal(expected)))


def without_slips(rows: List[Tuple[Any, ...]]) -> List[Tuple[Any, ...]]:
    """
    RFC 6321's example 2 says PRODID "Example Inc." in B.2.2 but "Example
    Corp." in B.2.1, and wraps DESCRIPTION differently: drop both.
    """
    return [r for r in rows if len(r) < 2 or r[1] not in ("PRODID", "DESCRIPTION")]


class XCardTests(SynchronousTestCase):
    """
    The 66 xCard (RFC 6351) pairs among the sabre pairs are vCards, not
    calendars: the xCal reader refuses them with a precise error pointing
    at L{conference.calendar.xcard} (see tests.unit.calendar.test_xcard).
    """

    def test_xcard_refused(self) -> None:
        """Every xCard pair is refused naming RFC 6351, not with a traceback."""
        refused = 0
        for xml_path in sorted(xcal_file("sabre-pairs", "pairs").glob("*.xml")):
            data = xml_path.read_bytes()
            if b"urn:ietf:params:xml:ns:vcard-4.0" not in data:
                continue
            error = self.assertRaises(XCalError, xcal.loads, data)
            self.assertIn("RFC 6351", str(error))
            self.assertIn("conference.calendar.xcard", str(error))
            refused += 1
        self.assertEqual(refused, 66)


class RFCExampleTests(SynchronousTestCase):
    """
    RFC 6321 appendix B.
    """

    def test_example1_equals_its_icalendar(self) -> None:
        """B.1.2 (xCal) and B.1.1 (iCalendar) give the same model."""
        xml = xcal.loads(xcal_file("examples-rfc6321", "rfc6321-B.1.2-example1.xml").read_bytes())
        text = ical.loads(xcal_file("examples-rfc6321", "rfc6321-B.1.1-example1.ics").read_text())
        self.assertEqual(xml, text)
        event = xml[0].subcomponents("VEVENT")[0]
        self.assertEqual(event.get("DTSTART").value_type, cv.DATE)  # type: ignore[union-attr]

    def test_example2_equals_its_icalendar(self) -> None:
        """B.2.2 (bare <tzid> text read leniently) equals B.2.1 but for the RFC's slips."""
        xml = xcal.loads(xcal_file("examples-rfc6321", "rfc6321-B.2.2-example2.xml").read_bytes())
        text = xcal_file("examples-rfc6321", "rfc6321-B.2.1-example2.ics").read_text()
        expected = ical.loads("BEGIN:VCALENDAR\r\n" + text)
        self.assertEqual(without_slips(normal(xml)), without_slips(normal(expected)))
        self.assertNotEqual(normal(xml), normal(expected))

    def test_examples_rewritten_are_valid(self) -> None:
        """All four RFC/biweekly examples, re-serialized, validate against the schema."""
        for parts in (
            ("examples-rfc6321", "rfc6321-B.1.2-example1.xml"),
            ("examples-rfc6321", "rfc6321-B.2.2-example2.xml"),
            ("examples-biweekly", "rfc6321-example1.xml"),
            ("examples-biweekly", "rfc6321-example2.xml"),
        ):
            model = xcal.loads(xcal_file(*parts).read_bytes())
            self.assertIsNone(schema_errors(xcal.dumps(model)), parts)
            self.assertIsNone(schema_errors(xcal.dumps(model, pretty=True)), parts)

    def test_biweekly_example2_recurrence(self) -> None:
        """The recurring example reads its RRULE, RDATE period and RECURRENCE-ID typed."""
        cal = xcal.load_calendar(
            xcal_file("examples-biweekly", "rfc6321-example2.xml").read_bytes()
        )
        master = next(e for e in cal.subcomponents("VEVENT") if e.get("RECURRENCE-ID") is None)
        self.assertEqual(master.value("RRULE"), cv.Recur("DAILY", count=5))
        rdate = master.get("RDATE")
        assert rdate is not None
        self.assertEqual(rdate.value_type, cv.PERIOD)
        self.assertEqual(rdate.param("TZID"), "US/Eastern")
        self.assertEqual(rdate.value.duration, timedelta(hours=2))


class SchemaTests(SynchronousTestCase):
    """
    What the package writes validates against the RFC 6321 schema.
    """

    def test_conference_request_valid(self) -> None:
        """A conference REQUEST validates; CONFERENCE (RFC 7986) is the schema's only complaint."""
        event = conference_event()
        event.remove("CONFERENCE")
        self.assertIsNone(schema_errors(xcal.dumps(request(event))))
        error = schema_errors(xcal.dumps(request(conference_event())))
        self.assertIn("conference", str(error))

    def test_freebusy_valid(self) -> None:
        """A built VFREEBUSY with periods of several FBTYPEs validates."""
        start = datetime(2024, 1, 1, tzinfo=UTC)
        events = []
        for i in range(5):
            ev = conference_event(uid=f"u{i}", start=start + timedelta(hours=3 * i), room=None)
            ev.remove("CONFERENCE")
            if i % 2:
                ev.add("STATUS", "TENTATIVE")
            events.append(ev)
        fb = build_freebusy(
            [request(*events)],
            start,
            start + timedelta(days=1),
            start,
            organizer="sip:a@example.com",
            attendee="sip:b@example.com",
        )
        self.assertEqual(len(fb.get_all("FREEBUSY")), 2)
        self.assertIsNone(schema_errors(xcal.dumps(new_calendar(method="REPLY", components=[fb]))))

    def test_every_value_type_valid(self) -> None:
        """Every schema-known component and value shape we write validates."""
        cal = new_calendar(method="PUBLISH")
        todo = Component("VTODO")
        todo.add("DTSTAMP", datetime(2024, 1, 1, tzinfo=UTC))
        todo.add("UID", "t1")
        todo.add("DUE", datetime(2024, 1, 2))
        todo.add("GEO", [37.386013, -122.082932])
        todo.add("PERCENT-COMPLETE", 50)
        todo.add("REQUEST-STATUS", ["2.0", "Success"])
        todo.add("CATEGORIES", ["a", "b,c"])
        todo.add("ATTACH", b"\x00\x01binary", {"FMTTYPE": "application/octet-stream"}, cv.BINARY)
        todo.add(
            "ATTENDEE",
            "mailto:x@example.com",
            {
                "DELEGATED-TO": ["mailto:y@example.com", "mailto:z@example.com"],
                "RSVP": "TRUE",
                "SENT-BY": "mailto:s@example.com",
                "DIR": "ldap://x",
            },
        )
        alarm = Component("VALARM")
        alarm.add("ACTION", "AUDIO")
        alarm.add("TRIGGER", -timedelta(minutes=15), {"RELATED": "START"})
        todo.components.append(alarm)
        journal = Component("VJOURNAL")
        journal.add("DTSTAMP", datetime(2024, 1, 1, tzinfo=UTC))
        journal.add("UID", "j1")
        journal.add("DESCRIPTION", "x & <y>\nz")
        tz = Component("VTIMEZONE")
        tz.add("TZID", "Custom/Zone")
        std = Component("STANDARD")
        std.add("DTSTART", datetime(1970, 10, 25, 3))
        std.add("TZOFFSETFROM", timedelta(hours=3))
        std.add("TZOFFSETTO", timedelta(hours=2))
        std.add("RRULE", cv.Recur("YEARLY", by={"BYDAY": ("-1SU",), "BYMONTH": ("10",)}))
        tz.components.append(std)
        cal.components.extend([tz, todo, journal])
        self.assertIsNone(schema_errors(xcal.dumps(cal)))
        self.assertEqual(xcal.loads(xcal.dumps(cal)), [cal])


class RoundTripTests(SynchronousTestCase):
    """
    Generated models survive xCal and iCalendar both ways.
    """

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(calendars())
    def test_round_trips(self, cal: Component) -> None:
        """model->xCal->model, model->iCal->model and xCal->iCal->xCal are identities."""
        from_xml = xcal.loads(xcal.dumps(cal))
        self.assertEqual(from_xml, [cal])
        self.assertEqual(ical.loads(ical.dumps(cal)), [cal])
        self.assertEqual(xcal.loads(xcal.dumps(ical.loads(ical.dumps(from_xml)))), [cal])

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(calendars())
    def test_text_writer_matches_tree(self, cal: Component) -> None:
        """The fast text writer and the lxml tree writer give the same document."""
        fast = etree.fromstring(xcal.dumps(cal))
        tree = xcal.to_element(cal)
        self.assertEqual(etree.tostring(fast, method="c14n"), etree.tostring(tree, method="c14n"))


class XMLPropertyTests(SynchronousTestCase):
    """
    RFC 6321 sections 4.1 and 4.2: foreign elements.
    """

    def test_foreign_element_becomes_xml_property(self) -> None:
        """A foreign element under <properties> is kept as the XML property and written back."""
        data = doc('<kml xmlns="http://www.opengis.net/kml/2.2"><name>A</name></kml>')
        cal = xcal.load_calendar(data)
        prop = cal.get("XML")
        assert prop is not None
        self.assertIn("http://www.opengis.net/kml/2.2", prop.value)
        again = xcal.load_calendar(xcal.dumps(cal))
        self.assertEqual(again, cal)
        self.assertIn(b"<name>A</name>", xcal.dumps(cal))

    def test_foreign_elements_elsewhere_ignored(self) -> None:
        """Foreign elements below a property are ignored."""
        cal = xcal.load_calendar(doc('<uid><text>x</text><f:y xmlns:f="urn:f"/></uid>'))
        self.assertEqual(cal.value("UID"), "x")

    def test_unknown_value_kept_raw(self) -> None:
        """<unknown> values are kept as they are and written without VALUE (section 5)."""
        cal = xcal.load_calendar(
            doc("<x-property><unknown>20110512T120000Z</unknown></x-property>")
        )
        self.assertIn("X-PROPERTY:20110512T120000Z", ical.dumps(cal))


class HardeningTests(SynchronousTestCase):
    """
    Untrusted input: entities, DTDs, size and depth.
    """

    def test_xxe_refused(self) -> None:
        """An external entity declaration is refused before any use."""
        data = (
            b'<?xml version="1.0"?><!DOCTYPE icalendar [<!ENTITY xxe SYSTEM '
            b'"file:///etc/passwd">]><icalendar xmlns="' + NS.encode() + b'"><vcalendar>'
            b"<properties><prodid><text>&xxe;</text></prodid></properties></vcalendar>"
            b"</icalendar>"
        )
        error = self.assertRaises(XCalError, xcal.loads, data)
        self.assertIn("entity", str(error))

    def test_billion_laughs_refused(self) -> None:
        """Nested internal entities (billion laughs) are refused, quickly."""
        decls = "".join(f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
        data = (
            f'<?xml version="1.0"?><!DOCTYPE icalendar [<!ENTITY l0 "lol">{decls}]>'
            f'<icalendar xmlns="{NS}"><vcalendar><properties><prodid><text>&l9;</text>'
            "</prodid></properties></vcalendar></icalendar>"
        ).encode()
        error = self.assertRaises(XCalError, xcal.loads, data)
        self.assertIn("entity", str(error))

    def test_undeclared_entity_refused(self) -> None:
        """An entity reference without declaration is a well-formedness error."""
        error = self.assertRaises(XCalError, xcal.loads, doc("<uid><text>&foo;</text></uid>"))
        self.assertIn("not well-formed", str(error))

    def test_external_dtd_not_loaded(self) -> None:
        """A DOCTYPE pointing at a DTD is not fetched (its entities stay undefined)."""
        import os
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            dtd = os.path.join(tmp, "x.dtd")
            with open(dtd, "w") as handle:
                handle.write('<!ENTITY secret "leaked">')
            data = (
                f'<!DOCTYPE icalendar SYSTEM "file://{dtd}"><icalendar xmlns="{NS}">'
                "<vcalendar><properties><prodid><text>&secret;</text></prodid></properties>"
                "</vcalendar></icalendar>"
            ).encode()
            error = self.assertRaises(XCalError, xcal.loads, data)
        self.assertNotIn("leaked", str(error))

    def test_size_cap(self) -> None:
        """Documents over the size limit are refused before parsing."""
        data = doc("<x-a><text>" + "a" * 2000 + "</text></x-a>")
        error = self.assertRaises(XCalError, xcal.loads, data, max_bytes=1000)
        self.assertIn("limit is 1000", str(error))

    def test_depth_cap_components(self) -> None:
        """Components nested beyond the depth limit are refused, naming the element."""
        inner = "<valarm><properties/></valarm>"
        for _ in range(30):
            inner = f"<valarm><properties/><components>{inner}</components></valarm>"
        data = (
            f'<icalendar xmlns="{NS}"><vcalendar><properties/><components>{inner}'
            "</components></vcalendar></icalendar>"
        ).encode()
        error = self.assertRaises(XCalError, xcal.loads, data, max_depth=20)
        self.assertIn("nesting deeper than 20", str(error))
        self.assertIn("/icalendar/vcalendar/components/valarm", str(error))

    def test_depth_cap_foreign(self) -> None:
        """A deep foreign subtree is refused too."""
        inner = "<f:a xmlns:f='urn:f'>" + "<f:b>" * 40 + "</f:b>" * 40 + "</f:a>"
        error = self.assertRaises(XCalError, xcal.loads, doc(inner), max_depth=20)
        self.assertIn("nesting deeper", str(error))


_SAMPLE = doc(
    "<dtstart><parameters><tzid><text>Europe/Helsinki</text></tzid></parameters>"
    "<date-time>2011-05-17T12:00:00</date-time></dtstart>"
    "<rrule><recur><freq>WEEKLY</freq><count>3</count></recur></rrule>"
    "<freebusy><period><start>2011-05-17T12:00:00Z</start><duration>PT1H</duration>"
    "</period></freebusy><geo><latitude>1.5</latitude><longitude>2.5</longitude></geo>"
)


class FuzzTests(SynchronousTestCase):
    """
    Damaged documents give XCalError or a model that writes back, never
    another exception.
    """

    @settings(max_examples=200, deadline=None)
    @given(
        st.integers(0, len(_SAMPLE)),
        st.integers(0, 12),
        st.sampled_from(
            [
                b"",
                b"<",
                b">",
                b"</x>",
                b"<text>",
                b"&",
                b"99",
                b"\xff",
                b"<period>",
                b"<recur>",
                b"T",
                b"-",
                b"<parameters>",
            ]
        ),
    )
    def test_damaged(self, at: int, cut: int, insert: bytes) -> None:
        """Cut and insert bytes anywhere: only XCalError may come out."""
        data = _SAMPLE[:at] + insert + _SAMPLE[at + cut :]
        try:
            cals = xcal.loads(data)
        except XCalError as e:
            self.assertTrue(e.fault)
        else:
            self.assertEqual(xcal.loads(xcal.dumps(cals)), cals)


class ErrorTests(SynchronousTestCase):
    """
    Malformed xCal gets an XCalError naming the element and the fault.
    """

    def check(self, data: bytes, where: str, fault: str) -> None:
        """Assert loading C{data} fails at C{where} with C{fault}."""
        error = self.assertRaises(XCalError, xcal.loads, data)
        self.assertIn(where, str(error.where))
        self.assertIn(fault, error.fault)

    def test_bad_date_time(self) -> None:
        """A malformed date-time names its value element."""
        self.check(
            doc("<dtstart><date-time>2011-13-45T00:00:00</date-time></dtstart>"),
            "/properties/dtstart/date-time",
            "not a valid DATE-TIME",
        )

    def test_unknown_value_element(self) -> None:
        """An unknown value element in the xCal namespace is refused."""
        self.check(
            doc("<summary><texte>x</texte></summary>"),
            "/summary/texte",
            "unknown value type element",
        )

    def test_mixed_value_types(self) -> None:
        """Mixing value types in one property is refused."""
        self.check(
            doc("<rdate><date>2011-01-01</date><date-time>2011-01-01T00:00:00</date-time></rdate>"),
            "rdate",
            "mixes value types",
        )

    def test_no_value(self) -> None:
        """A property without a value is refused."""
        self.check(doc("<x-a><parameters/></x-a>"), "x-a", "no value element")

    def test_value_with_children(self) -> None:
        """A value element holding elements is refused."""
        self.check(doc("<summary><text>a<b/></text></summary>"), "summary/text", "only text")

    def test_period_incomplete(self) -> None:
        """A period without end or duration is refused."""
        self.check(
            doc("<freebusy><period><start>2011-01-01T00:00:00Z</start></period></freebusy>"),
            "freebusy/period",
            "exactly one of end/duration",
        )

    def test_recur_without_freq(self) -> None:
        """A recur without freq is refused."""
        self.check(
            doc("<rrule><recur><count>3</count></recur></rrule>"), "rrule/recur", "FREQ is required"
        )

    def test_geo_incomplete(self) -> None:
        """A geo without longitude is refused."""
        self.check(doc("<geo><latitude>1.0</latitude></geo>"), "geo", "latitude then longitude")

    def test_request_status_shape(self) -> None:
        """A request-status without description is refused."""
        self.check(
            doc("<request-status><code>2.0</code></request-status>"),
            "request-status",
            "code, description",
        )

    def test_not_well_formed(self) -> None:
        """Broken XML is reported with its line, not an lxml traceback."""
        self.check(b"<icalendar><vcalendar>", "line 1", "not well-formed")

    def test_foreign_root(self) -> None:
        """A root that is not xCal is refused."""
        self.check(b'<feed xmlns="http://www.w3.org/2005/Atom"/>', "/", "neither RFC 6321")

    def test_wrong_root_in_namespace(self) -> None:
        """An xCal-namespace root other than icalendar/vcalendar is refused."""
        self.check(f'<vevent xmlns="{NS}"/>'.encode(), "/", "is not icalendar")

    def test_stray_element_in_component(self) -> None:
        """Elements other than properties/components in a component are refused."""
        self.check(
            f'<icalendar xmlns="{NS}"><vcalendar><foo/></vcalendar></icalendar>'.encode(),
            "/vcalendar/foo",
            "unexpected element",
        )

    def test_bad_parameter_value(self) -> None:
        """An unknown parameter value element is refused."""
        self.check(
            doc(
                "<attendee><parameters><rsvp><bool>true</bool></rsvp></parameters>"
                "<cal-address>mailto:a@b</cal-address></attendee>"
            ),
            "rsvp/bool",
            "unknown parameter value element",
        )

    def test_one_calendar_expected(self) -> None:
        """load_calendar insists on exactly one vcalendar."""
        data = f'<icalendar xmlns="{NS}"/>'.encode()
        self.assertEqual(xcal.loads(data), [])
        self.check_one(data)

    def check_one(self, data: bytes) -> None:
        """Assert load_calendar refuses C{data}."""
        error = self.assertRaises(XCalError, xcal.load_calendar, data)
        self.assertIn("expected one vcalendar", str(error))

    def test_unwritable_text(self) -> None:
        """A control character XML cannot carry is refused when writing, naming the property."""
        cal = new_calendar()
        cal.add("X-BAD", "a\x01b")
        error = self.assertRaises(XCalError, xcal.dumps, cal)
        self.assertIn("X-BAD", str(error))

    def test_unwritable_name(self) -> None:
        """A property name that cannot be an element name is refused when writing."""
        cal = new_calendar()
        cal.properties.append(Property("1BAD", "x"))
        self.assertRaises(XCalError, xcal.dumps, cal)

    def test_parameters_read_typed(self) -> None:
        """Parameters come back as strings: booleans TRUE/FALSE, enumerations upper-cased."""
        cal = xcal.load_calendar(
            doc(
                "<attendee><parameters><rsvp><boolean>true</boolean></rsvp>"
                "<partstat><text>accepted</text></partstat>"
                "<x-n><integer>5</integer></x-n></parameters>"
                "<cal-address>mailto:a@b</cal-address></attendee>"
            )
        )
        att = cal.get("ATTENDEE")
        assert att is not None
        self.assertEqual(att.params, {"RSVP": ("TRUE",), "PARTSTAT": ("ACCEPTED",), "X-N": ("5",)})
