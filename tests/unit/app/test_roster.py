# -*- test-case-name: tests.unit.app.test_roster -*-
"""
Tests for L{conference.app.roster}: participants and session timers.
"""

from __future__ import annotations

from typing import Optional

from twisted.trial.unittest import SynchronousTestCase

from conference.app.roster import (
    ConferenceFullError,
    Participant,
    Roster,
    SessionTimer,
    negotiate_session_timer,
)
from conference.sip.errors import RemoteProtocolError
from tests.builders import make_request

CONF = "sip:conf@example.com"


def participant(
    key: str, *, joined: float = 0.0, expires_at: Optional[float] = None
) -> Participant:
    return Participant(
        CONF, key, f"sip:{key}@example.com", joined, interval=90, expires_at=expires_at
    )


class RosterTests(SynchronousTestCase):
    """
    Membership, limits, versions and expiry.
    """

    def setUp(self) -> None:
        self.roster = Roster()

    def test_add_and_remove(self) -> None:
        """Participants are listed in join order and removed by dialog key."""
        self.roster.add(participant("b", joined=2.0))
        self.roster.add(participant("a", joined=1.0))
        self.assertEqual([p.key for p in self.roster.participants(CONF)], ["a", "b"])
        self.assertEqual(self.roster.count(CONF), 2)
        removed = self.roster.remove("a")
        assert removed is not None
        self.assertEqual(removed.identity, "sip:a@example.com")
        self.assertIsNone(self.roster.remove("a"))
        self.assertEqual(self.roster.count(CONF), 1)
        self.assertEqual(len(self.roster), 1)

    def test_maximum(self) -> None:
        """A conference at its maximum refuses another participant."""
        self.roster.add(participant("a"), maximum=1)
        self.assertRaises(ConferenceFullError, self.roster.add, participant("b"), maximum=1)
        self.assertEqual(self.roster.count(CONF), 1)

    def test_version_changes(self) -> None:
        """The roster version changes on every join and leave."""
        v0 = self.roster.version(CONF)
        self.roster.add(participant("a"))
        v1 = self.roster.version(CONF)
        self.roster.remove("a")
        self.assertEqual(len({v0, v1, self.roster.version(CONF)}), 3)

    def test_conferences_of(self) -> None:
        """An identity's conferences are found (for the busy check)."""
        self.roster.add(participant("a"))
        self.assertEqual(self.roster.conferences_of("sip:a@example.com"), [CONF])
        self.assertEqual(self.roster.conferences_of("sip:z@example.com"), [])

    def test_conferences(self) -> None:
        """The conferences someone is in are listed; one left empty is not."""
        self.assertEqual(self.roster.conferences(), [])
        self.roster.add(participant("a"))
        self.assertEqual(self.roster.conferences(), [CONF])
        self.roster.remove("a")
        self.assertEqual(self.roster.conferences(), [])

    def test_expiry(self) -> None:
        """A session not refreshed by its deadline is taken out."""
        self.roster.add(participant("a", expires_at=100.0))
        self.roster.add(participant("b", expires_at=200.0))
        self.assertEqual(self.roster.next_deadline(), 100.0)
        self.assertEqual(self.roster.expired(99.0), [])
        self.assertEqual([p.key for p in self.roster.expired(100.0)], ["a"])
        self.assertEqual(self.roster.next_deadline(), 200.0)

    def test_refresh_moves_deadline(self) -> None:
        """A refresh pushes the deadline by the interval; the old one is ignored."""
        self.roster.add(participant("a", expires_at=100.0))
        self.roster.refresh("a", 80.0)
        self.assertEqual(self.roster.next_deadline(), 170.0)
        self.assertEqual(self.roster.expired(150.0), [])
        self.assertEqual([p.key for p in self.roster.expired(170.0)], ["a"])
        self.assertIsNone(self.roster.next_deadline())

    def test_removed_deadline_ignored(self) -> None:
        """A participant who left has no deadline."""
        self.roster.add(participant("a", expires_at=100.0))
        self.roster.remove("a")
        self.assertIsNone(self.roster.next_deadline())
        self.assertEqual(self.roster.expired(1000.0), [])


class SessionTimerTests(SynchronousTestCase):
    """
    RFC 4028 negotiation for the focus.
    """

    def test_none(self) -> None:
        """No Session-Expires and no timer support: no session timer."""
        self.assertIsNone(negotiate_session_timer(make_request("INVITE", "sip:c@example.com")))

    def test_default_for_supporting_uac(self) -> None:
        """A UAC supporting timers gets the default interval and refreshes itself."""
        request = make_request("INVITE", "sip:c@example.com", headers=[("Supported", "timer")])
        self.assertEqual(negotiate_session_timer(request), SessionTimer(1800, "uac"))

    def test_requested(self) -> None:
        """A requested interval and refresher are honoured."""
        request = make_request(
            "INVITE",
            "sip:c@example.com",
            headers=[("Supported", "timer"), ("Session-Expires", "600;refresher=uac")],
        )
        timer = negotiate_session_timer(request)
        self.assertEqual(timer, SessionTimer(600, "uac"))
        assert timer is not None
        self.assertEqual(timer.header(), "600;refresher=uac")

    def test_uac_without_support(self) -> None:
        """Without timer support in the UAC, the UAS is the refresher."""
        request = make_request("INVITE", "sip:c@example.com", headers=[("Session-Expires", "600")])
        self.assertEqual(negotiate_session_timer(request), SessionTimer(600, "uas"))

    def test_too_small(self) -> None:
        """An interval under Min-SE is refused with 422 and Min-SE."""
        request = make_request("INVITE", "sip:c@example.com", headers=[("Session-Expires", "30")])
        with self.assertRaises(RemoteProtocolError) as caught:
            negotiate_session_timer(request)
        self.assertEqual(caught.exception.status, 422)
        self.assertEqual(caught.exception.headers, [("Min-SE", "90")])
