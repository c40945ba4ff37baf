"""Hypothesis fault schedules on the shop: overlapping faults on its three dependencies,
shrunk to the minimal failing schedule.

Each alone, Redis going down and PostgreSQL going down are covered: the cache serves
products while the database is gone, the database serves them while Redis is gone. When
both fail at once the resilient build serves the last product it read, marked stale;
without that protection (``SHOP_FRAGILE=stale_reads``) browsing answers 503, and
Hypothesis shrinks whatever schedule found it to exactly the two overlapping faults.
"""

from __future__ import annotations

import time

import pytest

from example_suite.shop.testbed import Shop
from pytest_chaos import Chaos

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402

from pytest_chaos.strategies import FaultSchedule, fault_schedules, schedule_settings  # noqa: E402

DEPENDENCIES = ["redis", "postgres", "payments"]


def _fresh_cache(shop: Shop) -> None:
    """Start each example from a warm cache: the fixtures (the shop, its cache) are
    shared by every example, and the last one may have left Redis being skipped."""
    deadline = time.monotonic() + 3.0
    while shop.health()["cache"] != "ok" and time.monotonic() < deadline:
        time.sleep(0.05)
    # an order drops the product's cache entry; the next read stores a fresh one (2 s)
    shop.place_order(sku="mug")
    assert shop.app.get("/products/mug")["source"] == "database"


@pytest.mark.chaos(blast_radius=DEPENDENCIES)
@given(schedule=fault_schedules(DEPENDENCIES, ["down"], max_faults=4, horizon=0.4, resolution=0.2))
# derandomize: a CI gate tries the same schedules every run (no seed can miss the bug)
@settings(schedule_settings(max_examples=10, derandomize=True))
def test_browsing_survives_any_schedule_of_dependency_faults(
    chaos: Chaos, shop: Shop, schedule: FaultSchedule
) -> None:
    """Hypothesis: whatever the schedule of outages and slowdowns on Redis, PostgreSQL
    and the payment provider, a product page answers 200 within 2 s, from the cache,
    the database or the last read."""
    _fresh_cache(shop)
    chaos.run_schedule(schedule, lambda: shop.app.get("/products/mug"), interval=0.02)
