"""Backends: where the Toxiproxy-compatible server the tests drive comes from.

A backend is selected by name (``--chaos-backend`` / ``chaos_backend``) from a registry.
The built-in names load their module lazily, so Docker is imported only when the
``container`` backend is chosen::

    embedded   pytest_chaos.backends.embedded   an in-process server per xdist worker
    external   pytest_chaos.backends.external   an existing server (--toxiproxy-url)
    container  pytest_chaos.backends.container  Toxiproxy in a container

A backend module registers a factory with :func:`register_backend`; the factory takes
:class:`BackendOptions` and returns an object with the :class:`Backend` shape.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from pytest_chaos.errors import ConfigurationError

if TYPE_CHECKING:
    import pytest

__all__ = [
    "BUILTIN_BACKENDS",
    "Backend",
    "BackendFactory",
    "BackendOptions",
    "get_backend",
    "register_backend",
]

#: backend names that ship with pytest-chaos, each in ``pytest_chaos.backends.<name>``
BUILTIN_BACKENDS = ("embedded", "external", "container")


@dataclass(frozen=True)
class BackendOptions:
    """What a backend factory is told.

    ``url`` is ``--toxiproxy-url`` (or None), ``seed`` the run seed (for toxicity rolls),
    ``run_id`` and ``worker`` identify this run and xdist worker (``"master"`` without
    xdist), ``config`` is the pytest config (None outside pytest).
    """

    url: str | None = None
    seed: int | None = None
    run_id: str = ""
    worker: str = "master"
    config: pytest.Config | None = None


class Backend(Protocol):
    """A started or startable Toxiproxy-compatible server.

    ``kind`` is the backend name, ``url`` the API root once started, ``embedded`` true
    when the server has pytest-chaos's extensions (stats, HTTP toxics).
    """

    kind: str
    url: str
    embedded: bool

    def start(self) -> None:
        """Start (or connect to) the server; afterwards ``url`` answers the API."""

    def stop(self) -> None:
        """Stop what :meth:`start` started; idempotent."""


BackendFactory = Callable[[BackendOptions], Backend]

_FACTORIES: dict[str, BackendFactory] = {}


def register_backend(name: str, factory: BackendFactory) -> None:
    """Make ``--chaos-backend=<name>`` create its backend with ``factory(options)``."""
    _FACTORIES[name] = factory


def get_backend(name: str) -> BackendFactory:
    """The factory registered under ``name``, importing a built-in module on first use."""
    if name not in _FACTORIES and name in BUILTIN_BACKENDS:
        try:
            importlib.import_module(f"pytest_chaos.backends.{name}")
        except ImportError as exc:
            raise ConfigurationError(
                f"chaos backend {name!r} cannot be loaded ({exc}). For the container "
                "backend install the extra: pip install 'pytest-chaos[containers]'."
            ) from exc
    try:
        return _FACTORIES[name]
    except KeyError:
        known = sorted(set(_FACTORIES) | set(BUILTIN_BACKENDS))
        raise ConfigurationError(
            f"unknown chaos backend {name!r}; known backends: {known}. "
            "Use --chaos-backend with one of them."
        ) from None
