"""Test-side helpers: run the shop's processes, talk to them, read the ground truth.

Nothing here is part of the shop itself; the chaos suite's conftest builds its fixtures
from these pieces.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import requests
from psycopg.rows import dict_row
from requests.adapters import HTTPAdapter

from example_suite.shop.db import migrate

if TYPE_CHECKING:
    from pytest_chaos.services import ChaosServices, Service

__all__ = [
    "PRODUCTS",
    "READY_LINE",
    "REPO_ROOT",
    "Load",
    "ReplicaClient",
    "ShopClient",
    "ShopRequestFailed",
    "create_database",
    "http_url",
    "orders_in",
    "start_service",
    "stock_in",
]

REPO_ROOT = Path(__file__).resolve().parents[2]

# (sku, name, price_cents, stock): enough stock that no experiment runs out.
PRODUCTS: list[tuple[str, str, int, int]] = [
    ("mug", "Chaos mug", 1200, 100_000),
    ("tee", "Blast radius tee", 2500, 100_000),
    ("sticker", "Steady state sticker", 300, 100_000),
]


class ShopRequestFailed(Exception):
    """An HTTP call to a shop service failed: an error status, a timeout or no answer."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


#: the line ``python -m example_suite.shop.serve`` prints once it listens
READY_LINE = r"listening on http://127\.0\.0\.1:(\d+)"


def start_service(
    chaos_services: ChaosServices,
    service: str,
    *,
    name: str,
    env: dict[str, str] | None = None,
) -> Service:
    """Run one of the shop's services (``orders`` or ``payments``) as a process.

    pytest-chaos's ``chaos_services.process`` runs it: the server binds port 0 (no race
    for a port between xdist workers) and prints the port it got, which the ready
    pattern captures; ``{port}`` hands that port back at every restart, so a killed or
    restarted service comes back on the address clients hold. Its output lands in the
    report of a failing test, and it is stopped (SIGTERM, then SIGKILL) when removed.
    """
    full_env = dict(env or {})
    full_env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    return chaos_services.process(
        [sys.executable, "-m", "example_suite.shop.serve", service, "--port", "{port}"],
        ready=READY_LINE,
        env=full_env,
        name=name,
        cwd=REPO_ROOT,
    )


def http_url(service: Service) -> str:
    """``http://host:port`` of a shop service."""
    return f"http://{service.address}"


class ShopClient:
    """A small JSON client for a shop service, as a user's code would call it.

    Every call has a timeout; any error status, timeout or refused connection raises
    :class:`ShopRequestFailed`, so a call can be used directly as a check's probe.
    """

    def __init__(self, base_url: str, timeout: float = 2.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()
        self._session.mount("http://", HTTPAdapter(pool_maxsize=32, max_retries=0))

    def __repr__(self) -> str:
        return f"<ShopClient {self.base_url} timeout={self.timeout}s>"

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Call ``method path``; the decoded JSON body of a 2xx answer."""
        try:
            response = self._session.request(
                method,
                self.base_url + path,
                json=json,
                headers=headers,
                timeout=timeout or self.timeout,
            )
        except requests.RequestException as exc:
            raise ShopRequestFailed(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        with response:
            if response.status_code >= 400:
                raise ShopRequestFailed(
                    f"{method} {path} -> {response.status_code} {response.text.strip()[:200]}",
                    status=response.status_code,
                )
            try:
                return response.json()
            except ValueError as exc:  # a proxy or a crash can cut a 200 body short
                raise ShopRequestFailed(
                    f"{method} {path} -> {response.status_code} with a body that is not "
                    f"JSON: {response.text[:200]!r}",
                    status=None,
                ) from exc

    def get(self, path: str, **kwargs: Any) -> Any:
        """``GET path``."""
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        """``POST path``."""
        return self.request("POST", path, **kwargs)

    def close(self) -> None:
        """Close the connection pool."""
        self._session.close()


def create_database(admin_url: str, name: str) -> str:
    """Create database ``name`` with the shop's schema and products; its URL."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        # Explicit UTF-8: a cluster initialised without a locale defaults to SQL_ASCII,
        # whose text columns psycopg hands back as bytes.
        conn.execute(
            f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' "
            "LC_COLLATE 'C' LC_CTYPE 'C'"
        )
    parts = urlsplit(admin_url)
    url = urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))
    with psycopg.connect(url) as conn:
        migrate(conn, PRODUCTS)
    return url


def orders_in(url: str) -> list[dict[str, Any]]:
    """Every stored order, read directly (not through any proxy)."""
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute("SELECT * FROM orders ORDER BY id").fetchall()


def stock_in(url: str) -> dict[str, int]:
    """Stock per SKU, read directly."""
    with psycopg.connect(url, row_factory=dict_row) as conn:
        rows = conn.execute("SELECT sku, stock FROM products").fetchall()
    return {row["sku"]: row["stock"] for row in rows}


class Load:
    """Background traffic: ``workers`` threads call ``fn`` until the ``with`` block ends.

    Outcomes are counted (``ok``, ``failed``, ``errors``); the threads are joined at the
    exit, so ``fn`` must carry its own timeout.
    """

    def __init__(self, fn: Any, workers: int = 4, pause: float = 0.0) -> None:
        self._fn = fn
        self._workers = workers
        self._pause = pause
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.ok = 0
        self.failed = 0
        self.errors: list[str] = []
        self.results: list[Any] = []

    def __repr__(self) -> str:
        return f"<Load workers={self._workers} ok={self.ok} failed={self.failed}>"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                result = self._fn()
            except ShopRequestFailed as exc:
                with self._lock:
                    self.failed += 1
                    self.errors.append(str(exc))
            else:
                with self._lock:
                    self.ok += 1
                    self.results.append(result)
            if self._pause:
                self._stop.wait(self._pause)

    def __enter__(self) -> Load:
        for i in range(self._workers):
            thread = threading.Thread(target=self._run, name=f"shop-load-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


class ReplicaClient:
    """Client-side load balancing over replicas of the order API, as a service mesh does.

    Round robin; a replica whose connection fails is skipped for ``eject_for`` seconds
    (passive health checking) and the request goes to the next one. Only requests that
    are safe to send twice are retried: GETs, and POSTs carrying an ``Idempotency-Key``.

    ``hedge_after`` (seconds) hedges reads: a GET its replica has not answered by then
    is sent to the next replica too, the first answer wins (``hedges`` counts them) and
    a replica that lost the race is skipped for ``eject_for`` seconds, so one slow
    replica does not set the tail latency.
    """

    def __init__(
        self,
        urls: list[str],
        timeout: float = 2.0,
        eject_for: float = 1.0,
        hedge_after: float | None = None,
    ) -> None:
        self.clients = [ShopClient(url, timeout=timeout) for url in urls]
        self.eject_for = eject_for
        self.hedge_after = hedge_after
        self._ejected_until = [0.0] * len(urls)
        self._next = 0
        self._lock = threading.Lock()
        self.failovers = 0
        self.hedges = 0
        # a slow replica holds a thread per request it has not answered yet
        self._hedging = ThreadPoolExecutor(max_workers=64, thread_name_prefix="hedge")

    def __repr__(self) -> str:
        return f"<ReplicaClient {[c.base_url for c in self.clients]} failovers={self.failovers}>"

    def _order(self) -> list[int]:
        with self._lock:
            start = self._next
            self._next = (self._next + 1) % len(self.clients)
        now = time.monotonic()
        indexes = [(start + i) % len(self.clients) for i in range(len(self.clients))]
        healthy = [i for i in indexes if self._ejected_until[i] <= now]
        return healthy + [i for i in indexes if i not in healthy]

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send to the next healthy replica; fail over if it cannot be reached."""
        headers = kwargs.get("headers") or {}
        retryable = method == "GET" or "Idempotency-Key" in headers
        order = self._order()
        if self.hedge_after is not None and method == "GET" and len(order) > 1:
            return self._hedged(order, method, path, kwargs)
        last: ShopRequestFailed | None = None
        for index in order:
            try:
                return self.clients[index].request(method, path, **kwargs)
            except ShopRequestFailed as exc:
                if exc.status is not None or not retryable:
                    raise
                last = exc
                self._ejected_until[index] = time.monotonic() + self.eject_for
                with self._lock:
                    self.failovers += 1
        assert last is not None
        raise last

    def _hedged(self, order: list[int], method: str, path: str, kwargs: dict[str, Any]) -> Any:
        """The first answer of the first replica, or of the second one once the first
        has been silent for ``hedge_after`` s (or failed to connect)."""
        assert self.hedge_after is not None
        first = self._hedging.submit(self.clients[order[0]].request, method, path, **kwargs)
        pending = {first}
        spare = list(order[1:2])
        last: ShopRequestFailed | None = None
        while pending:
            done, pending = wait(
                pending, timeout=self.hedge_after if spare else None, return_when=FIRST_COMPLETED
            )
            for future in done:
                try:
                    result = future.result()
                except ShopRequestFailed as exc:
                    if exc.status is not None:
                        raise
                    last = exc
                    continue
                if future is not first:
                    # The first replica lost the race: skip it for a while (outlier
                    # ejection), so the slow one is not asked first again at once.
                    self._ejected_until[order[0]] = time.monotonic() + self.eject_for
                return result
            if spare and (not done or last is not None):
                with self._lock:
                    self.hedges += 1
                index = spare.pop()
                pending.add(
                    self._hedging.submit(self.clients[index].request, method, path, **kwargs)
                )
        assert last is not None
        raise last

    def get(self, path: str, **kwargs: Any) -> Any:
        """``GET path``."""
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        """``POST path``."""
        return self.request("POST", path, **kwargs)

    def close(self) -> None:
        """Close every connection pool."""
        self._hedging.shutdown(wait=True)
        for client in self.clients:
            client.close()
