"""A typed client for the Toxiproxy HTTP API, used for every backend.

The embedded server, an external Toxiproxy and Toxiproxy in a container are all reached
over HTTP through :class:`ToxiproxyClient`, so the plugin has one code path. Extensions
only the embedded server has (per-proxy stats, HTTP toxics) raise
:class:`~pytest_chaos.errors.UnsupportedByBackend` on other backends.

It uses only :mod:`http.client`, so it costs nothing at plugin load.
"""

from __future__ import annotations

import http.client
import json
import threading
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict, cast

from pytest_chaos.errors import ConfigurationError, ProxyAPIError, UnsupportedByBackend

__all__ = [
    "EMBEDDED_ONLY_TOXICS",
    "ProxyJSON",
    "ProxyStats",
    "Stream",
    "ToxicJSON",
    "ToxiproxyClient",
    "VersionJSON",
]

Stream = Literal["upstream", "downstream"]

#: toxic types that only the embedded server implements
EMBEDDED_ONLY_TOXICS = frozenset({"http_error", "http_delay", "http_duplicate"})

_HOW_TO_EMBED = (
    "The embedded backend has it: run without --toxiproxy-url, or with "
    "--chaos-backend=embedded (ini: chaos_backend = embedded)."
)


class ToxicJSON(TypedDict):
    """A toxic as the API returns it."""

    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, Any]


class ProxyJSON(TypedDict):
    """A proxy as the API returns it."""

    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: list[ToxicJSON]


class VersionJSON(TypedDict, total=False):
    """``GET /version``: the Toxiproxy API level, plus extras naming the implementation."""

    version: str


class ProxyNote(TypedDict):
    """Something a toxic noticed, e.g. traffic that is not HTTP through an HTTP toxic."""

    seq: int
    label: str
    data: dict[str, Any]


class ProxyStats(TypedDict):
    """``GET /proxies/{name}/stats`` (embedded server only); counters are cumulative,
    ``notes`` holds the proxy's last notes, numbered from 1."""

    name: str
    connections_accepted: int
    connections_open: int
    connections_failed: int
    bytes_upstream: int
    bytes_downstream: int
    http_requests: int
    http_responses: int
    http_errors_injected: int
    http_duplicates_sent: int
    http_duplicates_failed: int
    http_requests_delayed: int
    http_passthrough_connections: int
    notes: list[ProxyNote]


class ToxiproxyClient:
    """Talks to one Toxiproxy-compatible server.

    ``url`` is the API root (``http://127.0.0.1:8474``); ``embedded`` says whether the
    server is pytest-chaos's embedded one (which enables :meth:`stats` and HTTP toxics).
    One keep-alive connection is shared under a lock, so the client is thread-safe; close
    it with :meth:`close` or use it as a context manager.

    >>> ToxiproxyClient("http://127.0.0.1:8474")
    <ToxiproxyClient http://127.0.0.1:8474 embedded=False requests=0>
    """

    def __init__(self, url: str, *, embedded: bool = False, timeout: float = 10.0) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme != "http" or not parsed.hostname:
            raise ConfigurationError(
                f"Toxiproxy URL {url!r} is not an http://host:port URL; "
                "write it like http://127.0.0.1:8474."
            )
        self.url = url.rstrip("/")
        self.embedded = embedded
        self.timeout = timeout
        self._host = parsed.hostname
        self._port = parsed.port or 80
        self._base = parsed.path.rstrip("/")
        self._lock = threading.Lock()
        self._conn: http.client.HTTPConnection | None = None
        self.requests = 0

    # -- plumbing ---------------------------------------------------------------------

    def close(self) -> None:
        """Close the keep-alive connection (the client can still be used afterwards)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> ToxiproxyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ToxiproxyClient {self.url} embedded={self.embedded} requests={self.requests}>"

    def request(self, method: str, path: str, body: object = None) -> Any:
        """Send one request; return the decoded JSON (``None`` for an empty body).

        Raises :class:`ProxyAPIError` for any status >= 400, with the server's message.
        """
        payload = None if body is None else json.dumps(body).encode()
        headers = {"User-Agent": "pytest-chaos", "Accept": "application/json"}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        with self._lock:
            self.requests += 1
            status, data = self._send(method, self._base + path, payload, headers)
        text = data.decode("utf-8", "replace")
        if status >= 400:
            try:
                error = str(json.loads(text).get("error", text))
            except (ValueError, AttributeError):
                error = text.strip()
            raise ProxyAPIError(
                f"{method} {self.url}{path} failed: {status} {error}", status=status, error=error
            )
        return json.loads(text) if text.strip() else None

    def _send(
        self, method: str, path: str, payload: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        # one retry on a fresh connection: the server may have closed an idle keep-alive
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(
                    self._host, self._port, timeout=self.timeout
                )
            try:
                self._conn.request(method, path, body=payload, headers=headers)
                response = self._conn.getresponse()
                data = response.read()
                if response.will_close:
                    self._conn.close()
                    self._conn = None
                return response.status, data
            except (ConnectionError, http.client.HTTPException, OSError) as exc:
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
                if attempt == 2 or not isinstance(
                    exc, ConnectionResetError | BrokenPipeError | http.client.RemoteDisconnected
                ):
                    raise ProxyAPIError(
                        f"{method} {self.url}{path}: cannot reach the Toxiproxy API ({exc}). "
                        "Is the server running at that URL?",
                        status=0,
                        error=str(exc),
                    ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _q(name: str) -> str:
        return urllib.parse.quote(name, safe="")

    # -- server -----------------------------------------------------------------------

    def version(self) -> VersionJSON:
        """``GET /version``."""
        return cast(VersionJSON, self.request("GET", "/version"))

    def reset(self) -> None:
        """``POST /reset``: enable every proxy and remove every toxic (deletes no proxy)."""
        self.request("POST", "/reset")

    def populate(self, proxies: Sequence[Mapping[str, Any]]) -> list[ProxyJSON]:
        """``POST /populate``: create or replace proxies in bulk."""
        answer = self.request("POST", "/populate", list(proxies))
        return cast(list[ProxyJSON], answer["proxies"])

    # -- proxies ----------------------------------------------------------------------

    def proxies(self) -> dict[str, ProxyJSON]:
        """``GET /proxies``: name -> proxy."""
        return cast(dict[str, ProxyJSON], self.request("GET", "/proxies"))

    def create_proxy(
        self, name: str, *, upstream: str, listen: str = "127.0.0.1:0", enabled: bool = True
    ) -> ProxyJSON:
        """``POST /proxies``."""
        body = {"name": name, "listen": listen, "upstream": upstream, "enabled": enabled}
        return cast(ProxyJSON, self.request("POST", "/proxies", body))

    def get_proxy(self, name: str) -> ProxyJSON:
        """``GET /proxies/{name}``."""
        return cast(ProxyJSON, self.request("GET", f"/proxies/{self._q(name)}"))

    def update_proxy(self, name: str, **fields: Any) -> ProxyJSON:
        """``POST /proxies/{name}`` with the given fields (``enabled``, ``upstream``, ...)."""
        return cast(ProxyJSON, self.request("POST", f"/proxies/{self._q(name)}", fields))

    def delete_proxy(self, name: str) -> None:
        """``DELETE /proxies/{name}``."""
        self.request("DELETE", f"/proxies/{self._q(name)}")

    def stats(self, name: str) -> ProxyStats:
        """``GET /proxies/{name}/stats`` (embedded backend only)."""
        if not self.embedded:
            raise UnsupportedByBackend(
                f"proxy statistics (stats of {name!r}) are an extension of pytest-chaos's "
                f"embedded proxy; the server at {self.url} is not it. {_HOW_TO_EMBED}"
            )
        return cast(ProxyStats, self.request("GET", f"/proxies/{self._q(name)}/stats"))

    # -- toxics -----------------------------------------------------------------------

    def toxics(self, proxy: str) -> list[ToxicJSON]:
        """``GET /proxies/{proxy}/toxics``."""
        return cast(list[ToxicJSON], self.request("GET", f"/proxies/{self._q(proxy)}/toxics"))

    def add_toxic(
        self,
        proxy: str,
        type: str,
        *,
        name: str | None = None,
        stream: Stream = "downstream",
        toxicity: float = 1.0,
        attributes: Mapping[str, Any] | None = None,
    ) -> ToxicJSON:
        """``POST /proxies/{proxy}/toxics``."""
        if type in EMBEDDED_ONLY_TOXICS and not self.embedded:
            raise UnsupportedByBackend(
                f"the {type!r} toxic is an extension of pytest-chaos's embedded proxy; the "
                f"server at {self.url} is not it. {_HOW_TO_EMBED}"
            )
        body: dict[str, Any] = {
            "type": type,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": dict(attributes or {}),
        }
        if name is not None:
            body["name"] = name
        return cast(ToxicJSON, self.request("POST", f"/proxies/{self._q(proxy)}/toxics", body))

    def get_toxic(self, proxy: str, name: str) -> ToxicJSON:
        """``GET /proxies/{proxy}/toxics/{name}``."""
        path = f"/proxies/{self._q(proxy)}/toxics/{self._q(name)}"
        return cast(ToxicJSON, self.request("GET", path))

    def update_toxic(
        self,
        proxy: str,
        name: str,
        *,
        attributes: Mapping[str, Any] | None = None,
        toxicity: float | None = None,
    ) -> ToxicJSON:
        """``POST /proxies/{proxy}/toxics/{name}``: merge attributes, set toxicity."""
        body: dict[str, Any] = {"attributes": dict(attributes or {})}
        if toxicity is not None:
            body["toxicity"] = toxicity
        path = f"/proxies/{self._q(proxy)}/toxics/{self._q(name)}"
        return cast(ToxicJSON, self.request("POST", path, body))

    def remove_toxic(self, proxy: str, name: str) -> None:
        """``DELETE /proxies/{proxy}/toxics/{name}``."""
        self.request("DELETE", f"/proxies/{self._q(proxy)}/toxics/{self._q(name)}")
