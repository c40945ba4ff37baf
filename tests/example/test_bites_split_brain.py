"""The split-brain experiment bites: the scheduler without fencing
(``SHOP_FRAGILE=fencing``: a leader that cannot renew its lease keeps leading, and the
database takes any token) fails it with the tokens going back in the jobs table.

The whole fragile build (``SHOP_FRAGILE=1``) is checked with the rest of the suite in
test_suite_bites.py.
"""

from __future__ import annotations

from pathlib import Path

from tests.example.test_suite_bites import run_example_suite

EXPERIMENT = (
    "test_split_brain.py::"
    "test_a_leader_cut_off_from_the_lease_store_gives_way_to_exactly_one_new_leader"
)


def test_a_scheduler_without_fencing_is_caught(tmp_path: Path) -> None:
    """Remove the fencing: two leaders' jobs are accepted, and the message says so."""
    run = run_example_suite(tmp_path, fragile="fencing", select=[EXPERIMENT])
    assert set(run.outcomes) == {EXPERIMENT}, run.explain()
    outcome = run.outcomes[EXPERIMENT]
    assert outcome.result == "failed", run.explain()
    for phrase in ("split brain: two leaders' jobs accepted, tokens went back", "by scheduler-a"):
        assert phrase in outcome.message, f"{phrase!r} not in {outcome.message!r}"
