"""Dependencies for chaos tests: containers through testcontainers, or local binaries."""

from __future__ import annotations
