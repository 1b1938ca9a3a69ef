# -*- test-case-name: tests.unit.web.test_resource -*-
"""
Tests for L{conference.web.resource}: the pages, JSON, actions and the
answers to bad input, through a real L{twisted.web.server.Site}.
"""

from __future__ import annotations

import json
import re
from base64 import b64encode
from typing import Any, Dict, List, Optional
from urllib.parse import quote

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from conference.app.conferences import serialize
from conference.records import CalendarEntry
from conference.web.access import Viewer
from conference.web.actions import PARTICIPANT_ACTIONS
from conference.web.views import participant_key
from tests.unit.app.calendars import T0, conference_calendar
from tests.unit.app.test_control import MutingMedia
from tests.unit.web.fixture import (
    ATTENDEE,
    CONF,
    ORGANIZER,
    STRANGER,
    Answer,
    FailingConferences,
    WebFixture,
    digest_authorization,
    parse_answer,
)

#: Every action the page offers.
ALL_ACTIONS = ("end", "lock", "unlock", "mute", "unmute", "remove")


class HeldConferences:
    """
    A conference store that answers only when the test says so.
    """

    def __init__(self) -> None:
        self.answer: Deferred[List[Any]] = Deferred()

    def list(self, organizer: Any = None, state: Any = None) -> Deferred[List[Any]]:
        return self.answer


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert found is not None, page
    return found.group(1)


class AccessTests(WebFixture):
    """
    Logging in and who sees what.
    """

    def test_login_required(self) -> None:
        """Without credentials every page is 401 with digest and basic challenges, no data."""
        for path in ("/", f"/conference?uri={quote(CONF)}", "/api/conferences", "/metrics"):
            answer = self.request(path, user=None)
            self.assertEqual(answer.code, 401, path)
            offered = [c.split()[0] for c in answer.headers["www-authenticate"]]
            self.assertEqual(offered, ["Digest", "Digest", "Basic"])
            self.assertIn("algorithm=SHA-256", answer.headers["www-authenticate"][0])
            self.assertNotIn("Weekly sync", answer.text)

    def test_basic_only_on_loopback_or_tls(self) -> None:
        """Basic from another host over plain HTTP is refused and not offered; digest is."""
        answer = self.request("/", peer="192.0.2.7")
        self.assertEqual(answer.code, 401)
        offered = [c.split()[0] for c in answer.headers["www-authenticate"]]
        self.assertEqual(offered, ["Digest", "Digest"])

    def digest_get(self, path: str, password: str, *, peer: str = "192.0.2.7") -> Answer:
        """GET C{path} as alice with digest, answering a fresh challenge."""
        challenge = self.request(path, user=None, peer=peer).headers["www-authenticate"][0]
        header = digest_authorization(challenge, "alice", password, path)
        return self.request(path, user=None, peer=peer, headers=(("Authorization", header),))

    def test_digest_login(self) -> None:
        """RFC 7616 digest with the SIP password logs in from anywhere, without basic."""
        answer = self.digest_get("/api/conferences", "pw-a")
        self.assertEqual(answer.code, 200)
        self.assertIn("Weekly sync", answer.text)

    def test_digest_wrong(self) -> None:
        """A digest computed with a wrong password is 401 and shows nothing."""
        answer = self.digest_get("/api/conferences", "nope")
        self.assertEqual(answer.code, 401)
        self.assertNotIn("Weekly sync", answer.text)

    def test_digest_other_uri_or_garbage(self) -> None:
        """A digest for another URI, a forged nonce or a malformed header is 401, no traceback."""
        for header in (
            'Digest username="alice", realm="example.com", nonce="00", uri="/", response="0"',
            "Digest ,,,=",
            "Digest \xff",
        ):
            answer = self.request("/", user=None, headers=(("Authorization", header),))
            self.assertEqual(answer.code, 401, header)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_digest_md5(self) -> None:
        """The MD5 challenge answered with MD5 logs in too."""
        path = "/api/conferences"
        challenges = self.request(path, user=None, peer="192.0.2.7").headers["www-authenticate"]
        header = digest_authorization(challenges[1], "alice", "pw-a", path, algorithm="MD5")
        answer = self.request(
            path, user=None, peer="192.0.2.7", headers=(("Authorization", header),)
        )
        self.assertEqual(answer.code, 200)

    def test_digest_stale_replayed_bad_uri(self) -> None:
        """Stale: 401 stale=true, then a fresh nonce works; replayed: 401; other uri: 400."""
        challenge = self.request("/", user=None).headers["www-authenticate"][0]
        header = (("Authorization", digest_authorization(challenge, "alice", "pw-a", "/")),)
        self.clock.advance(3600)
        stale = self.request("/", user=None, headers=header)
        self.assertEqual(stale.code, 401)
        self.assertIn("stale=true", stale.headers["www-authenticate"][0])
        fresh = stale.headers["www-authenticate"][0]
        again = (("Authorization", digest_authorization(fresh, "alice", "pw-a", "/")),)
        self.assertEqual(self.request("/", user=None, headers=again).code, 200)
        replayed = self.request("/", user=None, headers=again)
        self.assertEqual(replayed.code, 401)
        self.assertNotIn("stale=true", replayed.headers["www-authenticate"][0])
        other = (("Authorization", digest_authorization(fresh, "alice", "pw-a", "/x")),)
        self.assertEqual(self.request("/", user=None, headers=other).code, 400)
        lines = self.request("/metrics").text.splitlines()
        for outcome, count in (("ok", 1), ("stale", 1), ("replayed", 1), ("bad-uri", 1)):
            self.assertIn(
                f'conference_web_logins_total{{outcome="{outcome}",scheme="digest"}} {count}.0',
                lines,
            )

    def test_digest_cross_user(self) -> None:
        """A digest for alice's password under bob's name, or alice's header as bob: 401."""
        challenge = self.request("/", user=None).headers["www-authenticate"][0]
        for header in (
            digest_authorization(challenge, "bob", "pw-a", "/"),
            digest_authorization(challenge, "alice", "pw-a", "/").replace(
                'username="alice"', 'username="bob"'
            ),
        ):
            answer = self.request("/", user=None, headers=(("Authorization", header),))
            self.assertEqual(answer.code, 401, header)
            self.assertNotIn("Weekly sync", answer.text)

    def test_digest_action_from_afar(self) -> None:
        """Over plain HTTP from another host, digest logs in for a POST action too."""
        self.join()
        token = self.site.resource.gate.csrf_token(Viewer(ORGANIZER))
        challenge = self.request("/", user=None, peer="192.0.2.7").headers["www-authenticate"][0]
        header = digest_authorization(challenge, "alice", "pw-a", "/action/lock", method="POST")
        answer = self.request(
            "/action/lock",
            user=None,
            method="POST",
            form={"uri": CONF, "csrf": token},
            peer="192.0.2.7",
            headers=(("Authorization", header),),
        )
        self.assertEqual(answer.code, 303)
        record = self.successResultOf(self.stores.conferences.get(CONF))
        assert record is not None
        self.assertTrue(self.focus.is_locked(record))

    def test_wrong_password(self) -> None:
        """A wrong password or an unknown domain is 401 too."""
        self.assertEqual(self.request("/", user="alice-wrong").code, 401)
        self.assertEqual(self.request("/", user="alice@elsewhere.org").code, 401)

    def test_security_headers(self) -> None:
        """Every answer forbids framing, sniffing, caching and scripts."""
        for user in (None, "alice"):
            answer = self.request("/", user=user)
            self.assertEqual(answer.header("x-frame-options"), "DENY")
            self.assertEqual(answer.header("cache-control"), "no-store")
            self.assertIn("default-src 'none'", answer.header("content-security-policy") or "")
            self.assertNotIn("<script", answer.text)

    def test_malformed_authorization(self) -> None:
        """A Basic header that is not base64 or has no colon is 401, not an error."""
        for value in ("Basic !!!", "Basic YWxpY2U=", "Bearer abc"):
            answer = self.request("/", user=None, headers=(("Authorization", value),))
            self.assertEqual(answer.code, 401, value)

    def test_organizer_sees_own(self) -> None:
        """The organizer sees the conference on the timeline and its page."""
        timeline = self.request("/?tz=UTC")
        self.assertEqual(timeline.code, 200)
        self.assertIn("Weekly sync", timeline.text)
        self.assertIn("<svg", timeline.text)
        page = self.request(f"/conference?uri={quote(CONF)}")
        self.assertEqual(page.code, 200)
        self.assertIn("sip:bob@example.com", page.text)
        self.assertIn("NEEDS-ACTION", page.text)
        self.assertIn("/action/end", page.text)

    def test_attendee_sees_cannot_act(self) -> None:
        """An attendee sees the conference but gets no action forms."""
        page = self.request(f"/conference?uri={quote(CONF)}", user="bob")
        self.assertEqual(page.code, 200)
        self.assertNotIn("/action/", page.text)

    def test_stranger_cannot_see(self) -> None:
        """Someone neither organizer nor attendee gets 404 and an empty list."""
        page = self.request(f"/conference?uri={quote(CONF)}", user="carol")
        self.assertEqual(page.code, 404)
        self.assertNotIn("Weekly sync", page.text)
        data = json.loads(self.request("/api/conferences?start=2026-12-01", user="carol").body)
        self.assertEqual(data["conferences"], [])

    def test_admin_sees_all(self) -> None:
        """An --admin address sees every conference and may act on it."""
        data = json.loads(self.request("/api/conferences?start=2026-12-01", user="root").body)
        [conference] = data["conferences"]
        self.assertEqual(conference["uri"], CONF)
        self.assertTrue(conference["may_act"])


class PageTests(WebFixture):
    """
    What the pages and the JSON show.
    """

    def test_api_conference(self) -> None:
        """/api/conference gives the VEVENT facts, bindings and the roster."""
        self.join()
        data = json.loads(self.request(f"/api/conference?uri={quote(CONF)}").body)
        self.assertEqual(data["summary"], "Weekly sync")
        self.assertEqual(data["organizer"], "sip:alice@example.com")
        self.assertIn(
            {"address": "sip:bob@example.com", "partstat": "NEEDS-ACTION", "cutype": "INDIVIDUAL"},
            data["attendees"],
        )
        self.assertEqual([p["identity"] for p in data["roster"]], ["sip:bob@example.com"])
        self.assertEqual(data["bindings"], [])

    def test_roster_on_page(self) -> None:
        """The conference page lists who is in the conference now."""
        before = self.request(f"/conference?uri={quote(CONF)}").text
        self.assertIn("Nobody is in the conference now", before)
        self.join()
        after = self.request(f"/conference?uri={quote(CONF)}").text
        self.assertIn("In the conference now (1)", after)

    def test_times_in_viewer_zone(self) -> None:
        """tz shows times in that zone and is remembered in a cookie."""
        answer = self.request(f"/conference?uri={quote(CONF)}&tz=Asia/Tokyo")
        self.assertIn("2026-12-01 18:00", answer.text)  # 09:00 UTC
        self.assertIn("tz=Asia/Tokyo", " ".join(answer.headers.get("set-cookie", [])))
        again = self.request(
            f"/conference?uri={quote(CONF)}", headers=(("Cookie", "tz=Asia/Tokyo"),)
        )
        self.assertIn("times in Asia/Tokyo", again.text)

    def test_freebusy_own(self) -> None:
        """A user's free/busy shows a conference they have not answered as tentative."""
        calendar = conference_calendar()
        self.successResultOf(
            self.stores.calendars.put_entry(
                CalendarEntry("sip:bob@example.com", "conf-1@example.com", serialize(calendar))
            )
        )
        data = json.loads(self.request("/api/freebusy?start=2026-11-30", user="bob").body)
        self.assertEqual(
            data["busy"]["BUSY-TENTATIVE"],
            [{"start": T0.isoformat(), "end": T0.replace(hour=10).isoformat()}],
        )
        page = self.request("/freebusy?start=2026-11-30", user="bob")
        self.assertEqual(page.code, 200)
        self.assertIn("<rect", page.text)

    def test_freebusy_other_user(self) -> None:
        """Another user's free/busy is 403, except for admins."""
        path = "/api/freebusy?user=" + quote("sip:bob@example.com")
        self.assertEqual(self.request(path, user="carol").code, 403)
        self.assertEqual(self.request(path, user="root").code, 200)


class BadInputTests(WebFixture):
    """
    Malformed queries, unknown paths, a store that is down.
    """

    def test_malformed_queries(self) -> None:
        """Bad tz, dates, day counts, repeats, encodings and missing values are 400."""
        for query in (
            "/?tz=../../etc/passwd",
            "/?tz=Mars/Olympus",
            "/api/freebusy?start=yesterday",
            "/api/freebusy?start=0001-01-01",
            "/api/freebusy?days=100000",
            "/api/freebusy?days=-1",
            "/api/conferences?days=1e9",
            f"/conference?uri={quote(CONF)}&uri={quote(CONF)}",
            "/conference?uri=%ff%fe",
            "/conference",
        ):
            answer = self.request(query)
            self.assertEqual(answer.code, 400, query)
            self.assertNotIn("Traceback", answer.text)

    def test_unknown_and_method(self) -> None:
        """Unknown paths are 404; the wrong method is 405."""
        self.assertEqual(self.request("/nothing/here").code, 404)
        answer = self.request("/action/end")
        self.assertEqual((answer.code, answer.header("allow")), (405, "POST"))
        answer = self.request("/", method="POST", form={})
        self.assertEqual((answer.code, answer.header("allow")), (405, "GET"))
        self.assertEqual(self.request("/", method="DELETE").header("allow"), "GET")

    def test_store_down(self) -> None:
        """A failing store is 503 with Retry-After, no traceback."""
        self.stores.conferences = FailingConferences()  # type: ignore[assignment]
        for path in ("/", "/api/conferences", f"/conference?uri={quote(CONF)}"):
            answer = self.request(path)
            self.assertEqual(answer.code, 503, path)
            self.assertEqual(answer.header("retry-after"), "30")
            self.assertNotIn("Traceback", answer.text)
        token = self.site.resource.gate.csrf_token(Viewer("sip:alice@example.com"))
        posted = self.request("/action/end", method="POST", form={"uri": CONF, "csrf": token})
        self.assertEqual(posted.code, 503)
        metrics = self.request("/metrics")
        self.assertEqual(metrics.code, 200)
        self.assertIn("conference_store_up 0.0", metrics.text)

    def test_client_gone(self) -> None:
        """A client that leaves before the store answers costs nothing: no error, no answer."""
        held = HeldConferences()
        self.stores.conferences = held  # type: ignore[assignment]
        transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
        channel = self.site.buildProtocol(None)
        assert channel is not None
        channel.makeConnection(transport)
        token = b64encode(b"alice:pw-a").decode()
        channel.dataReceived(
            f"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {token}\r\n\r\n".encode()
        )
        channel.connectionLost(Failure(ConnectionDone()))
        held.answer.callback([])
        self.assertEqual(transport.value(), b"")
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_stores_not_open(self) -> None:
        """Before the stores open, pages are 503."""
        self.stores = None  # type: ignore[assignment]
        self.assertEqual(self.request("/").code, 503)

    def test_stranger_unknown_same_answer(self) -> None:
        """An unknown conference and another's conference get the same 404."""
        mine = self.request(f"/conference?uri={quote(CONF)}", user="carol")
        unknown = self.request("/conference?uri=" + quote("sip:nope@example.com"), user="carol")
        self.assertEqual((mine.code, mine.body), (unknown.code, unknown.body))
        self.assertNotIn(STRANGER, mine.text)


class ActionTests(WebFixture):
    """
    Organizer actions with CSRF protection.
    """

    def form(self, user: str = "alice") -> str:
        return csrf_of(self.request(f"/conference?uri={quote(CONF)}", user=user).text)

    def participant(self) -> str:
        data = json.loads(self.request(f"/api/conference?uri={quote(CONF)}").body)
        key: str = data["roster"][0]["key"]
        return key

    def test_remove(self) -> None:
        """Remove sends a BYE to the participant and redirects back to the page."""
        self.join()
        answer = self.request(
            "/action/remove",
            method="POST",
            form={"uri": CONF, "csrf": self.form(), "participant": self.participant()},
        )
        self.assertEqual(answer.code, 303)
        self.assertTrue((answer.header("location") or "").startswith("/conference?uri="))
        self.assertEqual([r.method for r, _ in self.sent], ["BYE"])
        self.assertEqual(self.focus.roster.count(CONF), 0)

    def test_end(self) -> None:
        """End hangs up everyone in the conference."""
        self.join("call-1", "bob")
        self.join("call-2", "dave")
        answer = self.request("/action/end", method="POST", form={"uri": CONF, "csrf": self.form()})
        self.assertEqual(answer.code, 303)
        self.assertEqual(len(self.sent), 2)
        self.assertEqual(self.focus.roster.count(CONF), 0)

    def test_csrf_required(self) -> None:
        """Without the right token nothing happens: 403."""
        self.join()
        bob = self.site.resource.gate.csrf_token(Viewer("sip:bob@example.com"))
        for token in ("", "0" * 64, bob):
            answer = self.request("/action/end", method="POST", form={"uri": CONF, "csrf": token})
            self.assertEqual(answer.code, 403, token)
        self.assertEqual(self.sent, [])
        self.assertEqual(self.focus.roster.count(CONF), 1)

    def test_not_organizer(self) -> None:
        """An attendee with a valid token of their own still may not act: 403."""
        self.join()
        token = csrf_of(self.request("/conference?uri=" + quote(CONF), user="root").text)
        self.assertEqual(
            self.request(
                "/action/end", user="bob", method="POST", form={"uri": CONF, "csrf": token}
            ).code,
            403,
        )
        self.assertEqual(self.focus.roster.count(CONF), 1)

    def test_admin_acts(self) -> None:
        """An admin may end any conference."""
        self.join()
        token = csrf_of(self.request("/conference?uri=" + quote(CONF), user="root").text)
        answer = self.request(
            "/action/end", user="root", method="POST", form={"uri": CONF, "csrf": token}
        )
        self.assertEqual(answer.code, 303)
        self.assertEqual(self.focus.roster.count(CONF), 0)

    def test_registered_action_served(self) -> None:
        """A registered conference-wide action gets a button and its POST path; others 404."""
        self.site.resource.actions.handlers["lock"] = lambda record, viewer, p: "locked"
        page = self.request(f"/conference?uri={quote(CONF)}").text
        self.assertIn('action="/action/lock"', page)
        token = self.form()
        answer = self.request("/action/lock", method="POST", form={"uri": CONF, "csrf": token})
        self.assertEqual(answer.code, 303)
        answer = self.request("/action/frob", method="POST", form={"uri": CONF, "csrf": token})
        self.assertEqual(answer.code, 404)

    def test_mute_shows_in_roster(self) -> None:
        """Mute from the page mutes the caller; the roster then says so and offers unmute."""
        self.join()
        answer = self.request(
            "/action/mute",
            method="POST",
            form={"uri": CONF, "csrf": self.form(), "participant": self.participant()},
        )
        self.assertEqual(answer.code, 303)
        self.assertTrue(self.focus.roster.participants(CONF)[0].muted)
        page = self.request(f"/conference?uri={quote(CONF)}").text
        self.assertIn('action="/action/unmute"', page)
        self.assertIn(">muted<", page)

    def test_lock_shows_state(self) -> None:
        """Lock from the page locks the conference; the page then offers unlock only."""
        answer = self.request(
            "/action/lock", method="POST", form={"uri": CONF, "csrf": self.form()}
        )
        self.assertEqual(answer.code, 303)
        page = self.request(f"/conference?uri={quote(CONF)}").text
        self.assertIn("(locked)", page)
        self.assertIn('action="/action/unlock"', page)
        self.assertNotIn('action="/action/lock"', page)

    def test_attendee_cannot_mute(self) -> None:
        """An attendee's own valid token does not let them mute anyone: 403, nothing changed."""
        self.join()
        token = self.site.resource.gate.csrf_token(Viewer("sip:bob@example.com"))
        answer = self.request(
            "/action/mute",
            user="bob",
            method="POST",
            form={"uri": CONF, "csrf": token, "participant": self.participant()},
        )
        self.assertEqual(answer.code, 403)
        self.assertFalse(self.focus.roster.participants(CONF)[0].muted)

    def test_unknown_participant(self) -> None:
        """Removing someone not in the conference is 404, nothing sent."""
        answer = self.request(
            "/action/remove",
            method="POST",
            form={"uri": CONF, "csrf": self.form(), "participant": "call-9 x y"},
        )
        self.assertEqual(answer.code, 404)
        self.assertEqual(self.sent, [])


class ActionRulesTests(WebFixture):
    """
    Every action through the page: done by moderators into the roster and
    the media plane; refused, with nothing changed, for everyone else.
    """

    def setUp(self) -> None:
        super().setUp()
        self.muting = MutingMedia(self.clock)
        self.focus.media = self.media = self.muting
        self.join()
        [self.bob] = self.focus.roster.participants(CONF)
        #: What the media plane was told at the join: bob heard and mixed.
        self.assertEqual(self.muting.muted, {self.bob.session: (False, False)})

    def post(
        self, action: str, user: str = "alice", *, csrf: Optional[str] = None, **form: str
    ) -> Answer:
        """POST an action as C{user}, with their own CSRF token unless given."""
        token = self.site.resource.gate.csrf_token(Viewer(f"sip:{user}@example.com"))
        fields = {"uri": CONF, "csrf": token if csrf is None else csrf, **form}
        if action in PARTICIPANT_ACTIONS:
            fields.setdefault("participant", participant_key(self.bob.key))
        return self.request(f"/action/{action}", user=user, method="POST", form=fields)

    def unchanged(self) -> None:
        """Nothing happened: bob is in, unmuted, the conference unlocked, no BYE."""
        self.assertEqual(self.focus.roster.participants(CONF), [self.bob])
        self.assertFalse(self.bob.muted)
        self.assertFalse(self.focus.is_locked(self.record()))
        self.assertEqual(self.sent, [])
        self.assertEqual(self.muting.muted, {self.bob.session: (False, False)})

    def record(self) -> Any:
        return self.successResultOf(self.stores.conferences.get(CONF))

    def roster(self) -> Dict[str, Any]:
        data: Dict[str, Any] = json.loads(self.request(f"/api/conference?uri={quote(CONF)}").body)
        return data

    def test_mute_unmute_reach_media(self) -> None:
        """Mute stops mixing bob's audio in the media service; unmute restarts it."""
        self.assertEqual(self.post("mute").code, 303)
        self.assertEqual(self.muting.muted[self.bob.session], (True, False))
        self.assertIs(self.roster()["roster"][0]["muted"], True)
        self.assertEqual(self.post("unmute").code, 303)
        self.assertEqual(self.muting.muted[self.bob.session], (False, False))
        self.assertIs(self.roster()["roster"][0]["muted"], False)

    def test_lock_unlock(self) -> None:
        """Lock refuses the next caller with 486 and shows; unlock admits them again."""
        self.assertEqual(self.post("lock").code, 303)
        self.assertTrue(self.roster()["locked"])
        self.assertEqual(self.answer(self.invite(call_id="call-2")).code, 486)
        self.assertEqual(self.post("unlock").code, 303)
        self.assertFalse(self.roster()["locked"])
        self.assertEqual(self.answer(self.invite(call_id="call-3")).code, 200)

    def test_remove_and_end(self) -> None:
        """Remove hangs up bob (a BYE); end hangs up whoever is left."""
        self.assertEqual(self.post("remove").code, 303)
        self.assertEqual([r.method for r, _ in self.sent], ["BYE"])
        self.join("call-2", "dave")
        self.assertEqual(self.post("end").code, 303)
        self.assertEqual(self.focus.roster.count(CONF), 0)

    def test_csrf(self) -> None:
        """No, a forged or another user's CSRF token: 403 for every action, nothing changed."""
        bob = self.site.resource.gate.csrf_token(Viewer(ATTENDEE))
        for action in ALL_ACTIONS:
            for token in ("", "0" * 64, bob, "\u00e9"):
                self.assertEqual(self.post(action, csrf=token).code, 403, (action, token))
        self.unchanged()

    def test_not_moderator(self) -> None:
        """An attendee is 403 and a stranger 404 for every action, nothing changed."""
        for action in ALL_ACTIONS:
            self.assertEqual(self.post(action, "bob").code, 403, action)
            self.assertEqual(self.post(action, "carol").code, 404, action)
        self.unchanged()

    def test_unauthenticated(self) -> None:
        """Without a login every action is 401, nothing changed."""
        for action in ALL_ACTIONS:
            answer = self.request(f"/action/{action}", user=None, method="POST", form={"uri": CONF})
            self.assertEqual(answer.code, 401, action)
        self.unchanged()

    def test_unknown_participant(self) -> None:
        """Mute, unmute and remove of someone not in it are 404; without one 400."""
        for action in sorted(PARTICIPANT_ACTIONS):
            self.assertEqual(self.post(action, participant="call-9 x y").code, 404, action)
            self.assertEqual(self.post(action, participant="").code, 400, action)
        self.unchanged()

    def test_malformed_form(self) -> None:
        """A uri given twice, missing, not UTF-8 or unknown: 4xx, nothing changed."""
        token = self.site.resource.gate.csrf_token(Viewer(ORGANIZER))
        for body, code in (
            (f"uri={quote(CONF)}&uri={quote(CONF)}&csrf={token}", 400),
            (f"csrf={token}", 400),
            (f"uri=%ff&csrf={token}", 400),
            (f"uri={quote('sip:nope@example.com')}&csrf={token}", 404),
            (f"uri={quote(CONF)}&csrf={token}&csrf={token}", 400),
        ):
            answer = self.raw_post("/action/lock", body)
            self.assertEqual(answer.code, code, body)
            self.assertNotIn("Traceback", answer.text)
        self.unchanged()

    def raw_post(self, path: str, body: str) -> Answer:
        """POST a form body as written, as alice."""
        lines = [
            f"POST {path} HTTP/1.1",
            "Host: localhost",
            "Connection: close",
            "Authorization: Basic " + b64encode(b"alice:pw-a").decode(),
            "Content-Type: application/x-www-form-urlencoded",
            f"Content-Length: {len(body)}",
        ]
        transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
        channel = self.site.buildProtocol(None)
        assert channel is not None
        channel.makeConnection(transport)
        channel.dataReceived(("\r\n".join(lines) + "\r\n\r\n" + body).encode())
        return parse_answer(transport.value())

    def test_store_down(self) -> None:
        """While the store is down every action is 503 with Retry-After, nothing changed."""
        conferences = self.stores.conferences
        self.stores.conferences = FailingConferences()  # type: ignore[assignment]
        for action in ALL_ACTIONS:
            answer = self.post(action)
            self.assertEqual(answer.code, 503, action)
            self.assertEqual(answer.header("retry-after"), "30")
        self.stores.conferences = conferences
        self.unchanged()

    def test_counted(self) -> None:
        """/metrics counts actions by name and answer; unknown names as one label."""
        self.post("mute")
        self.post("mute", "bob")
        self.post("frob")
        self.post("frob2")
        lines = self.request("/metrics").text.splitlines()
        self.assertIn('conference_web_actions_total{action="mute",code="303"} 1.0', lines)
        self.assertIn('conference_web_actions_total{action="mute",code="403"} 1.0', lines)
        self.assertIn('conference_web_actions_total{action="unknown",code="404"} 2.0', lines)
        self.assertIn('conference_web_actions_total{action="lock",code="303"} 0.0', lines)


class MetricsTests(WebFixture):
    """
    /metrics behind the login.
    """

    def test_metrics(self) -> None:
        """A logged-in scrape shows the live roster and SIP counters."""
        self.join()
        answer = self.request("/metrics")
        self.assertEqual(answer.code, 200)
        self.assertIn("text/plain", answer.header("content-type") or "")
        lines: List[str] = answer.text.splitlines()
        self.assertIn("conference_participants 1.0", lines)
        self.assertIn("conference_conferences_open 1.0", lines)
        self.assertIn('conference_sip_messages_total{kind="received"} 0.0', lines)


class PublicMetricsTests(WebFixture):
    """
    /metrics with --metrics-public.
    """

    metrics_public = True

    def test_public(self) -> None:
        """/metrics needs no login, the pages still do."""
        self.assertEqual(self.request("/metrics", user=None).code, 200)
        self.assertEqual(self.request("/", user=None).code, 401)
