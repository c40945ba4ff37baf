"""Fixtures of the example chaos suite: the shop, wired through pytest-chaos proxies.

``shop`` starts the order API in its own process with every dependency reached through
a fault proxy of the test's ``chaos`` controller:

    order API --> chaos.proxy("postgres") --> PostgreSQL
              --> chaos.proxy("redis")    --> Redis
              --> chaos.proxy("payments") --> payment provider (its own process)

Redis and PostgreSQL come from pytest-chaos's ``chaos_services`` (containers when a
Docker engine answers, local binaries otherwise); the order API and the payment provider
run as processes through ``chaos_services.process``, fresh for every test.

``SHOP_FRAGILE=1`` starts the fragile build of the order API (no timeouts, no breaker, no
idempotency keys, retries without backoff, commits not durable; a list such as
``SHOP_FRAGILE=breaker`` removes only those); the suite is expected to fail against it,
and tests/example checks that it fails for the right reasons.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from example_suite.shop.config import PROTECTIONS, parse_fragile
from example_suite.shop.harness import ShopClient, create_database, http_url, start_service
from example_suite.shop.testbed import Backing, Payments, Shop
from pytest_chaos import Chaos
from pytest_chaos.services import ChaosServices, Service

FRAGILE = os.environ.get("SHOP_FRAGILE", "")
try:
    REMOVED = parse_fragile(FRAGILE)
except ValueError as exc:  # a typo stops the run before any process starts
    raise pytest.UsageError(str(exc)) from None


def pytest_addoption(parser: pytest.Parser) -> None:
    # pyproject.toml sets pytester_example_dir for tests/, whose conftest loads pytester;
    # declared here too so that `pytest example_suite` passes --strict-config.
    parser.addini("pytester_example_dir", "directory of pytester examples (tests/ only)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "proxy_extensions: the experiment needs HTTP toxics or proxy stats, which only "
        "pytest-chaos's own proxy has (skipped against a plain Toxiproxy)",
    )


@pytest.fixture(autouse=True)
def _proxy_extensions(request: pytest.FixtureRequest) -> None:
    # Against a plain Toxiproxy (--toxiproxy-url, docker/compose.yaml) these experiments
    # cannot inject their fault or read their counters: say so instead of erroring.
    # unavailable, not pytest.skip: a missing extension is missing infrastructure, so
    # `make chaos` (--chaos-strict) makes it an error rather than a silent skip.
    from pytest_chaos import unavailable

    if request.node.get_closest_marker("proxy_extensions") is None:
        return
    server = request.getfixturevalue("toxiproxy")
    if not server.client.embedded:
        unavailable(
            f"needs HTTP toxics or proxy stats, extensions of pytest-chaos's own proxy; "
            f"the Toxiproxy at {server.url} is not one (run without --toxiproxy-url, or "
            f"point it at `python -m pytest_chaos.proxy`)"
        )


def pytest_report_header(config: pytest.Config) -> str:
    if not REMOVED:
        return "example shop: resilient build"
    return f"example shop: FRAGILE build (SHOP_FRAGILE={FRAGILE}): without " + ", ".join(
        PROTECTIONS[name] for name in sorted(REMOVED)
    )


@pytest.fixture(scope="session")
def backing(chaos_services: Any) -> Backing:
    """Redis and PostgreSQL for the whole session (one pair per xdist worker)."""
    return Backing(postgres=chaos_services.postgres(), redis=chaos_services.redis())


@pytest.fixture
def payments(chaos_services: ChaosServices) -> Iterator[Payments]:
    """A fresh payment provider process for one test; always stopped."""
    with start_service(chaos_services, "payments", name="payments") as process:
        provider = Payments(process)
        try:
            yield provider
        finally:
            provider.client.close()


@pytest.fixture
def start_shop(
    chaos: Chaos, chaos_services: ChaosServices, backing: Backing, payments: Payments
) -> Iterator[Callable[..., Shop]]:
    """A factory: start the order API behind fresh proxies; stopped at teardown."""
    started: list[Shop] = []

    def start(
        *,
        breaker_reset: float | None = None,
        client_timeout: float = 2.0,
        replicas: int = 1,
        group: str = "",
        extra_env: dict[str, str] | None = None,
    ) -> Shop:
        # a second shop in the same test (a canary) needs its own proxies: ``group``
        # names them postgres-<group>, redis-<group>, payments-<group>
        suffix = f"-{group}" if group else ""
        name = f"shop_{uuid.uuid4().hex[:10]}"
        database_url = create_database(backing.postgres_admin_url, name)
        db = chaos.proxy(f"postgres{suffix}", upstream=backing.postgres)
        cache = chaos.proxy(f"redis{suffix}", upstream=backing.redis)
        pay = chaos.proxy(f"payments{suffix}", upstream=payments.address)
        env = {
            "SHOP_DATABASE_URL": backing.database_url(db.address, name),
            "SHOP_REDIS_URL": f"redis://{cache.address}/0",
            "SHOP_REDIS_PREFIX": name,
            "SHOP_PAYMENTS_URL": f"http://{pay.address}",
            "SHOP_FRAGILE": FRAGILE,
        }
        if breaker_reset is not None:
            env["SHOP_BREAKER_RESET"] = str(breaker_reset)
        env.update(extra_env or {})  # e.g. SHOP_EVENTS_URL: publish order events
        processes: list[Service] = []
        try:
            for i in range(1, replicas + 1):
                processes.append(
                    start_service(chaos_services, "orders", name=f"orders{suffix}-{i}", env=env)
                )
        except BaseException:
            for process in processes:
                process.remove()
            raise
        for process in processes:
            _warm_up(http_url(process))
        shop = Shop(
            app=ShopClient(http_url(processes[0]), timeout=client_timeout),
            process=processes[0],
            replicas=processes,
            db=db,
            cache=cache,
            pay=pay,
            payments=payments,
            backing=backing,
            database_url=database_url,
            fragile=bool(REMOVED),
        )
        started.append(shop)
        return shop

    try:
        yield start
    finally:
        for shop in started:
            shop.app.close()
            for process in shop.replicas:
                process.remove()


def _warm_up(url: str) -> None:
    # Connections, pools and lazy imports get made now, not in the first measured call.
    client = ShopClient(url, timeout=10.0)
    try:
        for sku in ("mug", "tee", "sticker"):
            client.get(f"/products/{sku}")
        client.post("/orders", json={"customer": "warm-up", "sku": "mug", "qty": 1})
    finally:
        client.close()


@pytest.fixture
def shop(start_shop: Callable[..., Shop]) -> Shop:
    """The order API with default settings, behind proxies for all three dependencies."""
    return start_shop()
