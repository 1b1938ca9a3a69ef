# -*- test-case-name: tests.unit.sip.test_uri -*-
"""
SIP and non-SIP URIs as they appear on the Request-Line and in headers.

L{twisted.protocols.sip.URL} knows only C{sip:}, keeps escapes raw, cannot
hold IPv6 references and compares by identity.  L{SIPURI} has its
attributes (so Twisted-style code still works) and adds the RFC 3261
section 19.1 syntax, %-escape handling and section 19.1.4 comparison; every
other scheme becomes an L{AbsoluteURI} kept as text.  It does not subclass
Twisted's class: importing C{twisted.protocols.sip} installs the default
reactor, which the sans-I/O core must never do.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import Dict, List, Optional, Tuple, Union
from urllib.parse import quote, unquote

from conference.sip.errors import RemoteProtocolError

__all__ = ["URI", "AbsoluteURI", "SIPURI", "parse_uri", "unescape"]

_HEX = "%[0-9A-Fa-f]{2}"
_UNRESERVED = r"A-Za-z0-9\-_.!~*'()"
# RFC 3261 section 25.1: user, password, paramchar, hname and hvalue.
_USER_RE = re.compile(rf"(?:[{_UNRESERVED}&=+$,;?/]|{_HEX})+")
_PASSWORD_RE = re.compile(rf"(?:[{_UNRESERVED}&=+$,]|{_HEX})*")
_PARAMCHARS_RE = re.compile(rf"(?:[{_UNRESERVED}\[\]/:&+$]|{_HEX})+")
_HNAME_RE = re.compile(rf"(?:[{_UNRESERVED}\[\]/?:+$]|{_HEX})+")
_HVALUE_RE = re.compile(rf"(?:[{_UNRESERVED}\[\]/?:+$]|{_HEX})*")
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-]*")
# Four dot-separated groups of one to three digits (with the trailing dot a
# fully qualified name may have); each is range-checked after a match.
_IPV4_RE = re.compile(r"([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.?")
_PORT_RE = re.compile(r"[0-9]{1,5}")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
# RFC 3986 characters (reserved, unreserved, escapes) for other schemes.
_ABSOLUTE_REST_RE = re.compile(rf"(?:[{_UNRESERVED};/?:@&=+$,\[\]#]|{_HEX})+")
_BAD_ESCAPE_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")

# Characters left unescaped when serializing each component.
_USER_SAFE = "-_.!~*'()&=+$,;?/"
_PASSWORD_SAFE = "-_.!~*'()&=+$,"
_PARAM_SAFE = "-_.!~*'()[]/:&+$"
_HEADER_SAFE = "-_.!~*'()[]/?:+$"

# URI parameters with a twisted.protocols.sip.URL attribute, and the
# parameters section 19.1.4 says must match whenever either URI has them.
_ATTRIBUTE_PARAMS = {
    "transport": "transport",
    "user": "usertype",
    "method": "method",
    "ttl": "ttl",
    "maddr": "maddr",
    "tag": "tag",
}
_MUST_MATCH = ("user", "ttl", "method", "maddr", "transport")


def unescape(text: str) -> str:
    """
    Decode %-escapes (as UTF-8; bytes that are not UTF-8 stay distinct as
    surrogate escapes).
    """
    if "%" not in text:
        return text
    return unquote(text, encoding="utf-8", errors="surrogateescape")


# For each set of characters left unescaped: a pattern matching text that
# needs no escaping at all (what quote() never escapes, plus the set), so
# the common plain user names and parameters skip quote() altogether.
_PLAIN_RES: Dict[str, re.Pattern[str]] = {}


def _escape(text: str, safe: str) -> str:
    plain = _PLAIN_RES.get(safe)
    if plain is None:
        plain = _PLAIN_RES[safe] = re.compile(f"[A-Za-z0-9_.\\-~{re.escape(safe)}]*")
    if plain.fullmatch(text):
        return text
    return quote(text, safe=safe, encoding="utf-8", errors="surrogateescape")


def _fail(text: str, why: str) -> RemoteProtocolError:
    shown = text if len(text) <= 60 else text[:57] + "..."
    return RemoteProtocolError(f"Bad URI {shown!r}: {why}")


# Hosts found valid, so that the sent-by of every Via (the same few peers
# in message after message) is checked once.  Bounded: past the bound,
# hosts are checked every time.
_VALID_HOSTS: Dict[str, None] = {}
_MAX_VALID_HOSTS = 4096


def parse_host(text: str, uri: str = "") -> str:
    """
    Validate a host (hostname, IPv4 address or bracketed IPv6 reference) and
    return it as written.

    @raise RemoteProtocolError: if it is none of those.
    """
    if text in _VALID_HOSTS:
        return text
    _check_host(text, uri)
    if len(_VALID_HOSTS) < _MAX_VALID_HOSTS:
        _VALID_HOSTS[text] = None
    return text


def _check_host(text: str, uri: str) -> None:
    if text.startswith("["):
        if not text.endswith("]"):
            raise _fail(uri or text, "unterminated IPv6 reference")
        try:
            ipaddress.IPv6Address(text[1:-1])
        except ValueError:
            raise _fail(uri or text, "bad IPv6 reference") from None
        return
    if not _HOSTNAME_RE.fullmatch(text):
        raise _fail(uri or text, "bad host")
    # A host whose last label starts with a digit must be an IPv4 address
    # (top labels of host names start with a letter, RFC 3261 section 25.1).
    # One precompiled match replaces splitting and converting every label:
    # this check runs for every URI and Via of every message.
    last = (text[:-1] if text.endswith(".") else text).rpartition(".")[2]
    if last[:1].isdigit():
        m = _IPV4_RE.fullmatch(text)
        if m is None or max(map(int, m.groups())) > 255:
            raise _fail(uri or text, "bad IPv4 address")
        return
    labels = text[:-1].split(".") if text.endswith(".") else text.split(".")
    for label in labels:
        if not label or label[0] == "-" or label[-1] == "-":
            raise _fail(uri or text, "bad host name")


def _split_hostport(text: str, uri: str) -> Tuple[str, Optional[int]]:
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise _fail(uri, "unterminated IPv6 reference")
        host, rest = text[: end + 1], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise _fail(uri, "junk after IPv6 reference")
        port_text: Optional[str] = rest[1:] if rest else None
    else:
        host, sep, after = text.partition(":")
        port_text = after if sep else None
    parse_host(host, uri)
    if port_text is None:
        return host, None
    if not _PORT_RE.fullmatch(port_text) or int(port_text) > 65535:
        raise _fail(uri, "bad port")
    return host, int(port_text)


class AbsoluteURI:
    """
    A URI of a scheme other than sip/sips (tel:, http:, urn:, unknown ones),
    kept as text; RFC 3986 syntax is checked loosely.

    @ivar scheme: the scheme, lower-cased.
    @ivar raw: the whole URI as written.
    """

    __slots__ = ("raw", "scheme")

    def __init__(self, raw: str) -> None:
        scheme, sep, rest = raw.partition(":")
        if not sep or not _SCHEME_RE.fullmatch(scheme):
            raise _fail(raw, "no scheme")
        if _BAD_ESCAPE_RE.search(rest):
            raise _fail(raw, "bad %-escape")
        if not _ABSOLUTE_REST_RE.fullmatch(rest):
            raise _fail(raw, "characters not allowed in a URI")
        self.scheme = scheme.lower()
        self.raw = raw

    @classmethod
    def unchecked(cls, raw: str) -> AbsoluteURI:
        """
        Wrap text without checking it (used for the Request-URI of a message
        that is being refused, so the refusal can still be built).
        """
        self = cls.__new__(cls)
        self.scheme = raw.partition(":")[0].lower() if ":" in raw else ""
        self.raw = raw
        return self

    @property
    def opaque(self) -> str:
        """
        Everything after the first colon.
        """
        return self.raw.partition(":")[2]

    def _key(self) -> Tuple[str, str]:
        rest = self.opaque
        if "%" in rest:
            rest = re.sub(_HEX, lambda m: m.group(0).upper(), rest)
        return self.scheme, rest

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AbsoluteURI):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def toString(self) -> str:
        """
        The wire form.
        """
        return self.raw

    def __str__(self) -> str:
        return self.raw

    def __repr__(self) -> str:
        return f"AbsoluteURI({self.raw!r})"


class SIPURI:
    """
    A C{sip:} or C{sips:} URI (RFC 3261 section 19.1).

    User, password, parameter and header names and values are stored
    unescaped and escaped again by L{toString}.  C{host} is kept as written
    (an IPv6 reference keeps its brackets); C{port} is L{None} when absent.
    The Twisted attributes C{transport}, C{usertype}, C{method}, C{ttl},
    C{maddr}, C{tag} and C{other} are views of L{params}.

    @ivar scheme: C{"sip"} or C{"sips"}.
    @ivar params: URI parameters in order, names lower-cased, value L{None}
        for a parameter without one.
    @ivar headers: URI headers (C{?name=value}), names as written.
    """

    scheme: str
    host: str
    username: Optional[str]
    password: Optional[str]
    port: Optional[int]

    def __init__(
        self,
        host: str,
        username: Optional[str] = None,
        password: Optional[str] = None,
        port: Optional[int] = None,
        *,
        scheme: str = "sip",
        params: Optional[Dict[str, Optional[str]]] = None,
        headers: Optional[Dict[str, str]] = None,
    ) -> None:
        self.scheme = scheme
        self.host = host
        self.username = username
        self.password = password
        self.port = port
        self.params: Dict[str, Optional[str]] = dict(params) if params else {}
        self.headers: Dict[str, str] = dict(headers) if headers else {}

    # Twisted's attributes as views of params ---------------------------

    def _get(self, name: str) -> Optional[str]:
        return self.params.get(name)

    def _set(self, name: str, value: Optional[object]) -> None:
        if value is None:
            self.params.pop(name, None)
        else:
            self.params[name] = str(value)

    @property
    def transport(self) -> Optional[str]:
        """
        The C{transport} parameter.
        """
        return self._get("transport")

    @transport.setter
    def transport(self, value: Optional[str]) -> None:
        self._set("transport", value)

    @property
    def usertype(self) -> Optional[str]:
        """
        The C{user} parameter (C{phone}, C{ip}, ...).
        """
        return self._get("user")

    @usertype.setter
    def usertype(self, value: Optional[str]) -> None:
        self._set("user", value)

    @property
    def method(self) -> Optional[str]:
        """
        The C{method} parameter.
        """
        return self._get("method")

    @method.setter
    def method(self, value: Optional[str]) -> None:
        self._set("method", value)

    @property
    def ttl(self) -> Optional[int]:
        """
        The C{ttl} parameter as an integer (L{None} if absent or not one).
        """
        value = self._get("ttl")
        return int(value) if value is not None and value.isdigit() else None

    @ttl.setter
    def ttl(self, value: Optional[int]) -> None:
        self._set("ttl", value)

    @property
    def maddr(self) -> Optional[str]:
        """
        The C{maddr} parameter.
        """
        return self._get("maddr")

    @maddr.setter
    def maddr(self, value: Optional[str]) -> None:
        self._set("maddr", value)

    @property
    def tag(self) -> Optional[str]:
        """
        A C{tag} URI parameter (Twisted kept one; RFC 3261 puts tags in the
        header parameters instead).
        """
        return self._get("tag")

    @tag.setter
    def tag(self, value: Optional[str]) -> None:
        self._set("tag", value)

    @property
    def other(self) -> List[str]:
        """
        The other parameters as Twisted kept them: C{"name=value"} or
        C{"name"}.
        """
        return [
            k if v is None else f"{k}={v}"
            for k, v in self.params.items()
            if k not in _ATTRIBUTE_PARAMS
        ]

    @other.setter
    def other(self, values: List[str]) -> None:
        for key in [k for k in self.params if k not in _ATTRIBUTE_PARAMS]:
            del self.params[key]
        for item in values:
            name, sep, value = item.partition("=")
            self.params[name.lower()] = value if sep else None

    # Derived views -----------------------------------------------------

    @property
    def secure(self) -> bool:
        """
        Whether this is a C{sips:} URI.
        """
        return self.scheme == "sips"

    @property
    def host_address(self) -> str:
        """
        The host without IPv6 brackets, as sockets want it.
        """
        return self.host[1:-1] if self.host.startswith("[") else self.host

    def copy(self) -> SIPURI:
        """
        Return an independent copy.
        """
        return SIPURI(
            self.host,
            self.username,
            self.password,
            self.port,
            scheme=self.scheme,
            params=self.params,
            headers=self.headers,
        )

    # Serialization and comparison --------------------------------------

    def toString(self) -> str:
        """
        The wire form, with characters escaped where the grammar needs it.
        """
        out = [self.scheme, ":"]
        if self.username is not None:
            out.append(_escape(self.username, _USER_SAFE))
            if self.password is not None:
                out.append(":" + _escape(self.password, _PASSWORD_SAFE))
            out.append("@")
        out.append(self.host)
        if self.port is not None:
            out.append(f":{self.port}")
        for name, value in self.params.items():
            out.append(";" + _escape(name, _PARAM_SAFE))
            if value is not None:
                out.append("=" + _escape(value, _PARAM_SAFE))
        if self.headers:
            out.append("?")
            out.append(
                "&".join(
                    _escape(k, _HEADER_SAFE) + "=" + _escape(v, _HEADER_SAFE)
                    for k, v in self.headers.items()
                )
            )
        return "".join(out)

    def __str__(self) -> str:
        return self.toString()

    def __repr__(self) -> str:
        return f"SIPURI({self.toString()!r})"

    def compare(self, other: SIPURI) -> bool:
        """
        Compare per RFC 3261 section 19.1.4: scheme, user and password
        exactly (after unescaping), host case-insensitively, port as
        written; user/ttl/method/maddr/transport must match if either has
        them, other parameters only if both have them; headers must all
        match.
        """
        if (
            self.scheme != other.scheme
            or self.username != other.username
            or self.password != other.password
            or self.host.lower() != other.host.lower()
            or self.port != other.port
        ):
            return False
        mine = {k: (v.lower() if v is not None else None) for k, v in self.params.items()}
        theirs = {k: (v.lower() if v is not None else None) for k, v in other.params.items()}
        for name in _MUST_MATCH:
            if mine.get(name) != theirs.get(name):
                return False
        for name, value in mine.items():
            if name in theirs and theirs[name] != value:
                return False
        h1 = {k.lower(): v for k, v in self.headers.items()}
        h2 = {k.lower(): v for k, v in other.headers.items()}
        return h1 == h2

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SIPURI):
            return NotImplemented
        return self.compare(other)

    def __hash__(self) -> int:
        return hash((self.scheme, self.username, self.host.lower(), self.port))


URI = Union[SIPURI, AbsoluteURI]


def _parse_params(text: str, uri: str) -> Dict[str, Optional[str]]:
    params: Dict[str, Optional[str]] = {}
    for item in text.split(";"):
        name, sep, value = item.partition("=")
        if not _PARAMCHARS_RE.fullmatch(name):
            raise _fail(uri, "empty or bad parameter name")
        if sep and not _PARAMCHARS_RE.fullmatch(value):
            raise _fail(uri, f"bad value for parameter {unescape(name)!r}")
        key = unescape(name).lower()
        if key in params:
            raise _fail(uri, f"parameter {key!r} repeated")
        params[key] = unescape(value) if sep else None
    ttl = params.get("ttl")
    if ttl is not None and not (ttl.isdigit() and len(ttl) <= 3 and int(ttl) <= 255):
        raise _fail(uri, "ttl is not 0..255")
    return params


def _parse_headers(text: str, uri: str) -> Dict[str, str]:
    headers: Dict[str, str] = {}
    for item in text.split("&"):
        name, sep, value = item.partition("=")
        if not sep or not _HNAME_RE.fullmatch(name) or not _HVALUE_RE.fullmatch(value):
            raise _fail(uri, "bad header component")
        headers[unescape(name)] = unescape(value)
    return headers


_SIPParts = Tuple[
    str,
    Optional[str],
    Optional[str],
    str,
    Optional[int],
    Tuple[Tuple[str, Optional[str]], ...],
    Tuple[Tuple[str, str], ...],
]

# URIs longer than this are parsed every time rather than cached, so that
# the cache's memory stays bounded (at most _CACHE_SIZE * _CACHE_MAX_LEN).
_CACHE_MAX_LEN = 256
_CACHE_SIZE = 2048


def _sip_parts(text: str, scheme: str, rest: str) -> _SIPParts:
    """
    Check a sip/sips URI and return its components as immutable values.
    """
    username: Optional[str] = None
    password: Optional[str] = None
    at = rest.find("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user, sep, pw = userinfo.partition(":")
        if not _USER_RE.fullmatch(user):
            raise _fail(text, "empty or bad user part")
        if sep:
            if not _PASSWORD_RE.fullmatch(pw):
                raise _fail(text, "bad password")
            password = unescape(pw)
        username = unescape(user)
    rest, qmark, header_text = rest.partition("?")
    hostport, semi, param_text = rest.partition(";")
    if not hostport:
        raise _fail(text, "no host")
    host, port = _split_hostport(hostport, text)
    params = tuple(_parse_params(param_text, text).items()) if semi else ()
    headers = tuple(_parse_headers(header_text, text).items()) if qmark else ()
    return scheme, username, password, host, port, params, headers


@lru_cache(maxsize=_CACHE_SIZE)
def _cached_sip_parts(text: str, scheme: str, rest: str) -> _SIPParts:
    """
    L{_sip_parts}, remembered: peers send the same few URIs (their own
    contact, ours) in message after message.  Only the immutable components
    are cached; every call still builds a new, independent L{SIPURI}.
    Faults raise every time (exceptions are not cached).
    """
    return _sip_parts(text, scheme, rest)


def _parse_sip(text: str, scheme: str, rest: str) -> SIPURI:
    if len(text) <= _CACHE_MAX_LEN:
        parts = _cached_sip_parts(text, scheme, rest)
    else:
        parts = _sip_parts(text, scheme, rest)
    scheme, username, password, host, port, params, headers = parts
    return SIPURI(
        host,
        username,
        password,
        port,
        scheme=scheme,
        params=dict(params) if params else None,
        headers=dict(headers) if headers else None,
    )


def parse_uri(text: str) -> URI:
    """
    Parse a URI: C{sip:}/C{sips:} (any case) into a L{SIPURI}, anything else
    into an L{AbsoluteURI}.

    @raise RemoteProtocolError: (400) naming what is wrong.
    """
    scheme, sep, rest = text.partition(":")
    lowered = scheme.lower()
    if sep and lowered in ("sip", "sips"):
        return _parse_sip(text, lowered, rest)
    if not text:
        raise RemoteProtocolError("Bad URI: empty")
    return AbsoluteURI(text)
