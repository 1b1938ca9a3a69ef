# -*- test-case-name: tests.unit.bindings.test_subscription -*-
"""
Tests for L{conference.bindings.subscription}.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from conference.bindings.access import CONFERENCE, Owner
from conference.bindings.subscription import (
    BindingSubscription,
    SubscriptionPolicy,
    decide_subscription,
    notify_content,
    parse_event,
    subscription_state,
)
from conference.records import BindingRecord
from conference.sip.errors import RemoteProtocolError

NOW = 5000.0
ALICE = "sip:alice@example.com"
BOB = "sip:bob@example.com"
CONF = Owner("sip:conf-1@example.com", CONFERENCE, organizer=ALICE, attendees=frozenset({BOB}))
RECORDS = [
    BindingRecord(CONF.uri, "web", "http://pub", NOW + 50, "a", public=True),
    BindingRecord(CONF.uri, "conference", "http://floor", NOW + 50, "b"),
    BindingRecord(CONF.uri, "boot", "http://once", NOW + 50, "c", one_time=True),
    BindingRecord(CONF.uri, "web", "http://old", NOW, "d", public=True),
]


class EventTests(SynchronousTestCase):
    """
    parse_event.
    """

    def test_plain(self) -> None:
        """
        'binding' alone watches everything.
        """
        self.assertEqual(parse_event("binding"), (None, None))

    def test_filter(self) -> None:
        """
        A disposition parameter, single or a quoted list, filters; id is kept.
        """
        self.assertEqual(parse_event("binding;id=7;disposition=Web"), ("7", frozenset({"web"})))
        self.assertEqual(
            parse_event('binding ; disposition="web, boot"'), (None, frozenset({"web", "boot"}))
        )

    def test_otherPackage(self) -> None:
        """
        Another or a missing event package is 489 with Allow-Events; the
        type is compared byte by byte.
        """
        for value in ("presence", "Binding", None):
            e = self.assertRaises(RemoteProtocolError, parse_event, value)
            self.assertEqual((e.status, e.headers), (489, [("Allow-Events", "binding")]))

    def test_malformed(self) -> None:
        """
        A malformed Event or filter is a 400.
        """
        for value in ("bind ing", 'binding;disposition="a b!?"', "binding;id", "binding;;"):
            e = self.assertRaises(RemoteProtocolError, parse_event, value)
            self.assertEqual(e.status, 400)


class DecideTests(SynchronousTestCase):
    """
    decide_subscription.
    """

    policy = SubscriptionPolicy(default_expires=3600, min_expires=60, max_expires=7200)

    def test_default(self) -> None:
        """
        Without Expires the package default is granted.
        """
        sub = decide_subscription("binding;disposition=web", None, ["*/*"], self.policy)
        self.assertEqual(sub, BindingSubscription(3600, frozenset({"web"})))
        self.assertEqual(sub.event, "binding;disposition=web")

    def test_clampAndFetch(self) -> None:
        """
        Long lifetimes are cut to the maximum; 0 is a fetch.
        """
        self.assertEqual(decide_subscription("binding", "99999", (), self.policy).expires, 7200)
        self.assertEqual(decide_subscription("binding", "0", (), self.policy).expires, 0)

    def test_tooBrief(self) -> None:
        """
        A lifetime under the minimum is 423 with Min-Expires.
        """
        e = self.assertRaises(
            RemoteProtocolError, decide_subscription, "binding", "30", (), self.policy
        )
        self.assertEqual((e.status, e.headers), (423, [("Min-Expires", "60")]))

    def test_badHeaders(self) -> None:
        """
        A malformed Expires or Accept is a 400.
        """
        e = self.assertRaises(RemoteProtocolError, decide_subscription, "binding", "soon")
        self.assertEqual(e.status, 400)
        e = self.assertRaises(
            RemoteProtocolError, decide_subscription, "binding", None, ["nonsense"]
        )
        self.assertEqual(e.status, 400)


class StateTests(SynchronousTestCase):
    """
    subscription_state.
    """

    def test_values(self) -> None:
        """
        States format with their parameters.
        """
        self.assertEqual(subscription_state("active", expires=60), "active;expires=60")
        self.assertEqual(subscription_state("pending"), "pending")
        self.assertEqual(
            subscription_state("terminated", reason="timeout", retry_after=5),
            "terminated;reason=timeout;retry-after=5",
        )

    def test_invalid(self) -> None:
        """
        Unknown states or reasons and misplaced parameters are refused.
        """
        self.assertRaises(ValueError, subscription_state, "asleep")
        self.assertRaises(ValueError, subscription_state, "terminated", reason="bored")
        self.assertRaises(ValueError, subscription_state, "terminated", expires=5)
        self.assertRaises(ValueError, subscription_state, "active", reason="timeout")


class NotifyTests(SynchronousTestCase):
    """
    notify_content.
    """

    def test_attendee(self) -> None:
        """
        An attendee is told every live, non-one-time binding, in headers.
        """
        sub = BindingSubscription(3600, None, "x")
        content = notify_content(
            sub, RECORDS, subscriber=BOB, owner=CONF, now=NOW, expires_at=NOW + 99.5
        )
        self.assertEqual(
            list(content.headers),
            [
                ("Event", "binding;id=x"),
                ("Subscription-State", "active;expires=100"),
                ("Binding", "<http://pub>;disposition=web;expires=50;etag=a;public"),
                ("Binding", "<http://floor>;disposition=conference;expires=50;etag=b"),
            ],
        )
        self.assertEqual(content.body, b"")

    def test_strangerFiltered(self) -> None:
        """
        A stranger sees only public bindings, and a filter narrows further.
        """
        sub = BindingSubscription(3600, frozenset({"conference"}))
        content = notify_content(
            sub, RECORDS, subscriber="sip:eve@example.com", owner=CONF, now=NOW, expires_at=NOW + 10
        )
        self.assertEqual([n for n, _ in content.headers], ["Event", "Subscription-State"])

    def test_terminated(self) -> None:
        """
        A lapsed subscription's NOTIFY says terminated;reason=timeout, and
        a given reason is used.
        """
        sub = BindingSubscription(0)
        content = notify_content(
            sub, RECORDS, subscriber=ALICE, owner=CONF, now=NOW, expires_at=NOW
        )
        self.assertEqual(dict(content.headers)["Subscription-State"], "terminated;reason=timeout")
        content = notify_content(
            sub, [], subscriber=ALICE, owner=CONF, now=NOW, expires_at=NOW + 60, reason="noresource"
        )
        self.assertEqual(
            dict(content.headers)["Subscription-State"], "terminated;reason=noresource"
        )
