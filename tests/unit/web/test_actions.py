# -*- test-case-name: tests.unit.web.test_actions -*-
"""
Tests for L{conference.web.actions}: each action is the conference
control's, under the same moderator rule as SIP.
"""

from __future__ import annotations

from typing import Any, Optional

from twisted.internet.defer import Deferred, fail

from conference.records import ConferenceRecord
from conference.sip.errors import RemoteProtocolError
from conference.web.access import Viewer
from conference.web.actions import ActionError, Actions
from conference.web.views import participant_key
from tests.unit.web.fixture import ADMIN, CONF, WebFixture

ALICE = Viewer("sip:alice@example.com")
BOB = Viewer("sip:bob@example.com")
ROOT = Viewer(ADMIN, admin=True)


class ActionsTests(WebFixture):
    """
    The actions by name, over the conference control.
    """

    def record(self) -> ConferenceRecord:
        record = self.successResultOf(self.stores.conferences.get(CONF))
        assert record is not None
        return record

    def actions(self) -> Actions:
        return Actions(lambda: self.control)

    def key(self) -> str:
        return participant_key(self.focus.roster.participants(CONF)[0].key)

    def test_end(self) -> None:
        """end hangs up everyone and says how many."""
        self.join()
        done = self.actions().run("end", self.record(), ALICE, None)
        self.assertEqual(self.successResultOf(done), "hung up 1")
        self.assertEqual(self.focus.roster.count(CONF), 0)

    def test_unknown(self) -> None:
        """An unknown action is a 404 ActionError."""
        d = self.actions().run("frob", self.record(), ALICE, None)
        self.assertEqual(self.failureResultOf(d, ActionError).value.code, 404)

    def test_no_control(self) -> None:
        """Before the service runs, actions are 503."""
        d = Actions(lambda: None).run("end", self.record(), ALICE, None)
        self.assertEqual(self.failureResultOf(d, ActionError).value.code, 503)

    def test_participant_required(self) -> None:
        """remove, mute and unmute without a participant are 400."""
        for name in ("remove", "mute", "unmute"):
            d = self.actions().run(name, self.record(), ALICE, "")
            self.assertEqual(self.failureResultOf(d, ActionError).value.code, 400, name)

    def test_unknown_participant(self) -> None:
        """Muting someone not in the conference is 404 and changes nothing."""
        self.join()
        d = self.actions().run("mute", self.record(), ALICE, "call-9 x y")
        self.assertEqual(self.failureResultOf(d, ActionError).value.code, 404)
        self.assertFalse(self.focus.roster.participants(CONF)[0].muted)

    def test_mute_unmute(self) -> None:
        """mute and unmute change the participant in the roster and tell the listeners."""
        self.join()
        told: list[str] = []
        self.focus.listeners.append(told.append)
        done = self.actions().run("mute", self.record(), ALICE, self.key())
        self.assertEqual(self.successResultOf(done), "muted sip:bob@example.com (1 calls)")
        self.assertTrue(self.focus.roster.participants(CONF)[0].muted)
        done = self.actions().run("unmute", self.record(), ALICE, self.key())
        self.assertEqual(self.successResultOf(done), "unmuted sip:bob@example.com (1 calls)")
        self.assertFalse(self.focus.roster.participants(CONF)[0].muted)
        self.assertEqual(told, [CONF, CONF])

    def test_lock_unlock(self) -> None:
        """lock and unlock change whether the conference is locked, once."""
        record = self.record()
        self.assertEqual(
            self.successResultOf(self.actions().run("lock", record, ALICE, None)), "locked"
        )
        self.assertTrue(self.focus.is_locked(record))
        again = self.actions().run("lock", record, ALICE, None)
        self.assertEqual(self.successResultOf(again), "was already locked")
        self.assertEqual(
            self.successResultOf(self.actions().run("unlock", record, ALICE, None)), "unlocked"
        )
        self.assertFalse(self.focus.is_locked(record))

    def test_same_rule_as_sip(self) -> None:
        """An attendee who is no moderator is refused 403 by the control itself."""
        self.join()
        for name, participant in (("mute", self.key()), ("lock", None), ("end", None)):
            d = self.actions().run(name, self.record(), BOB, participant)
            self.assertEqual(self.failureResultOf(d, ActionError).value.code, 403, name)
        self.assertFalse(self.focus.roster.participants(CONF)[0].muted)
        self.assertFalse(self.focus.is_locked(self.record()))
        self.assertEqual(self.focus.roster.count(CONF), 1)

    def test_admin(self) -> None:
        """An --admin address moderates a conference it does not organize."""
        self.join()
        done = self.actions().run("mute", self.record(), ROOT, self.key())
        self.assertEqual(self.successResultOf(done), "muted sip:bob@example.com (1 calls)")

    def test_conference_actions(self) -> None:
        """The conference-wide actions are end, lock and unlock."""
        self.assertEqual(self.actions().conference_actions(), ["end", "lock", "unlock"])

    def test_deferred_refusal(self) -> None:
        """A handler's Deferred SIP refusal becomes its 4xx; a 5xx becomes 503."""
        actions = self.actions()
        for status, code in ((403, 403), (500, 503)):
            refusal = RemoteProtocolError("Forbidden (only moderators may do that)", status)

            def refuse(
                record: ConferenceRecord,
                viewer: Viewer,
                participant: Optional[str],
                error: RemoteProtocolError = refusal,
            ) -> Deferred[str]:
                return fail(error)

            actions.handlers["mute"] = refuse
            d = actions.run("mute", self.record(), ALICE, None)
            self.assertEqual(self.failureResultOf(d, ActionError).value.code, code)

    def test_registered_action(self) -> None:
        """A new action runs once registered."""
        seen: list[Any] = []

        def ring(record: ConferenceRecord, viewer: Viewer, participant: Optional[str]) -> str:
            seen.append((record.uri, viewer.aor))
            return "rang"

        actions = self.actions()
        actions.handlers["ring"] = ring
        self.assertEqual(
            self.successResultOf(actions.run("ring", self.record(), ALICE, None)), "rang"
        )
        self.assertEqual(seen, [(CONF, ALICE.aor)])
