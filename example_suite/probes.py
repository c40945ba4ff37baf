"""Probes and rollback steps the YAML experiments call (``call: example_suite.probes:...``).

Each is called with the fixtures its parameters name (here the ``shop``).
"""

from __future__ import annotations

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
