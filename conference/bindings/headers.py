# -*- test-case-name: tests.unit.bindings.test_headers -*-
"""
The Binding and Accept-Binding header fields of draft-schulzrinne-sip-bind-00
(sections 3 and 4), parsed into values and serialized back.

Both are comma-separated lists; a Binding URI is always written in C{<>} so
that the C{;} and C{,} of C{data:} and C{http:} URIs cannot be mistaken for
header parameters or list separators.  Faults are 400s naming what is
wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import AbstractSet, Dict, FrozenSet, Iterable, List, Optional

from conference.sip.errors import RemoteProtocolError
from conference.sip.headers import (
    MAX_DELTA_SECONDS,
    TOKEN_RE,
    format_params,
    parse_int_header,
    parse_params,
    split_list,
)
from conference.sip.uri import parse_uri

__all__ = [
    "PUBLIC_PARAM",
    "AcceptBinding",
    "BindingValue",
    "format_accept_binding",
    "format_binding",
    "parse_accept_binding",
    "parse_binding",
    "parse_bindings",
]

#: The flag parameter by which an owner marks a binding visible to anyone.
PUBLIC_PARAM = "public"
_KNOWN = ("disposition", "expires", "etag", PUBLIC_PARAM)


def _bad(why: str, what: str = "Binding") -> RemoteProtocolError:
    return RemoteProtocolError(f"Bad {what}: {why}")


@dataclass(frozen=True)
class BindingValue:
    """
    One Binding element.

    @ivar uri: the bound URI as written (without C{<>}); L{None} for the
        disposition-only form (C{;disposition=x} or C{<>;disposition=x})
        that removes every binding of that disposition.
    @ivar disposition: the purpose, lower-cased token.
    @ivar expires: the C{expires} parameter in seconds, or L{None}.
    @ivar etag: the C{etag} parameter (unquoted), or L{None}.
    @ivar public: whether the C{;public} flag is present.
    @ivar params: any other parameters, names lower-cased, in order.
    """

    uri: Optional[str]
    disposition: str
    expires: Optional[int] = None
    etag: Optional[str] = None
    public: bool = False
    params: Dict[str, Optional[str]] = field(default_factory=dict)

    def to_string(self) -> str:
        """
        The wire form (see L{format_binding}).
        """
        return format_binding(self)

    __str__ = to_string


def _check_uri(text: str) -> None:
    if not text or text != text.strip() or " " in text or "\t" in text:
        raise _bad("whitespace inside <>" if text else "empty <> with a URI expected")
    try:
        parse_uri(text)
    except RemoteProtocolError as e:
        raise _bad(e.reason) from None


def _parse_one(element: str) -> BindingValue:
    v = element.strip(" \t")
    uri: Optional[str]
    if v.startswith("<"):
        gt = v.find(">")
        if gt < 0:
            raise _bad("missing '>'")
        inner = v[1:gt]
        rest = v[gt + 1 :]
        if inner:
            _check_uri(inner)
            uri = inner
        else:
            uri = None
    elif v.startswith(";"):
        uri, rest = None, v
    else:
        raise _bad("the URI must be enclosed in <>")
    params = parse_params(rest, "Binding")
    disposition = params.pop("disposition", None)
    if disposition is None:
        raise _bad("missing disposition parameter")
    if not TOKEN_RE.fullmatch(disposition):
        raise _bad("disposition is not a token")
    if disposition == "*":
        raise _bad("'*' is not a disposition")
    expires: Optional[int] = None
    if "expires" in params:
        text = params.pop("expires")
        if text is None:
            raise _bad("expires without a value")
        expires = parse_int_header(text, "Binding expires", MAX_DELTA_SECONDS)
    if "etag" in params and not params["etag"]:
        raise _bad("etag without a value")
    etag = params.pop("etag", None)
    public = PUBLIC_PARAM in params
    if public and params.pop(PUBLIC_PARAM) is not None:
        raise _bad("public is a flag and takes no value")
    return BindingValue(uri, disposition.lower(), expires, etag, public, params)


def parse_binding(value: str) -> List[BindingValue]:
    """
    Parse one Binding field value (one or more comma-separated elements).

    @raise RemoteProtocolError: 400 naming the fault (URI not in C{<>},
        bad URI, missing or non-token disposition, bad expires, repeated
        or malformed parameters).
    """
    elements = split_list(value)
    if not elements:
        raise _bad("empty value")
    return [_parse_one(e) for e in elements]


def parse_bindings(fields: Iterable[str]) -> List[BindingValue]:
    """
    Parse every Binding field of a message, in order.

    @raise RemoteProtocolError: as L{parse_binding}.
    """
    out: List[BindingValue] = []
    for value in fields:
        out.extend(parse_binding(value))
    return out


def format_binding(value: BindingValue) -> str:
    """
    Serialize a binding: C{<uri>;disposition=d[;expires=n][;etag=e][;public]}
    then other parameters; the disposition-only form is written as the
    draft does, omitting the URI: C{;disposition=d}.
    """
    params: Dict[str, Optional[str]] = {"disposition": value.disposition}
    if value.expires is not None:
        params["expires"] = str(value.expires)
    if value.etag is not None:
        params["etag"] = value.etag
    if value.public:
        params[PUBLIC_PARAM] = None
    for name, pvalue in value.params.items():
        if name not in _KNOWN:
            params[name] = pvalue
    head = f"<{value.uri}>" if value.uri is not None else ""
    return head + format_params(params)


# Accept-Binding -------------------------------------------------------------


@dataclass(frozen=True)
class AcceptBinding:
    """
    What an Accept-Binding says: any disposition (C{*}), or exactly the
    listed ones (none for an empty value).
    """

    dispositions: FrozenSet[str] = frozenset()
    any: bool = False

    @classmethod
    def of(cls, dispositions: Optional[AbstractSet[str]]) -> AcceptBinding:
        """
        From a set of dispositions; L{None} or a set holding C{*} means any.
        """
        if dispositions is None or "*" in dispositions:
            return cls(frozenset(), True)
        return cls(frozenset(d.lower() for d in dispositions))

    def accepts(self, disposition: str) -> bool:
        """
        Whether C{disposition} is acceptable.
        """
        return self.any or disposition.lower() in self.dispositions

    def __str__(self) -> str:
        return format_accept_binding(self)


def parse_accept_binding(fields: Iterable[str]) -> AcceptBinding:
    """
    Parse the Accept-Binding fields of a message; fields that are present but
    empty mean nothing is accepted.

    @raise RemoteProtocolError: 400 if an element is not a token or C{*}
        is mixed with dispositions.
    """
    elements: List[str] = []
    for value in fields:
        elements.extend(split_list(value))
    if "*" in elements:
        if len(elements) > 1:
            raise _bad("'*' mixed with dispositions", "Accept-Binding")
        return AcceptBinding(frozenset(), True)
    for e in elements:
        if not TOKEN_RE.fullmatch(e):
            raise _bad(f"{e[:40]!r} is not a disposition", "Accept-Binding")
    return AcceptBinding(frozenset(e.lower() for e in elements))


def format_accept_binding(accept: AcceptBinding) -> str:
    """
    Serialize an Accept-Binding value: C{*}, the dispositions sorted and
    comma-separated, or the empty string.
    """
    if accept.any:
        return "*"
    return ", ".join(sorted(accept.dispositions))
