"""Canary comparisons: two shops side by side, only the canary's dependency faulted.

As Netflix's ChAP does, each experiment starts two instances of the order API: the
*control*, untouched, and the *canary*, whose own proxies (``postgres-canary``,
``redis-canary``: ``start_shop(group="canary")``) are the only ones in the blast radius.
``chaos.compare`` sends the same request to both, interleaved, and judges the canary
against the control with statistics (Mann-Whitney U on latency, a proportion test on
errors) and a degradation budget, instead of a fixed threshold.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from example_suite.shop.testbed import Shop
from pytest_chaos import Chaos
from pytest_chaos.checks import ComparisonViolated


def place_order(shop: Shop) -> object:
    """The request a customer makes: place an order (a few database round trips)."""
    return shop.place_order()


def browse(shop: Shop) -> object:
    """The request a visitor makes: a product page (read through the Redis cache)."""
    return shop.app.get("/products/mug")


@pytest.mark.chaos(blast_radius=["postgres-canary"])
def test_a_canary_on_a_slow_database_stays_within_its_degradation_budget(
    chaos: Chaos, start_shop: Callable[..., Shop]
) -> None:
    """Hypothesis: with 30 ms added to every database round trip of the canary, placing
    an order on it is at most 400 ms slower at p99 than on the control, and fails no
    more often. The slowdown is real (a budget of +20% on the median is exceeded,
    significantly), but within what the canary may cost."""
    control = start_shop()
    canary = start_shop(group="canary")
    within = chaos.compare(
        place_order,
        control=control,
        experiment=canary,
        samples=8,
        inject=lambda: canary.db.latency(30),
        max_degradation={"p99": "+400ms", "error_rate": "+0pt"},
    )
    assert within.latency.p_value < 0.01, "the canary's database was not slowed"
    # the same comparison under a budget the slowdown exceeds: the check bites
    with pytest.raises(ComparisonViolated, match=r"p50 .* budget \+20%"):
        chaos.compare(
            place_order,
            control=control,
            experiment=canary,
            samples=8,
            inject=lambda: canary.db.latency(30),
            max_degradation={"p50": "+20%"},
        )


@pytest.mark.chaos(blast_radius=["redis-canary"])
def test_a_canary_whose_cache_hangs_keeps_serving_within_budget(
    chaos: Chaos, start_shop: Callable[..., Shop]
) -> None:
    """Hypothesis: when the canary's Redis accepts connections and never answers, its
    product pages are at most 750 ms slower at p99 than the control's and fail no more
    often (the cache read times out and the page comes from the database). The kill
    switch stops the comparison as soon as half of the canary's last calls fail."""
    control = start_shop(client_timeout=1.5)
    canary = start_shop(group="canary", client_timeout=1.5)
    chaos.compare(
        browse,
        control=control,
        experiment=canary,
        samples=10,
        inject=lambda: canary.cache.timeout(),
        max_degradation={"p99": "+750ms", "error_rate": "+0pt"},
        abort_when={"error_rate": 0.5, "window": 2},
    )
