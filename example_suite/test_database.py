"""Chaos experiments on the order API's database: latency, lost connections, partitions."""

from __future__ import annotations

import collections
import time
import uuid

import pytest

from example_suite.shop.harness import Load, ShopRequestFailed
from example_suite.shop.testbed import Shop
from pytest_chaos import Chaos


@pytest.mark.chaos(blast_radius=["postgres"])
def test_orders_meet_their_latency_bound_on_a_slow_database(chaos: Chaos, shop: Shop) -> None:
    """Hypothesis: with 80±20 ms added to every database round trip, placing an order
    still takes under 1.5 s at p99 and nothing fails; afterwards it is fast again."""
    chaos.steady_state(shop.place_order, calls=10, p99=1.0)
    with shop.db.latency(80, jitter=20):
        chaos.steady_state(shop.place_order, calls=8, p99=1.5, max_error_rate=0.0)
    chaos.recovers(shop.place_order, within=2.0)


@pytest.mark.chaos(blast_radius=["postgres"])
def test_lost_database_connections_fail_cleanly_and_leave_no_half_order(
    chaos: Chaos, shop: Shop
) -> None:
    """Hypothesis: when the database resets every connection mid-traffic, requests fail
    with a clean 503 (never a 500, never a hang), every acknowledged order is stored,
    and no order exists without its stock taken (or the other way round)."""
    stock_before = shop.stock()["mug"]
    ordered_before = sum(o["qty"] for o in shop.stored_orders() if o["sku"] == "mug")
    history = chaos.history()
    statuses: collections.Counter[int | None] = collections.Counter()

    def submit() -> None:
        token = f"h-{uuid.uuid4().hex}"

        def write() -> None:
            try:
                shop.place_order(token, customer=token)
            except ShopRequestFailed as exc:
                statuses[exc.status] += 1
                raise

        history.write("orders", token, write)

    with Load(submit, workers=3):
        time.sleep(0.5)
        with shop.db.reset_peer():
            time.sleep(1.0)
        time.sleep(0.5)
    outcomes = collections.Counter(op.outcome for op in history.ops)
    assert outcomes["ack"] > 0 and outcomes["unknown"] > 0, (
        f"the experiment did not run as designed: outcomes {dict(outcomes)}"
    )
    assert set(statuses) <= {503}, (
        f"failures must be clean 503s with Retry-After, got statuses {dict(statuses)}"
    )
    chaos.recovers(shop.place_order, within=2.0)
    history.check(lambda key: shop.stored_customers("h-"))
    taken = stock_before - shop.stock()["mug"]
    ordered = sum(o["qty"] for o in shop.stored_orders() if o["sku"] == "mug") - ordered_before
    assert taken == ordered, (
        f"half-written orders: stock fell by {taken} but the orders stored meanwhile hold "
        f"{ordered} items"
    )


@pytest.mark.chaos(blast_radius=["postgres"])
def test_partition_between_api_and_database_loses_no_acknowledged_order(
    chaos: Chaos, shop: Shop
) -> None:
    """Hypothesis: a network partition between the API and its database makes order
    submission fail while it lasts, but every order the API acknowledged is stored once
    the partition heals, and none is stored twice."""
    history = chaos.history()

    def submit() -> None:
        token = f"h-{uuid.uuid4().hex}"
        history.write("orders", token, lambda: shop.place_order(token, customer=token))

    with Load(submit, workers=3):
        time.sleep(0.5)
        with chaos.partition([shop.db]):
            time.sleep(1.0)
        time.sleep(0.5)
    outcomes = collections.Counter(op.outcome for op in history.ops)
    assert outcomes["ack"] > 0 and outcomes["ack"] < len(history.ops), (
        f"the partition changed nothing: outcomes {dict(outcomes)}"
    )
    chaos.recovers(shop.place_order, within=2.0)
    history.check(lambda key: shop.stored_customers("h-"))


@pytest.mark.chaos(blast_radius=["postgres"])
def test_database_crash_loses_no_acknowledged_order(chaos: Chaos, shop: Shop) -> None:
    """Hypothesis: when PostgreSQL itself crashes (SIGKILL, mid-traffic) and restarts,
    every order acknowledged before, during and after the crash is stored, none twice,
    and the shop takes orders again within 5 s of the restart."""
    history = chaos.history()

    def submit() -> None:
        token = f"h-{uuid.uuid4().hex}"
        history.write("orders", token, lambda: shop.place_order(token, customer=token))

    with Load(submit, workers=3):
        time.sleep(0.5)
        with chaos.kill(shop.backing.postgres):  # healing restarts it and waits until ready
            time.sleep(1.0)
        time.sleep(0.5)
    outcomes = collections.Counter(op.outcome for op in history.ops)
    assert outcomes["ack"] > 0 and outcomes["ack"] < len(history.ops), (
        f"the crash changed nothing: outcomes {dict(outcomes)}"
    )
    chaos.recovers(shop.place_order, within=5.0)
    history.check(lambda key: shop.stored_customers("h-"))
