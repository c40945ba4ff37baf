"""Hypothesis fault schedules on the shop: outages on its three dependencies, shrunk to
the minimal failing schedule.

Each alone, Redis going down and PostgreSQL going down are covered: the cache serves
products while the database is gone, the database serves them while Redis is gone. When
both fail at once the resilient build serves the last product it read, marked stale;
without that protection (``SHOP_FRAGILE=stale_reads``) browsing answers 503, and
Hypothesis shrinks whatever schedule found it to exactly the two outages. ("At once"
as the shop sees it: after a Redis failure it skips Redis for 1 s, so a database outage
starting within that second also opens the gap; the shrunk schedule starts both at 0.)
"""

from __future__ import annotations

import time

import pytest

from example_suite.shop.harness import ShopRequestFailed
from example_suite.shop.testbed import Shop
from pytest_chaos import Chaos

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402

from pytest_chaos.strategies import FaultSchedule, fault_schedules, schedule_settings  # noqa: E402

DEPENDENCIES = ["redis", "postgres", "payments"]


def _fresh_cache(shop: Shop) -> None:
    """Start each example from a warm cache: the fixtures (the shop, its cache) are
    shared by every example, and the last one may have left Redis being skipped (1 s
    after a failure) or a pooled database connection closed. Set-up, not judged."""
    deadline = time.monotonic() + 5.0
    while True:
        try:
            if shop.health()["cache"] == "ok":
                # an order drops the product's cache entry; the next read stores a
                # fresh one (2 s), and the shop's last read of it
                shop.place_order(sku="mug")
                if shop.app.get("/products/mug")["source"] == "database":
                    return
        except ShopRequestFailed:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"the shop's cache did not come back in 5 s: {shop.health()}")
        time.sleep(0.05)


@pytest.mark.chaos(blast_radius=DEPENDENCIES)
@given(schedule=fault_schedules(DEPENDENCIES, ["down"], max_faults=4, horizon=0.4, resolution=0.2))
# derandomize: a CI gate tries the same schedules every run (no seed can miss the bug)
@settings(schedule_settings(max_examples=6, derandomize=True))
def test_browsing_survives_any_schedule_of_dependency_faults(
    chaos: Chaos, shop: Shop, schedule: FaultSchedule
) -> None:
    """Hypothesis: whatever the schedule of outages and slowdowns on Redis, PostgreSQL
    and the payment provider, a product page answers 200 within 2 s, from the cache,
    the database or the last read."""
    _fresh_cache(shop)

    def browse() -> None:
        try:
            shop.app.get("/products/mug")
        except ShopRequestFailed as exc:  # the hypothesis is violated, not the experiment
            raise AssertionError(f"a product page failed under the schedule: {exc}") from None

    chaos.run_schedule(schedule, browse, interval=0.02)
