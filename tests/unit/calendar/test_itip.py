# -*- test-case-name: tests.unit.calendar.test_itip -*-
"""
Tests for L{conference.calendar.itip}: each iTIP rule of the issue with an
accepted and a refused case (matching, ordering, authorization, delegation,
per-method rules, several components, Content-Type parameters).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Dict, Optional

from twisted.trial.unittest import SynchronousTestCase

from conference.calendar import values as cv
from conference.calendar.itip import (
    REPLY_STAMP_PARAM,
    ITipResult,
    normalize_address,
    process,
)
from conference.calendar.model import Component
from tests.unit.calendar.support import UTC, Delegations, conference_event, request

ALICE = "sip:alice@example.com"
BOB = "sip:bob@example.com"
CAROL = "sip:carol@example.com"
MALLORY = "sip:mallory@example.com"
ROOM = "sip:room-1@conference.example.com"
T0 = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)
NOW = 1_704_100_000.0


def run(
    stored: Optional[Component],
    incoming: Component,
    identity: str,
    content_type: Optional[Dict[str, str]] = None,
    policy: Optional[Delegations] = None,
    **kw: Any,
) -> ITipResult:
    """
    Call L{process} with defaults: no Content-Type parameters, no
    approved delegates.
    """
    return process(
        stored,
        incoming,
        identity,
        content_type or {},
        policy=policy or Delegations(),
        now=NOW,
        **kw,
    )


def stored_event(**kw: Any) -> Component:
    """
    The state after Alice's first REQUEST of the conference.
    """
    result = run(None, request(conference_event(**kw)), ALICE)
    assert result.accepted and result.state is not None, result.status
    return result.state


def reply(
    attendee: str,
    partstat: str = "ACCEPTED",
    *,
    stamp: datetime = T0,
    seq: int = 0,
    sent_by: Optional[str] = None,
    uid: str = "conf-1@example.com",
) -> Component:
    """
    A REPLY from C{attendee}.
    """
    ev = Component("VEVENT")
    ev.add("UID", uid)
    ev.add("DTSTAMP", stamp)
    ev.add("SEQUENCE", seq)
    ev.add("ORGANIZER", ALICE)
    params = {"PARTSTAT": partstat}
    if sent_by:
        params["SENT-BY"] = sent_by
    ev.add("ATTENDEE", attendee, params)
    return request(ev, method="REPLY")


def partstat(state: Optional[Component], who: str, uid: str = "conf-1@example.com") -> str:
    """
    The stored PARTSTAT of C{who}.
    """
    assert state is not None
    for comp in state.subcomponents("VEVENT"):
        if comp.value("UID") == uid and comp.get("RECURRENCE-ID") is None:
            for att in comp.get_all("ATTENDEE"):
                if att.value == who:
                    return att.param("PARTSTAT", "") or ""
    raise AssertionError(f"{who} not stored")


class MatchingTests(SynchronousTestCase):
    """
    Components match on UID + RECURRENCE-ID.
    """

    def test_instance_stored_beside_master(self) -> None:
        """A REQUEST for one instance becomes an override; the master stays."""
        state = stored_event()
        inst = conference_event(sequence=1, stamp=T0 + timedelta(hours=1))
        inst.add("RECURRENCE-ID", datetime(2024, 1, 2, 10, 0, tzinfo=UTC))
        result = run(state, request(inst), ALICE)
        self.assertTrue(result.accepted)
        assert result.state is not None
        self.assertEqual(len(result.state.subcomponents("VEVENT")), 2)

    def test_unknown_uid_refused(self) -> None:
        """A REPLY for a UID that is not stored is refused (3.11)."""
        result = run(stored_event(), reply(BOB, uid="other"), BOB)
        self.assertEqual((result.accepted, result.code), (False, "3.11"))
        self.assertIn("UID other unknown", result.reason)


class OrderingTests(SynchronousTestCase):
    """
    Higher SEQUENCE wins, then later DTSTAMP; stale messages are ignored.
    """

    def test_higher_sequence_wins(self) -> None:
        """A REQUEST with a higher SEQUENCE replaces the stored one."""
        update = conference_event(sequence=1, stamp=T0 - timedelta(days=1))
        update.set("SUMMARY", "Moved")
        result = run(stored_event(), request(update), ALICE)
        self.assertTrue(result.accepted)
        assert result.state is not None
        self.assertEqual(result.state.subcomponents("VEVENT")[0].value("SUMMARY"), "Moved")

    def test_lower_sequence_stale(self) -> None:
        """A REQUEST with a lower SEQUENCE is stale (3.4), state untouched."""
        state = stored_event(sequence=3)
        result = run(state, request(conference_event(sequence=2, stamp=T0 + timedelta(1))), ALICE)
        self.assertEqual((result.accepted, result.code), (False, "3.4"))
        self.assertIs(result.state, state)

    def test_later_dtstamp_wins(self) -> None:
        """Same SEQUENCE and a later DTSTAMP is newer."""
        result = run(stored_event(), request(conference_event(stamp=T0 + timedelta(1))), ALICE)
        self.assertTrue(result.accepted)

    def test_same_dtstamp_stale(self) -> None:
        """Same SEQUENCE and the same DTSTAMP (a retransmission) is stale."""
        result = run(stored_event(), request(conference_event()), ALICE)
        self.assertEqual(result.code, "3.4")

    def test_reply_ordering_per_attendee(self) -> None:
        """A REPLY older than that attendee's last one is stale; other attendees' are not."""
        state = run(
            stored_event(), reply(BOB, "ACCEPTED", stamp=T0 + timedelta(hours=2)), BOB
        ).state
        self.assertEqual(partstat(state, BOB), "ACCEPTED")
        late = run(state, reply(BOB, "DECLINED", stamp=T0 + timedelta(hours=1)), BOB)
        self.assertEqual((late.accepted, late.code), (False, "3.4"))
        self.assertIn("last REPLY", late.reason)
        other = run(state, reply(CAROL, "DECLINED", stamp=T0 + timedelta(hours=1)), CAROL)
        self.assertTrue(other.accepted)
        self.assertEqual(partstat(other.state, CAROL), "DECLINED")
        newer = run(state, reply(BOB, "DECLINED", stamp=T0 + timedelta(hours=3)), BOB)
        self.assertEqual(partstat(newer.state, BOB), "DECLINED")

    def test_reply_to_old_sequence_stale(self) -> None:
        """A REPLY to an older SEQUENCE than stored is stale."""
        result = run(stored_event(sequence=2), reply(BOB, seq=1), BOB)
        self.assertEqual(result.code, "3.4")


class OrganizerAuthorityTests(SynchronousTestCase):
    """
    Only the ORGANIZER or an approved SENT-BY delegate may REQUEST, ADD,
    CANCEL, DECLINECOUNTER (and PUBLISH).
    """

    def test_request_by_organizer(self) -> None:
        """The organizer's REQUEST is accepted with 2.0."""
        result = run(None, request(conference_event()), ALICE)
        self.assertEqual((result.accepted, result.code, result.reason), (True, "2.0", "Success"))

    def test_request_by_other_refused(self) -> None:
        """Someone else's REQUEST for Alice's event is refused (3.8)."""
        result = run(None, request(conference_event()), MALLORY)
        self.assertEqual((result.accepted, result.code), (False, "3.8"))
        self.assertIsNone(result.state)

    def test_organizer_takeover_refused(self) -> None:
        """A REQUEST naming a different ORGANIZER for a stored UID is refused."""
        result = run(
            stored_event(), request(conference_event(organizer=MALLORY, sequence=5)), MALLORY
        )
        self.assertEqual(result.code, "3.8")
        self.assertIn("differs from the stored", result.reason)

    def test_identity_normalized(self) -> None:
        """Scheme and host case, sips and URI parameters do not defeat the match."""
        result = run(None, request(conference_event()), "SIPS:alice@EXAMPLE.com;transport=tls")
        self.assertTrue(result.accepted)

    def test_approved_delegate(self) -> None:
        """A SENT-BY delegate the policy approves may REQUEST."""
        event = conference_event()
        event.set("ORGANIZER", ALICE, {"SENT-BY": CAROL})
        policy = Delegations((ALICE, CAROL))
        result = run(None, request(event), CAROL, policy=policy)
        self.assertTrue(result.accepted)
        self.assertEqual(policy.asked, [(ALICE, CAROL, NOW)])

    def test_unapproved_delegate_refused(self) -> None:
        """A SENT-BY delegate the policy does not approve is refused."""
        event = conference_event()
        event.set("ORGANIZER", ALICE, {"SENT-BY": MALLORY})
        result = run(None, request(event), MALLORY)
        self.assertEqual(result.code, "3.8")
        self.assertIn("not an approved delegate", result.reason)

    def test_missing_organizer(self) -> None:
        """A REQUEST without ORGANIZER is refused (3.11)."""
        event = conference_event()
        event.remove("ORGANIZER")
        self.assertEqual(run(None, request(event), ALICE).code, "3.11")

    def test_add(self) -> None:
        """ADD from the organizer adds an RDATE; from anyone else it is refused."""
        added = conference_event(sequence=1, start=datetime(2024, 1, 9, 10, tzinfo=UTC))
        result = run(stored_event(), request(added, method="ADD"), ALICE)
        self.assertTrue(result.accepted)
        assert result.state is not None
        master = result.state.subcomponents("VEVENT")[0]
        self.assertEqual(master.value("RDATE"), datetime(2024, 1, 9, 10, tzinfo=UTC))
        self.assertEqual(master.value("SEQUENCE"), 1)
        refused = run(stored_event(), request(added, method="ADD"), BOB)
        self.assertEqual(refused.code, "3.8")

    def test_add_unknown_sends_refresh(self) -> None:
        """ADD for an unknown UID is refused and a REFRESH goes to the organizer."""
        result = run(
            None, request(conference_event(), method="ADD"), ALICE, server_addresses=[ROOM]
        )
        self.assertEqual((result.accepted, result.code), (False, "3.11"))
        [out] = result.outgoing
        self.assertEqual((out.method, out.recipients), ("REFRESH", (ALICE,)))
        [ev] = out.calendar.subcomponents("VEVENT")
        self.assertEqual([a.value for a in ev.get_all("ATTENDEE")], [ROOM])
        self.assertIn("REFRESH sent", result.reason)

    def test_cancel(self) -> None:
        """CANCEL from the organizer marks the event CANCELLED; from others it is refused."""
        cancel = conference_event(sequence=1)
        self.assertEqual(run(stored_event(), request(cancel, method="CANCEL"), BOB).code, "3.8")
        result = run(stored_event(), request(cancel, method="CANCEL"), ALICE)
        self.assertTrue(result.accepted)
        assert result.state is not None
        self.assertEqual(result.state.subcomponents("VEVENT")[0].value("STATUS"), "CANCELLED")

    def test_cancel_instance_excludes_it(self) -> None:
        """CANCEL of one instance without override adds an EXDATE to the master."""
        cancel = conference_event(sequence=1)
        rid = datetime(2024, 1, 9, 10, tzinfo=UTC)
        cancel.add("RECURRENCE-ID", rid)
        result = run(stored_event(), request(cancel, method="CANCEL"), ALICE)
        assert result.state is not None
        self.assertEqual(result.state.subcomponents("VEVENT")[0].value("EXDATE"), rid)

    def test_declinecounter(self) -> None:
        """DECLINECOUNTER is accepted from the organizer only, without changing state."""
        state = stored_event()
        msg = request(conference_event(), method="DECLINECOUNTER")
        ok = run(state, msg, ALICE)
        self.assertTrue(ok.accepted)
        self.assertIs(ok.state, state)
        self.assertEqual(run(state, msg, BOB).code, "3.8")


class AttendeeTests(SynchronousTestCase):
    """
    REPLY carries exactly one ATTENDEE, sent by that attendee (or its
    approved delegate); REFRESH and COUNTER come only from attendees.
    """

    def test_reply_applied(self) -> None:
        """Bob's REPLY sets Bob's PARTSTAT and remembers its DTSTAMP privately."""
        result = run(stored_event(), reply(BOB, "TENTATIVE"), BOB)
        self.assertTrue(result.accepted)
        self.assertEqual(partstat(result.state, BOB), "TENTATIVE")
        assert result.state is not None
        att = next(
            a for a in result.state.subcomponents("VEVENT")[0].get_all("ATTENDEE") if a.value == BOB
        )
        self.assertEqual(att.param(REPLY_STAMP_PARAM), "20240101T090000Z")

    def test_reply_two_attendees_refused(self) -> None:
        """A REPLY with two ATTENDEEs is refused (3.1)."""
        msg = reply(BOB)
        msg.components[0].add("ATTENDEE", CAROL, {"PARTSTAT": "ACCEPTED"})
        result = run(stored_event(), msg, BOB)
        self.assertEqual((result.accepted, result.code), (False, "3.1"))

    def test_reply_for_someone_else_refused(self) -> None:
        """Bob may not answer for Carol (iSIP 2.2.1)."""
        result = run(stored_event(), reply(CAROL, "DECLINED"), BOB)
        self.assertEqual(result.code, "3.8")

    def test_reply_by_approved_delegate(self) -> None:
        """Carol's approved delegate may answer for her; an unapproved one may not."""
        ok = run(stored_event(), reply(CAROL, sent_by=BOB), BOB, policy=Delegations((CAROL, BOB)))
        self.assertTrue(ok.accepted)
        no = run(stored_event(), reply(CAROL, sent_by=BOB), BOB)
        self.assertEqual(no.code, "3.8")

    def test_reply_uninvited_refused(self) -> None:
        """A REPLY from someone not invited is refused (3.7)."""
        result = run(stored_event(), reply(MALLORY), MALLORY)
        self.assertEqual(result.code, "3.7")

    def test_reply_for_instance_creates_override(self) -> None:
        """A REPLY for one instance creates that instance's override."""
        msg = reply(BOB, "DECLINED")
        rid = datetime(2024, 1, 9, 10, tzinfo=UTC)
        msg.components[0].add("RECURRENCE-ID", rid)
        result = run(stored_event(), msg, BOB)
        self.assertTrue(result.accepted)
        assert result.state is not None
        override = next(e for e in result.state.subcomponents("VEVENT") if e.get("RECURRENCE-ID"))
        self.assertEqual(override.value("DTSTART"), rid)
        self.assertEqual(override.value("DTEND"), rid + timedelta(hours=1))
        self.assertEqual(partstat(result.state, BOB), "NEEDS-ACTION")

    def test_refresh(self) -> None:
        """REFRESH from an attendee gets the stored event back; from others it is refused."""
        msg = reply(BOB)
        msg.set("METHOD", "REFRESH")
        state = run(stored_event(), reply(BOB), BOB).state
        result = run(state, msg, BOB)
        self.assertTrue(result.accepted)
        self.assertIs(result.state, state)
        [out] = result.outgoing
        self.assertEqual((out.method, out.recipients), ("REQUEST", (BOB,)))
        self.assertEqual(out.calendar.value("METHOD"), "REQUEST")
        for att in out.calendar.subcomponents("VEVENT")[0].get_all("ATTENDEE"):
            self.assertNotIn(REPLY_STAMP_PARAM, att.params)
        self.assertEqual(run(state, msg, MALLORY).code, "3.8")

    def test_counter(self) -> None:
        """COUNTER from an attendee is forwarded to the organizer; from others refused."""
        proposal = conference_event(start=datetime(2024, 1, 3, 10, tzinfo=UTC))
        msg = request(proposal, method="COUNTER")
        result = run(stored_event(), msg, BOB)
        self.assertTrue(result.accepted)
        self.assertEqual(
            [(o.method, o.recipients) for o in result.outgoing], [("COUNTER", (ALICE,))]
        )
        self.assertEqual(run(stored_event(), msg, MALLORY).code, "3.8")


class PublishTests(SynchronousTestCase):
    """
    PUBLISH has no attendee semantics.
    """

    def test_publish_no_replies(self) -> None:
        """A PUBLISH inviting the server's room stores the event but sends nothing."""
        result = run(
            None, request(conference_event(), method="PUBLISH"), ALICE, server_addresses=[ROOM]
        )
        self.assertTrue(result.accepted)
        self.assertEqual(result.outgoing, [])
        self.assertEqual(partstat(result.state, ROOM), "")

    def test_publish_by_other_refused(self) -> None:
        """PUBLISH of Alice's event by someone else is refused."""
        result = run(None, request(conference_event(), method="PUBLISH"), BOB)
        self.assertEqual(result.code, "3.8")


def with_partstat(event: Component, who: str, partstat: str, **params: str) -> Component:
    """
    C{event} with the ATTENDEE C{who} given C{partstat} (and C{params}),
    as an organizer's client may write it.
    """
    for att in event.get_all("ATTENDEE"):
        if att.value == who:
            att.params["PARTSTAT"] = (partstat,)
            att.params.update({k: (v,) for k, v in params.items()})
    return event


class OrganizerSpeaksForItselfTests(SynchronousTestCase):
    """
    Only an attendee's own REPLY sets their PARTSTAT; a REQUEST cannot.
    """

    def test_new_request_cannot_accept_for_attendees(self) -> None:
        """A first REQUEST saying Bob ACCEPTED stores Bob NEEDS-ACTION."""
        event = with_partstat(conference_event(), BOB, "ACCEPTED")
        result = run(None, request(event), ALICE)
        self.assertTrue(result.accepted)
        self.assertEqual(partstat(result.state, BOB), "NEEDS-ACTION")

    def test_update_keeps_what_attendees_replied(self) -> None:
        """An update's PARTSTATs give way to replies: Bob stays DECLINED, Carol NEEDS-ACTION."""
        state = run(stored_event(), reply(BOB, "DECLINED"), BOB).state
        update = conference_event(sequence=1)
        with_partstat(update, BOB, "ACCEPTED")
        with_partstat(update, CAROL, "TENTATIVE")
        result = run(state, request(update), ALICE)
        self.assertTrue(result.accepted)
        self.assertEqual(partstat(result.state, BOB), "DECLINED")
        self.assertEqual(partstat(result.state, CAROL), "NEEDS-ACTION")

    def test_organizer_may_ask_again(self) -> None:
        """After a change the organizer may reset an accepted attendee to NEEDS-ACTION."""
        state = run(stored_event(), reply(BOB, "ACCEPTED"), BOB).state
        self.assertEqual(partstat(state, BOB), "ACCEPTED")
        result = run(state, request(conference_event(sequence=1)), ALICE)
        self.assertEqual(partstat(result.state, BOB), "NEEDS-ACTION")

    def test_organizer_own_attendance(self) -> None:
        """The organizer listed as an attendee answers for itself."""
        event = conference_event(attendees=(ALICE, BOB))
        result = run(None, request(with_partstat(event, ALICE, "ACCEPTED")), ALICE)
        self.assertEqual(partstat(result.state, ALICE), "ACCEPTED")

    def test_forged_reply_stamp_dropped(self) -> None:
        """A reply stamp written into a REQUEST is dropped, so Bob's REPLY still counts."""
        far = "29991231T000000Z"
        event = with_partstat(conference_event(), BOB, "NEEDS-ACTION", **{REPLY_STAMP_PARAM: far})
        state = run(None, request(event), ALICE).state
        result = run(state, reply(BOB, "ACCEPTED"), BOB)
        self.assertTrue(result.accepted, result.reason)
        self.assertEqual(partstat(result.state, BOB), "ACCEPTED")

    def test_reply_stamp_survives_update(self) -> None:
        """After an update, a REPLY older than Bob's last one is still stale."""
        state = run(
            stored_event(), reply(BOB, "ACCEPTED", stamp=T0 + timedelta(hours=2)), BOB
        ).state
        state = run(state, request(conference_event(sequence=1)), ALICE).state
        late = run(state, reply(BOB, "DECLINED", stamp=T0 + timedelta(hours=1), seq=1), BOB)
        self.assertEqual(late.code, "3.4")


class ServerAttendeeTests(SynchronousTestCase):
    """
    A REQUEST inviting an address the server answers for is auto-accepted.
    """

    def test_room_accepts(self) -> None:
        """The room's PARTSTAT becomes ACCEPTED and a REPLY goes to the organizer."""
        result = run(None, request(conference_event()), ALICE, server_addresses=[ROOM])
        self.assertEqual(partstat(result.state, ROOM), "ACCEPTED")
        [out] = result.outgoing
        self.assertEqual((out.method, out.recipients), ("REPLY", (ALICE,)))
        [ev] = out.calendar.subcomponents("VEVENT")
        self.assertEqual([a.value for a in ev.get_all("ATTENDEE")], [ROOM])
        self.assertEqual(ev.value("DTSTAMP"), datetime.fromtimestamp(int(NOW), UTC))

    def test_not_invited_no_reply(self) -> None:
        """Without the room among the attendees nothing is sent."""
        result = run(None, request(conference_event(room=None)), ALICE, server_addresses=[ROOM])
        self.assertEqual(result.outgoing, [])


class MessageShapeTests(SynchronousTestCase):
    """
    METHOD, Content-Type parameters and several components per message.
    """

    def test_several_components(self) -> None:
        """Two components of one METHOD (iSIP 4.3) are both applied."""
        msg = request(conference_event(uid="a"), conference_event(uid="b"), method="PUBLISH")
        result = run(None, msg, ALICE, {"method": "PUBLISH", "component": "VEVENT"})
        self.assertTrue(result.accepted)
        assert result.state is not None
        self.assertEqual({e.value("UID") for e in result.state.subcomponents("VEVENT")}, {"a", "b"})
        self.assertEqual([d[0] for d in result.details], ["a", "b"])

    def test_several_components_all_or_nothing(self) -> None:
        """If one component is refused, none is applied."""
        msg = request(conference_event(uid="a"), conference_event(uid="b", organizer=BOB))
        result = run(None, msg, ALICE)
        self.assertEqual(result.code, "3.8")
        self.assertIsNone(result.state)
        self.assertEqual([d[2].code for d in result.details], ["2.0", "3.8"])

    def test_content_type_method_must_match(self) -> None:
        """METHOD must equal the Content-Type method parameter (case-insensitive)."""
        msg = request(conference_event())
        self.assertTrue(run(None, msg, ALICE, {"Method": '"request"'}).accepted)
        result = run(None, msg, ALICE, {"method": "PUBLISH"})
        self.assertEqual((result.accepted, result.code), (False, "3.1"))

    def test_content_type_components_must_match(self) -> None:
        """The component parameter must list exactly what is inside."""
        msg = request(conference_event())
        self.assertTrue(run(None, msg, ALICE, {"component": "VEVENT,VTIMEZONE"}).accepted)
        more = run(None, msg, ALICE, {"component": "VEVENT,VTODO"})
        self.assertEqual(more.code, "3.11")
        fewer = run(None, msg, ALICE, {"component": "VTODO"})
        self.assertEqual(fewer.code, "3.12")

    def test_method_required(self) -> None:
        """No METHOD is refused (3.11); an unknown one too (3.14)."""
        msg = request(conference_event())
        msg.remove("METHOD")
        self.assertEqual(run(None, msg, ALICE).code, "3.11")
        msg.add("METHOD", "FROB")
        self.assertEqual(run(None, msg, ALICE).code, "3.14")

    def test_uid_and_dtstamp_required(self) -> None:
        """Components without UID or DTSTAMP are refused (3.11)."""
        for name in ("UID", "DTSTAMP"):
            event = conference_event()
            event.remove(name)
            result = run(None, request(event), ALICE)
            self.assertEqual((result.code, result.status.data), ("3.11", name))

    def test_bad_sequence(self) -> None:
        """A negative SEQUENCE is refused (3.1)."""
        event = conference_event()
        event.set("SEQUENCE", -1, None, cv.INTEGER)
        self.assertEqual(run(None, request(event), ALICE).code, "3.1")

    def test_timezones_kept(self) -> None:
        """VTIMEZONEs of the message are stored once, replacing older copies."""
        msg = request(conference_event())
        tz = Component("VTIMEZONE")
        tz.add("TZID", "Europe/Helsinki")
        msg.components.insert(0, tz)
        state = run(None, msg, ALICE).state
        assert state is not None
        again = request(conference_event(sequence=1))
        again.components.insert(0, tz.copy())
        state2 = run(state, again, ALICE).state
        assert state2 is not None
        self.assertEqual(len(state2.subcomponents("VTIMEZONE")), 1)


class FreeBusyRequestTests(SynchronousTestCase):
    """
    VFREEBUSY requests are answered with build_freebusy, not stored.
    """

    def test_refused_with_hint(self) -> None:
        """A REQUEST for free/busy is refused (3.14) naming the free/busy path."""
        fb = Component("VFREEBUSY")
        fb.add("UID", "fb")
        fb.add("DTSTAMP", T0)
        fb.add("ORGANIZER", ALICE)
        result = run(None, request(fb), ALICE)
        self.assertEqual(result.code, "3.14")
        self.assertIn("VFREEBUSY", result.reason)

    def test_publish_stored(self) -> None:
        """A published VFREEBUSY (iSIP 4.5) from its organizer is stored."""
        fb = Component("VFREEBUSY")
        fb.add("UID", "fb")
        fb.add("DTSTAMP", T0)
        fb.add("ORGANIZER", ALICE)
        result = run(None, request(fb, method="PUBLISH"), ALICE)
        self.assertTrue(result.accepted)


class AddressTests(SynchronousTestCase):
    """
    Calendar user address normalization.
    """

    def test_normalize(self) -> None:
        """sip/sips compare as sip without parameters; mailto is case-folded."""
        self.assertEqual(
            normalize_address(" SIPS:Bob@Example.COM;transport=tls?x=y "), "sip:Bob@example.com"
        )
        self.assertEqual(normalize_address("MAILTO:Bob@Example.com"), "mailto:bob@example.com")
        self.assertEqual(normalize_address("tel:+1-555"), "tel:+1-555")
        self.assertEqual(normalize_address("Plain"), "plain")


class StorableTests(SynchronousTestCase):
    """
    What cannot be stored (read back, expanded, cancelled later) is
    refused at input; what is stored can always be cancelled.
    """

    def test_refused_whole(self) -> None:
        """A REQUEST with DTEND before DTSTART is refused 3.5: nothing changes, nothing is sent."""
        event = conference_event()
        event.set("DTEND", event.value("DTSTART") - timedelta(hours=1))
        result = run(None, request(event), ALICE, server_addresses=[ROOM])
        self.assertEqual((result.accepted, result.code), (False, "3.5"))
        self.assertIsNone(result.state)
        self.assertEqual(result.outgoing, [])

    def test_runaway_rule(self) -> None:
        """An RRULE that never matches is refused 3.6."""
        event = conference_event()
        event.add("RRULE", cv.parse_recur("FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30"))
        result = run(None, request(event), ALICE)
        self.assertEqual((result.accepted, result.code), (False, "3.6"))

    def test_reply_override_checked(self) -> None:
        """A REPLY whose RECURRENCE-ID makes an override beyond the year 9000 is refused 3.5."""
        master = conference_event()
        master.add("RRULE", cv.parse_recur("FREQ=WEEKLY"))
        state = run(None, request(master), ALICE).state
        for year in (9500, 9999):  # the second would end past the calendar
            answer = reply(BOB)
            answer.subcomponents("VEVENT")[0].add(
                "RECURRENCE-ID", datetime(year, 12, 31, 23, 30, tzinfo=UTC)
            )
            result = run(state, answer, BOB)
            self.assertEqual((result.accepted, result.code), (False, "3.5"), result.reason)

    def test_bad_stored_event_can_be_cancelled(self) -> None:
        """An event stored before the checks existed, and unexpandable, can still be cancelled."""
        bad = conference_event()
        bad.add("RRULE", cv.parse_recur("FREQ=SECONDLY"))
        state = request(bad)
        result = run(state, request(conference_event(sequence=1), method="CANCEL"), ALICE)
        self.assertTrue(result.accepted, result.status)
