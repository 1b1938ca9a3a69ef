# -*- test-case-name: tests.unit.test_records -*-
"""
Tests for L{conference.records}: the plain records and errors every
store shares.
"""

from __future__ import annotations

import dataclasses

from twisted.trial.unittest import SynchronousTestCase

from conference.records import (
    BindingRecord,
    ConferenceRecord,
    ConflictError,
    LimitExceededError,
    StoreError,
)


class RecordTests(SynchronousTestCase):
    """
    The records and errors.
    """

    def test_frozen(self) -> None:
        """
        Records cannot be changed in place.
        """
        record = BindingRecord("sip:a@x", "web", "http://x", 1.0, "e")
        self.assertRaises(dataclasses.FrozenInstanceError, setattr, record, "uri", "y")

    def test_defaults(self) -> None:
        """
        A new conference record is scheduled, at version 0, with no settings
        of its own.
        """
        a = ConferenceRecord("sip:c@x", "u", "sip:a@x", b"")
        b = ConferenceRecord("sip:c@x", "u", "sip:a@x", b"")
        self.assertEqual((a.state, a.version, a.settings), ("scheduled", 0, {}))
        self.assertIsNot(a.settings, b.settings)

    def test_errors(self) -> None:
        """
        Conflicts and limits are store errors.
        """
        self.assertTrue(issubclass(ConflictError, StoreError))
        self.assertTrue(issubclass(LimitExceededError, StoreError))
