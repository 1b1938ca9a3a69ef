# -*- test-case-name: tests.web.test_actions -*-
"""
What organizers and admins can do from the status page.

Today: hang up everyone in a conference, or one participant (a BYE from
the focus).  Mute and lock belong to the conference-control work; they
plug in here by adding an entry to L{Actions.handlers} (it is then served
at C{POST /action/NAME}, and the conference page shows a button for each
conference-wide one), which may answer with a Deferred, as
C{ConferenceControl}'s methods do.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Union

from twisted.internet.defer import Deferred, fail, maybeDeferred
from twisted.python.failure import Failure

from conference.records import ConferenceRecord
from conference.sip.errors import RemoteProtocolError
from conference.web.access import Viewer
from conference.web.views import participant_key

#: One action: (record, viewer, participant key or None) -> what was done.
Handler = Callable[[ConferenceRecord, Viewer, Optional[str]], Union[str, "Deferred[str]"]]

#: Actions on one participant (the roster's buttons) rather than the
#: whole conference (the buttons under "Actions").
PARTICIPANT_ACTIONS = frozenset({"remove"})


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

    def conference_actions(self) -> List[str]:
        """
        The names of the registered conference-wide actions.
        """
        return sorted(name for name in self.handlers if name not in PARTICIPANT_ACTIONS)

    def run(
        self, name: str, record: ConferenceRecord, viewer: Viewer, participant: Optional[str]
    ) -> Deferred[str]:
        """
        Run the action C{name}; fires with what was done.

        @raise ActionError: (through the Deferred) for an unknown action or
            participant, or what a handler refused (a SIP refusal's 4xx
            kept, anything else 503).
        """
        handler = self.handlers.get(name)
        if handler is None:
            return fail(ActionError(404, f"No such action: {name}"))
        call: Callable[..., Any] = handler
        d: Deferred[str] = maybeDeferred(call, record, viewer, participant)
        return d.addErrback(_as_action_error)

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
                focus.hang_up(person.key, f"removed by {viewer.aor} from the status page")
                return f"removed {person.identity}"
        raise ActionError(404, "That participant is not in the conference (any more).")


def _as_action_error(failure: Failure) -> Failure:
    """
    A handler's SIP refusal as the HTTP answer it maps to.
    """
    error = failure.value
    if isinstance(error, RemoteProtocolError):
        code = error.status if 400 <= error.status < 500 else 503
        return Failure(ActionError(code, error.reason))
    return failure
