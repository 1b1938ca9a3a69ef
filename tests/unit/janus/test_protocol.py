"""
Tests for L{conference.janus.protocol}: the AudioBridge requests built and
Janus's replies read, from the messages a Janus 1.1 server sends.
"""

from __future__ import annotations

import contextlib
from typing import Any, Dict

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from conference.janus import protocol
from conference.janus.protocol import OPUS, JanusError, Joined
from conference.offeranswer import PCMA, PCMU, TELEPHONE_EVENT


def plugin(data: Dict[str, Any], tx: str = "t", kind: str = "success") -> Dict[str, Any]:
    """A reply of Janus carrying the AudioBridge's C{data}."""
    return {
        "janus": kind,
        "session_id": 1,
        "transaction": tx,
        "sender": 2,
        "plugindata": {"plugin": protocol.PLUGIN, "data": data},
    }


# As Janus 1.1.2 sent it to a plain-RTP join.
JOINED = plugin(
    {
        "audiobridge": "joined",
        "room": 4242,
        "id": 4098846493833628,
        "participants": [],
        "rtp": {"ip": "127.0.0.1", "port": 32000, "payload_type": 0},
    },
    kind="event",
)


class RequestTests(SynchronousTestCase):
    """The requests sent to Janus."""

    def test_session_and_handles(self) -> None:
        """create, attach, detach and keepalive carry their transaction."""
        self.assertEqual(protocol.create_session("a"), {"janus": "create", "transaction": "a"})
        self.assertEqual(protocol.attach("b")["plugin"], "janus.plugin.audiobridge")
        self.assertEqual(protocol.detach("c"), {"janus": "detach", "transaction": "c"})
        self.assertEqual(protocol.keepalive("d")["janus"], "keepalive")
        self.assertEqual(protocol.message("e", {"x": 1})["body"], {"x": 1})

    def test_create_room(self) -> None:
        """A room allows plain-RTP participants, with our secret, not saved by Janus."""
        body = protocol.create_room(7, "s", sampling_rate=48000, description="x" * 300)
        self.assertTrue(body["allow_rtp_participants"])
        self.assertEqual((body["room"], body["secret"], body["sampling_rate"]), (7, "s", 48000))
        self.assertFalse(body["permanent"])
        self.assertEqual(len(body["description"]), 200)

    def test_join_rtp(self) -> None:
        """A join names the phone's address, the codec and the payload type."""
        body = protocol.join_rtp(
            7, OPUS, display="sip:a@x", address="192.0.2.1", port=4000, payload_type=111
        )
        self.assertEqual(body["codec"], "opus")
        self.assertEqual(body["rtp"], {"ip": "192.0.2.1", "port": 4000, "payload_type": 111})

    def test_join_rtp_without_address(self) -> None:
        """Without the phone's address (our own offer), the join names none."""
        self.assertEqual(protocol.join_rtp(7, PCMA)["rtp"], {})

    def test_codec_names(self) -> None:
        """PCMU, PCMA and Opus have AudioBridge names; telephone-event has none."""
        names = [protocol.janus_codec_name(c) for c in (PCMU, PCMA, OPUS)]
        self.assertEqual(names, ["pcmu", "pcma", "opus"])
        self.assertRaises(ValueError, protocol.janus_codec_name, TELEPHONE_EVENT)

    def test_mute(self) -> None:
        """mute and unmute name the participant and the room's secret."""
        self.assertEqual(protocol.mute(7, "s", 9, True)["request"], "mute")
        self.assertEqual(protocol.mute(7, "s", 9, False)["id"], 9)

    @given(st.text())
    def test_room_id(self, uri: str) -> None:
        """A conference's room id is stable, non-zero and exact in a JavaScript number."""
        room = protocol.room_id_for(uri)
        self.assertEqual(room, protocol.room_id_for(uri))
        self.assertTrue(0 < room < 2**protocol.ROOM_ID_BITS)


class ReplyTests(SynchronousTestCase):
    """Janus's replies read, and its errors raised."""

    def test_created_id(self) -> None:
        """The id of a new session or handle."""
        reply = {"janus": "success", "transaction": "t", "data": {"id": 6786664019132667}}
        self.assertEqual(protocol.created_id(reply, "t"), 6786664019132667)

    def test_janus_error(self) -> None:
        """Janus's error becomes a JanusError with its code."""
        reply = {
            "janus": "error",
            "transaction": "t",
            "error": {"code": 458, "reason": "No such session"},
        }
        e = self.assertRaises(JanusError, protocol.check_reply, reply, "t")
        self.assertEqual((e.code, e.reason), (458, "No such session"))
        self.assertEqual(protocol.error_code(e), 458)
        self.assertIsNone(protocol.error_code(ValueError()))

    def test_other_transaction(self) -> None:
        """A reply to another transaction, or of another kind, is refused."""
        self.assertRaises(
            JanusError, protocol.check_reply, {"janus": "ack", "transaction": "u"}, "t"
        )
        self.assertRaises(
            JanusError, protocol.check_reply, {"janus": "hangup", "transaction": "t"}, "t"
        )

    def test_plugin_result(self) -> None:
        """A synchronous result is the plugin's data, of the kind expected."""
        reply = plugin({"audiobridge": "created", "room": 4242, "permanent": False})
        self.assertEqual(protocol.plugin_result(reply, "t", "created")["room"], 4242)
        self.assertRaises(JanusError, protocol.plugin_result, reply, "t", "destroyed")
        self.assertRaises(
            JanusError, protocol.plugin_result, {"janus": "ack", "transaction": "t"}, "t", "created"
        )

    def test_plugin_error(self) -> None:
        """The AudioBridge's error_code is raised with its text."""
        reply = plugin(
            {"audiobridge": "event", "error_code": 486, "error": "Room 4242 already exists"}
        )
        e = self.assertRaises(JanusError, protocol.plugin_result, reply, "t", "created")
        self.assertEqual(e.code, protocol.ROOM_EXISTS)

    def test_parse_joined(self) -> None:
        """The joined event gives the participant id and Janus's RTP address."""
        self.assertEqual(
            protocol.parse_joined(JOINED), Joined(4098846493833628, "127.0.0.1", 32000, 0)
        )

    def test_parse_joined_refusals(self) -> None:
        """A join refused, or without a usable RTP address, raises."""
        for data in (
            {"audiobridge": "event", "error_code": 485, "error": "No such room"},
            {"audiobridge": "joined", "id": 1},
            {"audiobridge": "joined", "id": 1, "rtp": {"ip": "", "port": 1}},
            {"audiobridge": "joined", "id": 1, "rtp": {"ip": "127.0.0.1", "port": 70000}},
            {"audiobridge": "joined", "id": "1", "rtp": {"ip": "127.0.0.1", "port": 7}},
            {"audiobridge": "event", "result": "ok"},
        ):
            self.assertRaises(JanusError, protocol.parse_joined, plugin(data))

    def test_events(self) -> None:
        """A long poll gives one event or a list; keepalives and non-objects are skipped."""
        self.assertEqual(protocol.events(JOINED), [JOINED])
        self.assertEqual(protocol.events([JOINED, {"janus": "keepalive"}, 3]), [JOINED])
        self.assertEqual(protocol.events({"janus": "keepalive"}), [])

    def test_participant_ids(self) -> None:
        """The ids in a participants list; malformed entries skipped."""
        data = {"audiobridge": "participants", "participants": [{"id": 5}, {"id": "x"}, 7]}
        self.assertEqual(protocol.participant_ids(data), [5])
        self.assertRaises(JanusError, protocol.participant_ids, {})

    @given(
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(),
            lambda c: st.lists(c) | st.dictionaries(st.text(), c),
        )
    )
    def test_garbage(self, reply: Any) -> None:
        """Whatever JSON comes back, reading it raises JanusError or succeeds, nothing else."""
        for read in (
            lambda: protocol.created_id(reply, "t"),
            lambda: protocol.plugin_result(reply, "t", "created"),
            lambda: protocol.parse_joined(reply) if isinstance(reply, dict) else None,
            lambda: protocol.events(reply),
        ):
            with contextlib.suppress(JanusError):
                read()
