# -*- test-case-name: tests.web.test_actions -*-
"""
Tests for L{conference.web.actions}.
"""

from __future__ import annotations

from typing import Any, Optional

from conference.records import ConferenceRecord
from conference.web.access import Viewer
from conference.web.actions import ActionError, Actions
from tests.web.fixture import CONF, WebFixture

ALICE = Viewer("sip:alice@example.com")


class ActionsTests(WebFixture):
    """
    The actions by name, over the focus.
    """

    def record(self) -> ConferenceRecord:
        record = self.successResultOf(self.stores.conferences.get(CONF))
        assert record is not None
        return record

    def test_end(self) -> None:
        """end hangs up everyone and says how many."""
        self.join()
        actions = Actions(lambda: self.focus)
        self.assertEqual(actions.run("end", self.record(), ALICE, None), "hung up 1")
        self.assertEqual(self.focus.roster.count(CONF), 0)

    def test_unknown(self) -> None:
        """An unknown action is a 404 ActionError."""
        with self.assertRaises(ActionError) as caught:
            Actions(lambda: self.focus).run("mute", self.record(), ALICE, None)
        self.assertEqual(caught.exception.code, 404)

    def test_no_focus(self) -> None:
        """Before the focus runs, actions are 503."""
        with self.assertRaises(ActionError) as caught:
            Actions(lambda: None).run("end", self.record(), ALICE, None)
        self.assertEqual(caught.exception.code, 503)

    def test_remove_needs_participant(self) -> None:
        """remove without a participant is 400."""
        with self.assertRaises(ActionError) as caught:
            Actions(lambda: self.focus).run("remove", self.record(), ALICE, "")
        self.assertEqual(caught.exception.code, 400)

    def test_registered_action(self) -> None:
        """A new action (the seam for mute and lock) runs once registered."""
        seen: list[Any] = []

        def lock(record: ConferenceRecord, viewer: Viewer, participant: Optional[str]) -> str:
            seen.append((record.uri, viewer.aor))
            return "locked"

        actions = Actions(lambda: self.focus)
        actions.handlers["lock"] = lock
        self.assertEqual(actions.run("lock", self.record(), ALICE, None), "locked")
        self.assertEqual(seen, [(CONF, ALICE.aor)])
