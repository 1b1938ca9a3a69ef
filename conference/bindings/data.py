# -*- test-case-name: tests.unit.bindings.test_data -*-
"""
Inline binding data (draft-schulzrinne-sip-bind-00 section 1): C{data:} URIs
(RFC 2397) and C{cid:} URIs (RFC 2392) naming a part of the BIND's
multipart body.

Both end up as bytes plus a media type, stored with the binding and handed
back as a C{data:} URI, so the server never has to keep a body around; a
size cap keeps BIND from becoming free storage.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Optional
from urllib.parse import quote, unquote_to_bytes

from conference.sip.errors import RemoteProtocolError
from conference.sip.headers import MediaType, format_params, parse_media_type
from conference.sip.multipart import Multipart, find_content_id, parse_multipart

__all__ = [
    "DEFAULT_MAX_DATA",
    "InlineData",
    "body_multipart",
    "build_data_uri",
    "data_too_large",
    "is_cid_uri",
    "is_data_uri",
    "is_inline",
    "parse_data_uri",
    "resolve_cid",
    "resolve_inline",
]

DEFAULT_MAX_DATA = 8192
_DEFAULT_TYPE = "text/plain;charset=US-ASCII"
_BAD_ESCAPE_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Left unescaped in the data part: RFC 3986 unreserved plus sub-delims that
# neither a Binding header (<>, ",") nor a URI parser treats specially.
_SAFE = "-_.!~*'()/:@&=+$;"


@dataclass(frozen=True)
class InlineData:
    """
    Inline content.

    @ivar content_type: its media type with parameters, normalised
        (C{text/plain;charset=US-ASCII} when the URI named none).
    @ivar data: the decoded bytes.
    """

    content_type: str
    data: bytes


def data_too_large(limit: int) -> RemoteProtocolError:
    """
    The refusal for inline data over C{limit} bytes: 413, as for a body the
    server will not take.
    """
    return RemoteProtocolError(f"Binding data larger than {limit} bytes", 413)


def _bad(uri: str, why: str) -> RemoteProtocolError:
    shown = uri if len(uri) <= 40 else uri[:37] + "..."
    return RemoteProtocolError(f"Bad Binding: {shown!r}: {why}")


def is_data_uri(uri: str) -> bool:
    """
    Whether C{uri} is a C{data:} URI (scheme in any case).
    """
    return uri[:5].lower() == "data:"


def is_cid_uri(uri: str) -> bool:
    """
    Whether C{uri} is a C{cid:} URI (scheme in any case).
    """
    return uri[:4].lower() == "cid:"


def is_inline(uri: str) -> bool:
    """
    Whether C{uri} carries inline data (C{data:} or C{cid:}).
    """
    return is_data_uri(uri) or is_cid_uri(uri)


def _media_type(text: str, uri: str) -> str:
    if not text:
        return _DEFAULT_TYPE
    if text.startswith(";"):
        text = "text/plain" + text
    try:
        media = parse_media_type(text)
    except RemoteProtocolError as e:
        raise _bad(uri, e.reason) from None
    return str(media)


def parse_data_uri(uri: str, *, max_size: int = DEFAULT_MAX_DATA) -> InlineData:
    """
    Decode C{data:[<mediatype>][;base64],<data>} (RFC 2397); %-escapes are
    undone in the media type and the data, then base64 if flagged.

    @raise RemoteProtocolError: 400 naming the fault (no comma, bad escape,
        bad base64, bad media type); 413 (L{data_too_large}) when the data
        is over C{max_size} bytes, checked before decoding as well.
    """
    if not is_data_uri(uri):
        raise _bad(uri, "not a data: URI")
    head, comma, payload = uri[5:].partition(",")
    if not comma:
        raise _bad(uri, "data: URI without ','")
    if _BAD_ESCAPE_RE.search(uri):
        raise _bad(uri, "bad %-escape")
    # Base64 inflates by 4/3 and escapes by 3: anything longer cannot fit.
    if len(payload) > 4 * max_size + 16:
        raise data_too_large(max_size)
    encoded = head.lower().endswith(";base64")
    if encoded:
        head = head[: -len(";base64")]
    try:
        mediatype = unquote_to_bytes(head).decode("utf-8")
    except UnicodeDecodeError:
        raise _bad(uri, "media type is not UTF-8") from None
    content_type = _media_type(mediatype, uri)
    raw = unquote_to_bytes(payload)
    if encoded:
        try:
            raw = base64.b64decode(b"".join(raw.split()), validate=True)
        except (binascii.Error, ValueError):
            raise _bad(uri, "invalid base64") from None
    if len(raw) > max_size:
        raise data_too_large(max_size)
    return InlineData(content_type, raw)


def _printable(data: bytes) -> bool:
    return all(0x20 <= b < 0x7F for b in data)


def build_data_uri(content_type: Optional[str], data: bytes) -> str:
    """
    Build a C{data:} URI for C{data}: %-encoded when it is printable ASCII
    text, base64 otherwise; the media type's parameters are %-encoded where
    needed so the URI holds no quotes, spaces, commas or angle brackets.
    """
    media: MediaType
    try:
        media = parse_media_type(content_type or _DEFAULT_TYPE)
    except RemoteProtocolError:
        media = parse_media_type("application/octet-stream")
    params = format_params(dict(media.params))
    head = quote(media.mime + params, safe="/;=-_.!~*'+")
    if media.type == "text" and _printable(data):
        return f"data:{head},{quote(data, safe=_SAFE)}"
    return f"data:{head};base64,{base64.b64encode(data).decode('ascii')}"


def resolve_cid(
    uri: str, body: Optional[Multipart], *, max_size: int = DEFAULT_MAX_DATA
) -> InlineData:
    """
    Find the part of C{body} whose Content-ID C{uri} (C{cid:...}, RFC 2392:
    %-escapes undone, no angle brackets) names, with its transfer encoding
    undone.

    @raise RemoteProtocolError: 400 if there is no multipart body or no such
        part; 413 (L{data_too_large}) if the part is over C{max_size} bytes.
    """
    if not is_cid_uri(uri):
        raise _bad(uri, "not a cid: URI")
    try:
        content_id = unquote_to_bytes(uri[4:]).decode("utf-8")
    except UnicodeDecodeError:
        raise _bad(uri, "Content-ID is not UTF-8") from None
    if not content_id:
        raise _bad(uri, "empty cid: URI")
    if body is None:
        raise _bad(uri, "cid: URI but the BIND has no multipart body")
    part = find_content_id(body, content_id)
    if part is None:
        raise _bad(uri, "names no part of the body")
    if len(part.body) > 4 * max_size + 16:
        raise data_too_large(max_size)
    data = part.decoded()
    if len(data) > max_size:
        raise data_too_large(max_size)
    return InlineData(part.content_type, data)


def resolve_inline(
    uri: str, body: Optional[Multipart], *, max_size: int = DEFAULT_MAX_DATA
) -> Optional[InlineData]:
    """
    The inline data a Binding URI carries (C{data:} or C{cid:}), or L{None}
    for any other URI.

    @raise RemoteProtocolError: as L{parse_data_uri} and L{resolve_cid}.
    """
    if is_data_uri(uri):
        return parse_data_uri(uri, max_size=max_size)
    if is_cid_uri(uri):
        return resolve_cid(uri, body, max_size=max_size)
    return None


def body_multipart(
    content_type: Optional[MediaType], body: bytes, *, max_size: int = 4 * DEFAULT_MAX_DATA
) -> Optional[Multipart]:
    """
    The BIND's body as a multipart, for C{cid:} URIs to point into, or
    L{None} when the body is not multipart (or empty).

    @raise RemoteProtocolError: as L{parse_multipart}.
    """
    if content_type is None or content_type.type != "multipart" or not body:
        return None
    return parse_multipart(body, content_type, max_size=max_size)
