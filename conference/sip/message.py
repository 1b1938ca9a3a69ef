# -*- test-case-name: tests.unit.sip.test_message -*-
"""
SIP requests and responses with byte bodies and typed header access.

L{twisted.protocols.sip.Request} and C{Response} keep headers as an ordered
mapping of lower-case long names to lists of values, but treat bodies as
text and have no typed view of Via, From/To, CSeq or Content-Type.  These
classes keep that storage and Twisted's names (so code written for
Twisted's classes still works) and add byte bodies, compact-form aware
access and parsed views.  They do not subclass Twisted's: importing
C{twisted.protocols.sip} installs the default reactor, which the sans-I/O
core must never do.
"""

from __future__ import annotations

from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Tuple,
    TypeVar,
    Union,
)

from conference.sip.errors import LocalProtocolError, SIPProtocolError, reason_phrase
from conference.sip.headers import (
    Address,
    CSeq,
    MediaType,
    parse_address,
    parse_cseq,
    parse_media_type,
    split_list,
)
from conference.sip.via import Via, parse_via

if TYPE_CHECKING:
    from conference.sip.uri import URI

_T = TypeVar("_T")

# RFC 3261 section 7.3.3 plus the compact forms registered since (IANA
# "Header Fields" registry).
COMPACT_FORMS = {
    "a": "accept-contact",
    "b": "referred-by",
    "c": "content-type",
    "d": "request-disposition",
    "e": "content-encoding",
    "f": "from",
    "i": "call-id",
    "j": "reject-contact",
    "k": "supported",
    "l": "content-length",
    "m": "contact",
    "n": "identity-info",
    "o": "event",
    "r": "refer-to",
    "s": "subject",
    "t": "to",
    "u": "allow-events",
    "v": "via",
    "x": "session-expires",
    "y": "identity",
}

# Headers whose values are comma-separated lists (RFC 3261 section 7.3.1),
# so several field lines and one line with commas mean the same thing.
LIST_HEADERS = frozenset(
    [
        "accept",
        "accept-encoding",
        "accept-language",
        "accept-binding",
        "alert-info",
        "allow",
        "allow-events",
        "call-info",
        "contact",
        "content-encoding",
        "content-language",
        "error-info",
        "in-reply-to",
        "proxy-require",
        "record-route",
        "require",
        "route",
        "supported",
        "unsupported",
        "via",
        "warning",
        "binding",
    ]
)

_SPECIAL_CASES = {
    "call-id": "Call-ID",
    "cseq": "CSeq",
    "www-authenticate": "WWW-Authenticate",
    "mime-version": "MIME-Version",
    "rseq": "RSeq",
    "rack": "RAck",
    "min-se": "Min-SE",
    "sip-etag": "SIP-ETag",
    "sip-if-match": "SIP-If-Match",
}


_CANONICAL_NAMES: Dict[str, str] = {}
_MAX_CANONICAL_NAMES = 512


def canonical_name(name: str) -> str:
    """
    Return the lower-case long form of a header field name.
    """
    # Remembered (boundedly, like display_name): every header access of
    # every message names its header through here.
    canonical = _CANONICAL_NAMES.get(name)
    if canonical is None:
        lowered = name.strip().lower()
        canonical = COMPACT_FORMS.get(lowered, lowered)
        if len(_CANONICAL_NAMES) < _MAX_CANONICAL_NAMES:
            _CANONICAL_NAMES[name] = canonical
    return canonical


_DISPLAY_NAMES: Dict[str, str] = {}
_MAX_DISPLAY_NAMES = 512


def display_name(name: str) -> str:
    """
    Return the conventional capitalisation of a canonical header name.
    """
    # Remembered (boundedly: names come from peers), since every header
    # line of every message sent is named through here.
    shown = _DISPLAY_NAMES.get(name)
    if shown is None:
        shown = _SPECIAL_CASES.get(name) or "-".join(p.capitalize() for p in name.split("-"))
        if len(_DISPLAY_NAMES) < _MAX_DISPLAY_NAMES:
            _DISPLAY_NAMES[name] = shown
    return shown


# Typed views shared between messages, by header and field text: peers
# write the same To, From, Contact and Content-Type fields in message after
# message (every request of a dialog, a phone's own contact, the To of its
# calls to one conference), and a view depends on nothing but its text.
# Views are read-only (see _MessageMixin), which is what makes sharing
# them safe.  Bounded, since the texts come from peers; faults are not
# kept (each raises afresh).
_SHARED_VIEWS: Dict[Tuple[str, str], Any] = {}
_MAX_SHARED_VIEWS = 2048
_SHARED_NAMES = frozenset({"to", "from", "contact", "content-type"})


def _shared(name: str, value: str, parse: Callable[[str], _T]) -> _T:
    """
    C{parse(value)} for header C{name}, or the view another message's
    identical field gave.
    """
    key = (name, value)
    result: Optional[_T] = _SHARED_VIEWS.get(key)
    if result is None:
        result = parse(value)
        if len(_SHARED_VIEWS) >= _MAX_SHARED_VIEWS:
            _SHARED_VIEWS.clear()
        _SHARED_VIEWS[key] = result
    return result


def _parse_vias(fields: List[str]) -> List[Via]:
    """
    Every Via of a message's Via fields, topmost first.
    """
    out: List[Via] = []
    for field in fields:
        out.extend(parse_via(field))
    return out


class _MessageMixin:
    """
    What requests and responses share: headers, body, typed accessors.

    The typed views (L{vias}, L{to}, L{from_}, L{cseq}, L{contacts},
    L{content_type}) parse a header on first use and keep the result with
    the field values it came from; a later access returns the same object
    for as long as the fields are unchanged, and parses again once they
    changed, however they were changed (the header methods or direct
    edits of L{headers}).  Treat what they return as read-only: copy
    before changing it.  The To, From, Contact and Content-Type views
    are also shared between messages whose fields read the same.
    """

    headers: Dict[str, List[str]]
    body: bytes
    _views: Dict[str, Tuple[Any, Any]]

    # Header access -------------------------------------------------------

    def addHeader(self, name: str, value: str) -> None:
        """
        Append a header field (Twisted's spelling, kept for compatibility).
        """
        self.add_header(name, value)

    def add_header(self, name: str, value: str) -> None:
        """
        Append one header field value, keeping earlier ones.

        @raise LocalProtocolError: if the value holds CR or LF, which would
            let it smuggle header lines.
        """
        if "\r" in value or "\n" in value:
            raise LocalProtocolError(f"header {name} holds a line break")
        self.headers.setdefault(canonical_name(name), []).append(value)

    def set_header(self, name: str, value: Union[str, Iterable[str]]) -> None:
        """
        Replace every value of a header with C{value} (one field per item).
        """
        self.remove_header(name)
        for v in [value] if isinstance(value, str) else value:
            self.add_header(name, v)

    def remove_header(self, name: str) -> None:
        """
        Remove every field of a header; nothing happens if there is none.
        """
        self.headers.pop(canonical_name(name), None)

    def header(self, name: str) -> Optional[str]:
        """
        Return the first field value of a header, or L{None}.
        """
        values = self.headers.get(canonical_name(name))
        return values[0] if values else None

    def header_fields(self, name: str) -> List[str]:
        """
        Return every field line's value of a header, in order.
        """
        return list(self.headers.get(canonical_name(name), ()))

    def header_values(self, name: str) -> List[str]:
        """
        Return the elements of a list header, whether they came as several
        lines or comma-separated in one (quoted strings and C{<...>} kept
        whole).
        """

        out: List[str] = []
        for field in self.header_fields(name):
            out.extend(split_list(field))
        return out

    def has_header(self, name: str) -> bool:
        """
        Whether the message has at least one field of this header.
        """
        return bool(self.headers.get(canonical_name(name)))

    def iter_headers(self) -> Iterator[Tuple[str, str]]:
        """
        Yield (canonical name, value) for every field, grouped by name.
        """
        for name, values in self.headers.items():
            for value in values:
                yield name, value

    # Typed views ---------------------------------------------------------

    def _remembered(self, name: str) -> Any:
        """
        The remembered view of header C{name}'s first field, or L{None}
        when there is none or that field changed since.
        """
        values = self.headers.get(name)
        try:
            cached = self._views.get(name)
        except AttributeError:  # built without __init__ (copy, unpickling)
            return None
        if cached is not None and values and cached[0] == values[0]:
            return cached[1]
        return None

    def _first_view(self, name: str, parse: Callable[[str], _T]) -> _T:
        """
        C{parse} of the first field of header C{name}, remembered with that
        field's text (the same text always parses the same way).

        @raise LocalProtocolError: if there is no such field.
        """
        values = self.headers.get(name)
        if not values:
            raise LocalProtocolError(f"message has no {display_name(name)}")
        value = values[0]
        try:
            views = self._views
        except AttributeError:  # built without __init__ (copy, unpickling)
            views = self._view_cache()
        cached = views.get(name)
        if cached is not None and cached[0] == value:
            result: _T = cached[1]
            return result
        result = _shared(name, value, parse) if name in _SHARED_NAMES else parse(value)
        views[name] = (value, result)
        return result

    def _list_view(self, name: str, parse: Callable[[List[str]], _T]) -> _T:
        """
        C{parse} of every field of header C{name}, remembered with a copy of
        the field list.
        """
        fields = self.headers.get(name) or []
        try:
            views = self._views
        except AttributeError:  # built without __init__ (copy, unpickling)
            views = self._view_cache()
        cached = views.get(name)
        if cached is not None and (cached[0] is fields or cached[0] == fields):
            result: _T = cached[1]
            return result
        if name in _SHARED_NAMES and len(fields) == 1:
            result = _shared(name, fields[0], lambda _: parse(fields))
        else:
            result = parse(fields)
        views[name] = (list(fields), result)
        return result

    def _view_cache(self) -> Dict[str, Tuple[Any, Any]]:
        try:
            return self._views
        except AttributeError:  # built without __init__ (copy, unpickling)
            self._views = {}
            return self._views

    def forget_views(self) -> None:
        """
        Drop every remembered view (they are parsed again when asked for),
        for a message kept long after it was handled that may still be
        read: the views are some thirty small objects per message for the
        garbage collector.  A finished message nothing reads any more is
        better L{compact}ed, which drops everything but its bytes.
        """
        self._views = {}

    def compact(self, wire: Optional[bytes] = None) -> None:
        """
        Hold a finished message as its serialized form alone: what a
        completed transaction keeps for its timer, tens of thousands of
        them on a loaded server, each otherwise some seventy objects
        (header fields, their texts, the URI, the views) that the garbage
        collector would visit again and again.  C{wire} is the message as
        just serialized (L{to_bytes} when not given); L{to_bytes} returns
        it.  Reading anything dropped (the headers, the body, a request's
        URI, a view) parses it again first, once, and the message is then
        as it was, changeable.  Compacting a compacted message does nothing.
        """
        _compacted.compact(self, wire)  # type: ignore[arg-type]

    def remember_view(self, name: str, value: str, parsed: Any) -> None:
        """
        Record that the field text C{value} of header C{name} parses to
        C{parsed} (for code that just built that text from C{parsed}), so
        the typed view need not parse it again.  Only the first field of a
        single-valued header (To, From, CSeq, Content-Type) can be recorded.
        """
        self._view_cache()[canonical_name(name)] = (value, parsed)

    def remember_list_view(self, name: str, parsed: Any) -> None:
        """
        Record that every field of list header C{name}, as they are now,
        parse to C{parsed} (for code that just wrote those fields from
        C{parsed}), so the view need not parse them again.
        """
        key = canonical_name(name)
        self._view_cache()[key] = (list(self.headers.get(key) or ()), parsed)

    def copy_views(self, other: _MessageMixin, names: Iterable[str]) -> None:
        """
        Take over C{other}'s parsed views of the headers C{names} (for a
        message whose fields were copied from C{other}); each still applies
        only while the fields are unchanged.
        """
        theirs = other._view_cache()
        mine = self._view_cache()
        for name in names:
            cached = theirs.get(name)
            if cached is not None:
                mine[name] = cached

    @property
    def call_id(self) -> str:
        """
        The Call-ID (the parser guarantees there is exactly one).
        """
        value = self.header("call-id")
        if value is None:
            raise LocalProtocolError("message has no Call-ID")
        return value.strip()

    @property
    def cseq(self) -> CSeq:
        """
        The parsed CSeq.
        """

        return self._first_view("cseq", parse_cseq)

    def parsed_vias(self) -> List[Via]:
        """
        Every Via, topmost first: the remembered list itself (read-only).
        """
        return self._list_view("via", _parse_vias)

    @property
    def vias(self) -> List[Via]:
        """
        Every Via, topmost first (a new list; the Via objects are shared
        with later calls while the Via fields are unchanged).
        """
        return list(self.parsed_vias())

    @property
    def top_via(self) -> Via:
        """
        The topmost Via.
        """
        vias = self.parsed_vias()
        if not vias:
            raise LocalProtocolError("message has no Via")
        return vias[0]

    @property
    def from_(self) -> Address:
        """
        The parsed From header.
        """
        return self.parsed_address("from")

    @property
    def to(self) -> Address:
        """
        The parsed To header.
        """
        return self.parsed_address("to")

    def parsed_address(self, name: str, what: str = "address") -> Address:
        """
        The parsed first field of an address header (To, From, Reply-To,
        ...), remembered like the other views.

        @param what: names the header in a parse error's reason.
        """
        cached: Optional[Address] = self._remembered(name)
        if cached is not None:
            return cached

        return self._first_view(name, lambda value: parse_address(value, what))

    @property
    def contacts(self) -> List[Address]:
        """
        Every Contact as an address (a C{*} Contact raises; check first).
        """
        return list(self.parsed_contacts())

    def parsed_contacts(self, what: str = "address") -> List[Address]:
        """
        Every Contact: the remembered list itself (read-only).

        @param what: names the header in a parse error's reason.
        """

        def parse(fields: List[str]) -> List[Address]:
            return [parse_address(v, what) for field in fields for v in split_list(field)]

        return self._list_view("contact", parse)

    @property
    def content_type(self) -> Optional[MediaType]:
        """
        The parsed Content-Type, or L{None} if absent.
        """

        if not self.headers.get("content-type"):
            return None
        return self._first_view("content-type", parse_media_type)

    # Serialization -------------------------------------------------------

    def _start_line(self) -> str:
        raise NotImplementedError()

    def to_bytes(self) -> bytes:
        """
        Serialize the message, setting Content-Length from the body.
        """
        self.headers.pop("content-length", None)
        self.headers["content-length"] = [str(len(self.body))]
        lines = [self._start_line()]
        known = _DISPLAY_NAMES
        for name, values in self.headers.items():
            shown = known.get(name) or display_name(name)
            for value in values:
                lines.append(f"{shown}: {value}")
        head = "\r\n".join(lines) + "\r\n\r\n"
        return head.encode("utf-8") + self.body

    def toString(self) -> str:
        """
        Twisted's text form; bodies that are not UTF-8 are escaped.
        """
        return self.to_bytes().decode("utf-8", "backslashreplace")

    def bodyDataReceived(self, data: Union[str, bytes]) -> None:
        """
        Append body data (Twisted's parser API).
        """
        self.body += data.encode("utf-8") if isinstance(data, str) else data


def _init_message(message: _MessageMixin) -> None:
    """
    What L{twisted.protocols.sip.Message.__init__} sets, except that headers
    go in a plain dict (ordered too, since Python 3.7) rather than an
    C{OrderedDict}: the garbage collector visits an C{OrderedDict} several
    times slower, and a busy server keeps tens of thousands of messages
    alive in transactions waiting for their timers.
    """
    message.headers = {}
    message.body = b""
    message._views = {}


class Request(_MessageMixin):
    """
    A SIP request.

    @ivar method: the method, case-sensitive (RFC 3261 section 7.1).
    @ivar uri: the Request-URI, a L{conference.sip.uri.URI}.
    """

    def __init__(self, method: str, uri: URI, body: bytes = b"") -> None:
        _init_message(self)
        self.method = method
        self.uri = uri
        self.body = body

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri}>"

    def _start_line(self) -> str:
        return f"{self.method} {self.uri} SIP/2.0"

    _getHeaderLine = _start_line


class Response(_MessageMixin):
    """
    A SIP response.

    @ivar stable_until: for a non-2xx final answer, the time (the clock of
        the C{now} the layers are given) until which the application would
        give this same answer to the same request: a retransmission
        answered afresh gets it again.  The stateless path
        (L{conference.sip.stateless}) may then send it without a
        transaction when that covers the request's retransmission window.
        L{None} (the default): nothing is promised.
    """

    stable_until: Optional[float] = None

    def __init__(self, code: int, phrase: Optional[str] = None, body: bytes = b"") -> None:
        _init_message(self)
        if not 100 <= code <= 699:
            raise LocalProtocolError(f"status code {code} out of range")
        self.code = code
        if phrase is None:
            phrase = reason_phrase(code)
        if "\r" in phrase or "\n" in phrase:
            raise LocalProtocolError("reason phrase holds a line break")
        self.phrase = phrase
        self.body = body

    def __repr__(self) -> str:
        return f"<Response {self.code} {self.phrase}>"

    def _start_line(self) -> str:
        return f"SIP/2.0 {self.code} {self.phrase}"

    _getHeaderLine = _start_line


Message = Union[Request, Response]


# Headers a response copies from its request (RFC 3261 section 8.2.6.2).
_COPIED = ("via", "from", "to", "call-id", "cseq")


# Requests whose 18x/2xx may establish a dialog (RFC 3261, RFC 6665, RFC 3515).
_DIALOG_CREATING = frozenset({"INVITE", "SUBSCRIBE", "REFER"})


def make_response(
    request: Request,
    code: int,
    phrase: Optional[str] = None,
    *,
    to_tag: Optional[str] = None,
    body: bytes = b"",
    headers: Iterable[Tuple[str, str]] = (),
) -> Response:
    """
    Build a response to C{request} per RFC 3261 section 8.2.6.

    Via, From, Call-ID and CSeq are copied; To is copied and gets C{to_tag}
    when it has no tag yet (a 100 never gets one).  A 18x or 2xx to a
    request that creates a dialog (INVITE, SUBSCRIBE, REFER) also copies
    its Record-Route (section 12.1.1: a proxy that record-routed the
    dialog's first request, such as Kamailio in front of several servers,
    then stays in the dialog's route set on both sides).
    """
    response = Response(code, phrase, body)
    copied = response.headers
    for name in _COPIED:
        values = request.headers.get(name)
        if values:
            # What add_header checks, without its name lookups.
            for value in values:
                if "\r" in value or "\n" in value:
                    raise LocalProtocolError(f"header {name} holds a line break")
            copied[name] = list(values)
    # The response parses its Vias and To exactly as the request did.
    response.copy_views(request, ("via", "to"))
    if to_tag is not None and code != 100 and request.has_header("to"):
        to = request.to
        if to.tag is None:
            tagged = to.with_tag(to_tag)
            # The tag is the field's last parameter: appended to the text
            # as written rather than writing the whole field out again.
            # (After CSeq, where set_header put it before.)
            value = request.headers["to"][0] + ";tag=" + to_tag
            del response.headers["to"]
            response.headers["to"] = [value]
            response.remember_view("to", value, tagged)
    if 101 <= code < 300 and request.method in _DIALOG_CREATING:
        routes = request.headers.get("record-route")
        if routes:
            for value in routes:
                if "\r" in value or "\n" in value:
                    raise LocalProtocolError("header record-route holds a line break")
            copied["record-route"] = list(routes)
    for name, value in headers:
        response.add_header(name, value)
    return response


def error_response(request: Request, error: SIPProtocolError, to_tag: str) -> Response:
    """
    Turn a protocol error into the response that tells the peer about it:
    its status, reason and extra header fields.
    """
    return make_response(request, error.status, error.reason, to_tag=to_tag, headers=error.headers)


# Last: the compacted classes build on Request and Response (above), and
# compact() is called for every response a transaction sends.
import conference.sip.compacted as _compacted  # noqa: E402
