# -*- test-case-name: tests.unit.sip.test_via,tests.unit.sip.test_headers -*-
"""
One Via header value (RFC 3261 section 20.42), as plain data.

It has the attributes of L{twisted.protocols.sip.Via}, so code written for
Twisted's SIP classes reads it the same way, but it is our own class:
importing C{twisted.protocols.sip} installs the default reactor, which the
sans-I/O core must never do (see the architecture document).  Parsing and
serializing are L{parse_via} and L{format_via}, here.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Dict, List, Optional, Union

from conference.sip.errors import RemoteProtocolError
from conference.sip.headers import (
    SIMPLE_PARAMS,
    TOKEN_RE,
    bad_header,
    format_params,
    scan_params,
    simple_params,
)
from conference.sip.uri import parse_host

_TOKEN = TOKEN_RE.pattern


class Via:
    """
    A Via: transport, sent-by and parameters.

    @ivar transport: C{"UDP"}, C{"TCP"}, C{"TLS"}, ... (upper case when
        parsed).
    @ivar host: the sent-by host as written (IPv6 references keep their
        brackets).
    @ivar port: the sent-by port, L{None} when the sent-by has none.
    @ivar branch: the C{branch} parameter, or L{None}.
    @ivar received: the C{received} parameter, or L{None}.
    @ivar rportRequested: whether C{rport} came without a value (RFC 3581:
        the client asks for it).
    @ivar rportValue: the value of C{rport}, or L{None}.
    @ivar maddr: the C{maddr} parameter, or L{None}.
    @ivar ttl: the C{ttl} parameter, or L{None}.
    @ivar hidden: whether the obsolete C{hidden} parameter is present.
    @ivar otherParams: any other parameters, in order (value L{None} for a
        parameter without one).
    """

    # Slots: a busy server holds the Vias of tens of thousands of messages.
    __slots__ = (
        "branch",
        "hidden",
        "host",
        "maddr",
        "otherParams",
        "port",
        "received",
        "rportRequested",
        "rportValue",
        "transport",
        "ttl",
    )

    def __init__(
        self,
        host: str,
        port: Optional[int] = None,
        transport: str = "UDP",
        *,
        branch: Optional[str] = None,
        received: Optional[str] = None,
        rport_requested: bool = False,
        rport: Optional[int] = None,
        maddr: Optional[str] = None,
        ttl: Optional[int] = None,
        hidden: bool = False,
        other: Optional[Dict[str, Optional[str]]] = None,
    ) -> None:
        self.transport = transport
        self.host = host
        self.port = port
        self.branch = branch
        self.received = received
        self.rportRequested = rport_requested
        self.rportValue = rport
        self.maddr = maddr
        self.ttl = ttl
        self.hidden = hidden
        self.otherParams: Dict[str, Optional[str]] = dict(other) if other else {}

    @property
    def rport(self) -> Union[bool, int, None]:
        """
        C{rport} as Twisted's Via reports it: C{True} when requested
        without a value, else the value or L{None}.  Setting it records the
        port a request came from (RFC 3581 section 4), as Twisted does.
        """
        if self.rportRequested:
            return True
        return self.rportValue

    @rport.setter
    def rport(self, port: int) -> None:
        self.rportValue = port
        self.rportRequested = False

    def copy(self) -> Via:
        """
        An independent copy (its C{otherParams} too), to change where this
        one must stay as it is (a message's remembered Vias).
        """
        other = Via.__new__(Via)
        for name in Via.__slots__:
            setattr(other, name, getattr(self, name))
        other.otherParams = dict(self.otherParams)
        return other

    def toString(self) -> str:
        """
        The wire form (Twisted's spelling of
        L{format_via}).
        """
        return format_via(self)

    def __repr__(self) -> str:
        return f"<Via {self.toString()}>"


_VIA_RE = re.compile(
    rf"[ \t]*({_TOKEN})[ \t]*/[ \t]*({_TOKEN})[ \t]*/[ \t]*({_TOKEN})[ \t]+"
    r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-.]+)(?:[ \t]*:[ \t]*([0-9]+))?"
)
_FAST_VIA_RE = re.compile(
    rf"SIP/2\.0/({_TOKEN}) ([A-Za-z0-9\-.]+)(?::([0-9]{{1,5}}))?({SIMPLE_PARAMS})"
)


# Via ------------------------------------------------------------------------


def _valid_address(text: str) -> bool:
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _make_via(
    transport: str, host: str, port: Optional[int], params: Dict[str, Optional[str]]
) -> Via:
    via = Via(host, port, transport)
    other: Dict[str, Optional[str]] = {}
    for name, value in params.items():
        if name == "branch":
            if value is None or not TOKEN_RE.fullmatch(value):
                raise bad_header("Via", "branch is not a token")
            via.branch = value
        elif name == "received":
            if value is None or not _valid_address(value):
                raise bad_header("Via", "received is not an IP address")
            via.received = value
        elif name == "rport":
            if value is None:
                via.rportRequested = True
            elif value.isdigit() and len(value) <= 5 and 0 < int(value) <= 65535:
                via.rportValue = int(value)
            else:
                raise bad_header("Via", "rport is not a port")
        elif name == "maddr":
            if value is None:
                raise bad_header("Via", "maddr without a value")
            try:
                parse_host(value)
            except RemoteProtocolError:
                raise bad_header("Via", "maddr is not a host") from None
            via.maddr = value
        elif name == "ttl":
            if value is None or not (value.isdigit() and len(value) <= 3 and int(value) <= 255):
                raise bad_header("Via", "ttl is not 0..255")
            via.ttl = int(value)
        elif name == "hidden":
            via.hidden = True
        else:
            other[name] = value
    via.otherParams = other
    return via


def _fast_via(value: str) -> Optional[Via]:
    """
    A single Via as almost every peer writes it (C{SIP/2.0/UDP host:port}
    then plain token parameters) parsed by one match, the same as
    L{parse_via} parses it; L{None} for anything else.
    """
    m = _FAST_VIA_RE.fullmatch(value)
    if m is None:
        return None
    transport, host, port_text, param_text = m.groups()
    params = simple_params(param_text)
    if params is None:
        return None
    return _make_via(transport.upper(), host, _sent_by_port(host, port_text), params)


def _sent_by_port(host: str, port_text: Optional[str]) -> Optional[int]:
    """
    The port of a sent-by (L{None} when absent), once its host and port
    are checked.
    """
    try:
        parse_host(host)
    except RemoteProtocolError:
        raise bad_header("Via", f"bad sent-by host {host!r}") from None
    if port_text is None:
        return None
    if len(port_text) > 5 or int(port_text) > 65535:
        raise bad_header("Via", "sent-by port out of range")
    return int(port_text)


def parse_via(value: str) -> List[Via]:
    """
    Parse one Via field value, which may hold several comma-separated vias.

    Each is a L{Via} whose C{port} is L{None} when the
    sent-by has none (Twisted would assume 5060), whose C{transport} is
    upper-cased and whose C{host} keeps IPv6 brackets; C{branch},
    C{received}, C{rport}, C{maddr} and C{ttl} are checked and unknown
    parameters go to C{otherParams} in order.

    @raise RemoteProtocolError: naming the fault.
    """
    fast = _fast_via(value)
    if fast is not None:
        return [fast]
    return _general_vias(value)


def _general_vias(value: str) -> List[Via]:
    """
    L{parse_via}, every form.
    """
    vias: List[Via] = []
    pos = 0
    n = len(value)
    while True:
        m = _VIA_RE.match(value, pos)
        if m is None:
            raise bad_header("Via", f"malformed sent-protocol or sent-by {value[pos:][:40]!r}")
        name, version, transport, host, port_text = m.groups()
        if name.upper() != "SIP" or version != "2.0":
            raise bad_header("Via", f"sent-protocol {name}/{version} is not SIP/2.0")
        port = _sent_by_port(host, port_text)
        params, pos = scan_params(value, m.end(), "Via")
        vias.append(_make_via(transport.upper(), host, port, params))
        while pos < n and value[pos] in " \t":
            pos += 1
        if pos == n:
            return vias
        if value[pos] != ",":
            raise bad_header("Via", f"junk after via {value[pos:][:40]!r}")
        pos += 1


def format_via(via: Via) -> str:
    """
    Serialize a Via: unlike Twisted's C{toString} this omits an absent port
    and keeps unknown parameters in order and quoted where needed.
    """
    out = f"SIP/2.0/{via.transport} {via.host}"
    if via.port is not None:
        out += f":{via.port}"
    params: Dict[str, Optional[str]] = {}
    if via.branch is not None:
        params["branch"] = str(via.branch)
    if via.received is not None:
        params["received"] = str(via.received)
    if via.rportRequested:
        params["rport"] = None
    elif via.rportValue is not None:
        params["rport"] = str(via.rportValue)
    if via.maddr is not None:
        params["maddr"] = str(via.maddr)
    if via.ttl is not None:
        params["ttl"] = str(via.ttl)
    if via.hidden:
        params["hidden"] = None
    for name, value in via.otherParams.items():
        params[str(name)] = None if value is None else str(value)
    return out + format_params(params)


# A bare rport parameter (RFC 3581: no value yet) in a Via field.
_BARE_RPORT_RE = re.compile(r";[ \t]*rport(?=[ \t]*(?:;|$))", re.IGNORECASE)


def with_received(field: str, host: str, port: Optional[int]) -> Optional[str]:
    """
    The text of a one-value Via field with C{received=host} and, when
    C{port} is given, its bare C{rport} set to C{port} (RFC 3261 section
    18.2.1, RFC 3581 section 4), edited in place rather than written out
    again: C{received} goes just before C{rport}, or last.  L{None} when
    the field is not that plain (several values, a quoted string, a
    C{received} already, no bare C{rport} to fill or more than one); the
    caller then rewrites it from the parsed L{Via}.
    """
    lowered = field.lower()
    if "," in field or '"' in field or "received" in lowered:
        return None
    received = ";received=" + host
    if port is None:
        return field.rstrip(" \t") + received
    edited, spots = _BARE_RPORT_RE.subn(f"{received};rport={port}", field)
    if spots != 1 or lowered.count("rport") != 1:
        return None
    return edited
