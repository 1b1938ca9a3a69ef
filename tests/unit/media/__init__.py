"""
Tests for the sans-I/O media plane, L{conference.media}.
"""
