# -*- test-case-name: tests.unit.test_overload_feedback -*-
"""
Tests for L{conference.overload_feedback}: RFC 7339 advice from the share
the server sheds, and its place in a response's top Via.
"""

from __future__ import annotations

import re
from typing import List, Optional, Tuple

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from conference.overload_feedback import (
    Advice,
    OverloadFeedback,
    asks_feedback,
    with_feedback,
    with_raw_feedback,
)
from conference.sip.message import make_response
from conference.sip.parser import parse_datagram
from conference.sip.via import parse_via
from tests.builders import make_request

#: RFC 7339's oc-seq: 1*12DIGIT "." 1*5DIGIT.
SEQ = re.compile(r"\d{1,12}\.\d{1,5}")
NOW = 1_764_000_000.25


class AdviceTests(SynchronousTestCase):
    """
    L{OverloadFeedback.advice}: the share refused, its validity and a
    sequence number that grows with every change.
    """

    def test_quiet_when_never_shedding(self) -> None:
        """A server that never shed has nothing to say."""
        self.assertIsNone(OverloadFeedback().advice(0.0, NOW))

    def test_share_as_percent(self) -> None:
        """The share refused becomes the percentage to drop, valid for 500 ms."""
        advice = OverloadFeedback().advice(0.514, NOW)
        assert advice is not None
        self.assertEqual((advice.percent, advice.validity_ms), (52, 500))
        self.assertRegex(advice.seq, SEQ)

    def test_seq_kept_while_unchanged(self) -> None:
        """The same share keeps its sequence number; a new one gets a larger one."""
        feedback = OverloadFeedback()
        first = feedback.advice(0.5, NOW)
        same = feedback.advice(0.5, NOW + 0.2)
        changed = feedback.advice(0.75, NOW + 0.2)
        assert first is not None and same is not None and changed is not None
        self.assertEqual(first.seq, same.seq)
        self.assertGreater(float(changed.seq), float(first.seq))

    def test_seq_grows_within_a_millisecond(self) -> None:
        """Two changes in the same millisecond still get growing numbers."""
        feedback = OverloadFeedback()
        seqs = [feedback.advice(share, NOW) for share in (0.1, 0.2, 0.3)]
        numbers = [float(a.seq) for a in seqs if a is not None]
        self.assertEqual(numbers, sorted(set(numbers)))
        self.assertEqual(len(numbers), 3)

    def test_stop_signal_then_silence(self) -> None:
        """When shedding stops, oc=0 with validity 0 for one validity, then nothing."""
        feedback = OverloadFeedback(validity=0.5)
        shedding = feedback.advice(0.4, NOW)
        stop = feedback.advice(0.0, NOW + 1.0)
        assert shedding is not None and stop is not None
        self.assertEqual((stop.percent, stop.validity_ms), (0, 0))
        self.assertGreater(float(stop.seq), float(shedding.seq))
        self.assertEqual(feedback.advice(0.0, NOW + 1.4), stop)
        self.assertIsNone(feedback.advice(0.0, NOW + 1.6))

    def test_bad_validity(self) -> None:
        """A validity that is not positive is refused."""
        self.assertRaises(ValueError, OverloadFeedback, 0.0)

    @given(
        st.lists(
            st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 0.2)),
            min_size=1,
            max_size=40,
        )
    )
    def test_any_sequence(self, steps: List[Tuple[float, float]]) -> None:
        """For any shares over time: percent in 0-100, valid seq, numbers never fall."""
        feedback = OverloadFeedback()
        now, last = NOW, 0.0
        for share, gap in steps:
            now += gap
            advice = feedback.advice(share, now)
            if advice is None:
                continue
            self.assertTrue(0 <= advice.percent <= 100)
            self.assertRegex(advice.seq, SEQ)
            self.assertGreaterEqual(float(advice.seq), last)
            last = float(advice.seq)


def response_via(top: str) -> Tuple[str, Optional[str]]:
    """
    Answer a request whose top Via is C{top} with feedback 30 %; return the
    response's Via field as sent and its first header's name.
    """
    request = make_request("INVITE", "sip:room@example.com", branch="z9hG4bKfb1")
    request.headers["via"] = [top]
    response = make_response(request, 503, to_tag="t1")
    with_feedback(response, Advice(30, 500, "1764000000.250"))
    parsed = parse_datagram(response.to_bytes())
    assert parsed is not None
    first = next(iter(parsed.headers))
    return parsed.headers["via"][0], first


class ViaTests(SynchronousTestCase):
    """
    L{with_feedback}: only clients that ask get it, in the grammar's form.
    """

    def test_client_that_asks(self) -> None:
        """A top Via with oc gets oc, oc-algo, oc-validity and oc-seq; Via stays first."""
        via, first = response_via("SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bKfb1;oc")
        self.assertEqual(
            via,
            'SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bKfb1;oc=30;oc-algo="loss"'
            ";oc-validity=500;oc-seq=1764000000.250",
        )
        self.assertEqual(first, "via")
        [parsed] = parse_via(via)
        self.assertEqual(parsed.otherParams["oc"], "30")

    def test_client_that_does_not_ask(self) -> None:
        """Without oc in the top Via the response is left alone."""
        top = "SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bKfb1;rport"
        via, _ = response_via(top)
        self.assertEqual(via, top)

    def test_algorithms_offered(self) -> None:
        """Loss among the offered algorithms is chosen; a list without it gets nothing."""
        via, _ = response_via('SIP/2.0/UDP h1;branch=z9hG4bKfb1;oc;oc-algo="rate,loss"')
        self.assertIn(';oc-algo="loss";', via)
        top = 'SIP/2.0/UDP h1;branch=z9hG4bKfb1;oc;oc-algo="rate"'
        via, _ = response_via(top)
        self.assertEqual(via, top)

    def test_only_the_top_via(self) -> None:
        """Further Vias in the same field are kept as they were."""
        second = "SIP/2.0/TCP h2;branch=z9hG4bKx;oc"
        via, _ = response_via(f"SIP/2.0/UDP h1;branch=z9hG4bKfb1;oc, {second}")
        top, kept = via.split(", ")
        self.assertIn(";oc=30;", top)
        self.assertEqual(kept, second)

    def test_earlier_values_replaced(self) -> None:
        """Values already there (a stale copy) are replaced, not repeated."""
        via, _ = response_via("SIP/2.0/UDP h1;branch=z9hG4bKfb1;oc=5;oc-seq=1.0")
        self.assertEqual(via.count(";oc="), 1)
        self.assertNotIn("oc-seq=1.0", via)

    def test_raw_line(self) -> None:
        """A raw Via line gets the advice in its first Via; one that does not ask, nothing."""
        advice = Advice(30, 500, "1764000000.250")
        line = with_raw_feedback(b"v: SIP/2.0/UDP h1;branch=z9hG4bKfb1;oc, SIP/2.0/UDP h2", advice)
        self.assertEqual(
            line,
            b'v: SIP/2.0/UDP h1;branch=z9hG4bKfb1;oc=30;oc-algo="loss";oc-validity=500'
            b";oc-seq=1764000000.250, SIP/2.0/UDP h2",
        )
        self.assertIsNone(with_raw_feedback(b"Via: SIP/2.0/UDP h1;branch=z9hG4bKfb1", advice))
        self.assertIsNone(with_raw_feedback(b"Via: SIP/9 nonsense;oc", advice))
        self.assertIsNone(with_raw_feedback(b"Via: SIP/2.0/UDP h\xff;oc", advice))

    def test_cheap_test(self) -> None:
        """The text test lets through anything that may carry oc, in any case."""
        self.assertTrue(asks_feedback("SIP/2.0/UDP h;branch=z9hG4bK1;OC"))
        self.assertFalse(asks_feedback("SIP/2.0/UDP h;branch=z9hG4bK1;rport"))
