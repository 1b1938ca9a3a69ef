# -*- test-case-name: tests.unit.test_sdp -*-
"""
Tests for L{conference.sdp}: parsing, refusing and serializing SDP.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Optional

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from conference.sdp import (
    Attribute,
    Bandwidth,
    Connection,
    Crypto,
    CryptoError,
    Media,
    Origin,
    SDPError,
    SessionDescription,
    Timing,
    addrtype_of,
    cryptos_of,
    direction_of,
    fmtp_of,
    parse_crypto,
    parse_sdp,
    rtpmap_of,
    serialize_sdp,
)
from conference.sip.errors import RemoteProtocolError


def crlf(text: str) -> bytes:
    """Join the lines of C{text} with CRLF, as SDP on the wire."""
    return "".join(line.strip() + "\r\n" for line in text.strip().splitlines()).encode()


# SIPp's built-in uac scenario, with [media_port] etc. filled in.
SIPP_OFFER = crlf(
    """
    v=0
    o=user1 53655765 2353687637 IN IP4 192.0.2.10
    s=-
    c=IN IP4 192.0.2.10
    t=0 0
    m=audio 6000 RTP/AVP 0
    a=rtpmap:0 PCMU/8000
    """
)

LINPHONE_OFFER = crlf(
    """
    v=0
    o=alice 1234 5678 IN IP4 192.0.2.20
    s=Talk
    c=IN IP4 192.0.2.20
    t=0 0
    a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics
    m=audio 7078 RTP/AVP 96 97 98 0 8 101 99 100
    a=rtpmap:96 opus/48000/2
    a=fmtp:96 useinbandfec=1
    a=rtpmap:97 speex/16000
    a=fmtp:97 vbr=on
    a=rtpmap:98 speex/8000
    a=fmtp:98 vbr=on
    a=rtpmap:101 telephone-event/48000
    a=rtpmap:99 telephone-event/16000
    a=rtpmap:100 telephone-event/8000
    a=rtcp-fb:* trr-int 1000
    m=video 9078 RTP/AVP 96 97
    a=rtpmap:96 VP8/90000
    a=rtpmap:97 H264/90000
    a=fmtp:97 profile-level-id=42801F
    a=rtcp-fb:* nack pli
    """
)

FIREFOX_TEMPLATE = """
    v=0
    o=mozilla...THIS_IS_SDPARTA-99.0 7426930532012405398 0 IN IP4 0.0.0.0
    s=-
    t=0 0
    a=fingerprint:sha-256 5B:0E:71:3C:AA:01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F
    a=group:BUNDLE 0 1
    a=ice-options:trickle
    a=msid-semantic:WMS *
    m=audio 54321 {proto} 109 9 0 8 101
    c=IN IP4 192.0.2.30
    a=candidate:0 1 UDP 2122252543 192.0.2.30 54321 typ host
    a=sendrecv
    a=end-of-candidates
    a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
    a=extmap:2/recvonly urn:ietf:params:rtp-hdrext:csrc-audio-level
    a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid
    a=fmtp:109 maxplaybackrate=48000;stereo=1;useinbandfec=1
    a=fmtp:101 0-15
    a=ice-pwd:9e9d3e1b3f4a5c6d7e8f9a0b1c2d3e4f
    a=ice-ufrag:3d2c1b0a
    a=mid:0
    a=msid:{{a1b2}} {{c3d4}}
    a=rtcp-mux
    a=rtpmap:109 opus/48000/2
    a=rtpmap:9 G722/8000/1
    a=rtpmap:0 PCMU/8000
    a=rtpmap:8 PCMA/8000
    a=rtpmap:101 telephone-event/8000/1
    a=setup:actpass
    a=ssrc:1234567 cname:{{e5f6}}
    m=video 54321 {proto} 120 124
    c=IN IP4 192.0.2.30
    a=recvonly
    a=mid:1
    a=rtpmap:120 VP8/90000
    a=rtpmap:124 H264/90000
    a=rtcp-fb:120 nack pli
    a=rtcp-mux
    """
FIREFOX_OFFER = crlf(FIREFOX_TEMPLATE.format(proto="UDP/TLS/RTP/SAVPF"))
FIREFOX_AVP_OFFER = crlf(FIREFOX_TEMPLATE.format(proto="RTP/AVP"))

FULL = crlf(
    """
    v=0
    o=jdoe 2890844526 2890842807 IN IP4 10.47.16.5
    s=SDP Seminar
    i=A Seminar on the session description protocol
    u=http://www.example.com/seminars/sdp.pdf
    e=j.doe@example.com (Jane Doe)
    p=+1 617 555-6011
    c=IN IP4 224.2.17.12/127
    b=CT:128
    t=2873397496 2873404696
    r=7d 1h 0 25h
    t=0 0
    z=2882844526 -1h 2898848070 0
    k=prompt
    a=recvonly
    m=audio 49170/2 RTP/AVP 0
    i=voice
    c=IN IP4 224.2.17.12/127
    c=IN IP4 224.2.17.13/127
    b=AS:64
    k=clear:secret
    a=ptime:20
    m=application 32416 udp wb
    a=orient:portrait
    a=x-unknown
    """
)


class ParseTests(SynchronousTestCase):
    """
    Real-world descriptions parse into the expected model.
    """

    def test_sipp(self) -> None:
        """SIPp's default offer parses: one PCMU audio stream."""
        sdp = parse_sdp(SIPP_OFFER)
        self.assertEqual(
            sdp.origin, Origin("user1", "53655765", 2353687637, "IN", "IP4", "192.0.2.10")
        )
        self.assertEqual(sdp.connection, Connection("IN", "IP4", "192.0.2.10"))
        self.assertEqual(len(sdp.media), 1)
        media = sdp.media[0]
        self.assertEqual(
            (media.media, media.port, media.proto, media.formats), ("audio", 6000, "RTP/AVP", ["0"])
        )
        self.assertEqual(rtpmap_of(media, "0"), ("PCMU", 8000, 1))

    def test_linphone(self) -> None:
        """A Linphone-like offer keeps its two media and their attributes."""
        sdp = parse_sdp(LINPHONE_OFFER)
        self.assertEqual([m.media for m in sdp.media], ["audio", "video"])
        audio = sdp.media[0]
        self.assertEqual(rtpmap_of(audio, "96"), ("opus", 48000, 2))
        self.assertEqual(fmtp_of(audio, "97"), "vbr=on")
        self.assertIsNone(fmtp_of(audio, "0"))
        self.assertEqual(
            sdp.get("rtcp-xr"), "rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics"
        )

    def test_firefox(self) -> None:
        """A Firefox-like offer with ICE and DTLS attributes parses; per-media c= wins."""
        sdp = parse_sdp(FIREFOX_OFFER)
        self.assertIsNone(sdp.connection)
        audio = sdp.media[0]
        self.assertEqual(audio.proto, "UDP/TLS/RTP/SAVPF")
        self.assertEqual(sdp.connection_for(audio), Connection("IN", "IP4", "192.0.2.30"))
        self.assertTrue(audio.has("rtcp-mux"))
        self.assertIsNone(audio.get("rtcp-mux"))
        self.assertEqual(
            audio.get_all("extmap")[1], "2/recvonly urn:ietf:params:rtp-hdrext:csrc-audio-level"
        )
        self.assertEqual(rtpmap_of(audio, "101"), ("telephone-event", 8000, 1))
        self.assertEqual(direction_of(sdp, sdp.media[1]), "recvonly")

    def test_every_line_type(self) -> None:
        """Every RFC 8866 line type lands in its field, at session and media level."""
        sdp = parse_sdp(FULL)
        self.assertEqual(sdp.information, "A Seminar on the session description protocol")
        self.assertEqual(sdp.uri, "http://www.example.com/seminars/sdp.pdf")
        self.assertEqual(sdp.emails, ["j.doe@example.com (Jane Doe)"])
        self.assertEqual(sdp.phones, ["+1 617 555-6011"])
        self.assertEqual(sdp.bandwidths, [Bandwidth("CT", 128)])
        self.assertEqual(
            sdp.timings, [Timing(2873397496, 2873404696, ["7d 1h 0 25h"]), Timing(0, 0, [])]
        )
        self.assertEqual(sdp.zone, "2882844526 -1h 2898848070 0")
        self.assertEqual(sdp.key, "prompt")
        audio, app = sdp.media
        self.assertEqual((audio.port, audio.port_count, audio.information), (49170, 2, "voice"))
        self.assertEqual(len(audio.connections), 2)
        self.assertEqual(audio.bandwidths, [Bandwidth("AS", 64)])
        self.assertEqual(audio.key, "clear:secret")
        self.assertEqual(app.formats, ["wb"])
        self.assertEqual(app.attributes[-1], Attribute("x-unknown"))
        self.assertEqual(direction_of(sdp, audio), "recvonly")

    def test_lf_only(self) -> None:
        """Bare LF line ends give the same description as CRLF."""
        self.assertEqual(parse_sdp(SIPP_OFFER.replace(b"\r\n", b"\n")), parse_sdp(SIPP_OFFER))

    def test_order_lenient(self) -> None:
        """Known lines out of the RFC order are taken and put back in order."""
        text = SIPP_OFFER.replace(
            b"c=IN IP4 192.0.2.10\r\nt=0 0\r\n", b"t=0 0\r\nc=IN IP4 192.0.2.10\r\n"
        )
        self.assertEqual(serialize_sdp(parse_sdp(text)), SIPP_OFFER)

    def test_trailing_blanks(self) -> None:
        """Trailing blanks on o=, c=, t= and m= lines are taken."""
        text = SIPP_OFFER
        for line in (b"v=0", b"192.0.2.10", b"t=0 0", b"RTP/AVP 0"):
            text = text.replace(line + b"\r\n", line + b" \t\r\n")
        self.assertEqual(serialize_sdp(parse_sdp(text)), SIPP_OFFER)

    def test_rejected_stream_without_formats(self) -> None:
        """A disabled stream (port 0) may list no format and needs no c=."""
        sdp = parse_sdp(crlf("v=0\no=- 1 1 IN IP4 h\ns=-\nt=0 0\nm=video 0 RTP/AVP"))
        self.assertEqual(sdp.media[0].formats, [])

    def test_default_direction(self) -> None:
        """Without a direction attribute a stream is sendrecv."""
        sdp = parse_sdp(SIPP_OFFER)
        self.assertEqual(direction_of(sdp, sdp.media[0]), "sendrecv")

    def test_malformed_rtpmap(self) -> None:
        """A malformed rtpmap is not an error, just unknown."""
        sdp = parse_sdp(SIPP_OFFER.replace(b"PCMU/8000", b"PCMU/fast"))
        self.assertIsNone(rtpmap_of(sdp.media[0], "0"))

    def test_addrtype(self) -> None:
        """IPv6 literals are IP6, anything else IP4."""
        self.assertEqual((addrtype_of("::1"), addrtype_of("192.0.2.1")), ("IP6", "IP4"))


class RoundTripTests(SynchronousTestCase):
    """
    Serializing gives back the bytes that were parsed.
    """

    def test_samples(self) -> None:
        """The real-world samples serialize to exactly their own bytes."""
        for sample in (SIPP_OFFER, LINPHONE_OFFER, FIREFOX_OFFER, FULL):
            self.assertEqual(serialize_sdp(parse_sdp(sample)), sample)

    def test_non_utf8(self) -> None:
        """Bytes that are not UTF-8 (a Latin-1 session name) round-trip unchanged."""
        sample = SIPP_OFFER.replace(b"s=-", b"s=Caf\xe9 \xc3\xa9")
        self.assertEqual(parse_sdp(sample).to_bytes(), sample)


_TOKEN_CHARS = "!#$%&'*+-.^_`{|}~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
tokens = st.text(alphabet=_TOKEN_CHARS, min_size=1, max_size=8)
texts = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\x00\r\n"),
    max_size=12,
)
words = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\x00\r\n \t"),
    min_size=1,
    max_size=12,
)
connections = st.builds(Connection, tokens, tokens, words)
bandwidths = st.builds(Bandwidth, tokens, st.integers(0, 10**18 - 1))
attributes = st.builds(Attribute, tokens, st.one_of(st.none(), texts))


@st.composite
def media_sections(draw: Callable[..., Any]) -> Media:
    """A media description with RTP or non-RTP formats."""
    proto = draw(st.sampled_from(["RTP/AVP", "UDP/TLS/RTP/SAVPF", "udp", "TCP/MRCPv2"]))
    fmt = st.integers(0, 127).map(str) if "RTP" in proto else tokens
    return Media(
        draw(tokens),
        draw(st.integers(1, 65535)),
        proto,
        draw(st.lists(fmt, min_size=1, max_size=5)),
        port_count=draw(st.one_of(st.none(), st.integers(1, 65535))),
        information=draw(st.one_of(st.none(), texts)),
        connections=draw(st.lists(connections, max_size=2)),
        bandwidths=draw(st.lists(bandwidths, max_size=2)),
        key=draw(st.one_of(st.none(), texts)),
        attributes=draw(st.lists(attributes, max_size=5)),
    )


def _optional(strategy: Any) -> Any:
    return st.one_of(st.none(), strategy)


descriptions = st.builds(
    SessionDescription,
    origin=st.builds(
        Origin, words, st.integers(0, 2**64).map(str), st.integers(0, 2**64), tokens, tokens, words
    ),
    name=texts,
    information=_optional(texts),
    uri=_optional(texts),
    emails=st.lists(texts, max_size=2),
    phones=st.lists(texts, max_size=2),
    connection=connections,
    bandwidths=st.lists(bandwidths, max_size=2),
    timings=st.lists(
        st.builds(
            Timing, st.integers(0, 2**40), st.integers(0, 2**40), st.lists(texts, max_size=2)
        ),
        min_size=1,
        max_size=2,
    ),
    zone=_optional(texts),
    key=_optional(texts),
    attributes=st.lists(attributes, max_size=4),
    media=st.lists(media_sections(), max_size=4),
)


class PropertyTests(SynchronousTestCase):
    """
    Round trips over generated descriptions, and no stray exceptions.
    """

    @settings(max_examples=200, deadline=None)
    @given(descriptions)
    def test_round_trip(self, sdp: SessionDescription) -> None:
        """Any description parses back to itself after serializing."""
        self.assertEqual(parse_sdp(serialize_sdp(sdp)), sdp)

    @settings(max_examples=200, deadline=None)
    @given(st.binary(max_size=300))
    def test_garbage(self, data: bytes) -> None:
        """Arbitrary bytes either parse or raise SDPError, nothing else."""
        try:
            parse_sdp(b"v=0\r\n" + data)
        except SDPError as e:
            self.assertEqual(e.status, 400)

    @settings(max_examples=200, deadline=None)
    @given(st.integers(0, len(FULL)))
    def test_truncated(self, cut: int) -> None:
        """Any prefix of a valid description parses or raises SDPError."""
        try:
            parse_sdp(FULL[:cut])
        except SDPError as e:
            self.assertTrue(e.reason.startswith("Bad SDP: "))


class RefusalTests(SynchronousTestCase):
    """
    Malformed descriptions become a 400 naming the fault.
    """

    def assertRefused(self, data: bytes, reason: str, **caps: int) -> None:
        """Parsing C{data} raises a 400 whose reason contains C{reason}."""
        e = self.assertRaises(SDPError, parse_sdp, data, **caps)
        self.assertIsInstance(e, RemoteProtocolError)
        self.assertEqual(e.status, 400)
        self.assertIn(reason, e.reason)

    def swap(self, old: str, new: str) -> bytes:
        """The SIPp offer with one line replaced."""
        result = SIPP_OFFER.replace(old.encode() + b"\r\n", new.encode())
        assert result != SIPP_OFFER, old
        return result

    def test_empty(self) -> None:
        """An empty body is refused."""
        self.assertRefused(b"\r\n", "description is empty")

    def test_too_large(self) -> None:
        """A body over the size cap is refused."""
        self.assertRefused(SIPP_OFFER, "longer than 100 bytes", max_size=100)

    def test_too_many_lines(self) -> None:
        """A body over the line cap is refused."""
        self.assertRefused(SIPP_OFFER, "more than 5 lines", max_lines=5)

    def test_too_many_media(self) -> None:
        """More media than the cap are refused."""
        self.assertRefused(LINPHONE_OFFER, "more than 1 media", max_media=1)

    def test_version(self) -> None:
        """The first line must be v=0."""
        self.assertRefused(SIPP_OFFER.replace(b"v=0", b"v=1"), "first line must be v=0")

    def test_not_type_value(self) -> None:
        """A line that is not x=value is refused, naming its number."""
        self.assertRefused(self.swap("s=-", "s=-\r\nhello\r\n"), "line 4 is not <type>=<value>")

    def test_upper_case_type(self) -> None:
        """Type letters are lower case."""
        self.assertRefused(self.swap("s=-", "S=-\r\n"), "line 3 is not")

    def test_unknown_type(self) -> None:
        """An unknown type letter is refused (RFC 8866 section 5)."""
        self.assertRefused(self.swap("s=-", "s=-\r\nx=1\r\n"), "unknown line type x=")

    def test_nul(self) -> None:
        """A NUL inside a line is refused."""
        self.assertRefused(self.swap("s=-", "s=a\x00b\r\n"), "NUL")

    def test_missing(self) -> None:
        """o=, s= and t= are required."""
        self.assertRefused(self.swap("o=user1 53655765 2353687637 IN IP4 192.0.2.10", ""), "no o=")
        self.assertRefused(self.swap("s=-", ""), "no s=")
        self.assertRefused(self.swap("t=0 0", ""), "no t=")

    def test_repeated(self) -> None:
        """A line allowed once per section is refused when repeated."""
        self.assertRefused(self.swap("s=-", "s=-\r\ns=again\r\n"), "more than one s= line")
        self.assertRefused(
            self.swap("a=rtpmap:0 PCMU/8000", "i=a\r\ni=b\r\n"), "more than one i= line in a media"
        )

    def test_second_version(self) -> None:
        """v= only comes first."""
        self.assertRefused(self.swap("s=-", "s=-\r\nv=0\r\n"), "v= may only be the first line")

    def test_origin(self) -> None:
        """o= needs six fields and numbers where numbers go."""
        self.assertRefused(
            self.swap("o=user1 53655765 2353687637 IN IP4 192.0.2.10", "o=a 1 2 IN IP4\r\n"),
            "o= needs 6 fields",
        )
        self.assertRefused(
            self.swap("o=user1 53655765 2353687637 IN IP4 192.0.2.10", "o=a x 2 IN IP4 h\r\n"),
            "session id 'x'",
        )
        self.assertRefused(
            self.swap("o=user1 53655765 2353687637 IN IP4 192.0.2.10", "o=a 1 v IN IP4 h\r\n"),
            "session version 'v'",
        )

    def test_connection(self) -> None:
        """c= needs three fields."""
        self.assertRefused(self.swap("c=IN IP4 192.0.2.10", "c=IN IP4\r\n"), "c= needs 3 fields")

    def test_no_connection(self) -> None:
        """A live stream needs a c= line somewhere."""
        self.assertRefused(self.swap("c=IN IP4 192.0.2.10", ""), "media 1 has no c= line")

    def test_bandwidth(self) -> None:
        """b= must be type:number."""
        self.assertRefused(self.swap("t=0 0", "b=AS:fast\r\nt=0 0\r\n"), "b= must be")

    def test_timing(self) -> None:
        """t= needs two numbers, and r= follows a t=."""
        self.assertRefused(self.swap("t=0 0", "t=0 x\r\n"), "t= stop 'x'")
        self.assertRefused(self.swap("t=0 0", "r=1 2 3\r\nt=0 0\r\n"), "r= before any t=")

    def test_attribute_name(self) -> None:
        """An attribute name must be a token."""
        self.assertRefused(
            self.swap("a=rtpmap:0 PCMU/8000", "a=rtp map:0\r\n"), "'rtp map' is not a token"
        )

    def test_media_line(self) -> None:
        """m= lines are checked field by field."""
        self.assertRefused(self.swap("m=audio 6000 RTP/AVP 0", "m=audio 6000\r\n"), "m= needs")
        self.assertRefused(
            self.swap("m=audio 6000 RTP/AVP 0", "m=audio 70000 RTP/AVP 0\r\n"), "out of range"
        )
        self.assertRefused(
            self.swap("m=audio 6000 RTP/AVP 0", "m=audio x RTP/AVP 0\r\n"), "port 'x'"
        )
        self.assertRefused(
            self.swap("m=audio 6000 RTP/AVP 0", "m=audio 6000 RTP/AVP\r\n"), "lists no formats"
        )
        self.assertRefused(
            self.swap("m=audio 6000 RTP/AVP 0", "m=audio 6000 RTP/AVP 200\r\n"),
            "'200' is not 0-127",
        )
        self.assertRefused(
            self.swap("m=audio 6000 RTP/AVP 0", "m=audio 6000 RTP/AVP PCMU\r\n"),
            "'PCMU' is not 0-127",
        )

    def test_session_line_in_media(self) -> None:
        """Session-only lines inside a media section are refused."""
        self.assertRefused(
            self.swap("a=rtpmap:0 PCMU/8000", "s=x\r\n"), "s= line is not allowed in a media"
        )


def _first(values: list[Optional[str]]) -> Optional[str]:
    return values[0] if values else None


class AttributeTests(SynchronousTestCase):
    """
    Attribute look-ups.
    """

    def test_lookups(self) -> None:
        """get, get_all and has see properties and values, in order."""
        media = Media(attributes=[Attribute("a", "1"), Attribute("b"), Attribute("a", "2")])
        self.assertEqual(media.get_all("a"), ["1", "2"])
        self.assertEqual((media.get("a"), media.get("b"), media.get("c")), ("1", None, None))
        self.assertTrue(media.has("b"))
        self.assertFalse(media.has("c"))
        self.assertEqual(_first(media.get_all("a")), "1")
        self.assertEqual(str(Attribute("x", "")), "x:")


KEY = "QUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJDQUJDRA=="  # 31 bytes: one too many
GOOD_KEY = "QUJD" * 10  # b"ABC" * 10


class CryptoTests(SynchronousTestCase):
    """
    SDES a=crypto lines (RFC 4568): what parses, what is refused and why.
    """

    def test_parse(self) -> None:
        """A plain line gives its tag, suite and the 30 bytes of key and salt."""
        crypto = parse_crypto(f"1 AES_CM_128_HMAC_SHA1_80 inline:{GOOD_KEY}")
        self.assertEqual(crypto, Crypto(1, "AES_CM_128_HMAC_SHA1_80", b"ABC" * 10, None, ()))
        self.assertEqual(str(crypto), f"1 AES_CM_128_HMAC_SHA1_80 inline:{GOOD_KEY}")
        self.assertEqual(crypto.attribute(), Attribute("crypto", str(crypto)))

    def test_lifetime_and_params(self) -> None:
        """Lifetimes (2^n or decimal), KDR=0, WSH and '-' parameters are taken."""
        crypto = parse_crypto(f"7 AES_CM_128_HMAC_SHA1_32 inline:{GOOD_KEY}|2^31 KDR=0 WSH=64 -X=1")
        self.assertEqual((crypto.tag, crypto.lifetime), (7, 2**31))
        self.assertEqual(crypto.params, ("KDR=0", "WSH=64", "-X=1"))
        self.assertEqual(
            parse_crypto(f"2 AES_CM_128_HMAC_SHA1_80 inline:{GOOD_KEY}|1000").lifetime, 1000
        )

    def test_unusable(self) -> None:
        """Malformed or unsupported lines raise CryptoError saying why."""
        suite = "AES_CM_128_HMAC_SHA1_80"
        cases = {
            f"1 {suite} inline:{KEY}": "31 bytes",
            f"1 {suite} inline:{GOOD_KEY[:-4]}": "27 bytes",
            f"1 {suite} inline:{GOOD_KEY[:-1]}!": "not base64",
            f"1 {suite} inline:%%%%": "not base64",
            f"1 AES_256_CM_HMAC_SHA1_80 inline:{GOOD_KEY}": "not supported",
            f"1 {suite} uri:http://example.com/key": "not inline",
            f"1 {suite} inline:{GOOD_KEY}|2^20|1:4": "MKI",
            f"1 {suite} inline:{GOOD_KEY}|1:4": "MKI",
            f"1 {suite} inline:{GOOD_KEY}|2^99": "lifetime",
            f"1 {suite} inline:{GOOD_KEY}|0": "lifetime",
            f"1 {suite} inline:{GOOD_KEY}|2^20|2^20": "malformed",
            f"1 {suite} inline:{GOOD_KEY}|x": "malformed",
            f"1 {suite} inline:{GOOD_KEY};inline:{GOOD_KEY}": "more than one key",
            f"1 {suite} inline:{GOOD_KEY} UNENCRYPTED_SRTP": "UNENCRYPTED_SRTP",
            f"1 {suite} inline:{GOOD_KEY} KDR=24": "KDR",
            f"1234567890 {suite} inline:{GOOD_KEY}": "malformed",
            f"{suite} inline:{GOOD_KEY}": "malformed",
            "": "malformed",
        }
        for value, why in cases.items():
            e = self.assertRaises(CryptoError, parse_crypto, value)
            self.assertIn(why, str(e), value)
            self.assertNotIn('"', str(e))
        self.assertRaises(CryptoError, parse_crypto, None)

    def test_cryptos_of(self) -> None:
        """The usable lines in order, a repeated tag skipped, the first reason kept."""
        media = Media("audio", 4000, "RTP/SAVP", ["0"])
        for value in (
            f"1 AES_256_CM_HMAC_SHA1_80 inline:{GOOD_KEY}",
            f"2 AES_CM_128_HMAC_SHA1_32 inline:{GOOD_KEY}",
            f"2 AES_CM_128_HMAC_SHA1_80 inline:{GOOD_KEY}",
            f"3 AES_CM_128_HMAC_SHA1_80 inline:{GOOD_KEY}",
        ):
            media.attributes.append(Attribute("crypto", value))
        usable, reason = cryptos_of(media)
        self.assertEqual([(c.tag, c.suite[-2:]) for c in usable], [(2, "32"), (3, "80")])
        self.assertEqual(reason, "crypto suite AES_256_CM_HMAC_SHA1_80 is not supported")
        self.assertEqual(cryptos_of(Media()), ([], None))

    @given(st.text(max_size=120))
    @settings(max_examples=300, deadline=None)
    def test_fuzz(self, value: str) -> None:
        """Any text parses or raises CryptoError, nothing else."""
        with contextlib.suppress(CryptoError):
            parse_crypto(value)
