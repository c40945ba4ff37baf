"""The pytest11 entry point of pytest-chaos.

Registers the command-line options, ini keys, the ``chaos`` marker and the hook
specifications, and names the sub-plugins that provide fixtures and reports. It imports
nothing heavy: the proxy server, Docker and Allure load only when a test needs them.
"""

from __future__ import annotations

import pytest

pytest_plugins = [
    "pytest_chaos.fixtures",
    "pytest_chaos.services._plugin",
    "pytest_chaos.reporting._plugin",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaos", "chaos engineering (pytest-chaos)")
    group.addoption(
        "--chaos-backend",
        choices=("embedded", "external", "container"),
        default=None,
        help="fault proxy backend: embedded (default), external (--toxiproxy-url) or container",
    )
    parser.addini("chaos_backend", "fault proxy backend (embedded, external, container)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "chaos(blast_radius): a chaos experiment; blast_radius names the targets it may fault",
    )
