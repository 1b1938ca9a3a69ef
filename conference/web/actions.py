# -*- test-case-name: tests.web.test_actions -*-
"""
What organizers and admins can do from the status page.

Today: hang up everyone in a conference, or one participant (a BYE from
the focus).  Mute and lock belong to the conference-control work; they
plug in here by adding an entry to L{Actions.handlers}, and the page
shows a button for each registered action.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

from conference.records import ConferenceRecord
from conference.web.access import Viewer
from conference.web.views import participant_key

#: One action: (record, viewer, participant key or None) -> what was done.
Handler = Callable[[ConferenceRecord, Viewer, Optional[str]], str]


class ActionError(Exception):
    """
    An action that cannot be done, with the HTTP status to answer.
    """

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code


class Actions:
    """
    The actions on a conference, by name; authorization (organizer,
    owner or admin) and the CSRF check are the resource's, before any
    runs.
    """

    def __init__(self, focus: Callable[[], Any]) -> None:
        """
        @param focus: returns the focus (L{None} until the service runs).
        """
        self._focus = focus
        self.handlers: Dict[str, Handler] = {"end": self._end, "remove": self._remove}

    def run(
        self, name: str, record: ConferenceRecord, viewer: Viewer, participant: Optional[str]
    ) -> str:
        """
        Run the action C{name}.

        @raise ActionError: for an unknown action or participant.
        """
        handler = self.handlers.get(name)
        if handler is None:
            raise ActionError(404, f"No such action: {name}")
        return handler(record, viewer, participant)

    def _live_focus(self) -> Any:
        focus = self._focus()
        if focus is None:
            raise ActionError(503, "The conference focus is not running.")
        return focus

    def _end(self, record: ConferenceRecord, viewer: Viewer, participant: Optional[str]) -> str:
        count = self._live_focus().end_conference(
            record.uri, f"ended by {viewer.aor} from the status page"
        )
        return f"hung up {count}"

    def _remove(self, record: ConferenceRecord, viewer: Viewer, participant: Optional[str]) -> str:
        if not participant:
            raise ActionError(400, "participant is required.")
        focus = self._live_focus()
        for person in focus.roster.participants(record.uri):
            if participant_key(person.key) == participant:
                focus.remove_participant(
                    person.key, f"removed by {viewer.aor} from the status page"
                )
                return f"removed {person.identity}"
        raise ActionError(404, "That participant is not in the conference (any more).")
