# -*- test-case-name: tests.loopback.test_dns -*-
"""
The DNS side of RFC 3263: answers the L{conference.sip.locate.Query}s of a
resolution with C{twisted.names}, turning its records into the plain ones
the planner reads.  A failed lookup (no such name, a timeout, a refusal)
answers as no records, so the plan moves on to what comes next.
"""

from __future__ import annotations

import errno
import socket
from typing import Any, Callable, List, Optional, Sequence, Tuple

from twisted.internet import base, error, udp
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorFDSet, IResolver
from twisted.logger import Logger
from twisted.names import client, dns, hosts, resolve

from conference.sip.locate import NAPTR, SRV, Address, Alias, Query, Record

log = Logger()

#: The seconds of each try of one query (twisted.names retries after
#: each), so one query takes at most their sum.
DEFAULT_TIMEOUT: Tuple[int, ...] = (1, 3)


def parse_resolver(text: str) -> Tuple[str, int]:
    """
    C{--resolver}: C{HOST}, C{HOST:PORT} or C{[IPv6]:PORT}.

    @raise ValueError: naming what is wrong.
    """
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
        if rest and not rest.startswith(":"):
            raise ValueError(f"bad resolver address {text!r}")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    if not host:
        raise ValueError(f"bad resolver address {text!r}: no host")
    try:
        port = int(port_text) if port_text else 53
    except ValueError:
        raise ValueError(f"bad resolver port in {text!r}") from None
    if not 0 < port < 65536:
        raise ValueError(f"bad resolver port in {text!r}")
    return host, port


def make_resolver(server: Optional[Tuple[str, int]], reactor: Any) -> IResolver:
    """
    A resolver asking C{server} (host, port), or the system's name
    servers (C{/etc/resolv.conf}, C{/etc/hosts}) when L{None}.
    """
    if server is None:
        chain = [hosts.Resolver(), QuietResolver(resolv="/etc/resolv.conf", reactor=reactor)]
        return resolve.ResolverChain(chain)
    return QuietResolver(servers=[server], reactor=reactor)


class _QuietUDPPort(udp.Port):
    """
    A UDP port that does not log its opening and closing: C{twisted.names}
    opens one per query (a random source port each, against spoofed
    answers), and two log lines per query would drown the server's own.
    """

    def _bindSocket(self) -> None:
        try:
            skt = self.createInternetSocket()
            skt.bind((self.interface, self.port))
        except OSError as e:
            raise error.CannotListenError(self.interface, self.port, e) from e
        self._realPortNumber = skt.getsockname()[1]
        self.connected = 1
        self.socket = skt
        self.fileno = skt.fileno  # type: ignore[method-assign]

    def connectionLost(self, reason: Any = None) -> None:
        self._realPortNumber = None
        self.maxThroughput = -1
        base.BasePort.connectionLost(self, reason)
        self.protocol.doStop()
        self.socket.close()
        del self.socket
        del self.fileno
        if hasattr(self, "d"):
            self.d.callback(None)
            del self.d


class QuietResolver(client.Resolver):
    """
    C{twisted.names}' resolver, with its per-query UDP ports and protocols
    kept out of the log (on reactors with file descriptors; others get the
    stock ports).
    """

    def _connectedProtocol(self, interface: str = "") -> dns.DNSDatagramProtocol:
        if not IReactorFDSet.providedBy(self._reactor):
            return super()._connectedProtocol(interface)  # type: ignore[no-any-return]
        protocol = dns.DNSDatagramProtocol(self, reactor=self._reactor)
        protocol.noisy = False
        for _ in range(100):
            port = _QuietUDPPort(dns.randomSource(), protocol, interface, reactor=self._reactor)
            try:
                port.startListening()
            except error.CannotListenError as e:
                if getattr(e.socketError, "errno", None) == errno.EMFILE:
                    raise
                continue
            return protocol
        raise error.CannotListenError(interface, 0, OSError("no free source port for DNS"))


#: The IResolver method of each query type.
_METHODS = {
    "NAPTR": "lookupNamingAuthorityPointer",
    "SRV": "lookupService",
    "A": "lookupAddress",
    "AAAA": "lookupIPV6Address",
}


class DNSLookup:
    """
    Answers planner queries through an L{IResolver}, made on first use (the
    system's resolver re-reads C{/etc/resolv.conf} on a timer once made).
    """

    def __init__(
        self, make: Callable[[], IResolver], *, timeout: Sequence[int] = DEFAULT_TIMEOUT
    ) -> None:
        self._make = make
        self._resolver: Optional[IResolver] = None
        self.timeout = tuple(timeout)

    def _method(self, kind: str) -> Callable[..., Deferred[Any]]:
        if self._resolver is None:
            self._resolver = self._make()
        method: Callable[..., Deferred[Any]] = getattr(self._resolver, _METHODS[kind])
        return method

    async def query(self, query: Query) -> List[Record]:
        """
        The records answering C{query}; none when the lookup failed.
        """
        try:
            answers, _, _ = await self._method(query.kind)(query.name, self.timeout)
        except dns.DomainError:
            return []
        except Exception as e:
            log.info(
                "DNS {kind} {name} failed: {why}",
                kind=query.kind,
                name=query.name,
                why=str(e) or type(e).__name__,
            )
            return []
        return convert(answers)


def convert(answers: Sequence[dns.RRHeader]) -> List[Record]:
    """
    The planner's records from C{twisted.names} answers (other types are
    left out).
    """
    out: List[Record] = []
    for header in answers:
        payload = header.payload
        if isinstance(payload, dns.Record_NAPTR):
            out.append(
                NAPTR(
                    payload.order,
                    payload.preference,
                    _text(payload.flags),
                    _text(payload.service),
                    _text(payload.replacement.name),
                )
            )
        elif isinstance(payload, dns.Record_SRV):
            out.append(
                SRV(payload.priority, payload.weight, payload.port, _text(payload.target.name))
            )
        elif isinstance(payload, dns.Record_A):
            out.append(Address(socket.inet_ntop(socket.AF_INET, payload.address)))
        elif isinstance(payload, dns.Record_AAAA):
            out.append(Address(socket.inet_ntop(socket.AF_INET6, payload.address)))
        elif isinstance(payload, dns.Record_CNAME):
            out.append(Alias(_text(payload.name.name)))
    return out


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    return str(value)


__all__ = [
    "DEFAULT_TIMEOUT",
    "DNSLookup",
    "QuietResolver",
    "convert",
    "make_resolver",
    "parse_resolver",
]
