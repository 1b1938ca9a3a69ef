# -*- test-case-name: tests.unit.sip.test_parser -*-
"""
Sans-I/O parsing of SIP messages from UDP datagrams and TCP/TLS streams.

Twisted's C{MessagesParser} is a C{LineReceiver} that decodes bodies as
UTF-8, frames streams without requiring Content-Length and logs parse
failures instead of reporting them.  This module takes bytes and returns
L{conference.sip.message} objects with byte bodies, or raises
L{RemoteProtocolError} carrying the status to answer and, when the start
line could be read, the partly parsed message (as its C{message}
attribute) so the transport can build that answer.
"""

from __future__ import annotations

import re
from typing import Dict, List, Optional, Tuple, TypeVar

from conference.sip.errors import (
    LocalProtocolError,
    MessageTooLarge,
    RemoteProtocolError,
    SIPProtocolError,
)
from conference.sip.headers import (
    TOKEN_RE,
    contact_is_star,
    parse_call_id,
    parse_date,
    parse_int_header,
    parse_retry_after,
    parse_warning,
    shared_method,
)
from conference.sip.message import (
    COMPACT_FORMS,
    Message,
    Request,
    Response,
    display_name,
)
from conference.sip.uri import SIPURI, URI, AbsoluteURI, parse_uri

__all__ = [
    "DEFAULT_MAX_SIZE",
    "StreamParser",
    "error_message",
    "parse_datagram",
    "parse_wire",
    "validate",
]

DEFAULT_MAX_SIZE = 65536

_FOLD_RE = re.compile(r"\r\n[ \t]+")
_VERSION_RE = re.compile(r"SIP/[0-9]+\.[0-9]+", re.IGNORECASE)

# Headers that hold one value (RFC 3261 section 7.3.1 and 20): more than one
# field of them is a 400 (RFC 4475 section 3.3.8).
SINGLE_VALUED = (
    "to",
    "from",
    "call-id",
    "cseq",
    "max-forwards",
    "content-length",
    "content-type",
    "expires",
    "min-expires",
    "date",
    "mime-version",
    "retry-after",
    "timestamp",
    "priority",
    "reply-to",
    "organization",
    "subject",
    "user-agent",
    "server",
)
_SINGLE_VALUED_SET = frozenset(SINGLE_VALUED)
REQUIRED = ("to", "from", "call-id", "cseq", "via")

_E = TypeVar("_E", bound=SIPProtocolError)


def _attach(exc: _E, message: Optional[Message]) -> _E:
    exc.message = message  # type: ignore[attr-defined]
    return exc


def error_message(exc: SIPProtocolError) -> Optional[Message]:
    """
    The partly parsed message a parse error carries (its C{message}
    attribute), or L{None} when the start line could not be read.
    """
    message: Optional[Message] = getattr(exc, "message", None)
    return message


# Start line and header section ------------------------------------------------


def _check_version(version: str, message: Optional[Message]) -> Optional[RemoteProtocolError]:
    if version == "SIP/2.0" or version.upper() == "SIP/2.0":
        return None
    if _VERSION_RE.fullmatch(version):
        return RemoteProtocolError(f"SIP version {version} not supported", 505)
    return RemoteProtocolError(f"Bad SIP version {version[:20]!r}")


def _request_line(line: str) -> Tuple[Optional[Message], Optional[RemoteProtocolError]]:
    parts = line.split(" ")
    error: Optional[RemoteProtocolError] = None
    if len(parts) != 3 or not all(parts):
        # Recover method, URI and version so the refusal can still be built
        # (RFC 4475 sections 3.1.2.8-3.1.2.10).
        words = line.split()
        if len(words) < 3 or not _VERSION_RE.fullmatch(words[-1]):
            return None, RemoteProtocolError("Malformed start line")
        parts = [words[0], " ".join(words[1:-1]), words[-1]]
        error = RemoteProtocolError("Request-Line needs single SP between its three elements")
    method, uri_text, version = parts
    if not TOKEN_RE.fullmatch(method):
        return None, RemoteProtocolError("Bad method in Request-Line")
    uri: URI
    try:
        uri = parse_uri(uri_text)
    except RemoteProtocolError as e:
        uri = AbsoluteURI.unchecked(uri_text)
        error = error or RemoteProtocolError(f"Bad Request-URI: {e.reason}")
    request = Request(shared_method(method), uri)
    return request, _check_version(version, request) or error


def _status_line(line: str) -> Tuple[Optional[Message], Optional[RemoteProtocolError]]:
    parts = line.split(" ", 2)
    if len(parts) < 2:
        return None, RemoteProtocolError("Malformed Status-Line")
    version, code_text = parts[0], parts[1]
    if len(code_text) != 3 or not code_text.isdigit() or not 100 <= int(code_text) <= 699:
        return None, RemoteProtocolError("Status code is not 100..699")
    response = Response(int(code_text), parts[2] if len(parts) == 3 else "")
    return response, _check_version(version, response)


# Header names as written (before the colon) that were checked already,
# with their canonical keys: peers use the same few spellings in every
# message.  Bounded, since the names come from peers.
_HEADER_KEYS: Dict[str, str] = {}
_MAX_HEADER_KEYS = 1024


def _parse_head(
    raw: bytes,
) -> Tuple[Optional[Message], Dict[str, List[str]], Optional[RemoteProtocolError]]:
    """
    Parse a start line and header fields (without the final CRLF CRLF).

    Header fields are parsed even when the start line is bad, so that
    Content-Length can still frame a stream; the first fault is returned.
    """
    error: Optional[RemoteProtocolError] = None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", "replace")
        error = RemoteProtocolError("Header section is not UTF-8")
    if "\r\n " in text or "\r\n\t" in text:
        text = _FOLD_RE.sub(" ", text)
    lines = text.split("\r\n")
    crlf = text.count("\r\n")
    if text.count("\r") != crlf or text.count("\n") != crlf:
        error = error or RemoteProtocolError("Bare CR or LF in header section")
        lines = [ln.replace("\r", " ").replace("\n", " ") for ln in lines]
    start = lines[0]
    if start[:4].upper() == "SIP/":
        message, start_error = _status_line(start)
    else:
        message, start_error = _request_line(start)
    error = start_error or error
    headers: Dict[str, List[str]] = {}
    compact = COMPACT_FORMS
    known = _HEADER_KEYS
    for line in lines[1:]:
        written, sep, value = line.partition(":")
        key = known.get(written) if sep else None
        if key is None:
            name = written.rstrip(" \t")
            if not sep or not TOKEN_RE.fullmatch(name):
                error = error or RemoteProtocolError(f"Malformed header line {line[:40]!r}")
                continue
            key = name.lower()
            key = compact.get(key, key)
            if len(known) < _MAX_HEADER_KEYS:
                known[written] = key
        values = headers.get(key)
        if values is None:
            headers[key] = [value.strip(" \t")]
        else:
            values.append(value.strip(" \t"))
    if message is not None:
        message.headers = headers
    return message, headers, error


def _content_length(headers: Dict[str, List[str]]) -> Optional[int]:
    values = headers.get("content-length")
    if values is None:
        return None
    if len(values) > 1:
        raise RemoteProtocolError("Multiple Content-Length header fields")
    return parse_int_header(values[0], "Content-Length")


def _internal(exc: Exception) -> RemoteProtocolError:
    return RemoteProtocolError(f"Internal parser error: {type(exc).__name__}")


# UDP ----------------------------------------------------------------------------


def parse_datagram(data: bytes, *, max_size: int = DEFAULT_MAX_SIZE) -> Optional[Message]:
    """
    Parse one UDP datagram.

    Without Content-Length the rest of the datagram is the body; octets
    after Content-Length are discarded (RFC 3261 section 18.3).  A datagram
    of only CR/LF (a keep-alive) returns L{None}.  The message is
    L{validate}d.

    @raise MessageTooLarge: if the datagram is over C{max_size} (513).
    @raise RemoteProtocolError: naming the fault, with the status to answer
        and C{message} set to the partly parsed message or L{None}.
    """
    try:
        return _parse_datagram(data, max_size)
    except RemoteProtocolError as e:
        if not hasattr(e, "message"):
            _attach(e, None)
        raise
    except Exception as e:  # pragma: no cover - a safety net for parser bugs
        raise _attach(_internal(e), None) from e


def parse_wire(data: bytes) -> Message:
    """
    Read back a message this element serialized itself (a compacted
    message's bytes, L{conference.sip.compacted}): its start
    line, header fields and body, framed by the blank line alone (it was
    checked when it was made or received, and is not checked again).

    @raise LocalProtocolError: if C{data} holds no start line.
    """
    head, _, body = data.partition(b"\r\n\r\n")
    message, _, _ = _parse_head(head)
    if message is None:
        raise LocalProtocolError("serialized message has no start line")
    message.body = body
    return message


def _parse_datagram(data: bytes, max_size: int) -> Optional[Message]:
    start = 0
    n = len(data)
    while start < n and data[start] in b"\r\n":
        start += 1
    if start == n:
        return None
    end = data.find(b"\r\n\r\n", start)
    error: Optional[RemoteProtocolError] = None
    if end >= 0:
        head, body_start = data[start:end], end + 4
    elif data.endswith(b"\r\n"):
        # The datagram ends right after the last header line: accept it.
        head, body_start = data[start:-2], n
    else:
        head, body_start = data[start:], n
        error = RemoteProtocolError("Header section not terminated by an empty line")
    message, headers, head_error = _parse_head(head)
    if n > max_size:
        raise _attach(MessageTooLarge(), message)
    error = head_error or error
    try:
        length = _content_length(headers)
    except RemoteProtocolError as e:
        raise _attach(error or e, message) from None
    if length is None:
        body = data[body_start:]
    elif length > n - body_start:
        error = error or RemoteProtocolError("Content-Length larger than the datagram")
        body = data[body_start:]
    else:
        body = data[body_start : body_start + length]
    if message is None:
        raise _attach(error or RemoteProtocolError("Malformed start line"), None)
    message.body = body
    if error is not None:
        raise _attach(error, message)
    try:
        validate(message)
    except RemoteProtocolError as e:
        raise _attach(e, message) from None
    return message


# TCP / TLS ----------------------------------------------------------------------


class StreamParser:
    """
    Frame and parse messages from a byte stream (Content-Length required;
    CRLFs between messages skipped).

    L{feed} returns the messages completed so far.  A bad message whose
    framing is still known raises once and the stream goes on; if messages
    were completed before it in the same call, they are returned and the
    error is raised by the next call (C{feed(b"")} will do: call it while
    L{pending}).  After a framing error (no or bad Content-Length, over
    C{max_size}) the parser is L{broken} and every later call raises.
    """

    def __init__(self, max_size: int = DEFAULT_MAX_SIZE) -> None:
        self.max_size = max_size
        self._buf = bytearray()
        self._scanned = 0
        self._head: Optional[Tuple[Optional[Message], Optional[RemoteProtocolError], int, int]]
        self._head = None
        self._deferred: Optional[RemoteProtocolError] = None
        self._broken: Optional[str] = None

    @property
    def broken(self) -> bool:
        """
        Whether a framing error made the stream unusable (close it).
        """
        return self._broken is not None

    @property
    def pending(self) -> bool:
        """
        Whether an error or buffered data is waiting for another L{feed}.
        """
        return self._deferred is not None or (
            self._broken is None and self._head is not None and self._complete()
        )

    @property
    def buffered(self) -> int:
        """
        How many received bytes are not yet part of a returned message.
        """
        return len(self._buf)

    def _complete(self) -> bool:
        return self._head is not None and len(self._buf) >= self._head[2] + self._head[3]

    def feed(self, data: bytes) -> List[Message]:
        """
        Add received bytes; return the messages they complete, in order.

        @raise MessageTooLarge: for a message over C{max_size} (fatal).
        @raise RemoteProtocolError: for a bad message, with C{status} and
            C{message} as for L{parse_datagram}.
        """
        if self._deferred is not None:
            self._buf += data
            exc, self._deferred = self._deferred, None
            raise exc
        if self._broken is not None:
            raise _attach(RemoteProtocolError(f"Stream unusable after: {self._broken}"), None)
        self._buf += data
        out: List[Message] = []
        while True:
            try:
                message = self._next()
            except RemoteProtocolError as e:
                if not hasattr(e, "message"):
                    _attach(e, None)
                if out:
                    self._deferred = e
                    return out
                raise
            except Exception as e:  # pragma: no cover - a safety net for parser bugs
                self._broken = "internal error"
                raise _attach(_internal(e), None) from e
            if message is None:
                return out
            out.append(message)

    def _fatal(self, exc: RemoteProtocolError, message: Optional[Message]) -> RemoteProtocolError:
        self._broken = exc.reason
        self._buf.clear()
        return _attach(exc, message)

    def _next(self) -> Optional[Message]:
        buf = self._buf
        if self._head is None:
            skip = 0
            while skip < len(buf) and buf[skip] in b"\r\n":
                skip += 1
            if skip:
                del buf[:skip]
                self._scanned = 0
            if not buf:
                return None
            end = buf.find(b"\r\n\r\n", max(0, self._scanned - 3))
            if end < 0:
                self._scanned = len(buf)
                if len(buf) > self.max_size:
                    raise self._fatal(MessageTooLarge(), None)
                return None
            message, headers, error = _parse_head(bytes(buf[:end]))
            try:
                length = _content_length(headers)
            except RemoteProtocolError as e:
                raise self._fatal(e, message) from None
            if length is None:
                raise self._fatal(
                    RemoteProtocolError("Content-Length required on stream transports"), message
                )
            if end + 4 + length > self.max_size:
                raise self._fatal(MessageTooLarge(), message)
            self._head = (message, error, end + 4, length)
        message, error, head_len, length = self._head
        if len(buf) < head_len + length:
            return None
        body = bytes(buf[head_len : head_len + length])
        del buf[: head_len + length]
        self._scanned = 0
        self._head = None
        if message is None:
            raise _attach(error or RemoteProtocolError("Malformed start line"), None)
        message.body = body
        if error is not None:
            raise _attach(error, message)
        try:
            validate(message)
        except RemoteProtocolError as e:
            raise _attach(e, message) from None
        return message


# Validation ---------------------------------------------------------------------


def validate(message: Message) -> None:
    """
    Check what every message needs (RFC 3261 sections 8.1.1 and 20):
    To, From, Call-ID, CSeq and Via present and well-formed, single-valued
    headers not repeated, a request's CSeq method equal to its method, a
    Request-URI without headers, Max-Forwards 0..255, Expires, Date,
    Content-Type, Contact and Content-Length well-formed; for responses,
    status 100..699 and Warning and Retry-After well-formed.

    @raise RemoteProtocolError: (400) naming the first fault.
    """
    headers = message.headers
    # A message has far fewer fields than there are single-valued headers.
    repeated = [n for n, values in headers.items() if len(values) > 1 and n in _SINGLE_VALUED_SET]
    if repeated:
        first = min(repeated, key=SINGLE_VALUED.index)
        raise RemoteProtocolError(f"Multiple {display_name(first)} header fields")
    missing = [display_name(n) for n in REQUIRED if not headers.get(n)]
    if missing:
        raise RemoteProtocolError("Missing " + ", ".join(missing))
    is_request = isinstance(message, Request)
    if isinstance(message, Request):
        uri = message.uri
        if isinstance(uri, SIPURI) and uri.headers:
            raise RemoteProtocolError("Request-URI holds URI headers")
    elif not 100 <= message.code <= 699:
        raise RemoteProtocolError("Status code is not 100..699")
    parse_call_id(headers["call-id"][0])
    # The typed views parse (and remember) what they are asked for, so the
    # layers above do not parse these headers again.
    cseq = message.cseq
    if isinstance(message, Request) and cseq.method != message.method:
        raise RemoteProtocolError("CSeq method does not match the Request-Line")
    message.parsed_vias()
    message.parsed_address("to", "To")
    message.parsed_address("from", "From")
    contact_fields = headers.get("contact")
    if contact_fields:
        # Only a field holding "*" can be the wildcard (or mix it in): the
        # others are parsed as addresses at once, not split twice.
        if any("*" in field for field in contact_fields):
            if not contact_is_star(message.header_values("contact")):
                message.parsed_contacts("Contact")
        else:
            message.parsed_contacts("Contact")
    _optional(message, is_request)


def _first(headers: Dict[str, List[str]], name: str) -> Optional[str]:
    values = headers.get(name)
    return values[0] if values else None


def _optional(message: Message, is_request: bool) -> None:
    headers = message.headers
    value = _first(headers, "max-forwards")
    if value is not None:
        parse_int_header(value, "Max-Forwards", 255)
    for name in ("expires", "min-expires"):
        value = _first(headers, name)
        if value is not None:
            parse_int_header(value, display_name(name))
    value = _first(headers, "date")
    if value is not None:
        parse_date(value)
    _ = message.content_type  # parsed (and remembered) to check it
    value = _first(headers, "content-length")
    if value is not None and parse_int_header(value, "Content-Length") != len(message.body):
        raise RemoteProtocolError("Content-Length does not match the body")
    if not is_request:
        for value in headers.get("warning", ()):
            parse_warning(value)
        value = _first(headers, "retry-after")
        if value is not None:
            parse_retry_after(value)
