"""Fixtures of pytest-chaos: ``toxiproxy`` and ``chaos``."""

from __future__ import annotations
