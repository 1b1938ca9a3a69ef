# -*- test-case-name: tests.sip.test_message -*-
"""
SIP requests and responses with byte bodies and typed header access.

L{twisted.protocols.sip.Request} and C{Response} keep headers as an ordered
mapping of lower-case long names to lists of values, but treat bodies as
text and have no typed view of Via, From/To, CSeq or Content-Type.  These
subclasses keep that storage (so code written for Twisted's classes still
works) and add byte bodies, compact-form aware access and parsed views.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Iterable, Iterator, List, Optional, Tuple, Union

from twisted.protocols import sip

from conference.sip.errors import LocalProtocolError

if TYPE_CHECKING:
    from conference.sip.headers import Address, CSeq, MediaType
    from conference.sip.uri import URI

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


def canonical_name(name: str) -> str:
    """
    Return the lower-case long form of a header field name.
    """
    name = name.strip().lower()
    return COMPACT_FORMS.get(name, name)


def display_name(name: str) -> str:
    """
    Return the conventional capitalisation of a canonical header name.
    """
    return _SPECIAL_CASES.get(name) or "-".join(p.capitalize() for p in name.split("-"))


class _MessageMixin:
    """
    What requests and responses share: headers, body, typed accessors.
    """

    headers: OrderedDict[str, List[str]]
    body: bytes

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
        from conference.sip.headers import split_list

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
        from conference.sip.headers import parse_cseq

        value = self.header("cseq")
        if value is None:
            raise LocalProtocolError("message has no CSeq")
        return parse_cseq(value)

    @property
    def vias(self) -> List[sip.Via]:
        """
        Every Via, topmost first.
        """
        from conference.sip.headers import parse_via

        out: List[sip.Via] = []
        for field in self.header_fields("via"):
            out.extend(parse_via(field))
        return out

    @property
    def top_via(self) -> sip.Via:
        """
        The topmost Via.
        """
        vias = self.vias
        if not vias:
            raise LocalProtocolError("message has no Via")
        return vias[0]

    @property
    def from_(self) -> Address:
        """
        The parsed From header.
        """
        return self._address("from")

    @property
    def to(self) -> Address:
        """
        The parsed To header.
        """
        return self._address("to")

    def _address(self, name: str) -> Address:
        from conference.sip.headers import parse_address

        value = self.header(name)
        if value is None:
            raise LocalProtocolError(f"message has no {display_name(name)}")
        return parse_address(value)

    @property
    def contacts(self) -> List[Address]:
        """
        Every Contact as an address (a C{*} Contact raises; check first).
        """
        from conference.sip.headers import parse_address

        return [parse_address(v) for v in self.header_values("contact")]

    @property
    def content_type(self) -> Optional[MediaType]:
        """
        The parsed Content-Type, or L{None} if absent.
        """
        from conference.sip.headers import parse_media_type

        value = self.header("content-type")
        return parse_media_type(value) if value is not None else None

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
        for name, value in self.iter_headers():
            lines.append(f"{display_name(name)}: {value}")
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


class Request(_MessageMixin, sip.Request):  # type: ignore[misc]
    """
    A SIP request.

    @ivar method: the method, case-sensitive (RFC 3261 section 7.1).
    @ivar uri: the Request-URI, a L{conference.sip.uri.URI}.
    """

    def __init__(self, method: str, uri: URI, body: bytes = b"") -> None:
        sip.Message.__init__(self)  # type: ignore[no-untyped-call]
        self.method = method
        self.uri = uri  # type: ignore[assignment]
        self.body = body

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri}>"

    def _start_line(self) -> str:
        return f"{self.method} {self.uri} SIP/2.0"

    _getHeaderLine = _start_line


class Response(_MessageMixin, sip.Response):  # type: ignore[misc]
    """
    A SIP response.
    """

    def __init__(self, code: int, phrase: Optional[str] = None, body: bytes = b"") -> None:
        sip.Message.__init__(self)  # type: ignore[no-untyped-call]
        if not 100 <= code <= 699:
            raise LocalProtocolError(f"status code {code} out of range")
        self.code = code
        if phrase is None:
            phrase = sip.statusCodes.get(code, "Unknown")
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
    when it has no tag yet (a 100 never gets one).
    """
    response = Response(code, phrase, body)
    for name in _COPIED:
        for value in request.header_fields(name):
            response.add_header(name, value)
    if to_tag is not None and code != 100 and request.has_header("to"):
        to = request.to
        if to.tag is None:
            response.set_header("to", to.with_tag(to_tag).to_string())
    for name, value in headers:
        response.add_header(name, value)
    return response
