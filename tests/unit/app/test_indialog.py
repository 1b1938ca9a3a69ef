# -*- test-case-name: tests.unit.app.test_indialog -*-
"""
Tests for L{conference.app.indialog}: re-INVITE, UPDATE and the ACK of an
offerless INVITE; hold, resume, codec change and a new address keep the
participant's place in the roster and the mix (on a fake clock), and the
conference-info shows a hold.
"""

from __future__ import annotations

import base64
import random
from typing import List, Optional, Sequence, Tuple

import numpy as np
import numpy.typing as npt
from twisted.trial.unittest import SynchronousTestCase

from conference.app.control import _media_status
from conference.app.core import RequestContext
from conference.app.indialog import holds, participant_direction
from conference.app.mixer import MixerMediaService
from conference.app.roster import Participant
from conference.control.policy import LISTENER_ROLE
from conference.media.codecs import FRAME_SAMPLES, PCMU
from conference.media.rtp import build_rtp, parse_rtp
from conference.media.srtp import SRTPContext, SRTPKeys
from conference.sdp import parse_crypto, parse_sdp
from conference.sip.message import Request, Response
from tests.builders import make_request
from tests.mediacontract import FakeMediaReactor
from tests.unit.app.controlfixture import ALICE, BOB, CAROL, CONF, ControlFixture
from tests.unit.app.test_confevents import document
from tests.unit.app.test_control import endpoint_status
from tests.unit.app.test_focus import OFFER, PEER, FocusFixture
from tests.unit.media.signals import band_share, decode_stream, rtp_stream, tone
from tests.unit.test_sdp import crlf

TICK = 0.02
PHONE = ("192.0.2.10", 4000)


def phone_offer(
    port: int = 4000,
    host: str = "192.0.2.10",
    direction: Optional[str] = None,
    formats: str = "0 8",
    version: int = 2,
) -> bytes:
    """A phone's re-offer: PCMU and PCMA in the order of C{formats}."""
    names = {"0": "PCMU", "8": "PCMA"}
    lines = "\n".join(f"a=rtpmap:{pt} {names[pt]}/8000" for pt in formats.split())
    extra = f"\na={direction}" if direction else ""
    return crlf(
        f"""
        v=0
        o=phone 1 {version} IN IP4 {host}
        s=-
        c=IN IP4 {host}
        t=0 0
        m=audio {port} RTP/AVP {formats}
        {lines}{extra}
        """
    )


def in_dialog(joined: Response, cseq: int, body: bytes, method: str = "INVITE") -> Request:
    """A re-INVITE (or UPDATE) in the dialog C{joined} set up, carrying C{body}."""
    return make_request(
        method,
        "sip:conf@127.0.0.1:5060",
        call_id=joined.call_id,
        from_=joined.header("from") or "",
        to=joined.header("to") or "",
        cseq=cseq,
        headers=[("Content-Type", "application/sdp")],
        body=body,
    )


def our_direction(answer: bytes) -> str:
    """The direction attribute of the first m-line of C{answer}."""
    sdp = parse_sdp(answer)
    for attribute in sdp.media[0].attributes:
        if attribute.name in ("sendrecv", "sendonly", "recvonly", "inactive"):
            return attribute.name
    return "sendrecv"


class DirectionTests(SynchronousTestCase):
    """
    What the participant does, read from our side of the exchange.
    """

    def test_reverse_of_ours(self) -> None:
        """Our recvonly means they send only (a hold), and so on."""
        for ours, theirs in (
            ("recvonly", "sendonly"),
            ("inactive", "inactive"),
            ("sendonly", "recvonly"),
            ("sendrecv", "sendrecv"),
        ):
            sdp = phone_offer(direction=ours)
            self.assertEqual(participant_direction(sdp), theirs, ours)

    def test_default_and_unreadable(self) -> None:
        """No direction attribute is sendrecv, and so is a description that does not parse."""
        self.assertEqual(participant_direction(phone_offer()), "sendrecv")
        self.assertEqual(participant_direction(b"not sdp"), "sendrecv")
        self.assertEqual(participant_direction(b""), "sendrecv")

    def test_rejected_stream_skipped(self) -> None:
        """A rejected m-line (port 0) is passed over for the live audio one."""
        sdp = phone_offer(direction="recvonly").replace(
            b"m=audio 4000", b"m=audio 0 RTP/AVP 0\r\nm=audio 4000"
        )
        self.assertEqual(participant_direction(sdp), "sendonly")

    def test_holds(self) -> None:
        """Sending only or nothing is a hold; receiving is not."""
        self.assertEqual(
            [d for d in ("sendrecv", "sendonly", "recvonly", "inactive") if holds(d)],
            ["sendonly", "inactive"],
        )

    def test_media_status(self) -> None:
        """Muting or a listen-only role takes the sending out of the negotiated direction."""
        participant = Participant(CONF, "k", "sip:bob@example.com", 0.0)
        cases = {
            ("sendrecv", False): "sendrecv",
            ("sendonly", False): "sendonly",
            ("inactive", False): "inactive",
            ("sendrecv", True): "recvonly",
            ("sendonly", True): "inactive",
            ("recvonly", True): "recvonly",
            ("inactive", True): "inactive",
        }
        for (direction, muted), status in cases.items():
            participant.direction, participant.muted = direction, muted
            self.assertEqual(_media_status(participant), status, (direction, muted))
        participant.muted = False
        participant.direction = "sendrecv"
        participant.role = LISTENER_ROLE
        self.assertEqual(_media_status(participant), "recvonly")


class InDialogTests(FocusFixture):
    """
    re-INVITE, UPDATE and ACK through the focus, with fake media.
    """

    def in_dialog(
        self,
        response: Response,
        method: str,
        body: bytes = b"",
        headers: Sequence[Tuple[str, str]] = (),
    ) -> Request:
        """A request from Bob in the dialog the 200 C{response} set up."""
        headers = list(headers)
        if body:
            headers.append(("Content-Type", "application/sdp"))
        return make_request(
            method,
            CONF,
            to=response.header("to"),
            call_id="call-1",
            cseq=2,
            from_="<sip:bob@example.com>;tag=bob1",
            headers=headers,
            body=body,
        )

    def test_reinvite(self) -> None:
        """A re-INVITE in the dialog gets a new answer."""
        response = self.answer(self.invite())
        answer = self.answer(self.in_dialog(response, "INVITE", OFFER))
        self.assertEqual(answer.code, 200)
        self.assertEqual(answer.body, self.media.sessions[0].local_sdp)
        self.assertEqual(answer.header("content-type"), "application/sdp")

    def test_offerless_reinvite(self) -> None:
        """A re-INVITE without an offer gets our current description."""
        response = self.answer(self.invite())
        answer = self.answer(self.in_dialog(response, "INVITE"))
        self.assertEqual((answer.code, answer.body), (200, self.media.sessions[0].local_sdp))

    def test_reinvite_unknown_dialog(self) -> None:
        """A re-INVITE naming no dialog is 481."""
        request = make_request("INVITE", CONF, to=f"<{CONF}>;tag=nope", body=b"")
        self.assertEqual(self.answer(request).code, 481)

    def test_update_outside_dialog(self) -> None:
        """An UPDATE without a To tag is 481."""
        request = make_request("UPDATE", CONF, body=b"")
        self.assertEqual(self.answer(request).code, 481)

    def test_session_refresh(self) -> None:
        """An UPDATE refreshes the session timer."""
        response = self.answer(
            self.invite(headers=(("Supported", "timer"), ("Session-Expires", "90;refresher=uac")))
        )
        self.clock.advance(60)
        update = self.in_dialog(
            response,
            "UPDATE",
            headers=[("Session-Expires", "90;refresher=uac"), ("Supported", "timer")],
        )
        refreshed = self.answer(update)
        self.assertEqual(refreshed.code, 200)
        self.assertEqual(refreshed.header("session-expires"), "90;refresher=uac")
        self.clock.advance(60)
        self.assertEqual(self.sent, [])

    def test_offerless(self) -> None:
        """An INVITE without offer gets ours; the ACK's answer completes it."""
        response = self.answer(self.invite(body=b""))
        self.assertEqual(response.code, 200)
        ack = self.in_dialog(response, "ACK", OFFER)
        self.focus.handle_ack(ack, RequestContext(peer=PEER, now=self.clock.seconds()))
        self.assertEqual(self.media.sessions[0].answer, OFFER)

    def test_bad_ack_answer_hangs_up(self) -> None:
        """An ACK without a usable answer ends the call with BYE."""
        response = self.answer(self.invite(body=b""))
        ack = self.in_dialog(response, "ACK")
        self.focus.handle_ack(ack, RequestContext(peer=PEER, now=self.clock.seconds()))
        self.assertEqual([r.method for r, _ in self.sent], ["BYE"])
        self.assertEqual(self.focus.roster.count(CONF), 0)
        self.assertTrue(self.media.sessions[0].closed)


class MixedReofferTests(ControlFixture):
    """
    Re-offers against the built-in mixer on a fake clock: Bob holds,
    resumes, changes codec and address; Alice is in the mix throughout and
    Carol watches the conference-info.
    """

    def setUp(self) -> None:
        super().setUp()
        self.media_reactor = FakeMediaReactor()
        self.mixer = MixerMediaService(
            self.media_reactor, address="198.51.100.1", rng=random.Random(7)
        )
        self.focus.media = self.mixer
        self.addCleanup(self.mixer.close_all)
        self.bob = self.join(BOB)
        self.cseq += 1
        self.alice = self.dispatch(
            make_request(
                "INVITE",
                CONF,
                call_id="call-alice",
                from_="<sip:alice@example.com>;tag=alice1",
                headers=[
                    ("Contact", "<sip:alice@192.0.2.10:5062>"),
                    ("Content-Type", "application/sdp"),
                ],
                body=phone_offer(port=5000, version=1),
            ),
            ALICE,
        )
        self.assertEqual((self.bob.code, self.alice.code), (200, 200))
        self.subscribe(CAROL)
        self.before = len(self.notifies())
        [self.participant] = [
            p for p in self.focus.roster.participants(CONF) if p.identity == BOB.aor
        ]
        self.session = self.participant.session
        self.channel = self.mixer.channel(self.session)

    def reoffer(self, body: bytes, method: str = "INVITE") -> Response:
        """A re-INVITE (or UPDATE) from Bob carrying C{body}."""
        self.cseq += 1
        response = self.dispatch(in_dialog(self.bob, self.cseq + 10, body, method), BOB)
        self.assertEqual(response.code, 200)
        return response

    def ticks(self, n: int = 5) -> None:
        for _ in range(n):
            self.media_reactor.advance(TICK)
        self.media_reactor.advance(1e-6)

    def to(self, address: Tuple[str, int]) -> List[bytes]:
        return self.media_reactor.sent_to(address)

    def alice_address(self) -> Tuple[str, int]:
        return ("192.0.2.10", 5000)

    def assert_in_place(self) -> None:
        """Bob keeps his roster entry, session, channel and slot in the mixer."""
        self.assertEqual(self.focus.roster.count(CONF), 2)
        self.assertIs(self.focus.roster.get(self.participant.key), self.participant)
        self.assertIs(self.participant.session, self.session)
        self.assertFalse(self.session.closed)
        self.assertIs(self.mixer.channel(self.session), self.channel)
        self.assertIn(self.channel.key, self.mixer.conferences[CONF].mixer.channels)

    def last_status(self) -> object:
        return endpoint_status(document(self.notifies()[-1]), BOB.aor)

    def test_hold_sendonly(self) -> None:
        """Bob's sendonly is answered recvonly: no media to him, still in, shown on hold."""
        self.ticks()
        self.assertEqual(len(self.to(PHONE)), 5)
        answer = self.reoffer(phone_offer(direction="sendonly"))
        self.assertEqual(our_direction(answer.body), "recvonly")
        self.assert_in_place()
        self.assertEqual(self.participant.direction, "sendonly")
        self.assertEqual(self.last_status(), ("on-hold", "sendonly"))
        self.assertEqual(len(self.notifies()), self.before + 1)
        sent = len(self.to(PHONE))
        to_alice = len(self.to(self.alice_address()))
        self.ticks()
        self.assertEqual(len(self.to(PHONE)), sent)
        self.assertEqual(len(self.to(self.alice_address())), to_alice + 5)

    def test_hold_inactive_then_resume(self) -> None:
        """inactive is answered inactive; a sendrecv re-offer resumes media and status."""
        answer = self.reoffer(phone_offer(direction="inactive"))
        self.assertEqual(our_direction(answer.body), "inactive")
        self.assertEqual(self.last_status(), ("on-hold", "inactive"))
        self.ticks()
        self.assertEqual(self.to(PHONE), [])
        answer = self.reoffer(phone_offer(version=3))
        self.assertEqual(our_direction(answer.body), "sendrecv")
        self.assert_in_place()
        self.assertEqual(self.last_status(), ("connected", "sendrecv"))
        self.ticks()
        self.assertEqual(len(self.to(PHONE)), 5)

    def test_hold_by_update(self) -> None:
        """An UPDATE holds like a re-INVITE."""
        answer = self.reoffer(phone_offer(direction="sendonly"), method="UPDATE")
        self.assertEqual(our_direction(answer.body), "recvonly")
        self.assertEqual(self.last_status(), ("on-hold", "sendonly"))
        self.assert_in_place()

    def test_muted_while_holding(self) -> None:
        """A muted participant who holds shows on-hold, with nothing of theirs mixed."""
        self.successResultOf(self.control.set_muted(CONF, BOB.aor, ALICE.aor, True))
        self.reoffer(phone_offer(direction="sendonly"))
        self.assertEqual(self.last_status(), ("on-hold", "inactive"))

    def test_refresh_sends_no_update(self) -> None:
        """A re-offer that changes nothing sends no conference-info update."""
        self.reoffer(phone_offer())
        self.assert_in_place()
        self.assertEqual(len(self.notifies()), self.before)

    def test_codec_change(self) -> None:
        """A re-offer preferring PCMA: Bob's encoder switches at the next tick, same stream."""
        self.ticks(2)
        before = [parse_rtp(d) for d in self.to(PHONE)]
        self.assertEqual({p.payload_type for p in before}, {0})
        answer = self.reoffer(phone_offer(formats="8 0"))
        self.assertEqual(parse_sdp(answer.body).media[0].formats[0], "8")
        self.assert_in_place()
        self.ticks(1)
        after = parse_rtp(self.to(PHONE)[-1])
        self.assertEqual(after.payload_type, 8)
        self.assertEqual(after.ssrc, before[-1].ssrc)
        self.assertEqual(after.sequence, (before[-1].sequence + 1) & 0xFFFF)
        self.assertEqual(len(self.notifies()), self.before)

    def test_new_address(self) -> None:
        """A re-offer naming another address re-targets the channel and re-latches there."""
        port = self.session.port
        self.media_reactor.deliver(port, build_rtp(0, 1, 160, 1234, b"\xff" * 160), PHONE)
        self.assertEqual(self.channel.rtp.latched, PHONE)
        moved = ("192.0.2.20", 4100)
        self.reoffer(phone_offer(port=4100, host="192.0.2.20"))
        self.assert_in_place()
        self.ticks()
        self.assertEqual(len(self.to(moved)), 5)
        sent = len(self.to(PHONE))
        self.ticks()
        self.assertEqual(len(self.to(PHONE)), sent)
        heard = self.channel.last_heard
        self.media_reactor.advance(TICK)
        self.media_reactor.deliver(port, build_rtp(0, 2, 320, 1234, b"\xff" * 160), PHONE)
        self.assertEqual(self.channel.last_heard, heard)  # the old address is not taken
        self.media_reactor.deliver(port, build_rtp(0, 3, 480, 1234, b"\xff" * 160), moved)
        self.assertEqual(self.channel.rtp.latched, moved)

    def test_same_address_keeps_latch(self) -> None:
        """A hold from the same address keeps the source latched behind NAT."""
        nat = ("192.0.2.10", 34000)
        self.media_reactor.deliver(self.session.port, build_rtp(0, 1, 160, 99, b"\xff" * 160), nat)
        self.assertEqual(self.channel.rtp.latched, nat)
        self.reoffer(phone_offer(direction="sendonly"))
        self.reoffer(phone_offer(version=3))
        self.assertEqual(self.channel.rtp.latched, nat)
        self.ticks()
        self.assertEqual(len(self.to(nat)), 5)

    def test_refused_reoffer_changes_nothing(self) -> None:
        """A re-offer with no codec we take is 488 and Bob stays as he was."""
        self.cseq += 1
        body = (
            phone_offer(formats="0")
            .replace(b"RTP/AVP 0", b"RTP/AVP 18")
            .replace(b"a=rtpmap:0 PCMU/8000", b"a=rtpmap:18 G729/8000")
        )
        self.assertEqual(self.dispatch(in_dialog(self.bob, self.cseq + 10, body), BOB).code, 488)
        self.assert_in_place()
        self.assertEqual(self.participant.direction, "sendrecv")
        self.ticks()
        self.assertEqual(len(self.to(PHONE)), 5)


SUITE = "AES_CM_128_HMAC_SHA1_80"
BOB_KEY = b"b" * 30


def srtp_offer(direction: Optional[str] = None, version: int = 1) -> bytes:
    """Bob's SAVP offer (PCMU) keyed with C{BOB_KEY}, from port 4000."""
    key = base64.b64encode(BOB_KEY).decode()
    return phone_offer(direction=direction, formats="0", version=version).replace(
        b"RTP/AVP 0\r\n", f"RTP/SAVP 0\r\na=crypto:1 {SUITE} inline:{key}\r\n".encode()
    )


class SRTPJoinTests(ControlFixture):
    """
    SDES-SRTP through the focus and the built-in mixer on a fake clock:
    Bob joins with an SAVP offer, Alice with plain RTP; they hear each
    other, Bob's media encrypted both ways, through a hold and resume.
    """

    def setUp(self) -> None:
        super().setUp()
        self.media_reactor = FakeMediaReactor()
        self.mixer = MixerMediaService(
            self.media_reactor, address="198.51.100.1", rng=random.Random(7), srtp="optional"
        )
        self.focus.media = self.mixer
        self.addCleanup(self.mixer.close_all)
        self.bob = self.join(BOB, body=srtp_offer())
        self.alice = self.join(ALICE, body=phone_offer(port=5000, version=1))
        self.assertEqual((self.bob.code, self.alice.code), (200, 200))
        [answer] = parse_sdp(self.bob.body).media
        [crypto] = answer.get_all("crypto")
        self.answer = parse_crypto(crypto)
        # Bob's phone: sends with his key, receives with ours.
        self.phone = SRTPContext(SRTPKeys(SUITE, BOB_KEY, self.answer.key))
        [bob] = [p for p in self.focus.roster.participants(CONF) if p.identity == BOB.aor]
        [alice] = [p for p in self.focus.roster.participants(CONF) if p.identity == ALICE.aor]
        self.bob_session = bob.session
        self.bob_port, self.alice_port = bob.session.port, alice.session.port
        self.channel = self.mixer.channel(bob.session)
        self.sequence = 100

    def talk(self, seconds: float) -> None:
        """Bob (SRTP, 500 Hz) and Alice (plain, 900 Hz) talk for C{seconds}."""
        frames = round(seconds / TICK)
        bob = rtp_stream(PCMU, 0, tone(500, seconds), ssrc=11, sequence=self.sequence)
        alice = rtp_stream(PCMU, 0, tone(900, seconds), ssrc=22, sequence=self.sequence)
        self.sequence += frames
        for n in range(frames):
            self.media_reactor.deliver(self.bob_port, self.phone.protect(bob[n]), PHONE)
            self.media_reactor.deliver(self.alice_port, alice[n], ("192.0.2.10", 5000))
            self.media_reactor.advance(TICK)

    def heard_by_bob(self) -> npt.NDArray[np.int16]:
        """What Bob's phone decrypts and decodes of what we sent it."""
        payloads = [
            parse_rtp(self.phone.unprotect(d)).payload for d in self.media_reactor.sent_to(PHONE)
        ]
        return decode_stream(PCMU, payloads)

    def test_savp_answer_and_audio(self) -> None:
        """Bob's SAVP join gets an SAVP answer with a key of ours; audio flows encrypted."""
        [answer] = parse_sdp(self.bob.body).media
        self.assertEqual((answer.proto, self.answer.tag, self.answer.suite), ("RTP/SAVP", 1, SUITE))
        self.assertNotEqual(self.answer.key, BOB_KEY)
        self.talk(1.0)
        self.assertGreater(band_share(self.heard_by_bob()[1600:], 900), 0.95)
        heard_alice = decode_stream(
            PCMU, [parse_rtp(d).payload for d in self.media_reactor.sent_to(("192.0.2.10", 5000))]
        )
        self.assertGreater(band_share(heard_alice[1600:], 500), 0.95)
        c = self.channel.counters
        self.assertEqual((c.unauthenticated, c.replayed, c.strangers), (0, 0, 0))
        self.assertGreater(c.accepted, 40)

    def test_forged_not_played(self) -> None:
        """Plain RTP from Bob's address is dropped as unauthenticated; Alice hears nothing."""
        for packet in rtp_stream(PCMU, 0, tone(700, 0.5), ssrc=33):
            self.media_reactor.deliver(self.bob_port, packet, PHONE)
            self.media_reactor.advance(TICK)
        heard = decode_stream(
            PCMU, [parse_rtp(d).payload for d in self.media_reactor.sent_to(("192.0.2.10", 5000))]
        )
        self.assertTrue(np.all(np.abs(heard.astype(int)) <= 8))
        self.assertEqual(self.channel.counters.unauthenticated, 25)
        self.assertIsNone(self.channel.rtp.latched)

    def test_hold_and_resume_keep_srtp(self) -> None:
        """A hold and a resume re-INVITE keep our key and the SRTP stream going."""
        self.talk(0.2)
        for direction, ours, version in (("sendonly", "recvonly", 2), (None, "sendrecv", 3)):
            self.cseq += 1
            request = in_dialog(self.bob, self.cseq + 10, srtp_offer(direction, version))
            response = self.dispatch(request, BOB)
            self.assertEqual(response.code, 200)
            self.assertEqual(our_direction(response.body), ours)
            [crypto] = parse_sdp(response.body).media[0].get_all("crypto")
            self.assertEqual(parse_crypto(crypto).key, self.answer.key)
            self.talk(0.2)
        self.assertIs(self.mixer.channel(self.bob_session), self.channel)
        c = self.channel.counters
        self.assertEqual((c.unauthenticated, c.replayed), (0, 0))
        self.assertEqual(
            len(self.heard_by_bob()), FRAME_SAMPLES * len(self.media_reactor.sent_to(PHONE))
        )

    def test_required_refuses_plain(self) -> None:
        """With --srtp required, a plain RTP join is 488 with a Warning; SAVP is taken."""
        self.mixer.srtp = "required"
        refused = self.join(CAROL, body=phone_offer(port=6000, version=1))
        self.assertEqual(refused.code, 488)
        self.assertIn("SRTP (RTP/SAVP) required", refused.header("warning") or "")
        self.assertEqual(self.focus.roster.count(CONF), 2)
