"""Sub-plugin: the ``chaos_services`` fixture and its options."""

from __future__ import annotations
