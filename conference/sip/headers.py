# -*- test-case-name: tests.unit.sip.test_headers -*-
"""
Typed parsers for SIP header field values (RFC 3261 section 25.1).

Twisted's C{parseViaHeader} and C{parseAddress} split on characters without
regard to quoting, LWS or the name-addr/addr-spec rules and fail with
random exceptions; these parsers follow the grammar, keep quoted strings and
escapes intact and raise L{RemoteProtocolError} naming the fault.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from conference.sip.errors import RemoteProtocolError
from conference.sip.uri import URI, parse_uri

_TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
_QUOTED_BODY = r'(?:[^"\\]|\\.)*'
TOKEN_RE = re.compile(_TOKEN)
_QUOTED_RE = re.compile(rf'"({_QUOTED_BODY})"', re.DOTALL)
_PAIR_RE = re.compile(r"\\(.)", re.DOTALL)
_PARAM_RE = re.compile(
    rf"[ \t]*;[ \t]*({_TOKEN})"
    rf'(?:[ \t]*=[ \t]*(?:({_TOKEN}|\[[0-9A-Fa-f:.]+\])|"({_QUOTED_BODY})"))?[ \t]*',
    re.DOTALL,
)
# An IPv6 reference, the one unquoted parameter value that is not a token
# (received=[2001:db8::1]); anything else in brackets must be quoted.
_BRACKETED_RE = re.compile(r"\[[0-9A-Fa-f:.]+\]")
_DISPLAY_RE = re.compile(rf"{_TOKEN}(?:[ \t]+{_TOKEN})*")
_CSEQ_RE = re.compile(rf"[ \t]*([0-9]+)[ \t]+({_TOKEN})[ \t]*")
# The forms almost every peer writes, recognised by one match each (see
# _fast_address and _fast_via); anything else takes the general parser.
SIMPLE_PARAMS = rf"(?:;{_TOKEN}(?:={_TOKEN})?)*"
_SIMPLE_PARAM_RE = re.compile(rf";({_TOKEN})(?:=({_TOKEN}))?")
_FAST_ADDRESS_RE = re.compile(
    rf'(?:"([^"\\]*)"[ \t]*|({_TOKEN}(?:[ \t]+{_TOKEN})*)[ \t]*)?<([^\s<>"]+)>({SIMPLE_PARAMS})'
)
_MEDIA_RE = re.compile(rf"[ \t]*({_TOKEN})[ \t]*/[ \t]*({_TOKEN})")
_QVALUE_RE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")
_INT_RE = re.compile(r"[ \t]*([0-9]+)[ \t]*")
_WARNING_RE = re.compile(rf'([0-9]{{3}})[ \t]+([^ \t"]+)[ \t]+"({_QUOTED_BODY})"', re.DOTALL)
_RETRY_RE = re.compile(r"[ \t]*([0-9]+)[ \t]*(?:\(([^()]*)\))?")
_WORD = r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+"
_CALL_ID_RE = re.compile(rf"{_WORD}(?:@{_WORD})?")
_DATE_RE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), ([0-9]{2}) "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ([0-9]{4}) "
    r"([0-9]{2}):([0-9]{2}):([0-9]{2}) GMT"
)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

MAX_DELTA_SECONDS = 2**32 - 1
MAX_CSEQ = 2**31 - 1


def bad_header(what: str, why: str) -> RemoteProtocolError:
    return RemoteProtocolError(f"Bad {what}: {why}")


def _unquote(body: str) -> str:
    return _PAIR_RE.sub(r"\1", body) if "\\" in body else body


def quote_string(text: str) -> str:
    """
    Return C{text} as a quoted-string, escaping backslashes and quotes.
    """
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# Lists and parameters -------------------------------------------------------


def split_list(value: str) -> List[str]:
    """
    Split a comma-separated header value into its elements, keeping quoted
    strings and C{<...>} whole; elements are stripped and empty ones dropped.
    """
    if "," not in value:
        # The common case (one element): nothing to split.
        element = value.strip()
        return [element] if element else []
    if '"' not in value and "<" not in value:
        return [p for p in (part.strip() for part in value.split(",")) if p]
    out: List[str] = []
    start = 0
    quoted = False
    angle = False
    i = 0
    n = len(value)
    while i < n:
        c = value[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c == "<":
            angle = True
        elif c == ">":
            angle = False
        elif c == "," and not angle:
            out.append(value[start:i])
            start = i + 1
        i += 1
    out.append(value[start:])
    return [p for p in (part.strip() for part in out) if p]


def scan_params(text: str, pos: int, what: str) -> Tuple[Dict[str, Optional[str]], int]:
    params: Dict[str, Optional[str]] = {}
    match = _PARAM_RE.match
    while True:
        m = match(text, pos)
        if m is None:
            return params, pos
        name = m.group(1).lower()
        if name in params:
            raise bad_header(what, f"parameter {name!r} repeated")
        token, quoted = m.group(2), m.group(3)
        params[name] = (
            token if token is not None else (_unquote(quoted) if quoted is not None else None)
        )
        pos = m.end()


def parse_params(text: str, what: str = "header") -> Dict[str, Optional[str]]:
    """
    Parse C{;name=value;name;name="quoted"} (LWS allowed around C{;} and
    C{=}) into an ordered dict; names are lower-cased, quoted values
    unquoted, a parameter without value maps to L{None}.

    @raise RemoteProtocolError: on anything else (naming C{what}).
    """
    params, pos = scan_params(text, 0, what)
    if text[pos:].strip(" \t"):
        raise bad_header(what, f"malformed parameters {text[pos:][:40]!r}")
    return params


def format_params(params: Dict[str, Optional[str]]) -> str:
    """
    Serialize parameters as C{;name=value}, quoting values that are not
    tokens or hosts.
    """
    out = []
    for name, value in params.items():
        if value is None:
            out.append(f";{name}")
        elif TOKEN_RE.fullmatch(value) or _BRACKETED_RE.fullmatch(value):
            out.append(f";{name}={value}")
        else:
            out.append(f";{name}={quote_string(value)}")
    return "".join(out)


# Addresses ------------------------------------------------------------------


class Address:
    """
    A name-addr or addr-spec with header parameters (From, To, Contact,
    Route, Reply-To, ...).

    @ivar display_name: the display name, unquoted; L{None} if absent.
    @ivar uri: the URI.
    @ivar params: header parameters (C{tag}, C{expires}, C{q}, ...).
    """

    __slots__ = ("display_name", "params", "uri")

    def __init__(
        self,
        uri: URI,
        display_name: Optional[str] = None,
        params: Optional[Dict[str, Optional[str]]] = None,
    ) -> None:
        self.uri = uri
        self.display_name = display_name
        self.params: Dict[str, Optional[str]] = dict(params) if params else {}

    @property
    def tag(self) -> Optional[str]:
        """
        The C{tag} parameter, or L{None}.
        """
        return self.params.get("tag")

    def with_tag(self, tag: str) -> Address:
        """
        Return a copy whose C{tag} parameter is C{tag}.
        """
        copy = Address.__new__(Address)  # one copy of the parameters, not two
        copy.uri = self.uri
        copy.display_name = self.display_name
        copy.params = params = dict(self.params)
        params["tag"] = tag
        return copy

    def to_string(self) -> str:
        """
        The name-addr form (the URI always in C{<>}, so its parameters
        cannot be mistaken for header parameters).
        """
        name = quote_string(self.display_name) + " " if self.display_name else ""
        return f"{name}<{self.uri}>{format_params(self.params)}"

    __str__ = to_string

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Address):
            return NotImplemented
        return (self.uri, self.display_name, self.params) == (
            other.uri,
            other.display_name,
            other.params,
        )

    def __hash__(self) -> int:
        return hash((self.uri, self.display_name))

    def __repr__(self) -> str:
        return f"Address({self.to_string()!r})"


def _parse_uri_in(text: str, what: str) -> URI:
    try:
        return parse_uri(text)
    except RemoteProtocolError as e:
        raise bad_header(what, e.reason) from None


def simple_params(text: str) -> Optional[Dict[str, Optional[str]]]:
    """
    The parameters of a C{;name=token;name} run already matched by
    C{SIMPLE_PARAMS}, or L{None} if a name repeats (the general parser
    then names the fault).
    """
    params: Dict[str, Optional[str]] = {}
    if not text:
        return params
    for written, value in _SIMPLE_PARAM_RE.findall(text):
        name = written.lower()
        if name in params:
            return None
        params[name] = value or None  # a token is never empty: "" is absent
    return params


def _fast_address(value: str, what: str) -> Optional[Address]:
    """
    The common name-addr forms (C{<uri>;tag=x}, C{Name <uri>},
    C{"Name" <uri>} with plain token parameters) parsed by one match, the
    same as L{parse_address} parses them; L{None} for anything else.
    """
    m = _FAST_ADDRESS_RE.fullmatch(value)
    if m is None:
        return None
    quoted, display, inner, param_text = m.groups()
    params = simple_params(param_text)
    if params is None:
        return None
    address = Address(_parse_uri_in(inner, what), quoted if quoted is not None else display)
    address.params = params
    return address


def parse_address(value: str, what: str = "address") -> Address:
    """
    Parse a name-addr (C{"Name" <uri>;params} or C{Name <uri>;params}) or an
    addr-spec (C{uri;params}).  In an addr-spec everything after the first
    C{;} is a header parameter, and a URI holding C{?} or C{,} must be in
    C{<>} (RFC 3261 section 20.10).

    @raise RemoteProtocolError: naming the fault (unterminated quote,
        non-token display name, whitespace inside C{<>}, bad URI, bad
        parameters, C{*}).
    """
    v = value.strip(" \t")
    fast = _fast_address(v, what)
    if fast is not None:
        return fast
    return _general_address(v, what)


def _general_address(v: str, what: str) -> Address:
    """
    L{parse_address} of a stripped value, every form.
    """
    if not v:
        raise bad_header(what, "empty")
    display: Optional[str] = None
    if v[0] == '"':
        m = _QUOTED_RE.match(v)
        if m is None:
            raise bad_header(what, "unterminated quoted string in display name")
        display = _unquote(m.group(1))
        lt = m.end()
        while lt < len(v) and v[lt] in " \t":
            lt += 1
        if lt >= len(v) or v[lt] != "<":
            raise bad_header(what, "quoted display name not followed by <URI>")
    else:
        lt = v.find("<")
        if lt > 0:
            before = v[:lt].strip(" \t")
            if before:
                if not _DISPLAY_RE.fullmatch(before):
                    raise bad_header(what, "display name holds non-token characters; quote it")
                display = before
    if lt >= 0:
        gt = v.find(">", lt + 1)
        if gt < 0:
            raise bad_header(what, "missing '>'")
        inner = v[lt + 1 : gt]
        if inner != inner.strip() or " " in inner or "\t" in inner:
            raise bad_header(what, "whitespace inside <>")
        uri = _parse_uri_in(inner, what)
        params, pos = scan_params(v, gt + 1, what)
    else:
        if v == "*":
            raise bad_header(what, "'*' where an address is needed")
        semi = v.find(";")
        spec = (v if semi < 0 else v[:semi]).rstrip(" \t")
        if "?" in spec or "," in spec:
            raise bad_header(what, "an addr-spec holding '?' or ',' must be enclosed in <>")
        if " " in spec or "\t" in spec:
            raise bad_header(what, "whitespace inside addr-spec")
        uri = _parse_uri_in(spec, what)
        params, pos = scan_params(v, len(spec), what)
    if pos != len(v):
        raise bad_header(what, f"malformed parameters {v[pos:][:40]!r}")
    return Address(uri, display, params)


def contact_is_star(values: Sequence[str]) -> bool:
    """
    Whether Contact elements (from L{split_list}) are the wildcard C{*}.

    @raise RemoteProtocolError: if C{*} is mixed with other elements.
    """
    stars = sum(1 for v in values if v.strip() == "*")
    if stars and len(values) > 1:
        raise bad_header("Contact", "'*' mixed with other contacts")
    return stars == 1


# Scalars --------------------------------------------------------------------


class CSeq(NamedTuple):
    """
    A parsed CSeq: sequence number and method.
    """

    number: int
    method: str

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


#: Methods this stack knows the meaning of (RFC 3261, 3262, 3265/6665,
#: 3428, 3515, 3903, 3311, 6086, and the BIND draft): the core answers a
#: known method nobody handles 405 and an unknown one 501, and the traffic
#: metrics count any other as C{other}.
KNOWN_METHODS = frozenset(
    [
        "ACK",
        "BIND",
        "BYE",
        "CANCEL",
        "INFO",
        "INVITE",
        "MESSAGE",
        "NOTIFY",
        "OPTIONS",
        "PRACK",
        "PUBLISH",
        "REFER",
        "REGISTER",
        "SUBSCRIBE",
        "UPDATE",
    ]
)

# Each known method as one string object that every message's method and
# CSeq share: each completed transaction keeps its method (in its
# matching keys) until its timer, one object less each.
_METHODS = {name: name for name in KNOWN_METHODS}


def shared_method(name: str) -> str:
    """
    C{name}, as the one string object of that method when it is one this
    server knows (else C{name} itself).
    """
    return _METHODS.get(name, name)


def parse_cseq(value: str) -> CSeq:
    """
    Parse C{number method}; the number must fit in 31 bits (RFC 3261
    section 8.1.1.5).

    @raise RemoteProtocolError: naming the fault.
    """
    digits, _, method = value.partition(" ")
    if len(digits) < 10 and digits.isascii() and digits.isdigit() and TOKEN_RE.fullmatch(method):
        return CSeq(int(digits), shared_method(method))  # below 2**31 by its length
    m = _CSEQ_RE.fullmatch(value)
    if m is None:
        raise bad_header("CSeq", "not 'number method'")
    digits = m.group(1).lstrip("0") or "0"
    if len(digits) > 10 or int(digits) > MAX_CSEQ:
        raise bad_header("CSeq", "sequence number larger than 2**31-1")
    return CSeq(int(digits), shared_method(m.group(2)))


def parse_int_header(value: str, name: str, maximum: int = MAX_DELTA_SECONDS) -> int:
    """
    Parse a decimal header value (Max-Forwards with C{maximum=255},
    Expires, Min-Expires, Content-Length, ...) without risking huge integer
    conversions.

    @raise RemoteProtocolError: if it is not 0..C{maximum}.
    """
    if len(value) < 10 and value.isascii() and value.isdigit():
        # The usual plain number: no pattern, no stripping.
        number = int(value)
        if number <= maximum:
            return number
    m = _INT_RE.fullmatch(value)
    if m is None:
        raise bad_header(name, "not a non-negative integer")
    digits = m.group(1).lstrip("0") or "0"
    if len(digits) > len(str(maximum)) or int(digits) > maximum:
        raise bad_header(name, f"larger than {maximum}")
    return int(digits)


def parse_call_id(value: str) -> str:
    """
    Check a Call-ID (C{word ["@" word]}) and return it stripped.

    @raise RemoteProtocolError: if it is not one.
    """
    text = value.strip(" \t")
    if not _CALL_ID_RE.fullmatch(text):
        raise bad_header("Call-ID", "not word[@word]")
    return text


def parse_date(value: str) -> datetime:
    """
    Parse an RFC 1123 date, which SIP allows only in GMT (RFC 3261 section
    20.17).

    @raise RemoteProtocolError: if it is not one.
    """
    m = _DATE_RE.fullmatch(value.strip(" \t"))
    if m is None:
        raise bad_header("Date", "not an RFC 1123 date in GMT")
    _, day, month, year, hh, mm, ss = m.groups()
    try:
        return datetime(
            int(year),
            _MONTHS.index(month) + 1,
            int(day),
            int(hh),
            int(mm),
            int(ss),
            tzinfo=timezone.utc,
        )
    except ValueError:
        raise bad_header("Date", "no such date or time") from None


# Media types ----------------------------------------------------------------


class MediaType(NamedTuple):
    """
    A Content-Type: type and subtype lower-cased, parameters with names
    lower-cased and quoted values unquoted.
    """

    type: str
    subtype: str
    params: Dict[str, str]

    @property
    def mime(self) -> str:
        """
        C{type/subtype}.
        """
        return f"{self.type}/{self.subtype}"

    def __str__(self) -> str:
        return self.mime + format_params(dict(self.params))


def _media(value: str, what: str) -> Tuple[str, str, Dict[str, Optional[str]]]:
    m = _MEDIA_RE.match(value)
    if m is None:
        raise bad_header(what, "not type/subtype")
    params, pos = scan_params(value, m.end(), what)
    if value[pos:].strip(" \t"):
        raise bad_header(what, f"malformed parameters {value[pos:][:40]!r}")
    return m.group(1).lower(), m.group(2).lower(), params


def parse_media_type(value: str) -> MediaType:
    """
    Parse a Content-Type value.

    @raise RemoteProtocolError: naming the fault.
    """
    type_, subtype, params = _media(value, "Content-Type")
    out: Dict[str, str] = {}
    for name, pvalue in params.items():
        if pvalue is None:
            raise bad_header("Content-Type", f"parameter {name!r} without a value")
        out[name] = pvalue
    return MediaType(type_, subtype, out)


class MediaRange(NamedTuple):
    """
    One Accept element: C{type}/C{subtype} (either may be C{*}), its
    q-value and other parameters.
    """

    type: str
    subtype: str
    q: float
    params: Dict[str, Optional[str]]

    @property
    def mime(self) -> str:
        """
        C{type/subtype}.
        """
        return f"{self.type}/{self.subtype}"

    def matches(self, mime: str) -> bool:
        """
        Whether this range covers C{mime} (C{type/subtype}, lower-case).
        """
        type_, _, subtype = mime.partition("/")
        return self.type in ("*", type_) and self.subtype in ("*", subtype)


def parse_qvalue(text: str) -> float:
    """
    Parse a q-value (0 to 1, up to three decimals).

    @raise RemoteProtocolError: if it is not one.
    """
    if not _QVALUE_RE.fullmatch(text):
        raise bad_header("q-value", f"{text[:20]!r} is not 0..1")
    return float(text)


def parse_accept(value: str) -> List[MediaRange]:
    """
    Parse an Accept value (possibly empty: nothing acceptable).

    @raise RemoteProtocolError: naming the fault.
    """
    out: List[MediaRange] = []
    for element in split_list(value):
        type_, subtype, params = _media(element, "Accept")
        q = 1.0
        if "q" in params:
            qtext = params.pop("q")
            q = parse_qvalue(qtext or "")
        out.append(MediaRange(type_, subtype, q, params))
    return out


def media_acceptable(ranges: Sequence[MediaRange], mime: str) -> bool:
    """
    Whether C{mime} is acceptable under C{ranges}: the most specific range
    that covers it (C{type/subtype}, then C{type/*}, then C{*/*}) has a
    q-value above 0.
    """
    mime = mime.lower()
    best: Optional[MediaRange] = None
    for r in ranges:
        if r.matches(mime) and (best is None or _specificity(r) > _specificity(best)):
            best = r
    return best is not None and best.q > 0


def _specificity(r: MediaRange) -> int:
    return (r.type != "*") + (r.subtype != "*")


# Lists of tokens and response helpers ----------------------------------------


def parse_option_tags(value: str, what: str = "Require") -> List[str]:
    """
    Parse option tags (Require, Proxy-Require, Supported, Unsupported);
    tags keep their case.

    @raise RemoteProtocolError: if an element is not a token.
    """
    tags = split_list(value)
    for tag in tags:
        if not TOKEN_RE.fullmatch(tag):
            raise bad_header(what, f"{tag[:40]!r} is not an option tag")
    return tags


class WarningValue(NamedTuple):
    """
    One Warning element.
    """

    code: int
    agent: str
    text: str


def parse_warning(value: str) -> List[WarningValue]:
    """
    Parse a Warning value (C{code agent "text"}, code three digits).

    @raise RemoteProtocolError: naming the fault.
    """
    out: List[WarningValue] = []
    for element in split_list(value):
        m = _WARNING_RE.fullmatch(element)
        if m is None:
            raise bad_header("Warning", 'not 3-digit-code agent "text"')
        out.append(WarningValue(int(m.group(1)), m.group(2), _unquote(m.group(3))))
    return out


class RetryAfter(NamedTuple):
    """
    A parsed Retry-After.
    """

    seconds: int
    comment: Optional[str]
    params: Dict[str, Optional[str]]


def parse_retry_after(value: str) -> RetryAfter:
    """
    Parse C{delta-seconds [(comment)] *(;param)}; seconds up to 2**32-1.

    @raise RemoteProtocolError: naming the fault.
    """
    m = _RETRY_RE.match(value)
    if m is None:
        raise bad_header("Retry-After", "not delta-seconds")
    seconds = parse_int_header(m.group(1), "Retry-After")
    params = parse_params(value[m.end() :], "Retry-After")
    if "duration" in params:
        parse_int_header(params["duration"] or "", "Retry-After duration")
    return RetryAfter(seconds, m.group(2), params)
