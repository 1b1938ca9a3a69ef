# -*- test-case-name: tests.unit.web.test_resource -*-
"""
The HTTP side of the server: one L{twisted.web} resource that logs the
viewer in, parses the query and answers the page, the JSON or the action.

Every answer is decided here so errors look alike: 401 to log in, 403 for
what the viewer may not do, 404 for what does not exist or they may not
see, 400 for a bad query, 503 while the store is down; never a traceback.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple
from urllib.parse import urlencode

from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry
from twisted.internet.defer import ensureDeferred
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request
from twisted.web.template import tags

from conference.app.conferences import calendar_of
from conference.calendar.errors import CalendarError
from conference.control.policy import policy_of
from conference.records import StoreError
from conference.web import pages
from conference.web.access import BAD_URI, MISSING, STALE, Gate, Viewer
from conference.web.actions import ActionError, Actions
from conference.web.metrics import StoreProbe, WebCollector
from conference.web.views import (
    MAX_FREEBUSY_DAYS,
    Forbidden,
    NotFound,
    conference_page,
    freebusy,
    visible_conferences,
)
from conference.web.zones import ZoneError, parse_date, viewer_zone

log = Logger()

#: Sent with every answer: no sniffing, no caching of personal pages, no
#: framing (clickjacking), and a policy allowing only the inline style and
#: forms posting back here (the pages have no scripts).
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
    (b"x-frame-options", b"DENY"),
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        b"frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"referrer-policy", b"same-origin"),
)

#: Seconds a client is asked to wait while the store is down.
STORE_RETRY_AFTER = 30


class HTTPError(Exception):
    """
    An answer other than 200, with the text the viewer sees.
    """

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


class StatusResource(Resource):
    """
    The root of the HTTP endpoint (see docs/operations.rst).

    @ivar server: the conference service's public parts: C{stores} (None
        until open), C{focus}, C{sip}.
    @ivar clock: a callable returning POSIX time (the reactor's seconds).
    """

    isLeaf = True

    def __init__(
        self,
        server: Any,
        gate: Gate,
        registry: CollectorRegistry,
        actions: Actions,
        clock: Callable[[], float],
        *,
        metrics_public: bool = False,
    ) -> None:
        super().__init__()
        self.server = server
        self.gate = gate
        self.registry = registry
        self.actions = actions
        self.clock = clock
        self.metrics_public = metrics_public
        self.probe = StoreProbe()
        registry.register(self.probe)
        #: Action requests by (action, HTTP status answered), for C{/metrics}.
        self.acted: Counter[Tuple[str, str]] = Counter()
        registry.register(WebCollector(gate.logins, self.acted, sorted(actions.handlers)))
        self._routes: Dict[Tuple[bytes, bytes], Callable[..., Awaitable[None]]] = {
            (b"GET", b"/"): self._timeline,
            (b"GET", b"/conference"): self._conference,
            (b"GET", b"/freebusy"): self._freebusy,
            (b"GET", b"/metrics"): self._metrics,
            (b"GET", b"/api/conferences"): self._api_conferences,
            (b"GET", b"/api/conference"): self._api_conference,
            (b"GET", b"/api/freebusy"): self._api_freebusy,
        }

    def render(self, request: Request) -> Any:  # type: ignore[override]
        """
        Answer C{request} asynchronously; see the module docstring.
        """
        for name, value in SECURITY_HEADERS:
            request.setHeader(name, value)
        gone: List[bool] = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))
        ensureDeferred(self._answer(request, gone))
        return NOT_DONE_YET

    async def _answer(self, request: Request, gone: List[bool]) -> None:
        """
        Route C{request} and finish it, unless its client went away
        meanwhile (C{gone} is then not empty).
        """
        try:
            await self._route(request)
        except HTTPError as e:
            self._error(request, e.code, e.text)
        except StoreError as e:
            log.warn("Status page: store unavailable: {error}", error=str(e))
            request.setHeader(b"retry-after", str(STORE_RETRY_AFTER).encode())
            self._error(request, 503, "The store is not available; try again shortly.")
        except Exception:
            log.failure("Status page request {path} failed", path=request.path)
            self._error(request, 500, "Internal error (logged).")
        if not gone and not request.finished:
            request.finish()

    async def _route(self, request: Request) -> None:
        method, path = request.method, request.path.rstrip(b"/") or b"/"
        handler = self._routes.get((method, path))
        if path.startswith(b"/action/"):
            if method != b"POST":
                request.setHeader(b"allow", b"POST")
                raise HTTPError(405, "Method not allowed.")
            handler = self._act
        if handler is None:
            allowed = sorted(m for m, p in self._routes if p == path)
            if allowed:
                request.setHeader(b"allow", b", ".join(allowed))
                raise HTTPError(405, "Method not allowed.")
            raise HTTPError(404, "No such page.")
        if path == b"/metrics" and self.metrics_public:
            await handler(request, None)
            return
        basic = _basic_allowed(request)
        login = await self.gate.authenticate(
            request.getHeader(b"authorization"), method, request.uri, basic=basic
        )
        if login.viewer is None:
            if login.outcome not in (MISSING, STALE):
                log.info(
                    "Status page: {scheme} login refused ({outcome}) from {host}",
                    scheme=login.scheme,
                    outcome=login.outcome,
                    host=getattr(request.getClientAddress(), "host", "?"),
                )
            if login.outcome == BAD_URI:
                raise HTTPError(400, "The digest's uri is not this request's target.")
            request.responseHeaders.setRawHeaders(
                b"www-authenticate", self.gate.challenges(basic=basic, stale=login.stale)
            )
            raise HTTPError(401, "Log in with your SIP account (user or user@domain).")
        await handler(request, login.viewer)

    # Pages --------------------------------------------------------------

    async def _timeline(self, request: Request, viewer: Viewer) -> None:
        zone, zone_name = self._zone(request)
        now = self._now()
        day = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
        week = day - timedelta(days=day.weekday())
        stores = self._stores()
        today = await visible_conferences(stores, viewer, day, day + timedelta(days=1))
        this_week = await visible_conferences(stores, viewer, week, week + timedelta(days=7))
        listing = tags.ul(
            *[
                tags.li(
                    tags.a(href=_conference_link(c.record.uri))(c.summary),
                    " ",
                    pages.span_text(c.occurrences[0]["start"], c.occurrences[0]["end"], zone),
                    " ",
                    tags.span(class_="muted")(c.record.organizer),
                )
                for c in this_week
            ]
            or [tags.li("No conferences this week.")]
        )
        page = pages.layout(
            "Conferences",
            viewer.aor,
            zone_name,
            tags.h2(f"Today, {day:%A %d %B}"),
            pages.timeline_svg(
                today,
                day,
                day + timedelta(days=1),
                zone,
                ticks=pages.day_ticks(day, zone),
                label="Today",
                now=now,
            ),
            tags.h2("This week"),
            pages.timeline_svg(
                this_week,
                week,
                week + timedelta(days=7),
                zone,
                ticks=pages.week_ticks(week, zone),
                label="This week",
                now=now,
            ),
            listing,
        )
        await self._html(request, page)

    async def _conference(self, request: Request, viewer: Viewer) -> None:
        zone, zone_name = self._zone(request)
        page = await self._conference_data(request, viewer)
        body = pages.conference_body(
            page, zone, self.gate.csrf_token(viewer), self.actions.conference_actions()
        )
        await self._html(request, pages.layout(page["summary"], viewer.aor, zone_name, *body))

    async def _freebusy(self, request: Request, viewer: Viewer) -> None:
        zone, zone_name = self._zone(request)
        data, start, days = await self._freebusy_data(request, viewer, zone)
        week = data["start"][:10]
        earlier = start - timedelta(days=7)
        later = start + timedelta(days=7)
        nav = tags.p(
            tags.a(href=_freebusy_link(data["user"], earlier, zone))("← previous week"),
            " ",
            tags.a(href=_freebusy_link(data["user"], later, zone))("next week →"),
        )
        page = pages.layout(
            f"Free/busy of {data['user']}",
            viewer.aor,
            zone_name,
            tags.p(f"{days} days from {week}."),
            pages.freebusy_svg(data, start, days, zone),
            tags.p(class_="muted")("Red: busy; amber: tentative; grey: unavailable."),
            nav,
        )
        await self._html(request, page)

    async def _metrics(self, request: Request, viewer: Optional[Viewer]) -> None:
        # Generated here, in the reactor thread, rather than by
        # prometheus_client's WSGI-based Twisted resource: its collector
        # reads live server state that only this thread may touch.
        try:
            await self.probe.refresh(getattr(self.server, "stores", None))
        except StoreError as e:
            log.warn("Metrics: store unavailable: {error}", error=str(e))
        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode())
        request.write(generate_latest(self.registry))

    # JSON ---------------------------------------------------------------

    async def _api_conferences(self, request: Request, viewer: Viewer) -> None:
        zone, _ = self._zone(request)
        start = self._date_arg(request, zone) or self._now().astimezone(zone).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        days = self._days_arg(request, 7)
        found = await visible_conferences(
            self._stores(), viewer, start, start + timedelta(days=days)
        )
        self._json(
            request,
            {"start": start.isoformat(), "days": days, "conferences": [c.as_json() for c in found]},
        )

    async def _api_conference(self, request: Request, viewer: Viewer) -> None:
        self._json(request, await self._conference_data(request, viewer))

    async def _api_freebusy(self, request: Request, viewer: Viewer) -> None:
        zone, _ = self._zone(request)
        data, _, _ = await self._freebusy_data(request, viewer, zone)
        self._json(request, data)

    # Actions ------------------------------------------------------------

    async def _act(self, request: Request, viewer: Viewer) -> None:
        """
        Run the action the path names and count its answer in L{acted}
        (by action, C{unknown} for names that are none, so clients cannot
        make label values up).
        """
        action = request.path.rstrip(b"/").rsplit(b"/", 1)[-1].decode("ascii", "replace")
        label = action if action in self.actions.handlers else "unknown"
        code = 500
        try:
            await self._checked_act(request, viewer, action)
            code = 303
        except HTTPError as e:
            code = e.code
            raise
        except StoreError:
            code = 503
            raise
        finally:
            self.acted[(label, str(code))] += 1

    async def _checked_act(self, request: Request, viewer: Viewer, action: str) -> None:
        if not self.gate.check_csrf(viewer, self._arg(request, "csrf")):
            raise HTTPError(403, "The form has expired or did not come from this site.")
        uri = self._required(request, "uri")
        if action not in self.actions.handlers:
            raise HTTPError(404, f"No such action: {action}")
        record = await self._stores().conferences.get(uri)
        if record is None:
            raise HTTPError(404, "No such conference.")
        try:
            policy = policy_of(calendar_of(record), record.settings)
        except CalendarError:
            raise HTTPError(503, "The conference's calendar cannot be read.") from None
        if not viewer.may_act_on(record, policy):
            if not viewer.may_see(record, policy.attendees, policy):
                # The answer to an unknown conference: existence does not leak.
                raise HTTPError(404, "No such conference.")
            raise HTTPError(403, "Not a conference you may act on.")
        try:
            done = await self.actions.run(action, record, viewer, self._arg(request, "participant"))
        except ActionError as e:
            raise HTTPError(e.code, str(e)) from None
        log.info(
            "Status page action {action} on {uri} by {aor}: {done}",
            action=action,
            uri=uri,
            aor=viewer.aor,
            done=done,
        )
        request.setResponseCode(303)
        request.setHeader(b"location", _conference_link(uri).encode("utf-8") + b"#roster")

    # Helpers ------------------------------------------------------------

    async def _conference_data(self, request: Request, viewer: Viewer) -> Dict[str, Any]:
        uri = self._required(request, "uri")
        try:
            return await conference_page(
                self._stores(), getattr(self.server, "focus", None), viewer, uri, self._now()
            )
        except NotFound:
            raise HTTPError(404, "No such conference, or not one of yours.") from None

    async def _freebusy_data(
        self, request: Request, viewer: Viewer, zone: tzinfo
    ) -> Tuple[Dict[str, Any], datetime, int]:
        user = self._arg(request, "user") or viewer.aor
        start = self._date_arg(request, zone)
        if start is None:
            today = self._now().astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
            start = today - timedelta(days=today.weekday())
        days = self._days_arg(request, 7)
        try:
            data = await freebusy(self._stores(), viewer, user.lower(), start, days)
        except Forbidden:
            raise HTTPError(403, "Only admins see other users' free/busy.") from None
        return data, start, days

    def _stores(self) -> Any:
        stores = getattr(self.server, "stores", None)
        if stores is None:
            raise StoreError("the stores are not open")
        return stores

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), timezone.utc)

    def _arg(self, request: Request, name: str) -> Optional[str]:
        values: List[bytes] = (request.args or {}).get(name.encode("ascii"), [])
        if not values:
            return None
        if len(values) > 1:
            raise HTTPError(400, f"Give {name} once.")
        try:
            return values[0].decode("utf-8")
        except UnicodeDecodeError:
            raise HTTPError(400, f"{name} is not UTF-8.") from None

    def _required(self, request: Request, name: str) -> str:
        value = self._arg(request, name)
        if not value:
            raise HTTPError(400, f"{name} is required.")
        return value

    def _days_arg(self, request: Request, default: int) -> int:
        text = self._arg(request, "days")
        if text is None:
            return default
        if not text.isdigit() or not 1 <= int(text) <= MAX_FREEBUSY_DAYS:
            raise HTTPError(400, f"days must be a number from 1 to {MAX_FREEBUSY_DAYS}.")
        return int(text)

    def _date_arg(self, request: Request, zone: tzinfo) -> Optional[datetime]:
        text = self._arg(request, "start")
        if text is None:
            return None
        try:
            return parse_date(text, zone)
        except ZoneError as e:
            raise HTTPError(400, str(e)) from None

    def _zone(self, request: Request) -> Tuple[tzinfo, str]:
        """
        The viewer's time zone: the C{tz} query parameter (remembered in a
        cookie), else the cookie, else UTC.
        """
        given = self._arg(request, "tz")
        name = given or (request.getCookie(b"tz") or b"").decode("utf-8", "replace") or "UTC"
        try:
            zone = viewer_zone(name)
        except ZoneError as e:
            if given is None:  # a stale cookie: fall back rather than lock out
                return timezone.utc, "UTC"
            raise HTTPError(400, str(e)) from None
        if given is not None:
            request.addCookie(b"tz", name.encode("utf-8"), path=b"/", sameSite="lax")
        return zone, name

    async def _html(self, request: Request, page: Any) -> None:
        body = await pages.render(page)
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.write(body)

    def _json(self, request: Request, data: Any) -> None:
        request.setHeader(b"content-type", b"application/json")
        request.write(json.dumps(data, indent=1, sort_keys=True).encode("utf-8"))

    def _error(self, request: Request, code: int, text: str) -> None:
        if request.finished:
            return
        request.setResponseCode(code)
        if request.path.startswith(b"/api/") or request.path == b"/metrics":
            self._json(request, {"error": text, "status": code})
        else:
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            request.write(text.encode("utf-8") + b"\n")


def _basic_allowed(request: Request) -> bool:
    """
    Whether basic credentials (the password in the clear) are accepted on
    this request: over TLS, or from a client on this machine.
    """
    if request.isSecure():
        return True
    host = getattr(request.getClientAddress(), "host", "")
    return host in ("127.0.0.1", "::1") or host.startswith("127.")


def _conference_link(uri: str) -> str:
    return "/conference?" + urlencode({"uri": uri})


def _freebusy_link(user: str, start: datetime, zone: tzinfo) -> str:
    return "/freebusy?" + urlencode({"user": user, "start": start.astimezone(zone).date()})
