"""Reports of chaos runs: terminal summary, JSON journal, Allure."""

from __future__ import annotations
