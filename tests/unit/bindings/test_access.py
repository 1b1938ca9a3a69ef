# -*- test-case-name: tests.unit.bindings.test_access -*-
"""
Tests for L{conference.bindings.access}.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from conference.bindings.access import (
    CONFERENCE,
    SENT_BY,
    AuthenticationRequired,
    Owner,
    check_update,
    may_bind_disposition,
    may_update,
    normalize_aor,
    sees_all,
    visible_records,
)
from conference.records import BindingRecord
from conference.sip.errors import RemoteProtocolError

ALICE = "sip:alice@example.com"
BOB = "sip:bob@example.com"
CAROL = "sip:carol@example.com"
ADMIN = "sip:admin@example.com"
ADMINS = frozenset({ADMIN})
CONF = Owner("sip:conf-1@example.com", CONFERENCE, organizer=ALICE, attendees=frozenset({BOB}))
USER_ALICE = Owner(ALICE)


def record(disposition: str, public: bool = False) -> BindingRecord:
    """
    A binding of C{disposition}.
    """
    return BindingRecord(
        CONF.uri, disposition, f"http://x/{disposition}", 100.0, "e", public=public
    )


class NormalizeTests(SynchronousTestCase):
    """
    normalize_aor.
    """

    def test_forms(self) -> None:
        """
        Brackets, parameters and host case do not matter; user case does.
        """
        self.assertEqual(normalize_aor("<sip:alice@EXAMPLE.com;transport=tcp>"), ALICE)
        self.assertNotEqual(normalize_aor("sip:Alice@example.com"), ALICE)
        self.assertEqual(normalize_aor("TEL:+1234"), "tel:+1234")
        self.assertEqual(normalize_aor(" not a uri "), "not a uri")


class UpdateTests(SynchronousTestCase):
    """
    may_update and check_update.
    """

    def test_conference(self) -> None:
        """
        The organizer and admins may update a conference's bindings;
        attendees and others may not.
        """
        self.assertTrue(may_update("<sip:alice@example.com>", CONF, ADMINS))
        self.assertTrue(may_update(ADMIN, CONF, ADMINS))
        self.assertFalse(may_update(BOB, CONF, ADMINS))
        self.assertFalse(may_update(CAROL, CONF, ADMINS))

    def test_user(self) -> None:
        """
        A user may update their own bindings, nobody else's.
        """
        self.assertTrue(may_update(ALICE, USER_ALICE))
        self.assertFalse(may_update(BOB, USER_ALICE))
        self.assertFalse(may_update(None, USER_ALICE))

    def test_check(self) -> None:
        """
        No identity is a 401 to challenge; a wrong one is a 403.
        """
        self.assertEqual(check_update(ALICE, USER_ALICE), ALICE)
        e = self.assertRaises(AuthenticationRequired, check_update, None, USER_ALICE)
        self.assertEqual(e.status, 401)
        e = self.assertRaises(RemoteProtocolError, check_update, BOB, USER_ALICE)
        self.assertEqual(e.status, 403)
        self.assertIn(ALICE, e.reason)

    def test_ownerKind(self) -> None:
        """
        An unknown owner kind is a programming error.
        """
        self.assertRaises(ValueError, Owner, ALICE, "room")


class SentByTests(SynchronousTestCase):
    """
    The sent-by disposition.
    """

    def test_principal(self) -> None:
        """
        Only the principal binds sent-by on their own address, never public.
        """
        self.assertTrue(may_bind_disposition(ALICE, USER_ALICE, SENT_BY))
        self.assertFalse(may_bind_disposition(ALICE, USER_ALICE, SENT_BY, public=True))
        self.assertFalse(may_bind_disposition(ADMIN, USER_ALICE, SENT_BY))
        self.assertFalse(may_bind_disposition(ALICE, CONF, SENT_BY))

    def test_others(self) -> None:
        """
        Other dispositions are not restricted here.
        """
        self.assertTrue(may_bind_disposition(ADMIN, USER_ALICE, "web", public=True))


class VisibilityTests(SynchronousTestCase):
    """
    sees_all and visible_records.
    """

    records = [record("web", public=True), record("conference"), record(SENT_BY)]

    def test_sharers(self) -> None:
        """
        The owner, organizer, attendees and admins see everything of a
        conference but sent-by, which only the owner and admins see.
        """
        for who in (ALICE, BOB, CONF.uri, ADMIN):
            self.assertTrue(sees_all(who, CONF, ADMINS))
        self.assertEqual(
            [r.disposition for r in visible_records(self.records, BOB, CONF, ADMINS)],
            ["web", "conference"],
        )
        self.assertEqual(len(visible_records(self.records, ADMIN, CONF, ADMINS)), 3)

    def test_others(self) -> None:
        """
        Others and anonymous askers see only public bindings.
        """
        self.assertFalse(sees_all(CAROL, CONF, ADMINS))
        for who in (CAROL, None):
            self.assertEqual(
                [r.disposition for r in visible_records(self.records, who, CONF, ADMINS)],
                ["web"],
            )

    def test_userOwner(self) -> None:
        """
        A user sees their own bindings, sent-by included; others only public.
        """
        self.assertEqual(len(visible_records(self.records, ALICE, USER_ALICE)), 3)
        self.assertEqual(len(visible_records(self.records, BOB, USER_ALICE)), 1)
