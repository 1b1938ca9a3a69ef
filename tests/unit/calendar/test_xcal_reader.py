# -*- test-case-name: tests.unit.calendar.test_xcal_reader -*-
"""
Tests for L{conference.calendar.xcal_reader}: the fast path reads every
document exactly as the strict reader does (same typed values, same
errors), handles the common shapes itself, and keeps its caches bounded.
"""

from __future__ import annotations

from typing import Any, List, Tuple

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from conference.calendar import xcal, xcal_reader
from conference.calendar.errors import XCalError
from conference.calendar.model import Component
from tests.unit.calendar.support import calendars, conference_event, request, xcal_file

NS = xcal_reader.NS


def doc(body: str) -> bytes:
    """
    An RFC 6321 document with C{body} inside one vcalendar's properties.
    """
    return (
        f'<icalendar xmlns="{NS}"><vcalendar><properties>{body}</properties>'
        "<components/></vcalendar></icalendar>"
    ).encode()


def strong(comps: List[Component]) -> List[Any]:
    """
    A form of C{comps} stricter than model equality: property order,
    parameter order and the exact Python type of every value count.
    """
    out: List[Any] = []
    for top in comps:
        for comp in top.walk():
            out.append(comp.name)
            for prop in comp.properties:
                values = [(type(v).__name__, repr(v)) for v in prop.values]
                out.append((prop.name, list(prop.params.items()), prop.value_type, values))
    return out


def outcome(data: bytes, strict: bool) -> Tuple[str, Any]:
    """
    What reading C{data} gives: ("ok", strong form) or ("error", fault, where).
    """
    try:
        root = xcal_reader.parse_xml(data)
        return ("ok", strong(xcal_reader.read_root(root, strict=strict)))
    except XCalError as e:
        return ("error", (e.fault, e.where))


class EquivalenceTests(SynchronousTestCase):
    """
    The fast path and the strict reader agree on every input.
    """

    def assertSame(self, data: bytes) -> None:
        """Assert the fast and strict readers give the same outcome for C{data}."""
        self.assertEqual(outcome(data, False), outcome(data, True), data[:300])

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(calendars(), st.booleans())
    def test_generated(self, cal: Component, pretty: bool) -> None:
        """Generated calendars, compact or pretty-printed, read the same both ways."""
        data = xcal.dumps(cal, pretty=pretty)
        self.assertSame(data)
        self.assertEqual(xcal.loads(data), [cal])

    def test_corpus(self) -> None:
        """The sabre xCal pairs and the RFC 6321 examples read the same both ways."""
        files = sorted(xcal_file("sabre-pairs", "pairs").glob("*.xml"))
        files += sorted(xcal_file("examples-rfc6321").glob("*.xml"))
        files += sorted(xcal_file("examples-biweekly").glob("*.xml"))
        read = 0
        for path in files:
            data = path.read_bytes()
            if NS.encode() not in data:
                continue
            self.assertSame(data)
            read += 1
        self.assertGreater(read, 30)

    def test_shapes(self) -> None:
        """Each property shape, valid or not, reads the same both ways."""
        shapes = [
            "<uid><text>a</text></uid>",
            "<uid><text/></uid>",
            "<categories><text>a</text><text>b</text></categories>",
            "<sequence><integer>7</integer></sequence>",
            "<sequence><integer>x</integer></sequence>",
            "<x-flag><boolean>1</boolean></x-flag>",
            "<dtstart><date>2011-01-01</date></dtstart>",
            "<dtstart><date-time>2011-01-01T10:00:60Z</date-time></dtstart>",
            "<dtstart><date-time>2011-02-30T10:00:00</date-time></dtstart>",
            "<duration><duration>PT1H</duration></duration>",
            "<tzoffsetto><utc-offset>-05:00</utc-offset></tzoffsetto>",
            "<x-t><time>12:00:00Z</time></x-t>",
            "<x-f><float>1.5</float></x-f>",
            "<x-f><float>inf</float></x-f>",
            "<attach><binary>aGVsbG8=</binary></attach>",
            "<attach><parameters><encoding><text>BASE64</text></encoding></parameters>"
            "<binary>aGVsbG8=</binary></attach>",
            "<geo><latitude>1.5</latitude><longitude>2.5</longitude></geo>",
            "<geo><longitude>2.5</longitude><latitude>1.5</latitude></geo>",
            "<request-status><code>2.0</code><description>ok</description></request-status>",
            "<rdate><date>2011-01-01</date><date-time>2011-01-01T00:00:00</date-time></rdate>",
            "<rdate><period><start>2011-01-01T00:00:00Z</start><duration>PT1H</duration>"
            "</period><period><start>2011-01-02T00:00:00Z</start><end>2011-01-02T01:00:00Z"
            "</end></period></rdate>",
            "<freebusy><period><start>2011-01-01T00:00:00Z</start></period></freebusy>",
            "<freebusy><period><start>2011-01-01T00:00:00Z</start><x>1</x></period></freebusy>",
            "<freebusy><period><start>x</start><end>y</end></period></freebusy>",
            "<rdate><date>2011-01-01</date><period><start>2011-01-01T00:00:00Z</start>"
            "<duration>PT1H</duration></period></rdate>",
            "<rrule><recur><freq>DAILY</freq></recur></rrule>",
            "<summary><text>a<b/></text></summary>",
            "<summary><texte>x</texte></summary>",
            "<summary><text>x</text><f:y xmlns:f='urn:f'/></summary>",
            "<summary>bare</summary>",
            "<tzid>US/Eastern</tzid>",
            "<x-a><parameters/></x-a>",
            "<f:kml xmlns:f='urn:f'><f:name>A</f:name></f:kml>",
            "<summary><text>a</text><parameters><language><text>fi</text></language>"
            "</parameters></summary>",
            "<attendee><parameters><rsvp><boolean>true</boolean></rsvp>"
            "<partstat><text>accepted</text></partstat><x-n><integer>5</integer></x-n>"
            "</parameters><cal-address>mailto:a@b</cal-address></attendee>",
            "<attendee><parameters><rsvp><text>1</text></rsvp><role><text>chair</text>"
            "</role><cutype><unknown>group</unknown></cutype></parameters>"
            "<cal-address>mailto:a@b</cal-address></attendee>",
            "<attendee><parameters><rsvp><boolean>maybe</boolean></rsvp></parameters>"
            "<cal-address>mailto:a@b</cal-address></attendee>",
            "<attendee><parameters><rsvp><bool>true</bool></rsvp></parameters>"
            "<cal-address>mailto:a@b</cal-address></attendee>",
            "<attendee><parameters><rsvp><text>yes</text><boolean>0</boolean></rsvp>"
            "</parameters><cal-address>mailto:a@b</cal-address></attendee>",
            "<attendee><parameters><delegated-to><cal-address>mailto:c@d</cal-address>"
            "<cal-address>mailto:e@f</cal-address></delegated-to><member><cal-address>"
            "mailto:g@h</cal-address></member></parameters>"
            "<cal-address>mailto:a@b</cal-address></attendee>",
            "<attendee><parameters><partstat><text>a</text><text>b</text></partstat>"
            "<x-flag><boolean>false</boolean><boolean>TRUE</boolean></x-flag>"
            "<x-many><text>a</text><text>b</text></x-many></parameters>"
            "<cal-address>mailto:a@b</cal-address></attendee>",
            "<attendee><parameters><cn/></parameters><cal-address>x</cal-address></attendee>",
            "<attendee><parameters><cn><text>a<b/></text></cn></parameters>"
            "<cal-address>x</cal-address></attendee>",
            "<attendee><parameters><cn><f:x xmlns:f='urn:f'/><text>a</text></cn>"
            "</parameters><cal-address>x</cal-address></attendee>",
            "<attendee><parameters><f:p xmlns:f='urn:f'><text>a</text></f:p><CN><text>a"
            "</text></CN><Rsvp><text>yes</text></Rsvp></parameters>"
            "<cal-address>x</cal-address></attendee>",
            "<dtstart><parameters><value><text>DATE</text></value></parameters>"
            "<date>2011-01-01</date></dtstart>",
            "<dtstart><parameters><tzid><text>A</text></tzid></parameters><parameters>"
            "<tzid><text>B</text></tzid></parameters><date-time>2011-01-01T00:00:00"
            "</date-time></dtstart>",
            "<x-b><parameters><x-i><date-time>2011-01-01T00:00:00</date-time></x-i>"
            "</parameters><text>a</text></x-b>",
        ]
        for body in shapes:
            self.assertSame(doc(body))

    @settings(max_examples=200, deadline=None)
    @given(st.integers(0, 10_000), st.integers(0, 8), st.sampled_from(["", "<", "x", "</a>"]))
    def test_damaged(self, at: int, cut: int, insert: str) -> None:
        """Damaged documents give the same model or the same error both ways."""
        text = xcal.dumps(request(conference_event())).decode()
        at %= len(text)
        self.assertSame((text[:at] + insert + text[at + cut :]).encode())


class FastPathTests(SynchronousTestCase):
    """
    The common shapes never reach the strict reader.
    """

    def test_conference_request_fast(self) -> None:
        """An iSIP conference REQUEST (parameters, date-times, booleans) takes the fast path."""
        calls: List[Any] = []
        strict = xcal_reader._read_property

        def spy(elem: Any, depth: int, max_depth: int) -> Any:
            calls.append(elem.tag)
            return strict(elem, depth, max_depth)

        self.patch(xcal_reader, "_read_property", spy)
        cal = request(conference_event())
        self.assertEqual(xcal.loads(xcal.dumps(cal)), [cal])
        self.assertEqual([c for c in calls if not c.endswith(("}geo", "}request-status"))], [])

    def test_fallback_errors_name_the_element(self) -> None:
        """A fault met on the fast path is reported by the strict reader, with its path."""
        error = self.assertRaises(
            XCalError,
            xcal.loads,
            doc("<dtstamp><date-time>2011-13-01T00:00:00Z</date-time></dtstamp>"),
        )
        self.assertIn("/properties/dtstamp/date-time", str(error.where))
        self.assertIn("not a valid DATE-TIME", error.fault)

    def test_caches_bounded(self) -> None:
        """Many distinct names neither grow the caches past their limit nor change results."""
        self.patch(xcal_reader, "_FAST_NAMES", {})
        self.patch(xcal_reader, "_FAST_PARAMS", dict(xcal_reader._FAST_PARAMS))
        self.patch(xcal_reader, "_CACHE_LIMIT", len(xcal_reader._FAST_PARAMS) + 10)
        params = "".join(f"<x-p{i}><text>{i}</text></x-p{i}>" for i in range(50))
        props = "".join(f"<x-q{i}><text>{i}</text></x-q{i}>" for i in range(50))
        data = doc(f"<x-a><parameters>{params}</parameters><text>a</text></x-a>{props}")
        self.assertEqual(outcome(data, False), outcome(data, True))
        self.assertLessEqual(len(xcal_reader._FAST_PARAMS), xcal_reader._CACHE_LIMIT)
        self.assertLessEqual(len(xcal_reader._FAST_NAMES), xcal_reader._CACHE_LIMIT)
        cal = xcal.load_calendar(data)
        prop = cal.get("X-A")
        assert prop is not None
        self.assertEqual(prop.params["X-P49"], ("49",))
        self.assertEqual(cal.value("X-Q49"), "49")

    def test_root_outside_namespace(self) -> None:
        """read_root refuses a root that is not in the RFC 6321 namespace."""
        root = xcal_reader.parse_xml(b"<icalendar/>")
        error = self.assertRaises(XCalError, xcal_reader.read_root, root)
        self.assertIn("namespace", error.fault)
