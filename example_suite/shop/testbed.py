"""The test bed around the shop: its data stores, its payment provider, and the order API
as a test sees it (a client, the proxies in front of each dependency, the ground truth).

The example suite's fixtures (example_suite/conftest.py) build these; tests use them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from example_suite.shop.harness import ShopClient, http_url, orders_in, stock_in
from pytest_chaos import ChaosProxy
from pytest_chaos.services import Service

__all__ = ["Backing", "Payments", "Shop"]


@dataclass(frozen=True)
class Backing:
    """The shop's data stores for this worker: the services pytest-chaos's
    ``chaos_services`` started (containers when Docker answers, local binaries otherwise).

    Tests reach them through proxies; ``postgres`` and ``redis`` themselves are there for
    service faults (``chaos.kill(backing.postgres)``).
    """

    postgres: Service
    redis: Service

    @property
    def postgres_admin_url(self) -> str:
        """The URL of the cluster's default database, reached directly."""
        return str(self.postgres.url)

    def database_url(self, address: str, name: str) -> str:
        """The URL of database ``name`` reached at ``address`` (a proxy), same credentials."""
        parts = urlsplit(self.postgres_admin_url)
        credentials = parts.netloc.rpartition("@")[0]
        return urlunsplit((parts.scheme, f"{credentials}@{address}", f"/{name}", "", ""))


class Payments:
    """The payment provider process (a ``chaos_services.process`` service) and its ledger."""

    def __init__(self, process: Service) -> None:
        self.process = process
        self.client = ShopClient(http_url(process), timeout=5.0)

    def __repr__(self) -> str:
        return f"<Payments {self.process!r}>"

    @property
    def address(self) -> str:
        """``host:port`` of the provider itself (tests put a proxy in front of it)."""
        return self.process.address

    def charges(self, order_id: int | None = None) -> list[dict[str, Any]]:
        """The charges the provider made (for one order), read directly."""
        query = "" if order_id is None else f"?order_id={order_id}"
        return list(self.client.get(f"/charges{query}")["charges"])

    def requests_seen(self) -> int:
        """How many charge requests reached the provider."""
        return int(self.client.get("/health")["requests"])


@dataclass
class Shop:
    """The order API under test and everything around it.

    ``app`` is a client of the order API; ``db``, ``cache`` and ``pay`` are the chaos
    proxies the API reaches PostgreSQL, Redis and the payment provider through;
    ``database_url`` reads the ground truth directly, bypassing every proxy; ``backing``
    holds the Redis and PostgreSQL services themselves.
    ``replicas`` are the order API processes (one unless asked for more; ``process`` is
    the first), ``chaos_services.process`` services named ``orders-1``, ``orders-2``, ...:
    service faults (``chaos.kill``, ``chaos.restart``) work on them.
    """

    app: ShopClient
    process: Service
    replicas: list[Service]
    db: ChaosProxy
    cache: ChaosProxy
    pay: ChaosProxy
    payments: Payments
    backing: Backing
    database_url: str
    fragile: bool

    def place_order(
        self, key: str | None = None, *, qty: int = 1, sku: str = "mug", customer: str = "chaos"
    ) -> Any:
        """Submit an order (with an idempotency key, a new one unless given)."""
        return self.app.post(
            "/orders",
            json={"customer": customer, "sku": sku, "qty": qty},
            headers={"Idempotency-Key": key or uuid.uuid4().hex},
        )

    def pay_order(self, order_id: int) -> Any:
        """Pay an order through the order API."""
        return self.app.post(f"/orders/{order_id}/pay")

    def stored_orders(self) -> list[dict[str, Any]]:
        """Every order in PostgreSQL, read directly."""
        return orders_in(self.database_url)

    def stored_customers(self, prefix: str) -> list[str]:
        """Customer names starting with ``prefix`` of every stored order (repeats kept)."""
        return [o["customer"] for o in self.stored_orders() if o["customer"].startswith(prefix)]

    def stock(self) -> dict[str, int]:
        """Stock per SKU in PostgreSQL, read directly."""
        return stock_in(self.database_url)

    def health(self) -> Any:
        """The order API's liveness answer (breaker and cache state)."""
        return self.app.get("/health")
