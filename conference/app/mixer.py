# -*- test-case-name: tests.loopback.test_mixer -*-
"""
The built-in mixer behind L{IMediaService}: the Twisted side of
L{conference.media}.  An SRTP stream's keys (SDES, from the offer/answer)
go to its channel, which protects and unprotects its packets.

It negotiates and opens ports like L{NullMediaService} (which it
extends), and feeds each port's datagrams to the participant's
L{Channel}.  Each conference has one L{Mixer} driven by a 20 ms
L{LoopingCall} on the injected reactor, started with the first
participant and stopped with the last; what the mixer returns is written
to the participant's ports.  Only the packets a channel accepts (from the
latched source, well-formed) refresh the session's C{last_activity}, which
the focus's inactivity timeout reads; DTMF digits are reported through
L{MixerMediaService.on_dtmf}.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple, cast

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from conference.app.media import NullMediaService, NullMediaSession
from conference.interfaces import IMediaService, IMediaSession
from conference.media.catalog import codec_named, speakable
from conference.media.channel import Channel, Counters, Datagram
from conference.media.codecs import FRAME_MS, FRAME_SAMPLES, INTERNAL_RATE, AudioCodec
from conference.media.mixer import Mixer
from conference.media.srtp import SRTPKeys
from conference.media.tone import warning_tone
from conference.media.wideband import OPUS_FMTP
from conference.offeranswer import (
    G722,
    OPUS,
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    TELEPHONE_EVENT_48K,
    Codec,
)
from conference.sip.errors import RemoteProtocolError
from conference.sip.randomness import PooledSystemRandom

log = Logger()

MEDIA_KINDS = ("builtin", "null")
# After a stall of the reactor, at most this many frames are mixed at
# once; older ones are skipped (the streams' clocks still advance).
MAX_CATCH_UP = 5

SessionHook = Callable[[IMediaSession, str], None]

_SDP_CODECS = {
    "opus": (replace(OPUS, fmtp=OPUS_FMTP), TELEPHONE_EVENT_48K),
    "g722": (G722,),
    "pcmu": (PCMU,),
    "pcma": (PCMA,),
}


def mixer_codecs(speaks: Optional[Sequence[AudioCodec]] = None) -> Tuple[Codec, ...]:
    """
    What the mixer offers and accepts, in the order of our own offers:
    Opus and G.722 where PyAV can code them, PCMU, PCMA and
    telephone-event.  Answers follow the offerer's order instead.

    @param speaks: the codecs that work (L{speakable} if L{None}).
    """
    found = [sdp for codec in (speaks or speakable()) for sdp in _SDP_CODECS[codec.name.lower()]]
    voices = [codec for codec in found if not codec.is_event]
    return (*voices, TELEPHONE_EVENT, *(codec for codec in found if codec.is_event))


class _FrameClock(LoopingCall):
    """
    A L{LoopingCall} on the clock its creator sets, never the global
    reactor: Twisted's constructor imports C{twisted.internet.reactor} on
    every call, a cost paid once per conference that fills up, which for
    short calls is once per join.
    """

    def __init__(self, f: Callable[..., object], *a: object, **kw: object) -> None:
        self.f, self.a, self.kw = f, a, kw

    def release(self) -> None:
        """
        Forget the callable of a stopped clock.  Made by C{withCount}, it
        holds this clock (and the tick's closure the conference): a cycle
        reference counting cannot free, left for the garbage collector
        once per conference that empties, which for short calls is once
        per join.
        """
        self.f, self.a, self.kw = _stopped, (), {}


def _stopped(*a: object, **kw: object) -> None:
    """What a released clock would call (it never runs again)."""


class _Conference:
    """One conference's mixer and its clock."""

    def __init__(self, uri: str, mixer: Mixer) -> None:
        self.uri = uri
        self.mixer = mixer
        self.loop: Optional[_FrameClock] = None
        self.skipped = 0


@implementer(IMediaService)
class MixerMediaService(NullMediaService):
    """
    Answers like L{NullMediaService} and mixes: every participant hears
    the others (N-1), in the codec each negotiated.

    @ivar on_dtmf: called with a session and each digit it sends (RFC
        4733); logged when L{None}.
    @ivar conferences: the mixers, by conference URI.
    @ivar channels: each open session's channel, by RTP port.
    """

    def __init__(
        self,
        reactor: Optional[Any] = None,
        *,
        on_dtmf: Optional[SessionHook] = None,
        cname: Optional[str] = None,
        rng: Optional[random.Random] = None,
        **kwargs: Any,
    ) -> None:
        """
        @param cname: the RTCP CNAME of our streams (default: random,
            at the media address).
        @param rng: draws SSRCs, initial sequence numbers and timestamps.
        @param kwargs: those of L{NullMediaService}.
        """
        kwargs.setdefault("codecs", mixer_codecs())
        super().__init__(reactor, **kwargs)
        for codec in self.codecs:
            if not codec.is_event and codec_named(codec.name, codec.clock) is None:
                raise ValueError(f"the mixer cannot code {codec.name}/{codec.clock}")
        self.on_dtmf = on_dtmf
        self.rng = rng or PooledSystemRandom()
        self.cname = cname or f"conference-{self.rng.getrandbits(48):012x}@{self.address}"
        self.conferences: Dict[str, _Conference] = {}
        self.channels: Dict[int, Channel] = {}
        self._failed: Set[int] = set()
        #: Counters of the channels closed so far; frames the clocks skipped.
        self.retired = Counters()
        self.skipped = 0

    # Sessions --------------------------------------------------------------

    def _open(self, conference: str, participant: str) -> NullMediaSession:
        session = super()._open(conference, participant)
        port = session.port
        channel = Channel(port, now=self._now(), cname=self.cname, rng=self.rng)
        self.channels[port] = channel
        self._failed.discard(port)
        # Activity is what the channel accepts, not whatever reaches the port.
        session.rtp.on_activity = session.rtcp.on_activity = None
        session.rtp.on_datagram = lambda data, source: self._received(
            session, channel, data, source, False
        )
        session.rtcp.on_datagram = lambda data, source: self._received(
            session, channel, data, source, True
        )
        self._join(conference, channel)
        return session

    def _answer(self, conference: str, participant: str, offer: bytes) -> NullMediaSession:
        session = super()._answer(conference, participant, offer)
        self._configure(session)
        return session

    def complete(self, session: IMediaSession, answer: bytes) -> None:
        """Take the answer to L{offer} and start mixing the participant."""
        super().complete(session, answer)
        self._configure(self._session(session))

    def _update(self, session: IMediaSession, offer: bytes) -> bytes:
        answer = super()._update(session, offer)
        self._configure(self._session(session))
        return answer

    def _configure(self, session: NullMediaSession) -> None:
        """Apply the negotiated stream (codecs, peer address, direction) to the channel."""
        stream = session.stream
        channel = self.channels.get(session.port)
        if stream is None or channel is None:
            return
        codecs: Dict[int, AudioCodec] = {}
        for pt, codec in stream.codecs:
            ours = codec_named(codec.name, codec.clock)
            if ours is not None:
                codecs[pt] = ours
        keys: Optional[SRTPKeys] = None
        if stream.local_crypto is not None and stream.remote_crypto is not None:
            keys = SRTPKeys(
                stream.local_crypto.suite, stream.local_crypto.key, stream.remote_crypto.key
            )
        channel.configure(
            remote=(stream.address, stream.port),
            codecs=codecs,
            send_pt=stream.codecs[0][0],
            event_pt=stream.telephone_event,
            direction=stream.direction,
            srtp=keys,
            fmtp=stream.fmtp,
        )

    def close(self, session: IMediaSession) -> None:
        """Say RTCP BYE, leave the mix (stopping its clock if last), close the ports."""
        if not isinstance(session, NullMediaSession) or session.closed:
            return
        channel = self.channels.pop(session.port, None)
        if channel is None:
            super().close(session)
            return
        self._send(session, channel.goodbye(self._now()))
        self._leave(session.conference, channel)
        self.retired.add(channel.counters)
        # One debug event per session, the channel's (not also the null service's).
        log.debug(
            "Media of {participant}: {counters}",
            participant=session.participant,
            counters=channel.counters,
        )
        self._release_session(session)

    # Mixing ----------------------------------------------------------------

    def _join(self, uri: str, channel: Channel) -> None:
        conference = self.conferences.get(uri)
        if conference is None:
            conference = self.conferences[uri] = _Conference(uri, Mixer(FRAME_SAMPLES))
            loop = cast(
                _FrameClock, _FrameClock.withCount(lambda count: self._tick(conference, count))
            )
            loop.clock = cast(IReactorTime, self._reactor)
            conference.loop = loop
            loop.start(FRAME_MS / 1000.0, now=False)
        conference.mixer.add(channel)

    def _leave(self, uri: str, channel: Channel) -> None:
        conference = self.conferences.get(uri)
        if conference is None:
            return
        conference.mixer.remove(channel.key)
        if not len(conference.mixer):
            del self.conferences[uri]
            loop, conference.loop = conference.loop, None
            if loop is not None:
                if loop.running:
                    loop.stop()
                loop.release()

    def _tick(self, conference: _Conference, count: int) -> None:
        """
        One interval of the conference's clock, or several when the
        reactor was late.  Never raises: an error is logged and the clock
        goes on.
        """
        try:
            now = self._now()
            mixer = conference.mixer
            if count > MAX_CATCH_UP:
                mixer.skip(count - MAX_CATCH_UP)
                conference.skipped += count - MAX_CATCH_UP
                self.skipped += count - MAX_CATCH_UP
                count = MAX_CATCH_UP
            for _ in range(count):
                datagrams = mixer.tick(now)
                for datagram in datagrams:
                    session = self.sessions.get(cast(int, datagram.key))
                    if session is not None:
                        self._send(session, [datagram])
        except Exception:
            log.failure("Mixing {uri} failed", uri=conference.uri)

    def _send(self, session: NullMediaSession, datagrams: List[Datagram]) -> None:
        for datagram in datagrams:
            sink = session.rtcp if datagram.rtcp else session.rtp
            transport = sink.transport
            if transport is None:
                continue
            try:
                transport.write(datagram.data, datagram.address)
            except Exception as e:  # unreachable, bad address: never stop the mix
                if session.port not in self._failed:
                    self._failed.add(session.port)
                    log.info(
                        "Cannot send media to {participant} at {address}: {e}",
                        participant=session.participant,
                        address=datagram.address,
                        e=e,
                    )

    def _received(
        self,
        session: NullMediaSession,
        channel: Channel,
        data: bytes,
        source: Tuple[str, int],
        rtcp: bool,
    ) -> None:
        """
        A datagram on one of the session's ports; never raises.  What the
        channel accepts (it then sets C{last_heard}) is the session's
        activity; a stranger's packets keep nothing alive.
        """
        try:
            now = self._now()
            digit: Optional[str] = None
            if rtcp:
                channel.receive_rtcp(data, source, now)
            else:
                digit = channel.receive_rtp(data, source, now)
            if channel.last_heard == now:  # accepted just now
                self.touch(session)
            if digit is not None:
                log.info(
                    "DTMF {digit} from {participant}", digit=digit, participant=session.participant
                )
                if self.on_dtmf is not None:
                    self.on_dtmf(session, digit)
        except Exception:
            if session.port not in self._failed:
                self._failed.add(session.port)
                log.failure("Media from {source} dropped", source=source)

    # Controls ----------------------------------------------------------------

    def channel(self, session: IMediaSession) -> Channel:
        """
        The channel of an open session.

        @raise RemoteProtocolError: 481 for a closed or unknown session.
        """
        found = self._session(session)
        channel = self.channels.get(found.port)
        if channel is None:
            raise RemoteProtocolError("Call/Transaction Does Not Exist", 481)
        return channel

    def mute(
        self,
        session: IMediaSession,
        *,
        incoming: Optional[bool] = None,
        outgoing: Optional[bool] = None,
    ) -> None:
        """
        Mute what the participant says (C{incoming}: nobody hears them)
        or what they hear (C{outgoing}); L{None} leaves a side as it is.
        """
        channel = self.channel(session)
        if incoming is not None:
            channel.mute_in = incoming
        if outgoing is not None:
            channel.mute_out = outgoing

    def set_gain(
        self,
        session: IMediaSession,
        *,
        incoming_db: Optional[float] = None,
        outgoing_db: Optional[float] = None,
    ) -> None:
        """Set the gain, in dB, of what the participant says and of what they hear."""
        self.channel(session).set_gain(incoming_db, outgoing_db)

    def send_dtmf(self, session: IMediaSession, digits: str, duration: float = 0.1) -> None:
        """
        Send RFC 4733 events to the participant, each C{duration} seconds.

        @raise conference.media.dtmf.DTMFError: a bad digit or duration, or no telephone-event
            negotiated.
        """
        channel = self.channel(session)
        channel.send_dtmf(digits, round(duration * channel.clock))

    def warn(self, session: IMediaSession, ends_at: float) -> None:
        """
        Play the end-of-conference warning (L{warning_tone}) over what the
        participant hears, from the next tick; a closed session is ignored.
        """
        try:
            channel = self.channel(session)
        except RemoteProtocolError:
            return
        channel.play(warning_tone(INTERNAL_RATE))

    def counters(self, session: IMediaSession) -> Counters:
        """What the session's ports received, dropped and sent."""
        return self.channel(session).counters


def media_service(kind: str, reactor: Optional[Any] = None, **kwargs: Any) -> NullMediaService:
    """
    The media service C{--media} names: C{builtin} (the mixer) or C{null}
    (negotiate, open ports, drop the media).
    """
    if kind == "builtin":
        return MixerMediaService(reactor, **kwargs)
    if kind == "null":
        return NullMediaService(reactor, **kwargs)
    raise ValueError(f"unknown media service {kind!r}; use {' or '.join(MEDIA_KINDS)}")


__all__ = [
    "MEDIA_KINDS",
    "MixerMediaService",
    "media_service",
]
