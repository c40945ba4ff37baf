"""Which services a run started, where and in which version, for the summary and journal.

Services live in the process that runs the tests (one ``chaos_services`` per xdist
worker) and are removed when its session fixtures end, before ``pytest_sessionfinish``.
So the process that runs tests notes them before each test's teardown; a worker hands
its notes to the controller through ``workeroutput``, and the controller merges them:
the same service started by two workers is one entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pytest

__all__ = ["WORKEROUTPUT_KEY", "ServiceLog", "describe", "services_line"]

#: the key under which a worker hands its service descriptions to the controller
WORKEROUTPUT_KEY = "chaos_services"
_FIELDS = ("name", "kind", "provider", "version")


def describe(service: Any) -> dict[str, str | None]:
    """The JSON-safe description of one `Service`: name, kind, provider, version."""
    # version: the server's own version string where the provider learnt it
    version = getattr(service, "version", None)
    return {
        "name": str(service.name),
        "kind": str(service.kind),
        "provider": str(service.provider),
        "version": None if version in (None, "") else str(version),
    }


def _label(entry: Mapping[str, Any]) -> str:
    name, kind = entry.get("name"), entry.get("kind")
    text = str(kind) if name in (None, kind) else f"{name}={kind}"
    if entry.get("version"):
        text += f" {entry['version']}"
    return f"{text} ({entry.get('provider') or '?'})"


def services_line(entries: Iterable[Mapping[str, Any]]) -> str | None:
    """``services: redis 6.2.14 (bundled), postgres 18.6 (bundled)``, or None if none.

    A service whose name differs from its kind shows both (``cache=redis 7.2 (docker)``).
    """
    labels = [_label(entry) for entry in entries]
    return "services: " + ", ".join(labels) if labels else None


class ServiceLog:
    """The services started in a run, deduplicated, in the order first seen."""

    def __init__(self) -> None:
        self._entries: dict[tuple[Any, ...], dict[str, Any]] = {}

    def add(self, entry: Mapping[str, Any]) -> None:
        """Note one description (from :func:`describe` or a worker's output)."""
        clean = {key: entry.get(key) for key in _FIELDS}
        self._entries.setdefault(tuple(clean.values()), clean)

    def extend(self, entries: Iterable[Mapping[str, Any]]) -> None:
        """Note several descriptions; anything that is not a mapping is ignored."""
        for entry in entries:
            if isinstance(entry, Mapping):
                self.add(entry)

    def note_running(self, config: pytest.Config) -> None:
        """Note the services this process's ``chaos_services`` has started so far."""
        from pytest_chaos.services import running_services

        for service in running_services(config):
            self.add(describe(service))

    @property
    def entries(self) -> list[dict[str, Any]]:
        """The descriptions, JSON-safe: ``[{"name", "kind", "provider", "version"}]``."""
        return [dict(entry) for entry in self._entries.values()]

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<ServiceLog {services_line(self._entries.values()) or 'no services'}>"
