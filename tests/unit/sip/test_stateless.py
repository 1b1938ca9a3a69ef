# -*- test-case-name: tests.unit.sip.test_stateless -*-
"""
Tests for L{conference.sip.stateless}.
"""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from conference.sip.errors import RemoteProtocolError
from conference.sip.message import Request, make_response
from conference.sip.parser import parse_datagram
from conference.sip.stateless import (
    TAG_PREFIX,
    Pending,
    RecentInvites,
    StatelessTags,
    StatelessUAS,
    allowed,
    candidate,
    is_stateless_tag,
    raw_stateless_ack,
    stamp,
)
from conference.sip.transaction import Peer, TransactionLayer
from conference.sip.transaction_model import new_tag
from tests.builders import make_request, request_bytes

SECRET = b"k" * 32


class TagTests(SynchronousTestCase):
    """
    Stateless To tags are deterministic, keyed, and never look like new_tag's.
    """

    def test_deterministic(self) -> None:
        """The same request gets the same tag; another Call-ID, From tag or branch another."""
        tags = StatelessTags(SECRET)
        request = make_request("OPTIONS", "sip:example.com", branch="z9hG4bKs1")
        again = make_request("OPTIONS", "sip:example.com", branch="z9hG4bKs1")
        self.assertEqual(tags.tag_for(request), tags.tag_for(again))
        others = [
            make_request("OPTIONS", "sip:example.com", branch="z9hG4bKs2"),
            make_request("OPTIONS", "sip:example.com", branch="z9hG4bKs1", call_id="c2"),
            make_request(
                "OPTIONS", "sip:example.com", branch="z9hG4bKs1", from_="<sip:a@b>;tag=x2"
            ),
        ]
        self.assertEqual(len({tags.tag_for(r) for r in [request, *others]}), 4)

    def test_ack_shares_the_tag(self) -> None:
        """The ACK of a non-2xx final names the parts its INVITE's tag came from."""
        tags = StatelessTags(SECRET)
        invite = make_request("INVITE", "sip:nobody@example.com", branch="z9hG4bKi9")
        ack = make_request("ACK", "sip:nobody@example.com", branch="z9hG4bKi9")
        self.assertEqual(tags.tag_for(invite), tags.tag_for(ack))

    def test_keyed(self) -> None:
        """Another secret (another process) gives other tags."""
        request = make_request("OPTIONS", "sip:example.com")
        self.assertNotEqual(
            StatelessTags(SECRET).tag_for(request), StatelessTags(b"x" * 32).tag_for(request)
        )
        self.assertNotEqual(StatelessTags().tag_for(request), StatelessTags().tag_for(request))

    @given(st.lists(st.text(min_size=0, max_size=40), min_size=1, max_size=3))
    def test_keyed_blake2b(self, parts: list[str]) -> None:
        """A tag is the keyed 64-bit BLAKE2b of the parts, however many came before."""
        tags = StatelessTags(SECRET)
        tags.tag("warm", "the", "copied state")
        text = "\x00".join(parts).encode("utf-8", "surrogateescape")
        digest = hashlib.blake2b(text, key=SECRET, digest_size=8).hexdigest()
        self.assertEqual(tags.tag(*parts), TAG_PREFIX + digest)
        self.assertEqual(tags.tag(*parts), TAG_PREFIX + digest)

    @given(st.lists(st.text(min_size=0, max_size=40), min_size=1, max_size=3))
    def test_form(self, parts: list[str]) -> None:
        """Every stateless tag has the stateless form, and is a token."""
        tag = StatelessTags(SECRET).tag(*parts)
        self.assertTrue(is_stateless_tag(tag))
        self.assertTrue(tag.startswith(TAG_PREFIX) and tag.isalnum())

    def test_random_tags_never_stateless(self) -> None:
        """No tag new_tag makes (dialogs, stateful answers) has the stateless form."""
        self.assertFalse(any(is_stateless_tag(new_tag()) for _ in range(2000)))
        for tag in (None, "", TAG_PREFIX, TAG_PREFIX + "0" * 15, TAG_PREFIX + "g" * 16):
            self.assertFalse(is_stateless_tag(tag), tag)


class DecisionTests(SynchronousTestCase):
    """
    Which requests and answers may go without a transaction.
    """

    def test_candidates(self) -> None:
        """Out-of-dialog requests with an RFC 3261 branch, but ACK and CANCEL."""
        self.assertTrue(candidate(make_request("OPTIONS", "sip:example.com")))
        self.assertTrue(candidate(make_request("INVITE", "sip:x@example.com")))
        self.assertTrue(candidate(make_request("REGISTER", "sip:example.com")))
        refused = [
            make_request("ACK", "sip:x@example.com"),
            make_request("CANCEL", "sip:x@example.com"),
            make_request("INVITE", "sip:x@example.com", to="<sip:x@example.com>;tag=t1"),
            make_request("OPTIONS", "sip:example.com", branch="rfc2543-1"),
            make_request("OPTIONS", "sip:example.com", branch="z9hG4bK"),
        ]
        for request in refused:
            self.assertFalse(candidate(request), request)

    def test_allowed(self) -> None:
        """OPTIONS' finals but challenges, and the deterministic refusals of anything."""
        options = make_request("OPTIONS", "sip:example.com")
        invite = make_request("INVITE", "sip:x@example.com")
        register = make_request("REGISTER", "sip:example.com")
        cases = [
            (options, 200, True),
            (options, 404, True),
            (options, 401, False),
            (options, 503, False),
            (options, 100, False),
            (invite, 404, True),
            (invite, 405, True),
            (invite, 410, True),
            (invite, 415, True),
            (invite, 200, False),
            (invite, 180, False),
            (invite, 486, False),
            (invite, 403, False),
            (invite, 500, False),
            (register, 200, False),
            (register, 501, True),
        ]
        for request, code, expected in cases:
            self.assertEqual(allowed(request, make_response(request, code)), expected, code)

    def test_stamp(self) -> None:
        """The To tag is replaced in place: the bytes differ only in the tag."""
        request = make_request("OPTIONS", "sip:example.com")
        response = make_response(request, 200, to_tag="abc123", headers=[("Allow", "OPTIONS")])
        before = response.to_bytes()
        stamp(request, response, "sl0123456789abcdef")
        after = response.to_bytes()
        self.assertEqual(after, before.replace(b"tag=abc123", b"tag=sl0123456789abcdef"))
        self.assertEqual(response.to.tag, "sl0123456789abcdef")
        self.assertEqual(parse_datagram(after).to.tag, "sl0123456789abcdef")  # type: ignore[union-attr]

    def test_pending(self) -> None:
        """A Pending is open until answered, given a transaction or refused."""
        request = make_request("OPTIONS", "sip:example.com")
        for attribute, value in (("answered", True), ("refused", True), ("transaction", 1)):
            pending = Pending(request, None, 0.0)
            self.assertTrue(pending.open)
            setattr(pending, attribute, value)
            self.assertFalse(pending.open)

    def test_refusal_tag(self) -> None:
        """A refusal that may go statelessly is offered the stateless tag, worked out once."""
        request = make_request("INVITE", "sip:nobody@example.com")
        tags = StatelessTags(b"k")
        pending = Pending(request, None, 0.0, tags=tags)
        self.assertEqual(pending.refusal_tag(404), tags.tag_for(request))
        self.assertEqual(pending.tag, tags.tag_for(request))
        pending.tag = "sl-kept"
        self.assertEqual(pending.refusal_tag(410), "sl-kept")

    def test_stateless_tag_once(self) -> None:
        """The stateless tag is worked out once, from the tags given; without them there is none."""
        request = make_request("OPTIONS", "sip:example.com")
        pending = Pending(request, None, 0.0, tags=StatelessTags(b"k"))
        first = pending.stateless_tag()
        pending.request = make_request("OPTIONS", "sip:other.example.com", call_id="other")
        self.assertEqual((pending.stateless_tag(), pending.tag), (first, first))
        self.assertRaises(ValueError, Pending(request, None, 0.0).stateless_tag)

    def test_refusal_tag_withheld(self) -> None:
        """No tag for a transaction's refusal, for a request not open, or without tags."""
        request = make_request("INVITE", "sip:nobody@example.com")
        tags = StatelessTags(b"k")
        for status in (403, 480, 486, 500, 503, 401):
            self.assertIsNone(Pending(request, None, 0.0, tags=tags).refusal_tag(status))
        adopted = Pending(request, None, 0.0, tags=tags)
        adopted.transaction = object()
        self.assertIsNone(adopted.refusal_tag(404))
        self.assertIsNone(Pending(request, None, 0.0).refusal_tag(404))


class RecentInvitesTests(SynchronousTestCase):
    """
    The branches of INVITEs answered statelessly, for their CANCELs.
    """

    def test_window(self) -> None:
        """A branch is held for the window, then forgotten."""
        recent = RecentInvites(window=5.0)
        recent.add("z9hG4bKa", 100.0)
        self.assertTrue(recent.holds("z9hG4bKa", 104.9))
        self.assertFalse(recent.holds("z9hG4bKb", 101.0))
        self.assertFalse(recent.holds("z9hG4bKa", 105.0))
        recent.add("z9hG4bKc", 106.0)
        self.assertEqual(len(recent), 1)

    def test_again(self) -> None:
        """A branch answered again is held from the later answer."""
        recent = RecentInvites(window=5.0)
        recent.add("z9hG4bKa", 100.0)
        recent.add("z9hG4bKa", 103.0)
        recent.add("z9hG4bKb", 105.5)
        self.assertTrue(recent.holds("z9hG4bKa", 107.0))

    def test_limit(self) -> None:
        """At most limit branches are held, the oldest forgotten first."""
        recent = RecentInvites(window=60.0, limit=3)
        for n in range(5):
            recent.add(f"b{n}", float(n))
        self.assertEqual(len(recent), 3)
        self.assertEqual([recent.holds(f"b{n}", 5.0) for n in range(5)], [False] * 2 + [True] * 3)


TAG = "sl0123456789abcdef"


def ack_bytes(to: str, *, name: str = "To", method: str = "ACK") -> bytes:
    """An ACK (or C{method}) with the To line C{name}: C{to}."""
    data = request_bytes(method, "sip:nobody@example.com", to=to)
    return data.replace(b"\r\nTo:", b"\r\n" + name.encode() + b":", 1)


# To header values (name-addr, addr-spec, display names, URI parameters).
_tags = st.sampled_from([TAG, new_tag(), TAG.upper(), TAG + "0", "sl", "x" + TAG[1:]])
_displays = st.sampled_from(["", '"Bob" ', '"a;tag=' + TAG + '" ', "Bob "])
_uri_params = st.sampled_from(["", ";tag=" + TAG, ";transport=udp", ";lr"])
_spaces = st.sampled_from(["", " "])


@st.composite
def to_values(draw: st.DrawFn) -> str:
    """A To header value, with or without a tag, in the ways peers write it."""
    uri = "sip:nobody@example.com" + draw(_uri_params)
    tag = draw(_tags)
    sp = draw(_spaces)
    with_tag = draw(st.booleans())
    params = f"{sp};{sp}tag{sp}={sp}{tag}" if with_tag else ""
    if draw(st.booleans()) and not uri.count(";"):
        return uri + params  # addr-spec
    return f"{draw(_displays)}<{uri}>{params}"


class RawAckTests(SynchronousTestCase):
    """
    raw_stateless_ack agrees with the parsed message, or declines.
    """

    @settings(max_examples=300, deadline=None)
    @given(
        to_values(),
        st.sampled_from(["To", "to", "TO", "t", "To "]),
        st.sampled_from(["ACK", "OPTIONS"]),
    )
    def test_agrees_with_parser(self, to: str, name: str, method: str) -> None:
        """True only for an ACK whose parsed To tag is stateless; plain ones never declined."""
        data = ack_bytes(to, name=name, method=method)
        message = parse_datagram(data)
        assert isinstance(message, Request)
        parsed = message.method == "ACK" and is_stateless_tag(message.to.tag)
        raw = raw_stateless_ack(data)
        if raw:
            self.assertTrue(parsed, data)
        if parsed and " " not in name and "; " not in to and " ;" not in to:
            self.assertTrue(raw, data)

    def test_declines(self) -> None:
        """Folded lines, two To lines, no end of headers, spaced tags: declined (parser decides)."""
        plain = ack_bytes(f"<sip:nobody@example.com>;tag={TAG}")
        self.assertTrue(raw_stateless_ack(plain))
        cases = [
            plain.replace(b";tag=", b"\r\n ;tag="),
            plain.replace(
                b"\r\nCall-ID", b"\r\nTo: <sip:x@y>;tag=" + TAG.encode() + b"\r\nCall-ID"
            ),
            plain[: plain.find(b"\r\n\r\n")],
            plain.replace(b"ACK ", b"INVITE ", 1),
            plain.replace(b";tag=sl", b";tag=1;tag=sl"),
            plain.replace(b";tag=sl", b";tag= sl"),  # unusual: left to the parser
        ]
        for data in cases:
            self.assertFalse(raw_stateless_ack(data), data)


class StatelessUASTests(SynchronousTestCase):
    """
    StatelessUAS: where the stateless path starts, finishes, and what follows it.
    """

    def setUp(self) -> None:
        self.layer = TransactionLayer()
        self.uas = StatelessUAS(self.layer, SECRET)

    def test_start(self) -> None:
        """Candidates start; retransmissions, merged copies and a full layer stay the layer's."""
        request = make_request("OPTIONS", "sip:example.com", branch="z9hG4bKu1")
        self.assertIsNotNone(self.uas.start(request, None, 0.0))
        self.assertIsNone(self.uas.start(make_request("ACK", "sip:example.com"), None, 0.0))
        self.layer.receive(request, Peer("UDP", "192.0.2.1", 5060), 0.0)
        self.assertIsNone(self.uas.start(request, None, 0.0))  # serving its branch
        copy = make_request("OPTIONS", "sip:example.com", branch="z9hG4bKu2")
        self.assertIsNone(self.uas.start(copy, None, 0.0))  # merged
        self.layer.max_server = 1
        other = make_request("OPTIONS", "sip:example.com", branch="z9hG4bKu3", call_id="u3")
        self.assertIsNone(self.uas.start(other, None, 0.0))

    def test_admission(self) -> None:
        """The layer's admission check refuses a request on the stateless path too."""

        def refuse(request: Request) -> None:
            raise RemoteProtocolError("Service Unavailable (overloaded)", 503)

        self.layer.admission = refuse
        with self.assertRaises(RemoteProtocolError):
            self.uas.start(make_request("INVITE", "sip:x@example.com"), None, 0.0)

    def test_finish_cancel_ack(self) -> None:
        """A stateless 404 is stamped; its CANCEL gets 200 with its tag, its ACK is dropped."""
        invite = make_request("INVITE", "sip:nobody@example.com", branch="z9hG4bKf1")
        pending = self.uas.start(invite, None, 10.0)
        assert pending is not None
        response = make_response(invite, 404, to_tag="random")
        self.assertTrue(self.uas.finish(pending, response, 10.0))
        self.assertFalse(self.uas.finish(pending, make_response(invite, 404), 10.0))
        tag = response.to.tag
        self.assertEqual(tag, self.uas.tags.tag_for(invite))
        cancel = make_request("CANCEL", "sip:nobody@example.com", branch="z9hG4bKf1")
        ok = self.uas.cancel_answer(cancel, 12.0)
        assert ok is not None
        self.assertEqual((ok.code, ok.to.tag), (200, tag))
        self.assertIsNone(self.uas.cancel_answer(cancel, 10.0 + self.layer.t4))
        ack = make_request("ACK", "sip:nobody@example.com", to=f"<sip:n@example.com>;tag={tag}")
        self.assertTrue(self.uas.drops(ack))
        self.assertFalse(
            self.uas.drops(make_request("ACK", "sip:n@example.com", to="<sip:n@e>;tag=1"))
        )

    def test_finish_stable_refusal(self) -> None:
        """A 486 promised to stand through Timer B goes statelessly; a shorter promise does not."""
        window = 64 * self.layer.t1
        for code, until, stateless in (
            (486, 100.0 + window, True),
            (486, 100.0 + window - 0.5, False),
            (486, None, False),
            (401, 100.0 + 3600, False),  # a challenge: a new nonce each time
            (200, 100.0 + 3600, False),  # a 2xx may create a dialog
        ):
            invite = make_request("INVITE", "sip:room@example.com", branch=f"z9hG4bKs{code}")
            pending = self.uas.start(invite, None, 100.0)
            assert pending is not None
            response = make_response(invite, code, to_tag="random")
            response.stable_until = until
            self.assertEqual(self.uas.finish(pending, response, 100.0), stateless, (code, until))
            self.assertEqual(is_stateless_tag(response.to.tag), stateless)

    def test_finish_refuses(self) -> None:
        """An answer that needs a transaction is left as it is."""
        invite = make_request("INVITE", "sip:room@example.com")
        pending = self.uas.start(invite, None, 0.0)
        assert pending is not None
        response = make_response(invite, 200, to_tag="t")
        self.assertFalse(self.uas.finish(pending, response, 0.0))
        self.assertEqual((response.to.tag, pending.open), ("t", True))
