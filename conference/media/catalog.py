# -*- test-case-name: tests.unit.media.test_catalog -*-
"""
The voice codecs this installation speaks: G.711 always, G.722 and Opus
where their binding works (L{conference.media.wideband}).  A codec that
is missing is not offered or accepted in SDP, so a peer that offers only
it is answered 488 and one that offers others gets one of those.
"""

from __future__ import annotations

from functools import cache
from typing import Callable, Dict, List, Optional, Tuple

from twisted.logger import Logger

from conference.media import wideband
from conference.media.codecs import PCMA, PCMU, AudioCodec

log = Logger()


def usable(why_not: Callable[[AudioCodec], Optional[str]]) -> Tuple[AudioCodec, ...]:
    """
    The codecs of which C{why_not} finds nothing missing, best first (Opus,
    G.722, PCMU, PCMA; G.711 is always there); each one left out is logged
    with the reason.
    """
    found: List[AudioCodec] = []
    for codec in (wideband.OPUS, wideband.G722):
        reason = why_not(codec)
        if reason is None:
            found.append(codec)
        else:
            log.info("{codec} is not offered: {reason}", codec=codec.name, reason=reason)
    return (*found, PCMU, PCMA)


@cache
def speakable() -> Tuple[AudioCodec, ...]:
    """The codecs that work here (L{usable}), found once."""
    return usable(wideband.unavailable)


def codecs() -> Dict[str, AudioCodec]:
    """L{speakable} by lower-case encoding name."""
    return {codec.name.lower(): codec for codec in speakable()}


def codec_named(name: str, clock: int) -> Optional[AudioCodec]:
    """The codec an C{a=rtpmap} of C{name/clock} names, if we speak it."""
    codec = codecs().get(name.lower())
    if codec is None or codec.clock != clock:
        return None
    return codec


__all__ = ["codec_named", "codecs", "speakable", "usable"]
