# -*- test-case-name: tests.unit.sip.test_events -*-
"""
Tests for L{conference.sip.events}.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from conference.sip.errors import RemoteProtocolError
from conference.sip.events import (
    SubscriptionPolicy,
    grant_expires,
    parse_event_header,
    subscription_state,
)

POLICY = SubscriptionPolicy(default_expires=600, min_expires=60, max_expires=3600)


class EventHeaderTests(SynchronousTestCase):
    """
    parse_event_header.
    """

    def test_known(self) -> None:
        """The event type and its parameters come back."""
        self.assertEqual(
            parse_event_header("conference;id=3", ["binding", "conference"]),
            ("conference", {"id": "3"}),
        )

    def test_unknown_489(self) -> None:
        """A missing Event or another package is 489 with every package in Allow-Events."""
        for value in (None, "presence", "Conference"):
            e = self.assertRaises(
                RemoteProtocolError, parse_event_header, value, ["binding", "conference"]
            )
            self.assertEqual(e.status, 489)
            self.assertEqual(e.headers, [("Allow-Events", "binding, conference")])

    def test_malformed_400(self) -> None:
        """A type that is not a token, or an id without a value, is 400."""
        for value in ("con ference", "conference;id"):
            e = self.assertRaises(RemoteProtocolError, parse_event_header, value, ["conference"])
            self.assertEqual(e.status, 400)


class ExpiresTests(SynchronousTestCase):
    """
    grant_expires.
    """

    def test_default_and_fetch(self) -> None:
        """No Expires gets the default; 0 is a fetch."""
        self.assertEqual(grant_expires(None, POLICY), 600)
        self.assertEqual(grant_expires("0", POLICY), 0)

    def test_too_brief(self) -> None:
        """A lifetime under the minimum is 423 with Min-Expires."""
        e = self.assertRaises(RemoteProtocolError, grant_expires, "30", POLICY)
        self.assertEqual((e.status, e.headers), (423, [("Min-Expires", "60")]))

    def test_malformed(self) -> None:
        """A value that is no number is 400."""
        e = self.assertRaises(RemoteProtocolError, grant_expires, "soon", POLICY)
        self.assertEqual(e.status, 400)

    @given(st.integers(min_value=60, max_value=2**32 - 1))
    def test_long_is_cut(self, asked: int) -> None:
        """Any lifetime from the minimum to 2**32-1 is granted up to the maximum."""
        self.assertEqual(grant_expires(str(asked), POLICY), min(asked, 3600))

    @given(st.integers(min_value=2**32, max_value=10**40))
    def test_huge_400(self, asked: int) -> None:
        """A lifetime past delta-seconds (2**32-1) is a 400, not a crash or a grant."""
        e = self.assertRaises(RemoteProtocolError, grant_expires, str(asked), POLICY)
        self.assertEqual(e.status, 400)


class StateTests(SynchronousTestCase):
    """
    subscription_state.
    """

    def test_values(self) -> None:
        """Active with expires, terminated with a reason."""
        self.assertEqual(subscription_state("active", expires=5), "active;expires=5")
        self.assertEqual(
            subscription_state("terminated", reason="noresource"), "terminated;reason=noresource"
        )
        self.assertRaises(ValueError, subscription_state, "terminated", expires=5)
