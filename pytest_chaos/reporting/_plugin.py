"""Sub-plugin: terminal summary, ``--chaos-journal`` and Allure output."""

from __future__ import annotations
