"""The resource experiments (example_suite/test_resources.py) bite: each protection they
guard, removed alone, makes its experiment fail with the violation it was built for.

- ``SHOP_FRAGILE=pool``: no bounded pool; with every PostgreSQL slot held by another
  client, requests that find no idle connection fail (503) instead of queueing for one;
- ``SHOP_FRAGILE=hedging``: no hedged reads; the replica throttled to 0.1 CPU over a
  500 ms period sets the tail (p99 about 0.45 s against 0.25 s);
- ``SHOP_FRAGILE=cache_errors``: only lost connections count as "Redis unavailable";
  Redis's "OOM command not allowed" fails the request with a 500.

The whole fragile build (``SHOP_FRAGILE=1``) failing all three is checked by
test_suite_bites.py with the rest of the suite.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.example.test_suite_bites import run_example_suite

POOL = "test_resources.py::test_a_full_database_queues_orders_instead_of_failing_them"
CPU = "test_resources.py::test_a_cpu_starved_replica_does_not_set_the_tail_latency"
OOM = "test_resources.py::test_shop_keeps_selling_when_redis_is_out_of_memory"

# protection removed alone -> (the experiment that catches it, phrases of its failure)
CAUGHT: dict[str, tuple[str, tuple[str, ...]]] = {
    "pool": (POOL, ("SteadyStateViolated", "error rate", "> allowed 0.05", "-> 503")),
    "hedging": (CPU, ("SteadyStateViolated", "steady_state violated: p99", "> allowed 0.25 s")),
    "cache_errors": (OOM, ("SteadyStateViolated", "error rate", "-> 500")),
}


@pytest.mark.parametrize("protection", sorted(CAUGHT))
def test_each_resource_protection_removed_alone_is_caught(tmp_path: Path, protection: str) -> None:
    experiment, phrases = CAUGHT[protection]
    run = run_example_suite(tmp_path, fragile=protection, select=[experiment])
    assert set(run.outcomes) == {experiment}, run.explain()
    outcome = run.outcomes[experiment]
    assert outcome.result == "failed", f"{outcome!r}\n{run.explain()}"
    missing = [p for p in phrases if p not in outcome.message]
    assert not missing, f"the failure lacks {missing}: {outcome.message}"


def test_the_other_resource_experiments_hold_without_one_protection(tmp_path: Path) -> None:
    """Each experiment guards its own protection: without hedging, the database and
    Redis experiments still hold (they do not pass or fail by accident of the build)."""
    run = run_example_suite(tmp_path, fragile="hedging", select=[POOL, OOM])
    assert set(run.outcomes) == {POOL, OOM}, run.explain()
    bad = {k: o for k, o in run.outcomes.items() if o.result != "passed"}
    assert not bad, f"{bad}\n{run.explain()}"
