"""Tests for conference.web."""
