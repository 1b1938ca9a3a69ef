# -*- test-case-name: tests.unit.app.test_confevents -*-
"""
Tests for L{conference.app.confevents}: the conference event package
(RFC 4575) over RFC 6665 subscriptions.
"""

from __future__ import annotations

from lxml import etree

from conference.control.confinfo import CONTENT_TYPE, NS
from conference.sip.message import Request
from tests.unit.app.controlfixture import ALICE, BOB, CAROL, CONF, EVE, ControlFixture
from tests.unit.control.support import conference_info_errors

Q = "{" + NS + "}"


def document(notify: Request) -> etree._Element:
    """
    The conference-info document of a NOTIFY, checked against the schema.
    """
    assert notify.content_type is not None
    assert notify.content_type.mime == CONTENT_TYPE
    errors = conference_info_errors(notify.body)
    assert errors is None, errors
    return etree.fromstring(notify.body)


def users(root: etree._Element) -> list[tuple[str, str]]:
    return [
        (u.get("entity") or "", u.get("state") or "") for u in root.findall(f"{Q}users/{Q}user")
    ]


class SubscribeTests(ControlFixture):
    """
    Subscribing, the first full NOTIFY, then partial ones.
    """

    def test_full_then_partial(self) -> None:
        """The first NOTIFY is full (version 1); a join and a leave send partials 2 and 3."""
        self.join(ALICE)
        response = self.subscribe(BOB)
        self.assertEqual(response.code, 200)
        self.assertEqual(response.header("expires"), "600")
        [first] = self.notifies()
        self.assertEqual(first.header("event"), "conference")
        self.assertEqual(first.header("subscription-state"), "active;expires=600")
        root = document(first)
        self.assertEqual((root.get("state"), root.get("version")), ("full", "1"))
        self.assertEqual(users(root), [("sip:alice@example.com", "full")])
        self.assertEqual(root.findtext(f"{Q}conference-description/{Q}subject"), "Weekly sync")
        [event] = root.findall(
            f"{Q}conference-description/{{urn:ietf:params:xml:ns:icalendar-2.0}}icalendar"
        )
        self.assertIn(b"Weekly sync", etree.tostring(event))
        self.join(CAROL)
        second = document(self.notifies()[-1])
        self.assertEqual((second.get("state"), second.get("version")), ("partial", "2"))
        self.assertEqual(users(second), [("sip:carol@example.com", "full")])
        self.assertEqual(second.findtext(f"{Q}conference-state/{Q}user-count"), "2")
        [call] = [
            c for c in self.focus.calls.values() if c.participant.identity.startswith("sip:alice")
        ]
        self.focus._leave(call.dialog.key, "BYE")
        third = document(self.notifies()[-1])
        self.assertEqual(third.get("version"), "3")
        self.assertEqual(users(third), [("sip:alice@example.com", "deleted")])

    def test_embedded_xcal_validates(self) -> None:
        """The embedded VEVENT is RFC 6321 xCal (the RFC 7986 CONFERENCE property aside)."""
        from tests.interop.test_focus import schema_errors

        self.join(BOB)
        self.subscribe(BOB)
        root = document(self.notifies()[-1])
        [icalendar] = root.findall(
            f"{Q}conference-description/{{urn:ietf:params:xml:ns:icalendar-2.0}}icalendar"
        )
        self.assertIsNone(schema_errors(etree.tostring(icalendar)))
        self.assertIn(b"ACCEPTED", etree.tostring(icalendar))

    def test_roles_shown(self) -> None:
        """Each user carries the roles the calendar gives them."""
        self.join(ALICE)
        self.join(BOB)
        self.subscribe(CAROL)
        root = document(self.notifies()[-1])
        roles = {
            u.get("entity"): [e.text for e in u.findall(f"{Q}roles/{Q}entry")]
            for u in root.findall(f"{Q}users/{Q}user")
        }
        self.assertEqual(
            roles,
            {
                "sip:alice@example.com": ["organizer", "chair"],
                "sip:bob@example.com": ["participant"],
            },
        )

    def test_refresh_sends_full(self) -> None:
        """A refresh gets 200 and a full document with the next version."""
        self.subscribe(BOB)
        self.notifies()
        response = self.subscribe(BOB, to_tag="subtag")
        self.assertEqual(response.code, 200)
        root = document(self.notifies()[-1])
        self.assertEqual((root.get("state"), root.get("version")), ("full", "2"))

    def test_unsubscribe(self) -> None:
        """Expires 0 ends it: a last NOTIFY terminated;reason=timeout, then no more."""
        self.subscribe(BOB)
        self.subscribe(BOB, to_tag="subtag", expires="0")
        last = self.notifies()[-1]
        self.assertEqual(last.header("subscription-state"), "terminated;reason=timeout")
        count = len(self.notifies())
        self.join(ALICE)
        self.assertEqual(len(self.notifies()), count)
        self.assertEqual(self.events.watches(), [])

    def test_expiry(self) -> None:
        """A subscription not refreshed lapses with a terminated NOTIFY."""
        self.subscribe(BOB)
        self.clock.advance(601)
        self.assertEqual(
            self.notifies()[-1].header("subscription-state"), "terminated;reason=timeout"
        )
        self.assertEqual(self.events.watches(), [])

    def test_nothing_changed_nothing_sent(self) -> None:
        """A change no subscriber can see (the same state) sends nothing."""
        self.subscribe(BOB)
        count = len(self.notifies())
        self.events.changed(CONF)
        self.assertEqual(len(self.notifies()), count)

    def test_conference_gone(self) -> None:
        """When the conference is deleted the subscription ends with noresource."""
        self.subscribe(BOB)
        self.notifies()
        record = self.successResultOf(self.stores.conferences.get(CONF))
        assert record is not None
        self.successResultOf(self.stores.conferences.delete(CONF))
        self.events.changed(CONF)
        self.assertEqual(
            self.notifies()[-1].header("subscription-state"), "terminated;reason=noresource"
        )


class RefusalTests(ControlFixture):
    """
    Who may subscribe, and bad SUBSCRIBEs: clear 4xx, nothing kept.
    """

    def assertRefused(self, code: int, **kwargs: object) -> None:
        response = self.subscribe(**kwargs)  # type: ignore[arg-type]
        self.assertEqual(response.code, code, response.phrase)
        self.assertEqual(self.events.watches(), [])
        self.assertEqual(self.notifies(), [])

    def test_members_only(self) -> None:
        """The organizer and attendees may subscribe; anyone else gets 403."""
        self.assertRefused(403, who=EVE)
        self.assertEqual(self.subscribe(ALICE, call_id="a").code, 200)

    def test_unauthenticated(self) -> None:
        """An anonymous SUBSCRIBE gets 401."""
        self.assertRefused(401, who=None)

    def test_unknown_conference(self) -> None:
        """A SUBSCRIBE to an address with no conference gets 404."""
        self.assertRefused(404, uri="sip:nothing@example.com")

    def test_expires(self) -> None:
        """Too brief is 423, a huge one is cut to the maximum (past 2**32-1 the parser says 400)."""
        self.assertRefused(423, expires="5")
        self.assertEqual(self.subscribe(expires="4294967295").header("expires"), "7200")

    def test_accept(self) -> None:
        """An Accept without conference-info is 406."""
        self.assertRefused(406, headers=(("Accept", "application/pidf+xml"),))

    def test_storm(self) -> None:
        """Past the cap of subscriptions per subscriber, SUBSCRIBE gets 503 with Retry-After."""
        for n in range(self.events.max_per_subscriber):
            self.assertEqual(self.subscribe(call_id=f"s{n}").code, 200)
        response = self.subscribe(call_id="one-too-many")
        self.assertEqual(response.code, 503)
        self.assertEqual(response.header("retry-after"), "60")
        self.assertEqual(len(self.events.watches()), self.events.max_per_subscriber)

    def test_refresh_unknown(self) -> None:
        """A refresh of a subscription that does not exist is 481."""
        self.assertRefused(481, to_tag="nope")

    def test_other_package(self) -> None:
        """Another event package is 489 with Allow-Events."""
        response = self.subscribe(event="presence")
        self.assertEqual(response.code, 489)
        self.assertEqual(response.header("allow-events"), "conference")
