"""Sphinx configuration for the conference server's documentation."""

from __future__ import annotations

project = "conference"
author = "the conference developers"
copyright = "2026, the conference developers"
release = "0.1.0"
extensions: list[str] = []
exclude_patterns = ["_build"]
html_theme = "alabaster"
