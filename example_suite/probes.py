"""Probes and rollback steps the YAML experiments call (``call: example_suite.probes:...``).

Each is called with the fixtures its parameters name (here the ``shop``).
"""

from __future__ import annotations

import uuid

from example_suite.shop.harness import ShopClient, ShopRequestFailed
from example_suite.shop.testbed import Shop


def place_order(shop: Shop) -> None:
    """Submit one order; raises when the order API does not accept it."""
    shop.place_order()


def browse(shop: Shop) -> None:
    """Read a product, from the cache or the database."""
    shop.app.get("/products/tee")


def database_answers(shop: Shop) -> None:
    """Rollback check: the order API reaches its database again (raises if not)."""
    shop.place_order()


def checkout(shop: Shop) -> None:
    """Place an order and pay it through the order API (the payment provider is called);
    raises when either step fails."""
    order = shop.place_order()
    shop.pay_order(order["id"])


def checkout_answers(shop: Shop) -> None:
    """Checkout gets a prompt, clean answer: paid, or refused with 402 or 503 (the
    customer is told to try again). A timeout, a 500 or a 502 raises."""
    order = shop.place_order()
    try:
        shop.pay_order(order["id"])
    except ShopRequestFailed as exc:
        if exc.status not in (402, 503):
            raise


def order_or_clean_503(shop: Shop) -> None:
    """Submit an order with a patient client (10 s): accepted, or refused with a clean
    503 ("database unavailable", Retry-After). A hang or any other error raises."""
    client = ShopClient(shop.app.base_url, timeout=10.0)
    try:
        client.post(
            "/orders",
            json={"customer": "chaos", "sku": "mug", "qty": 1},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
    except ShopRequestFailed as exc:
        if exc.status != 503:
            raise
    finally:
        client.close()
