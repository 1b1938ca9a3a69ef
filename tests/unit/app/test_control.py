# -*- test-case-name: tests.unit.app.test_control -*-
"""
Tests for L{conference.app.control}: roles at join, guests, PINs, and the
moderator actions with their conference-info updates.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, List, Optional, Tuple

from lxml import etree
from twisted.trial.unittest import SynchronousTestCase

from conference.app.conferences import calendar_of
from conference.app.control import PinGuard, uri_pin
from conference.calendar import parse_ical_calendar, to_xcal
from conference.calendar.recurrence import MAX_STEPS, Budget
from conference.control.confinfo import NS
from conference.control.policy import DENY
from conference.records import ConferenceRecord
from conference.sip.errors import RemoteProtocolError
from conference.sip.uri import parse_uri
from tests.unit.app.controlfixture import (
    ALICE,
    BOB,
    CAROL,
    CONF,
    DAVE,
    EVE,
    ControlFixture,
    conference_text,
)
from tests.unit.app.test_confevents import document
from tests.unit.app.test_focus import FakeMedia

Q = "{" + NS + "}"


def endpoint_status(root: etree._Element, entity: str) -> Any:
    for user in root.findall(f"{Q}users/{Q}user"):
        if user.get("entity") == entity:
            return (
                user.findtext(f"{Q}endpoint/{Q}status"),
                user.findtext(f"{Q}endpoint/{Q}media/{Q}status"),
            )
    return None


class RoleTests(ControlFixture):
    """
    Roles and guests at join, guests refused by default (as with --auth-invite).
    """

    default_guests = DENY

    def test_members_join(self) -> None:
        """The organizer, attendees, chairs and listeners join with their roles."""
        for who in (ALICE, BOB, CAROL, DAVE):
            self.assertEqual(self.join(who).code, 200, who)
        roles = {p.identity: p.role.names for p in self.focus.roster.participants(CONF)}
        self.assertEqual(
            roles,
            {
                "sip:alice@example.com": ("organizer", "chair"),
                "sip:bob@example.com": ("participant",),
                "sip:carol@example.com": ("chair",),
                "sip:dave@example.com": ("listener",),
            },
        )

    def test_guests_refused(self) -> None:
        """Someone not invited, and an anonymous caller, get 403 and no call."""
        self.assertEqual(self.join(EVE).code, 403)
        self.assertEqual(self.join(None, name="bob").code, 403)
        self.assertEqual(self.focus.roster.count(CONF), 0)
        self.assertEqual(self.media.sessions, [])

    def test_guests_allowed_by_event(self) -> None:
        """X-CONFERENCE-GUESTS:LISTEN admits guests, listen only."""
        self.store("X-CONFERENCE-GUESTS:LISTEN")
        self.assertEqual(self.join(EVE).code, 200)
        [participant] = self.focus.roster.participants(CONF)
        self.assertTrue(participant.role.listen_only)

    def test_listener_shown_recvonly(self) -> None:
        """A NON-PARTICIPANT's media is shown recvonly in the conference state."""
        self.join(DAVE)
        self.subscribe(BOB)
        root = document(self.notifies()[-1])
        self.assertEqual(endpoint_status(root, "sip:dave@example.com"), ("connected", "recvonly"))


class PinTests(ControlFixture):
    """
    PINs in the Request-URI's user part.
    """

    def setUp(self) -> None:
        super().setUp()
        self.store("X-CONFERENCE-PIN:1234")

    def test_uri_pin(self) -> None:
        """The PIN parameter of the user part is read; other addresses have none."""
        self.assertEqual(uri_pin(parse_uri("sip:conf;pin=1234@example.com")), "1234")
        self.assertIsNone(uri_pin(parse_uri("sip:conf@example.com")))

    def test_pin_required(self) -> None:
        """A guest without the PIN, or with a wrong one, gets 403; with it, joins."""
        self.assertEqual(self.join(EVE).code, 403)
        self.assertEqual(self.join(EVE, uri="sip:conf;pin=9999@example.com").code, 403)
        self.assertEqual(self.focus.roster.count(CONF), 0)
        self.assertEqual(self.join(EVE, uri="sip:conf;pin=1234@example.com").code, 200)

    def test_policy_read_once_per_version(self) -> None:
        """The policy is read once per conference version; a new PIN applies at once."""
        record = self.successResultOf(self.stores.conferences.get(CONF))
        assert record is not None
        calendar = calendar_of(record)
        self.assertIs(self.control.policy(record, calendar), self.control.policy(record, calendar))
        self.store("X-CONFERENCE-PIN:4321")
        self.assertEqual(self.join(EVE, uri="sip:conf;pin=1234@example.com").code, 403)
        self.assertEqual(self.join(EVE, uri="sip:conf;pin=4321@example.com").code, 200)

    def test_pin_setting_change_applies(self) -> None:
        """A changed pin setting is read anew even with the same calendar."""
        record = self.successResultOf(self.stores.conferences.get(CONF))
        assert record is not None
        calendar = calendar_of(record)
        self.assertEqual(self.control.policy(record, calendar).pin, "1234")
        record.settings["pin"] = "777"
        self.assertEqual(self.control.policy(record, calendar).pin, "777")

    def test_members_need_none(self) -> None:
        """An authenticated attendee joins without the PIN."""
        self.assertEqual(self.join(BOB).code, 200)

    def test_three_wrong_tries(self) -> None:
        """After three wrong PINs from one address even the right one is refused for a while."""
        for _ in range(3):
            self.assertEqual(self.join(EVE, uri="sip:conf;pin=0000@example.com").code, 403)
        response = self.join(EVE, uri="sip:conf;pin=1234@example.com")
        self.assertEqual(
            (response.code, response.phrase), (403, "Forbidden (too many wrong PINs, try later)")
        )
        self.clock.advance(301)
        self.assertEqual(self.join(EVE, uri="sip:conf;pin=1234@example.com").code, 200)

    def test_guard(self) -> None:
        """The guard forgets the wrong tries of a source that got it right."""
        guard = PinGuard(tries=2, window=10)
        self.assertRaises(RemoteProtocolError, guard.check, "c", "h", "1", "2", 0.0)
        guard.check("c", "h", "1", "1", 1.0)
        self.assertRaises(RemoteProtocolError, guard.check, "c", "h", "1", "2", 2.0)
        guard.check("c", "h", "1", "1", 3.0)


class ModeratorTests(ControlFixture):
    """
    Mute, unmute, lock, unlock and remove: by moderators only, each sending
    a conference-info update.
    """

    def setUp(self) -> None:
        super().setUp()
        self.join(ALICE)
        self.join(BOB)
        self.subscribe(CAROL)
        self.before = len(self.notifies())

    def test_mute_unmute(self) -> None:
        """The organizer mutes Bob: muted-via-focus, recvonly; unmuting reverts it."""
        self.assertEqual(
            self.successResultOf(
                self.control.set_muted(CONF, "sip:bob@example.com", ALICE.aor, True)
            ),
            1,
        )
        root = document(self.notifies()[-1])
        self.assertEqual(root.get("state"), "partial")
        self.assertEqual(
            endpoint_status(root, "sip:bob@example.com"), ("muted-via-focus", "recvonly")
        )
        self.successResultOf(self.control.set_muted(CONF, "sip:bob@example.com", ALICE.aor, False))
        root = document(self.notifies()[-1])
        self.assertEqual(endpoint_status(root, "sip:bob@example.com"), ("connected", "sendrecv"))

    def test_not_a_moderator(self) -> None:
        """An attendee who is no moderator gets 403 and nothing changes or is sent."""
        failure = self.failureResultOf(
            self.control.set_muted(CONF, "sip:alice@example.com", BOB.aor, True),
            RemoteProtocolError,
        )
        self.assertEqual(failure.value.status, 403)
        failure = self.failureResultOf(
            self.control.set_locked(CONF, None, True), RemoteProtocolError
        )
        self.assertEqual(failure.value.status, 403)
        self.assertFalse(any(p.muted for p in self.focus.roster.participants(CONF)))
        self.assertEqual(len(self.notifies()), self.before)

    def test_admin_moderates(self) -> None:
        """A server admin (--admin) moderates a conference whose calendar does not name them."""
        self.control.admins = frozenset({"sip:eve@example.com"})
        d = self.control.set_locked(CONF, EVE.aor, True)
        self.assertTrue(self.successResultOf(d))
        self.assertTrue(self.focus.locks[CONF])

    def test_end(self) -> None:
        """end, by a moderator, hangs up everyone; by anyone else it is 403 and nobody leaves."""
        count = len(self.focus.roster.participants(CONF))
        refused = self.failureResultOf(self.control.end(CONF, BOB.aor, "x"), RemoteProtocolError)
        self.assertEqual(refused.value.status, 403)
        self.assertEqual(len(self.focus.roster.participants(CONF)), count)
        self.assertEqual(self.successResultOf(self.control.end(CONF, ALICE.aor, "x")), count)
        self.assertEqual(self.focus.roster.participants(CONF), [])

    def test_target_not_in(self) -> None:
        """Muting or removing someone not in the conference is 404."""
        for d in (
            self.control.set_muted(CONF, "sip:eve@example.com", ALICE.aor, True),
            self.control.remove(CONF, "sip:eve@example.com", ALICE.aor),
        ):
            self.assertEqual(self.failureResultOf(d, RemoteProtocolError).value.status, 404)

    def test_lock(self) -> None:
        """A locked conference refuses participants (486) but admits moderators."""
        self.assertTrue(self.successResultOf(self.control.set_locked(CONF, CAROL.aor, True)))
        root = document(self.notifies()[-1])
        self.assertEqual(root.findtext(f"{Q}conference-state/{Q}locked"), "true")
        self.assertEqual(self.join(DAVE).code, 486)
        self.assertEqual(self.join(CAROL).code, 200)
        self.successResultOf(self.control.set_locked(CONF, CAROL.aor, False))
        self.assertEqual(self.join(DAVE).code, 200)

    def test_remove(self) -> None:
        """Removing Bob sends him BYE and a partial with his user deleted."""
        self.assertEqual(
            self.successResultOf(self.control.remove(CONF, "sip:bob@example.com", ALICE.aor)), 1
        )
        [bye] = self.sender.of("BYE")
        self.assertEqual(str(bye.uri), "sip:bob@192.0.2.10:5062")
        root = document(self.notifies()[-1])
        users = [(u.get("entity"), u.get("state")) for u in root.findall(f"{Q}users/{Q}user")]
        self.assertEqual(users, [("sip:bob@example.com", "deleted")])
        self.assertEqual(self.focus.roster.count(CONF), 1)

    def test_unknown_conference(self) -> None:
        """An action on an address with no conference is 404."""
        d = self.control.set_locked("sip:none@example.com", ALICE.aor, True)
        self.assertEqual(self.failureResultOf(d, RemoteProtocolError).value.status, 404)


class MutingMedia(FakeMedia):
    """
    The fake media with the mixer's controls (C{mute}, C{on_dtmf}), as
    L{conference.app.mixer.MixerMediaService} offers them.
    """

    def __init__(self, clock: Any) -> None:
        super().__init__(clock)
        self.muted: Dict[Any, Tuple[Optional[bool], Optional[bool]]] = {}
        self.told: List[Any] = []  # the session of each call of mute, in order
        self.on_dtmf: Optional[Callable[[Any, str], None]] = None

    def mute(
        self, session: Any, *, incoming: Optional[bool] = None, outgoing: Optional[bool] = None
    ) -> None:
        self.muted[session] = (incoming, outgoing)
        self.told.append(session)


class MediaContractTests(SynchronousTestCase):
    """
    The fake above keeps to the mixer's contract.
    """

    def test_mute_signature(self) -> None:
        """The mixer's mute takes the session and keyword-only incoming and outgoing."""
        from conference.app.mixer import MixerMediaService

        expected = inspect.signature(MixerMediaService.mute).parameters
        actual = inspect.signature(MutingMedia.mute).parameters
        self.assertEqual(
            [(p.name, p.kind) for p in actual.values()],
            [(p.name, p.kind) for p in expected.values()],
        )
        self.assertIn("on_dtmf", inspect.signature(MixerMediaService.__init__).parameters)


class MediaToldOnceTests(ControlFixture):
    """
    The media plane hears of a participant's mute when it changes, not at
    every change of the conference.
    """

    def setUp(self) -> None:
        super().setUp()
        self.muting = self.media = MutingMedia(self.clock)
        self.focus.media = self.media

    def test_joins_tell_once(self) -> None:
        """Three joins tell the media plane of three participants, once each; a mute once more."""
        self.join(ALICE)
        self.join(BOB)
        self.join(CAROL)
        sessions = [p.session for p in self.focus.roster.participants(CONF)]
        self.assertEqual(self.muting.told, sessions)
        self.successResultOf(self.control.set_muted(CONF, "sip:bob@example.com", ALICE.aor, True))
        self.assertEqual(self.muting.told, [*sessions, sessions[1]])
        self.assertEqual(self.muting.muted[sessions[1]], (True, False))


class DTMFPinTests(ControlFixture):
    """
    PINs typed as DTMF through the media plane's on_dtmf.
    """

    def setUp(self) -> None:
        super().setUp()
        self.muting = self.media = MutingMedia(self.clock)
        self.focus.media = self.media
        self.control.dtmf_pins = True
        self.muting.on_dtmf = self.control.on_dtmf
        self.store("X-CONFERENCE-PIN:1234")
        self.join(ALICE)
        self.subscribe(BOB)
        self.assertEqual(self.join(EVE).code, 200)
        [self.eve] = [
            p for p in self.focus.roster.participants(CONF) if p.identity == "sip:eve@example.com"
        ]

    def type(self, digits: str) -> None:
        assert self.muting.on_dtmf is not None
        for digit in digits:
            self.muting.on_dtmf(self.eve.session, digit)

    def test_waiting_is_silent_and_hidden(self) -> None:
        """Until the PIN is typed the caller hears and says nothing and is not shown."""
        self.assertEqual(self.muting.muted[self.eve.session], (True, True))
        root = document(self.notifies()[-1])
        entities = [u.get("entity") for u in root.findall(f"{Q}users/{Q}user")]
        self.assertNotIn("sip:eve@example.com", entities)

    def test_right_pin(self) -> None:
        """The right PIN and # lets them in: unmuted, shown to subscribers."""
        self.type("*9*1234#")
        self.assertIsNone(self.eve.pin_entry)
        self.assertEqual(self.muting.muted[self.eve.session], (False, False))
        root = document(self.notifies()[-1])
        self.assertEqual(endpoint_status(root, "sip:eve@example.com"), ("connected", "sendrecv"))

    def test_three_wrong(self) -> None:
        """Three wrong PINs end the call with BYE, and the source is refused for a while."""
        self.type("1#2#")
        self.assertEqual(self.sender.of("BYE"), [])
        self.type("3#")
        [bye] = self.sender.of("BYE")
        self.assertEqual(bye.call_id, self.eve.dialog.call_id)
        self.assertEqual(self.join(EVE).code, 403)

    def test_other_digits_ignored(self) -> None:
        """Digits from someone not typing a PIN change nothing."""
        [alice] = [p for p in self.focus.roster.participants(CONF) if p.pin_entry is None]
        before = len(self.notifies())
        assert self.muting.on_dtmf is not None
        self.muting.on_dtmf(alice.session, "5")
        self.assertEqual(len(self.notifies()), before)


class RoleChangeTests(ControlFixture):
    """
    Roles follow the calendar while people are in.
    """

    def test_promoted(self) -> None:
        """Bob made CHAIR by a new VEVENT becomes a moderator; subscribers see the new role."""
        self.join(BOB)
        self.subscribe(ALICE)
        self.notifies()
        self.control.changed(CONF)  # same calendar: nothing changes
        before = len(self.notifies())
        record = self.successResultOf(self.stores.conferences.get(CONF))
        assert record is not None
        text = conference_text().replace("RSVP=TRUE:sip:bob", "ROLE=CHAIR;RSVP=TRUE:sip:bob")
        calendar = to_xcal(parse_ical_calendar(text))
        updated = ConferenceRecord(**{**record.__dict__, "calendar": calendar})
        self.successResultOf(self.stores.conferences.put(updated, record.version))
        self.control.changed(CONF)
        [bob] = self.focus.roster.participants(CONF)
        self.assertTrue(bob.role.moderator)
        root = document(self.notifies()[-1])
        self.assertEqual(len(self.notifies()), before + 1)
        [user] = root.findall(f"{Q}users/{Q}user")
        self.assertEqual([e.text for e in user.findall(f"{Q}roles/{Q}entry")], ["chair"])


class StateTests(ControlFixture):
    """
    The conference-info state of a conference.
    """

    def test_unexpandable_calendar(self) -> None:
        """A stored calendar past the expansion budget gives a state without the VEVENT but
        with its subject, one logged error each time, and one bounded expansion a day."""
        record = self.store("RRULE:FREQ=SECONDLY")
        errors = self.watch_errors()
        before = Budget.total
        state = self.control.snapshot(record, self.clock.seconds())
        spent = Budget.total - before
        self.assertLessEqual(spent, MAX_STEPS + 1)
        self.assertEqual(
            (state.description.subject, state.description.calendar), ("Weekly sync", None)
        )
        self.control.snapshot(record, self.clock.seconds())
        self.assertEqual(Budget.total - before, spent)  # the failure is cached
        self.assertEqual(len(errors), 2, errors)
        self.assertFalse(any("log_failure" in e for e in errors))
