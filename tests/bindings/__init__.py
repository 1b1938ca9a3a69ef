"""Tests for conference.bindings."""
