"""Resilience hypotheses (checks), also reachable as ``chaos.<check>``."""

from __future__ import annotations
