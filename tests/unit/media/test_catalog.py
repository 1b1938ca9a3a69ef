# -*- test-case-name: tests.unit.media.test_catalog -*-
"""
Tests for L{conference.media.catalog}: which codecs are spoken, and the
refusal of those whose binding is missing.
"""

from __future__ import annotations

from typing import List, Optional

from twisted.logger import ILogObserver, LogEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from conference.media.catalog import codec_named, speakable, usable
from conference.media.codecs import PCMA, PCMU, AudioCodec
from conference.media.wideband import G722, OPUS, unavailable


class CatalogTests(SynchronousTestCase):
    """
    The codecs by name, best first, without the missing ones.
    """

    def test_missing_left_out(self) -> None:
        """A codec whose binding is missing is left out, and the reason logged."""
        events: List[LogEvent] = []

        @implementer(ILogObserver)
        def observe(event: LogEvent) -> None:
            events.append(event)

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)

        def no_opus(codec: AudioCodec) -> Optional[str]:
            return "no libopus here" if codec is OPUS else None

        self.assertEqual(usable(no_opus), (G722, PCMU, PCMA))
        self.assertEqual(usable(lambda codec: "no PyAV"), (PCMU, PCMA))
        reasons = [e.get("reason") for e in events if "reason" in e]
        self.assertEqual(reasons, ["no libopus here", "no PyAV", "no PyAV"])

    def test_speakable(self) -> None:
        """What is spoken here: G.711 always, the wideband codecs where they work."""
        expected = (*(c for c in (OPUS, G722) if unavailable(c) is None), PCMU, PCMA)
        self.assertEqual(speakable(), expected)

    def test_codec_named(self) -> None:
        """Codecs are found by rtpmap name (any case) and clock rate."""
        self.assertIs(codec_named("pcmu", 8000), PCMU)
        self.assertIs(codec_named("PCMA", 8000), PCMA)
        self.assertIsNone(codec_named("PCMU", 16000))
        self.assertIsNone(codec_named("G729", 8000))
        if G722 in speakable():
            self.assertIs(codec_named("g722", 8000), G722)
            self.assertIsNone(codec_named("G722", 16000))
        if OPUS in speakable():
            self.assertIs(codec_named("OPUS", 48000), OPUS)
