# -*- test-case-name: tests.unit.sip.test_quick -*-
"""
Refusing a request without parsing it: what overload shedding needs when
a refusal must cost a small fraction of an answer (docs/limits.rst).

L{peek} reads only the start line and the header lines a stateless
response copies (RFC 3261 section 8.2.6.2: Via, From, To, Call-ID, CSeq),
as raw bytes, and L{refusal} builds the response from those lines as they
were written.  Anything unusual (a response, a request without an RFC 3261
branch, a missing or repeated header, folded lines, a body-less framing
problem) gives L{None} from L{peek}, and the caller takes the full path,
which answers or refuses properly: the quick path only ever declines to
help, it never judges a message malformed.

Sans-I/O: bytes in, bytes out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from conference.sip.rawmatch import raw_head

__all__ = ["Peek", "peek", "refusal", "reply_port"]

BRANCH_COOKIE = b"z9hG4bK"
# Header names (lower case, compact forms too) a stateless response copies.
_VIA = (b"via", b"v")
_SINGLE = {b"from": b"from", b"f": b"from", b"to": b"to", b"t": b"to"}
_SINGLE.update({b"call-id": b"call-id", b"i": b"call-id", b"cseq": b"cseq"})


@dataclass(frozen=True)
class Peek:
    """
    What the quick path knows of a request.

    @ivar method: the method, as sent (upper case for every standard one).
    @ivar branch: the top Via's branch (an RFC 3261 one: with the cookie).
    @ivar to_tag: the To header's tag, or L{None}.
    @ivar top_via: the top Via value (its first entry).
    @ivar vias: the Via header lines, whole, in order.
    @ivar lines: the From, To, Call-ID and CSeq lines, whole.
    """

    method: str
    branch: str
    to_tag: Optional[str]
    top_via: bytes
    vias: Tuple[bytes, ...]
    lines: Tuple[bytes, bytes, bytes, bytes]


def _param(value: bytes, name: bytes) -> Optional[bytes]:
    """
    The value of parameter C{name} of a header value: those after its
    address (after C{>} in a name-addr, after the first C{;} otherwise).
    """
    close = value.rfind(b">")
    for part in value[close + 1 :].split(b";")[1:]:
        key, _, found = part.partition(b"=")
        if key.strip().lower() == name:
            return found.strip()
    return None


def peek(data: bytes) -> Optional[Peek]:
    """
    The L{Peek} of a request datagram, or L{None} when the quick path
    should not handle it (see the module docstring).
    """
    head = raw_head(data)  # None when unterminated or folded
    if head is None:
        return None
    lines = head[:-2].split(b"\r\n")
    start = lines[0].split(b" ")
    if len(start) != 3 or not start[2].startswith(b"SIP/2.0") or start[0].startswith(b"SIP/"):
        return None
    vias: List[bytes] = []
    found = {}
    for line in lines[1:]:
        if not line:
            return None
        name, colon, value = line.partition(b":")
        if not colon:
            return None
        key = name.strip().lower()
        if key in _VIA:
            vias.append(line)
            if len(vias) == 1:
                found[b"via"] = value
        else:
            canonical = _SINGLE.get(key)
            if canonical is not None:
                if canonical in found:
                    return None
                found[canonical] = line
    if not vias or len(found) != 5:
        return None
    top = found[b"via"].split(b",")[0]
    branch = _param(top, b"branch")
    if branch is None or not branch.startswith(BRANCH_COOKIE):
        return None
    to_value = found[b"to"].partition(b":")[2]
    to_tag = _param(to_value, b"tag")
    try:
        method = start[0].decode("ascii")
        text_branch = branch.decode("ascii")
        text_tag = None if to_tag is None else to_tag.decode("ascii")
    except UnicodeDecodeError:
        return None
    return Peek(
        method=method,
        branch=text_branch,
        to_tag=text_tag,
        top_via=top.strip(),
        vias=tuple(vias),
        lines=(found[b"from"], found[b"to"], found[b"call-id"], found[b"cseq"]),
    )


def reply_port(request: Peek, source_port: int) -> int:
    """
    The port a response over UDP goes to (RFC 3261 section 18.2.2, RFC
    3581): the source port with C{rport}, else the top Via's sent-by port
    (5060 when it names none).  The host is always the source's.
    """
    if _param(request.top_via, b"rport") is not None:
        return source_port
    sent_by = request.top_via.split(b";")[0].split()[-1]
    host, colon, port = sent_by.rpartition(b":")
    if colon and port.isdigit() and not host.endswith(b":") and 0 < int(port) < 65536:
        return int(port)
    return 5060


def refusal(
    request: Peek,
    status: int,
    reason: str,
    *,
    to_tag: str,
    headers: Sequence[Tuple[str, str]] = (),
) -> bytes:
    """
    A stateless response to C{request}: its Via, From, To (with C{to_tag}
    added when it has none), Call-ID and CSeq lines as received, then
    C{headers}, no body.
    """
    from_line, to_line, call_id, cseq = request.lines
    if request.to_tag is None:
        to_line = to_line + b";tag=" + to_tag.encode("ascii")
    out = [f"SIP/2.0 {status} {reason}".encode("ascii"), *request.vias]
    out += [from_line, to_line, call_id, cseq]
    out += [f"{name}: {value}".encode() for name, value in headers]
    out.append(b"Content-Length: 0")
    return b"\r\n".join(out) + b"\r\n\r\n"
