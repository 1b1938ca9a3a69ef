# -*- test-case-name: tests.loopback.test_caldav -*-
"""
A user's busy time from their CalDAV calendar (docs/caldav.rst), for the
busy path of iSIP section 4.5.

RFC 4791 C{free-busy-query} is asked first; a server that does not answer
it with a VFREEBUSY gets a C{calendar-query} with a time range, and the
busy time is computed here from the events.  Answers are cached for a
short while, bounded in size and time: a CalDAV server that hangs, is
down, refuses (401) or answers garbage costs at most C{timeout} seconds
and a log line, and the SIP side answers from local data.
"""

from __future__ import annotations

import base64
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import quote

from lxml import etree
from twisted.internet.defer import Deferred, succeed
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.client import Agent
from twisted.web.http_headers import Headers
from twisted.web.iweb import IBodyProducer
from zope.interface import implementer

from conference.app.conferences import calendar_of, is_cancelled, subset, uids_of, utc_datetime
from conference.calendar import (
    Component,
    normalize_address,
    parse_ical_calendar,
    to_ical,
)
from conference.calendar import values as cv
from conference.calendar.errors import CalendarError
from conference.calendar.freebusy import busy_intervals
from conference.interfaces import IConferenceStore
from conference.records import ConferenceRecord, Holders
from conference.store.conferencecache import ForwardingConferenceStore

log = Logger()

Interval = Tuple[datetime, datetime]
Busy = List[Tuple[str, Interval]]

_DAV = "{DAV:}"
_CALDAV = "{urn:ietf:params:xml:ns:caldav}"
_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
)


class CalDAVError(Exception):
    """
    A CalDAV answer that cannot be used (status, type or content).
    """


def parse_source(text: str) -> str:
    """
    C{--freebusy-source}: C{caldav:URL}, where URL is C{http:} or
    C{https:} and may contain C{{user}}; returns the URL template.

    @raise ValueError: naming what is wrong.
    """
    kind, _, url = text.partition(":")
    if kind.lower() != "caldav" or not url:
        raise ValueError(f"expected caldav:URL, got {text!r}")
    if not url.lower().startswith(("http://", "https://")):
        raise ValueError(f"the CalDAV URL must be http: or https:, got {url!r}")
    try:
        url.format(user="x")
    except (KeyError, IndexError, ValueError):
        raise ValueError(f"only {{user}} may appear in braces in {url!r}") from None
    return url


def read_credentials(path: str) -> Tuple[str, str]:
    """
    C{--freebusy-credentials}: the first line of C{path}, C{USER:PASSWORD}.

    @raise ValueError: for a file that cannot be read or a bad line.
    """
    try:
        with open(path, encoding="utf-8") as f:
            line = f.readline().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: {e}") from None
    user, colon, password = line.partition(":")
    if not colon or not user:
        raise ValueError(f"{path}: the first line must be USER:PASSWORD")
    return user, password


def _stamp(when: datetime) -> str:
    return utc_datetime(when.timestamp()).strftime("%Y%m%dT%H%M%SZ")


def free_busy_query(start: datetime, end: datetime) -> bytes:
    """
    The RFC 4791 section 7.10 REPORT body.
    """
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav">'
        f'<C:time-range start="{_stamp(start)}" end="{_stamp(end)}"/>'
        "</C:free-busy-query>"
    ).encode()


def calendar_query(start: datetime, end: datetime) -> bytes:
    """
    The RFC 4791 section 7.8 REPORT body: the VEVENTs overlapping the window.
    """
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
        "<D:prop><C:calendar-data/></D:prop>"
        '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
        f'<C:time-range start="{_stamp(start)}" end="{_stamp(end)}"/>'
        "</C:comp-filter></C:comp-filter></C:filter>"
        "</C:calendar-query>"
    ).encode()


def busy_from_freebusy(data: bytes, start: datetime, end: datetime) -> Busy:
    """
    The busy periods (by FBTYPE, FREE left out) of the VFREEBUSY in C{data},
    clipped to the window.

    @raise CalDAVError: when it is no calendar or has no VFREEBUSY.
    """
    try:
        calendar = parse_ical_calendar(data)
    except (CalendarError, ValueError, UnicodeDecodeError) as e:
        raise CalDAVError(f"bad free/busy calendar: {e}") from None
    components = list(calendar.walk("VFREEBUSY"))
    if not components:
        raise CalDAVError("no VFREEBUSY in the answer")
    out: Busy = []
    for fb in components:
        for prop in fb.get_all("FREEBUSY"):
            kind = str(prop.param("FBTYPE", "BUSY")).upper()
            if kind == "FREE":
                continue
            for period in prop.values:
                if not isinstance(period, cv.Period) or period.start.tzinfo is None:
                    continue
                stop = period.end or (period.start + (period.duration or timedelta(0)))
                first, last = max(period.start, start), min(stop, end)
                if first < last:
                    out.append((kind, (first, last)))
    return out


def busy_from_multistatus(data: bytes, aor: str, start: datetime, end: datetime) -> Busy:
    """
    The busy time computed from the calendar-data of a calendar-query's
    multistatus (objects that do not parse are skipped).

    @raise CalDAVError: when C{data} is no multistatus.
    """
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as e:
        raise CalDAVError(f"bad multistatus: {e}") from None
    if root.tag != _DAV + "multistatus":
        raise CalDAVError(f"expected a multistatus, got {root.tag}")
    sources: List[Component] = []
    for element in root.iter(_CALDAV + "calendar-data"):
        text = element.text or ""
        try:
            sources.append(parse_ical_calendar(text.encode("utf-8")))
        except (CalendarError, ValueError):
            continue
    if not sources:
        return []
    try:
        found = busy_intervals(sources, start, end, user=aor)
    except CalendarError as e:
        raise CalDAVError(f"unusable events: {e}") from None
    return [(kind, interval) for kind, intervals in found.items() for interval in intervals]


class _Capped(Protocol):
    """
    Reads a response body up to C{limit} bytes, else fails and stops.
    """

    def __init__(self, done: Deferred[bytes], limit: int) -> None:
        self.done = done
        self.limit = limit
        self.parts: List[bytes] = []
        self.size = 0

    def dataReceived(self, data: bytes) -> None:
        if self.done.called:
            return
        self.size += len(data)
        if self.size > self.limit:
            self.done.errback(CalDAVError(f"answer larger than {self.limit} bytes"))
            if self.transport is not None:
                self.transport.stopProducing()  # type: ignore[attr-defined]
            return
        self.parts.append(data)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        if not self.done.called:
            self.done.callback(b"".join(self.parts))


class CalDAVFreeBusy:
    """
    Busy time of users from CalDAV, cached, never failing, never slow.

    @ivar template: the calendar collection URL, C{{user}} standing for
        the user part of the address.
    @ivar prefer_freebusy: ask C{free-busy-query} first (else go straight
        to C{calendar-query}, for servers known to lack it).
    """

    def __init__(
        self,
        template: str,
        *,
        reactor: Any,
        credentials: Optional[Tuple[str, str]] = None,
        timeout: float = 2.0,
        ttl: float = 60.0,
        window: timedelta = timedelta(days=7),
        max_bytes: int = 1 << 20,
        max_cached: int = 1024,
        agent: Any = None,
        prefer_freebusy: bool = True,
    ) -> None:
        self.template = template
        self._reactor = reactor
        self.credentials = credentials
        self.timeout = timeout
        self.ttl = ttl
        self.window = window
        self.max_bytes = max_bytes
        self.max_cached = max_cached
        self.prefer_freebusy = prefer_freebusy
        self.agent = agent if agent is not None else Agent(reactor, connectTimeout=timeout)
        self._cache: OrderedDict[str, Tuple[float, Busy]] = OrderedDict()

    def url_of(self, aor: str) -> str:
        """
        The calendar URL of C{aor} (C{sip:alice@example.com} -> C{alice}).
        """
        user = aor.partition(":")[2].rpartition("@")[0] or aor.partition(":")[2]
        return self.template.replace("{user}", quote(user, safe=""))

    def busy(self, aor: str, now: float) -> Deferred[Busy]:
        """
        C{aor}'s busy time over the window from C{now}: cached, else
        fetched within C{timeout}; empty (and logged) when that fails.
        """
        cached = self._cache.get(aor)
        if cached is not None and cached[0] > now:
            return succeed(cached[1])
        d = Deferred.fromCoroutine(self._fetch(aor, now))
        d.addTimeout(self.timeout, self._reactor)

        def store(busy: Busy) -> Busy:
            self._cache.pop(aor, None)
            self._cache[aor] = (now + self.ttl, busy)
            while len(self._cache) > self.max_cached:
                self._cache.popitem(last=False)
            return busy

        def degrade(failure: Failure) -> Busy:
            log.warn(
                "CalDAV free/busy of {aor} unavailable ({why}); using local data only",
                aor=aor,
                why=failure.getErrorMessage() or repr(failure.value),
            )
            # Remembered too: a server that is down delays one INVITE per ttl.
            return store([])

        return d.addCallbacks(store, degrade)

    async def _fetch(self, aor: str, now: float) -> Busy:
        start = utc_datetime(now)
        end = start + self.window
        url = self.url_of(aor)
        if self.prefer_freebusy:
            status, ctype, data = await self._report(url, free_busy_query(start, end), "0")
            if status == 200 and ctype.startswith("text/calendar"):
                return busy_from_freebusy(data, start, end)
            if status in (401, 403, 404):
                raise CalDAVError(f"{url} answered {status}")
        status, ctype, data = await self._report(url, calendar_query(start, end), "1")
        if status != 207:
            raise CalDAVError(f"{url} answered {status} to calendar-query")
        return busy_from_multistatus(data, aor, start, end)

    async def _report(self, url: str, body: bytes, depth: str) -> Tuple[int, str, bytes]:
        return await self._request(
            b"REPORT",
            url,
            body,
            {b"Content-Type": [b"application/xml; charset=utf-8"], b"Depth": [depth.encode()]},
        )

    async def _request(
        self, method: bytes, url: str, body: Optional[bytes], fields: Dict[bytes, List[bytes]]
    ) -> Tuple[int, str, bytes]:
        headers = Headers({**fields, b"User-Agent": [b"conference-server"]})
        if self.credentials is not None:
            token = base64.b64encode(":".join(self.credentials).encode("utf-8"))
            headers.addRawHeader(b"Authorization", b"Basic " + token)
        producer = _Body(body) if body is not None else None
        response = await self.agent.request(method, url.encode("utf-8"), headers, producer)
        done: Deferred[bytes] = Deferred()
        response.deliverBody(_Capped(done, self.max_bytes))
        data = await done
        types = response.headers.getRawHeaders(b"content-type") or [b""]
        return int(response.code), types[0].decode("latin-1").lower(), data

    # Writing (docs/caldav.rst, "Writing conferences") ---------------------------

    def object_url(self, aor: str, uid: str) -> str:
        """
        Where the conference C{uid} goes in C{aor}'s calendar: a resource
        of our own name, so no object of the user's is ever overwritten.
        """
        base = self.url_of(aor)
        base = base if base.endswith("/") else base + "/"
        return base + "conference-" + quote(uid, safe="") + ".ics"

    def write(self, aor: str, uid: str, ical: Optional[bytes]) -> Deferred[None]:
        """
        PUT C{ical} as the conference C{uid} in C{aor}'s calendar, or
        DELETE it when L{None}; within C{timeout}, never failing (logged).
        """
        url = self.object_url(aor, uid)
        if ical is None:
            d = Deferred.fromCoroutine(self._request(b"DELETE", url, None, {}))
        else:
            fields = {b"Content-Type": [b"text/calendar; charset=utf-8"]}
            d = Deferred.fromCoroutine(self._request(b"PUT", url, ical, fields))
        d.addTimeout(self.timeout, self._reactor)

        def done(answer: Tuple[int, str, bytes]) -> None:
            code = answer[0]
            if code >= 300 and not (ical is None and code == 404):
                log.warn("CalDAV {url} answered {code}", url=url, code=code)
            else:
                log.info("Conference {uid} written to CalDAV for {aor}", uid=uid, aor=aor)

        def failed(failure: Failure) -> None:
            log.warn(
                "Conference {uid} not written to CalDAV for {aor}: {why}",
                uid=uid,
                aor=aor,
                why=failure.getErrorMessage() or repr(failure.value),
            )

        return d.addCallbacks(done, failed)


@implementer(IConferenceStore)
class CalDAVMirror(ForwardingConferenceStore):
    """
    A conference store that also writes each conference into its
    organizer's CalDAV calendar once the store took it (and deletes it
    there when the conference is cancelled or forgotten), without waiting
    for CalDAV: the SIP answer never waits for it.  Reads pass through.

    Conferences are stored once, in their record (the organizer's calendar
    entry only refers to it), so the mirror sits in front of the
    conference store, not the calendar store.
    """

    def __init__(
        self, store: IConferenceStore, caldav: CalDAVFreeBusy, local: Callable[[str], bool]
    ) -> None:
        """
        @param local: whether an organizer's address is a user of this
            server; only those have a calendar on our CalDAV server.
        """
        super().__init__(store)
        self.caldav = caldav
        self.local = local

    def put(
        self,
        record: ConferenceRecord,
        expected_version: Optional[int],
        *,
        max_per_organizer: Optional[int] = None,
        max_organizer_bytes: Optional[int] = None,
        holders: Optional[Holders] = None,
    ) -> Deferred[ConferenceRecord]:
        """See L{IConferenceStore.put}; mirrored once stored."""
        d = super().put(
            record,
            expected_version,
            max_per_organizer=max_per_organizer,
            max_organizer_bytes=max_organizer_bytes,
            holders=holders,
        )
        return d.addCallback(self._mirror, False)

    def delete(self, uri: str) -> Deferred[bool]:
        """See L{IConferenceStore.delete}; the mirror deleted once it is gone."""

        async def forget() -> bool:
            record = await self.store.get(uri)
            gone = await self.store.delete(uri)
            if gone and record is not None:
                self._mirror(record, True)
            return gone

        return Deferred.fromCoroutine(forget())

    def _mirror(self, record: ConferenceRecord, deleted: bool) -> ConferenceRecord:
        for organizer, uid, ical in organizer_objects(record):
            if self.local(organizer):
                self.caldav.write(organizer, uid, None if deleted else ical)
        return record


def organizer_objects(record: ConferenceRecord) -> List[Tuple[str, str, Optional[bytes]]]:
    """
    The CalDAV objects (iCalendar, no METHOD, RFC 4791 section 4.1) of a
    stored conference: per UID its ORGANIZER, the UID and the object, or
    L{None} where that event is cancelled (to be deleted); nothing for an
    unreadable record.
    """
    try:
        calendar = calendar_of(record)
    except CalendarError:
        return []
    cancelled = is_cancelled(record, calendar)
    found: List[Tuple[str, str, Optional[bytes]]] = []
    for uid in uids_of(calendar):
        one = subset(calendar, lambda u, uid=uid: u == uid)  # type: ignore[misc]
        masters = [c for c in one.components if c.name == "VEVENT" and c.value("ORGANIZER")]
        if not masters:
            continue
        organizer = normalize_address(str(masters[0].value("ORGANIZER")))
        gone = cancelled or all(str(c.value("STATUS", "")).upper() == "CANCELLED" for c in masters)
        one.remove("METHOD")
        found.append((organizer, uid, None if gone else to_ical(one).encode("utf-8")))
    return found


@implementer(IBodyProducer)
class _Body:
    """
    A small request body, written at once.
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.length = len(data)

    def startProducing(self, consumer: Any) -> Deferred[None]:
        consumer.write(self.data)
        return succeed(None)

    def stopProducing(self) -> None:
        """Nothing is left to stop."""

    def pauseProducing(self) -> None:
        """Nothing is left to pause."""

    def resumeProducing(self) -> None:
        """Nothing is left to resume."""


__all__ = [
    "CalDAVError",
    "CalDAVFreeBusy",
    "CalDAVMirror",
    "busy_from_freebusy",
    "busy_from_multistatus",
    "calendar_query",
    "free_busy_query",
    "organizer_objects",
    "parse_source",
    "read_credentials",
]
