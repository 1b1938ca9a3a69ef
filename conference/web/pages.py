# -*- test-case-name: tests.unit.web.test_pages -*-
"""
The status pages as HTML, rendered on the server with
L{twisted.web.template} (no JavaScript): a timeline picture (SVG) of
conferences, one page per conference and a user's free/busy picture.
Every time is shown in the viewer's zone.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from typing import Any, Dict, List, Optional, Sequence, Tuple
from urllib.parse import urlencode

from twisted.internet.defer import Deferred
from twisted.web.template import Tag, flattenString, tags

from conference.web.views import Conference

STYLE = """
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:60em;padding:0.5em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.2em}
nav a{margin-right:1em}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:0.3em;
text-align:left;vertical-align:top;word-break:break-all}
svg{width:100%;max-width:52em;height:auto;background:#fafafa;border:1px solid #ddd}
.muted{color:#666}.partstat-ACCEPTED{color:#1a7f37}.partstat-DECLINED{color:#b42318}
button{padding:0.4em 0.8em}form{display:inline}
"""

#: Button labels of the actions (others show their name).
ACTION_LABELS = {
    "end": "End the call for everyone",
    "lock": "Lock (only moderators may join)",
    "unlock": "Unlock",
    "mute": "Mute",
    "unmute": "Unmute",
    "remove": "Remove",
}

#: Bar colours of the pictures, in the order conferences are listed.
COLOURS = ("#2f6fb0", "#1a7f37", "#9a6700", "#8250df", "#b42318", "#0f766e")


def render(page: Tag) -> Deferred[bytes]:
    """
    Flatten a page to bytes, with the doctype.
    """
    return flattenString(None, page).addCallback(lambda body: b"<!DOCTYPE html>\n" + body)


def layout(title: str, viewer: str, zone: str, *body: Any) -> Tag:
    """
    The frame of every page: title, navigation, who is logged in and in
    which time zone times are shown.
    """
    return tags.html(lang="en")(
        tags.head(
            tags.meta(charset="utf-8"),
            tags.meta(name="viewport", content="width=device-width, initial-scale=1"),
            tags.title(title),
            tags.style(STYLE),
        ),
        tags.body(
            tags.nav(
                tags.a("Timeline", href="/"),
                tags.a("My free/busy", href="/freebusy"),
                tags.a("JSON", href="/api/conferences"),
            ),
            tags.h1(title),
            tags.p(class_="muted")(f"Logged in as {viewer}; times in {zone}."),
            *body,
        ),
    )


def _svg(width: int, height: int, *children: Any) -> Tag:
    return Tag("svg", children=list(children))(
        xmlns="http://www.w3.org/2000/svg",
        viewBox=f"0 0 {width} {height}",
        role="img",
    )


def _el(name: str, text: Optional[str] = None, **attributes: Any) -> Tag:
    tag = Tag(name)(**{k.rstrip("_").replace("_", "-"): str(v) for k, v in attributes.items()})
    return tag(text) if text is not None else tag


def timeline_svg(
    conferences: Sequence[Conference],
    start: datetime,
    end: datetime,
    zone: tzinfo,
    *,
    ticks: Sequence[Tuple[datetime, str]],
    label: str,
    now: Optional[datetime] = None,
) -> Tag:
    """
    One row per conference, a bar per occurrence within C{[start, end)},
    the axis labelled at C{ticks} (viewer's zone), and a red line at
    C{now} when it falls inside.
    """
    width, left, row = 600, 150, 28
    height = 30 + row * max(1, len(conferences))
    span = (end - start).total_seconds()

    def x(when: datetime) -> float:
        clipped = min(max(when, start), end)
        return left + (width - left - 10) * (clipped - start).total_seconds() / span

    parts: List[Any] = [_el("title", label)]
    for when, text in ticks:
        parts.append(_el("line", x1=x(when), x2=x(when), y1=18, y2=height, stroke="#ddd"))
        parts.append(_el("text", text, x=x(when) + 2, y=13, font_size=12, fill="#555"))
    if now is not None and start <= now < end:
        parts.append(
            _el("line", x1=x(now), x2=x(now), y1=16, y2=height, stroke="#d1242f", stroke_width=2)(
                _el("title", "now")
            )
        )
    if not conferences:
        parts.append(_el("text", "No conferences.", x=left, y=44, font_size=13, fill="#555"))
    for n, conference in enumerate(conferences):
        y = 24 + n * row
        name = (
            conference.summary if len(conference.summary) <= 28 else conference.summary[:27] + "…"
        )
        link = Tag("a")(href="/conference?" + urlencode({"uri": conference.record.uri}))
        parts.append(link(_el("text", name, x=4, y=y + 17, font_size=15, fill="#2f6fb0")))
        colour = COLOURS[n % len(COLOURS)]
        for occurrence in conference.occurrences:
            x1, x2 = x(occurrence["start"]), x(occurrence["end"])
            shown = occurrence["start"].astimezone(zone).strftime("%a %H:%M")
            bar = _el("rect", x=x1, y=y + 3, width=max(x2 - x1, 4.0), height=row - 8, rx=3)
            parts.append(bar(fill=colour)(_el("title", f"{conference.summary}: {shown}")))
    return _svg(width, height, *parts)


def day_ticks(start: datetime, zone: tzinfo, hours: int = 3) -> List[Tuple[datetime, str]]:
    """
    Axis ticks every C{hours} over the day from C{start}.
    """
    return [
        (start + timedelta(hours=h), (start + timedelta(hours=h)).astimezone(zone).strftime("%H"))
        for h in range(0, 24, hours)
    ]


def week_ticks(start: datetime, zone: tzinfo, days: int = 7) -> List[Tuple[datetime, str]]:
    """
    Axis ticks at each day's start over C{days} from C{start}.
    """
    return [
        (start + timedelta(days=d), (start + timedelta(days=d)).astimezone(zone).strftime("%a %d"))
        for d in range(days)
    ]


def span_text(start: datetime, end: datetime, zone: tzinfo) -> str:
    """
    An occurrence as the viewer reads it: C{Thu 03 09:30–10:30}.
    """
    return f"{start.astimezone(zone):%a %d %H:%M}–{end.astimezone(zone):%H:%M}"


def _when(value: str, zone: tzinfo) -> str:
    return datetime.fromisoformat(value).astimezone(zone).strftime("%Y-%m-%d %H:%M")


def conference_body(
    page: Dict[str, Any], zone: tzinfo, csrf: str, actions: Sequence[str] = ("end",)
) -> List[Any]:
    """
    The body of a conference page: VEVENT facts, attendees with PARTSTAT,
    bindings, the live roster and, for who may act, the actions.
    """
    attendees = tags.table(
        tags.tr(tags.th("Attendee"), tags.th("PARTSTAT"), tags.th("Type")),
        *[
            tags.tr(
                tags.td(a["address"]),
                tags.td(class_="partstat-" + a["partstat"])(a["partstat"]),
                tags.td(a["cutype"]),
            )
            for a in page["attendees"]
        ],
    )
    occurrences = tags.ul(
        *[
            tags.li(f"{_when(o['start'], zone)} – {_when(o['end'], zone)}")
            for o in page["occurrences"]
        ]
        or [tags.li("No occurrence in the coming week.")]
    )
    bindings = tags.table(
        tags.tr(tags.th("Disposition"), tags.th("URI")),
        *[tags.tr(tags.td(b["disposition"]), tags.td(b["uri"])) for b in page["bindings"]],
    )
    roster_rows = []
    for person in page["roster"]:
        muted = bool(person.get("muted"))
        cells = [
            tags.td(person["identity"]),
            tags.td(_when(person["joined"], zone)),
            tags.td(class_="muted" if muted else "")("muted" if muted else "speaking"),
        ]
        if page["may_act"]:
            toggle = "unmute" if muted else "mute"
            cells.append(
                tags.td(
                    _action_form(toggle, page["uri"], csrf, person["key"]),
                    _action_form("remove", page["uri"], csrf, person["key"]),
                )
            )
        roster_rows.append(tags.tr(*cells))
    roster = (
        tags.table(
            tags.tr(tags.th("Participant"), tags.th("Joined"), tags.th("Audio")), *roster_rows
        )
        if roster_rows
        else tags.p(class_="muted")("Nobody is in the conference now.")
    )
    body: List[Any] = [
        tags.p("Organizer: ", page["organizer"], tags.br(), "URI: ", tags.code(page["uri"])),
        tags.p("State: ", page["state"], " (locked)" if page.get("locked") else ""),
        tags.h2("Occurrences"),
        occurrences,
        tags.h2(f"Attendees ({len(page['attendees'])})"),
        attendees,
        tags.h2("Bindings"),
        bindings if page["bindings"] else tags.p(class_="muted")("No bindings."),
        tags.h2(f"In the conference now ({len(page['roster'])})", id="roster"),
        roster,
    ]
    # Lock or unlock, whichever changes something.
    shown = [a for a in actions if a != ("lock" if page.get("locked") else "unlock")]
    if page["may_act"] and shown:
        body += [tags.h2("Actions"), *[_action_form(a, page["uri"], csrf) for a in shown]]
    return body


def _action_form(action: str, uri: str, csrf: str, participant: Optional[str] = None) -> Tag:
    fields = [
        tags.input(type="hidden", name="uri", value=uri),
        tags.input(type="hidden", name="csrf", value=csrf),
    ]
    if participant is not None:
        fields.append(tags.input(type="hidden", name="participant", value=participant))
    label = ACTION_LABELS.get(action, action.capitalize())
    return tags.form(method="post", action=f"/action/{action}")(*fields, tags.button(label))


def freebusy_svg(data: Dict[str, Any], start: datetime, days: int, zone: tzinfo) -> Tag:
    """
    A week (or C{days}) as columns, busy time as blocks: one column a day,
    hours of the viewer's day downwards.
    """
    col, top, hour = 100, 24, 16
    width, height = 40 + col * days, top + 24 * hour
    parts: List[Any] = [_el("title", f"Free/busy of {data['user']}")]
    local_start = start.astimezone(zone)
    for d in range(days):
        day = local_start + timedelta(days=d)
        parts.append(_el("text", day.strftime("%a %d"), x=40 + d * col + 4, y=15, font_size=12))
        parts.append(
            _el("line", x1=40 + d * col, x2=40 + d * col, y1=top, y2=height, stroke="#ccc")
        )
    for h in range(0, 24, 3):
        y = top + h * hour
        parts.append(_el("text", f"{h:02d}", x=4, y=y + 11, font_size=11, fill="#555"))
        parts.append(_el("line", x1=40, x2=width, y1=y, y2=y, stroke="#eee"))
    colours = {"BUSY": "#b42318", "BUSY-TENTATIVE": "#9a6700", "BUSY-UNAVAILABLE": "#555"}
    for fbtype, spans in data["busy"].items():
        for span in spans:
            s = datetime.fromisoformat(span["start"]).astimezone(zone)
            e = datetime.fromisoformat(span["end"]).astimezone(zone)
            while s < e:  # split at the viewer's midnights
                midnight = (s + timedelta(days=1)).replace(hour=0, minute=0, second=0)
                piece_end = min(e, midnight)
                d = (s.date() - local_start.date()).days
                if 0 <= d < days:
                    y1 = top + (s.hour + s.minute / 60) * hour
                    y2 = top + ((piece_end - s).total_seconds() / 3600) * hour + y1 - top
                    rect = _el("rect", x=40 + d * col + 2, y=y1, width=col - 4)
                    parts.append(
                        rect(height=str(max(y2 - y1, 1.0)), fill=colours.get(fbtype, "#b42318"))(
                            _el("title", f"{fbtype} {s:%H:%M}–{piece_end:%H:%M}")
                        )
                    )
                s = piece_end
    return _svg(width, height, *parts)
