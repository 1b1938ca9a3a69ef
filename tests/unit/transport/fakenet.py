# -*- test-case-name: tests.unit.transport.test_outbound,tests.unit.app.test_dialout -*-
"""
A fake network for the outbound path, where no socket may be opened: our
SIP core on a fake clock with a UDP "port" that keeps what it sends, the
server's L{OutboundSender} resolving through an in-memory zone of
example.net (C{twisted.names} asked directly), and the test answering
each request as the peer it reached would.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

from conference.app.core import CoreRouter
from conference.app.dialout import DialOut
from conference.sip.message import Request, make_response
from conference.sip.parser import parse_datagram
from conference.sip.transaction import Peer, TransactionLayer
from conference.sip.transaction_model import new_tag
from conference.transport.dns import DNSLookup
from conference.transport.outbound import OutboundSender
from conference.transport.server import SIPServer
from tests.dnszone import LiveZone

#: Our UDP port's address.
LOCAL = ("192.0.2.1", 5060)


class FakeUDP:
    """
    A UDP port that keeps every datagram it is asked to send.
    """

    def __init__(self, local: Tuple[str, int] = LOCAL) -> None:
        self.local = local
        self.sent: List[Tuple[bytes, str, int]] = []

    def send_bytes(self, data: bytes, host: str, port: int) -> None:
        self.sent.append((data, host, port))

    def local_address(self) -> Tuple[str, int]:
        return self.local


class FakeNetwork:
    """
    Our server's SIP core and outbound sender on C{clock}, with C{zone}
    (name -> C{twisted.names} records) as the DNS of example.net.

    @ivar server: the SIP core, which sends through L{udp}.
    @ivar sender: the outbound path (RFC 3263) over it.
    """

    def __init__(
        self,
        clock: Any,
        zone: Dict[str, List[Any]],
        *,
        domains: Sequence[str] = ("example.com",),
        t1: float = 0.5,
    ) -> None:
        self.clock = clock
        self.zone = zone
        self.router = CoreRouter(list(domains), tag_factory=new_tag, accept_ip_literals=True)
        self.server = SIPServer(self.router, reactor=clock, layer=TransactionLayer(t1=t1))
        self.udp = FakeUDP()
        self.server.add_sender(self.udp, self.udp)
        lookup = DNSLookup(lambda: LiveZone("example.net", lambda: self.zone))
        self.sender = OutboundSender(
            self.server, lookup, None, udp=lambda to=None: (self.udp, *self.udp.local)
        )

    def dialout(self, control: Any) -> DialOut:
        """
        The focus's dial-out over this network's outbound path (users of
        example.com are served here).
        """
        return DialOut(
            control,
            send_request=self.server.send_request,
            send_ack=self.server.send,
            local_address=self.server.local_address,
            route=self.sender,
            is_local=lambda aor: aor.endswith("@example.com"),
            contact_address=lambda: LOCAL,
        )

    def requests(self, method: Optional[str] = None) -> List[Tuple[Request, str, int]]:
        """
        The requests sent so far (retransmissions once), with where they
        went, oldest first.
        """
        out: List[Tuple[Request, str, int]] = []
        seen = set()
        for data, host, port in self.udp.sent:
            if data in seen:
                continue
            seen.add(data)
            message = parse_datagram(data)
            if isinstance(message, Request) and method in (None, message.method):
                out.append((message, host, port))
        return out

    def answer(
        self,
        request: Request,
        where: Tuple[str, int],
        code: int,
        *,
        headers: Sequence[Tuple[str, str]] = (),
        body: bytes = b"",
    ) -> None:
        """
        Answer C{request} with C{code} as the peer at C{where} (host, port).
        """
        response = make_response(request, code, to_tag="peer", headers=list(headers), body=body)
        host, port = where
        self.server.datagram_received(response.to_bytes(), Peer("UDP", host, port, self.udp))
