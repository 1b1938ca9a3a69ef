# -*- test-case-name: tests.unit.sip.test_multipart -*-
"""
MIME multipart bodies (RFC 2046 section 5.1) for SIP messages, sans-I/O.

SIP carries several bodies at once as multipart/mixed (SDP plus xCal),
multipart/alternative (MESSAGE text in two forms), multipart/signed (S/MIME)
and BIND's C{cid:} parts.  The standard library's C{email} package rewrites
line endings and headers, which breaks signatures and loses exact bytes, so
this parser keeps every part's raw bytes and reports faults as
L{RemoteProtocolError}.
"""

from __future__ import annotations

import base64
import binascii
import quopri
import re
import secrets
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple, Union

from conference.sip.errors import LocalProtocolError, RemoteProtocolError
from conference.sip.headers import MediaType, parse_media_type

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_PARTS",
    "DEFAULT_MAX_SIZE",
    "BodyPart",
    "Envelope",
    "Multipart",
    "Part",
    "build_multipart",
    "envelope",
    "find_content_id",
    "parse_multipart",
    "serialize_part",
]

DEFAULT_MAX_SIZE = 1024 * 1024
DEFAULT_MAX_PARTS = 64
DEFAULT_MAX_DEPTH = 4

# RFC 2046 section 5.1.1: bchars, 1 to 70 of them, not ending in a space.
_BOUNDARY_RE = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
_HEADER_NAME_RE = re.compile(rb"[!-9;-~]+")
_DEFAULT_TYPE = MediaType("text", "plain", {"charset": "us-ascii"})
_DIGEST_TYPE = MediaType("message", "rfc822", {})


def _bad(why: str) -> RemoteProtocolError:
    return RemoteProtocolError(f"Bad multipart body: {why}")


@dataclass(frozen=True)
class Part:
    """
    One body part as it was received.

    @ivar headers: the part's header fields as (lower-case name, value), in
        order, folded lines joined.
    @ivar body: the part's content, bytes exactly as sent (no transfer
        decoding; see L{decoded}).
    @ivar raw: the whole part exactly as sent, headers, blank line and body,
        without the CRLF that belongs to the next delimiter: what a
        multipart/signed signature covers.
    @ivar parts: the sub-parts if this part is itself multipart, else empty.
    @ivar media_type: the parsed Content-Type (RFC 2046 defaults applied:
        text/plain; charset=us-ascii, or message/rfc822 inside a
        multipart/digest).
    @ivar preamble: and C{epilogue}: of a nested multipart, else empty.
    """

    headers: Tuple[Tuple[str, str], ...]
    body: bytes
    raw: bytes
    media_type: MediaType = _DEFAULT_TYPE
    parts: Tuple[Part, ...] = ()
    preamble: bytes = b""
    epilogue: bytes = b""

    def header(self, name: str) -> Optional[str]:
        """
        The first value of header C{name} (any case), or L{None}.
        """
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    @property
    def content_type(self) -> str:
        """
        The media type as a Content-Type value.
        """
        return str(self.media_type)

    @property
    def content_id(self) -> Optional[str]:
        """
        The Content-ID without its angle brackets, or L{None}.
        """
        value = self.header("content-id")
        if value is None:
            return None
        value = value.strip()
        if value.startswith("<") and value.endswith(">"):
            value = value[1:-1]
        return value.strip()

    @property
    def is_multipart(self) -> bool:
        """
        Whether this part holds sub-parts.
        """
        return self.media_type.type == "multipart"

    def decoded(self) -> bytes:
        """
        The body with its Content-Transfer-Encoding undone.

        @raise RemoteProtocolError: for an unknown encoding or bad base64.
        """
        encoding = (self.header("content-transfer-encoding") or "binary").strip().lower()
        if encoding in ("binary", "7bit", "8bit"):
            return self.body
        if encoding == "base64":
            try:
                return base64.b64decode(b"".join(self.body.split()), validate=True)
            except (binascii.Error, ValueError):
                raise _bad("part holds invalid base64") from None
        if encoding == "quoted-printable":
            return quopri.decodestring(self.body)
        raise RemoteProtocolError(
            f"Bad multipart body: unknown Content-Transfer-Encoding {encoding[:30]!r}"
        )


@dataclass(frozen=True)
class Multipart:
    """
    A parsed multipart body.

    @ivar media_type: the Content-Type it was parsed with.
    @ivar parts: its body parts, at least one.
    @ivar preamble: the bytes before the first delimiter.
    @ivar epilogue: the bytes after the close delimiter line.
    """

    media_type: MediaType
    parts: Tuple[Part, ...]
    preamble: bytes = b""
    epilogue: bytes = b""

    @property
    def boundary(self) -> str:
        """
        The boundary parameter.
        """
        return self.media_type.params["boundary"]

    def walk(self) -> List[Part]:
        """
        Every part, depth first, nested parts after their container.
        """
        out: List[Part] = []
        stack = list(reversed(self.parts))
        while stack:
            part = stack.pop()
            out.append(part)
            stack.extend(reversed(part.parts))
        return out


def _media(content_type: Union[str, MediaType], where: str = "") -> MediaType:
    media = parse_media_type(content_type) if isinstance(content_type, str) else content_type
    if media.type != "multipart":
        raise _bad(f"{where}{media.mime} is not a multipart type")
    boundary = media.params.get("boundary")
    if boundary is None:
        raise _bad(f"{where}{media.mime} without a boundary parameter")
    if not _BOUNDARY_RE.fullmatch(boundary):
        raise _bad(f"{where}boundary is not 1 to 70 allowed characters")
    return media


def _parse_headers(head: bytes, where: str) -> List[Tuple[str, str]]:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad(f"{where}: header holds bytes that are not UTF-8") from None
    headers: List[Tuple[str, str]] = []
    for line in re.split(r"\r?\n", text):
        if not line:
            continue
        if line[0] in " \t":
            if not headers:
                raise _bad(f"{where}: continuation line before any header")
            name, value = headers[-1]
            headers[-1] = (name, value + " " + line.strip(" \t"))
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if not colon or not name or not _HEADER_NAME_RE.fullmatch(name.encode("utf-8")):
            raise _bad(f"{where}: header line {line[:40]!r} is not 'name: value'")
        headers.append((name.lower(), value.strip(" \t")))
    return headers


def _split_part(raw: bytes, where: str) -> Tuple[List[Tuple[str, str]], bytes]:
    if raw.startswith(b"\r\n"):
        return [], raw[2:]
    if raw.startswith(b"\n"):
        return [], raw[1:]
    m = re.search(rb"\r?\n\r?\n", raw)
    if m is None:
        # RFC 2046: body-part := MIME-part-headers [CRLF *OCTET]
        return _parse_headers(raw, where), b""
    return _parse_headers(raw[: m.start()], where), raw[m.end() :]


class _Limits:
    def __init__(self, max_parts: int, max_depth: int) -> None:
        self.max_parts = max_parts
        self.max_depth = max_depth
        self.parts = 0


def _parse(
    body: bytes, media: MediaType, limits: _Limits, depth: int, where: str
) -> Tuple[Tuple[Part, ...], bytes, bytes]:
    if depth > limits.max_depth:
        raise _bad(f"{where}nested deeper than {limits.max_depth} levels")
    boundary = re.escape(media.params["boundary"].encode("ascii"))
    # A delimiter is CRLF "--" boundary, at the very start of the body
    # without the CRLF; transport padding may follow; its line must end.
    # Bare LF line ends are accepted only when CRLF ones do not work, so a
    # binary part holding LF "--boundary" is not cut where CRLF is used.
    matches: List[re.Match[bytes]] = []
    close: Optional[int] = None
    for newline in (rb"\r\n", rb"\r?\n"):
        delimiter = re.compile(
            rb"(?:\A|" + newline + rb")--" + boundary + rb"(--)?[ \t]*(?=" + newline + rb"|\Z)"
        )
        matches = list(delimiter.finditer(body))
        close = next((i for i, m in enumerate(matches) if m.group(1)), None)
        if close is not None:
            break
    if not matches:
        raise _bad(f"{where}no delimiter for boundary {media.params['boundary']!r}")
    if close is None:
        raise _bad(f"{where}missing close delimiter")
    if close == 0:
        raise _bad(f"{where}no body parts before the close delimiter")
    preamble = body[: matches[0].start()]
    end = matches[close].end()
    epilogue = body[end:]
    if epilogue.startswith(b"\r\n"):
        epilogue = epilogue[2:]
    elif epilogue.startswith(b"\n"):
        epilogue = epilogue[1:]
    digest = media.subtype == "digest"
    parts: List[Part] = []
    for i in range(close):
        start = matches[i].end()
        start += 2 if body.startswith(b"\r\n", start) else 1
        stop = matches[i + 1].start()
        raw = body[start:stop] if stop > start else b""
        limits.parts += 1
        if limits.parts > limits.max_parts:
            raise _bad(f"more than {limits.max_parts} parts")
        parts.append(_make_part(raw, digest, limits, depth, f"{where}part {i + 1}: "))
    return tuple(parts), preamble, epilogue


def _make_part(raw: bytes, digest: bool, limits: _Limits, depth: int, where: str) -> Part:
    headers, content = _split_part(raw, where.rstrip(": "))
    value = next((v for k, v in headers if k == "content-type"), None)
    if value is None:
        media = _DIGEST_TYPE if digest else _DEFAULT_TYPE
    else:
        try:
            media = parse_media_type(value)
        except RemoteProtocolError as e:
            raise _bad(f"{where}{e.reason}") from None
    if media.type != "multipart":
        return Part(tuple(headers), content, raw, media)
    media = _media(media, where)
    parts, preamble, epilogue = _parse(content, media, limits, depth + 1, where)
    return Part(tuple(headers), content, raw, media, parts, preamble, epilogue)


def parse_multipart(
    body: bytes,
    content_type: Union[str, MediaType],
    *,
    max_size: int = DEFAULT_MAX_SIZE,
    max_parts: int = DEFAULT_MAX_PARTS,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> Multipart:
    """
    Parse a multipart body given its Content-Type (value or parsed).

    Delimiters may end in CRLF or, leniently, bare LF; the CRLF before a
    delimiter belongs to it, not to the part.  Nested multiparts are parsed
    into L{Part.parts}.

    @param max_size: bodies larger than this are refused with 413.
    @param max_parts: the most parts in all, nested ones included.
    @param max_depth: the most levels of nesting below the top.
    @raise RemoteProtocolError: 400 naming the fault (no boundary, missing
        close delimiter, bad part header, too deep, too many parts).
    """
    if len(body) > max_size:
        raise RemoteProtocolError(f"Multipart body larger than {max_size} bytes", 413)
    media = _media(content_type)
    limits = _Limits(max_parts, max_depth)
    parts, preamble, epilogue = _parse(body, media, limits, 0, "")
    return Multipart(media, parts, preamble, epilogue)


def find_content_id(multipart: Multipart, content_id: str) -> Optional[Part]:
    """
    The part (at any depth) whose Content-ID is C{content_id} (without
    angle brackets), or L{None}.
    """
    for part in multipart.walk():
        if part.content_id == content_id:
            return part
    return None


# Building -------------------------------------------------------------------


@dataclass(frozen=True)
class BodyPart:
    """
    A part to send.

    @ivar content_type: its Content-Type value.
    @ivar body: its content (sent as binary).
    @ivar content_id: a Content-ID without angle brackets, or L{None}.
    @ivar disposition: a Content-Disposition value (C{render},
        C{session}, C{attachment; filename=x}, ...), or L{None}.
    @ivar headers: further (name, value) header fields.
    """

    content_type: str
    body: bytes
    content_id: Optional[str] = None
    disposition: Optional[str] = None
    headers: Tuple[Tuple[str, str], ...] = field(default=())


def serialize_part(part: Union[BodyPart, Part]) -> bytes:
    """
    The bytes of one part between delimiters: a parsed L{Part} is sent
    back exactly as it came (so signatures over it still hold).

    @raise LocalProtocolError: if a header value holds a line break.
    """
    if isinstance(part, Part):
        return part.raw
    lines = [("Content-Type", part.content_type)]
    if part.content_id is not None:
        lines.append(("Content-ID", f"<{part.content_id}>"))
    if part.disposition is not None:
        lines.append(("Content-Disposition", part.disposition))
    lines.extend(part.headers)
    out = []
    for name, value in lines:
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise LocalProtocolError(f"part header {name} holds a line break")
        out.append(f"{name}: {value}\r\n")
    return "".join(out).encode("utf-8") + b"\r\n" + part.body


def build_multipart(
    parts: Sequence[Union[BodyPart, Part]],
    subtype: str = "mixed",
    *,
    boundary: Optional[str] = None,
    params: Sequence[Tuple[str, str]] = (),
) -> Tuple[str, bytes]:
    """
    Build a multipart body.

    @param subtype: C{mixed}, C{alternative} (least preferred part first),
        C{related}, C{signed}...
    @param boundary: the boundary to use; by default a random one that
        occurs in no part.
    @param params: further Content-Type parameters (C{type}, C{protocol},
        C{micalg}...).
    @return: the Content-Type value and the body.
    @raise LocalProtocolError: if there are no parts, or the given boundary
        is invalid or occurs in a part.
    """
    if not parts:
        raise LocalProtocolError("a multipart body needs at least one part")
    chunks = [serialize_part(p) for p in parts]
    if boundary is None:
        boundary = secrets.token_hex(12)
        while any(boundary.encode("ascii") in c for c in chunks):
            boundary = secrets.token_hex(12)
    else:
        if not _BOUNDARY_RE.fullmatch(boundary):
            raise LocalProtocolError("boundary is not 1 to 70 allowed characters")
        if any(b"--" + boundary.encode("ascii") in c for c in chunks):
            raise LocalProtocolError("boundary occurs inside a part")
    mark = b"--" + boundary.encode("ascii")
    body = b"".join(mark + b"\r\n" + c + b"\r\n" for c in chunks) + mark + b"--\r\n"
    media = MediaType("multipart", subtype.lower(), {"boundary": boundary, **dict(params)})
    return str(media), body


@dataclass(frozen=True)
class Envelope:
    """
    A multipart body built once around a part whose content changes from
    message to message while its headers and the other parts stay: a
    join's 200 is the participant's SDP answer beside the conference's
    calendar part, which is the same for every join of a conference
    version.  L{fill} then costs a search and a join of bytes.

    @ivar content_type: the multipart Content-Type value (with the boundary).
    @ivar delimiter: C{--} and the boundary, which the filled content must not hold.
    @ivar head: the bytes before the varying content; C{tail} those after it.
    """

    content_type: str
    delimiter: bytes
    head: bytes
    tail: bytes

    def fill(self, content: bytes) -> Optional[Tuple[str, bytes]]:
        """
        The Content-Type value and body with C{content} in its place;
        L{None} when C{content} holds the delimiter (then build the body
        anew with L{build_multipart}, which picks another boundary).
        """
        if self.delimiter in content:
            return None
        return self.content_type, self.head + content + self.tail


def envelope(
    varying: BodyPart, others: Sequence[Union[BodyPart, Part]], subtype: str = "mixed"
) -> Envelope:
    """
    The L{Envelope} of a multipart body whose first part is C{varying}
    (its headers; its body is ignored) and whose further parts are
    C{others}, as L{build_multipart} would write it.

    @raise LocalProtocolError: as L{build_multipart}.
    """
    marker = secrets.token_hex(16).encode("ascii")
    first = BodyPart(
        varying.content_type, marker, varying.content_id, varying.disposition, varying.headers
    )
    content_type, body = build_multipart([first, *others], subtype)
    head, tail = body.split(marker, 1)
    boundary = parse_media_type(content_type).params["boundary"]
    return Envelope(content_type, b"--" + boundary.encode("ascii"), head, tail)
