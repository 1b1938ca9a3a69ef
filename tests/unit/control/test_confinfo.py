# -*- test-case-name: tests.unit.control.test_confinfo -*-
"""
Tests for L{conference.control.confinfo}: every document validates against
the RFC 4575 schema, partial documents carry exactly what changed.
"""

from __future__ import annotations

from typing import List

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from twisted.trial.unittest import SynchronousTestCase

from conference.control.confinfo import (
    NS,
    XCAL_NS,
    ConferenceState,
    Description,
    Endpoint,
    Media,
    User,
    full_document,
    partial_document,
)
from tests.unit.control.support import conference_info_errors

Q = "{" + NS + "}"
XCAL = (
    b'<icalendar xmlns="urn:ietf:params:xml:ns:icalendar-2.0"><vcalendar><properties>'
    b"<prodid><text>-//t//EN</text></prodid><version><text>2.0</text></version>"
    b"</properties></vcalendar></icalendar>"
)
BOB = User(
    "sip:bob@example.com",
    roles=("participant",),
    endpoints=(Endpoint("sip:bob@192.0.2.1", joined_at=1e9, media=(Media("m1"),)),),
)
ALICE = User(
    "sip:alice@example.com",
    display="Alice",
    roles=("organizer", "chair"),
    endpoints=(Endpoint("sip:alice@192.0.2.2", media=(Media("m2"),)),),
)
STATE = ConferenceState(
    "sip:conf@example.com",
    Description("Weekly sync", conf_uris=("sip:conf@example.com",), maximum=10, calendar=XCAL),
    users=(ALICE, BOB),
)


def parse(document: bytes) -> etree._Element:
    return etree.fromstring(document)


class FullDocumentTests(SynchronousTestCase):
    """
    full_document.
    """

    def test_valid(self) -> None:
        """The full document validates and carries description, state and users."""
        document = full_document(STATE, 1)
        self.assertIsNone(conference_info_errors(document))
        root = parse(document)
        self.assertEqual(
            (root.get("entity"), root.get("state"), root.get("version")),
            ("sip:conf@example.com", "full", "1"),
        )
        self.assertEqual(root.findtext(f"{Q}conference-description/{Q}subject"), "Weekly sync")
        self.assertEqual(root.findtext(f"{Q}conference-description/{Q}maximum-user-count"), "10")
        self.assertEqual(
            root.findtext(f"{Q}conference-description/{Q}conf-uris/{Q}entry/{Q}uri"),
            "sip:conf@example.com",
        )
        self.assertEqual(root.findtext(f"{Q}conference-state/{Q}user-count"), "2")
        users = root.findall(f"{Q}users/{Q}user")
        self.assertEqual([u.get("entity") for u in users], [ALICE.entity, BOB.entity])
        self.assertEqual(
            [e.text for e in users[0].findall(f"{Q}roles/{Q}entry")], ["organizer", "chair"]
        )
        self.assertEqual(
            users[1].findtext(f"{Q}endpoint/{Q}joining-info/{Q}when"), "2001-09-09T01:46:40Z"
        )

    def test_calendar_embedded(self) -> None:
        """The VEVENT travels as its xCal document, in the xCal namespace."""
        root = parse(full_document(STATE, 1))
        [icalendar] = root.findall(f"{Q}conference-description/{{{XCAL_NS}}}icalendar")
        self.assertEqual(
            [(e.tag, e.text) for e in icalendar.iter()],
            [(e.tag, e.text) for e in parse(XCAL).iter()],
        )

    def test_empty(self) -> None:
        """A conference nobody is in validates, with no users and user-count 0."""
        document = full_document(ConferenceState("sip:c@example.com"), 7)
        self.assertIsNone(conference_info_errors(document))
        self.assertEqual(parse(document).findall(f"{Q}users/{Q}user"), [])


class PartialDocumentTests(SynchronousTestCase):
    """
    partial_document.
    """

    def test_unchanged(self) -> None:
        """No change, no document."""
        self.assertIsNone(partial_document(STATE, STATE, 2))

    def test_join(self) -> None:
        """A join sends that user whole and the new count, not the description."""
        before = ConferenceState(STATE.entity, STATE.description, users=(ALICE,))
        document = partial_document(before, STATE, 2)
        assert document is not None
        self.assertIsNone(conference_info_errors(document))
        root = parse(document)
        self.assertEqual(root.get("state"), "partial")
        self.assertIsNone(root.find(f"{Q}conference-description"))
        self.assertEqual(root.findtext(f"{Q}conference-state/{Q}user-count"), "2")
        [user] = root.findall(f"{Q}users/{Q}user")
        self.assertEqual((user.get("entity"), user.get("state")), (BOB.entity, "full"))

    def test_leave(self) -> None:
        """A departure is the user with state deleted."""
        after = ConferenceState(STATE.entity, STATE.description, users=(ALICE,))
        document = partial_document(STATE, after, 3)
        assert document is not None
        self.assertIsNone(conference_info_errors(document))
        [user] = parse(document).findall(f"{Q}users/{Q}user")
        self.assertEqual((user.get("entity"), user.get("state")), (BOB.entity, "deleted"))

    def test_mute_and_lock(self) -> None:
        """Muting changes one user; locking sends the conference state."""
        muted = User(
            BOB.entity,
            roles=BOB.roles,
            endpoints=(
                Endpoint(
                    "sip:bob@192.0.2.1",
                    status="muted-via-focus",
                    media=(Media("m1", status="recvonly"),),
                ),
            ),
        )
        after = ConferenceState(STATE.entity, STATE.description, users=(ALICE, muted), locked=True)
        document = partial_document(STATE, after, 4)
        assert document is not None
        self.assertIsNone(conference_info_errors(document))
        root = parse(document)
        self.assertEqual(root.findtext(f"{Q}conference-state/{Q}locked"), "true")
        [user] = root.findall(f"{Q}users/{Q}user")
        self.assertEqual(user.findtext(f"{Q}endpoint/{Q}status"), "muted-via-focus")
        self.assertEqual(user.findtext(f"{Q}endpoint/{Q}media/{Q}status"), "recvonly")


_addresses = st.sampled_from([f"sip:u{i}@example.com" for i in range(6)])
_users = st.builds(
    lambda entity, muted, roles: User(
        entity,
        roles=roles,
        endpoints=(
            Endpoint(
                entity.replace("example.com", "192.0.2.9"),
                status="muted-via-focus" if muted else "connected",
                media=(Media("m-" + entity[4:6], status="recvonly" if muted else "sendrecv"),),
            ),
        ),
    ),
    _addresses,
    st.booleans(),
    st.lists(st.sampled_from(["chair", "participant", "listener", "guest"]), max_size=2).map(tuple),
)
_states = st.builds(
    lambda users, locked, subject: ConferenceState(
        "sip:conf@example.com",
        Description(subject, conf_uris=("sip:conf@example.com",)),
        users=tuple({u.entity: u for u in users}.values()),
        locked=locked,
    ),
    st.lists(_users, max_size=5),
    st.booleans(),
    st.sampled_from([None, "A", "B & <C>"]),
)


def apply(base: etree._Element, partial: etree._Element) -> List[str]:
    """
    The user entities after applying C{partial} to C{base} (RFC 4575
    section 4.6 for the users element).
    """
    users = {u.get("entity"): u for u in base.findall(f"{Q}users/{Q}user")}
    for user in partial.findall(f"{Q}users/{Q}user"):
        if user.get("state") == "deleted":
            users.pop(user.get("entity"), None)
        else:
            users[user.get("entity")] = user
    return sorted(users)


class PartialPropertyTests(SynchronousTestCase):
    """
    Partial documents, for any two states.
    """

    @settings(max_examples=60, deadline=None)
    @given(_states, _states)
    def test_partial_then_full(self, old: ConferenceState, new: ConferenceState) -> None:
        """Every partial validates; applied to the old full state, it gives the new users."""
        document = partial_document(old, new, 2)
        if old == new:
            self.assertIsNone(document)
            return
        assert document is not None
        self.assertIsNone(conference_info_errors(document))
        base = parse(full_document(old, 1))
        self.assertEqual(apply(base, parse(document)), sorted(u.entity for u in new.users))
        count = parse(document).findtext(f"{Q}conference-state/{Q}user-count")
        if count is not None:
            self.assertEqual(int(count), len(new.users))
        else:
            self.assertEqual(len(old.users), len(new.users))
