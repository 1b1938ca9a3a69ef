# -*- test-case-name: tests.web.test_actions -*-
"""
Tests for L{conference.web.actions}.
"""

from __future__ import annotations

from typing import Any, Optional

from twisted.internet.defer import Deferred, fail

from conference.records import ConferenceRecord
from conference.sip.errors import RemoteProtocolError
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
        done = actions.run("end", self.record(), ALICE, None)
        self.assertEqual(self.successResultOf(done), "hung up 1")
        self.assertEqual(self.focus.roster.count(CONF), 0)

    def test_unknown(self) -> None:
        """An unknown action is a 404 ActionError."""
        d = Actions(lambda: self.focus).run("mute", self.record(), ALICE, None)
        self.assertEqual(self.failureResultOf(d, ActionError).value.code, 404)

    def test_no_focus(self) -> None:
        """Before the focus runs, actions are 503."""
        d = Actions(lambda: None).run("end", self.record(), ALICE, None)
        self.assertEqual(self.failureResultOf(d, ActionError).value.code, 503)

    def test_remove_needs_participant(self) -> None:
        """remove without a participant is 400."""
        d = Actions(lambda: self.focus).run("remove", self.record(), ALICE, "")
        self.assertEqual(self.failureResultOf(d, ActionError).value.code, 400)

    def test_registered_action(self) -> None:
        """A new action (the seam for mute and lock) runs once registered."""
        seen: list[Any] = []

        def lock(record: ConferenceRecord, viewer: Viewer, participant: Optional[str]) -> str:
            seen.append((record.uri, viewer.aor))
            return "locked"

        actions = Actions(lambda: self.focus)
        actions.handlers["lock"] = lock
        self.assertEqual(
            self.successResultOf(actions.run("lock", self.record(), ALICE, None)), "locked"
        )
        self.assertEqual(seen, [(CONF, ALICE.aor)])
        self.assertEqual(actions.conference_actions(), ["end", "lock"])

    def test_deferred_refusal(self) -> None:
        """A handler's Deferred SIP refusal becomes its 4xx; a 5xx becomes 503."""
        actions = Actions(lambda: self.focus)
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
