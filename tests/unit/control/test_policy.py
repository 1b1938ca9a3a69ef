# -*- test-case-name: tests.unit.control.test_policy -*-
"""
Tests for L{conference.control.policy}: roles, guests, PIN and dial-out as
the calendar states them.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from conference.calendar import Component, parse_ical_calendar
from conference.control.policy import ALLOW, DENY, LISTEN, CalendarPolicy, may_moderate, policy_of
from tests.unit.app.calendars import conference_calendar, conference_ical

ALICE = "sip:alice@example.com"
BOB = "sip:bob@example.com"
CAROL = "sip:carol@example.com"
DAVE = "sip:dave@example.com"
EVE = "sip:eve@example.com"


def calendar(extra: str = "") -> Component:
    text = conference_ical(attendees=(BOB,), extra=extra)
    text = text.replace(
        f"ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:{BOB}",
        "\r\n".join(
            [
                f"ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:{BOB}",
                f"ATTENDEE;ROLE=CHAIR:{CAROL}",
                f"ATTENDEE;ROLE=NON-PARTICIPANT:{DAVE}",
            ]
        ),
    )
    return parse_ical_calendar(text)


class RoleTests(SynchronousTestCase):
    """
    CalendarPolicy.role_of.
    """

    def test_roles(self) -> None:
        """ORGANIZER and CHAIR moderate, NON-PARTICIPANT listens, others take part."""
        policy = policy_of(calendar())
        organizer = policy.role_of(ALICE)
        chair = policy.role_of("sip:carol@EXAMPLE.com")
        listener = policy.role_of(DAVE)
        participant = policy.role_of(BOB)
        assert organizer and chair and listener and participant
        self.assertEqual((organizer.moderator, organizer.names), (True, ("organizer", "chair")))
        self.assertEqual((chair.moderator, chair.listen_only), (True, False))
        self.assertEqual((listener.moderator, listener.listen_only), (False, True))
        self.assertEqual((participant.moderator, participant.names), (False, ("participant",)))

    def test_room_is_no_member(self) -> None:
        """The ROOM attendee (the conference itself) is no member."""
        policy = policy_of(calendar(), default_guests=DENY)
        self.assertFalse(policy.is_member("sip:conf@example.com"))
        self.assertIsNone(policy.role_of("sip:conf@example.com"))

    def test_guests(self) -> None:
        """Guests are admitted, listen only or refused as X-CONFERENCE-GUESTS says."""
        self.assertEqual(policy_of(calendar()).guests, ALLOW)
        self.assertEqual(policy_of(calendar(), default_guests=DENY).guests, DENY)
        for said, expected in (("ALLOW", ("guest",)), ("listen", ("guest", "listener"))):
            policy = policy_of(calendar(f"X-CONFERENCE-GUESTS:{said}"), default_guests=DENY)
            role = policy.role_of(EVE)
            assert role is not None
            self.assertEqual(role.names, expected)
        self.assertIsNone(policy_of(calendar("X-CONFERENCE-GUESTS:DENY")).role_of(EVE))
        self.assertIsNone(policy_of(calendar("X-CONFERENCE-GUESTS:DENY")).role_of(None))

    def test_anonymous_is_guest(self) -> None:
        """No identity gets no member's role, only the guest rule."""
        role = policy_of(calendar("X-CONFERENCE-GUESTS:LISTEN")).role_of(None)
        assert role is not None
        self.assertTrue(role.listen_only)

    def test_setting_wins(self) -> None:
        """A guests or pin setting (BIND) wins over the VEVENT's property."""
        policy = policy_of(
            calendar("X-CONFERENCE-GUESTS:DENY\r\nX-CONFERENCE-PIN:1111"),
            {"guests": "listen", "pin": " 2222 "},
        )
        self.assertEqual((policy.guests, policy.pin), (LISTEN, "2222"))

    def test_pin_and_dial_out(self) -> None:
        """X-CONFERENCE-PIN and X-CONFERENCE-DIAL-OUT are read; absent, no PIN and no dial-out."""
        policy = policy_of(calendar("X-CONFERENCE-PIN:0042\r\nX-CONFERENCE-DIAL-OUT:TRUE"))
        self.assertEqual((policy.pin, policy.dial_out), ("0042", True))
        plain = policy_of(conference_calendar())
        self.assertEqual((plain.pin, plain.dial_out), (None, False))


class ModeratorRuleTests(SynchronousTestCase):
    """
    may_moderate: the one rule for SIP moderators and the status page.
    """

    def test_calendar_roles(self) -> None:
        """The ORGANIZER and a CHAIR moderate; attendees, listeners and strangers do not."""
        policy = policy_of(calendar())
        self.assertTrue(may_moderate(policy, ALICE))
        self.assertTrue(may_moderate(policy, "sip:carol@EXAMPLE.com"))
        for who in (BOB, DAVE, EVE):
            self.assertFalse(may_moderate(policy, who), who)

    def test_owner_and_admin(self) -> None:
        """The record's organizer or owner and an admin moderate without a calendar role."""
        empty = CalendarPolicy()
        self.assertTrue(may_moderate(empty, EVE, owners=("", "sip:eve@EXAMPLE.com")))
        self.assertTrue(may_moderate(empty, EVE, admin=True))
        self.assertFalse(may_moderate(empty, EVE, owners=("", None)))

    def test_anonymous(self) -> None:
        """Nobody anonymous moderates, even with guests allowed."""
        policy = policy_of(calendar(), default_guests=ALLOW)
        self.assertFalse(may_moderate(policy, None, admin=True))
