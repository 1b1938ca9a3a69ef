# -*- test-case-name: tests.unit.sip.test_locate -*-
"""
Tests for L{conference.sip.locate}: the RFC 3263 plan, fed from a zone
held in a dict.
"""

from __future__ import annotations

from collections import Counter
from typing import Dict, List, Sequence, Tuple, Union

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from conference.sip.locate import (
    NAPTR,
    SRV,
    Address,
    Alias,
    Query,
    Record,
    Resolution,
    Target,
    order_srv,
)
from conference.sip.uri import SIPURI, parse_uri

Zone = Dict[Tuple[str, str], Sequence[Record]]


def sipuri(text: str) -> SIPURI:
    """
    Parse text that must be a SIP URI.
    """
    uri = parse_uri(text)
    assert isinstance(uri, SIPURI)
    return uri


def run(resolution: Resolution, zone: Zone, limit: int = 200) -> Tuple[List[Target], List[Query]]:
    """
    Drive C{resolution} to the end against C{zone}: every target it
    yields, and every query it asked.
    """
    targets: List[Target] = []
    queries: List[Query] = []
    for _ in range(limit):
        step: Union[Query, Target, None] = resolution.next()
        if step is None:
            return targets, queries
        if isinstance(step, Query):
            queries.append(step)
            resolution.answer(list(zone.get((step.name, step.kind), [])))
        else:
            targets.append(step)
    raise AssertionError("the resolution did not end")


def resolve(uri: str, zone: Zone, **kwargs: object) -> List[Target]:
    """
    The targets of C{uri} in C{zone}.
    """
    return run(Resolution(sipuri(uri), **kwargs), zone)[0]  # type: ignore[arg-type]


EXAMPLE: Zone = {
    ("example.com", "NAPTR"): [
        NAPTR(50, 50, "s", "SIPS+D2T", "_sips._tcp.example.com"),
        NAPTR(90, 50, "s", "SIP+D2T", "_sip._tcp.example.com"),
        NAPTR(100, 50, "s", "SIP+D2U", "_sip._udp.example.com"),
    ],
    ("_sips._tcp.example.com", "SRV"): [SRV(0, 0, 5061, "tls.example.com")],
    ("_sip._tcp.example.com", "SRV"): [SRV(0, 0, 5060, "tcp.example.com")],
    ("_sip._udp.example.com", "SRV"): [SRV(0, 0, 5060, "udp.example.com")],
    ("tls.example.com", "A"): [Address("192.0.2.1")],
    ("tcp.example.com", "A"): [Address("192.0.2.2")],
    ("udp.example.com", "A"): [Address("192.0.2.3")],
    ("udp.example.com", "AAAA"): [Address("2001:db8::3")],
}


class PlanTests(SynchronousTestCase):
    """
    The order of lookups and targets of RFC 3263 section 4.
    """

    def test_naptr_order(self) -> None:
        """
        NAPTR records are followed by order, each through its SRV records
        to the addresses, with the TLS name of the URI's domain.
        """
        self.assertEqual(
            resolve("sip:bob@example.com", EXAMPLE),
            [
                Target("tls", "192.0.2.1", 5061, "example.com"),
                Target("tcp", "192.0.2.2", 5060, "example.com"),
                Target("udp", "192.0.2.3", 5060, "example.com"),
                Target("udp", "2001:db8::3", 5060, "example.com"),
            ],
        )

    def test_naptr_preference(self) -> None:
        """
        Within one order, the lower preference comes first.
        """
        zone = dict(EXAMPLE)
        zone[("example.com", "NAPTR")] = [
            NAPTR(10, 20, "s", "SIP+D2T", "_sip._tcp.example.com"),
            NAPTR(10, 10, "s", "SIP+D2U", "_sip._udp.example.com"),
        ]
        targets = resolve("sip:bob@example.com", zone)
        self.assertEqual([t.transport for t in targets], ["udp", "udp", "tcp"])

    def test_sips_only_tls(self) -> None:
        """
        A sips: URI uses only SIPS+D2T records.
        """
        self.assertEqual(
            resolve("sips:bob@example.com", EXAMPLE),
            [Target("tls", "192.0.2.1", 5061, "example.com")],
        )

    def test_transport_param(self) -> None:
        """
        transport= skips NAPTR and asks that transport's SRV name.
        """
        targets, queries = run(Resolution(sipuri("sip:bob@example.com;transport=tcp")), EXAMPLE)
        self.assertEqual(targets, [Target("tcp", "192.0.2.2", 5060, "example.com")])
        self.assertEqual(queries[0], Query("_sip._tcp.example.com", "SRV"))

    def test_unsupported_transports_skipped(self) -> None:
        """
        NAPTR services for transports we do not use are passed over.
        """
        targets = resolve("sip:bob@example.com", EXAMPLE, transports=("udp",))
        self.assertEqual({t.transport for t in targets}, {"udp"})

    def test_no_naptr_srv_each_transport(self) -> None:
        """
        Without NAPTR, each transport's SRV name is asked, in our order.
        """
        zone = {k: v for k, v in EXAMPLE.items() if k[1] != "NAPTR"}
        targets, queries = run(Resolution(sipuri("sip:bob@example.com")), zone)
        self.assertEqual(
            [q.name for q in queries if q.kind == "SRV"],
            ["_sip._udp.example.com", "_sip._tcp.example.com", "_sips._tcp.example.com"],
        )
        self.assertEqual([t.transport for t in targets], ["udp", "udp", "tcp", "tls"])

    def test_no_srv_address(self) -> None:
        """
        Without NAPTR and SRV, the host's addresses on the default port.
        """
        zone: Zone = {("example.org", "A"): [Address("192.0.2.9")]}
        self.assertEqual(
            resolve("sips:bob@example.org", zone), [Target("tls", "192.0.2.9", 5061, "example.org")]
        )
        self.assertEqual(
            resolve("sip:bob@example.org", zone), [Target("udp", "192.0.2.9", 5060, "example.org")]
        )

    def test_explicit_port(self) -> None:
        """
        A port in the URI skips NAPTR and SRV.
        """
        targets, queries = run(Resolution(sipuri("sip:bob@udp.example.com:5070")), EXAMPLE)
        self.assertEqual([q.kind for q in queries], ["A", "AAAA"])
        self.assertEqual(targets[0], Target("udp", "192.0.2.3", 5070, "udp.example.com"))

    def test_numeric_host(self) -> None:
        """
        An IP address needs no DNS at all; maddr overrides the host.
        """
        targets, queries = run(Resolution(sipuri("sip:bob@[2001:db8::1];transport=tcp")), {})
        self.assertEqual(
            (targets, queries), ([Target("tcp", "2001:db8::1", 5060, "2001:db8::1")], [])
        )
        targets = resolve("sip:bob@example.com;maddr=192.0.2.7", {})
        self.assertEqual(targets, [Target("udp", "192.0.2.7", 5060, "example.com")])

    def test_sips_over_udp_refused(self) -> None:
        """
        sips: with transport=udp has no target, and says why.
        """
        resolution = Resolution(sipuri("sips:bob@example.com;transport=udp"))
        self.assertEqual(run(resolution, EXAMPLE)[0], [])
        self.assertIn("sips: over udp is not allowed", resolution.notes)

    def test_srv_dot(self) -> None:
        """
        An SRV target of "." says the service is not offered: no fallback
        to the host's addresses.
        """
        zone: Zone = {
            ("_sip._udp.example.net", "SRV"): [SRV(0, 0, 0, ".")],
            ("example.net", "A"): [Address("192.0.2.5")],
        }
        self.assertEqual(resolve("sip:bob@example.net;transport=udp", zone), [])

    def test_lazy(self) -> None:
        """
        The second SRV target's addresses are looked up only when the
        first target is done with.
        """
        zone: Zone = {
            ("_sip._udp.example.com", "SRV"): [
                SRV(1, 0, 5060, "one.example.com"),
                SRV(2, 0, 5060, "two.example.com"),
            ],
            ("one.example.com", "A"): [Address("192.0.2.1")],
            ("two.example.com", "A"): [Address("192.0.2.2")],
        }
        resolution = Resolution(sipuri("sip:bob@example.com;transport=udp"))
        asked: List[Query] = []
        while True:
            step = resolution.next()
            if isinstance(step, Target):
                break
            assert step is not None
            asked.append(step)
            resolution.answer(list(zone.get((step.name, step.kind), [])))
        self.assertNotIn(Query("two.example.com", "A"), asked)


class BoundsTests(SynchronousTestCase):
    """
    Zones that loop, point at us or are too large end in bounded work.
    """

    def test_cname_loop(self) -> None:
        """
        A CNAME loop ends: no query is asked twice.
        """
        zone: Zone = {
            ("a.example.com", "A"): [Alias("b.example.com")],
            ("b.example.com", "A"): [Alias("a.example.com")],
        }
        resolution = Resolution(sipuri("sip:x@a.example.com:5060"))
        targets, queries = run(resolution, zone)
        self.assertEqual(targets, [])
        self.assertEqual(len(queries), len(set(queries)))
        self.assertTrue(any("loop" in n for n in resolution.notes))

    def test_naptr_loop(self) -> None:
        """
        NAPTR aliases that loop end too.
        """
        zone: Zone = {
            ("example.com", "NAPTR"): [Alias("x.example.com")],
            ("x.example.com", "NAPTR"): [Alias("example.com")],
        }
        targets, queries = run(Resolution(sipuri("sip:x@example.com")), zone)
        self.assertEqual(targets, [])
        self.assertLess(len(queries), 10)

    def test_ourselves_skipped(self) -> None:
        """
        A target that is one of our own addresses is never yielded.
        """
        resolution = Resolution(sipuri("sip:bob@example.com"), own=frozenset({("192.0.2.1", 5061)}))
        targets, _ = run(resolution, EXAMPLE)
        self.assertNotIn(("192.0.2.1", 5061), [(t.host, t.port) for t in targets])
        self.assertTrue(any("this server" in n for n in resolution.notes))

    def test_query_cap(self) -> None:
        """
        At most max_queries queries are made.
        """
        zone: Zone = {
            ("_sip._udp.example.com", "SRV"): [
                SRV(0, 0, 5060, f"h{i}.example.com") for i in range(10)
            ],
        }
        resolution = Resolution(sipuri("sip:x@example.com;transport=udp"), max_queries=5)
        _, queries = run(resolution, zone)
        self.assertEqual(len(queries), 5)

    def test_record_cap(self) -> None:
        """
        Only the first max_records records of an answer are used.
        """
        zone: Zone = {("many.example.com", "A"): [Address(f"192.0.2.{i}") for i in range(1, 60)]}
        resolution = Resolution(sipuri("sip:x@many.example.com:5060"), max_records=4)
        targets, _ = run(resolution, zone)
        self.assertEqual(len(targets), 4)

    def test_target_cap(self) -> None:
        """
        At most max_targets targets are yielded.
        """
        zone: Zone = {("many.example.com", "A"): [Address(f"192.0.2.{i}") for i in range(1, 9)]}
        resolution = Resolution(sipuri("sip:x@many.example.com:5060"), max_targets=3)
        self.assertEqual(len(run(resolution, zone)[0]), 3)

    def test_answer_without_query(self) -> None:
        """
        Answering when no query is pending is a programming error.
        """
        resolution = Resolution(sipuri("sip:x@192.0.2.1"))
        self.assertRaises(ValueError, resolution.answer, [])

    @given(
        st.dictionaries(
            st.tuples(
                st.sampled_from(["example.com", "a.example.com", "_sip._udp.example.com"]),
                st.sampled_from(["NAPTR", "SRV", "A", "AAAA"]),
            ),
            st.lists(
                st.one_of(
                    st.builds(Alias, st.sampled_from(["example.com", "a.example.com"])),
                    st.builds(Address, st.just("192.0.2.1")),
                    st.builds(
                        SRV,
                        st.integers(0, 3),
                        st.integers(0, 3),
                        st.integers(1, 9),
                        st.sampled_from(["a.example.com", "."]),
                    ),
                    st.builds(
                        NAPTR,
                        st.integers(0, 3),
                        st.integers(0, 3),
                        st.sampled_from(["s", "a"]),
                        st.sampled_from(["SIP+D2U", "SIPS+D2T", "E2U+sip"]),
                        st.sampled_from(["_sip._udp.example.com", "example.com", "."]),
                    ),
                ),
                max_size=5,
            ),
        )
    )
    def test_any_zone_ends(self, zone: Zone) -> None:
        """
        Any zone of aliases and records ends within the query cap.
        """
        resolution = Resolution(sipuri("sip:x@example.com"), max_queries=12)
        _, queries = run(resolution, zone)
        self.assertLessEqual(len(queries), 12)
        self.assertEqual(len(queries), len(set(queries)))


class OrderSRVTests(SynchronousTestCase):
    """
    RFC 2782 ordering.
    """

    def test_priority(self) -> None:
        """
        Lower priorities come first whatever the weights.
        """
        records = [SRV(2, 100, 1, "b"), SRV(1, 0, 1, "a"), SRV(3, 5, 1, "c")]
        self.assertEqual([r.target for r in order_srv(records)], ["a", "b", "c"])

    def test_weights(self) -> None:
        """
        Within a priority, records come first in proportion to weight.
        """
        import random

        rng = random.Random(7)
        records = [SRV(0, 80, 1, "heavy"), SRV(0, 20, 1, "light")]
        firsts = Counter(order_srv(records, rng.random)[0].target for _ in range(2000))
        self.assertGreater(firsts["heavy"], 1450)
        self.assertLess(firsts["heavy"], 1750)

    def test_zero_weights(self) -> None:
        """
        All-zero weights keep every record.
        """
        records = [SRV(0, 0, 1, "a"), SRV(0, 0, 2, "b")]
        self.assertEqual(sorted(r.target for r in order_srv(records)), ["a", "b"])

    @given(
        st.lists(
            st.builds(SRV, st.integers(0, 3), st.integers(0, 50), st.integers(1, 9), st.text()),
            max_size=8,
        ),
        st.floats(0, 0.999),
    )
    def test_permutation(self, records: List[SRV], point: float) -> None:
        """
        The order is a permutation sorted by priority.
        """
        ordered = order_srv(records, lambda: point)
        self.assertEqual(Counter(ordered), Counter(records))
        self.assertEqual([r.priority for r in ordered], sorted(r.priority for r in records))
