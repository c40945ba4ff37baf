"""The replication-lag experiments bite: the shop without its replica routing
(``SHOP_FRAGILE=read_your_writes``: every read goes to the replica, however far behind)
fails the read-your-writes and the staleness experiments, each with its own numbers,
while the catch-up experiment, which no shop protection concerns, passes.

The whole fragile build (``SHOP_FRAGILE=1``) is checked with the rest of the suite in
test_suite_bites.py.
"""

from __future__ import annotations

from pathlib import Path

from tests.example.test_suite_bites import run_example_suite

REPLICATION = "test_replication.py::"

# experiment -> (outcome, phrases its failure message must contain)
EXPECTED: dict[str, tuple[str, tuple[str, ...]]] = {
    REPLICATION + "test_the_shop_reads_its_own_writes_while_the_replica_lags": (
        "failed",
        ("read-your-writes violated:", "orders were missing", "reads went to ['replica'"),
    ),
    REPLICATION + "test_stale_reads_stay_within_the_staleness_bound": (
        "failed",
        ("staleness bound violated:", "bytes of WAL behind the primary > allowed 32768"),
    ),
    REPLICATION + "test_the_replica_catches_up_within_3s_after_the_link_heals": ("passed", ()),
}


def test_reads_without_replica_routing_are_caught(tmp_path: Path) -> None:
    """Remove the replica routing: the two read experiments fail, each for its reason."""
    run = run_example_suite(tmp_path, fragile="read_your_writes", select=sorted(EXPECTED))
    assert set(run.outcomes) == set(EXPECTED), (
        f"selected {sorted(run.outcomes)}, expected {sorted(EXPECTED)}\n{run.explain()}"
    )
    wrong = {
        name: outcome
        for name, outcome in run.outcomes.items()
        if outcome.result != EXPECTED[name][0]
        or not all(p in outcome.message for p in EXPECTED[name][1])
    }
    assert not wrong, (
        f"without 'read_your_writes', these experiments did not end as expected "
        f"({ {n: EXPECTED[n] for n in wrong} }): {wrong}\n{run.explain()}"
    )
