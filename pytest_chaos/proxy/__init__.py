"""The embedded Toxiproxy-compatible fault proxy.

``EmbeddedServer`` runs a server that speaks the Toxiproxy 2.12 HTTP API (so any
Toxiproxy client drives it) in a background thread of the test process; the same server
runs standalone as ``python -m pytest_chaos.proxy``. Names load lazily so that
importing this package stays cheap on pytest's plugin-load path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_chaos.lazy import lazy_attributes

__all__ = ["EmbeddedServer"]

_LAZY = {"EmbeddedServer": "pytest_chaos.proxy._server"}

if TYPE_CHECKING:
    from pytest_chaos.proxy._server import EmbeddedServer


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)
