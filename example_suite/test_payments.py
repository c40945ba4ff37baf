"""Chaos experiments on the payment provider: errors, outages and duplicated requests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from example_suite.shop.testbed import Shop
from pytest_chaos import Chaos

BREAKER_RESET = 2.0  # seconds the shop's payment breaker stays open


def _pay_a_new_order(shop: Shop) -> Callable[[], Any]:
    def checkout() -> Any:
        order = shop.place_order()
        return shop.pay_order(order["id"])

    return checkout


@pytest.mark.proxy_extensions
@pytest.mark.chaos(blast_radius=["payments"])
def test_breaker_opens_when_payments_fail_30_percent(
    chaos: Chaos, start_shop: Callable[..., Shop]
) -> None:
    """Hypothesis: when the provider fails 30% of requests, the payment breaker opens
    within 25 checkouts, then checkouts fail fast (under 250 ms) without calling the
    provider, and after the provider heals the breaker lets a trial through and closes."""
    shop: Shop = start_shop(breaker_reset=BREAKER_RESET)
    checkout = _pay_a_new_order(shop)
    chaos.steady_state(checkout, calls=5)
    failing = shop.pay.http_error(500, rate=0.3)
    chaos.circuit_breaker(
        checkout,
        proxy=shop.pay,
        opens_within_calls=25,
        fail_fast=0.25,
        fault=failing,
        reset_timeout=BREAKER_RESET,
    )


@pytest.mark.proxy_extensions
@pytest.mark.chaos(blast_radius=["payments"])
def test_payment_outage_causes_no_retry_storm(chaos: Chaos, shop: Shop) -> None:
    """Hypothesis: while the provider answers every request with 503, the shop sends it
    at most one attempt per checkout on average (retries are capped and the breaker
    cuts them off), instead of multiplying the load on a struggling dependency."""
    checkout = _pay_a_new_order(shop)
    with shop.pay.http_error(503):
        chaos.retries(
            checkout, proxy=shop.pay, max_attempts_per_call=1.0, calls=10, counter="http_requests"
        )


@pytest.mark.proxy_extensions
@pytest.mark.chaos(blast_radius=["payments"])
def test_duplicated_payment_request_charges_once(chaos: Chaos, shop: Shop) -> None:
    """Hypothesis: when the network delivers the shop's charge request twice, and the
    customer presses "pay" again, the order is charged exactly once."""
    order = shop.place_order()
    seen_before = shop.payments.requests_seen()
    chaos.idempotent(
        lambda: shop.pay_order(order["id"]),
        state=lambda: shop.payments.charges(order["id"]),
        via=shop.pay.http_duplicate(copies=2),
    )
    # The check compares the state after the replays with the state after the first
    # delivery; these two lines pin the first delivery itself: it really reached the
    # provider twice, and it charged once.
    assert shop.payments.requests_seen() - seen_before >= 2, "the request was not duplicated"
    charges = shop.payments.charges(order["id"])
    assert len(charges) == 1, f"order {order['id']} was charged {len(charges)} times: {charges}"
