# -*- test-case-name: tests.unit.sip.test_via,tests.unit.sip.test_headers -*-
"""
One Via header value (RFC 3261 section 20.42), as plain data.

It has the attributes of L{twisted.protocols.sip.Via}, so code written for
Twisted's SIP classes reads it the same way, but it is our own class:
importing C{twisted.protocols.sip} installs the default reactor, which the
sans-I/O core must never do (see the architecture document).  Parsing and
serializing are L{conference.sip.headers.parse_via} and C{format_via}.
"""

from __future__ import annotations

from typing import Dict, Optional, Union


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

    def toString(self) -> str:
        """
        The wire form (Twisted's spelling of
        L{conference.sip.headers.format_via}).
        """
        from conference.sip.headers import format_via

        return format_via(self)

    def __repr__(self) -> str:
        return f"<Via {self.toString()}>"
