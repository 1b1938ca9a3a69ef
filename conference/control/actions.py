# -*- test-case-name: tests.unit.control.test_actions -*-
"""
The moderator's requests, read and checked before anything is done: the
Refer-To of a REFER to a conference (RFC 4579 sections 5.4 and 5.5) and the
commands of an INFO in the moderator's call (mute, unmute, lock, unlock,
remove; RFC 4579 has no SIP request for mute or lock, see docs/focus.rst);
and a participant's PIN typed as DTMF (L{PinEntry}).

Everything wrong is a L{RemoteProtocolError} with its status here, so the
handlers only act on requests that make sense.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from conference.calendar.itip import normalize_address
from conference.sip.errors import RemoteProtocolError
from conference.sip.headers import parse_address
from conference.sip.uri import SIPURI

__all__ = [
    "CONTROL_TYPE",
    "DIAL_OUT",
    "LOCK",
    "MUTE",
    "REMOVE",
    "UNLOCK",
    "UNMUTE",
    "Action",
    "PinEntry",
    "parse_command",
    "refer_action",
]

#: The body type of control commands in INFO.
CONTROL_TYPE = "application/x-conference-control"

MUTE = "mute"
UNMUTE = "unmute"
LOCK = "lock"
UNLOCK = "unlock"
REMOVE = "remove"
DIAL_OUT = "dial-out"

_WITH_TARGET = (MUTE, UNMUTE, REMOVE)
_WITHOUT_TARGET = (LOCK, UNLOCK)
MAX_COMMAND = 1024


@dataclass(frozen=True)
class Action:
    """
    One moderator action.

    @ivar verb: C{mute}, C{unmute}, C{lock}, C{unlock}, C{remove} or
        C{dial-out}.
    @ivar target: the normalised address it is about (L{None} for lock and
        unlock).
    """

    verb: str
    target: Optional[str] = None


def _target(text: str, conference: str, is_conference: Callable[[str], bool]) -> SIPURI:
    """
    Read a target URI: a SIP or SIPS URI of someone, never the conference
    itself or another focus (that would loop).
    """
    try:
        address = parse_address(text, "Refer-To")
    except RemoteProtocolError as e:
        raise RemoteProtocolError(f"Bad Request ({e.reason})", 400) from None
    uri = address.uri
    if not isinstance(uri, SIPURI) or not uri.username:
        raise RemoteProtocolError("Bad Request (the target must be a sip: URI of a user)", 400)
    normalized = normalize_address(f"sip:{uri.username}@{uri.host}")
    if normalized == normalize_address(conference) or is_conference(normalized):
        raise RemoteProtocolError("Loop Detected (the target is a conference)", 482)
    if "isfocus" in address.params or "isfocus" in uri.params:
        raise RemoteProtocolError("Loop Detected (the target is a focus)", 482)
    return uri


def refer_action(
    refer_to: Sequence[str],
    conference: str,
    is_conference: Callable[[str], bool] = lambda uri: False,
) -> Action:
    """
    The action a REFER to C{conference} asks for: C{remove} for a Refer-To
    with C{method=BYE} (RFC 4579 section 5.5), C{dial-out} for one with no
    method or C{method=INVITE} (section 5.4).

    @param refer_to: the Refer-To values (exactly one is allowed,
        RFC 3515 section 2.4.1).
    @param is_conference: whether a normalised address is a conference
        served here (referring a conference to a conference loops).
    @raise RemoteProtocolError: 400 for no, several or malformed Refer-To,
        a non-SIP target, embedded headers or another method; 482 for a
        target that is a conference or a focus.
    """
    if len(refer_to) != 1:
        raise RemoteProtocolError("Bad Request (exactly one Refer-To is needed)", 400)
    uri = _target(refer_to[0], conference, is_conference)
    if uri.headers:
        raise RemoteProtocolError("Bad Request (Refer-To headers are not supported)", 400)
    method = (uri.method or "INVITE").upper()
    target = normalize_address(f"sip:{uri.username}@{uri.host}")
    if method == "BYE":
        return Action(REMOVE, target)
    if method == "INVITE":
        return Action(DIAL_OUT, target)
    raise RemoteProtocolError(f"Bad Request (Refer-To method {method} not supported)", 400)


def parse_command(
    body: bytes, conference: str, is_conference: Callable[[str], bool] = lambda uri: False
) -> Action:
    """
    Read one control command: C{mute <uri>}, C{unmute <uri>},
    C{remove <uri>}, C{lock} or C{unlock} (case-insensitive verb, one line,
    UTF-8).

    @raise RemoteProtocolError: 400 for anything else; 482 for a target
        that is a conference.
    """
    if len(body) > MAX_COMMAND:
        raise RemoteProtocolError("Bad Request (command too long)", 400)
    try:
        text = body.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise RemoteProtocolError("Bad Request (command is not UTF-8)", 400) from None
    if "\n" in text or "\r" in text:
        raise RemoteProtocolError("Bad Request (one command per request)", 400)
    verb, _, rest = text.partition(" ")
    verb, rest = verb.lower(), rest.strip()
    if verb in _WITHOUT_TARGET and not rest:
        return Action(verb)
    if verb in _WITH_TARGET and rest:
        uri = _target(rest, conference, is_conference)
        return Action(verb, normalize_address(f"sip:{uri.username}@{uri.host}"))
    raise RemoteProtocolError(
        "Bad Request (expected mute <uri>, unmute <uri>, remove <uri>, lock or unlock)", 400
    )


#: Outcomes of L{PinEntry.digit}.
PIN_MORE = "more"
PIN_ACCEPTED = "accepted"
PIN_WRONG = "wrong"
PIN_FAILED = "failed"


class PinEntry:
    """
    A PIN typed as DTMF digits (RFC 4733 events from the media plane):
    C{#} ends an attempt, C{*} starts it again; an attempt longer than
    C{max_digits} is wrong at once.  After C{tries} wrong attempts the
    entry has failed (the focus then ends the call).

    @ivar source: where the caller's requests come from (for counting
        wrong PINs per source).
    """

    def __init__(
        self, expected: str, *, tries: int = 3, max_digits: int = 16, source: str = ""
    ) -> None:
        self.expected = expected
        self.source = source
        self.tries = tries
        self.max_digits = max_digits
        self.wrong = 0
        self._typed = ""

    def digit(self, digit: str) -> str:
        """
        Feed one digit; say whether more are needed, the PIN was
        accepted, this attempt was wrong, or the entry failed.
        """
        if self.wrong >= self.tries:
            return PIN_FAILED
        if digit == "*":
            self._typed = ""
            return PIN_MORE
        if digit != "#":
            self._typed += digit
            if len(self._typed) <= self.max_digits:
                return PIN_MORE
        typed, self._typed = self._typed, ""
        if typed == self.expected:
            return PIN_ACCEPTED
        self.wrong += 1
        return PIN_FAILED if self.wrong >= self.tries else PIN_WRONG
