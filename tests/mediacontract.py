# -*- test-case-name: tests.loopback.test_mixer -*-
"""
The contract every L{IMediaService} keeps, as a mixin run against each
implementation (L{tests.loopback.test_media} for the null service,
L{tests.loopback.test_mixer} for the mixer), and a fake reactor with a clock
and UDP ports that record what is sent, to run it on.
"""

from __future__ import annotations

import struct
from typing import Any, Dict, List, Optional, Set, Tuple

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IAddress, IListeningPort, IReactorUDP
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from conference.interfaces import IMediaService, IMediaSession
from conference.sdp import parse_sdp
from conference.sip.errors import RemoteProtocolError
from tests.unit.test_sdp import LINPHONE_OFFER, SIPP_OFFER, crlf

Address = Tuple[str, int]
CONFERENCE = "sip:conf@example.com"
ANSWER_TO_OFFER = crlf(
    """
    v=0
    o=x 1 1 IN IP4 192.0.2.9
    s=-
    c=IN IP4 192.0.2.9
    t=0 0
    m=audio 9000 RTP/AVP 8 101
    a=rtpmap:101 telephone-event/8000
    """
)
# Where SIPP_OFFER's media comes from, and a packet of each kind from there.
PEER_RTP = ("192.0.2.10", 6000)
PEER_RTCP = ("192.0.2.10", 6001)
RTP_PACKET = struct.pack("!BBHII", 0x80, 0, 1, 160, 0x1234) + b"\xff" * 160
RTCP_RR = struct.pack("!BBHI", 0x80, 201, 1, 0x1234)


def with_direction(offer: bytes, direction: str) -> bytes:
    """C{offer} (one PCMU stream) with an C{a=} direction line."""
    return offer.replace(b"PCMU/8000", b"PCMU/8000\r\na=" + direction.encode())


@implementer(IListeningPort)
class FakeUDPPort:
    """
    A UDP port of L{FakeMediaReactor}: the protocol's transport, whose
    writes are recorded in the reactor's C{sent}.
    """

    def __init__(
        self, reactor: FakeMediaReactor, port: int, interface: str, protocol: DatagramProtocol
    ) -> None:
        self.reactor = reactor
        self.port = port
        self.interface = interface
        self.protocol = protocol
        self.listening = True
        protocol.makeConnection(self)  # type: ignore[arg-type]

    def write(self, data: bytes, address: Address) -> None:
        """Record a datagram sent from this port."""
        if self.reactor.write_error is not None:
            raise self.reactor.write_error
        self.reactor.sent.append((self.port, data, address))

    def startListening(self) -> None:
        """Already listening."""

    def stopListening(self) -> None:
        """Stop, and free the port in the reactor."""
        self.listening = False
        del self.reactor.open[self.port]

    def getHost(self) -> IAddress:
        """The address listened on."""
        return IPv4Address("UDP", self.interface or "0.0.0.0", self.port)


@implementer(IReactorUDP)
class FakeMediaReactor(Clock):
    """
    A clock with UDP ports: opens ports (refusing busy ones), records what
    they send in C{sent} as (local port, data, destination), and delivers
    datagrams to them with L{deliver}.
    """

    def __init__(self, busy: Optional[Set[int]] = None) -> None:
        super().__init__()
        self.busy: Set[int] = busy or set()
        self.open: Dict[int, FakeUDPPort] = {}
        self.listened: List[Tuple[int, str]] = []
        self.sent: List[Tuple[int, bytes, Address]] = []
        self.write_error: Optional[Exception] = None

    def listenUDP(
        self, port: int, protocol: DatagramProtocol, interface: str = "", maxPacketSize: int = 8192
    ) -> IListeningPort:
        """Listen on C{port} unless it is busy or already open."""
        self.listened.append((port, interface))
        if port in self.busy or port in self.open:
            raise CannotListenError(interface, port, OSError("in use"))
        self.open[port] = FakeUDPPort(self, port, interface, protocol)
        return self.open[port]

    def deliver(self, port: int, data: bytes, source: Address) -> None:
        """A datagram from C{source} arrives at C{port}."""
        self.open[port].protocol.datagramReceived(data, source)

    def sent_to(self, address: Address) -> List[bytes]:
        """The datagrams sent to C{address}, in order."""
        return [data for _, data, to in self.sent if to == address]


class MediaServiceContract:
    """
    What the focus relies on from any L{IMediaService}.  A test case
    mixing this in sets C{self.reactor} (a L{FakeMediaReactor}) and
    C{self.service} in C{setUp}, with the service on that reactor, on
    address 198.51.100.1 and the default port range, and implements
    L{make_service} for other settings.
    """

    reactor: FakeMediaReactor
    service: Any

    def make_service(self, **kwargs: Any) -> Any:
        """A service on C{self.reactor} with these L{NullMediaService} options."""
        raise NotImplementedError()

    def held(self) -> Dict[int, FakeUDPPort]:
        """
        The open ports that serve a session: a service may keep a closed
        session's ports bound but parked (L{conference.app.rtpports}).
        """
        return {
            number: port
            for number, port in self.reactor.open.items()
            if not getattr(port.protocol, "parked", False)
        }

    def _case(self) -> SynchronousTestCase:
        assert isinstance(self, SynchronousTestCase)
        return self

    def _result(self, d: Deferred[Any]) -> Any:
        return self._case().successResultOf(d)

    def _failure(self, d: Deferred[Any], status: int) -> RemoteProtocolError:
        e = self._case().failureResultOf(d, RemoteProtocolError).value
        assert isinstance(e, RemoteProtocolError)
        self._case().assertEqual(e.status, status)
        return e

    def _join(self, offer: bytes = SIPP_OFFER, who: str = "sip:a@example.com") -> Any:
        return self._result(self.service.answer(CONFERENCE, who, offer))

    def test_contract_interfaces(self) -> None:
        """The service and its sessions provide the media interfaces."""
        case = self._case()
        case.assertTrue(verifyObject(IMediaService, self.service))
        session = self._join()
        case.assertTrue(verifyObject(IMediaSession, session))
        case.assertEqual(
            (session.conference, session.participant), (CONFERENCE, "sip:a@example.com")
        )

    def test_contract_answer(self) -> None:
        """The answer names our address, an open even port and only codecs offered."""
        case = self._case()
        session = self._join(LINPHONE_OFFER)
        answer = parse_sdp(session.local_sdp)
        assert answer.connection is not None
        case.assertEqual(answer.connection.address, "198.51.100.1")
        audio = next(m for m in answer.media if m.port)
        case.assertEqual(audio.port % 2, 0)
        case.assertIn(audio.port, self.reactor.open)
        case.assertIn(audio.port + 1, self.reactor.open)
        case.assertTrue(set(audio.formats) <= set(parse_sdp(LINPHONE_OFFER).media[0].formats))
        case.assertEqual(len(answer.media), len(parse_sdp(LINPHONE_OFFER).media))

    def test_contract_refusals_open_nothing(self) -> None:
        """Malformed SDP is 400, no common codec 488; neither opens a port."""
        self._failure(self.service.answer(CONFERENCE, "a", b"v=0\r\nnonsense\r\n"), 400)
        g729 = SIPP_OFFER.replace(b"RTP/AVP 0", b"RTP/AVP 18").replace(b"0 PCMU", b"18 G729")
        self._failure(self.service.answer(CONFERENCE, "a", g729), 488)
        self._case().assertEqual(self.held(), {})

    def test_contract_offer_complete(self) -> None:
        """An offerless join gets an offer; a matching answer completes it, a bad one raises 400."""
        case = self._case()
        session = self._result(self.service.offer(CONFERENCE, "a"))
        offer = parse_sdp(session.local_sdp)
        # G.711 is always offered (every phone speaks it), wideband codecs may come first.
        case.assertTrue({"0", "8"} <= set(offer.media[0].formats), offer.media[0].formats)
        self.service.complete(session, ANSWER_TO_OFFER)
        other = self._result(self.service.offer(CONFERENCE, "b"))
        e = case.assertRaises(RemoteProtocolError, self.service.complete, other, LINPHONE_OFFER)
        case.assertEqual(e.status, 400)

    def test_contract_update(self) -> None:
        """A re-offer is answered on the same port, next version; a refused one changes nothing."""
        case = self._case()
        session = self._join()
        before = parse_sdp(session.local_sdp)
        hold = SIPP_OFFER.replace(b"PCMU/8000", b"PCMU/8000\r\na=sendonly")
        answer = parse_sdp(self._result(self.service.update(session, hold)))
        case.assertEqual(answer.media[0].port, before.media[0].port)
        case.assertEqual(answer.origin.session_version, before.origin.session_version + 1)
        case.assertTrue(answer.media[0].has("recvonly"))
        current = session.local_sdp
        self._failure(
            self.service.update(session, SIPP_OFFER.replace(b"RTP/AVP", b"RTP/SAVP")), 488
        )
        case.assertEqual(session.local_sdp, current)

    def test_contract_close(self) -> None:
        """close releases the ports, is idempotent, and later calls on the session are 481."""
        case = self._case()
        session = self._join()
        self.service.close(session)
        self.service.close(session)
        case.assertEqual(self.held(), {})
        self._failure(self.service.update(session, SIPP_OFFER), 481)
        e = case.assertRaises(RemoteProtocolError, self.service.complete, session, SIPP_OFFER)
        case.assertEqual(e.status, 481)

    def test_contract_close_all(self) -> None:
        """close_all closes every session and leaves no port bound, parked or not."""
        case = self._case()
        first, second = self._join(), self._join(who="b")
        self.service.close(first)
        self.service.close_all()
        case.assertEqual(self.reactor.open, {})
        case.assertTrue(getattr(second, "closed", True))
        self._failure(self.service.update(second, SIPP_OFFER), 481)

    def test_contract_warn(self) -> None:
        """warn takes an open session and ignores a closed one; the call goes on either way."""
        session = self._join()
        self.service.warn(session, 1000.0)
        self.service.close(session)
        self.service.warn(session, 1000.0)
        self._case().assertEqual(self.held(), {})

    def test_contract_exhaustion(self) -> None:
        """Beyond the session cap, or without a free port pair, a join is 503."""
        service = self.make_service(max_sessions=1)
        first = self._result(service.answer(CONFERENCE, "a", SIPP_OFFER))
        self._failure(service.answer(CONFERENCE, "b", SIPP_OFFER), 503)
        service.close(first)
        self._result(service.answer(CONFERENCE, "b", SIPP_OFFER))
        narrow = self.make_service(port_range=(40000, 40001))
        self.reactor.busy.add(40000)
        self._failure(narrow.answer(CONFERENCE, "c", SIPP_OFFER), 503)

    # What the admission policy and the inactivity timeout read.

    def test_contract_capacity(self) -> None:
        """The capacity is the port pairs of the range or max_sessions, whichever is fewer."""
        case = self._case()
        case.assertEqual(self.make_service(port_range=(40000, 40019)).capacity, 10)
        case.assertEqual(self.make_service(max_sessions=3).capacity, 3)

    def test_contract_activity(self) -> None:
        """A session starts active; the peer's RTP and RTCP and touch refresh it, garbage not."""
        case = self._case()
        self.reactor.advance(1000)
        session = self._join()
        case.assertTrue(session.expects_media)
        case.assertEqual(session.last_activity, 1000)
        self.reactor.advance(5)
        self.reactor.deliver(session.port, RTP_PACKET, PEER_RTP)
        case.assertEqual(session.last_activity, 1005)
        self.reactor.advance(5)
        self.reactor.deliver(session.port + 1, RTCP_RR, PEER_RTCP)
        case.assertEqual(session.last_activity, 1010)
        self.reactor.advance(5)
        self.reactor.deliver(session.port, b"\x00" * 20, PEER_RTP)
        case.assertEqual(session.last_activity, 1010)
        self.reactor.advance(5)
        self.service.touch(session)
        case.assertEqual(session.last_activity, 1020)

    def test_contract_hold(self) -> None:
        """
        No media is expected while the peer holds (a=inactive or recvonly,
        c=0.0.0.0); taking the call off hold restarts the count, a refresh not.
        """
        case = self._case()
        session = self._join(with_direction(SIPP_OFFER, "inactive"))
        case.assertFalse(session.expects_media)
        self.reactor.advance(500)
        self._result(self.service.update(session, SIPP_OFFER))
        case.assertTrue(session.expects_media)
        case.assertEqual(session.last_activity, 500)
        self.reactor.advance(30)
        self._result(self.service.update(session, SIPP_OFFER))
        case.assertEqual(session.last_activity, 500)
        for held in (
            with_direction(SIPP_OFFER, "recvonly"),
            SIPP_OFFER.replace(b"c=IN IP4 192.0.2.10", b"c=IN IP4 0.0.0.0"),
        ):
            self._result(self.service.update(session, held))
            case.assertFalse(session.expects_media)
        self._result(self.service.update(session, with_direction(SIPP_OFFER, "sendonly")))
        case.assertTrue(session.expects_media)
        case.assertEqual(session.last_activity, 530)

    def test_contract_offer_expects_after_answer(self) -> None:
        """After our offer, media is expected from the answer on, and counted from then."""
        case = self._case()
        session = self._result(self.service.offer(CONFERENCE, "a"))
        case.assertFalse(session.expects_media)
        self.reactor.advance(20)
        self.service.complete(session, ANSWER_TO_OFFER)
        case.assertTrue(session.expects_media)
        case.assertEqual(session.last_activity, 20)
