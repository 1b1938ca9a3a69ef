# -*- test-case-name: tests.unit.calendar.test_itip -*-
"""
RFC 5546 iTIP rules as one pure function: the stored calendar object, an
incoming scheduling message and the authenticated identity in; accepted or
refused (with a REQUEST-STATUS), the new stored object and the messages to
send out.  The iSIP server applies it to every application/calendar+xml
body, so authorization (iSIP section 2.2.1) lives here, not in the SIP code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Tuple

from conference.calendar import values as cv
from conference.calendar.errors import CalendarError, RequestStatus, status
from conference.calendar.model import Component, Property, new_calendar
from conference.calendar.storable import check_storable
from conference.calendar.timezones import TimezoneResolver
from conference.interfaces import IDelegationPolicy

UTC = cv.UTC

ORGANIZER_METHODS = frozenset(["PUBLISH", "REQUEST", "ADD", "CANCEL", "DECLINECOUNTER"])
ATTENDEE_METHODS = frozenset(["REPLY", "REFRESH", "COUNTER"])
METHODS = ORGANIZER_METHODS | ATTENDEE_METHODS

#: ATTENDEE parameter where the stored object remembers the DTSTAMP of that
#: attendee's last applied REPLY (stripped from every outgoing message).
REPLY_STAMP_PARAM = "X-ISIP-LAST-REPLY"
PRODID = "-//conference//iSIP calendar//EN"

Key = Tuple[str, str]


@dataclass
class Outgoing:
    """
    An iTIP message to send: C{calendar} is a VCALENDAR whose METHOD is
    C{method}; C{recipients} are calendar user addresses.
    """

    method: str
    recipients: Tuple[str, ...]
    calendar: Component


@dataclass
class ITipResult:
    """
    The outcome of L{process}.

    @ivar accepted: whether the message was applied (or, for REFRESH,
        COUNTER and DECLINECOUNTER, acted upon).
    @ivar status: REQUEST-STATUS: 2.0 when accepted, else why not (3.4
        for stale messages, 3.8 for authorization failures, ...).
    @ivar state: the stored VCALENDAR after the message (the object
        passed in, unchanged, when refused; L{None} if there was none).
    @ivar outgoing: the iTIP messages to send.
    @ivar details: per component C{(UID, RECURRENCE-ID or "", status)}.
    """

    accepted: bool
    status: RequestStatus
    state: Optional[Component]
    outgoing: List[Outgoing] = field(default_factory=list)
    details: List[Tuple[str, str, RequestStatus]] = field(default_factory=list)

    @property
    def code(self) -> str:
        """
        The REQUEST-STATUS code, e.g. C{"3.8"}.
        """
        return self.status.code

    @property
    def reason(self) -> str:
        """
        The REQUEST-STATUS reason phrase plus its data, if any.
        """
        if self.status.data:
            return f"{self.status.reason}: {self.status.data}"
        return self.status.reason


class _Refused(Exception):
    def __init__(self, refusal: RequestStatus) -> None:
        super().__init__(refusal.reason)
        self.status = refusal


def normalize_address(address: str) -> str:
    """
    Normalize a calendar user address for comparison: scheme lower-case;
    for C{sip}/C{sips} (compared as C{sip}) URI parameters and headers
    dropped and the host lower-cased; for C{mailto} the whole address
    lower-cased.  Other schemes only have the scheme lower-cased.
    """
    text = address.strip()
    scheme, sep, rest = text.partition(":")
    if not sep:
        return text.lower()
    scheme = scheme.lower()
    if scheme in ("sip", "sips"):
        rest = rest.split(";", 1)[0].split("?", 1)[0]
        user, at, host = rest.rpartition("@")
        return f"sip:{user}{at}{host.lower()}"
    if scheme == "mailto":
        return f"mailto:{rest.lower()}"
    return f"{scheme}:{rest}"


def _refuse(name: str, data: Optional[str] = None) -> _Refused:
    return _Refused(status(name, data))


def _content_type_check(method: str, present: Iterable[str], params: Mapping[str, str]) -> None:
    lowered = {k.lower(): v for k, v in params.items()}
    declared = lowered.get("method")
    if declared is not None and declared.strip().strip('"').upper() != method:
        raise _refuse(
            "invalid-property-value", f"METHOD {method} differs from Content-Type method={declared}"
        )
    listed = lowered.get("component")
    if listed is not None:
        names = {c.strip().upper() for c in listed.strip().strip('"').split(",") if c.strip()}
        names.discard("VTIMEZONE")
        inside = set(present) - {"VTIMEZONE"}
        if inside - names:
            raise _refuse(
                "unknown", "component parameter omits " + ",".join(sorted(inside - names))
            )
        if names - inside:
            raise _refuse(
                "missing", "component parameter lists absent " + ",".join(sorted(names - inside))
            )


def _stamp(comp: Component) -> datetime:
    value = comp.value("DTSTAMP")
    if not isinstance(value, datetime):
        raise _refuse("missing", "DTSTAMP")
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _sequence(comp: Component) -> int:
    value = comp.value("SEQUENCE", 0)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _refuse("invalid-property-value", "SEQUENCE")
    return value


def _newer(incoming: Component, stored: Component) -> bool:
    # RFC 5546 section 2.1.5: higher SEQUENCE wins, then later DTSTAMP.
    a, b = _sequence(incoming), _sequence(stored)
    if a != b:
        return a > b
    return _stamp(incoming) > _stamp(stored)


class _Engine:
    def __init__(
        self,
        stored: Optional[Component],
        identity: str,
        *,
        policy: IDelegationPolicy,
        now: float,
        server_addresses: Iterable[str],
    ) -> None:
        self.work = stored.copy() if stored is not None else new_calendar(PRODID)
        self.identity = normalize_address(identity)
        self.policy = policy
        self.now = now
        self.now_dt = datetime.fromtimestamp(int(now), UTC)
        self.server = {normalize_address(a) for a in server_addresses}
        self.resolver = TimezoneResolver([self.work])
        self.outgoing: List[Outgoing] = []
        self.changed: List[Component] = []  # what the message added or replaced

    # -- lookups --------------------------------------------------------------

    def key(self, comp: Component) -> Key:
        uid = comp.value("UID")
        if not isinstance(uid, str) or not uid:
            raise _refuse("missing", "UID")
        rid = comp.get("RECURRENCE-ID")
        if rid is None:
            return (uid, "")
        if not isinstance(rid.value, date):
            raise _refuse("invalid-property-value", "RECURRENCE-ID")
        try:
            instant = self.resolver.to_utc(rid.value, rid.param("TZID"))
        except CalendarError:
            raise _refuse("invalid-date", "RECURRENCE-ID time zone") from None
        return (uid, instant.isoformat())

    def find(self, key: Key) -> Optional[Component]:
        for comp in self.work.components:
            if comp.name != "VTIMEZONE" and comp.value("UID") == key[0] and self.key(comp) == key:
                return comp
        return None

    def related(self, uid: str) -> List[Component]:
        return [c for c in self.work.components if c.name != "VTIMEZONE" and c.value("UID") == uid]

    def replace(self, old: Optional[Component], new: Component) -> None:
        self.changed.append(new)
        if old is None:
            self.work.components.append(new)
        else:
            self.work.components[self.work.components.index(old)] = new

    # -- authorization ------------------------------------------------------------

    def acts_for(self, prop: Optional[Property], role: str) -> None:
        """Refuse unless the identity is C{prop}'s address or its approved SENT-BY."""
        if prop is None or not isinstance(prop.value, str):
            raise _refuse("missing", role)
        principal = normalize_address(prop.value)
        if principal == self.identity:
            return
        sent_by = prop.param("SENT-BY")
        if sent_by is not None and normalize_address(sent_by) == self.identity:
            if self.policy.is_delegate_approved(principal, self.identity, self.now):
                return
            raise _refuse(
                "no-authority", f"{self.identity} is not an approved delegate of {principal}"
            )
        raise _refuse("no-authority", f"{self.identity} is not the {role} {principal}")

    # -- outgoing -------------------------------------------------------------------

    def send(self, method: str, recipients: Iterable[str], comps: List[Component]) -> None:
        targets = tuple(r for r in recipients if r)
        if not targets:
            return
        clean = [_public(c) for c in comps]
        tzids = {p.param("TZID") for c in clean for p in c.properties if p.param("TZID")}
        zones = [
            c.copy()
            for c in self.work.components
            if c.name == "VTIMEZONE" and c.value("TZID") in tzids
        ]
        self.outgoing.append(Outgoing(method, targets, new_calendar(PRODID, method, zones + clean)))

    # -- methods ----------------------------------------------------------------------

    def organizer_method(self, method: str, comp: Component) -> None:
        key = self.key(comp)
        current = self.find(key)
        master = current if key[1] == "" else self.find((key[0], ""))
        incoming_org = comp.get("ORGANIZER")
        for existing in (current, master):
            org = existing.get("ORGANIZER") if existing is not None else None
            if (
                org is not None
                and incoming_org is not None
                and (
                    normalize_address(str(org.value)) != normalize_address(str(incoming_org.value))
                )
            ):
                raise _refuse("no-authority", "ORGANIZER differs from the stored one")
        self.acts_for(incoming_org, "ORGANIZER")
        if method == "DECLINECOUNTER":
            if current is None and master is None:
                raise _refuse("missing", f"UID {key[0]} unknown")
            return
        if method == "ADD":
            self.add(comp, master)
            return
        if method == "CANCEL":
            self.cancel(comp, key, current, master)
            return
        if current is not None and not _newer(comp, current):
            raise _refuse("invalid-sequence", "SEQUENCE/DTSTAMP not newer than stored")
        new = comp.copy()
        if method == "REQUEST":
            self.keep_replies(new, current if current is not None else master)
        self.replace(current, new)
        if method == "REQUEST":
            self.auto_accept(new)

    def keep_replies(self, event: Component, stored: Optional[Component]) -> None:
        """
        An organizer speaks only for the organizer: in a REQUEST, every
        other attendee's PARTSTAT is what that attendee last replied (in
        C{stored}, the same instance or else the master), NEEDS-ACTION if
        they never did; the organizer may only reset it to NEEDS-ACTION
        (to ask again after a change, RFC 5546 section 3.2.2.1).  Nobody
        but the attendee's REPLY may mark them as coming (and so busy).
        The reply stamps are the stored ones too.
        """
        org = event.get("ORGANIZER")
        organizer = normalize_address(str(org.value)) if org is not None else None
        for att in event.get_all("ATTENDEE"):
            if not isinstance(att.value, str) or normalize_address(att.value) in self.server:
                continue  # the server's own rooms answer for themselves (auto_accept)
            address = normalize_address(att.value)
            previous = self.stored_attendee(stored, address) if stored is not None else None
            att.params.pop(REPLY_STAMP_PARAM, None)
            last = previous.param(REPLY_STAMP_PARAM) if previous is not None else None
            if last:
                att.params[REPLY_STAMP_PARAM] = (last,)
            if address == organizer:
                continue
            asked = (att.param("PARTSTAT") or "NEEDS-ACTION").upper()
            replied = previous.param("PARTSTAT") if previous is not None else None
            if asked == "NEEDS-ACTION" or not replied:
                att.params["PARTSTAT"] = ("NEEDS-ACTION",)
            else:
                att.params["PARTSTAT"] = (replied,)

    def auto_accept(self, event: Component) -> None:
        org = event.get("ORGANIZER")
        for att in event.get_all("ATTENDEE"):
            if isinstance(att.value, str) and normalize_address(att.value) in self.server:
                att.params["PARTSTAT"] = ("ACCEPTED",)
                att.params.pop("RSVP", None)
                reply = Component(
                    event.name,
                    [p.copy() for p in event.properties if p.name not in ("ATTENDEE", "DTSTAMP")],
                )
                reply.properties.append(Property("DTSTAMP", self.now_dt, None, cv.DATE_TIME))
                reply.properties.append(att.copy())
                self.send("REPLY", [str(org.value)] if org else [], [reply])

    def add(self, comp: Component, master: Optional[Component]) -> None:
        if master is None:
            org = comp.get("ORGANIZER")
            refresh = self._refresh_request(comp)
            if refresh is not None and org is not None:
                self.send("REFRESH", [str(org.value)], [refresh])
            raise _refuse("missing", f"UID {comp.value('UID')} unknown (REFRESH sent)")
        if not _newer(comp, master):
            raise _refuse("invalid-sequence", "SEQUENCE/DTSTAMP not newer than stored")
        start = comp.get("DTSTART")
        if start is None or not isinstance(start.value, date):
            raise _refuse("missing", "DTSTART")
        new = master.copy()
        params = {"TZID": start.params["TZID"]} if "TZID" in start.params else None
        new.properties.append(Property("RDATE", start.value, params))
        for name in ("SEQUENCE", "DTSTAMP"):
            prop = comp.get(name)
            if prop is not None:
                new.set(name, prop.value)
        self.replace(master, new)

    def _refresh_request(self, comp: Component) -> Optional[Component]:
        server_atts = [
            a
            for a in comp.get_all("ATTENDEE")
            if isinstance(a.value, str) and normalize_address(a.value) in self.server
        ]
        if not server_atts:
            return None
        refresh = Component(comp.name)
        for name in ("UID", "ORGANIZER"):
            prop = comp.get(name)
            if prop is not None:
                refresh.properties.append(prop.copy())
        refresh.properties.append(Property("DTSTAMP", self.now_dt, None, cv.DATE_TIME))
        refresh.properties.append(server_atts[0].copy())
        return refresh

    def cancel(
        self, comp: Component, key: Key, current: Optional[Component], master: Optional[Component]
    ) -> None:
        if current is None and master is None:
            raise _refuse("missing", f"UID {key[0]} unknown")
        target = current if current is not None else master
        assert target is not None
        if not _newer(comp, target):
            raise _refuse("invalid-sequence", "SEQUENCE/DTSTAMP not newer than stored")
        if current is None and master is not None:
            # One instance of a recurring event without an override: exclude it.
            rid = comp.get("RECURRENCE-ID")
            assert rid is not None
            new = master.copy()
            params = {"TZID": rid.params["TZID"]} if "TZID" in rid.params else None
            new.properties.append(Property("EXDATE", rid.value, params))
            self.replace(master, new)
            return
        targets = [current] if key[1] else self.related(key[0])
        for old in targets:
            assert old is not None
            new = old.copy()
            new.set("STATUS", "CANCELLED")
            for name in ("SEQUENCE", "DTSTAMP"):
                prop = comp.get(name)
                if prop is not None:
                    new.set(name, prop.value)
            self.replace(old, new)

    def stored_attendee(self, comp: Component, address: str) -> Optional[Property]:
        wanted = normalize_address(address)
        for att in comp.get_all("ATTENDEE"):
            if isinstance(att.value, str) and normalize_address(att.value) == wanted:
                return att
        return None

    def attendee_method(self, method: str, comp: Component) -> None:
        key = self.key(comp)
        current = self.find(key)
        master = self.find((key[0], ""))
        base = current if current is not None else master
        if base is None:
            raise _refuse("missing", f"UID {key[0]} unknown")
        atts = comp.get_all("ATTENDEE")
        if method == "REPLY":
            if len(atts) != 1:
                raise _refuse(
                    "invalid-property-value",
                    f"a REPLY carries exactly one ATTENDEE, not {len(atts)}",
                )
            self.acts_for(atts[0], "ATTENDEE")
            self.reply(comp, key, atts[0], current, master)
            return
        # REFRESH and COUNTER: only from an attendee of the stored object.
        sender = None
        for att in atts:
            if self.stored_attendee(base, str(att.value)) is None:
                continue
            try:
                self.acts_for(att, "ATTENDEE")
            except _Refused:
                continue
            sender = att
            break
        if sender is None:
            raise _refuse("no-authority", f"{self.identity} is not an attendee")
        org = base.get("ORGANIZER")
        if method == "REFRESH":
            self.send("REQUEST", [str(sender.value)], [c.copy() for c in self.related(key[0])])
        else:
            self.send("COUNTER", [str(org.value)] if org is not None else [], [comp.copy()])

    def reply(
        self,
        comp: Component,
        key: Key,
        att: Property,
        current: Optional[Component],
        master: Optional[Component],
    ) -> None:
        base = current if current is not None else master
        assert base is not None
        address = str(att.value)
        stored_att = self.stored_attendee(base, address)
        if stored_att is None:
            raise _refuse("invalid-user", f"{address} is not an attendee")
        if _sequence(comp) < _sequence(base):
            raise _refuse("invalid-sequence", "REPLY to an older SEQUENCE")
        stamp = _stamp(comp)
        last = stored_att.param(REPLY_STAMP_PARAM)
        if last is not None:
            try:
                previous = cv.parse_ical_date_time(last)
            except CalendarError:
                previous = None
            if previous is not None and stamp <= previous:
                raise _refuse("invalid-sequence", f"older than {address}'s last REPLY")
        new = base.copy() if current is not None else _instance_of(base, comp)
        target = self.stored_attendee(new, address)
        assert target is not None
        target.params["PARTSTAT"] = (att.param("PARTSTAT", "NEEDS-ACTION") or "NEEDS-ACTION",)
        for name in ("DELEGATED-TO", "DELEGATED-FROM"):
            if name in att.params:
                target.params[name] = att.params[name]
        target.params.pop("RSVP", None)
        target.params[REPLY_STAMP_PARAM] = (cv.format_ical_date_time(stamp),)
        self.replace(current, new)


def _instance_of(master: Component, reply: Component) -> Component:
    # A REPLY for one instance of a recurring event without an override
    # yet: create the override from the master (RFC 5546 section 3.2.3).
    if reply.get("RECURRENCE-ID") is None:
        return master.copy()
    rid = reply.get("RECURRENCE-ID")
    assert rid is not None
    new = master.copy()
    for name in ("RRULE", "RDATE", "EXDATE"):
        new.remove(name)
    start = master.get("DTSTART")
    end = master.get("DTEND")
    if start is not None and end is not None and isinstance(start.value, date):
        try:
            delta: timedelta = end.value - start.value
            new.set("DTEND", rid.value + delta, end.params)
        except (OverflowError, TypeError):  # out of range, or DATE against DATE-TIME
            raise _refuse("invalid-date", "RECURRENCE-ID: the instance cannot end") from None
    if start is not None:
        new.set("DTSTART", rid.value, rid.params)
    new.set("RECURRENCE-ID", rid.value, rid.params)
    return new


def _public(comp: Component) -> Component:
    new = comp.copy()
    for sub in new.walk():
        for prop in sub.properties:
            prop.params.pop(REPLY_STAMP_PARAM, None)
    return new


def process(
    stored: Optional[Component],
    incoming: Component,
    identity: str,
    content_type: Mapping[str, str],
    *,
    policy: IDelegationPolicy,
    now: float,
    server_addresses: Iterable[str] = (),
) -> ITipResult:
    """
    Apply one iTIP message to a stored calendar object.

    @param stored: the VCALENDAR the server holds for these UIDs (its
        scheduling components and VTIMEZONEs), or L{None}.
    @param incoming: the received VCALENDAR, with METHOD; several
        components of that METHOD may be inside (iSIP section 4.3); the
        message is applied all or nothing.
    @param identity: the authenticated identity (C{sip:alice@example.com}),
        never the From header.
    @param content_type: the Content-Type parameters (C{method},
        C{component}); METHOD must equal C{method} and C{component} must
        list exactly the component types inside (VTIMEZONE aside).
        Absent parameters are not required (iSIP says SHOULD).
    @param policy: answers whether a SENT-BY delegate is approved.
    @param now: POSIX time, for the policy and generated DTSTAMPs.
    @param server_addresses: calendar user addresses this server answers
        for (conference rooms and resources): when a REQUEST invites one,
        it is accepted and a REPLY goes to the organizer.
    @return: an L{ITipResult}; rule violations are refusals, not errors.
    """
    refused_state = stored
    try:
        if incoming.name != "VCALENDAR":
            raise _refuse("missing", "VCALENDAR")
        method_value = incoming.value("METHOD")
        if not isinstance(method_value, str) or not method_value.strip():
            raise _refuse("missing", "METHOD")
        method = method_value.strip().upper()
        if method not in METHODS:
            raise _refuse("unsupported-capability", f"METHOD {method}")
        comps = [c for c in incoming.components if c.name != "VTIMEZONE"]
        _content_type_check(method, (c.name for c in incoming.components), content_type)
        if not comps:
            raise _refuse("missing", "no scheduling component")
        if method == "REQUEST" and any(c.name == "VFREEBUSY" for c in comps):
            # A free/busy request is answered, not stored: the caller
            # builds the REPLY with conference.calendar.freebusy.
            raise _refuse("unsupported-capability", "VFREEBUSY REQUEST (answer with freebusy)")
        engine = _Engine(
            stored, identity, policy=policy, now=now, server_addresses=server_addresses
        )
        for vtz in incoming.subcomponents("VTIMEZONE"):
            tzid = vtz.value("TZID")
            engine.work.components = [
                c
                for c in engine.work.components
                if not (c.name == "VTIMEZONE" and c.value("TZID") == tzid)
            ]
            engine.work.components.insert(0, vtz.copy())
            engine.resolver.add_calendar(incoming)
        handler: Callable[[str, Component], None] = (
            engine.organizer_method if method in ORGANIZER_METHODS else engine.attendee_method
        )
        details: List[Tuple[str, str, RequestStatus]] = []
        for comp in comps:
            _stamp(comp)
            _sequence(comp)
            key = engine.key(comp)
            try:
                handler(method, comp)
            except _Refused as e:
                details.append((key[0], key[1], e.status))
                # A refusal sends nothing, except the REFRESH that RFC 5546
                # prescribes when an ADD names an unknown event.
                refresh = [o for o in engine.outgoing if o.method == "REFRESH"]
                return ITipResult(False, e.status, refused_state, refresh, details)
            details.append((key[0], key[1], status("success")))
        new_state = (
            engine.work if method not in ("REFRESH", "COUNTER", "DECLINECOUNTER") else stored
        )
        if new_state is engine.work:  # docs/limits.rst: only what can be read back and expanded
            unstorable = check_storable(engine.work, engine.changed, now=engine.now_dt)
            if unstorable is not None:
                return ITipResult(False, unstorable, refused_state)
        return ITipResult(True, status("success"), new_state, engine.outgoing, details)
    except _Refused as e:
        return ITipResult(False, e.status, refused_state)
    except CalendarError as e:
        return ITipResult(False, status("invalid-property-value", str(e)), refused_state)


def attendee_statuses(stored: Component) -> Dict[Tuple[str, str], str]:
    """
    C{(UID, attendee address)} -> PARTSTAT over a stored object's
    components (masters and overrides alike; later components win), a
    convenience for the server's conference roster.
    """
    out: Dict[Tuple[str, str], str] = {}
    for comp in stored.components:
        uid = comp.value("UID")
        if not isinstance(uid, str):
            continue
        for att in comp.get_all("ATTENDEE"):
            if isinstance(att.value, str):
                out[(uid, normalize_address(att.value))] = (
                    att.param("PARTSTAT", "NEEDS-ACTION") or ""
                )
    return out


__all__ = [
    "ATTENDEE_METHODS",
    "METHODS",
    "ORGANIZER_METHODS",
    "REPLY_STAMP_PARAM",
    "ITipResult",
    "Outgoing",
    "attendee_statuses",
    "normalize_address",
    "process",
]
