"""Exploration of the shop: each entry point under every default fault on every dependency.

One scenario per entry point (browse, checkout, pay); ``@pytest.mark.chaos_explore``
runs it once without a fault and once per target x fault of the default catalogue
(TCP faults on PostgreSQL and Redis, TCP and HTTP faults on the payment provider; paying
on the payment provider only; browsing also fills Redis's memory, a resource fault),
and prints the resilience matrix. The hypotheses are the
shop's promises, whatever fails:

- browsing always shows a product read before (fresh, cached or marked stale), also
  when the cache and the database fail together (``test_explore_browse_pairs``);
- every order or payment answers with a success or a clean refusal (502/503 with a
  reason), never a hang;
- no acknowledged order is lost, none stored twice (``chaos.history``), also when
  PostgreSQL crashes mid-traffic and restarts (``postgres-crash``: its target is of
  kind ``service``, whose catalogue adds the crash; the checkout scenario keeps orders
  coming until the database is back);
- one checkout reaches the provider at most 3 times (retries are capped: 5 attempts
  in a burst is a retry loop without discipline), and at most 1.5 times per checkout on
  average over four more (the breaker cuts an outage off: 3 + 2 attempts, then none);
  a 429 asks for fewer: at most one each time; and no order is charged twice.

The fault is injected when the scenario starts, into the proxies the ``shop`` fixture
created; it is healed when the scenario returns.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from example_suite.shop.harness import Load, ShopRequestFailed
from example_suite.shop.testbed import Shop
from pytest_chaos import BlastRadius, Chaos
from pytest_chaos.explore import DEFAULT_FAULTS

TARGETS = {"postgres": "tcp", "redis": "tcp", "payments": "http"}
#: browsing also fills Redis's memory (kind service: the proxy's upstream is the Service)
BROWSE_TARGETS = {**TARGETS, "redis": "service"}
BROWSE_FAULTS = {"redis": [*DEFAULT_FAULTS["tcp"], "memory_limit:4MiB fill=true"]}
#: checkout also crashes PostgreSQL (kind service: the proxy's upstream is the Service)
CHECKOUT_TARGETS = {**TARGETS, "postgres": "service"}
#: seconds a crash cell may take to crash and restart the database
CRASH_WITHIN = 60.0
#: a client that waits longer than any of the shop's own deadlines: a hang is the
#: shop's fault, not the client's impatience
CLIENT_TIMEOUT = 5.0


def _clean(call: Callable[[], Any]) -> Callable[[], Any]:
    """A probe that accepts a clean refusal: 502/503 are the shop saying "not now"."""

    def probe() -> Any:
        try:
            return call()
        except ShopRequestFailed as exc:
            if exc.status in (502, 503):
                return exc.status
            raise

    return probe


@pytest.fixture
def explored_shop(start_shop: Callable[..., Shop]) -> Shop:
    """The shop, with a client patient enough to tell a hang from a slow answer."""
    return start_shop(client_timeout=CLIENT_TIMEOUT)


@pytest.mark.proxy_extensions
@pytest.mark.chaos_explore(targets=BROWSE_TARGETS, faults=BROWSE_FAULTS)
@pytest.mark.chaos(blast_radius=list(TARGETS))
def test_explore_browse(chaos: Chaos, explored_shop: Shop) -> None:
    """Hypothesis: a product read before is always shown (from the cache, the database,
    or the last read, marked stale), in time."""
    shop = explored_shop
    chaos.steady_state(lambda: shop.app.get("/products/mug"), calls=2)


@pytest.mark.chaos_explore(targets=["redis", "postgres"], faults=["down", "timeout"], pairs=True)
@pytest.mark.chaos(blast_radius=BlastRadius(targets=("redis", "postgres"), max_concurrent_faults=2))
def test_explore_browse_pairs(chaos: Chaos, explored_shop: Shop) -> None:
    """Hypothesis: the same, with the cache and the database failing together."""
    shop = explored_shop
    chaos.steady_state(lambda: shop.app.get("/products/mug"), calls=2)


@pytest.mark.proxy_extensions
@pytest.mark.chaos_explore(targets=CHECKOUT_TARGETS)
@pytest.mark.chaos(blast_radius=list(CHECKOUT_TARGETS))
def test_explore_checkout(chaos: Chaos, explored_shop: Shop) -> None:
    """Hypothesis: placing an order answers every call (created, or a clean 503), and
    after the heal every acknowledged order is stored, once; when the database crashes,
    orders keep coming (3 clients) until it is back, and none acknowledged is lost."""
    shop = explored_shop
    history = chaos.history()
    prefix = f"explore-{uuid.uuid4().hex[:8]}-"

    def order() -> Any:
        token = f"{prefix}{uuid.uuid4().hex}"
        failure: list[Exception] = []

        def place() -> Any:
            try:
                return shop.place_order(token, customer=token)
            except Exception as exc:
                failure.append(exc)
                raise

        history.write("orders", token, place)  # ack, or unknown (kept either way)
        if failure:
            raise failure[0]
        return token

    def submit() -> None:
        token = f"{prefix}{uuid.uuid4().hex}"
        history.write("orders", token, lambda: shop.place_order(token, customer=token))

    chaos.steady_state(_clean(order), calls=2)
    explored = chaos.explored
    if explored is not None and str(explored.fault).startswith("crash"):
        # traffic before, during and after the crash: the fault heals itself once the
        # database answers again
        with Load(submit, workers=3):
            deadline = time.monotonic() + CRASH_WITHIN
            while chaos.active_faults and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.2)
    chaos.heal_all()
    history.check(lambda key: shop.stored_customers(prefix))


# Paying is explored on the provider alone: under a database or cache fault the order
# is refused before any payment (the checkout exploration covers that), and a
# black-holed database makes each of the five checkouts wait out its deadlines (19 s
# for one cell) to say nothing about payments.
PAY_TARGETS = {"payments": "http"}


@pytest.mark.proxy_extensions
@pytest.mark.chaos_explore(targets=PAY_TARGETS)
@pytest.mark.chaos(blast_radius=list(PAY_TARGETS))
def test_explore_pay(chaos: Chaos, explored_shop: Shop) -> None:
    """Hypothesis: paying answers every call, reaches the provider at most 3 times for
    one checkout and 1.5 times per checkout on average over four more, and charges no
    order twice."""
    shop = explored_shop
    orders: list[int] = []

    def checkout() -> Any:
        order = shop.place_order(customer="explore")
        orders.append(int(order["id"]))
        return shop.pay_order(order["id"])

    explored = chaos.explored
    if explored is not None and explored.fault == "http_duplicate":
        # a duplicated request is one attempt that arrives twice: count charges instead
        chaos.steady_state(_clean(checkout), calls=2)
    else:
        # a 429 asks the shop to wait: then not even the first retry is allowed
        rate_limited = explored is not None and str(explored.fault).startswith("http_error:429")
        # one checkout alone, on a fresh breaker: its retries are capped at 3 attempts;
        # five back to back is the eager retry loop the breaker hides over four checkouts
        chaos.retries(
            _clean(checkout),
            proxy=shop.pay,
            max_attempts_per_call=1.0 if rate_limited else 3.0,
            calls=1,
            counter="http_requests",
        )
        # then four more: the breaker cuts a failing provider off
        chaos.retries(
            _clean(checkout),
            proxy=shop.pay,
            max_attempts_per_call=1.0 if rate_limited else 1.5,
            calls=4,
            counter="http_requests",
        )
    twice = {o: n for o in orders if (n := len(shop.payments.charges(o))) > 1}
    assert not twice, f"orders charged more than once (order: charges): {twice}"
