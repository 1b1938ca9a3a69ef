# -*- test-case-name: tests.unit.sip.test_compacted -*-
"""
Tests for L{conference.sip.compacted}: messages held as their bytes alone.
"""

from __future__ import annotations

import gc
import platform

from twisted.trial.unittest import SynchronousTestCase

from conference.sip.compacted import CompactRequest, CompactResponse, from_wire
from conference.sip.message import Request, Response, make_response
from conference.sip.uri import SIPURI
from tests.unit.sip.test_message import invite


class CompactTests(SynchronousTestCase):
    """
    compact() keeps a message's bytes alone and reads them back when asked.
    """

    def test_compact(self) -> None:
        """A compacted message keeps only its bytes and start line, and serializes to them."""
        r = invite()
        resp = make_response(r, 404, to_tag="t1")
        data = resp.to_bytes()
        resp.compact(data)
        self.assertIsInstance(resp, CompactResponse)
        self.assertEqual(sorted(vars(resp)), ["_wire", "code", "phrase"])
        self.assertIs(resp.to_bytes(), data)
        self.assertEqual(resp.code, 404)
        r.compact()
        self.assertIsInstance(r, CompactRequest)
        self.assertEqual(sorted(vars(r)), ["_wire", "method"])
        self.assertEqual(r.to_bytes(), invite().to_bytes())

    def test_compact_reads_back(self) -> None:
        """Reading a dropped part parses the bytes once; the message is then its own class again."""
        for message in (invite(), make_response(invite(), 200, to_tag="t1", body=b"x")):
            body = message.body
            before = message.to_bytes()
            fields = dict(message.headers)
            message.compact()
            self.assertEqual(message.headers, fields)
            self.assertIn(type(message), (Request, Response))
            self.assertNotIn("_wire", vars(message))
            self.assertEqual(message.to_bytes(), before)
            self.assertEqual(message.body, body)
        r = invite()
        r.compact()
        self.assertEqual((str(r.uri), r.to.tag, r.cseq.number), ("sip:bob@example.com", None, 7))
        self.assertIsInstance(r.uri, SIPURI)

    def test_compact_then_changed(self) -> None:
        """A compacted message changed after reading back serializes the change."""
        resp = make_response(invite(), 404, to_tag="t1")
        resp.compact()
        resp.add_header("Retry-After", "5")
        self.assertIn(b"Retry-After: 5\r\n", resp.to_bytes())
        resp.compact()
        resp.remove_header("retry-after")
        self.assertNotIn(b"Retry-After", resp.to_bytes())
        resp.compact()
        resp.body = b"x"
        self.assertIn(b"Content-Length: 1\r\n", resp.to_bytes())

    def test_compact_twice_and_repr(self) -> None:
        """Compacting again keeps the first bytes; repr and unknown attributes read nothing back."""
        r = invite()
        r.compact(b"INVITE sip:bob@example.com SIP/2.0\r\nCall-ID: x\r\n\r\n")
        r.compact(b"ignored")
        self.assertEqual(repr(r), "<Request INVITE (compacted)>")
        self.assertRaises(AttributeError, getattr, r, "__deepcopy_hook__")
        self.assertIsInstance(r, CompactRequest)
        self.assertEqual(r.header("call-id"), "x")
        self.assertRaises(AttributeError, getattr, r, "no_such_attribute")

    def test_compact_untracked(self) -> None:
        """A compacted message holds no container the collector would visit."""
        resp = make_response(invite(), 404, to_tag="t1")
        resp.compact(resp.to_bytes())
        self.assertFalse(any(isinstance(v, (dict, list, tuple)) for v in vars(resp).values()))
        if platform.python_implementation() == "CPython":
            gc.collect()
            self.assertFalse(any(gc.is_tracked(v) for v in vars(resp).values()))


class FromWireTests(SynchronousTestCase):
    """
    from_wire() makes a compacted message of serialized bytes.
    """

    def test_request(self) -> None:
        """A request's method is read from the start line; the rest when asked."""
        data = invite().to_bytes()
        r = from_wire(data)
        self.assertIsInstance(r, CompactRequest)
        self.assertEqual(sorted(vars(r)), ["_wire", "method"])
        self.assertIs(r.to_bytes(), data)
        assert isinstance(r, Request)
        self.assertEqual(
            (r.method, str(r.uri), r.cseq.number), ("INVITE", "sip:bob@example.com", 7)
        )
        self.assertEqual(r.to_bytes(), data)

    def test_response(self) -> None:
        """A response's code and phrase, spaces in it included, are those compact() keeps."""
        resp = make_response(invite(), 480, "Temporarily Not Here", to_tag="t1")
        data = resp.to_bytes()
        made = from_wire(data)
        resp.compact(data)
        self.assertIsInstance(made, CompactResponse)
        self.assertEqual(vars(made), vars(resp))
        assert isinstance(made, Response)
        self.assertEqual(made.to.tag, "t1")

    def test_not_a_message(self) -> None:
        """Bytes without a start line are refused."""
        for data in (b"", b"\r\n\r\n", b"INVITE\r\n", b"SIP/2.0 abc OK\r\n\r\n"):
            self.assertRaises(ValueError, from_wire, data)
