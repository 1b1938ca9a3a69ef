# -*- test-case-name: tests.unit.app.test_bookings -*-
"""
Tests for L{conference.app.bookings}: the attendee and organizer byte
caps, the holders of a booking, and, through the scheduler over real
stores, the attacks and faults of a hostile organizer: one MESSAGE
amplified into a thousand stored copies, and a conference stored without
its calendar entries by a failure between two writes.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import timedelta
from typing import Any, Optional, Tuple

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase

from conference.app.bookings import (
    DEFAULT_MAX_ATTENDEES,
    attendee_counts,
    entry_calendar,
    holders_of,
)
from conference.app.conferences import calendar_of, uids_of
from conference.app.core import CoreRouter, RequestContext
from conference.app.scheduler import SchedulingHandler
from conference.auth import SIPIdentity
from conference.calendar import Component, parse_ical_calendar, to_xcal
from conference.records import CalendarEntry
from conference.sip.errors import RemoteProtocolError
from conference.sip.message import Response
from conference.store.sqlite import open_sqlite
from conference.store.stores import Stores
from tests.builders import make_request
from tests.unit.app.calendars import T0, conference_ical
from tests.unit.app.test_scheduler import (
    ALICE,
    BOB,
    PEER,
    ROOM,
    XCAL,
    Harness,
    reply_ical,
    warning,
    xcal,
)
from tests.unit.store.faults import Faults, faulty

DOMAIN = "example.com"
#: The audit's message: 1,250 local attendees, all ACCEPTED (63 KB).
CROWD = 1250


def crowd_ical(count: int = CROWD, **kwargs: Any) -> str:
    """
    A REQUEST from alice listing C{count} local attendees as ACCEPTED.
    """
    lines = "\r\n".join(f"ATTENDEE;PARTSTAT=ACCEPTED:sip:u{i:04d}@{DOMAIN}" for i in range(count))
    text = conference_ical(attendees=(), **kwargs)
    return text.replace("END:VEVENT", lines + "\r\nEND:VEVENT")


def reply_of(user: str) -> Tuple[bytes, SIPIdentity]:
    """
    The REPLY by which C{user} of the crowd accepts, with their identity:
    only an attendee's own REPLY makes them hold the booking (an
    organizer's ACCEPTED is stored NEEDS-ACTION, docs/scheduling.rst).
    """
    return xcal(reply_ical(f"sip:{user}@{DOMAIN}", "ACCEPTED")), SIPIdentity(user, DOMAIN)


def local(address: str) -> bool:
    """
    Whether C{address} is in the served domain of these tests.
    """
    return address.endswith("@" + DOMAIN)


class CountTests(SynchronousTestCase):
    """
    L{attendee_counts} and the attendee cap.
    """

    def test_counts_per_event(self) -> None:
        """Distinct attendees are counted per UID, over master and overrides."""
        text = conference_ical(attendees=("sip:bob@example.com", "sip:bob@EXAMPLE.com"))
        calendar = parse_ical_calendar(text)
        override = parse_ical_calendar(
            conference_ical(
                attendees=("sip:carol@example.com",),
                extra="RECURRENCE-ID:20261208T090000Z",
            )
        )
        calendar.components.extend(override.components)
        other = parse_ical_calendar(conference_ical(uid="two", attendees=()))
        calendar.components.extend(other.components)
        self.assertEqual(attendee_counts(calendar), {"conf-1@example.com": 3, "two": 1})

    def test_cap(self) -> None:
        """An event over the cap is 413 with a Warning naming it and both numbers."""
        h = Harness()
        h.handler.bookings.max_attendees = 2
        response = h.schedule(attendees=("sip:bob@example.com", "sip:carol@example.com"))
        self.assertEqual(response.code, 413)
        self.assertEqual(
            warning(response), "event conf-1@example.com has 3 attendees; at most 2 are allowed"
        )

    def test_no_cap(self) -> None:
        """None turns the cap off: the 1,250 attendees are scheduled, and may accept."""
        h = Harness()
        h.handler.bookings.max_attendees = None
        response = h.message(crowd_ical().encode(), content_type="text/calendar")
        self.assertEqual(response.code, 200)
        record = h.record()
        assert record is not None
        self.assertEqual(attendee_counts(calendar_of(record)), {"conf-1@example.com": CROWD + 1})
        self.assertEqual(h.message(*reply_of("u1249")).code, 200)
        self.assertEqual(len(h.entries("sip:u1249@example.com")), 1)

    def test_default(self) -> None:
        """The default cap refuses the audit's 1,250 attendees and takes 249."""
        bookings = Harness().handler.bookings
        self.assertEqual(bookings.max_attendees, DEFAULT_MAX_ATTENDEES)
        with self.assertRaises(RemoteProtocolError) as caught:
            bookings.check(parse_ical_calendar(crowd_ical()), DOMAIN)
        self.assertEqual(caught.exception.status, 413)
        bookings.check(parse_ical_calendar(crowd_ical(DEFAULT_MAX_ATTENDEES - 1)), DOMAIN)


class HoldersTests(SynchronousTestCase):
    """
    L{holders_of} and L{entry_calendar}.
    """

    def calendar(self, text: str) -> Component:
        return parse_ical_calendar(text)

    def test_who_holds(self) -> None:
        """The organizer and the ACCEPTED and TENTATIVE local attendees hold a booking."""
        text = conference_ical(attendees=()).replace(
            "END:VEVENT",
            "ATTENDEE;PARTSTAT=ACCEPTED:sip:bob@example.com\r\n"
            "ATTENDEE;PARTSTAT=TENTATIVE:sip:carol@example.com\r\n"
            "ATTENDEE;PARTSTAT=DECLINED:sip:dave@example.com\r\n"
            "ATTENDEE;PARTSTAT=NEEDS-ACTION:sip:erin@example.com\r\n"
            "ATTENDEE;PARTSTAT=ACCEPTED:sip:far@elsewhere.example\r\n"
            "ATTENDEE;CUTYPE=RESOURCE;PARTSTAT=ACCEPTED:sip:projector@example.com\r\n"
            "END:VEVENT",
        )
        self.assertEqual(
            holders_of(self.calendar(text), ROOM, local),
            {
                "conf-1@example.com": [
                    "sip:alice@example.com",
                    "sip:bob@example.com",
                    "sip:carol@example.com",
                ]
            },
        )

    def test_cancelled(self) -> None:
        """Nobody holds a cancelled booking (its UID maps to an empty list)."""
        text = crowd_ical(3, status="CANCELLED")
        self.assertEqual(holders_of(self.calendar(text), ROOM, local), {"conf-1@example.com": []})

    def test_entry_calendar(self) -> None:
        """An entry referring to a conference reads just its own booking of it."""
        both = self.calendar(conference_ical())
        both.components.extend(self.calendar(conference_ical(uid="two")).components)
        shared = to_xcal(both)
        referring = CalendarEntry(BOB.aor, "two", shared, "conference", 0.0, ROOM)
        self.assertEqual(uids_of(entry_calendar(referring)), ["two"])
        own = CalendarEntry(BOB.aor, "two", shared, "publish", 0.0)
        self.assertEqual(uids_of(entry_calendar(own)), ["conf-1@example.com", "two"])


class CapTests(SynchronousTestCase):
    """
    The organizer byte cap, through the scheduler.
    """

    def test_conferences_over_cap(self) -> None:
        """A conference taking its organizer over the byte cap is 403; nothing stored."""
        h = Harness()
        self.assertEqual(h.schedule().code, 200)
        record = h.record()
        assert record is not None
        h.handler.bookings.max_organizer_bytes = len(record.calendar) + 100
        other = "sip:other@example.com"
        response = h.schedule(uri=other, uid="two", start=T0 + timedelta(days=1))
        self.assertEqual(response.code, 403)
        self.assertIn("bytes of calendars (at most", warning(response))
        self.assertIsNone(h.record(other))

    def test_publish_over_cap(self) -> None:
        """Published objects count against the same cap."""
        h = Harness()
        h.handler.bookings.max_organizer_bytes = 1000
        body = xcal(conference_ical(method="PUBLISH", uid="p1", attendees=()))
        response = h.message(body, ALICE, "sip:alice@example.com")
        self.assertEqual(response.code, 403)
        self.assertEqual(h.entries("sip:alice@example.com"), [])


class StoreHarness:
    """
    The scheduler behind a UAS core over given stores (which may answer
    later, from threads), the clock ten days before the conferences.
    """

    def __init__(self, stores: Stores, **caps: Any) -> None:
        self.stores = stores
        self.clock = Clock()
        self.clock.advance((T0 - timedelta(days=10)).timestamp())
        self.router = CoreRouter([DOMAIN], tag_factory=lambda: "t", accept_ip_literals=True)
        self.handler = SchedulingHandler(
            stores.conferences,
            stores.calendars,
            stores.bindings,
            stores.registrations,
            None,
            domain_of=self.router.domain_of,
            default_domain=DOMAIN,
            tag_factory=lambda: "t",
            **caps,
        )
        self.router.add_handler(self.handler)

    async def message(
        self, body: bytes, identity: SIPIdentity = ALICE, *, content_type: str = XCAL
    ) -> Response:
        request = make_request("MESSAGE", ROOM, body=body, headers=[("Content-Type", content_type)])
        answer = self.router.dispatch(request, RequestContext(PEER, self.clock.seconds(), identity))
        if isinstance(answer, Deferred):
            return await answer  # type: ignore[no-any-return]
        return answer


class SQLiteTests(TestCase):
    """
    The scheduler over a SQLite file, as the audit ran it.
    """

    async def open(self, faults: Optional[Faults] = None) -> Stores:
        self.path = self.mktemp()
        database = await open_sqlite(self.path, reactor)
        self.addCleanup(database.close)
        return Stores.sql(faulty(database, faults or Faults()), self.path)

    def query(self, statement: str) -> Any:
        with sqlite3.connect(self.path) as connection:
            row = connection.execute(statement).fetchone()
        connection.close()
        return row[0]

    def stored_bytes(self) -> int:
        return sum(
            os.path.getsize(self.path + suffix)
            for suffix in ("", "-wal")
            if os.path.exists(self.path + suffix)
        )

    async def test_amplification_refused(self) -> None:
        """The audit's 63 KB MESSAGE of 1,250 ACCEPTED attendees is 413; nothing is stored."""
        h = StoreHarness(await self.open())
        body = crowd_ical().encode()
        self.assertLess(len(body), 64 * 1024)
        response = await h.message(body, content_type="text/calendar")
        self.assertEqual(response.code, 413)
        self.assertIn("1251 attendees; at most 250", warning(response))
        self.assertEqual(self.query("SELECT count(*) FROM conferences"), 0)
        self.assertEqual(self.query("SELECT count(*) FROM calendar_entries"), 0)

    async def test_one_copy(self) -> None:
        """
        Allowed, the same MESSAGE stores one copy of the event, not one per
        attendee; attendees who accept refer to that copy.
        """
        h = StoreHarness(await self.open(), max_attendees=2000)
        before = self.stored_bytes()
        response = await h.message(crowd_ical().encode(), content_type="text/calendar")
        self.assertEqual(response.code, 200)
        copy = self.query("SELECT length(calendar) FROM conferences")
        # The audit measured 218 MB for this message: 1,264 copies of ~171 KB.
        self.assertLess(self.stored_bytes() - before, 10 * copy)
        accepting = ("u0000", "u0042", "u1249")
        for user in accepting:
            self.assertEqual((await h.message(*reply_of(user))).code, 200)
        self.assertEqual(self.query("SELECT count(*) FROM calendar_entries"), len(accepting) + 1)
        self.assertEqual(self.query("SELECT sum(length(calendar)) FROM calendar_entries"), 0)
        copy = self.query("SELECT length(calendar) FROM conferences")
        (entry,) = await h.stores.calendars.entries("sip:u0042@example.com")
        self.assertEqual((entry.conference, len(entry.calendar)), (ROOM, copy))

    async def test_fault_between_writes(self) -> None:
        """
        A disk-full error after the conference row was written (a crash
        half way) is a 503 with Retry-After that stores nothing, logged
        as one line; the identical retry then stores the conference with
        its calendar entries.
        """
        faults = Faults()
        h = StoreHarness(await self.open(faults))
        faults.fail("INSERT INTO calendar_entries", sqlite3.OperationalError("disk I/O error"))
        events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        body = xcal(crowd_ical(1))
        response = await h.message(body)
        self.assertEqual((response.code, response.header("retry-after")), (503, "5"))
        self.assertEqual(len(faults.hits), 1)
        errors = [e for e in events if e["log_level"] >= LogLevel.warn]
        self.assertEqual(len(errors), 1, errors)
        self.assertNotIn("log_failure", errors[0])
        self.assertEqual(self.query("SELECT count(*) FROM conferences"), 0)
        faults.clear()
        retry = await h.message(body)
        self.assertEqual((retry.code, retry.header("warning")), (200, None))
        self.assertEqual((await h.message(*reply_of("u0000"))).code, 200)
        for who in ("sip:alice@example.com", "sip:u0000@example.com"):
            (entry,) = await h.stores.calendars.entries(who)
            self.assertEqual(entry.conference, ROOM)


class RepairTests(SynchronousTestCase):
    """
    A stale retry repairs the entries of a conference stored without them.
    """

    def test_retry_repairs(self) -> None:
        """
        A conference stored without its entries (as a crash between the
        old code's writes left it) gets them from the identical retry,
        which is still answered "ignored: 3.4".
        """
        h = Harness()
        body = xcal(reply_ical("sip:bob@example.com", "ACCEPTED"))
        self.assertEqual(h.schedule(attendees=("sip:bob@example.com",)).code, 200)
        self.assertEqual(h.message(body, BOB).code, 200)
        record = h.record()
        assert record is not None
        h.stores.conferences.set_holders(ROOM, record.version, {record.uid: []}, 0.0)
        self.assertEqual(h.entries("sip:bob@example.com"), [])
        response = h.message(body, BOB)
        self.assertEqual(response.code, 200)
        self.assertIn("ignored: 3.4", warning(response))
        self.assertEqual(len(h.entries("sip:bob@example.com")), 1)
        self.assertEqual(len(h.entries("sip:alice@example.com")), 1)

    def test_memory_one_copy(self) -> None:
        """In memory, every holder's entry is the conference's own calendar object."""
        h = Harness()
        h.message(xcal(crowd_ical(3)))
        h.message(*reply_of("u0002"))
        record = h.record()
        assert record is not None
        for who in ("sip:alice@example.com", "sip:u0002@example.com"):
            (entry,) = h.entries(who)
            self.assertIs(entry.calendar, record.calendar)
