# -*- test-case-name: tests.unit.app.test_janus -*-
"""
A fake Janus with the AudioBridge, in memory: the requests the Janus
backend makes (sessions, handles, rooms, plain-RTP joins, mute, listing,
long polls) answered as Janus 1.1 does, with knobs for its failures
(down, silent, refusing a request).  L{FakeJanus} is an
L{IJanusTransport}; L{FakeJanusResource} serves it over HTTP for the
HTTP adapter's tests.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Set

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionRefusedError
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request
from zope.interface import implementer

from conference.interfaces import IJanusTransport

JANUS_ADDRESS = "198.51.100.1"


class _Room:
    def __init__(self, secret: str, body: Dict[str, Any]) -> None:
        self.secret = secret
        self.body = body
        self.participants: Dict[int, Dict[str, Any]] = {}


@implementer(IJanusTransport)
class FakeJanus:
    """
    Janus in memory; replies fire at once (or never, when C{silent}).

    @ivar down: every request fails as a refused connection.
    @ivar silent: requests never answer (a stuck Janus).
    @ivar refuse: AudioBridge request names answered with this plugin
        error code.
    @ivar no_events: asynchronous requests are acked but their event
        never comes.
    @ivar requests: every (path, body) posted, in order.
    """

    def __init__(self, first_port: int = 32000) -> None:
        self.down = False
        self.silent = False
        self.no_events = False
        self.refuse: Dict[str, int] = {}
        self.requests: List[Any] = []
        self.sessions: Dict[int, Set[int]] = {}
        self.handles: Dict[int, Optional[int]] = {}  # handle -> participant id
        self.rooms: Dict[int, _Room] = {}
        self.events: Dict[int, List[Dict[str, Any]]] = {}
        self.next_id = 1000
        self.next_port = first_port

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

    def open_ports(self) -> Set[int]:
        """Janus's RTP ports of the participants in rooms."""
        return {p["port"] for room in self.rooms.values() for p in room.participants.values()}

    # IJanusTransport ------------------------------------------------------

    def post(self, path: str, body: Dict[str, Any]) -> Deferred[Any]:
        """Answer a POST as Janus does."""
        self.requests.append((path, body))
        if self.down:
            return fail(ConnectionRefusedError("fake Janus is down"))
        if self.silent:
            return Deferred()
        return succeed(self.handle(path, body))

    def get(self, path: str) -> Deferred[Any]:
        """A long poll: the session's queued events (or a keepalive)."""
        if self.down:
            return fail(ConnectionRefusedError("fake Janus is down"))
        if self.silent:
            return Deferred()
        session = int(path.strip("/").split("?")[0])
        if session not in self.sessions:
            return succeed(_error(session, "", 458, f"No such session {session}"))
        queued, self.events[session] = self.events.get(session, []), []
        if not queued:  # Janus holds an idle poll (30 s, then a keepalive)
            return Deferred()
        return succeed(queued)

    # Janus -----------------------------------------------------------------

    def handle(self, path: str, body: Dict[str, Any]) -> Dict[str, Any]:
        """The reply to a POST of C{body} to C{path}."""
        parts = [int(p) for p in path.strip("/").split("/") if p]
        tx = body.get("transaction", "")
        kind = body.get("janus")
        if not parts:
            session = self._id()
            self.sessions[session] = set()
            return {"janus": "success", "transaction": tx, "data": {"id": session}}
        session = parts[0]
        if session not in self.sessions:
            return _error(session, tx, 458, f"No such session {session}")
        if len(parts) == 1:
            if kind == "attach":
                handle = self._id()
                self.sessions[session].add(handle)
                self.handles[handle] = None
                return {
                    "janus": "success",
                    "session_id": session,
                    "transaction": tx,
                    "data": {"id": handle},
                }
            if kind == "keepalive":
                return {"janus": "ack", "session_id": session, "transaction": tx}
            return _error(session, tx, 453, "Unknown request")
        handle = parts[1]
        if handle not in self.sessions[session]:
            return _error(session, tx, 459, f"No such handle {handle} in session {session}")
        if kind == "detach":
            self._leave(handle)
            self.sessions[session].discard(handle)
            del self.handles[handle]
            return {"janus": "success", "session_id": session, "transaction": tx}
        return self._message(session, handle, tx, body.get("body", {}))

    def _leave(self, handle: int) -> None:
        participant = self.handles.get(handle)
        for room in self.rooms.values():
            room.participants.pop(participant, None)  # type: ignore[arg-type]
        self.handles[handle] = None

    def _message(self, session: int, handle: int, tx: str, body: Dict[str, Any]) -> Dict[str, Any]:
        request = body.get("request")
        if request in self.refuse:
            return _plugin(session, tx, handle, _plugin_error(self.refuse[request], "refused"))
        if request == "join":
            self.events.setdefault(session, [])
            if not self.no_events:
                event = _plugin(session, tx, handle, self._join(handle, body))
                event["janus"] = "event"
                self.events[session].append(event)
            return {"janus": "ack", "session_id": session, "transaction": tx}
        return _plugin(session, tx, handle, self._sync(request, body))

    def _join(self, handle: int, body: Dict[str, Any]) -> Dict[str, Any]:
        room = self.rooms.get(body.get("room"))  # type: ignore[arg-type]
        if room is None:
            return _plugin_error(485, f"No such room ({body.get('room')})")
        if self.handles[handle] is not None:
            return _plugin_error(491, "Already in a room")
        participant = self._id()
        rtp = dict(body.get("rtp", {}))
        self.handles[handle] = participant
        room.participants[participant] = {
            "port": self.next_port,
            "muted": bool(body.get("muted")),
            "codec": body.get("codec"),
            "rtp": rtp,
        }
        port = self.next_port
        self.next_port += 2
        return {
            "audiobridge": "joined",
            "room": body["room"],
            "id": participant,
            "participants": [],
            "rtp": {"ip": JANUS_ADDRESS, "port": port, "payload_type": rtp.get("payload_type", 0)},
        }

    def _sync(self, request: Any, body: Dict[str, Any]) -> Dict[str, Any]:
        number = body.get("room")
        room = self.rooms.get(number) if isinstance(number, int) else None
        if request == "create":
            if room is not None:
                return _plugin_error(486, f"Room {number} already exists")
            self.rooms[number] = _Room(body.get("secret", ""), body)  # type: ignore[index]
            return {"audiobridge": "created", "room": number, "permanent": False}
        if room is None:
            return _plugin_error(485, f"No such room ({number})")
        if request == "listparticipants":
            listed = [{"id": p, "muted": v["muted"]} for p, v in room.participants.items()]
            return {"audiobridge": "participants", "room": number, "participants": listed}
        if body.get("secret") != room.secret:
            return _plugin_error(489, "Unauthorized (wrong secret)")
        if request == "destroy":
            del self.rooms[number]  # type: ignore[arg-type]
            return {"audiobridge": "destroyed", "room": number, "permanent": False}
        if request in ("mute", "unmute"):
            participant = room.participants.get(body.get("id"))  # type: ignore[arg-type]
            if participant is None:
                return _plugin_error(488, "No such user")
            participant["muted"] = request == "mute"
            return {"audiobridge": "success"}
        return _plugin_error(482, f"Unknown request '{request}'")


def _error(session: int, tx: str, code: int, reason: str) -> Dict[str, Any]:
    return {
        "janus": "error",
        "session_id": session,
        "transaction": tx,
        "error": {"code": code, "reason": reason},
    }


def _plugin_error(code: int, reason: str) -> Dict[str, Any]:
    return {"audiobridge": "event", "error_code": code, "error": reason}


def _plugin(session: int, tx: str, handle: int, data: Dict[str, Any]) -> Dict[str, Any]:
    return {
        "janus": "success",
        "session_id": session,
        "transaction": tx,
        "sender": handle,
        "plugindata": {"plugin": "janus.plugin.audiobridge", "data": data},
    }


class FakeJanusResource(Resource):
    """
    L{FakeJanus} over HTTP at C{/janus}: JSON bodies in and out; C{status}
    (if set) answers every request with that HTTP status, C{garbage} with
    a body that is not JSON.
    """

    isLeaf = True

    def __init__(self, janus: FakeJanus) -> None:
        super().__init__()
        self.janus = janus
        self.status: Optional[int] = None
        self.garbage = False

    def render(self, request: Request) -> Any:
        """Answer a POST or a GET (long poll)."""
        if self.status is not None:
            request.setResponseCode(self.status)
            return b"error"
        if self.garbage:
            return b"<html>not json"
        path = request.path.decode("ascii")[len("/janus") :]
        if request.method == b"POST":
            assert request.content is not None
            d = self.janus.post(path, json.loads(request.content.read()))
        else:
            query = request.uri.decode("ascii").split("?", 1)
            d = self.janus.get(path + ("?" + query[1] if len(query) > 1 else ""))

        def write(reply: Any) -> None:
            request.setHeader(b"content-type", b"application/json")
            request.write(json.dumps(reply).encode("utf-8"))
            request.finish()

        d.addCallback(write)
        return NOT_DONE_YET
