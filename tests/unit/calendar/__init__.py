"""Tests for conference."""
