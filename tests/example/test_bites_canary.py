"""The canary experiments (example_suite/test_canary.py) bite: against the resilient shop
both hold; without timeouts (``SHOP_FRAGILE=timeouts``) the canary whose Redis hangs is
cut by compare's kill switch, its fault healed, and the test fails with
``ComparisonAborted``.

Measured, and why the slow-database canary is not the one that bites: on a database
that is slow but answering (30 ms a round trip) both builds degrade the same way (no
deadline is reached), so it passes on the fragile build too; on a database that hangs,
the resilient build answers 503 only after its 1 s deadline, a retry and a 2 s connect
timeout (3-4 s a call), which would make a canary comparison cost 15 s or more.
"""

from __future__ import annotations

from pathlib import Path

from tests.example.test_suite_bites import run_example_suite

SLOW_DB = "test_canary.py::test_a_canary_on_a_slow_database_stays_within_its_degradation_budget"
HUNG_CACHE = "test_canary.py::test_a_canary_whose_cache_hangs_keeps_serving_within_budget"


def test_resilient_canaries_stay_within_budget(tmp_path: Path) -> None:
    run = run_example_suite(tmp_path, fragile=False, select=[SLOW_DB, HUNG_CACHE])
    assert set(run.outcomes) == {SLOW_DB, HUNG_CACHE}, run.explain()
    bad = {k: o for k, o in run.outcomes.items() if o.result != "passed"}
    assert not bad, f"{bad}\n{run.explain()}"
    assert "chaos: 2 tests (2 passed)" in run.output, run.explain()


def test_without_timeouts_the_kill_switch_cuts_the_canary(tmp_path: Path) -> None:
    run = run_example_suite(tmp_path, fragile="timeouts", select=[SLOW_DB, HUNG_CACHE])
    assert run.outcomes[SLOW_DB].result == "passed", run.explain()
    outcome = run.outcomes[HUNG_CACHE]
    assert outcome.result == "failed", run.explain()
    for phrase in (
        "ComparisonAborted",
        "compare aborted by abort_when: experiment error rate 1.00 > 0.50 over its last 2",
        "Read timed out",
        "the experiment group's faults were healed at once",
    ):
        assert phrase in outcome.message, (phrase, outcome.message)
    assert "(1 passed, 1 aborted)" in run.output, run.explain()
    assert "(healed by guard)" in run.output, run.explain()
