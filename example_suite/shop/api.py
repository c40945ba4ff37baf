"""The order API: products, orders and payment of orders.

Rules it keeps, whatever its dependencies do:

- an order is acknowledged (201/200) only after PostgreSQL committed it, together with
  its stock; any doubt is a 503, never a 2xx;
- ``Idempotency-Key`` on ``POST /orders`` makes a retried submission return the first
  order (Redis is the fast path, the database's unique key the truth);
- paying an order charges it once, even when the request to the provider is retried or
  duplicated on the way;
- Redis is an optimisation: when it is gone, reads go to the database.

Errors are JSON ``{"error": ...}`` with 400 (bad input), 404, 409 (out of stock), 502
(the provider failed), 503 (a dependency is unavailable; retry later).
"""

from __future__ import annotations

import json
import math
from typing import Any

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue

from example_suite.shop.cache import Cache
from example_suite.shop.config import ShopConfig
from example_suite.shop.db import Database, DatabaseUnavailable, OutOfStock, UnknownProduct
from example_suite.shop.events import BrokerUnavailable, EventPublisher, make_event
from example_suite.shop.payments import (
    BreakerOpen,
    PaymentDeclined,
    PaymentsClient,
    PaymentUnavailable,
    RateLimited,
)

__all__ = ["Backends", "create_app"]

_PRODUCT_TTL = 2.0
_ORDER_TTL = 5.0
_KEY_TTL = 24 * 3600.0


class Backends:
    """The order API's dependencies, built from a :class:`ShopConfig`."""

    def __init__(self, config: ShopConfig) -> None:
        self.config = config
        self.db = Database(config.database_url, config.resilience)
        self.cache = Cache(config.redis_url, config.redis_prefix, config.resilience)
        self.payments = PaymentsClient(config.payments_url, config.resilience)
        # order events ("placed", "paid") for the event consumers, when a broker is set
        self.events = (
            EventPublisher(
                config.events_url,
                config.events_stream,
                buffer="event_buffer" not in config.removed,
            )
            if config.events_url
            else None
        )
        self.events_lost = 0

    def __repr__(self) -> str:
        mode = f"without {sorted(self.config.removed)}" if self.config.fragile else "resilient"
        return f"<Backends {mode} {self.db!r} {self.cache!r} {self.payments!r}>"

    def close(self) -> None:
        """Close every client."""
        self.db.close()
        self.cache.close()
        self.payments.close()
        if self.events is not None:
            self.events.close()

    def emit(self, order: dict[str, Any], seq: int, status: str) -> None:
        """Publish the order's event (sent, or queued while the broker is away); an
        event the full queue refuses is counted in ``events_lost``, the order stands."""
        if self.events is None:
            return
        try:
            self.events.publish(make_event(f"order-{order['id']}", seq, status))
        except BrokerUnavailable:
            self.events_lost += 1


def _order_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "customer": row["customer"],
        "sku": row["sku"],
        "qty": row["qty"],
        "amount_cents": row["amount_cents"],
        "status": row["status"],
        "charge_id": row["charge_id"],
    }


def create_app(config: ShopConfig | None = None) -> Flask:
    """The order API's Flask application (configuration from the environment by default)."""
    shop = Backends(config or ShopConfig.from_env())
    app = Flask("orders")
    app.extensions["shop"] = shop
    use_keys = shop.config.resilience.idempotency_keys
    stale_reads = shop.config.resilience.stale_reads
    last_products: dict[str, dict[str, Any]] = {}  # sku -> the last row read

    @app.errorhandler(DatabaseUnavailable)
    def _db_down(exc: DatabaseUnavailable) -> ResponseReturnValue:
        return jsonify(error=f"database unavailable: {exc}"), 503, {"Retry-After": "1"}

    @app.get("/health")
    def health() -> ResponseReturnValue:
        # Liveness only: it touches no dependency, so it answers while they are faulted.
        return jsonify(
            status="ok",
            fragile=sorted(shop.config.removed),
            cache=shop.cache.state,
            payments_breaker=shop.payments.breaker_state,
            payment_attempts=shop.payments.attempts,
            events_waiting=None if shop.events is None else shop.events.waiting,
            events_lost=shop.events_lost,
        )

    @app.get("/products/<sku>")
    def product(sku: str) -> ResponseReturnValue:
        cached = shop.cache.get(f"product:{sku}")
        if cached is not None:
            return jsonify(json.loads(cached) | {"source": "cache"})
        try:
            row = shop.db.get_product(sku)
        except DatabaseUnavailable:
            # Redis could not answer either: the last read, marked stale, beats a 503
            stale = last_products.get(sku) if stale_reads else None
            if stale is None:
                raise
            return jsonify(stale | {"source": "stale"}), 200, {"Warning": '110 - "stale"'}
        if row is None:
            return jsonify(error=f"unknown product {sku!r}"), 404
        last_products[sku] = row
        shop.cache.set(f"product:{sku}", json.dumps(row), _PRODUCT_TTL)
        return jsonify(row | {"source": "database"})

    @app.post("/orders")
    def create_order() -> ResponseReturnValue:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return jsonify(error="body must be a JSON object {customer, sku, qty}"), 400
        customer, sku, qty = body.get("customer"), body.get("sku"), body.get("qty", 1)
        if not isinstance(customer, str) or not isinstance(sku, str):
            return jsonify(error="customer and sku must be strings"), 400
        if not isinstance(qty, int) or qty <= 0:
            return jsonify(error=f"qty must be a positive integer, got {qty!r}"), 400
        key = request.headers.get("Idempotency-Key") if use_keys else None
        if key is not None:
            known = shop.cache.get(f"idem:{key}")
            if known is not None:
                row = shop.db.get_order(int(known))
                if row is not None:
                    return jsonify(_order_json(row)), 200, {"Idempotent-Replayed": "true"}
        try:
            row, created = shop.db.create_order(key, customer, sku, qty)
        except UnknownProduct:
            return jsonify(error=f"unknown product {sku!r}"), 404
        except OutOfStock:
            return jsonify(error=f"not enough stock of {sku!r} for {qty}"), 409
        if key is not None:
            shop.cache.set(f"idem:{key}", str(row["id"]), _KEY_TTL)
        shop.cache.delete(f"product:{sku}")
        headers = {} if created else {"Idempotent-Replayed": "true"}
        if created:
            shop.emit(row, 1, "placed")
        return jsonify(_order_json(row)), 201 if created else 200, headers

    @app.get("/orders/<int:order_id>")
    def get_order(order_id: int) -> ResponseReturnValue:
        cached = shop.cache.get(f"order:{order_id}")
        if cached is not None:
            return jsonify(json.loads(cached) | {"source": "cache"})
        row = shop.db.get_order(order_id)
        if row is None:
            return jsonify(error=f"no order {order_id}"), 404
        order = _order_json(row)
        shop.cache.set(f"order:{order_id}", json.dumps(order), _ORDER_TTL)
        return jsonify(order | {"source": "database"})

    @app.post("/orders/<int:order_id>/pay")
    def pay(order_id: int) -> ResponseReturnValue:
        row = shop.db.get_order(order_id)
        if row is None:
            return jsonify(error=f"no order {order_id}"), 404
        if row["status"] == "paid" and use_keys:
            # Paying twice is answered from the order; the fragile build charges again.
            return jsonify(_order_json(row)), 200, {"Idempotent-Replayed": "true"}
        try:
            charge = shop.payments.charge(order_id, row["amount_cents"])
        except BreakerOpen as exc:
            return jsonify(error=f"payments unavailable: {exc}"), 503, {"Retry-After": "3"}
        except RateLimited as exc:
            # the provider's own wait, passed on to our callers (whole seconds, rounded up)
            wait = str(max(1, math.ceil(exc.retry_after)))
            return jsonify(error=f"payments rate-limited: {exc}"), 503, {"Retry-After": wait}
        except PaymentDeclined as exc:
            return jsonify(error=str(exc)), 402
        except PaymentUnavailable as exc:
            return jsonify(error=f"payment failed: {exc}"), 502
        paid = shop.db.mark_paid(order_id, str(charge["id"]))
        shop.cache.delete(f"order:{order_id}")
        assert paid is not None  # orders are never deleted
        shop.emit(paid, 2, "paid")
        return jsonify(_order_json(paid)), 200

    from example_suite.shop import reads

    reads.register(app, shop)  # the read replica, when SHOP_REPLICA_URL names one
    return app
