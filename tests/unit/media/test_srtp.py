# -*- test-case-name: tests.unit.media.test_srtp -*-
"""
Tests for L{conference.media.srtp}: SRTP and SRTCP protection keyed from
SDES, tampering, replays, rekeying.
"""

from __future__ import annotations

import random
from typing import Tuple

from twisted.trial.unittest import SynchronousTestCase

from conference.media.rtcp import build_report, build_sdes, parse_rtcp
from conference.media.rtp import build_rtp, parse_rtp
from conference.media.srtp import REPLAY_WINDOW, SRTPContext, SRTPError, SRTPKeys, available
from conference.sdp import SRTP_SUITES, parse_crypto

SUITE_80 = "AES_CM_128_HMAC_SHA1_80"
SUITE_32 = "AES_CM_128_HMAC_SHA1_32"


def key(seed: int) -> bytes:
    """A 30-byte master key and salt drawn from C{seed}."""
    return random.Random(seed).randbytes(30)


def pair(suite: str = SUITE_80) -> Tuple[SRTPContext, SRTPContext]:
    """Our context and the peer's, keyed for each other."""
    ours = SRTPContext(SRTPKeys(suite, key(1), key(2)))
    theirs = SRTPContext(SRTPKeys(suite, key(2), key(1)))
    return ours, theirs


def packet(sequence: int, ssrc: int = 0x1234) -> bytes:
    """An RTP packet of 160 bytes of PCMU silence."""
    return build_rtp(0, sequence, 160 * sequence, ssrc, b"\xff" * 160)


class SRTPContextTests(SynchronousTestCase):
    """
    Protecting and unprotecting one participant's packets.
    """

    def test_available(self) -> None:
        """pylibsrtp is a dependency: SRTP is available."""
        self.assertTrue(available())

    def test_round_trip(self) -> None:
        """What one side protects the other unprotects, for both suites, RTP and RTCP."""
        for suite, tag in ((SUITE_80, 10), (SUITE_32, 4)):
            ours, theirs = pair(suite)
            plain = packet(1)
            protected = ours.protect(plain)
            self.assertEqual(len(protected), len(plain) + tag)
            self.assertNotEqual(protected[12:172], plain[12:])  # the payload is encrypted
            self.assertEqual(theirs.unprotect(protected), plain)
            self.assertEqual(ours.unprotect(theirs.protect(packet(7, 99))), packet(7, 99))
            rtcp = build_report(0x1234, None) + build_sdes(0x1234, "me@example")
            # SRTCP: 4-byte index, 80-bit tag for both suites (RFC 4568 6.2.2).
            sealed = ours.protect_rtcp(rtcp)
            self.assertEqual(len(sealed), len(rtcp) + 14)
            self.assertEqual(len(parse_rtcp(theirs.unprotect_rtcp(sealed))), 2)

    def test_tampering(self) -> None:
        """A flipped bit anywhere fails authentication."""
        ours, theirs = pair()
        protected = bytearray(ours.protect(packet(1)))
        for index in (2, 20, len(protected) - 1):
            forged = bytearray(protected)
            forged[index] ^= 0x01
            e = self.assertRaises(SRTPError, theirs.unprotect, bytes(forged))
            self.assertEqual(e.reason, "unauthenticated")
        self.assertEqual(parse_rtp(theirs.unprotect(bytes(protected))).sequence, 1)

    def test_wrong_key(self) -> None:
        """A packet under another key, and plain RTP, fail authentication."""
        _, theirs = pair()
        stranger = SRTPContext(SRTPKeys(SUITE_80, key(3), key(4)))
        for data in (stranger.protect(packet(1)), packet(2)):
            e = self.assertRaises(SRTPError, theirs.unprotect, data)
            self.assertEqual(e.reason, "unauthenticated")

    def test_replay(self) -> None:
        """A packet seen before, or older than the replay window, is a replay."""
        ours, theirs = pair()
        first = ours.protect(packet(1))
        theirs.unprotect(first)
        e = self.assertRaises(SRTPError, theirs.unprotect, first)
        self.assertEqual(e.reason, "replayed")
        old = ours.protect(packet(2))
        for n in range(3, REPLAY_WINDOW + 10):
            theirs.unprotect(ours.protect(packet(n)))
        e = self.assertRaises(SRTPError, theirs.unprotect, old)
        self.assertEqual(e.reason, "replayed")
        rtcp = ours.protect_rtcp(build_report(0x1234, None))
        theirs.unprotect_rtcp(rtcp)
        e = self.assertRaises(SRTPError, theirs.unprotect_rtcp, rtcp)
        self.assertEqual(e.reason, "replayed")

    def test_reordering_within_window(self) -> None:
        """Late packets within the window are taken, in any order."""
        ours, theirs = pair()
        packets = [ours.protect(packet(n)) for n in range(1, 21)]
        for data in reversed(packets):
            theirs.unprotect(data)

    def test_malformed(self) -> None:
        """Too short and too long datagrams are malformed, never another exception."""
        _, theirs = pair()
        for data in (b"", b"\x80", b"\x80" * 11, bytes(4000)):
            e = self.assertRaises(SRTPError, theirs.unprotect, data)
            self.assertIn(e.reason, ("malformed", "unauthenticated"))
            e = self.assertRaises(SRTPError, theirs.unprotect_rtcp, data)
            self.assertIn(e.reason, ("malformed", "unauthenticated"))
        self.assertEqual(self.assertRaises(SRTPError, theirs.unprotect, b"").reason, "malformed")

    def test_sequence_wrap(self) -> None:
        """The rollover counter carries the stream past sequence number 65535."""
        ours, theirs = pair()
        for n in range(65530, 65546):
            data = ours.protect(packet(n & 0xFFFF))
            self.assertEqual(parse_rtp(theirs.unprotect(data)).sequence, n & 0xFFFF)

    def test_rekey_keeps_unchanged_direction(self) -> None:
        """A new peer key rebuilds only the inbound side: our stream's state goes on."""
        ours, theirs = pair()
        theirs.unprotect(ours.protect(packet(1)))
        ours.rekey(SRTPKeys(SUITE_80, key(1), key(5)))
        # Our outbound context kept its replay and rollover state: seq 2 is fresh.
        theirs.unprotect(ours.protect(packet(2)))
        e = self.assertRaises(SRTPError, ours.unprotect, theirs.protect(packet(3)))
        self.assertEqual(e.reason, "unauthenticated")
        peer = SRTPContext(SRTPKeys(SUITE_80, key(5), key(1)))
        self.assertEqual(ours.unprotect(peer.protect(packet(4))), packet(4))
        same = ours.keys
        ours.rekey(same)
        self.assertIs(ours.keys, same)

    def test_rekey_suite(self) -> None:
        """A new suite rebuilds both directions."""
        ours, _ = pair()
        ours.rekey(SRTPKeys(SUITE_32, key(1), key(2)))
        theirs = SRTPContext(SRTPKeys(SUITE_32, key(2), key(1)))
        self.assertEqual(len(ours.protect(packet(1))), len(packet(1)) + 4)
        self.assertEqual(ours.unprotect(theirs.protect(packet(1))), packet(1))

    def test_keys_checked_and_hidden(self) -> None:
        """Keys of the wrong size or an unknown suite are refused; repr shows no key."""
        self.assertRaises(ValueError, SRTPKeys, SUITE_80, key(1)[:29], key(2))
        self.assertRaises(ValueError, SRTPKeys, "F8_128_HMAC_SHA1_80", key(1), key(2))
        keys = SRTPKeys(SUITE_80, key(1), key(2))
        self.assertEqual(repr(keys), f"<SRTPKeys {SUITE_80}>")
        self.assertEqual(set(SRTP_SUITES), {SUITE_80, SUITE_32})

    def test_key_from_sdp(self) -> None:
        """Keys read from a=crypto lines key contexts that talk to each other."""
        offered = parse_crypto("1 AES_CM_128_HMAC_SHA1_80 inline:" + "QUJD" * 10)
        answered = parse_crypto("1 AES_CM_128_HMAC_SHA1_80 inline:" + "WFla" * 10)
        self.assertEqual(offered.key, b"ABC" * 10)
        phone = SRTPContext(SRTPKeys(offered.suite, offered.key, answered.key))
        server = SRTPContext(SRTPKeys(answered.suite, answered.key, offered.key))
        self.assertEqual(server.unprotect(phone.protect(packet(9))), packet(9))
        self.assertEqual(phone.unprotect(server.protect(packet(10))), packet(10))
