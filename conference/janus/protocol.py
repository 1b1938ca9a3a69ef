# -*- test-case-name: tests.unit.janus.test_protocol -*-
"""
Janus's JSON API and the AudioBridge plugin's requests, sans-I/O.

The Janus media backend drives a Janus server over its HTTP transport:
one Janus session, one plugin handle to manage rooms, one handle per
participant.  This module builds each request body and reads each reply
(a synchronous C{success}, an C{ack} followed by an event on the long
poll, or an C{error}), turning Janus's and the plugin's errors into
L{JanusError}; it sends nothing and reads no clock, so it is tested on
plain values.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple, cast

from conference.offeranswer import PCMA, PCMU, Codec

PLUGIN = "janus.plugin.audiobridge"

#: An Opus stream as the AudioBridge sends it (RFC 7587: always 48000/2).
OPUS = Codec("opus", 48000, None, 2)
#: The codecs an RTP participant of an AudioBridge room may use, as our
#: preference, and the name the plugin's C{join} gives each.
JANUS_CODECS: Tuple[Codec, ...] = (PCMU, PCMA, OPUS)
_JANUS_NAMES = {PCMU: "pcmu", PCMA: "pcma", OPUS: "opus"}

# Janus's own error codes (janus.h) and the AudioBridge plugin's we act on.
NO_SUCH_SESSION = 458
NO_SUCH_HANDLE = 459
ROOM_EXISTS = 486
NO_SUCH_ROOM = 485
NO_SUCH_USER = 488

#: Room ids stay within what a JavaScript number holds exactly (browsers
#: join the same rooms through janus.js).
ROOM_ID_BITS = 52


class JanusError(Exception):
    """
    Janus or its plugin refused a request, or replied with something we
    cannot read.

    @ivar code: Janus's or the plugin's error code, or L{None} for a reply
        that is not Janus's.
    @ivar reason: its text.
    """

    def __init__(self, reason: str, code: Optional[int] = None) -> None:
        super().__init__(f"{reason} ({code})" if code is not None else reason)
        self.code = code
        self.reason = reason


def janus_codec_name(codec: Codec) -> str:
    """
    The AudioBridge's name for C{codec} (C{pcmu}, C{pcma}, C{opus}).

    @raise ValueError: the AudioBridge cannot carry it.
    """
    for ours, name in _JANUS_NAMES.items():
        if ours.matches(codec.name, codec.clock, codec.channels):
            return name
    raise ValueError(f"the AudioBridge does not carry {codec.name}/{codec.clock}")


def room_id_for(conference: str) -> int:
    """
    The AudioBridge room of a conference: a stable number from its URI, so
    a restarted server (and a web page that knows the URI) finds the same
    room.  Never 0, which Janus reads as "choose one".
    """
    digest = hashlib.sha256(conference.encode("utf-8")).digest()
    return (int.from_bytes(digest[:8], "big") >> (64 - ROOM_ID_BITS)) or 1


# Requests ------------------------------------------------------------------


def create_session(transaction: str) -> Dict[str, Any]:
    """Create a Janus session (POST to the base path)."""
    return {"janus": "create", "transaction": transaction}


def attach(transaction: str) -> Dict[str, Any]:
    """Attach a handle to the AudioBridge (POST to the session)."""
    return {"janus": "attach", "plugin": PLUGIN, "transaction": transaction}


def detach(transaction: str) -> Dict[str, Any]:
    """Detach a handle (POST to the handle): its participant leaves its room."""
    return {"janus": "detach", "transaction": transaction}


def keepalive(transaction: str) -> Dict[str, Any]:
    """Keep the session from timing out (POST to the session)."""
    return {"janus": "keepalive", "transaction": transaction}


def message(transaction: str, body: Dict[str, Any]) -> Dict[str, Any]:
    """A request to the plugin (POST to a handle)."""
    return {"janus": "message", "transaction": transaction, "body": body}


def create_room(
    room: int, secret: str, *, sampling_rate: int = 16000, description: str = ""
) -> Dict[str, Any]:
    """
    Create a room that plain-RTP participants may join, managed with
    C{secret}; not saved in Janus's configuration.
    """
    return {
        "request": "create",
        "room": room,
        "secret": secret,
        "description": description[:200],
        "sampling_rate": sampling_rate,
        "allow_rtp_participants": True,
        "audiolevel_ext": False,
        "permanent": False,
        "is_private": True,
    }


def destroy_room(room: int, secret: str) -> Dict[str, Any]:
    """Destroy a room (every participant is dropped)."""
    return {"request": "destroy", "room": room, "secret": secret, "permanent": False}


def join_rtp(
    room: int,
    codec: Codec,
    *,
    display: str = "",
    address: Optional[str] = None,
    port: Optional[int] = None,
    payload_type: Optional[int] = None,
    muted: bool = False,
) -> Dict[str, Any]:
    """
    Join C{room} as a plain-RTP participant sending and receiving C{codec}
    at C{address}:C{port} (where the phone listens; left out when not yet
    known, for our own offer); the event answering it names where Janus
    listens (L{parse_joined}).
    """
    rtp: Dict[str, Any] = {}
    if address is not None and port is not None:
        rtp["ip"] = address
        rtp["port"] = port
    if payload_type is not None:
        rtp["payload_type"] = payload_type
    return {
        "request": "join",
        "room": room,
        "display": display[:100],
        "codec": janus_codec_name(codec),
        "muted": muted,
        "rtp": rtp,
    }


def mute(room: int, secret: str, participant: int, muted: bool) -> Dict[str, Any]:
    """Mute (or unmute) what a participant says, as the room's manager."""
    return {
        "request": "mute" if muted else "unmute",
        "room": room,
        "secret": secret,
        "id": participant,
    }


def list_participants(room: int) -> Dict[str, Any]:
    """Who is in C{room}."""
    return {"request": "listparticipants", "room": room}


# Replies -------------------------------------------------------------------


def _dict(value: Any, what: str) -> Dict[str, Any]:
    if not isinstance(value, dict):
        raise JanusError(f"{what} is not a JSON object")
    return cast(Dict[str, Any], value)


def _plugin_data(reply: Dict[str, Any]) -> Dict[str, Any]:
    plugindata = _dict(reply.get("plugindata"), "plugindata")
    data = _dict(plugindata.get("data"), "plugin data")
    code = data.get("error_code")
    if code is not None:
        raise JanusError(str(data.get("error", "AudioBridge error")), _int(code, "error_code"))
    return data


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise JanusError(f"{what} is not an integer")
    return value


def error_code(error: object) -> Optional[int]:
    """The code of a L{JanusError} (L{None} for any other error)."""
    return error.code if isinstance(error, JanusError) else None


def check_reply(reply: Any, transaction: str) -> Dict[str, Any]:
    """
    A reply to a POST: C{success} or C{ack} for C{transaction}.

    @raise JanusError: Janus's C{error}, any other kind of reply, or one to
        another transaction.
    """
    found = _dict(reply, "the reply")
    kind = found.get("janus")
    if kind == "error":
        error = _dict(found.get("error"), "error")
        raise JanusError(str(error.get("reason", "Janus error")), _int(error.get("code"), "code"))
    if found.get("transaction") != transaction:
        raise JanusError("a reply to another transaction")
    if kind not in ("success", "ack"):
        raise JanusError(f"an unexpected reply {kind!r}")
    return found


def created_id(reply: Any, transaction: str) -> int:
    """The id in the reply to L{create_session} or L{attach}."""
    data = _dict(check_reply(reply, transaction).get("data"), "data")
    return _int(data.get("id"), "id")


def plugin_result(reply: Any, transaction: str, expected: str) -> Dict[str, Any]:
    """
    The plugin's data in a synchronous reply, whose C{audiobridge} must be
    C{expected} (C{created}, C{destroyed}, C{success}, C{participants}).

    @raise JanusError: as L{check_reply}; the plugin's C{error_code}; an
        C{ack} (the request was not synchronous) or another result.
    """
    checked = check_reply(reply, transaction)
    if checked.get("janus") != "success":
        raise JanusError("an ack where a result was expected")
    data = _plugin_data(checked)
    if data.get("audiobridge") != expected:
        raise JanusError(f"{data.get('audiobridge')!r} where {expected!r} was expected")
    return data


def events(payload: Any) -> List[Dict[str, Any]]:
    """
    The events of a long poll's reply (one object, or a list with
    C{maxev}); a C{keepalive} (nothing happened) gives none.  What is not
    an object is skipped.
    """
    items = payload if isinstance(payload, list) else [payload]
    return [e for e in items if isinstance(e, dict) and e.get("janus") != "keepalive"]


@dataclass(frozen=True)
class Joined:
    """
    The AudioBridge's answer to L{join_rtp}: the participant's id and
    where Janus takes (and sends) its RTP.
    """

    participant: int
    address: str
    port: int
    payload_type: Optional[int]


def parse_joined(event: Dict[str, Any]) -> Joined:
    """
    Read the C{joined} event answering L{join_rtp}.

    @raise JanusError: the plugin's error, or no RTP address in it.
    """
    data = _plugin_data(event)
    if data.get("audiobridge") != "joined":
        raise JanusError(f"{data.get('audiobridge')!r} where 'joined' was expected")
    rtp = _dict(data.get("rtp"), "rtp")
    address = rtp.get("ip")
    if not isinstance(address, str) or not address:
        raise JanusError("no RTP address in the join")
    port = _int(rtp.get("port"), "port")
    if not 0 < port < 65536:
        raise JanusError(f"RTP port {port} out of range")
    pt = rtp.get("payload_type")
    return Joined(
        _int(data.get("id"), "id"),
        address,
        port,
        _int(pt, "payload_type") if pt is not None else None,
    )


def participant_ids(data: Dict[str, Any]) -> List[int]:
    """The ids in a C{participants} result (L{list_participants})."""
    found = data.get("participants")
    if not isinstance(found, list):
        raise JanusError("no participants list")
    return [p["id"] for p in found if isinstance(p, dict) and isinstance(p.get("id"), int)]
