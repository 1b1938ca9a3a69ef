"""Tests for conference.smime."""
