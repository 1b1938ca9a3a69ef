# -*- test-case-name: tests.unit.calendar.test_xcard -*-
"""
Tests for L{conference.calendar.xcard}: the 66 xCard pairs of the sabre
corpus convert to the expected vCard text (compared parsed), and bad xCard
gets precise errors.
"""

from __future__ import annotations

from typing import Any, List, Tuple

from icalendar.parser import Contentlines
from lxml import etree
from twisted.trial.unittest import SynchronousTestCase

from conference.calendar import ical, xcard
from conference.calendar.errors import XCalError
from conference.calendar.ical import raw_parts_of
from tests.unit.calendar.support import xcal_file

NS = xcard.NS


def content(text: str) -> List[Tuple[Any, ...]]:
    """
    vCard text as sorted (NAME, parameters, value) with list parameters
    flattened (TYPE="a,b" equals TYPE=a,b) and XML values compared as
    elements (namespace, attributes, text), prefixes aside.
    """
    out: List[Tuple[Any, ...]] = []
    for line in Contentlines.from_ical(text):
        if not line:
            continue
        name, params, value = raw_parts_of(line)
        flat = tuple(
            sorted(
                (
                    str(k).upper(),
                    tuple(
                        x for v in (vs if isinstance(vs, list) else [vs]) for x in str(v).split(",")
                    ),
                )
                for k, vs in params.items()
            )
        )
        if name.upper().endswith("XML"):
            elem = etree.fromstring(value.replace("\\,", ",").replace("\\;", ";"))
            out.append((name.upper(), flat, elem.tag, sorted(elem.attrib.items()), elem.text))
        else:
            out.append((name.upper(), flat, value))
    return sorted(out, key=repr)


def card(body: str) -> bytes:
    """
    An xCard document with C{body} inside one vcard.
    """
    return f'<vcards xmlns="{NS}"><vcard>{body}</vcard></vcards>'.encode()


class PairTests(SynchronousTestCase):
    """
    The sabre xCard pairs.
    """

    def test_every_xcard_pair(self) -> None:
        """Each xCard pair converts to vCard text equal (parsed) to the expected one."""
        checked = 0
        for xml_path in sorted(xcal_file("sabre-pairs", "pairs").glob("*.xml")):
            data = xml_path.read_bytes()
            if NS.encode() not in data:
                continue
            text = ical.dumps(xcard.loads(data))
            expected = xml_path.with_suffix(".ics").read_text()
            self.assertEqual(content(text), content(expected), xml_path.name)
            checked += 1
        self.assertEqual(checked, 66)

    def test_structured_and_groups(self) -> None:
        """Structured values join parts with ';' and escape commas; groups prefix names."""
        [vc] = xcard.loads(
            card(
                "<n><surname>Doe</surname><given>J.</given><additional>A,B</additional>"
                "<prefix/><suffix/></n><group name='work'><tel><uri>tel:1</uri></tel></group>"
                "<org><text>A, Inc.</text><text>Unit</text></org>"
                "<nickname><text>Jim</text><text>Jimmie</text></nickname>"
            )
        )
        text = ical.dumps(vc)
        self.assertIn("N:Doe;J.;A\\,B;;", text)
        self.assertIn("WORK.TEL:tel:1", text)
        self.assertIn("ORG:A\\, Inc.;Unit", text)
        self.assertIn("NICKNAME:Jim,Jimmie", text)
        self.assertTrue(text.startswith("BEGIN:VCARD\r\nVERSION:4.0\r\n"))


class ErrorTests(SynchronousTestCase):
    """
    Bad xCard.
    """

    def test_not_xcard(self) -> None:
        """A document that is not <vcards> is refused."""
        error = self.assertRaises(XCalError, xcard.loads, b"<vcards/>")
        self.assertIn("not xCard", str(error))

    def test_stray_element(self) -> None:
        """Only vcard elements sit in vcards."""
        data = f'<vcards xmlns="{NS}"><vcal/></vcards>'.encode()
        self.assertIn("only <vcard>", str(self.assertRaises(XCalError, xcard.loads, data)))

    def test_bad_group(self) -> None:
        """A group needs a usable name."""
        error = self.assertRaises(
            XCalError, xcard.loads, card("<group><fn><text>x</text></fn></group>")
        )
        self.assertIn("group needs a name", str(error))

    def test_no_value(self) -> None:
        """A property without value is refused, naming it."""
        error = self.assertRaises(XCalError, xcard.loads, card("<fn/>"))
        self.assertIn("/vcards/vcard/fn", str(error))

    def test_unknown_value_element(self) -> None:
        """An unknown value element is refused."""
        error = self.assertRaises(XCalError, xcard.loads, card("<fn><texte>x</texte></fn>"))
        self.assertIn("unknown value type element", str(error))

    def test_value_with_children(self) -> None:
        """A value element holding elements is refused."""
        error = self.assertRaises(XCalError, xcard.loads, card("<fn><text>a<b/></text></fn>"))
        self.assertIn("only text", str(error))

    def test_empty_parameter(self) -> None:
        """A parameter without value is refused."""
        error = self.assertRaises(
            XCalError, xcard.loads, card("<fn><parameters><pref/></parameters><text>x</text></fn>")
        )
        self.assertIn("parameter has no value", str(error))

    def test_entities_refused(self) -> None:
        """The hardened parser is shared: entity declarations are refused."""
        data = b'<!DOCTYPE v [<!ENTITY a "b">]>' + card("<fn><text>&a;</text></fn>")
        self.assertIn("entity", str(self.assertRaises(XCalError, xcard.loads, data)))

    def test_deep_foreign(self) -> None:
        """A deep foreign element is refused."""
        deep = "<f:a xmlns:f='urn:f'>" + "<f:b>" * 30 + "</f:b>" * 30 + "</f:a>"
        error = self.assertRaises(XCalError, xcard.loads, card(deep), max_depth=10)
        self.assertIn("nesting deeper", str(error))
