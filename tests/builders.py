# -*- test-case-name: tests -*-
"""
Wire-format SIP requests for tests, parsed by the real parser, so tests
exercise the same objects the server sees.
"""

from __future__ import annotations

from typing import Iterable, Optional, Tuple

from conference.sip.message import Request, Response
from conference.sip.parser import parse_datagram


def request_bytes(
    method: str,
    uri: str = "sip:localhost",
    *,
    branch: str = "z9hG4bKtest1",
    via_host: str = "192.0.2.1:5060",
    transport: str = "UDP",
    from_: str = "<sip:alice@localhost>;tag=ft1",
    to: Optional[str] = None,
    call_id: str = "call-1@test",
    cseq: int = 1,
    cseq_method: Optional[str] = None,
    headers: Iterable[Tuple[str, str]] = (),
    body: bytes = b"",
    rport: bool = False,
) -> bytes:
    """
    Build a request on the wire: Via, From, To, Call-ID, CSeq,
    Max-Forwards, then C{headers}, then Content-Length and C{body}.
    """
    via = f"SIP/2.0/{transport} {via_host};branch={branch}" + (";rport" if rport else "")
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: {via}",
        f"From: {from_}",
        f"To: {to if to is not None else '<' + uri + '>'}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {cseq_method or method}",
        "Max-Forwards: 70",
    ]
    lines.extend(f"{name}: {value}" for name, value in headers)
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


def make_request(method: str, uri: str = "sip:localhost", **kwargs: object) -> Request:
    """
    L{request_bytes}, parsed.
    """
    message = parse_datagram(request_bytes(method, uri, **kwargs))  # type: ignore[arg-type]
    assert isinstance(message, Request)
    return message


def parse_response(data: bytes) -> Response:
    """
    Parse bytes the server sent, which must be one response.
    """
    message = parse_datagram(data)
    assert isinstance(message, Response), message
    return message


def mutated(message: bytes, edits: Iterable[Tuple[int, str, bytes]]) -> bytes:
    """
    C{message} with C{edits} made in turn, each C{(where, op, chunk)}: at
    C{where} (modulo the length so far, plus one), C{"flip"} replaces a
    byte with C{chunk}'s first, C{"del"} deletes C{len(chunk)} bytes, any
    other inserts C{chunk}.  The parser's robustness tests draw the edits
    with hypothesis; C{benchmarks/bench_badload.py} from a seeded RNG.
    """
    raw = bytearray(message)
    for where, op, chunk in edits:
        pos = where % (len(raw) + 1)
        if op == "flip" and pos < len(raw):
            raw[pos] = chunk[0]
        elif op == "del":
            del raw[pos : pos + len(chunk)]
        else:
            raw[pos:pos] = chunk
    return bytes(raw)
