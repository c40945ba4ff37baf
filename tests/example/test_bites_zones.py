"""The zone and region experiments bite: with a hidden cross-zone dependency
(``SHOP_FRAGILE=zone_isolation``: zone B's replica reaches the data stores through zone
A's paths), losing zone A (Chaos Gorilla) or region A (Chaos Kong) fails the orders
that zone B takes, and both experiments fail on their error rate.

The whole fragile build (``SHOP_FRAGILE=1``) is checked with the rest of the suite in
test_suite_bites.py.
"""

from __future__ import annotations

from pathlib import Path

from tests.example.test_suite_bites import run_example_suite

ZONES = "test_zones.py::"

# experiment -> phrases its failure message must contain
EXPECTED: dict[str, tuple[str, ...]] = {
    ZONES + "test_chaos_gorilla_the_shop_survives_the_loss_of_a_zone": (
        "steady_state violated: error rate",
        "> allowed 0.00",
        "database unavailable",
    ),
    ZONES + "test_chaos_kong_the_shop_fails_over_to_another_region_and_back": (
        "steady_state violated: error rate",
        "> allowed 0.05",
        "database unavailable",
    ),
}


def test_a_cross_zone_dependency_is_caught(tmp_path: Path) -> None:
    """Wire zone B through zone A: both experiments fail, each on its error rate."""
    run = run_example_suite(tmp_path, fragile="zone_isolation", select=sorted(EXPECTED))
    assert set(run.outcomes) == set(EXPECTED), (
        f"selected {sorted(run.outcomes)}, expected {sorted(EXPECTED)}\n{run.explain()}"
    )
    wrong = {
        name: outcome
        for name, outcome in run.outcomes.items()
        if outcome.result != "failed" or not all(p in outcome.message for p in EXPECTED[name])
    }
    assert not wrong, (
        f"with a cross-zone dependency, these experiments did not fail with the expected "
        f"message ({ {n: EXPECTED[n] for n in wrong} }): {wrong}\n{run.explain()}"
    )
