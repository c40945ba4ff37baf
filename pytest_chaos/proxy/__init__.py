"""The embedded Toxiproxy-compatible fault proxy.

``EmbeddedServer`` runs a server that speaks the Toxiproxy 2.12 HTTP API (so any
Toxiproxy client drives it) in a background thread of the test process; the same server
runs standalone as ``python -m pytest_chaos.proxy``. Names load lazily so that
importing this package stays cheap on pytest's plugin-load path.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["EmbeddedServer"]

_LAZY = {"EmbeddedServer": "pytest_chaos.proxy._server"}

if TYPE_CHECKING:
    from pytest_chaos.proxy._server import EmbeddedServer


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_chaos.proxy' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
