# -*- test-case-name: tests.unit.test_bench_refusal -*-
"""
What a refused call costs the server at saturation, and the goodput past
capacity that cost allows.

Past capacity a node answers every call it cannot take with a 503 (refused
from the request's raw lines, before parsing: docs/limits.rst,
"Overload"), and reads that 503's ACK.  At C{k} times its capacity it
refuses all but one call in C{k}, so a refusal costing C{r} of an answer
bounds the goodput at M{(1 - k r) / (1 - r)} of capacity whatever the
controller does (docs/benchmarks.rst, "What a refused call costs at
saturation").  SIPp cannot show that cost apart from the calls admitted
beside it, so this measures it in one process: the server's real UDP port
and transport, with shedding told to refuse every new request, reads a
socket filled with INVITEs (then with their ACKs) by a client socket on
127.0.0.1, as it does when the queue stands, and the process's CPU time
(user and system, like C{/proc} for the live benchmarks) is divided by the
calls.  The three system calls alone (two C{recvmsg} and a C{sendto}) are
measured the same way, as the floor.

    python benchmarks/bench_refusal.py [--calls 2000] [--rounds 8]
        [--answer-us 370]
    python benchmarks/side_by_side.py bench_refusal.py

With C{--answer-us} (what an answer on the path costs, from
C{bench_fixed.py} or the live benchmarks' CPU per call), it also prints
C{r} and the goodput it allows at 2x and 4x capacity.
"""

from __future__ import annotations

import argparse
import re
import socket
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_sip import SERVER_CORE, pin
from twisted.internet.task import Clock

from conference.app.core import CoreRouter
from conference.overload import OverloadControl, ProportionalShedding
from conference.sip.transaction_model import new_tag
from conference.transport.server import SIPServer
from conference.transport.udp import SIPDatagramProtocol, listen_udp

#: The offer of SIPp's join scenario (benchmarks/scenarios/focus_join.xml),
#: its fields filled in.
SDP = (
    b"v=0\r\no=sipp 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
    b"t=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)
_TAG = re.compile(rb"\r\nTo: [^\r]*;tag=([^\r;]+)")


@dataclass(frozen=True)
class Round:
    """
    One round's CPU microseconds per refused call: all of it (INVITE read,
    refused, 503 sent; ACK read and dropped), and the floor of the same
    system calls alone.
    """

    refusal: float
    floor: float


def invite(n: int, port: int) -> bytes:
    """
    The INVITE of call C{n} from 127.0.0.1:C{port}, as the join scenario
    has SIPp write it.
    """
    head = (
        f"INVITE sip:room@example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{n}-1-0;rport\r\n"
        f"From: <sip:sipp@example.com>;tag={n}SIPpTag00{n}\r\n"
        f"To: <sip:room@example.com>\r\n"
        f"Call-ID: {n}-bench@127.0.0.1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
        f"Contact: <sip:sipp@127.0.0.1:{port}>\r\n"
        f"Accept: application/sdp, application/calendar+xml\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {len(SDP)}\r\n\r\n"
    )
    return head.encode("ascii") + SDP


def ack(n: int, port: int, tag: bytes) -> bytes:
    """The ACK of call C{n}'s 503, which carried To tag C{tag}."""
    return (
        f"ACK sip:room@example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{n}-1-0;rport\r\n"
        f"From: <sip:sipp@example.com>;tag={n}SIPpTag00{n}\r\n"
        f"To: <sip:room@example.com>;tag={tag.decode('ascii')}\r\n"
        f"Call-ID: {n}-bench@127.0.0.1\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\n"
        f"Content-Length: 0\r\n\r\n"
    ).encode("ascii")


def bound(r: float, factor: float) -> float:
    """
    The most goodput (a share of capacity) at C{factor} times capacity when
    a refusal costs C{r} of an answer: M{(1 - factor r) / (1 - r)}, at most
    1 and at least 0.

    @raise ValueError: unless 0 <= r < 1 and factor >= 1.
    """
    if not 0.0 <= r < 1.0 or factor < 1.0:
        raise ValueError("r must be in [0, 1) and factor at least 1")
    return min(1.0, max(0.0, (1.0 - factor * r) / (1.0 - r)))


def summary(rounds: Sequence[Round], answer_us: Optional[float], runtime: str) -> str:
    """
    The report: per round and as medians, the CPU per refused call and its
    floor; with C{answer_us}, C{r} and the bound at 2x and 4x.

    @raise ValueError: without rounds, or with C{answer_us} not above the
        median refusal.
    """
    if not rounds:
        raise ValueError("no rounds")
    refusal = statistics.median(r.refusal for r in rounds)
    floor = statistics.median(r.floor for r in rounds)
    lines = [f"{runtime}, {len(rounds)} rounds, CPU us per refused call (INVITE, 503, ACK):"]
    lines.append("  refused  " + " ".join(f"{r.refusal:6.1f}" for r in rounds))
    lines.append("  floor    " + " ".join(f"{r.floor:6.1f}" for r in rounds))
    lines.append(f"  median: refused {refusal:.1f} us, of which system calls alone {floor:.1f} us")
    if answer_us is not None:
        if answer_us <= refusal:
            raise ValueError("an answer must cost more than a refusal")
        r = refusal / answer_us
        lines.append(
            f"  against an answer of {answer_us:.0f} us: r = {r:.3f}, goodput at most "
            f"{bound(r, 2):.2f} of capacity at 2x, {bound(r, 4):.2f} at 4x"
        )
    return "\n".join(lines)


def cpu_us(work: Callable[[], None]) -> float:
    """The process's CPU microseconds (user and system) that C{work} took."""
    before = time.process_time()
    work()
    return 1e6 * (time.process_time() - before)


class Bench:
    """
    A server (L{SIPServer} on a real L{TimestampedPort}, its reactor a
    L{Clock} never run) that refuses every new request, and a client
    socket that fills its port and reads the answers.
    """

    def __init__(self, reactor: Any) -> None:
        clock = Clock()
        router = CoreRouter(["127.0.0.1"], tag_factory=new_tag, accept_ip_literals=True)
        self.server = SIPServer(router, reactor=clock)
        self.server.overload = OverloadControl(0.1, retry_after=(3, 3))
        queue = ProportionalShedding(0.02)
        # The clock never moves, so no interval ends and the share stays.
        queue.fraction = 1.0
        self.server.queue = queue
        self.port = listen_udp(reactor, 0, SIPDatagramProtocol(self.server), "127.0.0.1", 65536)
        # Read only when this bench says so, even with a running reactor.
        self.port.stopReading()  # type: ignore[attr-defined]
        self.address = ("127.0.0.1", self.port.getHost().port)  # type: ignore[attr-defined]
        self.client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024 * 1024)
        self.client.bind(("127.0.0.1", 0))
        self.client.setblocking(False)
        self.client_port = self.client.getsockname()[1]

    def _read_all(self, count: int) -> None:
        """
        Have the port read the C{count} datagrams waiting, as many per
        turn as it reads when the reactor wakes it.
        """
        for _ in range(count):
            self.port.doRead()  # type: ignore[attr-defined]
            if not self._waiting():
                return

    def _waiting(self) -> bool:
        try:
            self.port.socket.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)  # type: ignore[attr-defined]
        except BlockingIOError:
            return False
        return True

    def answers(self) -> List[bytes]:
        """What the client socket received since the last call."""
        got: List[bytes] = []
        while True:
            try:
                got.append(self.client.recv(65536))
            except BlockingIOError:
                return got

    def refusals(self, calls: int, first: int) -> float:
        """
        CPU microseconds per refused call, for calls C{first} onwards.

        @raise RuntimeError: unless every INVITE got its 503 and no ACK
            got an answer (so nothing here took the full path).
        """
        numbers = range(first, first + calls)
        for n in numbers:
            self.client.sendto(invite(n, self.client_port), self.address)
        spent = cpu_us(lambda: self._read_all(calls))
        answered = [a for a in self.answers() if a.startswith(b"SIP/2.0 503 ")]
        if len(answered) != calls:
            raise RuntimeError(f"{len(answered)} of {calls} INVITEs refused 503")
        tags = {}
        for answer in answered:
            found = _TAG.search(answer)
            call = re.search(rb"\r\nCall-ID: (\d+)-bench", answer)
            if found is None or call is None:
                raise RuntimeError("a 503 without its To tag or Call-ID")
            tags[int(call.group(1))] = found.group(1)
        for n in numbers:
            self.client.sendto(ack(n, self.client_port, tags[n]), self.address)
        spent += cpu_us(lambda: self._read_all(calls))
        if self.answers():
            raise RuntimeError("an ACK of a 503 was answered")
        return spent / calls

    def floor(self, calls: int) -> float:
        """
        CPU microseconds of the system calls alone, from Python with
        nothing around them, per refused call: an INVITE and an ACK read
        with their timestamps, a 503-sized datagram sent.
        """
        sock = self.port.socket  # type: ignore[attr-defined]
        answer = b"x" * 300
        ancillary = socket.CMSG_SPACE(16)

        def read() -> None:
            for _ in range(calls):
                sock.recvmsg(65536, ancillary)

        def send() -> None:
            for _ in range(calls):
                sock.sendto(answer, ("127.0.0.1", self.client_port))

        spent = 0.0
        for request in (invite(1, self.client_port), ack(1, self.client_port, b"x")):
            for _ in range(calls):
                self.client.sendto(request, self.address)
            spent += cpu_us(read)
        spent += cpu_us(send)
        self.answers()
        return spent / calls

    def close(self) -> Any:
        """Close both sockets; what the port's C{stopListening} returns."""
        self.client.close()
        return self.port.stopListening()


def run(calls: int, rounds: int, warm: int, reactor: Any) -> List[Round]:
    """C{warm} rounds discarded (the JIT's), then C{rounds} measured."""
    bench = Bench(reactor)
    try:
        if not getattr(bench.port, "stamps", False):
            raise RuntimeError("no UDP receive timestamps here: the server never sheds")
        measured: List[Round] = []
        for number in range(warm + rounds):
            refusal = bench.refusals(calls, 1 + number * calls)
            floor = bench.floor(calls)
            if number >= warm:
                measured.append(Round(refusal, floor))
        return measured
    finally:
        bench.close()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="CPU per refused call at saturation")
    parser.add_argument("--calls", type=int, default=2000, help="per round (fits the socket)")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--warm-up", type=int, default=4, help="rounds discarded first")
    parser.add_argument("--answer-us", type=float, default=None, help="an answer's CPU, us")
    args = parser.parse_args(argv)
    if args.calls < 1 or args.rounds < 1 or args.warm_up < 0:
        parser.error("--calls and --rounds must be positive, --warm-up not negative")
    pin(SERVER_CORE)()  # the live benchmarks' server core
    from twisted.internet import reactor

    try:
        rounds = run(args.calls, args.rounds, args.warm_up, reactor)
        runtime = f"{sys.implementation.name} {sys.version.split()[0]}"
        print(summary(rounds, args.answer_us, runtime))
    except (RuntimeError, OSError, ValueError) as e:
        sys.stderr.write(f"could not run: {e}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
