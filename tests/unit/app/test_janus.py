"""
Tests for L{conference.app.janus}: the Janus backend keeps the media
contract against a fake Janus, and Janus's failures are 503s.
"""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from conference.app.janus import JanusMediaService
from conference.janus.protocol import room_id_for
from conference.sdp import parse_sdp
from conference.sip.errors import RemoteProtocolError
from tests.janusfake import JANUS_ADDRESS, FakeJanus
from tests.mediacontract import CONFERENCE, FakeMediaReactor, MediaServiceContract
from tests.unit.test_sdp import LINPHONE_OFFER, SIPP_OFFER, crlf

PCMU_ANSWER = crlf(
    """
    v=0
    o=x 1 1 IN IP4 192.0.2.9
    s=-
    c=IN IP4 192.0.2.9
    t=0 0
    m=audio 9000 RTP/AVP 0
    """
)
OPUS_OFFER = crlf(
    """
    v=0
    o=x 1 1 IN IP4 192.0.2.11
    s=-
    c=IN IP4 192.0.2.11
    t=0 0
    m=audio 7000 RTP/AVP 96 8
    a=rtpmap:96 opus/48000/2
    """
)


class _Janus:
    reactor: FakeMediaReactor
    janus: FakeJanus

    def make_service(self, **kwargs: Any) -> JanusMediaService:
        """A Janus service on the fake Janus; the port options of the others do not apply."""
        kwargs.pop("port_range", None)
        kwargs.pop("address", None)
        return JanusMediaService(self.janus, self.reactor, **kwargs)


class JanusContractTests(_Janus, MediaServiceContract, SynchronousTestCase):
    """
    The media contract, run on the Janus backend; where the contract
    speaks of our ports, Janus's stand for them (the phone talks to Janus).
    """

    def setUp(self) -> None:
        self.reactor = FakeMediaReactor()
        self.janus = FakeJanus()
        # No periodic check-up (it refreshes last_activity, see test_contract_activity).
        self.service = self.make_service(check_interval=0)

    def test_contract_answer(self) -> None:
        """The answer names Janus's address and the port it gave, with only codecs offered."""
        session = self._join(LINPHONE_OFFER)
        answer = parse_sdp(session.local_sdp)
        assert answer.connection is not None
        self.assertEqual(answer.connection.address, JANUS_ADDRESS)
        audio = next(m for m in answer.media if m.port)
        self.assertIn(audio.port, self.janus.open_ports())
        self.assertTrue(set(audio.formats) <= set(parse_sdp(LINPHONE_OFFER).media[0].formats))
        self.assertEqual(len(answer.media), len(parse_sdp(LINPHONE_OFFER).media))
        self.assertEqual(self.reactor.open, {})

    def test_contract_offer_complete(self) -> None:
        """An offerless join gets a PCMU offer (the codec joined with); a bad answer is 400."""
        session = self._result(self.service.offer(CONFERENCE, "a"))
        self.assertEqual(parse_sdp(session.local_sdp).media[0].formats, ["0"])
        self.service.complete(session, PCMU_ANSWER)
        other = self._result(self.service.offer(CONFERENCE, "b"))
        e = self.assertRaises(RemoteProtocolError, self.service.complete, other, LINPHONE_OFFER)
        self.assertEqual(e.status, 400)

    def test_contract_offer_expects_after_answer(self) -> None:
        """After our offer, media is expected from the answer on, and counted from then."""
        session = self._result(self.service.offer(CONFERENCE, "a"))
        self.assertFalse(session.expects_media)
        self.reactor.advance(20)
        self.service.complete(session, PCMU_ANSWER)
        self.assertTrue(session.expects_media)
        self.assertEqual(session.last_activity, 20)

    def test_contract_exhaustion(self) -> None:
        """Beyond the session cap, or when Janus has no room for it, a join is 503."""
        service = self.make_service(max_sessions=1)
        first = self._result(service.answer(CONFERENCE, "a", SIPP_OFFER))
        self._failure(service.answer(CONFERENCE, "b", SIPP_OFFER), 503)
        service.close(first)
        self._result(service.answer(CONFERENCE, "b", SIPP_OFFER))
        self.janus.refuse["join"] = 499
        self._failure(self.service.answer(CONFERENCE, "c", SIPP_OFFER), 503)

    def test_contract_capacity(self) -> None:
        """The capacity is max_sessions (Janus holds the ports)."""
        self.assertEqual(self.make_service(max_sessions=3).capacity, 3)
        self.assertEqual(self.make_service().capacity, 1000)

    def test_contract_activity(self) -> None:
        """
        A session starts active; Janus reports no packets, so each check-up
        refreshes it while Janus lists it (not once Janus dropped it); touch too.
        """
        self.service = self.make_service(check_interval=20)
        self.reactor.advance(1000)
        session = self._join()
        self.assertTrue(session.expects_media)
        self.assertEqual(session.last_activity, 1000)
        self.reactor.advance(20)
        self.assertEqual(session.last_activity, 1020)
        self.janus.rooms[session.room].participants.clear()  # Janus dropped it
        self.reactor.advance(20)
        self.assertEqual(session.last_activity, 1020)
        self.service.touch(session)
        self.assertEqual(session.last_activity, 1040)


class JanusServiceTests(_Janus, SynchronousTestCase):
    """What the Janus backend asks of Janus, and how it takes Janus's failures."""

    def setUp(self) -> None:
        self.reactor = FakeMediaReactor()
        self.janus = FakeJanus()
        self.service = self.make_service(retry_after=17)

    def answer(self, who: str = "sip:a@example.com", offer: bytes = SIPP_OFFER) -> Any:
        return self.service.answer(CONFERENCE, who, offer)

    def assert_unavailable(self, d: Any) -> None:
        e = self.failureResultOf(d, RemoteProtocolError).value
        self.assertEqual((e.status, e.headers), (503, [("Retry-After", "17")]))

    def test_room_per_conference(self) -> None:
        """The first join creates the conference's room; the last to leave destroys it."""
        a = self.successResultOf(self.answer())
        b = self.successResultOf(self.answer("sip:b@example.com"))
        room = room_id_for(CONFERENCE)
        self.assertEqual((a.room, b.room), (room, room))
        self.assertEqual(len(self.janus.rooms[room].participants), 2)
        self.assertTrue(self.janus.rooms[room].body["allow_rtp_participants"])
        self.service.close(a)
        self.assertIn(room, self.janus.rooms)
        self.service.close(b)
        self.assertEqual(self.janus.rooms, {})

    def test_join_names_the_phone(self) -> None:
        """The join tells Janus where the phone listens, in the codec and payload type offered."""
        session = self.successResultOf(self.answer(offer=OPUS_OFFER))
        joined = self.janus.rooms[session.room].participants[session.janus_id]
        self.assertEqual(joined["codec"], "opus")
        self.assertEqual(joined["rtp"], {"ip": "192.0.2.11", "port": 7000, "payload_type": 96})
        self.assertIn(b"a=rtpmap:96 opus/48000/2", session.local_sdp)

    def test_existing_room(self) -> None:
        """A room left in Janus (our restart) is joined, not an error."""
        self.successResultOf(self.answer())
        other = self.make_service()
        self.successResultOf(other.answer(CONFERENCE, "sip:c@example.com", SIPP_OFFER))
        self.assertEqual(len(self.janus.rooms[room_id_for(CONFERENCE)].participants), 2)

    def test_janus_down(self) -> None:
        """A Janus that refuses connections: 503 with Retry-After."""
        self.janus.down = True
        self.assert_unavailable(self.answer())
        self.assertEqual(self.service.sessions, set())

    def test_janus_silent(self) -> None:
        """A Janus that never answers: 503 once the timeout passes, not a hang."""
        self.janus.silent = True
        d = self.answer()
        self.assertNoResult(d)
        self.reactor.advance(5)
        self.assert_unavailable(d)

    def test_event_never_comes(self) -> None:
        """A join acked whose event never comes: 503 after the timeout; the handle is detached."""
        self.janus.no_events = True
        d = self.answer()
        self.reactor.advance(5)
        self.assert_unavailable(d)
        self.assertIn("detach", [body.get("janus") for _, body in self.janus.requests])

    def test_plugin_error(self) -> None:
        """The AudioBridge refusing the room or the join: 503, and the service stays usable."""
        self.janus.refuse["create"] = 487
        self.assert_unavailable(self.answer())
        self.assertEqual(self.service.rooms, {})
        self.janus.refuse.clear()
        self.successResultOf(self.answer())

    def test_session_lost(self) -> None:
        """Janus forgetting our session (its restart): the next join makes a new one."""
        self.successResultOf(self.answer())
        self.janus.sessions.clear()
        self.assert_unavailable(self.answer("sip:b@example.com"))
        self.successResultOf(self.answer("sip:c@example.com"))

    def test_refusals_ask_janus_nothing(self) -> None:
        """Malformed SDP (400) and no common codec (488) are answered before any request."""
        self.failureResultOf(
            self.service.answer(CONFERENCE, "a", b"v=0\r\nx\r\n"), RemoteProtocolError
        )
        self.assertEqual(self.janus.requests, [])

    def test_mute(self) -> None:
        """mute(incoming=) mutes the participant in its room; outgoing is ignored."""
        session = self.successResultOf(self.answer())
        self.service.mute(session, incoming=True, outgoing=True)
        self.assertTrue(self.janus.rooms[session.room].participants[session.janus_id]["muted"])
        self.service.mute(session, incoming=False)
        self.assertFalse(self.janus.rooms[session.room].participants[session.janus_id]["muted"])
        self.service.close(session)
        self.assertRaises(RemoteProtocolError, self.service.mute, session, incoming=True)

    def test_keepalive(self) -> None:
        """The check-up keeps the Janus session alive, and stop ends it."""
        self.successResultOf(self.answer())
        self.reactor.advance(20)
        self.assertIn("keepalive", [body.get("janus") for _, body in self.janus.requests])
        self.service.stop()
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_close_with_janus_down(self) -> None:
        """Closing while Janus is down logs and goes on."""
        session = self.successResultOf(self.answer())
        self.janus.down = True
        self.service.close(session)
        self.assertEqual(self.service.sessions, set())
        self.assertEqual(len(self.flushLoggedErrors()), 0)
