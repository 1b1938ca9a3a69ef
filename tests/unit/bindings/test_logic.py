# -*- test-case-name: tests.unit.bindings.test_logic -*-
"""
Tests for L{conference.bindings.logic}.
"""

from __future__ import annotations

import itertools
from typing import AbstractSet, Callable, Optional, Sequence

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from conference.bindings.access import CONFERENCE, SENT_BY, Owner
from conference.bindings.headers import parse_bindings
from conference.bindings.logic import (
    _FORMATTED,
    DEFAULT_DISPOSITIONS,
    FORMATTED_MAX,
    STABLE_MARGIN,
    BindingPolicy,
    BindingRefused,
    BindPlan,
    accepted_dispositions,
    binding_headers,
    format_record,
    headers_stable_until,
    interval_too_brief,
    limit_refusal,
    plan_bind,
    plan_query,
    random_etag,
    record_value,
    update_answer,
    without_one_time,
)
from conference.records import BindingRecord
from conference.sip.errors import RemoteProtocolError
from conference.sip.multipart import BodyPart, Multipart, build_multipart, parse_multipart

NOW = 1_000_000.0
ALICE = "sip:alice@example.com"
BOB = "sip:bob@example.com"
ADMIN = "sip:admin@example.com"
CONF = Owner("sip:conf-1@example.com", CONFERENCE, organizer=ALICE, attendees=frozenset({BOB}))
USER = Owner(ALICE)
POLICY = BindingPolicy(min_expires=60, default_expires=3600, max_expires=86400, max_bindings=4)


def etags() -> Callable[[], str]:
    """
    A deterministic etag factory: e1, e2, ...
    """
    counter = itertools.count(1)
    return lambda: f"e{next(counter)}"


def existing(
    disposition: str,
    uri: str,
    expires_at: float = NOW + 100,
    *,
    public: bool = False,
    one_time: bool = False,
) -> BindingRecord:
    """
    A stored binding of the conference.
    """
    return BindingRecord(
        CONF.uri,
        disposition,
        uri,
        expires_at,
        "old",
        one_time=one_time,
        issuer=ALICE,
        public=public,
        created=1.0,
    )


def plan(
    *fields: str,
    current: Sequence[BindingRecord] = (),
    owner: Owner = CONF,
    issuer: str = ALICE,
    policy: BindingPolicy = POLICY,
    owner_dispositions: Optional[AbstractSet[str]] = None,
    body: Optional[Multipart] = None,
) -> BindPlan:
    """
    Plan a BIND carrying the Binding fields C{fields}.
    """
    return plan_bind(
        parse_bindings(fields),
        current,
        owner=owner,
        issuer=issuer,
        now=NOW,
        policy=policy,
        owner_dispositions=owner_dispositions,
        body=body,
        new_etag=etags(),
    )


class AddTests(SynchronousTestCase):
    """
    Adding and refreshing bindings.
    """

    def test_add(self) -> None:
        """
        A new binding gets the default lifetime, a new etag, its issuer.
        """
        p = plan("<http://floor.example.com/1>;disposition=conference")
        self.assertEqual(p.removals, ())
        self.assertEqual(
            p.upserts,
            (
                BindingRecord(
                    CONF.uri,
                    "conference",
                    "http://floor.example.com/1",
                    NOW + 3600,
                    "e1",
                    issuer=ALICE,
                    created=NOW,
                ),
            ),
        )
        self.assertEqual(p.bindings, p.upserts)
        self.assertTrue(p.changes)

    def test_clamp(self) -> None:
        """
        A lifetime over the maximum is cut to it; one within is kept.
        """
        p = plan(
            "<http://a>;disposition=web;expires=999999", "<http://b>;disposition=web;expires=120"
        )
        self.assertEqual([r.expires_at - NOW for r in p.upserts], [86400, 120])

    def test_tooBrief(self) -> None:
        """
        A lifetime under the minimum is a 423 with Min-Expires.
        """
        e = self.assertRaises(RemoteProtocolError, plan, "<http://a>;disposition=web;expires=59")
        self.assertEqual((e.status, e.headers), (423, [("Min-Expires", "60")]))
        self.assertEqual(interval_too_brief(60).headers, e.headers)

    def test_oneTime(self) -> None:
        """
        expires=1 makes a one-time binding living the default lifetime.
        """
        [record] = plan("<http://a>;disposition=boot;expires=1").upserts
        self.assertTrue(record.one_time)
        self.assertEqual(record.expires_at, NOW + 3600)
        self.assertEqual(record_value(record, NOW).expires, 1)

    def test_refreshKeepsEtag(self) -> None:
        """
        Refreshing an unchanged binding keeps its etag and creation time.
        """
        [record] = plan(
            "<http://a>;disposition=web;expires=600", current=[existing("web", "http://a")]
        ).upserts
        self.assertEqual((record.etag, record.created, record.expires_at), ("old", 1.0, NOW + 600))

    def test_changeNewEtag(self) -> None:
        """
        A binding that changes (made public) gets a new etag; an etag the
        issuer gives is kept as theirs.
        """
        current = [existing("web", "http://a")]
        [record] = plan("<http://a>;disposition=web;public", current=current).upserts
        self.assertEqual((record.etag, record.public), ("e1", True))
        [record] = plan("<http://a>;disposition=web;etag=v7", current=current).upserts
        self.assertEqual(record.etag, "v7")

    def test_query(self) -> None:
        """
        No Binding values plan nothing and report the live bindings.
        """
        live = existing("web", "http://a")
        p = plan(current=[live, existing("web", "http://old", expires_at=NOW)])
        self.assertFalse(p.changes)
        self.assertEqual(p.bindings, (live,))

    def test_randomEtag(self) -> None:
        """
        The default etag factory makes distinct tokens.
        """
        self.assertNotEqual(random_etag(), random_etag())


class RemoveTests(SynchronousTestCase):
    """
    Removing bindings.
    """

    current = [
        existing("web", "http://a"),
        existing("web", "http://b"),
        existing("boot", "tftp://c"),
    ]

    def test_expiresZero(self) -> None:
        """
        expires=0 removes that binding; an unknown one is no change.
        """
        p = plan("<http://a>;disposition=web;expires=0", current=self.current)
        self.assertEqual(p.removals, (("web", "http://a"),))
        self.assertEqual([r.uri for r in p.bindings], ["http://b", "tftp://c"])
        p = plan("<http://zz>;disposition=web;expires=0", current=self.current)
        self.assertFalse(p.changes)

    def test_disposition(self) -> None:
        """
        A disposition without a URI removes all of that disposition.
        """
        p = plan(";disposition=web", current=self.current)
        self.assertEqual(p.removals, (("web", None),))
        self.assertEqual([r.uri for r in p.bindings], ["tftp://c"])

    def test_dispositionWithLifetime(self) -> None:
        """
        A disposition without a URI but with a lifetime is a 400.
        """
        e = self.assertRaises(RemoteProtocolError, plan, ";disposition=web;expires=60")
        self.assertEqual(e.status, 400)
        self.assertIn("without a URI", e.reason)

    def test_order(self) -> None:
        """
        Values apply in order: removing all then adding keeps the addition,
        adding then removing all keeps nothing.
        """
        p = plan(";disposition=web", "<http://n>;disposition=web", current=self.current)
        self.assertEqual(p.removals, (("web", None),))
        self.assertEqual([r.uri for r in p.upserts], ["http://n"])
        p = plan("<http://n>;disposition=web", ";disposition=web", current=self.current)
        self.assertEqual((p.removals, p.upserts), ((("web", None),), ()))

    def test_unacceptedRemoval(self) -> None:
        """
        Bindings of a disposition no longer accepted can still be removed.
        """
        current = [existing("legacy", "http://l")]
        p = plan(";disposition=legacy", current=current)
        self.assertEqual(p.removals, (("legacy", None),))


class RefusalTests(SynchronousTestCase):
    """
    Refused dispositions and atomicity.
    """

    def test_refused(self) -> None:
        """
        An unaccepted disposition is 403 Binding Refused with Accept-Binding.
        """
        e = self.assertRaises(BindingRefused, plan, "<http://a>;disposition=tea")
        self.assertEqual((e.status, e.reason), (403, "Binding Refused"))
        self.assertEqual(e.refused, ["tea"])
        self.assertEqual(
            e.headers, [("Accept-Binding", "boot, conference, configuration, cpl, presence, web")]
        )

    def test_atomic(self) -> None:
        """
        One refused value among good ones refuses them all (no plan).
        """
        e = self.assertRaises(
            BindingRefused,
            plan,
            "<http://a>;disposition=web",
            ";disposition=boot",
            "<http://b>;disposition=tea, <http://c>;disposition=coffee",
            current=[existing("boot", "tftp://c")],
        )
        self.assertEqual(e.refused, ["tea", "coffee"])

    def test_atomicExpiry(self) -> None:
        """
        One too-short lifetime among good values refuses them all.
        """
        e = self.assertRaises(
            RemoteProtocolError,
            plan,
            "<http://a>;disposition=web",
            "<http://b>;disposition=web;expires=5",
        )
        self.assertEqual(e.status, 423)

    def test_ownerSet(self) -> None:
        """
        An owner's own set replaces the configured one, '*' accepting all.
        """
        e = self.assertRaises(
            BindingRefused, plan, "<http://a>;disposition=web", owner_dispositions={"tea"}
        )
        self.assertEqual(e.headers, [("Accept-Binding", "tea")])
        self.assertEqual(
            len(plan("<http://a>;disposition=tea", owner_dispositions={"tea"}).upserts), 1
        )
        self.assertEqual(len(plan("<x:a>;disposition=any", owner_dispositions={"*"}).upserts), 1)

    def test_sentBy(self) -> None:
        """
        sent-by is bound by the principal on their address, not by others,
        not on a conference, never public; Accept-Binding shows that.
        """
        [record] = plan("<sip:bob@example.com>;disposition=sent-by", owner=USER).upserts
        self.assertEqual(record.disposition, SENT_BY)
        e = self.assertRaises(
            BindingRefused, plan, "<sip:bob@example.com>;disposition=sent-by;public", owner=USER
        )
        self.assertEqual(e.refused, [SENT_BY])
        e = self.assertRaises(
            BindingRefused, plan, "<sip:x@y>;disposition=sent-by", owner=USER, issuer=ADMIN
        )
        self.assertNotIn(SENT_BY, e.accept.dispositions)
        self.assertRaises(BindingRefused, plan, "<sip:x@y>;disposition=sent-by")
        self.assertIn(SENT_BY, accepted_dispositions(POLICY, USER, ALICE).dispositions)
        self.assertIn(SENT_BY, DEFAULT_DISPOSITIONS)

    def test_policyChecked(self) -> None:
        """
        An inconsistent policy is refused at construction.
        """
        self.assertRaises(ValueError, BindingPolicy, min_expires=100, default_expires=50)


class LimitTests(SynchronousTestCase):
    """
    Limits that keep BIND from being free storage.
    """

    def test_count(self) -> None:
        """
        Going over the bindings per owner is a 403; reaching it is fine.
        """
        values = [f"<http://{i}>;disposition=web" for i in range(4)]
        self.assertEqual(len(plan(*values).bindings), 4)
        e = self.assertRaises(RemoteProtocolError, plan, *values, "<http://x>;disposition=web")
        self.assertEqual(e.status, 403)
        self.assertEqual(e.reason, limit_refusal(4).reason)

    def test_countOverAlready(self) -> None:
        """
        An owner already over a lowered limit may still refresh and remove.
        """
        current = [existing("web", f"http://{i}") for i in range(6)]
        p = plan(
            "<http://0>;disposition=web", "<http://1>;disposition=web;expires=0", current=current
        )
        self.assertEqual(len(p.bindings), 5)

    def test_uriLength(self) -> None:
        """
        A URI over the length limit is a 403 naming the limit.
        """
        policy = BindingPolicy(max_uri_length=20)
        self.assertEqual(len(plan("<http://short>;disposition=web", policy=policy).upserts), 1)
        e = self.assertRaises(
            RemoteProtocolError,
            plan,
            "<http://example.com/far/too/long>;disposition=web",
            policy=policy,
        )
        self.assertEqual(e.status, 403)
        self.assertIn("20 characters", e.reason)

    def test_dataSize(self) -> None:
        """
        Inline data over the limit is a 413, within it is stored.
        """
        policy = BindingPolicy(max_data_size=4)
        self.assertEqual(len(plan("<data:,abcd>;disposition=boot", policy=policy).upserts), 1)
        e = self.assertRaises(
            RemoteProtocolError, plan, "<data:,abcde>;disposition=boot", policy=policy
        )
        self.assertEqual(e.status, 413)


class InlineTests(SynchronousTestCase):
    """
    data: and cid: bindings.
    """

    def test_data(self) -> None:
        """
        A data: URI is stored as data under its canonical form and handed
        back as a data: URI.
        """
        [record] = plan("<data:text/plain,hi%20there>;disposition=boot").upserts
        self.assertEqual((record.data, record.content_type), (b"hi there", "text/plain"))
        self.assertEqual(record.uri, "data:text/plain,hi%20there")
        self.assertEqual(
            format_record(record, NOW),
            "<data:text/plain,hi%20there>;disposition=boot;expires=3600;etag=e1",
        )

    def test_dataCanonical(self) -> None:
        """
        The same data written differently refreshes the same binding and
        removes by either spelling.
        """
        [record] = plan("<data:text/plain;base64,aGk=>;disposition=boot").upserts
        p = plan("<data:text/plain,hi>;disposition=boot;expires=0", current=[record])
        self.assertEqual(p.removals, (("boot", record.uri),))

    def test_cid(self) -> None:
        """
        A cid: URI takes its data from the body part with that Content-ID.
        """
        content_type, raw = build_multipart(
            [BodyPart("application/cpl+xml", b"<cpl/>", content_id="script@example.com")]
        )
        body = parse_multipart(raw, content_type)
        [record] = plan("<cid:script@example.com>;disposition=cpl", body=body).upserts
        self.assertEqual((record.data, record.content_type), (b"<cpl/>", "application/cpl+xml"))
        self.assertEqual(record_value(record, NOW).uri, "data:application/cpl+xml;base64,PGNwbC8+")

    def test_cidMissing(self) -> None:
        """
        A cid: URI naming no part is a 400 and nothing is planned.
        """
        e = self.assertRaises(
            RemoteProtocolError,
            plan,
            "<http://a>;disposition=web",
            "<cid:nothing@example.com>;disposition=cpl",
        )
        self.assertEqual(e.status, 400)


class AnswerTests(SynchronousTestCase):
    """
    What answers show.
    """

    def test_remaining(self) -> None:
        """
        The expiry shown is what remains, rounded up, never 1 or 0 for a
        regular binding; expired ones are not shown.
        """
        self.assertEqual(record_value(existing("web", "http://a", NOW + 99.2), NOW).expires, 100)
        self.assertEqual(record_value(existing("web", "http://a", NOW + 0.5), NOW).expires, 2)
        headers = binding_headers(
            [existing("web", "http://a", NOW + 10), existing("web", "http://b", NOW)], NOW
        )
        self.assertEqual(headers, [("Binding", "<http://a>;disposition=web;expires=10;etag=old")])

    def test_public(self) -> None:
        """
        A public binding shows its flag.
        """
        self.assertEqual(
            format_record(existing("web", "http://a", NOW + 10, public=True), NOW),
            "<http://a>;disposition=web;expires=10;etag=old;public",
        )

    def test_formatted_again(self) -> None:
        """
        A record shown again gives the same text while its lifetime shown
        stays, and the new lifetime once it moves; an equal record of its
        own gets its own text.
        """
        record = existing("web", "http://a", NOW + 10.5)
        first = format_record(record, NOW)
        self.assertEqual(first, "<http://a>;disposition=web;expires=11;etag=old")
        self.assertIs(format_record(record, NOW + 0.4), first)
        self.assertEqual(
            format_record(record, NOW + 0.6), "<http://a>;disposition=web;expires=10;etag=old"
        )
        public = existing("web", "http://a", NOW + 10.5, public=True)
        self.assertTrue(format_record(public, NOW).endswith(";public"))

    @given(
        st.lists(
            st.tuples(st.floats(-5, 200, allow_nan=False), st.booleans(), st.booleans()),
            max_size=4,
        ),
        st.floats(0, 1, allow_nan=False),
    )
    def test_stable_until(self, specs: Sequence[tuple[float, bool, bool]], share: float) -> None:
        """
        The headers stay as they are until the time given, and change just
        after it (nothing live: never).
        """
        records = [
            existing("web", f"http://{i}", NOW + left, public=public, one_time=once)
            for i, (left, once, public) in enumerate(specs)
        ]
        headers = binding_headers(records, NOW)
        until = headers_stable_until(records, NOW)
        if until == float("inf"):
            self.assertEqual(headers, [])
            return
        self.assertGreater(until, NOW - STABLE_MARGIN)
        if until > NOW:
            self.assertEqual(binding_headers(records, NOW + share * (until - NOW)), headers)
        self.assertNotEqual(binding_headers(records, until + 2 * STABLE_MARGIN), headers)

    def test_formatted_bounded(self) -> None:
        """
        At most FORMATTED_MAX values are remembered.
        """
        for i in range(FORMATTED_MAX + 10):
            format_record(existing("web", f"http://{i}"), NOW)
        self.assertLessEqual(len(_FORMATTED), FORMATTED_MAX)

    def test_query(self) -> None:
        """
        A query shows what the asker may see, one-time bindings apart to be
        claimed, expired and filtered-out ones not at all.
        """
        records = [
            existing("web", "http://pub", public=True),
            existing("web", "http://priv"),
            existing("boot", "http://once", one_time=True),
            existing("web", "http://gone", expires_at=NOW),
        ]
        mine = plan_query(records, BOB, CONF, NOW)
        self.assertEqual([r.uri for r in mine.shown], ["http://pub", "http://priv"])
        self.assertEqual([r.uri for r in mine.one_time], ["http://once"])
        theirs = plan_query(records, "sip:eve@example.com", CONF, NOW)
        self.assertEqual(([r.uri for r in theirs.shown], theirs.one_time), (["http://pub"], ()))
        boot = plan_query(records, ALICE, CONF, NOW, dispositions={"boot"})
        self.assertEqual((boot.shown, len(boot.one_time)), ((), 1))

    def test_updateAnswer(self) -> None:
        """
        The 200 to an update lists every binding after it, one-time included.
        """
        p = plan("<http://a>;disposition=web;expires=1", current=[existing("boot", "tftp://b")])
        headers = update_answer(p, ALICE, CONF, NOW)
        self.assertEqual(
            [v for _, v in headers],
            [
                "<tftp://b>;disposition=boot;expires=100;etag=old",
                "<http://a>;disposition=web;expires=1;etag=e1",
            ],
        )
        self.assertEqual(without_one_time(p.bindings), [p.bindings[0]])
