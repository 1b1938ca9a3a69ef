# -*- test-case-name: tests.unit.test_offeranswer -*-
"""
Tests for L{conference.offeranswer}: RFC 3264 answers, offers and checks.
"""

from __future__ import annotations

import base64
from dataclasses import replace
from typing import List

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from conference.offeranswer import (
    G722,
    IDLE,
    OFFER_SENT,
    OPUS,
    PCMA,
    PCMU,
    SRTP_OFF,
    SRTP_OPTIONAL,
    SRTP_POLICIES,
    SRTP_REQUIRED,
    STABLE,
    SUPPORTED_CODECS,
    TELEPHONE_EVENT,
    TELEPHONE_EVENT_48K,
    WARN_SRTP_OFF,
    WARN_SRTP_REQUIRED,
    OfferAnswer,
    answer_direction,
    choose_stream,
    codec_of,
)
from conference.sdp import (
    Media,
    SDPError,
    SessionDescription,
    direction_of,
    fmtp_of,
    parse_sdp,
    rtpmap_of,
    serialize_sdp,
)
from conference.sip.errors import RemoteProtocolError
from tests.unit.test_sdp import FIREFOX_AVP_OFFER, FIREFOX_OFFER, LINPHONE_OFFER, SIPP_OFFER, crlf

AGENT = "media.example.com"


def negotiator(address: str = "198.51.100.1", direction: str = "sendrecv") -> OfferAnswer:
    """A negotiator on port 20000 with a fixed session id."""
    return OfferAnswer(
        address=address, port=20000, session_id="4242", warn_agent=AGENT, direction=direction
    )


def audio_offer(formats: str, extra: str = "", more_media: str = "") -> bytes:
    """An offer of one audio stream with C{formats} and extra lines."""
    return crlf(
        f"""
        v=0
        o=bob 1 1 IN IP4 192.0.2.5
        s=-
        c=IN IP4 192.0.2.5
        t=0 0
        m=audio 4000 RTP/AVP {formats}
        {extra}
        {more_media}
        """
    ).replace(b"\r\n\r\n", b"\r\n")


class AnswerTests(SynchronousTestCase):
    """
    Answers to offers: codecs, rejections, directions.
    """

    def answer(self, offer: bytes, address: str = "198.51.100.1") -> SessionDescription:
        """Answer C{offer} and parse the answer back."""
        self.oa = negotiator(address)
        return parse_sdp(self.oa.receive_offer(offer))

    def test_sipp(self) -> None:
        """SIPp's PCMU offer gets PCMU on our port, sendrecv, version 1."""
        answer = self.answer(SIPP_OFFER)
        self.assertEqual(
            serialize_sdp(answer),
            crlf(
                """
                v=0
                o=- 4242 1 IN IP4 198.51.100.1
                s=-
                c=IN IP4 198.51.100.1
                t=0 0
                m=audio 20000 RTP/AVP 0
                a=rtpmap:0 PCMU/8000
                a=sendrecv
                """
            ),
        )
        stream = self.oa.stream
        assert stream is not None
        self.assertEqual((stream.index, stream.address, stream.port), (0, "192.0.2.10", 6000))
        self.assertEqual(stream.codecs, [(0, PCMU)])
        self.assertIsNone(stream.telephone_event)
        self.assertEqual(self.oa.state, STABLE)
        self.assertEqual(self.oa.local_sdp, serialize_sdp(answer))

    def test_linphone(self) -> None:
        """Linphone's offer gets PCMU, PCMA and the 8 kHz telephone-event; video is rejected."""
        answer = self.answer(LINPHONE_OFFER)
        audio, video = answer.media
        self.assertEqual((audio.port, audio.formats), (20000, ["0", "8", "100"]))
        self.assertEqual(rtpmap_of(audio, "100"), ("telephone-event", 8000, 1))
        self.assertEqual(rtpmap_of(audio, "8"), ("PCMA", 8000, 1))
        self.assertEqual((video.media, video.port, video.formats), ("video", 0, ["96", "97"]))
        self.assertEqual(video.attributes, [])
        stream = self.oa.stream
        assert stream is not None
        self.assertEqual(stream.codecs, [(0, PCMU), (8, PCMA)])
        self.assertEqual(stream.telephone_event, 100)

    def test_offer_order_kept(self) -> None:
        """Codecs are answered in the offerer's order of preference."""
        answer = self.answer(audio_offer("8 0"))
        self.assertEqual(answer.media[0].formats, ["8", "0"])

    def test_telephone_event_number_and_fmtp(self) -> None:
        """telephone-event keeps the offerer's payload type and fmtp."""
        answer = self.answer(
            audio_offer("0 96", "a=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-16")
        )
        self.assertEqual(answer.media[0].formats, ["0", "96"])
        self.assertEqual(fmtp_of(answer.media[0], "96"), "0-16")

    def test_one_telephone_event(self) -> None:
        """Of two 8 kHz telephone-event types only the first is answered."""
        answer = self.answer(
            audio_offer(
                "0 96 97", "a=rtpmap:96 telephone-event/8000\r\na=rtpmap:97 telephone-event/8000"
            )
        )
        self.assertEqual(answer.media[0].formats, ["0", "96"])

    def test_dynamic_pcmu(self) -> None:
        """PCMU under a dynamic payload type is recognised by its rtpmap."""
        answer = self.answer(audio_offer("97", "a=rtpmap:97 pcmu/8000"))
        self.assertEqual(answer.media[0].formats, ["97"])
        self.assertEqual(rtpmap_of(answer.media[0], "97"), ("PCMU", 8000, 1))

    def test_remapped_static(self) -> None:
        """A static number remapped by rtpmap to another codec is not PCMU."""
        self.answer(audio_offer("0 8", "a=rtpmap:0 G729/8000"))
        self.assertEqual(parse_sdp(self.oa.local_sdp).media[0].formats, ["8"])

    def test_firefox_dtls(self) -> None:
        """DTLS-SRTP only (SAVPF) is refused with 488 and Warning 302."""
        e = self.assertRaises(RemoteProtocolError, negotiator().receive_offer, FIREFOX_OFFER)
        self.assertEqual((e.status, e.reason), (488, "Not Acceptable Here"))
        self.assertEqual(e.headers, [("Warning", f'302 {AGENT} "Incompatible transport protocol"')])

    def test_firefox_plain_rtp(self) -> None:
        """ICE, rtcp-mux and DTLS attributes are ignored, not echoed."""
        answer = self.answer(FIREFOX_AVP_OFFER)
        audio, video = answer.media
        self.assertEqual(audio.formats, ["0", "8", "101"])
        self.assertEqual(fmtp_of(audio, "101"), "0-15")
        names = {a.name for a in audio.attributes}
        self.assertEqual(names, {"rtpmap", "fmtp", "sendrecv"})
        self.assertEqual(video.port, 0)
        self.assertEqual(answer.attributes, [])

    def test_no_common_codec(self) -> None:
        """Audio with no codec we speak is 488 with Warning 305."""
        e = self.assertRaises(
            RemoteProtocolError,
            negotiator().receive_offer,
            audio_offer("18 101", "a=rtpmap:18 G729/8000\r\na=rtpmap:101 telephone-event/8000"),
        )
        self.assertEqual(e.status, 488)
        self.assertEqual(e.headers, [("Warning", f'305 {AGENT} "Incompatible media format"')])

    def test_video_only(self) -> None:
        """An offer without audio is 488 with Warning 304."""
        offer = (
            LINPHONE_OFFER.split(b"m=audio")[0] + b"m=video" + LINPHONE_OFFER.split(b"m=video")[1]
        )
        e = self.assertRaises(RemoteProtocolError, negotiator().receive_offer, offer)
        self.assertEqual(e.headers, [("Warning", f'304 {AGENT} "Media type not available"')])

    def test_no_media(self) -> None:
        """An offer without any m-line is 488 with Warning 304."""
        e = self.assertRaises(
            RemoteProtocolError,
            negotiator().receive_offer,
            crlf("v=0\no=- 1 1 IN IP4 h\ns=-\nt=0 0"),
        )
        self.assertEqual(e.status, 488)
        self.assertIn("304", e.headers[0][1])

    def test_malformed(self) -> None:
        """A malformed offer is a 400 and changes nothing."""
        oa = negotiator()
        e = self.assertRaises(SDPError, oa.receive_offer, b"v=0\r\ngarbage\r\n")
        self.assertEqual(e.status, 400)
        self.assertEqual((oa.state, oa.local), (IDLE, None))

    def test_second_audio_rejected(self) -> None:
        """Only one audio stream is accepted; the others get port 0 in place."""
        answer = self.answer(audio_offer("0", more_media="m=audio 4002 RTP/AVP 8"))
        self.assertEqual([(m.port, m.formats) for m in answer.media], [(20000, ["0"]), (0, ["8"])])

    def test_disabled_stream_skipped(self) -> None:
        """A stream offered with port 0 stays rejected and the next one is taken."""
        offer = audio_offer("0", more_media="m=audio 4002 RTP/AVP 8").replace(b"4000", b"0")
        answer = self.answer(offer)
        self.assertEqual([m.port for m in answer.media], [0, 20000])
        assert self.oa.stream is not None
        self.assertEqual((self.oa.stream.index, self.oa.stream.port), (1, 4002))

    def test_timing_copied(self) -> None:
        """The answer's t= equals the offer's."""
        answer = self.answer(SIPP_OFFER.replace(b"t=0 0", b"t=3000000000 3000003600"))
        self.assertEqual(
            (answer.timings[0].start, answer.timings[0].stop), (3000000000, 3000003600)
        )

    def test_ipv6(self) -> None:
        """An IPv6 media address is declared IP6 in o= and c=."""
        answer = self.answer(SIPP_OFFER, address="2001:db8::1")
        self.assertEqual(answer.origin.addrtype, "IP6")
        assert answer.connection is not None
        self.assertEqual(answer.connection.addrtype, "IP6")

    def test_directions(self) -> None:
        """Each offered direction gets the answer RFC 3264 section 6.1 asks for."""
        for offered, expected in [
            ("sendrecv", "sendrecv"),
            ("sendonly", "recvonly"),
            ("recvonly", "sendonly"),
            ("inactive", "inactive"),
        ]:
            answer = self.answer(audio_offer("0", f"a={offered}"))
            self.assertEqual(direction_of(answer, answer.media[0]), expected, offered)
            assert self.oa.stream is not None
            self.assertEqual(self.oa.stream.direction, expected)

    def test_expects_media(self) -> None:
        """Media is expected unless we do not receive or the peer holds with c=0.0.0.0."""
        for offered, expected in [
            ("sendrecv", True),
            ("sendonly", True),
            ("recvonly", False),
            ("inactive", False),
        ]:
            self.answer(audio_offer("0", f"a={offered}"))
            assert self.oa.stream is not None
            self.assertEqual(self.oa.stream.expects_media, expected, offered)
        for connection, expected in [
            ("IN IP4 0.0.0.0", False),
            ("IN IP6 ::", False),
            ("IN IP4 media.example", True),
        ]:
            held = audio_offer("0").replace(b"c=IN IP4 192.0.2.5", f"c={connection}".encode())
            self.answer(held)
            assert self.oa.stream is not None
            self.assertEqual(self.oa.stream.expects_media, expected, connection)

    def test_session_level_direction(self) -> None:
        """A session-level direction applies to streams without their own."""
        offer = SIPP_OFFER.replace(b"t=0 0\r\n", b"t=0 0\r\na=sendonly\r\n")
        answer = self.answer(offer)
        self.assertEqual(direction_of(answer, answer.media[0]), "recvonly")

    def test_answer_direction_table(self) -> None:
        """answer_direction follows what this side can do."""
        self.assertEqual(answer_direction("sendrecv", "recvonly"), "recvonly")
        self.assertEqual(answer_direction("sendonly", "sendonly"), "inactive")
        self.assertEqual(answer_direction("recvonly", "recvonly"), "inactive")
        self.assertEqual(answer_direction("recvonly", "sendrecv"), "sendonly")
        self.assertEqual(answer_direction("inactive", "sendrecv"), "inactive")

    def test_codec_of(self) -> None:
        """codec_of reads rtpmap first, then static numbers."""
        media = Media(formats=["0", "8", "101"])
        self.assertEqual(codec_of(media, "0", [PCMU, PCMA]), PCMU)
        self.assertEqual(codec_of(media, "8", [PCMU, PCMA]), PCMA)
        self.assertIsNone(codec_of(media, "101", [PCMU, PCMA, TELEPHONE_EVENT]))

    def test_bad_session_id(self) -> None:
        """The session id must be digits."""
        self.assertRaises(
            ValueError, OfferAnswer, address="h", port=1, session_id="x", warn_agent="h"
        )


class ChoiceTests(SynchronousTestCase):
    """
    A first offer answered with the stream its caller already chose.
    """

    def test_given_choice_is_used(self) -> None:
        """The stream passed as C{choice} is answered, without choosing again."""
        offer = audio_offer("0", more_media="m=audio 4002 RTP/AVP 0")
        self.assertEqual(choose_stream(parse_sdp(offer), SUPPORTED_CODECS, AGENT), (0, None))
        oa = negotiator()
        answer = parse_sdp(oa.receive_offer(offer, choice=(1, None)))
        self.assertEqual([m.port for m in answer.media], [0, 20000])
        assert oa.stream is not None
        self.assertEqual((oa.stream.index, oa.stream.port), (1, 4002))

    def test_choice_ignored_once_settled(self) -> None:
        """A new offer in the session keeps preferring its stream, whatever C{choice} says."""
        offer = audio_offer("0", more_media="m=audio 4002 RTP/AVP 0")
        oa = negotiator()
        oa.receive_offer(offer, choice=(1, None))
        answer = parse_sdp(oa.receive_offer(offer, choice=(0, None)))
        self.assertEqual([m.port for m in answer.media], [0, 20000])


class ReOfferTests(SynchronousTestCase):
    """
    New offers within a session (re-INVITE, UPDATE).
    """

    def setUp(self) -> None:
        self.oa = negotiator()
        self.oa.receive_offer(LINPHONE_OFFER)

    def test_changed_offer_bumps_version(self) -> None:
        """A changed offer (hold) gets a new answer with the next version."""
        answer = parse_sdp(
            self.oa.receive_offer(
                LINPHONE_OFFER.replace(b"a=rtcp-fb:* trr-int 1000", b"a=sendonly", 1)
            )
        )
        self.assertEqual(answer.origin.session_version, 2)
        self.assertEqual(answer.origin.session_id, "4242")
        self.assertEqual(direction_of(answer, answer.media[0]), "recvonly")

    def test_same_offer_same_version(self) -> None:
        """The same offer (a session refresh) gets the same answer, version unchanged."""
        first = self.oa.local_sdp
        self.assertEqual(self.oa.receive_offer(LINPHONE_OFFER), first)
        self.assertEqual(self.oa.version, 1)

    def test_local_sdp_serialized_once(self) -> None:
        """local_sdp is the answer as sent (the same bytes object) until local is replaced."""
        wire = self.oa.receive_offer(
            LINPHONE_OFFER.replace(b"a=rtcp-fb:* trr-int 1000", b"a=sendonly", 1)
        )
        self.assertIs(self.oa.local_sdp, wire)
        assert self.oa.local is not None
        replaced = replace(self.oa.local, name="replaced")
        self.oa.local = replaced
        self.assertEqual(self.oa.local_sdp, serialize_sdp(replaced))
        self.assertIn(b"s=replaced", self.oa.local_sdp)

    def test_versions_keep_counting(self) -> None:
        """Each changed answer raises the version by one."""
        versions: List[int] = []
        for direction in ("sendonly", "sendrecv", "inactive"):
            offer = LINPHONE_OFFER.replace(
                b"a=rtcp-fb:* trr-int 1000", f"a={direction}".encode(), 1
            )
            versions.append(parse_sdp(self.oa.receive_offer(offer)).origin.session_version)
        self.assertEqual(versions, [2, 3, 4])

    def test_fewer_m_lines(self) -> None:
        """A new offer that drops an m-line is refused; the session stays."""
        before = self.oa.local_sdp
        e = self.assertRaises(RemoteProtocolError, self.oa.receive_offer, SIPP_OFFER)
        self.assertEqual(e.status, 488)
        self.assertIn("399", e.headers[0][1])
        self.assertEqual(self.oa.local_sdp, before)

    def test_added_m_line(self) -> None:
        """An added m-line is answered (rejected here) and the stream stays at its index."""
        offer = LINPHONE_OFFER + b"m=audio 5000 RTP/AVP 0\r\n"
        answer = parse_sdp(self.oa.receive_offer(offer))
        self.assertEqual([m.port for m in answer.media], [20000, 0, 0])

    def test_preferred_stream_moves_when_disabled(self) -> None:
        """If our stream is disabled the next acceptable one is taken."""
        offer = (
            LINPHONE_OFFER.replace(b"m=audio 7078", b"m=audio 0") + b"m=audio 5000 RTP/AVP 8\r\n"
        )
        answer = parse_sdp(self.oa.receive_offer(offer))
        self.assertEqual([m.port for m in answer.media], [0, 0, 20000])
        assert self.oa.stream is not None
        self.assertEqual(self.oa.stream.index, 2)

    def test_refused_offer_changes_nothing(self) -> None:
        """A 488 to a re-offer leaves the earlier stream and answer in place."""
        before = (self.oa.local_sdp, self.oa.stream)
        offer = LINPHONE_OFFER.replace(b" 0 8 101 99 100", b" 101 99 100")
        self.assertRaises(RemoteProtocolError, self.oa.receive_offer, offer)
        self.assertEqual((self.oa.local_sdp, self.oa.stream), before)

    def test_our_reoffer(self) -> None:
        """Our own re-offer keeps the m-lines, offers audio in place and counts up."""
        offer = parse_sdp(self.oa.create_offer("sendonly"))
        self.assertEqual([(m.media, m.port) for m in offer.media], [("audio", 20000), ("video", 0)])
        self.assertEqual(offer.origin.session_version, 2)
        self.assertEqual(direction_of(offer, offer.media[0]), "sendonly")
        stream = self.oa.receive_answer(
            crlf(
                """
                v=0
                o=alice 1234 5679 IN IP4 192.0.2.20
                s=Talk
                c=IN IP4 192.0.2.20
                t=0 0
                m=audio 7078 RTP/AVP 8
                a=recvonly
                m=video 0 RTP/AVP 96
                """
            )
        )
        self.assertEqual((stream.codecs, stream.direction), ([(8, PCMA)], "sendonly"))


ANSWER_TEMPLATE = """
    v=0
    o=carol 7 7 IN IP4 192.0.2.7
    s=-
    c=IN IP4 192.0.2.7
    t=0 0
    m={m}
    {extra}
    """


def answer_sdp(m: str = "audio 8000 RTP/AVP 0 101", extra: str = "a=sendrecv") -> bytes:
    """An answer with one m-line C{m}."""
    return crlf(ANSWER_TEMPLATE.format(m=m, extra=extra))


class OfferTests(SynchronousTestCase):
    """
    Offers for INVITEs without one, and the answers from the ACK.
    """

    def setUp(self) -> None:
        self.oa = negotiator()
        self.offer = self.oa.create_offer()

    def test_offer(self) -> None:
        """The offer lists PCMU, PCMA and telephone-event 101 with 0-16."""
        self.assertEqual(
            self.offer,
            crlf(
                """
                v=0
                o=- 4242 1 IN IP4 198.51.100.1
                s=-
                c=IN IP4 198.51.100.1
                t=0 0
                m=audio 20000 RTP/AVP 0 8 101
                a=rtpmap:0 PCMU/8000
                a=rtpmap:8 PCMA/8000
                a=rtpmap:101 telephone-event/8000
                a=fmtp:101 0-16
                a=sendrecv
                """
            ),
        )
        self.assertEqual(self.oa.state, OFFER_SENT)

    def test_complete(self) -> None:
        """A fitting answer settles the stream, telephone-event included."""
        stream = self.oa.receive_answer(answer_sdp())
        self.assertEqual(
            (stream.address, stream.port, stream.codecs), ("192.0.2.7", 8000, [(0, PCMU)])
        )
        self.assertEqual((stream.telephone_event, stream.direction), (101, "sendrecv"))
        self.assertEqual(self.oa.state, STABLE)
        self.assertEqual(self.oa.local_sdp, self.offer)

    def test_answer_direction_reversed(self) -> None:
        """An answer that only receives means we only send."""
        stream = self.oa.receive_answer(answer_sdp(extra="a=recvonly"))
        self.assertEqual(stream.direction, "sendonly")

    def assertMismatch(self, answer: bytes, status: int, reason: str) -> None:
        """The answer is refused with C{status} and the offer stays pending."""
        e = self.assertRaises(RemoteProtocolError, self.oa.receive_answer, answer)
        self.assertEqual(e.status, status)
        self.assertIn(reason, e.reason + " " + " ".join(v for _, v in e.headers))
        self.assertEqual(self.oa.state, OFFER_SENT)

    def test_wrong_count(self) -> None:
        """An answer with another number of m-lines is refused."""
        self.assertMismatch(answer_sdp(extra="m=video 0 RTP/AVP 31"), 400, "2 m-lines, the offer 1")

    def test_wrong_media(self) -> None:
        """An answer of another media type is refused."""
        self.assertMismatch(answer_sdp("video 8000 RTP/AVP 0"), 400, "answers audio with video")

    def test_wrong_proto(self) -> None:
        """An answer in another profile is refused."""
        self.assertMismatch(
            answer_sdp("audio 8000 RTP/SAVP 0"), 400, "answers RTP/AVP with RTP/SAVP"
        )

    def test_codec_not_offered(self) -> None:
        """An answer naming no codec we offered is 488 (305)."""
        self.assertMismatch(
            answer_sdp("audio 8000 RTP/AVP 18", "a=rtpmap:18 G729/8000"), 488, "305"
        )

    def test_only_events(self) -> None:
        """telephone-event alone is not enough."""
        self.assertMismatch(answer_sdp("audio 8000 RTP/AVP 101"), 488, "305")

    def test_rejected(self) -> None:
        """An answer rejecting our audio is 488 (304)."""
        self.assertMismatch(answer_sdp("audio 0 RTP/AVP 0"), 488, "304")

    def test_malformed(self) -> None:
        """A malformed answer (or none) is a 400."""
        self.assertMismatch(b"", 400, "description is empty")

    def test_glare(self) -> None:
        """An offer while ours is pending, or a second offer, is 491."""
        e = self.assertRaises(RemoteProtocolError, self.oa.receive_offer, SIPP_OFFER)
        self.assertEqual(e.status, 491)
        self.assertEqual(self.assertRaises(RemoteProtocolError, self.oa.create_offer).status, 491)

    def test_no_offer_pending(self) -> None:
        """An answer with no offer pending is refused."""
        self.oa.receive_answer(answer_sdp())
        e = self.assertRaises(RemoteProtocolError, self.oa.receive_answer, answer_sdp())
        self.assertIn("no offer of ours", e.reason)

    def test_direction_mismatch(self) -> None:
        """An answer to a sendonly offer that also only sends is refused."""
        oa = negotiator(direction="sendonly")
        oa.create_offer()
        e = self.assertRaises(
            RemoteProtocolError, oa.receive_answer, answer_sdp(extra="a=sendonly")
        )
        self.assertIn("answers sendonly with sendonly", e.reason)

    def test_dynamic_event_unmapped(self) -> None:
        """A dynamic type the answer does not map keeps the offer's meaning."""
        stream = self.oa.receive_answer(answer_sdp("audio 8000 RTP/AVP 8 101", ""))
        self.assertEqual((stream.codecs, stream.telephone_event), ([(8, PCMA)], 101))


class PropertyTests(SynchronousTestCase):
    """
    Invariants over generated offers.
    """

    @settings(max_examples=200, deadline=None)
    @given(
        st.lists(
            st.tuples(
                st.sampled_from(["audio", "video", "text", "application"]),
                st.sampled_from([0, 4000]),
                st.sampled_from(["RTP/AVP", "RTP/SAVP", "udp"]),
                st.lists(st.sampled_from(["0", "8", "18", "101"]), min_size=1, max_size=4),
            ),
            max_size=5,
        )
    )
    def test_shape_kept(self, lines: List[tuple[str, int, str, List[str]]]) -> None:
        """An answer has the offer's m-lines in order, at most one live; or it is a 488."""
        body = "".join(f"m={m} {p} {proto} {' '.join(f)}\r\n" for m, p, proto, f in lines)
        offer = crlf("v=0\no=- 1 1 IN IP4 h\ns=-\nc=IN IP4 192.0.2.1\nt=0 0") + body.encode()
        try:
            answer = parse_sdp(negotiator().receive_offer(offer))
        except RemoteProtocolError as e:
            self.assertEqual(e.status, 488)
            return
        self.assertEqual([m.media for m in answer.media], [line[0] for line in lines])
        live = [m for m in answer.media if m.port != 0]
        self.assertEqual(len(live), 1)
        self.assertEqual(live[0].media, "audio")
        self.assertTrue(set(live[0].formats) <= {"0", "8", "101"})


SUITE = "AES_CM_128_HMAC_SHA1_80"
PHONE_KEY = "QUJD" * 10  # b"ABC" * 10
OUR_KEY = b"K" * 30


def savp_offer(
    proto: str = "RTP/SAVP",
    cryptos: str = f"a=crypto:1 {SUITE} inline:{PHONE_KEY}",
    port: int = 4000,
) -> bytes:
    """A phone's PCMU offer over C{proto} with C{cryptos} lines, on C{port}."""
    offer = audio_offer("0 101", f"a=rtpmap:101 telephone-event/8000\n{cryptos}")
    return offer.replace(b"m=audio 4000 RTP/AVP", f"m=audio {port} {proto}".encode())


def srtp_negotiator(policy: str = SRTP_OPTIONAL) -> OfferAnswer:
    """A negotiator under C{policy} whose keys are all C{OUR_KEY}."""
    return OfferAnswer(
        address="198.51.100.1",
        port=20000,
        session_id="4242",
        warn_agent=AGENT,
        srtp=policy,
        keygen=lambda n: OUR_KEY[:n],
    )


class SRTPTests(SynchronousTestCase):
    """
    SDES-SRTP (RFC 4568) in offers and answers, under each --srtp policy.
    """

    def refused(self, oa: OfferAnswer, offer: bytes) -> str:
        """The Warning of the 488 refusing C{offer}; the state is unchanged."""
        e = self.assertRaises(RemoteProtocolError, oa.receive_offer, offer)
        self.assertEqual(e.status, 488)
        [(name, value)] = e.headers
        self.assertEqual((name, oa.state), ("Warning", IDLE))
        return str(value)

    def test_savp_answered_with_our_key(self) -> None:
        """An SAVP offer gets SAVP, the offer's tag and suite, and a key of ours."""
        oa = srtp_negotiator()
        answer = parse_sdp(oa.receive_offer(savp_offer()))
        [media] = answer.media
        self.assertEqual(media.proto, "RTP/SAVP")
        our_key = base64.b64encode(OUR_KEY).decode()
        self.assertEqual(media.get_all("crypto"), [f"1 {SUITE} inline:{our_key}"])
        stream = oa.stream
        assert stream is not None and stream.local_crypto and stream.remote_crypto
        self.assertTrue(stream.secure)
        self.assertEqual(
            (stream.local_crypto.key, stream.remote_crypto.key), (OUR_KEY, b"ABC" * 10)
        )
        self.assertNotIn("ABC", repr(stream))

    def test_first_usable_crypto(self) -> None:
        """Unusable lines are skipped; the first usable one (offer order) is answered."""
        cryptos = (
            f"a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:{PHONE_KEY}\r\n"
            f"a=crypto:2 {SUITE} inline:{PHONE_KEY}|2^20|1:4\r\n"
            f"a=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:{PHONE_KEY}\r\n"
            f"a=crypto:4 {SUITE} inline:{PHONE_KEY}"
        )
        answer = parse_sdp(srtp_negotiator().receive_offer(savp_offer(cryptos=cryptos)))
        [crypto] = answer.media[0].get_all("crypto")
        assert crypto is not None
        self.assertTrue(crypto.startswith("3 AES_CM_128_HMAC_SHA1_32 inline:"))

    def test_plain_under_optional(self) -> None:
        """Under optional, a plain offer is answered plain, with no crypto."""
        oa = srtp_negotiator()
        answer = parse_sdp(oa.receive_offer(SIPP_OFFER))
        self.assertEqual(answer.media[0].proto, "RTP/AVP")
        self.assertFalse(answer.media[0].has("crypto"))
        assert oa.stream is not None
        self.assertFalse(oa.stream.secure)

    def test_best_effort(self) -> None:
        """An AVP offer with a usable crypto line is answered with a key (SRTP over AVP)."""
        for policy in (SRTP_OPTIONAL, SRTP_REQUIRED):
            oa = srtp_negotiator(policy)
            answer = parse_sdp(oa.receive_offer(savp_offer("RTP/AVP")))
            self.assertEqual(answer.media[0].proto, "RTP/AVP")
            self.assertEqual(len(answer.media[0].get_all("crypto")), 1)
            assert oa.stream is not None
            self.assertTrue(oa.stream.secure)
        oa = srtp_negotiator(SRTP_OFF)
        answer = parse_sdp(oa.receive_offer(savp_offer("RTP/AVP")))
        self.assertFalse(answer.media[0].has("crypto"))

    def test_required_refuses_plain(self) -> None:
        """Under required, plain RTP (no usable crypto) is 488 with Warning 302."""
        for offer in (SIPP_OFFER, savp_offer("RTP/AVP", "a=crypto:1 bogus")):
            warning = self.refused(srtp_negotiator(SRTP_REQUIRED), offer)
            self.assertEqual(warning, f'302 {AGENT} "{WARN_SRTP_REQUIRED[1]}"')

    def test_off_refuses_savp(self) -> None:
        """Under off (the negotiator's default), SAVP is 488 with Warning 302."""
        warning = self.refused(negotiator(), savp_offer())
        self.assertEqual(warning, f'302 {AGENT} "{WARN_SRTP_OFF[1]}"')

    def test_unusable_crypto(self) -> None:
        """SAVP with no usable crypto line is 488 with Warning 399 saying why."""
        cases = {
            "": "none given",
            f"a=crypto:1 {SUITE} inline:QUJD": "3 bytes",
            f"a=crypto:1 {SUITE} inline:!!!!" + "A" * 36: "not base64",
            f"a=crypto:1 F8_128_HMAC_SHA1_80 inline:{PHONE_KEY}": "not supported",
            f"a=crypto:1 {SUITE} inline:{PHONE_KEY}|2^20|1:4": "MKI",
        }
        for cryptos, why in cases.items():
            warning = self.refused(srtp_negotiator(), savp_offer(cryptos=cryptos))
            self.assertTrue(warning.startswith(f'399 {AGENT} "No usable crypto attribute'))
            self.assertIn(why, warning)

    def test_secure_stream_preferred(self) -> None:
        """Offered SAVP and AVP alternatives, the SAVP one is taken."""
        offer = savp_offer("RTP/AVP", "") + savp_offer(port=4002).split(b"t=0 0\r\n")[1]
        answer = parse_sdp(srtp_negotiator().receive_offer(offer))
        self.assertEqual([m.port for m in answer.media], [0, 20000])
        self.assertEqual(answer.media[1].proto, "RTP/SAVP")

    def test_reoffer_keeps_our_key(self) -> None:
        """A re-offer (hold, refresh) keeps our key; an unchanged one keeps the version."""
        oa = srtp_negotiator()
        keys = iter([b"1" * 30, b"2" * 30])
        oa.keygen = lambda n: next(keys)
        first = oa.receive_offer(savp_offer())
        self.assertEqual(oa.receive_offer(savp_offer()), first)
        held = parse_sdp(oa.receive_offer(savp_offer() + b"a=sendonly\r\n"))
        [crypto] = held.media[0].get_all("crypto")
        self.assertIn(base64.b64encode(b"1" * 30).decode(), crypto or "")
        self.assertEqual(held.origin.session_version, 2)
        assert oa.stream is not None and oa.stream.local_crypto is not None
        self.assertEqual(oa.stream.local_crypto.key, b"1" * 30)

    def test_offer_under_required(self) -> None:
        """Our offer under required is SAVP with one key per suite; optional offers plain."""
        oa = srtp_negotiator(SRTP_REQUIRED)
        offer = parse_sdp(oa.create_offer())
        media = offer.media[0]
        self.assertEqual(media.proto, "RTP/SAVP")
        self.assertEqual(
            [(c or "").split()[:2] for c in media.get_all("crypto")],
            [["1", SUITE], ["2", "AES_CM_128_HMAC_SHA1_32"]],
        )
        plain = parse_sdp(srtp_negotiator().create_offer())
        self.assertEqual(plain.media[0].proto, "RTP/AVP")
        self.assertFalse(plain.media[0].has("crypto"))

    def test_answer_to_our_savp_offer(self) -> None:
        """The answer's crypto line picks one of ours by tag; its key is the peer's."""
        oa = srtp_negotiator(SRTP_REQUIRED)
        oa.create_offer()
        stream = oa.receive_answer(
            answer_sdp(
                "audio 8000 RTP/SAVP 0", f"a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{PHONE_KEY}"
            )
        )
        assert stream.local_crypto is not None and stream.remote_crypto is not None
        self.assertEqual((stream.local_crypto.tag, stream.local_crypto.key), (2, OUR_KEY))
        self.assertEqual(stream.remote_crypto.key, b"ABC" * 10)
        # A later offer of ours keeps the stream's one line and key.
        reoffer = parse_sdp(oa.create_offer("sendonly"))
        self.assertEqual(len(reoffer.media[0].get_all("crypto")), 1)

    def test_answer_without_crypto(self) -> None:
        """An answer to our SAVP offer keying nothing we offered is 488; the offer stays."""
        for extra in ("", f"a=crypto:9 {SUITE} inline:{PHONE_KEY}", "a=crypto:1 junk"):
            oa = srtp_negotiator(SRTP_REQUIRED)
            oa.create_offer()
            e = self.assertRaises(
                RemoteProtocolError, oa.receive_answer, answer_sdp("audio 8000 RTP/SAVP 0", extra)
            )
            self.assertEqual(e.status, 488)
            self.assertEqual(oa.state, OFFER_SENT)

    def test_unknown_policy(self) -> None:
        """An unknown policy is refused when the negotiator is made."""
        self.assertRaises(ValueError, srtp_negotiator, "sometimes")

    @settings(max_examples=200, deadline=None)
    @given(
        st.sampled_from(SRTP_POLICIES),
        st.sampled_from(["RTP/AVP", "RTP/SAVP"]),
        st.lists(
            st.one_of(
                st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80),
                st.builds(
                    "{} {} inline:{}{}".format,
                    st.integers(0, 10**10),
                    st.sampled_from([SUITE, "AES_CM_128_HMAC_SHA1_32", "NULL_HMAC_SHA1_80"]),
                    st.sampled_from([PHONE_KEY, PHONE_KEY[:-4], PHONE_KEY + "QUJD", "!" * 40]),
                    st.sampled_from(["", "|2^20", "|1:4", "|2^20|1:4", " KDR=1", " -X"]),
                ),
            ),
            max_size=4,
        ),
    )
    def test_any_crypto(self, policy: str, proto: str, values: List[str]) -> None:
        """Whatever the crypto lines, an offer is answered (secure only when keyed) or 488."""
        cryptos = "\n".join(f"a=crypto:{value}" for value in values)
        oa = srtp_negotiator(policy)
        try:
            answer = parse_sdp(oa.receive_offer(savp_offer(proto, cryptos)))
        except RemoteProtocolError as e:
            self.assertEqual(e.status, 488)
            return
        assert oa.stream is not None
        self.assertEqual(oa.stream.secure, answer.media[0].has("crypto"))
        self.assertTrue(oa.stream.secure or (proto == "RTP/AVP" and policy != SRTP_REQUIRED))


OPUS_OURS = replace(OPUS, fmtp="maxplaybackrate=16000;stereo=0")
WIDEBAND = (OPUS_OURS, G722, PCMU, PCMA, TELEPHONE_EVENT, TELEPHONE_EVENT_48K)


def wideband_negotiator() -> OfferAnswer:
    """A negotiator speaking Opus (with our fmtp), G.722, G.711 and both telephone-events."""
    return OfferAnswer(
        address="198.51.100.1", port=20000, session_id="4242", warn_agent=AGENT, codecs=WIDEBAND
    )


class WidebandTests(SynchronousTestCase):
    """
    Opus (dynamic payload type, fmtp) and G.722 (static 9) in offers and answers.
    """

    def answer(self, offer: bytes) -> Media:
        """Answer C{offer} with the wideband negotiator; its audio m-line."""
        self.oa = wideband_negotiator()
        return parse_sdp(self.oa.receive_offer(offer)).media[0]

    def test_linphone_opus(self) -> None:
        """Linphone's Opus 96 is answered first with our fmtp; its fmtp is kept for sending."""
        audio = self.answer(LINPHONE_OFFER)
        self.assertEqual(audio.formats, ["96", "0", "8", "101"])
        self.assertEqual(rtpmap_of(audio, "96"), ("opus", 48000, 2))
        self.assertEqual(fmtp_of(audio, "96"), "maxplaybackrate=16000;stereo=0")
        # telephone-event on Opus's clock rather than the 8 kHz one (RFC 4733 2.1).
        self.assertEqual(rtpmap_of(audio, "101"), ("telephone-event", 48000, 1))
        stream = self.oa.stream
        assert stream is not None
        self.assertEqual(stream.codecs, [(96, OPUS_OURS), (0, PCMU), (8, PCMA)])
        self.assertEqual((stream.telephone_event, stream.fmtp), (101, {96: "useinbandfec=1"}))

    def test_g711_callers_unchanged(self) -> None:
        """A G.711 offer gets the same answer whatever wideband codecs we speak."""
        for offer in (SIPP_OFFER, audio_offer("8 0 101", "a=rtpmap:101 telephone-event/8000")):
            plain = parse_sdp(negotiator().receive_offer(offer)).media[0]
            self.assertEqual(self.answer(offer), plain)

    def test_g722_static(self) -> None:
        """Payload type 9 without rtpmap is G.722 (RFC 3551); the offer's order rules."""
        audio = self.answer(audio_offer("9 0"))
        self.assertEqual(audio.formats, ["9", "0"])
        self.assertEqual(rtpmap_of(audio, "9"), ("G722", 8000, 1))
        stream = self.oa.stream
        assert stream is not None
        self.assertEqual(stream.codecs[0], (9, G722))

    def test_offerer_preference(self) -> None:
        """We send with the offerer's first choice among the codecs we speak."""
        opus = "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 stereo=1; maxaveragebitrate=20000"
        audio = self.answer(audio_offer("0 111 9", opus))
        self.assertEqual(audio.formats, ["0", "111", "9"])
        stream = self.oa.stream
        assert stream is not None
        self.assertEqual(stream.codecs[0], (0, PCMU))
        self.assertEqual(stream.fmtp, {111: "stereo=1; maxaveragebitrate=20000"})
        self.assertIsNone(fmtp_of(audio, "0"))

    def test_opus_mono_rtpmap_refused(self) -> None:
        """An rtpmap of opus/48000 (no /2) is not RFC 7587's Opus: not answered."""
        audio = self.answer(audio_offer("96 0", "a=rtpmap:96 opus/48000"))
        self.assertEqual(audio.formats, ["0"])

    def test_our_offer(self) -> None:
        """Our offer numbers Opus dynamically (96) with our fmtp, G.722 9, one telephone-event."""
        oa = wideband_negotiator()
        audio = parse_sdp(oa.create_offer()).media[0]
        self.assertEqual(audio.formats, ["96", "9", "0", "8", "101"])
        self.assertEqual(rtpmap_of(audio, "96"), ("opus", 48000, 2))
        self.assertEqual(fmtp_of(audio, "96"), "maxplaybackrate=16000;stereo=0")
        self.assertEqual(rtpmap_of(audio, "101"), ("telephone-event", 8000, 1))
        answer = crlf(
            """
            v=0
            o=phone 1 1 IN IP4 192.0.2.7
            s=-
            c=IN IP4 192.0.2.7
            t=0 0
            m=audio 8000 RTP/AVP 96 101
            a=rtpmap:96 opus/48000/2
            a=fmtp:96 useinbandfec=1
            a=rtpmap:101 telephone-event/8000
            """
        )
        stream = oa.receive_answer(answer)
        self.assertEqual((stream.codecs, stream.fmtp), ([(96, OPUS_OURS)], {96: "useinbandfec=1"}))
