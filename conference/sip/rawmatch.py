# -*- test-case-name: tests.unit.sip.test_rawmatch -*-
"""
The server transaction key of a request datagram, read from its raw lines.

Most requests a loaded server receives after a new one are about a
transaction it already finished: the ACK of a non-2xx final response, or
a retransmission whose answer is already sent.  RFC 3261 section 17.2.3
matches them by the top Via's branch and sent-by and the method alone, so
L{raw_server_key} reads only those, and the transaction layer
(L{conference.sip.transaction.TransactionLayer.absorb}) absorbs or
answers them without parsing and validating every header.

Anything unusual (a response, a branch without the magic cookie, folded
lines, a Via written with spaces around its separators, an IPv6 sent-by,
a quoted or repeated parameter) gives L{None}, and the caller parses the
message in full: this only ever declines to help, it never judges a
message.  The key is the one L{conference.sip.transaction_model.server_key}
gives for the parsed message.

Sans-I/O: bytes in, a key out.
"""

from __future__ import annotations

import re
from typing import Hashable, Optional, Tuple

from conference.sip.transaction_model import has_cookie, rfc3261_key, shared_host

__all__ = ["raw_branch", "raw_head", "raw_server_key"]

_TOKEN = rb"[A-Za-z0-9.!%*_+`'~-]+"
# The request line: an upper-case method, a URI without spaces, SIP/2.0.
_REQUEST_LINE = re.compile(rb"([A-Z]+) [^ ]+ SIP/2\.0")
# The first via of a Via value: sent-protocol, sent-by, then parameters
# written without white space; up to its end or the comma after it.
_VIA = re.compile(
    rb"[ \t]*SIP/2\.0/(" + _TOKEN + rb") ([A-Za-z0-9.-]+)(?::([0-9]{1,5}))?"
    rb"((?:;" + _TOKEN + rb"(?:=" + _TOKEN + rb")?)*)[ \t]*(?:,|$)"
)
_BRANCH = re.compile(rb";branch=([^;,\s]+)")
# The first Via header line (full or compact name).
_VIA_LINE = re.compile(rb"\r\n(?:via|v)[ \t]*:", re.IGNORECASE)


def raw_branch(data: bytes) -> Optional[str]:
    """
    The value of the first C{;branch=} parameter written in lower case in
    C{data} (normally the top Via's), or L{None}: a cheap first look, for
    a caller that answers most requests fully anyway, at whether a request
    can belong to a live transaction at all.  L{raw_server_key} is what
    reads the top Via properly.
    """
    m = _BRANCH.search(data)
    return m.group(1).decode("latin-1") if m is not None else None


def raw_head(data: bytes) -> Optional[bytes]:
    """
    The start line and header lines of datagram C{data}, each ending in
    CRLF, or L{None} when there is no blank line ending them or a line is
    folded (what the readers of raw lines leave to the parser).
    """
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = data[: end + 2]
    if b"\r\n " in head or b"\r\n\t" in head:
        return None
    return head


def raw_server_key(data: bytes) -> Optional[Tuple[str, Hashable]]:
    """
    The method and the server transaction key (RFC 3261 matching, with
    INVITE for an ACK) of the request in datagram C{data}, or L{None} when
    it is not a request with a plainly written top Via carrying an RFC
    3261 branch.
    """
    head = raw_head(data)
    if head is None:
        return None
    line_end = head.find(b"\r\n")
    if line_end < 0:
        return None
    start = _REQUEST_LINE.fullmatch(head, 0, line_end)
    if start is None:
        return None
    via = _VIA_LINE.search(head, line_end)
    if via is None:
        return None
    value_end = head.find(b"\r\n", via.end())
    value = head[via.end() :] if value_end < 0 else head[via.end() : value_end]
    return _key(start.group(1).decode("ascii"), value)


def _key(method: str, value: bytes) -> Optional[Tuple[str, Hashable]]:
    m = _VIA.match(value)
    if m is None:
        return None
    transport_bytes, host_bytes, port_text, params = m.groups()
    branch: Optional[str] = None
    for param in params.split(b";")[1:]:
        name, _, param_value = param.partition(b"=")
        if name.lower() == b"branch":
            if branch is not None or not param_value:
                return None
            branch = param_value.decode("ascii")
    if branch is None or not has_cookie(branch):
        return None
    transport = transport_bytes.decode("ascii").upper()
    if port_text is not None:
        port = int(port_text)
        if port > 65535:
            return None
    else:
        port = 5061 if transport == "TLS" else 5060
    key_method = "INVITE" if method == "ACK" else method
    return method, rfc3261_key(branch, shared_host(host_bytes.decode("ascii")), port, key_method)
