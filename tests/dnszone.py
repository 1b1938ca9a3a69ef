# -*- test-case-name: tests.loopback.test_outbound,tests.unit.transport.test_outbound -*-
"""
A DNS zone for the tests of RFC 3263 resolution: held in memory and read
afresh at each query, served by C{twisted.names} on loopback in the
loopback tests, or asked directly as an C{IResolver} where no socket may
be opened.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List

from twisted.names import authority, common, dns


class LiveZone(authority.FileAuthority):
    """
    A zone held in memory (FileAuthority without its file), read afresh
    from C{records} at each query so a test can change it.
    """

    def __init__(self, origin: str, records: Callable[[], Dict[str, List[Any]]]) -> None:
        common.ResolverBase.__init__(self)
        self.origin = origin.encode()
        self.source = records
        self.soa = (self.origin, dns.Record_SOA(mname=b"ns." + self.origin))  # type: ignore[assignment]

    def _lookup(self, name: Any, cls: Any, type: Any, timeout: Any = None) -> Any:
        records = {k.lower().encode(): list(v) for k, v in self.source().items()}
        records.setdefault(self.origin, []).append(self.soa[1])  # type: ignore[index]
        self.records = records  # type: ignore[assignment]
        return super()._lookup(name, cls, type, timeout)


def naptr(order: int, pref: int, service: str, replacement: str) -> Any:
    """
    A NAPTR record of a SIP service.
    """
    return dns.Record_NAPTR(order, pref, b"s", service.encode(), b"", replacement.encode())


def srv(priority: int, weight: int, port: int, target: str) -> Any:
    """
    An SRV record.
    """
    return dns.Record_SRV(priority, weight, port, target.encode())
