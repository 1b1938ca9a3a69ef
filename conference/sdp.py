# -*- test-case-name: tests.unit.test_sdp -*-
"""
Parse and serialize SDP session descriptions (RFC 8866, formerly RFC 4566).

The focus reads offers from strangers, so this is sans-I/O, capped in size
and strict about the grammar (a malformed description becomes a 400 naming
the line at fault) while lenient about what it need not understand
(unknown attributes are kept, in order, so a description round-trips).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from conference.sip.errors import RemoteProtocolError

MAX_SDP_SIZE = 65536
MAX_LINES = 2048
MAX_MEDIA = 32

_TOKEN_RE = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+")
_INT_RE = re.compile(r"[0-9]+")
_PORT_RE = re.compile(r"([0-9]{1,5})(?:/([0-9]{1,5}))?")
_BANDWIDTH_RE = re.compile(r"([!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+):([0-9]{1,18})")
_FORBIDDEN_RE = re.compile("[\x00\r]")
_FMT_RE = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+")
_RTP_FMT_RE = re.compile(r"[0-9]{1,3}")

# Type letters that may appear once per section.
_SESSION_ONCE = "osiucz"
_MEDIA_ONCE = "ik"
# Lines made of fields, not free text.
_STRUCTURED = "ocbtm"


class SDPError(RemoteProtocolError):
    """
    A session description that breaks the grammar; answered with 400 and a
    reason naming the line at fault.
    """

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(f"Bad SDP: {reason}", status)


@dataclass
class Origin:
    """The C{o=} line: who made the session and which version this is."""

    username: str = "-"
    session_id: str = "0"
    session_version: int = 0
    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "127.0.0.1"


@dataclass
class Connection:
    """A C{c=} line; C{address} keeps any C{/ttl/count} suffix as sent."""

    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "127.0.0.1"


@dataclass
class Bandwidth:
    """A C{b=} line, for example C{AS:64}."""

    bwtype: str
    value: int


@dataclass
class Timing:
    """A C{t=} line with the C{r=} lines (kept as text) that follow it."""

    start: int = 0
    stop: int = 0
    repeats: List[str] = field(default_factory=list)


@dataclass
class Attribute:
    """An C{a=} line: a property (C{value} L{None}) or C{name:value}."""

    name: str
    value: Optional[str] = None

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"


class _HasAttributes:
    """Look-ups over a section's C{a=} lines, which keep their order."""

    attributes: List[Attribute]

    def get_all(self, name: str) -> List[Optional[str]]:
        """The values of every attribute called C{name} (case-sensitive), in order."""
        return [a.value for a in self.attributes if a.name == name]

    def get(self, name: str) -> Optional[str]:
        """The value of the first attribute called C{name}, or L{None}."""
        for a in self.attributes:
            if a.name == name:
                return a.value
        return None

    def has(self, name: str) -> bool:
        """Whether an attribute called C{name} is present."""
        return any(a.name == name for a in self.attributes)


@dataclass
class Media(_HasAttributes):
    """One media description: the C{m=} line and the lines under it."""

    media: str = "audio"
    port: int = 0
    proto: str = "RTP/AVP"
    formats: List[str] = field(default_factory=list)
    port_count: Optional[int] = None
    information: Optional[str] = None
    connections: List[Connection] = field(default_factory=list)
    bandwidths: List[Bandwidth] = field(default_factory=list)
    key: Optional[str] = None
    attributes: List[Attribute] = field(default_factory=list)


@dataclass
class SessionDescription(_HasAttributes):
    """A whole session description (RFC 8866 section 5)."""

    origin: Origin = field(default_factory=Origin)
    name: str = "-"
    information: Optional[str] = None
    uri: Optional[str] = None
    emails: List[str] = field(default_factory=list)
    phones: List[str] = field(default_factory=list)
    connection: Optional[Connection] = None
    bandwidths: List[Bandwidth] = field(default_factory=list)
    timings: List[Timing] = field(default_factory=lambda: [Timing()])
    zone: Optional[str] = None
    key: Optional[str] = None
    attributes: List[Attribute] = field(default_factory=list)
    media: List[Media] = field(default_factory=list)

    def connection_for(self, media: Media) -> Optional[Connection]:
        """The connection that applies to C{media}: its first own, else the session's."""
        return media.connections[0] if media.connections else self.connection

    def to_bytes(self) -> bytes:
        """Serialize; see L{serialize_sdp}."""
        return serialize_sdp(self)


def _fields(value: str, count: int, what: str, lineno: int) -> List[str]:
    parts = value.split(" ")
    if len(parts) != count or not all(parts):
        raise SDPError(f"line {lineno}: {what} needs {count} fields separated by single spaces")
    return parts


def _token(value: str, what: str, lineno: int) -> str:
    if not _TOKEN_RE.fullmatch(value):
        raise SDPError(f"line {lineno}: {what} {value[:40]!r} is not a token")
    return value


def _integer(value: str, what: str, lineno: int) -> int:
    if not _INT_RE.fullmatch(value) or len(value) > 20:
        raise SDPError(f"line {lineno}: {what} {value[:40]!r} is not a number")
    return int(value)


def _parse_origin(value: str, lineno: int) -> Origin:
    user, sid, version, nettype, addrtype, address = _fields(value, 6, "o=", lineno)
    if not _INT_RE.fullmatch(sid):
        raise SDPError(f"line {lineno}: o= session id {sid[:40]!r} is not a number")
    return Origin(
        user,
        sid,
        _integer(version, "o= session version", lineno),
        _token(nettype, "o= nettype", lineno),
        _token(addrtype, "o= addrtype", lineno),
        address,
    )


def _parse_connection(value: str, lineno: int) -> Connection:
    nettype, addrtype, address = _fields(value, 3, "c=", lineno)
    return Connection(
        _token(nettype, "c= nettype", lineno), _token(addrtype, "c= addrtype", lineno), address
    )


def _parse_bandwidth(value: str, lineno: int) -> Bandwidth:
    match = _BANDWIDTH_RE.fullmatch(value)
    if match is None:
        raise SDPError(f"line {lineno}: b= must be <bwtype>:<bandwidth>")
    return Bandwidth(match.group(1), int(match.group(2)))


def _parse_timing(value: str, lineno: int) -> Timing:
    start, stop = _fields(value, 2, "t=", lineno)
    return Timing(_integer(start, "t= start", lineno), _integer(stop, "t= stop", lineno))


def _parse_attribute(value: str, lineno: int) -> Attribute:
    name, colon, rest = value.partition(":")
    if not _TOKEN_RE.fullmatch(name):
        raise SDPError(f"line {lineno}: attribute name {name[:40]!r} is not a token")
    return Attribute(name, rest if colon else None)


def _parse_media(value: str, lineno: int) -> Media:
    parts = value.split(" ")
    if len(parts) < 3 or not all(parts):
        raise SDPError(f"line {lineno}: m= needs <media> <port> <proto> <fmt>...")
    media = _token(parts[0], "m= media", lineno)
    port_match = _PORT_RE.fullmatch(parts[1])
    if port_match is None:
        raise SDPError(f"line {lineno}: m= port {parts[1][:40]!r} is not a port")
    port = int(port_match.group(1))
    count = int(port_match.group(2)) if port_match.group(2) is not None else None
    if port > 65535 or (count is not None and count == 0):
        raise SDPError(f"line {lineno}: m= port {parts[1]!r} is out of range")
    proto = parts[2]
    if not all(_TOKEN_RE.fullmatch(p) for p in proto.split("/")):
        raise SDPError(f"line {lineno}: m= proto {proto[:40]!r} is not a token")
    formats = parts[3:]
    if not formats and port != 0:
        raise SDPError(f"line {lineno}: m= lists no formats")
    rtp = proto.upper().startswith("RTP/") or "/RTP/" in proto.upper()
    for fmt in formats:
        if rtp and not (_RTP_FMT_RE.fullmatch(fmt) and int(fmt) <= 127):
            raise SDPError(f"line {lineno}: RTP payload type {fmt[:40]!r} is not 0-127")
        if not _FMT_RE.fullmatch(fmt):
            raise SDPError(f"line {lineno}: m= format {fmt[:40]!r} is not a token")
    return Media(media, port, proto, formats, port_count=count)


def _split_lines(data: bytes, max_size: int, max_lines: int) -> List[str]:
    if len(data) > max_size:
        raise SDPError(f"description is longer than {max_size} bytes")
    if not data.strip():
        raise SDPError("description is empty")
    text = data.decode("utf-8", "surrogateescape")
    lines = text.split("\n")
    # Lines end with CRLF, but RFC 8866 section 5 asks parsers to take LF.
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    while lines and not lines[-1]:
        lines.pop()
    if len(lines) > max_lines:
        raise SDPError(f"description has more than {max_lines} lines")
    return lines


def parse_sdp(
    data: bytes,
    *,
    max_size: int = MAX_SDP_SIZE,
    max_lines: int = MAX_LINES,
    max_media: int = MAX_MEDIA,
) -> SessionDescription:
    """
    Parse a session description.

    Lines may end in CRLF or LF.  Known lines may come in any order within
    their section (serializing puts them in the order of RFC 8866); the
    C{a=} lines keep theirs.  Text fields are read as UTF-8, with bytes that
    are not kept as they are, so any description round-trips.

    @raise SDPError: (a L{RemoteProtocolError}, status 400) naming the
        first fault: size or line caps, a line that is not C{x=value}, an
        unknown type letter (RFC 8866 section 5 lets parsers refuse those),
        a repeated or missing required line, or a malformed field.
    """
    lines = _split_lines(data, max_size, max_lines)
    if lines[0].rstrip(" \t") != "v=0":
        raise SDPError("the first line must be v=0")
    sdp = SessionDescription(timings=[])
    seen_session: set[str] = set()
    seen_media: set[str] = set()
    current: Optional[Media] = None
    for lineno, line in enumerate(lines[1:], start=2):
        if len(line) < 2 or line[1] != "=" or not ("a" <= line[0] <= "z"):
            raise SDPError(f"line {lineno} is not <type>=<value>")
        kind, value = line[0], line[2:]
        if _FORBIDDEN_RE.search(value):
            raise SDPError(f"line {lineno} holds a NUL or bare CR")
        if kind in _STRUCTURED:
            # Trailing blanks on structured lines are a common wart; take them.
            value = value.rstrip(" \t")
        if kind == "m":
            if len(sdp.media) >= max_media:
                raise SDPError(f"description has more than {max_media} media")
            current = _parse_media(value, lineno)
            sdp.media.append(current)
            seen_media = set()
            continue
        if current is None:
            if kind in _SESSION_ONCE:
                if kind in seen_session:
                    raise SDPError(f"line {lineno}: more than one {kind}= line in the session")
                seen_session.add(kind)
            _session_line(sdp, kind, value, lineno)
        else:
            if kind in _MEDIA_ONCE:
                if kind in seen_media:
                    raise SDPError(f"line {lineno}: more than one {kind}= line in a media section")
                seen_media.add(kind)
            _media_line(current, kind, value, lineno)
    for kind, what in (("o", "o= (origin)"), ("s", "s= (session name)")):
        if kind not in seen_session:
            raise SDPError(f"no {what} line")
    if not sdp.timings:
        raise SDPError("no t= (timing) line")
    if sdp.connection is None:
        for index, media in enumerate(sdp.media):
            if not media.connections and media.port != 0:
                raise SDPError(f"media {index + 1} has no c= line and the session has none")
    return sdp


def _session_line(sdp: SessionDescription, kind: str, value: str, lineno: int) -> None:
    if kind == "o":
        sdp.origin = _parse_origin(value, lineno)
    elif kind == "s":
        sdp.name = value
    elif kind == "i":
        sdp.information = value
    elif kind == "u":
        sdp.uri = value
    elif kind == "e":
        sdp.emails.append(value)
    elif kind == "p":
        sdp.phones.append(value)
    elif kind == "c":
        sdp.connection = _parse_connection(value, lineno)
    elif kind == "b":
        sdp.bandwidths.append(_parse_bandwidth(value, lineno))
    elif kind == "t":
        sdp.timings.append(_parse_timing(value, lineno))
    elif kind == "r":
        if not sdp.timings:
            raise SDPError(f"line {lineno}: r= before any t= line")
        sdp.timings[-1].repeats.append(value)
    elif kind == "z":
        sdp.zone = value
    elif kind == "k":
        sdp.key = value
    elif kind == "a":
        sdp.attributes.append(_parse_attribute(value, lineno))
    elif kind == "v":
        raise SDPError(f"line {lineno}: v= may only be the first line")
    else:
        raise SDPError(f"line {lineno}: unknown line type {kind}= in the session section")


def _media_line(media: Media, kind: str, value: str, lineno: int) -> None:
    if kind == "i":
        media.information = value
    elif kind == "c":
        media.connections.append(_parse_connection(value, lineno))
    elif kind == "b":
        media.bandwidths.append(_parse_bandwidth(value, lineno))
    elif kind == "k":
        media.key = value
    elif kind == "a":
        media.attributes.append(_parse_attribute(value, lineno))
    else:
        raise SDPError(f"line {lineno}: {kind}= line is not allowed in a media section")


def _connection(c: Connection) -> str:
    return f"c={c.nettype} {c.addrtype} {c.address}"


def serialize_sdp(sdp: SessionDescription) -> bytes:
    """
    Serialize C{sdp} with CRLF line ends, in the line order of RFC 8866
    section 5 (C{v o s i u e p c b t r z k a}, then each C{m i c b k a}).
    """
    o = sdp.origin
    out = [
        "v=0",
        f"o={o.username} {o.session_id} {o.session_version} {o.nettype} {o.addrtype} {o.address}",
        f"s={sdp.name}",
    ]
    if sdp.information is not None:
        out.append(f"i={sdp.information}")
    if sdp.uri is not None:
        out.append(f"u={sdp.uri}")
    out.extend(f"e={e}" for e in sdp.emails)
    out.extend(f"p={p}" for p in sdp.phones)
    if sdp.connection is not None:
        out.append(_connection(sdp.connection))
    out.extend(f"b={b.bwtype}:{b.value}" for b in sdp.bandwidths)
    for t in sdp.timings:
        out.append(f"t={t.start} {t.stop}")
        out.extend(f"r={r}" for r in t.repeats)
    if sdp.zone is not None:
        out.append(f"z={sdp.zone}")
    if sdp.key is not None:
        out.append(f"k={sdp.key}")
    out.extend(f"a={a}" for a in sdp.attributes)
    for m in sdp.media:
        port = str(m.port) if m.port_count is None else f"{m.port}/{m.port_count}"
        out.append(" ".join([f"m={m.media}", port, m.proto, *m.formats]))
        if m.information is not None:
            out.append(f"i={m.information}")
        out.extend(_connection(c) for c in m.connections)
        out.extend(f"b={b.bwtype}:{b.value}" for b in m.bandwidths)
        if m.key is not None:
            out.append(f"k={m.key}")
        out.extend(f"a={a}" for a in m.attributes)
    out.append("")
    return "\r\n".join(out).encode("utf-8", "surrogateescape")


def addrtype_of(address: str) -> str:
    """C{IP6} for an IPv6 literal, else C{IP4} (names are taken as IPv4, RFC 8866 5.7)."""
    return "IP6" if ":" in address else "IP4"


def rtpmap_of(media: Media, payload_type: str) -> Optional[Tuple[str, int, int]]:
    """
    The C{a=rtpmap} of C{payload_type} as (encoding name, clock rate,
    channels), or L{None} if absent or malformed (unknown values are not
    our business, RFC 8866 section 6.6).
    """
    prefix = payload_type + " "
    for value in media.get_all("rtpmap"):
        if value is None or not value.startswith(prefix):
            continue
        parts = value[len(prefix) :].strip().split("/")
        if len(parts) not in (2, 3) or not parts[0]:
            return None
        if not all(_INT_RE.fullmatch(p) and len(p) < 10 for p in parts[1:]):
            return None
        channels = int(parts[2]) if len(parts) == 3 else 1
        return parts[0], int(parts[1]), channels
    return None


def fmtp_of(media: Media, payload_type: str) -> Optional[str]:
    """The parameters of the C{a=fmtp} line of C{payload_type}, or L{None}."""
    prefix = payload_type + " "
    for value in media.get_all("fmtp"):
        if value is not None and value.startswith(prefix):
            return value[len(prefix) :].strip()
    return None


DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


def direction_of(sdp: SessionDescription, media: Media) -> str:
    """
    The direction of C{media}: its own direction attribute, else the
    session's, else C{sendrecv} (RFC 8866 section 6.7).
    """
    for section in (media, sdp):
        for a in section.attributes:
            if a.name in DIRECTIONS and a.value is None:
                return a.name
    return "sendrecv"


# SDES (RFC 4568): the a=crypto attribute ------------------------------------

#: The SRTP crypto suites of RFC 4568 section 6.2 we can key, with the
#: length in bytes of their master key and master salt (sent together).
SRTP_SUITES = {
    "AES_CM_128_HMAC_SHA1_80": (16, 14),
    "AES_CM_128_HMAC_SHA1_32": (16, 14),
}
#: SRTP's own limit on the packets one master key may protect.
MAX_KEY_LIFETIME = 2**48
#: Session parameters we can honour: a key derivation rate of 0 (the
#: default) and a window size hint (a hint: libsrtp keeps its window).
_KNOWN_PARAM_RE = re.compile(r"KDR=0|WSH=[0-9]{1,10}")
_CRYPTO_RE = re.compile(r"([0-9]{1,9}) ([A-Za-z0-9_]+) (\S+)((?: \S+)*)")
_LIFETIME_RE = re.compile(r"(?:2\^([0-9]{1,2})|([0-9]{1,15}))")
_MKI_RE = re.compile(r"([0-9]{1,10}):([0-9]{1,3})")


class CryptoError(ValueError):
    """An C{a=crypto} line we cannot use; the message says why (no quotes)."""


@dataclass(frozen=True)
class Crypto:
    """
    One usable C{a=crypto} line (RFC 4568 section 9.1) with a single
    inline key: C{key} is the master key followed by the master salt.
    """

    tag: int
    suite: str
    key: bytes
    lifetime: Optional[int] = None
    params: Tuple[str, ...] = ()

    def __str__(self) -> str:
        inline = "inline:" + base64.b64encode(self.key).decode("ascii")
        return " ".join([str(self.tag), self.suite, inline, *self.params])

    def attribute(self) -> Attribute:
        """This line as an C{a=crypto} attribute."""
        return Attribute("crypto", str(self))


def _key_param(text: str, suite: str) -> Tuple[bytes, Optional[int]]:
    method, colon, info = text.partition(":")
    if not colon or method.lower() != "inline":
        raise CryptoError(f"key method {method[:20]} is not inline")
    parts = info.split("|")
    if len(parts) > 3:
        raise CryptoError("too many fields in the inline key")
    try:
        key = base64.b64decode(parts[0], validate=True)
    except (binascii.Error, ValueError):
        raise CryptoError("the inline key is not base64") from None
    lengths = SRTP_SUITES[suite]
    if len(key) != sum(lengths):
        raise CryptoError(f"the key is {len(key)} bytes where {suite} needs {sum(lengths)}")
    lifetime: Optional[int] = None
    for extra in parts[1:]:
        mki = _MKI_RE.fullmatch(extra)
        if mki is not None:
            if not 1 <= int(mki.group(2)) <= 128:
                raise CryptoError("MKI length out of range")
            raise CryptoError("MKI is not supported")
        match = _LIFETIME_RE.fullmatch(extra)
        if match is None or lifetime is not None:
            raise CryptoError("malformed key lifetime or MKI")
        exponent, number = match.groups()
        lifetime = 2 ** int(exponent) if exponent is not None else int(number)
        if not 0 < lifetime <= MAX_KEY_LIFETIME:
            raise CryptoError("key lifetime out of range")
    return key, lifetime


def parse_crypto(value: Optional[str]) -> Crypto:
    """
    Parse the value of an C{a=crypto} attribute for SRTP.

    Only what we can honour parses: a suite of L{SRTP_SUITES}, exactly one
    C{inline} key of the suite's length (a key lifetime is read and kept;
    we do not rekey, as SIP peers expect), no MKI (libsrtp's binding has
    none), and session parameters we understand; an unknown one makes the
    line unusable unless it starts with C{-} (RFC 4568 section 6.3).

    @raise CryptoError: why the line is unusable.
    """
    match = _CRYPTO_RE.fullmatch((value or "").strip())
    if match is None:
        raise CryptoError("malformed crypto attribute")
    tag, suite, keys, rest = match.groups()
    if suite not in SRTP_SUITES:
        raise CryptoError(f"crypto suite {suite[:40]} is not supported")
    if ";" in keys:
        raise CryptoError("more than one key is not supported")
    key, lifetime = _key_param(keys, suite)
    params = tuple(rest.split())
    for param in params:
        if not (param.startswith("-") or _KNOWN_PARAM_RE.fullmatch(param)):
            raise CryptoError(f"session parameter {param[:20]} is not supported")
    return Crypto(int(tag), suite, key, lifetime, params)


def cryptos_of(media: Media) -> Tuple[List[Crypto], Optional[str]]:
    """
    The usable C{a=crypto} lines of C{media}, in order, and why the first
    unusable one was not (L{None} if every line was usable).
    """
    usable: List[Crypto] = []
    reason: Optional[str] = None
    tags = set()
    for value in media.get_all("crypto"):
        try:
            crypto = parse_crypto(value)
        except CryptoError as e:
            reason = reason or str(e)
            continue
        if crypto.tag in tags:
            reason = reason or f"crypto tag {crypto.tag} is repeated"
            continue
        tags.add(crypto.tag)
        usable.append(crypto)
    return usable, reason
