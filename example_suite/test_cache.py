"""Chaos experiments on the order API's cache: Redis refusing connections or black-holed."""

from __future__ import annotations

import pytest

from example_suite.shop.testbed import Shop
from pytest_chaos import Chaos


def _browse_and_buy(shop: Shop) -> None:
    """What a customer does: look at a product, order it, look at the order."""
    shop.app.get("/products/mug")
    order = shop.place_order()
    shop.app.get(f"/orders/{order['id']}")


@pytest.mark.chaos(blast_radius=["redis"])
def test_shop_keeps_selling_when_redis_is_down(chaos: Chaos, shop: Shop) -> None:
    """Hypothesis: with Redis gone, whether it refuses connections or swallows them, the
    shop serves from PostgreSQL: no error, p99 under 1.5 s, and the cache comes back."""
    chaos.steady_state(lambda: _browse_and_buy(shop), calls=10, p99=1.0)
    # Each phase outlasts the shop's 1 s "skip Redis after a failure" window, so the
    # shop meets the fault again and again, not just once.
    with shop.cache.down():
        chaos.steady_state(lambda: _browse_and_buy(shop), duration=1.6, interval=0.02, p99=1.5)
    # A black hole is the harder case: connections open, but nothing ever answers (a
    # shop without a Redis timeout hangs to the heal, 2 s, well past the 1.5 s bound).
    with shop.cache.timeout():
        chaos.steady_state(lambda: _browse_and_buy(shop), duration=2.0, interval=0.02, p99=1.5)
    chaos.recovers(lambda: shop.app.get("/products/tee")["source"] == "cache", within=3.0)


@pytest.mark.chaos(blast_radius=["redis"])
def test_a_frozen_redis_server_does_not_freeze_the_shop(chaos: Chaos, shop: Shop) -> None:
    """Hypothesis: when the Redis server itself freezes (SIGSTOP, or ``docker pause``: a
    long GC or VM pause), the shop keeps serving from PostgreSQL with no error and p99
    under 1.5 s, and uses the cache again once Redis thaws."""
    chaos.steady_state(lambda: _browse_and_buy(shop), calls=10, p99=1.0)
    with chaos.pause(shop.backing.redis):
        chaos.steady_state(lambda: _browse_and_buy(shop), duration=2.5, interval=0.02, p99=1.5)
    chaos.recovers(lambda: shop.app.get("/products/tee")["source"] == "cache", within=3.0)
