# -*- test-case-name: tests.unit.app.test_subscriptions -*-
"""
Tests for L{conference.app.subscriptions}: SUBSCRIBE to the C{binding}
package, NOTIFY on subscribing, on change, on refresh and on expiry, with
a fake clock and a sender that records the NOTIFYs and lets the test
answer them.
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from conference.app.bind import BindHandler, OwnerResolver
from conference.app.core import CoreRouter, RequestContext
from conference.app.subscriptions import BindingSubscriptions, _notify_peer, _sent_by
from conference.auth import SIPIdentity
from conference.bindings.headers import parse_binding
from conference.sip.errors import SIPProtocolError
from conference.sip.message import Request, Response, make_response
from conference.sip.transaction import Peer
from conference.testing import memory_stores
from tests.builders import make_request

ALICE = SIPIdentity("alice", "example.com")
BOB = SIPIdentity("bob", "example.com")
PEER = Peer("UDP", "192.0.2.1", 5070, "udp")


class RecordingSender:
    """
    Keeps every request it is asked to send with the Deferred of its
    answer, for the test to fire.
    """

    def __init__(self) -> None:
        self.sent: List[Tuple[Request, Peer, Deferred[Response]]] = []

    def send_request(self, request: Request, peer: Peer) -> Deferred[Response]:
        d: Deferred[Response] = Deferred()
        self.sent.append((request, peer, d))
        return d

    def answer(self, code: int = 200, index: int = -1) -> None:
        request, _, d = self.sent[index]
        d.callback(make_response(request, code))


def uris(message: Any) -> List[Optional[str]]:
    """
    The URIs of a message's Binding headers.
    """
    return [v.uri for f in message.header_fields("binding") for v in parse_binding(f)]


class Harness:
    """
    A router with BIND and SUBSCRIBE handlers over memory stores.
    """

    def __init__(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_000_000)
        stores = memory_stores()
        self.store = stores.bindings
        self.router = CoreRouter(["example.com"], tag_factory=lambda: "t", accept_ip_literals=True)
        owners = OwnerResolver(stores.conferences, self.router.domain_of)
        self.sender = RecordingSender()
        self.bind = BindHandler(self.store, owners)
        self.subs = BindingSubscriptions(
            self.store, owners, self.sender, self.clock, tag_factory=lambda: "subtag"
        )
        self.bind.listeners.append(self.subs.changed)
        self.router.add_handler(self.bind)
        self.router.add_handler(self.subs)
        self.cseq = 1

    def dispatch(self, request: Request, identity: Optional[SIPIdentity]) -> Response:
        context = RequestContext(PEER, self.clock.seconds(), identity=identity)
        answer = self.router.dispatch(request, context)
        out: List[Any] = []
        if isinstance(answer, Deferred):
            answer.addBoth(out.append)
        else:
            out.append(answer)
        assert out and isinstance(out[0], Response), out
        return out[0]

    def subscribe(
        self,
        identity: Optional[SIPIdentity] = ALICE,
        *,
        event: str = "binding",
        expires: Optional[str] = "600",
        to_tag: Optional[str] = None,
        owner: str = "sip:alice@example.com",
    ) -> Response:
        headers = [("Event", event), ("Contact", "<sip:alice@192.0.2.1:5070>")]
        if expires is not None:
            headers.append(("Expires", expires))
        to = f"<{owner}>" + (f";tag={to_tag}" if to_tag else "")
        request = make_request(
            "SUBSCRIBE",
            owner,
            to=to,
            call_id="sub-1",
            cseq=self.cseq,
            headers=headers,
            from_=f"<sip:{(identity or ALICE).username}@example.com>;tag=ft1",
        )
        self.cseq += 1
        return self.dispatch(request, identity)

    def bind_(self, *bindings: str, identity: SIPIdentity = ALICE) -> Response:
        request = make_request(
            "BIND",
            "sip:example.com",
            to="<sip:alice@example.com>",
            call_id=f"bind-{self.cseq}",
            headers=[("Binding", b) for b in bindings],
        )
        self.cseq += 1
        return self.dispatch(request, identity)

    def notifies(self) -> List[Request]:
        return [request for request, _, _ in self.sender.sent]


class SubscribeTests(SynchronousTestCase):
    """
    Creating a subscription and its first NOTIFY.
    """

    def setUp(self) -> None:
        self.h = Harness()
        self.h.bind_("<http://cfg>;disposition=configuration;expires=3600")

    def test_subscribe_and_first_notify(self) -> None:
        """200 with Expires and Contact, then a NOTIFY in the new dialog with the bindings."""
        r = self.h.subscribe()
        self.assertEqual((r.code, r.header("expires")), (200, "600"))
        self.assertEqual(r.to.tag, "subtag")
        self.assertEqual(self.h.notifies(), [])  # not before the 200 has gone
        self.h.clock.advance(0)
        [notify] = self.h.notifies()
        self.assertEqual(notify.method, "NOTIFY")
        self.assertEqual(str(notify.uri), "sip:alice@192.0.2.1:5070")
        self.assertEqual(
            (notify.call_id, notify.from_.tag, notify.to.tag), ("sub-1", "subtag", "ft1")
        )
        self.assertEqual(notify.header("event"), "binding")
        self.assertEqual(notify.header("subscription-state"), "active;expires=600")
        self.assertEqual(uris(notify), ["http://cfg"])
        self.assertEqual(notify.cseq.number, 1)
        self.assertEqual(self.h.sender.sent[0][1], Peer("UDP", "192.0.2.1", 5070, "udp"))

    def test_unauthenticated(self) -> None:
        """A SUBSCRIBE without identity is refused with 401 and makes no dialog."""
        r = self.h.subscribe(None)
        self.assertEqual(r.code, 401)
        self.assertEqual(len(self.h.subs.dialogs), 0)

    def test_challenge_hook(self) -> None:
        """The challenge hook builds the answer to an anonymous SUBSCRIBE."""
        self.h.subs._challenge = lambda request, now: SIPProtocolError(
            "Unauthorized", 401, [("WWW-Authenticate", "Digest realm=x")]
        )
        r = self.h.subscribe(None)
        self.assertEqual(r.header("www-authenticate"), "Digest realm=x")

    def test_other_package_489(self) -> None:
        """Another event package is 489 with Allow-Events: binding."""
        r = self.h.subscribe(event="presence")
        self.assertEqual((r.code, r.header("allow-events")), (489, "binding"))

    def test_too_brief_423(self) -> None:
        """A too short Expires is 423 with Min-Expires."""
        r = self.h.subscribe(expires="5")
        self.assertEqual((r.code, r.header("min-expires")), (423, "60"))

    def test_unknown_domain_404(self) -> None:
        """A SUBSCRIBE to an owner of a domain not served is 404."""
        r = self.h.subscribe(owner="sip:alice@127.0.0.2")
        self.assertEqual(r.code, 200)  # IP literals are the server itself
        r = self.h.subscribe(owner="sip:alice@example.org")
        self.assertEqual(r.code, 404)

    def test_visibility(self) -> None:
        """Bob subscribing to alice is told only her public bindings."""
        self.h.bind_("<http://pub>;disposition=web;public")
        self.h.subscribe(BOB)
        self.h.clock.advance(0)
        self.assertEqual(uris(self.h.notifies()[0]), ["http://pub"])

    def test_disposition_filter(self) -> None:
        """An Event disposition filter limits the NOTIFY to those dispositions."""
        self.h.bind_("<http://pub>;disposition=web")
        self.h.subscribe(event="binding;disposition=web")
        self.h.clock.advance(0)
        notify = self.h.notifies()[0]
        self.assertEqual(uris(notify), ["http://pub"])
        self.assertEqual(notify.header("event"), "binding;disposition=web")

    def test_fetch(self) -> None:
        """Expires: 0 is a fetch: one terminated NOTIFY with the state, then nothing."""
        r = self.h.subscribe(expires="0")
        self.assertEqual(r.header("expires"), "0")
        self.h.clock.advance(0)
        [notify] = self.h.notifies()
        self.assertEqual(notify.header("subscription-state"), "terminated;reason=timeout")
        self.assertEqual(uris(notify), ["http://cfg"])
        self.h.sender.answer()
        self.assertEqual(self.h.subs.watches(), [])
        self.assertEqual(len(self.h.subs.dialogs), 0)


class ChangeTests(SynchronousTestCase):
    """
    NOTIFY on change, refresh, unsubscribe, expiry and failures.
    """

    def setUp(self) -> None:
        self.h = Harness()
        r = self.h.subscribe()
        self.tag = r.to.tag
        self.h.clock.advance(0)
        self.h.sender.answer()

    def test_notify_on_change(self) -> None:
        """A committed BIND sends a NOTIFY with the new state."""
        self.h.bind_("<http://new>;disposition=web")
        self.h.clock.advance(0)
        notify = self.h.notifies()[-1]
        self.assertEqual(uris(notify), ["http://new"])
        self.assertEqual(notify.cseq.number, 2)

    def test_refused_bind_no_notify(self) -> None:
        """A refused BIND changes nothing and notifies nobody."""
        self.h.bind_("<http://new>;disposition=nonsense")
        self.h.clock.advance(0)
        self.assertEqual(len(self.h.notifies()), 1)

    def test_notifies_serialized(self) -> None:
        """Changes while a NOTIFY is unanswered give one more NOTIFY, after the answer."""
        self.h.bind_("<http://a>;disposition=web")
        self.h.clock.advance(0)
        self.h.bind_("<http://b>;disposition=web")
        self.h.bind_("<http://c>;disposition=web")
        self.h.clock.advance(0)
        self.assertEqual(len(self.h.notifies()), 2)
        self.h.sender.answer()
        self.assertEqual(len(self.h.notifies()), 3)
        self.assertEqual(uris(self.h.notifies()[-1]), ["http://a", "http://b", "http://c"])

    def test_refresh(self) -> None:
        """An in-dialog SUBSCRIBE refreshes: 200 and a NOTIFY with the new expiry."""
        self.h.clock.advance(100)
        r = self.h.subscribe(to_tag=self.tag, expires="900")
        self.assertEqual((r.code, r.header("expires")), (200, "900"))
        self.h.clock.advance(0)
        self.assertEqual(self.h.notifies()[-1].header("subscription-state"), "active;expires=900")
        self.h.clock.advance(800)  # past the first expiry, not the refreshed one
        self.assertEqual(len(self.h.subs.watches()), 1)

    def test_unsubscribe(self) -> None:
        """Expires: 0 in the dialog ends it with a terminated NOTIFY; later changes are silent."""
        r = self.h.subscribe(to_tag=self.tag, expires="0")
        self.assertEqual(r.code, 200)
        self.h.clock.advance(0)
        self.assertEqual(
            self.h.notifies()[-1].header("subscription-state"), "terminated;reason=timeout"
        )
        self.h.sender.answer()
        self.h.bind_("<http://late>;disposition=web")
        self.h.clock.advance(0)
        self.assertEqual(len(self.h.notifies()), 2)
        self.assertEqual(self.h.subscribe(to_tag=self.tag).code, 481)

    def test_refresh_by_other_403(self) -> None:
        """Only the subscriber may refresh its subscription."""
        r = self.h.subscribe(BOB, to_tag=self.tag)
        self.assertEqual(r.code, 403)

    def test_unknown_dialog_481(self) -> None:
        """A SUBSCRIBE with a To tag naming no subscription is 481."""
        self.assertEqual(self.h.subscribe(to_tag="nope").code, 481)

    def test_expiry(self) -> None:
        """When it lapses, a terminated;reason=timeout NOTIFY is sent and it is forgotten."""
        self.h.clock.advance(600)
        notify = self.h.notifies()[-1]
        self.assertEqual(notify.header("subscription-state"), "terminated;reason=timeout")
        self.h.sender.answer()
        self.assertEqual(self.h.subs.watches(), [])

    def test_binding_lapse_notified(self) -> None:
        """A binding that lapses triggers a NOTIFY without it."""
        self.h.bind_("<http://short>;disposition=web;expires=120")
        self.h.clock.advance(0)
        self.h.sender.answer()
        count = len(self.h.notifies())
        self.h.clock.advance(120)
        self.assertEqual(len(self.h.notifies()), count + 1)
        self.assertEqual(uris(self.h.notifies()[-1]), [])

    def test_notify_481_ends(self) -> None:
        """A 481 to a NOTIFY ends the subscription."""
        self.h.bind_("<http://a>;disposition=web")
        self.h.clock.advance(0)
        self.h.sender.answer(481)
        self.assertEqual(self.h.subs.watches(), [])
        self.assertEqual(len(self.h.subs.dialogs), 0)

    def test_notify_timeout_ends(self) -> None:
        """A NOTIFY that times out (408 or no answer) ends the subscription."""
        self.h.bind_("<http://a>;disposition=web")
        self.h.clock.advance(0)
        self.h.sender.sent[-1][2].errback(TimeoutError("no answer to NOTIFY"))
        self.assertEqual(self.h.subs.watches(), [])

    def test_stop(self) -> None:
        """stop() forgets every subscription and leaves no timer behind."""
        self.h.subs.stop()
        self.assertEqual(self.h.subs.watches(), [])
        self.assertEqual(self.h.clock.getDelayedCalls(), [])


class AddressTests(SynchronousTestCase):
    """
    Where NOTIFYs go and what they say we are.
    """

    def test_sent_by_from_socket(self) -> None:
        """The Via sent-by is the local address of the socket the SUBSCRIBE came on."""

        class Address:
            host, port = "127.0.0.1", 5099

        class Transport:
            def getHost(self) -> Address:
                return Address()

        class Connection:
            transport = Transport()

        request = make_request("SUBSCRIBE", "sip:alice@example.com")
        peer = Peer("UDP", "192.0.2.1", 5060, Connection())
        self.assertEqual(_sent_by(peer, request), "127.0.0.1:5099")
        self.assertEqual(_sent_by(Peer("UDP", "h", 1), request), "example.com")

    def test_notify_peer(self) -> None:
        """NOTIFYs go to an IP Contact over UDP, else back where the SUBSCRIBE came from."""
        from conference.sip.dialog import Dialog

        request = make_request(
            "SUBSCRIBE",
            "sip:alice@example.com",
            headers=[("Contact", "<sip:a@198.51.100.7:5080>")],
        )
        dialog = Dialog.uas(request, make_response(request, 200, to_tag="x"), "<sip:us>")
        udp = Peer("UDP", "192.0.2.1", 5060, "u")
        self.assertEqual(_notify_peer(dialog, udp), Peer("UDP", "198.51.100.7", 5080, "u"))
        tcp = Peer("TCP", "192.0.2.1", 40000, "c")
        self.assertEqual(_notify_peer(dialog, tcp), tcp)
        from conference.sip.uri import parse_uri

        dialog.remote_target = parse_uri("sip:a@host.example")
        self.assertEqual(_notify_peer(dialog, udp), udp)
