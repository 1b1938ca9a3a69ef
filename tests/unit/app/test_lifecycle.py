# -*- test-case-name: tests.unit.app.test_lifecycle -*-
"""
Tests for L{conference.app.lifecycle}: a live conference is warned before
DTEND, ended after it (per instance of a recurring one), and ended at once
when cancelled; all on a fake clock.
"""

from __future__ import annotations

from typing import Any, List

from conference.app.lifecycle import REREAD, ConferenceLifecycle
from conference.calendar.recurrence import MAX_STEPS, Budget
from conference.records import ConferenceRecord
from tests.unit.app.calendars import T0
from tests.unit.app.controlfixture import ALICE, BOB, CAROL, CONF, ControlFixture
from tests.unit.app.test_confevents import document
from tests.unit.app.test_control import Q

END = T0.timestamp() + 3600


class LifecycleTests(ControlFixture):
    """
    The schedule of a live conference.
    """

    def setUp(self) -> None:
        super().setUp()
        self.lifecycle = ConferenceLifecycle(self.focus, self.clock, warning=300, grace=120)
        self.control.ending = self.lifecycle.ends_at

    def test_nobody_in_no_timer(self) -> None:
        """A conference nobody is in has no timer."""
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_warn_then_end(self) -> None:
        """Five minutes before DTEND subscribers see the warning; after the grace, BYE to all."""
        self.join(ALICE)
        self.join(BOB)
        self.subscribe(CAROL, expires="7200")
        self.notifies()
        self.clock.advance(END - 300 - self.clock.seconds())
        root = document(self.notifies()[-1])
        self.assertEqual(
            root.findtext(f"{Q}conference-description/{Q}free-text"),
            "This conference ends at 2026-12-01T10:00:00Z.",
        )
        self.assertEqual(self.sender.of("BYE"), [])
        self.clock.advance(300 + 119)
        self.assertEqual(self.sender.of("BYE"), [])
        self.clock.advance(1)
        self.assertEqual(len(self.sender.of("BYE")), 2)
        self.assertEqual(self.focus.roster.count(CONF), 0)
        self.assertEqual(self.lifecycle.ends_at(CONF), None)

    def test_warning_reaches_media(self) -> None:
        """At DTEND minus the warning time the media service warns each participant once."""
        self.join(ALICE)
        self.join(BOB)
        self.clock.advance(END - 300 - 1 - self.clock.seconds())
        self.assertEqual(self.media.warnings, [])
        self.clock.advance(1)
        sessions = [p.session for p in self.focus.roster.participants(CONF)]
        self.assertEqual(self.media.warnings, [(s, END, END - 300) for s in sessions])
        self.clock.advance(100)
        self.assertEqual(len(self.media.warnings), 2)

    def test_join_late_warned_at_once(self) -> None:
        """Someone joining inside the warning window is warned at once."""
        self.clock.advance(END - 60 - self.clock.seconds())
        self.join(ALICE)
        self.assertEqual(self.lifecycle.ends_at(CONF), END)

    def test_cancel_ends_now(self) -> None:
        """A conference cancelled while live ends at once with BYE to everyone."""
        self.join(ALICE)
        self.join(BOB)
        record = self.successResultOf(self.stores.conferences.get(CONF))
        assert record is not None
        cancelled = ConferenceRecord(**{**record.__dict__, "state": "cancelled"})
        self.successResultOf(self.stores.conferences.put(cancelled, record.version))
        self.lifecycle.changed(CONF)
        self.assertEqual(len(self.sender.of("BYE")), 2)
        self.assertEqual(self.focus.roster.count(CONF), 0)

    def test_moved_end(self) -> None:
        """A new DTEND (the record changed) moves the end."""
        self.join(ALICE)
        self.store("", max_participants="10")  # same times: nothing moves
        self.lifecycle.changed(CONF)
        self.clock.advance(END + 120 - self.clock.seconds())
        self.assertEqual(len(self.sender.of("BYE")), 1)

    def test_joins_read_once_a_second(self) -> None:
        """Joins within REREAD of the last read keep its timer; a later one reads again."""
        armed = self.counted_arms()
        self.join(ALICE)
        self.join(BOB)
        self.assertEqual(armed, [CONF])
        self.clock.advance(REREAD)
        self.join(CAROL)
        self.assertEqual(armed, [CONF, CONF])
        self.store("", max_participants="10")
        self.lifecycle.changed(CONF)  # a record change re-arms at once
        self.assertEqual(len(armed), 3)

    def counted_arms(self) -> List[str]:
        """The URIs L{ConferenceLifecycle._arm} is called for (one per record read)."""
        armed: List[str] = []
        arm = self.lifecycle._arm

        def counted(record: Any, uri: str) -> None:
            armed.append(uri)
            arm(record, uri)

        self.lifecycle._arm = counted  # type: ignore[method-assign]
        return armed

    def pending(self) -> List[Any]:
        """The lifecycle's timers still armed (those due around DTEND)."""
        return [c for c in self.clock.getDelayedCalls() if c.active() and c.getTime() > END - 400]

    def test_empty_rests_then_rejoin_without_read(self) -> None:
        """The last one leaving cancels the timer; a join within REREAD arms it again
        from the same reading, a later one reads the record again."""
        armed = self.counted_arms()
        joined = self.join(ALICE)
        self.assertEqual(len(self.pending()), 1)
        self.in_call(joined, "BYE")
        self.assertEqual(self.pending(), [])
        self.join(BOB)
        self.assertEqual(armed, [CONF])
        self.assertEqual(len(self.pending()), 1)
        self.clock.advance(END + 120 - self.clock.seconds())
        self.assertEqual(len(self.sender.of("BYE")), 1)

    def test_rest_past_reread_reads_again(self) -> None:
        """A schedule that rested longer than REREAD is forgotten: the next join reads."""
        armed = self.counted_arms()
        self.in_call(self.join(ALICE), "BYE")
        self.clock.advance(REREAD)
        self.join(BOB)
        self.assertEqual(armed, [CONF, CONF])
        self.assertEqual(len(self.pending()), 1)

    def test_rejoin_in_window_warned_again(self) -> None:
        """Inside the warning window, a join after everyone left is warned at once again."""
        self.clock.advance(END - 60 - self.clock.seconds())
        joined = self.join(ALICE)
        self.assertEqual(len(self.media.warnings), 1)
        self.in_call(joined, "BYE")
        self.assertIsNone(self.lifecycle.ends_at(CONF))
        self.join(BOB)
        self.assertEqual(len(self.media.warnings), 2)
        self.assertEqual(self.lifecycle.ends_at(CONF), END)

    def test_resting_record_change_forgets(self) -> None:
        """A record change while nobody is in forgets the resting schedule."""
        armed = self.counted_arms()
        self.in_call(self.join(ALICE), "BYE")
        self.lifecycle.changed(CONF)
        self.join(BOB)
        self.assertEqual(armed, [CONF, CONF])

    def test_recurring_back_to_back(self) -> None:
        """At the end of one hourly instance the next, already open, keeps the call."""
        self.store("RRULE:FREQ=HOURLY;COUNT=2")
        self.join(ALICE)
        self.clock.advance(END + 120 - self.clock.seconds())
        self.assertEqual(self.sender.of("BYE"), [])
        self.clock.advance(3600)
        self.assertEqual(len(self.sender.of("BYE")), 1)

    def test_unexpandable_calendar(self) -> None:
        """A live conference whose stored calendar no longer expands within the budget
        is ended with one logged error, nothing raised."""
        self.join(ALICE)
        self.store("RRULE:FREQ=SECONDLY")
        errors = self.watch_errors()
        before = Budget.total
        self.lifecycle.changed(CONF)
        self.assertLessEqual(Budget.total - before, MAX_STEPS + 1)
        self.assertEqual(len(errors), 1, errors)
        self.assertNotIn("log_failure", errors[0])
        self.assertEqual(len(self.sender.of("BYE")), 1)
        self.assertEqual(self.focus.roster.count(CONF), 0)

    def test_stop(self) -> None:
        """Stopping cancels the timers."""
        self.join(ALICE)
        self.lifecycle.stop()
        self.assertEqual(self.pending(), [])
