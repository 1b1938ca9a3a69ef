# -*- test-case-name: tests.test_benchmarks -*-
"""
The benchmark's baseline: a bare C{twisted.protocols.sip} responder.

It answers OPTIONS with 200 and INVITE with a fixed final code, and drops
the ACK, with nothing but Twisted's own SIP module (its parser, its
C{Base.datagramReceived} and C{Base.deliverResponse}): what Twisted's SIP
module alone costs per message, so the full server's figures can be given as
a ratio against it, measured in the same run on the same machine.

Run it as its own process::

    python benchmarks/bare_responder.py --port 5070 --final 405
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import socket
import sys
from typing import Any, Iterator, List, Optional, Tuple

from twisted.internet import reactor
from twisted.internet.interfaces import IReactorCore, IReactorUDP
from twisted.protocols import sip

# The same receive buffer the full server asks for (conference.transport.udp),
# so both face the kernel's drops on equal terms.
RECEIVE_BUFFER = 4 * 1024 * 1024

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS"
ACCEPT = "application/sdp"

REASONS = {
    200: "OK",
    404: "Not Found",
    405: "Method Not Allowed",
    480: "Temporarily Unavailable",
    486: "Busy Here",
    501: "Not Implemented",
    603: "Decline",
}


def _tags() -> Iterator[str]:
    for n in itertools.count(1):
        yield f"bare{n:x}"


class BareResponder(sip.Base):
    """
    Answers each request statelessly: OPTIONS 200, INVITE C{final}, ACK
    dropped, anything else 501.

    @ivar final: the status code every INVITE gets.
    @ivar answered: how many requests got a response (for a sanity check).
    """

    def __init__(self, final: int = 405) -> None:
        super().__init__()
        self.final = final
        self.answered = 0
        self._tags = _tags()

    def startProtocol(self) -> None:
        sock = getattr(self.transport, "socket", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)

    def handle_request(self, message: sip.Request, addr: Tuple[str, int]) -> None:
        """
        Answer one request (or drop it, for an ACK).
        """
        method = message.method
        if method == "ACK":
            return
        if method == "OPTIONS":
            response = self._response(200, message)
            response.addHeader("allow", ALLOW)
            response.addHeader("accept", ACCEPT)
        elif method == "INVITE":
            response = self._response(self.final, message)
            if self.final == 405:
                response.addHeader("allow", ALLOW)
        else:
            response = self._response(501, message)
        response.addHeader("content-length", "0")
        self.deliverResponse(response)
        self.answered += 1

    def handle_response(self, message: sip.Response, addr: Tuple[str, int]) -> None:
        """
        Responses are never expected: drop them.
        """

    def _response(self, code: int, request: sip.Request) -> sip.Response:
        response: sip.Response = self.responseFromRequest(code, request)
        response.phrase = REASONS.get(code, sip.statusCodes.get(code, "Unknown"))
        to: List[str] = response.headers.get("to", [])
        # A final answer from a UAS carries a To tag (RFC 3261 section 8.2.6.2).
        if to and ";tag=" not in to[0].lower():
            to[0] = f"{to[0]};tag={next(self._tags)}"
        return response


def main(argv: Optional[List[str]] = None) -> int:
    """
    Listen on 127.0.0.1 (or C{--interface}) until killed.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True, help="UDP port to listen on")
    parser.add_argument("--interface", default="127.0.0.1", help="address to bind")
    parser.add_argument("--final", type=int, default=405, help="the code every INVITE gets")
    args = parser.parse_args(argv)
    responder = BareResponder(args.final)
    udp: Any = reactor
    IReactorUDP(udp).listenUDP(args.port, responder, interface=args.interface, maxPacketSize=65535)
    sys.stdout.write(f"bare responder on udp:{args.port} (INVITE -> {args.final})\n")
    sys.stdout.flush()
    IReactorCore(udp).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
