"""The typed Toxiproxy REST client: one code path for every backend.

The embedded server, an external Toxiproxy and Toxiproxy in a container are all driven
through `ToxiproxyClient` over HTTP. Extensions only the embedded server has (per-proxy
stats, HTTP toxics) raise `~pytest_chaos.errors.UnsupportedByBackend` elsewhere.
"""

from __future__ import annotations

from pytest_chaos.client._client import (
    EMBEDDED_ONLY_TOXICS,
    ProxyJSON,
    ProxyStats,
    Stream,
    ToxicJSON,
    ToxiproxyClient,
    VersionJSON,
)

__all__ = [
    "EMBEDDED_ONLY_TOXICS",
    "ProxyJSON",
    "ProxyStats",
    "Stream",
    "ToxicJSON",
    "ToxiproxyClient",
    "VersionJSON",
]
