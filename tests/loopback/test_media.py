# -*- test-case-name: tests.loopback.test_media -*-
"""
Tests for L{conference.app.media}: the null media service and its ports.
"""

from __future__ import annotations

import struct
from typing import Any, Tuple

from twisted.internet import reactor as global_reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import DatagramProtocol
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from conference.app.media import NullMediaService, NullMediaSession, srtp_policy
from conference.interfaces import IMediaService, IMediaSession
from conference.media import srtp
from conference.sdp import parse_sdp
from conference.sip.errors import RemoteProtocolError
from tests.mediacontract import FakeMediaReactor, MediaServiceContract
from tests.unit.test_sdp import LINPHONE_OFFER, SIPP_OFFER, crlf

RTP_PACKET = struct.pack("!BBHII", 0x80, 0, 1, 160, 0x1234) + b"\xff" * 160


def result(d: Deferred[Any], case: SynchronousTestCase) -> Any:
    """The result of a Deferred that has fired."""
    return case.successResultOf(d)


class NullMediaServiceTests(SynchronousTestCase):
    """
    The null service against a fake UDP reactor.
    """

    def setUp(self) -> None:
        self.reactor = FakeMediaReactor()
        self.ids = iter(str(n) for n in range(100, 200))
        self.service = NullMediaService(
            self.reactor, address="198.51.100.1", session_ids=lambda: next(self.ids)
        )

    def join(self, offer: bytes = SIPP_OFFER, who: str = "sip:a@example.com") -> NullMediaSession:
        """Answer C{offer} for C{who} and return the session."""
        session = result(self.service.answer("sip:conf@example.com", who, offer), self)
        assert isinstance(session, NullMediaSession)
        return session

    def failure(self, d: Deferred[Any], status: int) -> RemoteProtocolError:
        """The RemoteProtocolError C{d} failed with, checking its status."""
        e = self.failureResultOf(d, RemoteProtocolError).value
        assert isinstance(e, RemoteProtocolError)
        self.assertEqual(e.status, status)
        return e

    def test_interfaces(self) -> None:
        """The service and its sessions provide the media interfaces."""
        self.assertTrue(verifyObject(IMediaService, self.service))
        self.assertTrue(verifyObject(IMediaSession, self.join()))

    def test_answer_opens_pair(self) -> None:
        """An answer opens RTP on an even port and RTCP above it, on the media address."""
        session = self.join()
        self.assertEqual(sorted(self.reactor.open), [20000, 20001])
        self.assertEqual(self.reactor.listened, [(20000, "198.51.100.1"), (20001, "198.51.100.1")])
        self.assertIs(self.reactor.open[20000].protocol, session.rtp)
        self.assertIs(self.reactor.open[20001].protocol, session.rtcp)
        answer = parse_sdp(session.local_sdp)
        self.assertEqual(answer.media[0].port, 20000)
        self.assertEqual(answer.origin.session_id, "100")
        self.assertEqual(
            (session.conference, session.participant), ("sip:conf@example.com", "sip:a@example.com")
        )
        assert session.stream is not None
        self.assertEqual(session.stream.port, 6000)

    def test_ports_per_participant(self) -> None:
        """Each participant gets its own pair."""
        ports = [self.join(who=f"sip:{n}@example.com").port for n in range(3)]
        self.assertEqual(ports, [20000, 20002, 20004])
        self.assertEqual(len(self.reactor.open), 6)

    def test_rtp_collision(self) -> None:
        """A busy RTP port is skipped."""
        self.reactor.busy = {20000}
        self.assertEqual(self.join().port, 20002)

    def test_rtcp_collision(self) -> None:
        """A busy RTCP port releases its RTP port and the next pair is tried."""
        self.reactor.busy = {20001}
        self.assertEqual(self.join().port, 20002)
        self.assertEqual(sorted(self.reactor.open), [20002, 20003])

    def test_close(self) -> None:
        """close parks both ports (dropping what arrives), forgets the session, is idempotent."""
        session = self.join()
        self.service.close(session)
        self.service.close(session)
        self.assertEqual(self.service.sessions, {})
        self.assertTrue(session.closed)
        self.assertTrue(session.rtp.parked and session.rtcp.parked)
        self.reactor.deliver(20000, RTP_PACKET, ("192.0.2.1", 4000))
        self.assertEqual(session.last_activity, 0)

    def test_close_reuse(self) -> None:
        """A closed pair serves the next join once its quarantine is over, afresh."""
        first = self.join()
        self.service.close(first)
        self.assertEqual(self.join(who="sip:b@example.com").port, 20002)
        self.reactor.advance(1)
        third = self.join(who="sip:c@example.com")
        self.assertEqual(third.port, 20000)
        self.assertFalse(third.rtp.parked)
        self.reactor.deliver(20000, RTP_PACKET, ("192.0.2.1", 4000))
        self.assertEqual((third.rtp.packets, third.last_activity), (1, 1))
        self.assertEqual(self.reactor.listened[-1], (20003, "198.51.100.1"))

    def test_close_all(self) -> None:
        """close_all releases every session."""
        self.join()
        self.join(who="sip:b@example.com")
        self.service.close_all()
        self.assertEqual(self.reactor.open, {})

    def test_stop(self) -> None:
        """stop closes the sessions left and unbinds every port, parked ones too."""
        first = self.join()
        self.join(who="sip:b@example.com")
        self.service.close(first)
        self.service.stop()
        self.assertEqual((self.reactor.open, self.service.sessions), ({}, {}))

    def test_cap(self) -> None:
        """Beyond max_sessions an answer or offer fails with 503 and opens nothing."""
        service = NullMediaService(self.reactor, max_sessions=2)
        first = result(service.answer("c", "a", SIPP_OFFER), self)
        service.answer("c", "b", SIPP_OFFER)
        self.failure(service.answer("c", "c", SIPP_OFFER), 503)
        self.failure(service.offer("c", "c"), 503)
        self.assertEqual(len(self.reactor.open), 4)
        service.close(first)
        self.assertIsInstance(result(service.answer("c", "c", SIPP_OFFER), self), NullMediaSession)

    def test_ports_exhausted(self) -> None:
        """When no pair in the range can be opened the answer is 503."""
        service = NullMediaService(self.reactor, port_range=(30001, 30005))
        self.assertEqual(result(service.answer("c", "a", SIPP_OFFER), self).port, 30002)
        self.assertEqual(result(service.answer("c", "b", SIPP_OFFER), self).port, 30004)
        e = self.failure(service.answer("c", "c", SIPP_OFFER), 503)
        self.assertEqual(e.reason, "No media ports available")

    def test_port_reused_after_close(self) -> None:
        """In a full range a closed pair is used again, quarantine or not."""
        service = NullMediaService(self.reactor, port_range=(30000, 30003))
        a = result(service.answer("c", "a", SIPP_OFFER), self)
        result(service.answer("c", "b", SIPP_OFFER), self)
        service.close(a)
        self.assertEqual(result(service.answer("c", "c", SIPP_OFFER), self).port, 30000)

    def test_bad_range(self) -> None:
        """A range without a pair, or a cap below one, is refused."""
        self.assertRaises(ValueError, NullMediaService, self.reactor, port_range=(3, 3))
        self.assertRaises(ValueError, NullMediaService, self.reactor, port_range=(0, 100))
        self.assertRaises(ValueError, NullMediaService, self.reactor, max_sessions=0)

    def test_default_reactor(self) -> None:
        """Without a reactor the global one is used; the default address is loopback."""
        service = NullMediaService()
        self.assertIs(service._reactor, global_reactor)
        self.assertEqual(service.address, "127.0.0.1")

    def test_malformed_offer(self) -> None:
        """A malformed offer fails with 400 before any port is opened."""
        self.failure(self.service.answer("c", "a", b"v=0\r\nnonsense\r\n"), 400)
        self.assertEqual(self.reactor.listened, [])

    def test_unacceptable_offer(self) -> None:
        """An offer with nothing acceptable fails with 488 and a Warning, opening nothing."""
        offer = SIPP_OFFER.replace(b"RTP/AVP 0", b"RTP/AVP 18").replace(
            b"rtpmap:0 PCMU", b"rtpmap:18 G729"
        )
        e = self.failure(self.service.answer("c", "a", offer), 488)
        self.assertEqual(e.headers, [("Warning", '305 198.51.100.1 "Incompatible media format"')])
        self.assertEqual(self.reactor.listened, [])

    def test_srtp_policies(self) -> None:
        """Under each --srtp policy an SAVP offer (and a plain one) is taken or refused
        with 488 before any port is opened."""
        key = "QUJD" * 10
        savp = SIPP_OFFER.replace(b"RTP/AVP 0", b"RTP/SAVP 0") + (
            f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}\r\n".encode()
        )
        outcomes = {
            "optional": (True, True),
            "required": (True, False),
            "off": (False, True),
        }
        for policy, (secure_taken, plain_taken) in outcomes.items():
            service = NullMediaService(FakeMediaReactor(), srtp=policy)
            for offer, taken in ((savp, secure_taken), (SIPP_OFFER, plain_taken)):
                d = service.answer("c", "a", offer)
                if taken:
                    session = self.successResultOf(d)
                    assert isinstance(session, NullMediaSession) and session.stream is not None
                    self.assertEqual(session.stream.secure, offer is savp)
                else:
                    self.failure(d, 488)
            self.assertEqual(len(service.sessions), secure_taken + plain_taken)

    def test_srtp_policy(self) -> None:
        """No policy means optional where SRTP is available and off where it is not."""
        self.assertEqual(self.service.srtp, "optional")
        self.assertEqual(srtp_policy(None), "optional")
        self.assertRaises(ValueError, srtp_policy, "always")
        self.patch(srtp, "available", lambda: False)
        self.assertEqual(srtp_policy(None), "off")
        self.assertEqual(srtp_policy("off"), "off")
        self.assertRaises(ValueError, srtp_policy, "optional")
        self.assertRaises(ValueError, NullMediaService, self.reactor, srtp="required")

    def test_offer_and_complete(self) -> None:
        """An offerless INVITE gets an offer; the ACK's answer completes it."""
        session = result(self.service.offer("c", "a"), self)
        offer = parse_sdp(session.local_sdp)
        self.assertEqual(offer.media[0].formats, ["0", "8", "101"])
        self.assertEqual(offer.media[0].port, session.port)
        self.service.complete(
            session,
            crlf("v=0\no=x 1 1 IN IP4 h\ns=-\nc=IN IP4 192.0.2.9\nt=0 0\nm=audio 9000 RTP/AVP 8"),
        )
        self.assertEqual(session.stream.address, "192.0.2.9")

    def test_complete_mismatch(self) -> None:
        """An answer that does not answer the offer raises."""
        session = result(self.service.offer("c", "a"), self)
        e = self.assertRaises(RemoteProtocolError, self.service.complete, session, LINPHONE_OFFER)
        self.assertEqual(e.status, 400)

    def test_update(self) -> None:
        """A re-offer is answered with the next version on the same port."""
        session = self.join()
        answer = parse_sdp(
            result(
                self.service.update(
                    session, SIPP_OFFER.replace(b"PCMU/8000", b"PCMU/8000\r\na=sendonly")
                ),
                self,
            )
        )
        self.assertEqual((answer.media[0].port, answer.origin.session_version), (20000, 2))
        self.assertEqual(session.local_sdp, answer.to_bytes())

    def test_update_refused(self) -> None:
        """A re-offer with nothing acceptable fails with 488 and keeps the session."""
        session = self.join()
        before = session.local_sdp
        offer = SIPP_OFFER.replace(b"RTP/AVP", b"RTP/SAVP")
        self.failure(self.service.update(session, offer), 488)
        self.assertEqual(session.local_sdp, before)
        self.assertIn(session.port, self.service.sessions)

    def test_closed_session(self) -> None:
        """update and complete on a closed session are 481."""
        session = self.join()
        self.service.close(session)
        self.failure(self.service.update(session, SIPP_OFFER), 481)
        e = self.assertRaises(RemoteProtocolError, self.service.complete, session, SIPP_OFFER)
        self.assertEqual(e.status, 481)


class NullContractTests(MediaServiceContract, SynchronousTestCase):
    """
    The IMediaService contract, for the null service.
    """

    def setUp(self) -> None:
        self.reactor = FakeMediaReactor()
        self.service = self.make_service()

    def make_service(self, **kwargs: Any) -> NullMediaService:
        kwargs.setdefault("address", "198.51.100.1")
        return NullMediaService(self.reactor, **kwargs)


class NullActivityTests(SynchronousTestCase):
    """
    Media admission: the null service has no latch, so each well-formed packet,
    from any source, is activity.
    """

    def setUp(self) -> None:
        self.reactor = FakeMediaReactor()
        self.reactor.advance(1000)
        self.service = NullMediaService(self.reactor)

    def test_packets_refresh(self) -> None:
        """Well-formed RTP and RTCP refresh last_activity, from any source; malformed do not."""
        session = result(self.service.answer("sip:conf@example.com", "a", SIPP_OFFER), self)
        assert isinstance(session, NullMediaSession)
        self.reactor.advance(5)
        session.rtp.datagramReceived(RTP_PACKET, ("203.0.113.7", 4000))
        self.assertEqual(session.last_activity, 1005)
        self.reactor.advance(5)
        session.rtcp.datagramReceived(RTP_PACKET[:8], ("192.0.2.1", 4001))
        self.assertEqual(session.last_activity, 1010)
        self.reactor.advance(5)
        session.rtp.datagramReceived(b"\x00" * 20, ("192.0.2.1", 4000))
        self.assertEqual(session.last_activity, 1010)
        self.service.close(session)
        self.assertIsNone(session.rtp.on_activity)


class LoopbackTests(TestCase):
    """
    The null service on the real reactor, over loopback.
    """

    def test_rtp_counted(self) -> Deferred[None]:
        """An RTP packet sent to the answered port arrives and is counted."""
        service = NullMediaService(port_range=(40000, 40999))
        self.addCleanup(service.close_all)
        d = service.answer("sip:conf@example.com", "sip:a@example.com", SIPP_OFFER)
        session = self.successResultOf(d)
        assert isinstance(session, NullMediaSession)
        arrived: Deferred[Tuple[str, int]] = Deferred()
        session.rtp.on_datagram = lambda data, addr: arrived.callback(addr)
        sender = DatagramProtocol()
        port = global_reactor.listenUDP(0, sender, interface="127.0.0.1")  # type: ignore[attr-defined]
        self.addCleanup(port.stopListening)
        sender.transport.write(RTP_PACKET, ("127.0.0.1", session.port))  # type: ignore[union-attr]

        def check(addr: Tuple[str, int]) -> None:
            self.assertEqual(addr, ("127.0.0.1", port.getHost().port))
            self.assertEqual((session.rtp.packets, session.rtp.octets), (1, len(RTP_PACKET)))
            self.assertEqual((session.rtp.malformed, session.rtcp.packets), (0, 0))

        return arrived.addCallback(check)
