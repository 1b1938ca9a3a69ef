# -*- test-case-name: tests.unit.media.test_dtmf -*-
"""
Tests for L{conference.media.dtmf}: RFC 4733 telephone events.
"""

from __future__ import annotations

from typing import List, Optional

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from conference.media.dtmf import (
    DIGITS,
    END_REPEATS,
    GAP_FRAMES,
    DTMFError,
    DTMFReceiver,
    DTMFSender,
    TelephoneEvent,
    event_code,
    parse_event,
)


def event(code: int, duration: int, end: bool = False) -> bytes:
    """A telephone-event payload at volume 10."""
    return TelephoneEvent(code, end, 10, duration).to_bytes()


class EventTests(SynchronousTestCase):
    """
    The payload format and the digit names.
    """

    @given(st.integers(0, 255), st.booleans(), st.integers(0, 63), st.integers(0, 65535))
    def test_round_trip(self, code: int, end: bool, volume: int, duration: int) -> None:
        """Every payload field survives to_bytes and parse_event."""
        ev = TelephoneEvent(code, end, volume, duration)
        self.assertEqual(parse_event(ev.to_bytes() + b"redundant"), ev)

    def test_names(self) -> None:
        """Events 0-15 are the DTMF digits, 16 is flash, others have no name."""
        self.assertEqual([TelephoneEvent(n, False, 0, 0).name for n in range(16)], list(DIGITS))
        self.assertEqual(TelephoneEvent(16, False, 0, 0).name, "flash")
        self.assertIsNone(TelephoneEvent(40, False, 0, 0).name)
        self.assertEqual([event_code(d) for d in "09*#aD"], [0, 9, 10, 11, 12, 15])
        self.assertEqual(event_code("FLASH"), 16)
        for bad in ("x", "", "12"):
            self.assertRaises(DTMFError, event_code, bad)

    def test_short_payload(self) -> None:
        """A payload under 4 bytes is refused."""
        self.assertRaises(DTMFError, parse_event, b"\x01\x02\x03")


class ReceiverTests(SynchronousTestCase):
    """
    Each event reported once.
    """

    def test_one_digit_per_event(self) -> None:
        """Updates and the three end packets of an event report its digit once."""
        receiver = DTMFReceiver()
        seen: List[Optional[str]] = [
            receiver.receive(1000, event(5, d)) for d in (160, 320, 480, 640)
        ]
        seen += [receiver.receive(1000, event(5, 800, end=True)) for _ in range(3)]
        seen.append(receiver.receive(3000, event(11, 160)))
        self.assertEqual([s for s in seen if s is not None], ["5", "#"])
        self.assertEqual(receiver.events, 2)

    def test_repeated_digit(self) -> None:
        """The same digit pressed twice (two timestamps) is reported twice."""
        receiver = DTMFReceiver()
        first = receiver.receive(1000, event(1, 800, end=True))
        second = receiver.receive(3000, event(1, 160))
        self.assertEqual((first, second), ("1", "1"))

    def test_long_event_segments(self) -> None:
        """A long event continued in a new segment (RFC 4733 2.5.1.3) is not a new digit."""
        receiver = DTMFReceiver()
        self.assertEqual(receiver.receive(0, event(7, 65535)), "7")
        self.assertIsNone(receiver.receive(65535, event(7, 800)))

    def test_unknown_event(self) -> None:
        """Events other than digits and flash are not reported."""
        self.assertIsNone(DTMFReceiver().receive(0, event(70, 160)))


class SenderTests(SynchronousTestCase):
    """
    Digits to packets.
    """

    def test_packets_of_a_digit(self) -> None:
        """A 100 ms digit: five packets at one timestamp, growing durations, the end three times."""
        sender = DTMFSender()
        sender.queue("7")
        packets = []
        for tick in range(5):
            packets.extend(sender.next_packets(8000 + 160 * tick))
        self.assertEqual(len(packets), 4 + END_REPEATS)
        self.assertEqual({ts for _, ts, _ in packets}, {8000})
        self.assertEqual([m for _, _, m in packets], [True] + [False] * (3 + END_REPEATS))
        events = [parse_event(p) for p, _, _ in packets]
        self.assertEqual([e.duration for e in events], [160, 320, 480, 640] + [800] * END_REPEATS)
        self.assertEqual([e.end for e in events], [False] * 4 + [True] * END_REPEATS)
        self.assertEqual({e.event for e in events}, {7})
        self.assertFalse(sender.busy)

    def test_gap_between_digits(self) -> None:
        """Audio goes out for GAP_FRAMES ticks between two digits."""
        sender = DTMFSender()
        sender.queue("12", duration=160)
        ticks = [sender.next_packets(160 * n) for n in range(2 + GAP_FRAMES)]
        self.assertEqual([len(t) for t in ticks], [END_REPEATS] + [0] * GAP_FRAMES + [END_REPEATS])
        self.assertEqual(ticks[-1][0][1], 160 * (1 + GAP_FRAMES))

    def test_refusals(self) -> None:
        """Bad digits, durations and an overfull queue are refused; clear empties the queue."""
        sender = DTMFSender()
        self.assertRaises(DTMFError, sender.queue, "1x")
        self.assertRaises(DTMFError, sender.queue, "1", 100)
        self.assertRaises(DTMFError, sender.queue, "1", 70000)
        self.assertRaises(DTMFError, sender.queue, "1" * 65)
        sender.queue("123")
        sender.clear()
        self.assertFalse(sender.busy)
        self.assertEqual(sender.next_packets(0), [])

    @given(st.text(alphabet=DIGITS, min_size=1, max_size=8))
    def test_sender_to_receiver(self, digits: str) -> None:
        """What the sender sends, the receiver reports, digit for digit."""
        sender, receiver = DTMFSender(), DTMFReceiver()
        sender.queue(digits)
        got = []
        for tick in range(len(digits) * 10):
            for payload, ts, _ in sender.next_packets(160 * tick):
                name = receiver.receive(ts, payload)
                if name is not None:
                    got.append(name)
        self.assertEqual("".join(got), digits)
