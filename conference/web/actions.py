# -*- test-case-name: tests.unit.web.test_actions -*-
"""
What moderators can do from the status page: end the conference for
everyone, lock or unlock it, and mute, unmute or remove one participant.

Each is the conference control's own action (L{ConferenceControl}'s
C{end}, C{set_locked}, C{set_muted}, C{remove}), so the status page and a
SIP moderator (REFER, INFO) are held to one rule (L{may_moderate}) and
every change reaches the conference's subscribers as a conference-info
update.  An action is served at C{POST /action/NAME}.
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
PARTICIPANT_ACTIONS = frozenset({"remove", "mute", "unmute"})


class ActionError(Exception):
    """
    An action that cannot be done, with the HTTP status to answer.
    """

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code


class Actions:
    """
    The actions on a conference, by name.  The resource checks the CSRF
    token and the moderator rule before any runs; the conference control
    checks the rule again, as for SIP requests.
    """

    def __init__(self, control: Callable[[], Any]) -> None:
        """
        @param control: returns the L{ConferenceControl} (L{None} until
            the service runs).
        """
        self._control = control
        self.handlers: Dict[str, Handler] = {
            "end": self._end,
            "lock": self._lock,
            "unlock": self._unlock,
            "mute": self._mute,
            "unmute": self._unmute,
            "remove": self._remove,
        }

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

    def _live_control(self) -> Any:
        control = self._control()
        if control is None:
            raise ActionError(503, "The conference focus is not running.")
        return control

    def _identity(self, record: ConferenceRecord, participant: Optional[str]) -> str:
        """
        The address of the participant the roster's button names by its
        dialog (L{participant_key}).
        """
        if not participant:
            raise ActionError(400, "participant is required.")
        for person in self._live_control().focus.roster.participants(record.uri):
            if participant_key(person.key) == participant:
                return str(person.identity)
        raise ActionError(404, "That participant is not in the conference (any more).")

    def _end(self, record: ConferenceRecord, viewer: Viewer, participant: Optional[str]) -> Any:
        reason = f"ended by {viewer.aor} from the status page"
        d = self._live_control().end(record.uri, viewer.aor, reason)
        return d.addCallback(lambda count: f"hung up {count}")

    def _lock(self, record: ConferenceRecord, viewer: Viewer, participant: Optional[str]) -> Any:
        d = self._live_control().set_locked(record.uri, viewer.aor, True)
        return d.addCallback(lambda changed: "locked" if changed else "was already locked")

    def _unlock(self, record: ConferenceRecord, viewer: Viewer, participant: Optional[str]) -> Any:
        d = self._live_control().set_locked(record.uri, viewer.aor, False)
        return d.addCallback(lambda changed: "unlocked" if changed else "was not locked")

    def _mute(self, record: ConferenceRecord, viewer: Viewer, participant: Optional[str]) -> Any:
        return self._set_muted(record, viewer, participant, True)

    def _unmute(self, record: ConferenceRecord, viewer: Viewer, participant: Optional[str]) -> Any:
        return self._set_muted(record, viewer, participant, False)

    def _set_muted(
        self, record: ConferenceRecord, viewer: Viewer, participant: Optional[str], muted: bool
    ) -> Any:
        who = self._identity(record, participant)
        d = self._live_control().set_muted(record.uri, who, viewer.aor, muted)
        what = "muted" if muted else "unmuted"
        return d.addCallback(lambda count: f"{what} {who} ({count} calls)")

    def _remove(self, record: ConferenceRecord, viewer: Viewer, participant: Optional[str]) -> Any:
        who = self._identity(record, participant)
        d = self._live_control().remove(record.uri, who, viewer.aor)
        return d.addCallback(lambda count: f"removed {who} ({count} calls)")


def _as_action_error(failure: Failure) -> Failure:
    """
    A handler's SIP refusal as the HTTP answer it maps to.
    """
    error = failure.value
    if isinstance(error, RemoteProtocolError):
        code = error.status if 400 <= error.status < 500 else 503
        return Failure(ActionError(code, error.reason))
    return failure
