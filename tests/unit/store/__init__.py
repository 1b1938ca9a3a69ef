"""
Tests for L{conference.store}.
"""
