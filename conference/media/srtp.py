# -*- test-case-name: tests.unit.media.test_srtp -*-
"""
SRTP and SRTCP (RFC 3711) for one participant, sans-I/O, over libsrtp
through C{pylibsrtp}: the keys come from SDES (RFC 4568, the C{a=crypto}
lines of L{conference.sdp}), one master key per direction.

An L{SRTPContext} protects what we send with our key and checks and
decrypts what the peer sends with theirs.  libsrtp keeps the rollover
counter and the replay window of each stream, so a context lives as long
as the participant's stream: a re-INVITE that keeps a key keeps its
context (L{SRTPContext.rekey} rebuilds only the direction whose key
changed), or the rollover counter would restart and packets after a
sequence wrap would fail.

A stranger's packets fail authentication before anything reads them;
libsrtp only creates a stream for a new SSRC after a packet of it
authenticated, so a flood of forged SSRCs costs no memory.  Failures are
L{SRTPError}s telling replays from forgeries; the caller counts and drops.

C{pylibsrtp} ships wheels with libsrtp built in for CPython and PyPy 3.9
(0.10 is the last with PyPy wheels: C{.ci/pypy-constraints.txt}); where it cannot be imported,
L{available} is false and the media service refuses SRTP offers (488).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from conference.sdp import SRTP_SUITES

try:
    import pylibsrtp
except ImportError:  # pragma: no cover - pylibsrtp is a dependency
    pylibsrtp = None  # type: ignore[assignment]

#: libsrtp's profile of each suite of L{SRTP_SUITES}, by name.  For
#: C{_32}, SRTCP still carries an 80-bit tag (RFC 4568 section 6.2.2);
#: libsrtp's profile does so.
_PROFILES = {
    "AES_CM_128_HMAC_SHA1_80": "SRTP_PROFILE_AES128_CM_SHA1_80",
    "AES_CM_128_HMAC_SHA1_32": "SRTP_PROFILE_AES128_CM_SHA1_32",
}
#: How far back a late packet is still taken (RFC 3711 section 3.3.2
#: asks for at least 64); 1 s of audio.
REPLAY_WINDOW = 64


def available() -> bool:
    """Whether SRTP can be used here (C{pylibsrtp} imports)."""
    return pylibsrtp is not None


class SRTPError(Exception):
    """
    A packet that cannot be protected or unprotected.

    @ivar reason: C{replayed} (seen before, or older than the replay
        window), C{unauthenticated} (the tag does not verify: forged,
        tampered or not SRTP at all) or C{malformed} (too short, too long).
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class SRTPKeys:
    """
    The keys of one SRTP session: the suite and the master key plus salt
    each side sends with (C{local} ours, C{remote} the peer's).
    """

    suite: str
    local: bytes
    remote: bytes

    def __post_init__(self) -> None:
        if self.suite not in _PROFILES:
            raise ValueError(f"crypto suite {self.suite!r} is not supported")
        size = sum(SRTP_SUITES[self.suite])
        for key in (self.local, self.remote):
            if len(key) != size:
                raise ValueError(f"{self.suite} needs {size}-byte keys, got {len(key)}")

    def __repr__(self) -> str:  # never log keys
        return f"<SRTPKeys {self.suite}>"


def _apply(operation: Callable[[bytes], bytes], packet: bytes) -> bytes:
    """
    C{operation(packet)}, its failure (C{pylibsrtp.Error}, or
    C{ValueError} for a packet too long) raised as an L{SRTPError} whose
    reason libsrtp's message tells.
    """
    try:
        return operation(packet)
    except Exception as e:
        detail = str(e)
        if "replay" in detail:
            reason = "replayed"
        elif "auth" in detail:
            reason = "unauthenticated"
        else:
            reason = "malformed"
        raise SRTPError(reason, detail) from None


class SRTPContext:
    """
    Protect and unprotect one participant's RTP and RTCP.

    @ivar keys: the L{SRTPKeys} in use.
    """

    def __init__(self, keys: SRTPKeys, window: int = REPLAY_WINDOW) -> None:
        """
        @raise RuntimeError: SRTP is not L{available}.
        """
        if pylibsrtp is None:
            raise RuntimeError("SRTP is not available: pylibsrtp cannot be imported")
        self._window = window
        self.keys = keys
        self._tx = self._session(keys.suite, keys.local, outbound=True)
        self._rx = self._session(keys.suite, keys.remote, outbound=False)

    def _session(self, suite: str, key: bytes, *, outbound: bool) -> pylibsrtp.Session:
        Policy = pylibsrtp.Policy
        policy = Policy(
            key=key,
            ssrc_type=Policy.SSRC_ANY_OUTBOUND if outbound else Policy.SSRC_ANY_INBOUND,
            srtp_profile=getattr(Policy, _PROFILES[suite]),
        )
        policy.window_size = self._window
        return pylibsrtp.Session(policy)

    def rekey(self, keys: SRTPKeys) -> None:
        """
        Use C{keys} from now on, rebuilding only the directions whose key
        (or the suite) changed, so an unchanged stream keeps its rollover
        counter and replay window.
        """
        if keys == self.keys:
            return
        same_suite = keys.suite == self.keys.suite
        if not same_suite or keys.local != self.keys.local:
            self._tx = self._session(keys.suite, keys.local, outbound=True)
        if not same_suite or keys.remote != self.keys.remote:
            self._rx = self._session(keys.suite, keys.remote, outbound=False)
        self.keys = keys

    def protect(self, packet: bytes) -> bytes:
        """
        Encrypt and authenticate an RTP packet we send.  (libsrtp fails
        only on packets over ~1500 bytes, which the mixer never makes, or
        after 2^48 packets under one key.)
        """
        return _apply(self._tx.protect, packet)

    def protect_rtcp(self, packet: bytes) -> bytes:
        """Encrypt and authenticate a compound RTCP packet we send."""
        return _apply(self._tx.protect_rtcp, packet)

    def unprotect(self, packet: bytes) -> bytes:
        """
        Check and decrypt an SRTP packet from the peer.

        @raise SRTPError: replayed, unauthenticated or malformed.
        """
        return _apply(self._rx.unprotect, packet)

    def unprotect_rtcp(self, packet: bytes) -> bytes:
        """
        Check and decrypt an SRTCP packet from the peer.

        @raise SRTPError: replayed, unauthenticated or malformed.
        """
        return _apply(self._rx.unprotect_rtcp, packet)


__all__ = ["REPLAY_WINDOW", "SRTPContext", "SRTPError", "SRTPKeys", "available"]
