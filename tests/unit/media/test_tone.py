# -*- test-case-name: tests.unit.media.test_tone -*-
"""
Tests for L{conference.media.tone}: the end-of-conference warning.
"""

from __future__ import annotations

import numpy as np
from twisted.trial.unittest import SynchronousTestCase

from conference.media.tone import WARNING_FREQUENCY, warning_tone
from tests.unit.media.signals import band_share


class WarningToneTests(SynchronousTestCase):
    """
    Two 440 Hz beeps of 200 ms, 150 ms apart, computed once per rate.
    """

    def test_shape(self) -> None:
        """Beep, gap, beep: 550 ms, the beeps at 440 Hz, silence between."""
        tone = warning_tone(8000)
        self.assertEqual(len(tone), 4400)
        self.assertGreater(band_share(tone[:1600], WARNING_FREQUENCY, 8000), 0.95)
        self.assertEqual(np.abs(tone[1600:2800]).max(), 0)
        self.assertGreater(band_share(tone[2800:], WARNING_FREQUENCY, 8000), 0.95)
        self.assertLessEqual(np.abs(tone).max(), 32767 * 10 ** (-12 / 20) + 1)

    def test_cached(self) -> None:
        """The same array for the same rate, read-only; another rate, another length."""
        self.assertIs(warning_tone(8000), warning_tone(8000))
        self.assertFalse(warning_tone(8000).flags.writeable)
        self.assertEqual(len(warning_tone(16000)), 8800)
