# -*- test-case-name: tests.unit.control.test_actions -*-
"""
Tests for L{conference.control.actions}: Refer-To targets and control
commands, and every way they can be wrong.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from conference.control.actions import (
    DIAL_OUT,
    LOCK,
    MUTE,
    PIN_ACCEPTED,
    PIN_FAILED,
    PIN_MORE,
    PIN_WRONG,
    REMOVE,
    UNLOCK,
    Action,
    PinEntry,
    parse_command,
    refer_action,
)
from conference.sip.errors import RemoteProtocolError

CONF = "sip:conf@example.com"


def others(address: str) -> bool:
    return address == "sip:other-conf@example.com"


class ReferToTests(SynchronousTestCase):
    """
    refer_action.
    """

    def test_remove(self) -> None:
        """Refer-To with method=BYE removes (RFC 4579 section 5.5)."""
        self.assertEqual(
            refer_action(["<sip:bob@Example.COM;method=BYE>"], CONF),
            Action(REMOVE, "sip:bob@example.com"),
        )

    def test_dial_out(self) -> None:
        """Refer-To with no method, or INVITE, dials out (section 5.4)."""
        for value in ("<sip:bob@example.com>", "Bob <sip:bob@example.com;method=INVITE>"):
            self.assertEqual(refer_action([value], CONF), Action(DIAL_OUT, "sip:bob@example.com"))

    def assertRefused(self, status: int, values: list[str]) -> None:
        e = self.assertRaises(RemoteProtocolError, refer_action, values, CONF, others)
        self.assertEqual(e.status, status, e.reason)

    def test_malformed(self) -> None:
        """No, two or malformed Refer-To, non-SIP targets, headers or other methods are 400."""
        self.assertRefused(400, [])
        self.assertRefused(400, ["<sip:a@example.com>", "<sip:b@example.com>"])
        self.assertRefused(400, ["<sip:bob@example.com"])
        self.assertRefused(400, ["<mailto:bob@example.com>"])
        self.assertRefused(400, ["<sip:example.com;method=BYE>"])
        self.assertRefused(400, ["<sip:bob@example.com?Replaces=abc>"])
        self.assertRefused(400, ["<sip:bob@example.com;method=MESSAGE>"])

    def test_loops(self) -> None:
        """Referring to the conference itself, another conference or a focus is 482."""
        self.assertRefused(482, ["<sip:conf@example.com;method=BYE>"])
        self.assertRefused(482, ["<sip:other-conf@example.com>"])
        self.assertRefused(482, ["<sip:x@example.com>;isfocus"])

    @given(st.text(max_size=60))
    def test_never_crashes(self, text: str) -> None:
        """Any Refer-To value is an action or a 4xx, nothing else."""
        try:
            refer_action([text], CONF, others)
        except RemoteProtocolError as e:
            self.assertIn(e.status, (400, 482))


class CommandTests(SynchronousTestCase):
    """
    parse_command.
    """

    def test_commands(self) -> None:
        """The five commands, verbs in any case."""
        self.assertEqual(
            parse_command(b"MUTE sip:bob@example.com", CONF), Action(MUTE, "sip:bob@example.com")
        )
        self.assertEqual(
            parse_command(b"remove <sip:bob@example.com>\r\n", CONF),
            Action(REMOVE, "sip:bob@example.com"),
        )
        self.assertEqual(parse_command(b"lock", CONF), Action(LOCK))
        self.assertEqual(parse_command(b" Unlock ", CONF), Action(UNLOCK))

    def test_bad(self) -> None:
        """Unknown verbs, missing or extra targets, several lines, bad UTF-8 are 400."""
        for body in (
            b"",
            b"shout sip:bob@example.com",
            b"mute",
            b"lock sip:bob@example.com",
            b"mute sip:a@example.com\nlock",
            b"\xff\xfe",
            b"mute " + b"a" * 2000,
        ):
            e = self.assertRaises(RemoteProtocolError, parse_command, body, CONF)
            self.assertEqual(e.status, 400, body)

    @given(st.binary(max_size=80))
    def test_never_crashes(self, body: bytes) -> None:
        """Any body is a command or a 4xx."""
        try:
            parse_command(body, CONF, others)
        except RemoteProtocolError as e:
            self.assertIn(e.status, (400, 482))


class PinEntryTests(SynchronousTestCase):
    """
    PinEntry.
    """

    def test_right(self) -> None:
        """Digits then # give the outcome; * starts again."""
        entry = PinEntry("1234")
        self.assertEqual([entry.digit(d) for d in "12*123"], [PIN_MORE] * 6)
        self.assertEqual(entry.digit("4"), PIN_MORE)
        self.assertEqual(entry.digit("#"), PIN_ACCEPTED)

    def test_wrong_then_failed(self) -> None:
        """Each wrong attempt counts; the third fails the entry for good."""
        entry = PinEntry("1", tries=3)
        self.assertEqual(
            [entry.digit(d) for d in "2#3#"], [PIN_MORE, PIN_WRONG, PIN_MORE, PIN_WRONG]
        )
        self.assertEqual([entry.digit(d) for d in "4#"], [PIN_MORE, PIN_FAILED])
        self.assertEqual(entry.digit("1"), PIN_FAILED)

    def test_too_long(self) -> None:
        """An attempt longer than the most digits is wrong at once."""
        entry = PinEntry("1", max_digits=4)
        self.assertEqual([entry.digit("9") for _ in range(5)], [PIN_MORE] * 4 + [PIN_WRONG])

    @given(st.text(alphabet="0123456789*#ABCD", max_size=40))
    def test_any_digits(self, digits: str) -> None:
        """Any digits give known outcomes, and at most three wrong attempts are counted."""
        entry = PinEntry("42")
        outcomes = {entry.digit(d) for d in digits}
        self.assertLessEqual(outcomes, {PIN_MORE, PIN_ACCEPTED, PIN_WRONG, PIN_FAILED})
        self.assertLessEqual(entry.wrong, 3)
