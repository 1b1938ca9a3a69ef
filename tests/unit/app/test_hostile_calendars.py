# -*- test-case-name: tests.unit.app.test_hostile_calendars -*-
"""
Regression tests for hostile recurring calendars, replaying the audit's
attacks through the real scheduler (MESSAGE) and focus (INVITE): calendars
made to expand without end, to compare bookings pair by pair, or to store
what cannot be read back are refused when scheduled; a conference stored
before those checks still answers each INVITE with bounded, cached work.
Work is measured with L{Budget.total}, never with a clock.
"""

from __future__ import annotations

from datetime import timedelta

from twisted.trial.unittest import SynchronousTestCase

from conference.calendar import parse_ical_calendar
from conference.calendar.recurrence import ACCEPT_STEPS, LONGEST_WINDOW, MAX_STEPS, Budget
from conference.records import ConferenceRecord
from conference.sip.message import Response
from tests.unit.app.calendars import (
    T0,
    conference_calendar,
    conference_ical,
    conference_record,
    stamp,
)
from tests.unit.app.test_focus import FocusFixture
from tests.unit.app.test_scheduler import CAROL, DAVE, Harness, attendee_of_reply, warning

ICAL = "text/calendar"


def nested_alarms(count: int) -> str:
    """
    C{count} VALARMs, each inside the one before.
    """
    alarm = "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:x\r\nTRIGGER:-PT5M\r\n"
    return alarm * count + "END:VALARM\r\n" * count


def ends_at_the_end_of_time(uid: str = "conf-1@example.com") -> str:
    """
    A conference at 9999-12-31T23:59:59Z lasting a day (DURATION, no DTEND).
    """
    lines = conference_ical(uid=uid, extra="DURATION:P1D").split("\r\n")
    lines = [line for line in lines if not line.startswith("DTEND")]
    return "\r\n".join(lines).replace(f"DTSTART:{stamp(T0)}", "DTSTART:99991231T235959Z")


class SchedulingTests(SynchronousTestCase):
    """
    The attacks sent as iTIP REQUESTs by MESSAGE are refused (400) and
    store nothing, cheaply; what is accepted can be read back and expanded.
    """

    def setUp(self) -> None:
        self.h = Harness()

    def send(self, text: str) -> Response:
        return self.h.message(text.encode("utf-8"), content_type=ICAL)

    def assertRefused(self, response: Response, text: str) -> None:
        self.assertEqual(response.code, 400)
        self.assertIn(text, warning(response))
        self.assertIsNone(self.h.record())

    def test_never_matching_rule(self) -> None:
        """Item 2: SECONDLY;BYMONTH=2;BYMONTHDAY=30 is 400 (3.6) after about a step a day."""
        before = Budget.total
        rule = "FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30"
        self.assertRefused(self.send(conference_ical(rrule=rule)), "3.6 Invalid rule")
        self.assertLess(Budget.total - before, LONGEST_WINDOW.days + 50)

    def test_secondly_without_count(self) -> None:
        """Item 2: FREQ=SECONDLY without COUNT is 400 (3.10) once the budget is spent."""
        before = Budget.total
        self.assertRefused(self.send(conference_ical(rrule="FREQ=SECONDLY")), "3.10")
        self.assertLessEqual(Budget.total - before, ACCEPT_STEPS + 500)

    def test_minutely_bookings(self) -> None:
        """Item 3: two interleaved MINUTELY bookings of 12,000 instances are both accepted
        and an overlapping third is declined, in work linear in the instances."""
        rule = "FREQ=MINUTELY;INTERVAL=2;COUNT=12000"
        minute = timedelta(minutes=1)
        before = Budget.total
        self.assertEqual(self.send(conference_ical(rrule=rule, duration=minute)).code, 200)
        other = conference_ical(
            uid="carol-1@example.com",
            organizer="sip:carol@example.com",
            start=T0 + minute,
            rrule=rule,
            duration=minute,
        )
        self.assertEqual(self.h.message(other.encode(), CAROL, content_type=ICAL).code, 200)
        clash = conference_ical(
            uid="dave-1@example.com",
            organizer="sip:dave@example.com",
            start=T0 + timedelta(days=5, seconds=30),
        )
        self.assertEqual(self.h.message(clash.encode(), DAVE, content_type=ICAL).code, 200)
        replies = [attendee_of_reply(calendar)[1] for _, calendar in self.h.outgoing()]
        self.assertEqual(replies, ["ACCEPTED", "ACCEPTED", "DECLINED"])
        self.assertLess(Budget.total - before, 8 * 24_000)

    def test_nested_alarms(self) -> None:
        """Item 7: 30 (and 600) nested VALARMs are 400, not stored beyond the reader's depth."""
        for count in (30, 600):
            response = self.send(conference_ical(extra=nested_alarms(count).rstrip("\r\n")))
            self.assertRefused(response, "components nested deeper than 21")

    def test_end_of_time(self) -> None:
        """Item 7: DTSTART 9999-12-31T23:59:59Z with DURATION P1D is 400 (3.5)."""
        self.assertRefused(self.send(ends_at_the_end_of_time()), "3.5 Invalid date")

    def test_bad_rule_numbers(self) -> None:
        """Item 7: BYMONTHDAY=0;BYSETPOS=0 is 400 (the RECUR grammar)."""
        rule = "FREQ=MONTHLY;BYMONTHDAY=0;BYSETPOS=0"
        self.assertRefused(self.send(conference_ical(rrule=rule)), "BYMONTHDAY '0' is out of range")

    def test_end_before_start(self) -> None:
        """Item 7: DTEND before DTSTART is 400 (3.5)."""
        text = conference_ical(duration=-timedelta(hours=1))
        self.assertRefused(self.send(text), "DTEND is before DTSTART")


class JoinTests(FocusFixture):
    """
    Conferences stored before the checks existed: each INVITE costs at
    most one bounded expansion a day, and answers without a traceback.
    """

    def put(self, record: ConferenceRecord) -> None:
        existing = self.successResultOf(self.stores.conferences.get(record.uri))
        assert existing is not None
        self.successResultOf(self.stores.conferences.put(record, existing.version))

    def join_costs(self, code: int) -> int:
        """
        INVITE twice; both answers are C{code}; the work of the first.
        """
        before = Budget.total
        self.assertEqual(self.answer(self.invite()).code, code)
        first = Budget.total - before
        self.assertEqual(self.answer(self.invite(call_id="again")).code, code)
        self.assertEqual(Budget.total - before, first)  # the second is a cache hit
        return first

    def test_never_matching_rule(self) -> None:
        """Item 2: a rule that never matches answers 410 after a step a day, not 15 s of scan."""
        rule = "FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30"
        self.store(conference_calendar(uid="item-2a", rrule=rule))
        self.assertLess(self.join_costs(410), LONGEST_WINDOW.days + 50)

    def test_secondly_without_count(self) -> None:
        """Item 2: FREQ=SECONDLY answers 500 "Conference unavailable" once the budget is spent."""
        self.store(conference_calendar(uid="item-2b", rrule="FREQ=SECONDLY"))
        self.assertLessEqual(self.join_costs(500), MAX_STEPS + 1)

    def test_end_of_time(self) -> None:
        """Item 7: DTSTART at the end of time is a 500 without OverflowError."""
        self.store(parse_ical_calendar(ends_at_the_end_of_time(uid="item-7a")))
        self.join_costs(500)

    def test_unreadable_rule(self) -> None:
        """Item 7: a stored BYMONTHDAY=0 (no longer readable) is a 500 without ValueError."""
        record = conference_record(conference_calendar(rrule="FREQ=MONTHLY;BYMONTHDAY=1"))
        calendar = record.calendar.replace(
            b"<bymonthday>1</bymonthday>", b"<bymonthday>0</bymonthday>"
        )
        self.assertNotEqual(calendar, record.calendar)
        self.put(ConferenceRecord(**{**record.__dict__, "calendar": calendar}))
        self.assertEqual(self.answer(self.invite()).code, 500)
