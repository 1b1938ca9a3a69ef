# -*- test-case-name: tests.unit.sip.test_errors -*-
"""
Tests for L{conference.sip.errors}.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from conference.sip.errors import (
    LocalProtocolError,
    MessageTooLarge,
    RemoteProtocolError,
    SIPProtocolError,
    reason_phrase,
)


class ErrorTests(SynchronousTestCase):
    """
    Protocol errors carry status, reason and extra headers.
    """

    def test_defaults(self) -> None:
        """
        The status defaults to 400 and the reason is kept.
        """
        e = RemoteProtocolError("Bad Via")
        self.assertEqual((e.status, e.reason, e.headers), (400, "Bad Via", []))
        self.assertEqual(str(e), "Bad Via")
        self.assertIsInstance(e, SIPProtocolError)

    def test_reasonOneLine(self) -> None:
        """
        Whitespace and line breaks in a reason collapse to single spaces;
        an empty reason becomes the status's phrase.
        """
        self.assertEqual(RemoteProtocolError("a\r\n  b\t c").reason, "a b c")
        self.assertEqual(RemoteProtocolError("", 415).reason, "Unsupported Media Type")

    def test_headers(self) -> None:
        """
        Extra headers come from a mapping or a sequence of pairs.
        """
        e = RemoteProtocolError("Bad Extension", 420, {"Unsupported": "foo"})
        self.assertEqual(e.headers, [("Unsupported", "foo")])
        local = LocalProtocolError("x", 500, [("A", "1"), ("A", "2")])
        self.assertEqual(local.headers, [("A", "1"), ("A", "2")])

    def test_tooLarge(self) -> None:
        """
        MessageTooLarge is a 513 remote error.
        """
        e = MessageTooLarge()
        self.assertIsInstance(e, RemoteProtocolError)
        self.assertEqual((e.status, e.reason), (513, "Message Too Large"))
        self.assertEqual(repr(e), "MessageTooLarge('Message Too Large', 513)")

    def test_reasonPhrase(self) -> None:
        """
        Registered codes have their phrase (Twisted's spelling where it had
        one); others are Unknown.
        """
        self.assertEqual(reason_phrase(489), "Bad Event")
        self.assertEqual(reason_phrase(505), "SIP Version not supported")
        self.assertEqual(reason_phrase(555), "Unknown")
