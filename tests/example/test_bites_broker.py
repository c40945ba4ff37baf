"""The message-bus experiments bite: each protection of the order-event pipeline,
removed alone (``SHOP_FRAGILE=<name>``), is caught by the experiments built for it, each
failing with its own reason.

The whole fragile build (``SHOP_FRAGILE=1``) is checked with the rest of the suite in
test_suite_bites.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.example.test_suite_bites import run_example_suite

BROKER = "test_broker.py::"

# protection removed alone -> {experiment: phrases its failure message must contain}
CATCHES: dict[str, dict[str, tuple[str, ...]]] = {
    # a publisher without a buffer drops what it could not send
    "event_buffer": {
        BROKER + "test_broker_down_loses_no_acknowledged_event": (
            "HistoryViolated",
            "acknowledged writes lost",
        ),
    },
    # a consumer that is not idempotent applies every copy
    "dedup": {
        BROKER + "test_duplicated_and_reordered_events_take_effect_once_in_version_order": (
            "HistoryViolated",
            "values duplicated",
        ),
        # the killed consumer applied part of its batch without acknowledging it
        BROKER + "test_a_consumer_killed_mid_batch_has_its_events_reclaimed_and_applied_once": (
            "HistoryViolated",
            "values duplicated",
        ),
    },
    # without the version check, an event that arrives late overwrites a newer state
    "ordering": {
        BROKER + "test_duplicated_and_reordered_events_take_effect_once_in_version_order": (
            "orders ended in an older version than their last event",
        ),
    },
    # nobody takes over the killed consumer's pending entries
    "reclaim": {
        BROKER + "test_a_consumer_killed_mid_batch_has_its_events_reclaimed_and_applied_once": (
            "HistoryViolated",
            "acknowledged writes lost",
            "entries pending",
        ),
    },
    # the first corrupted event kills the consumer, the events behind it wait forever
    "dead_letter": {
        BROKER
        + "test_a_corrupted_event_goes_to_the_dead_letter_stream_and_the_consumer_keeps_going": (
            "the consumer stopped at a corrupted event",
            "not answering",
        ),
    },
}


@pytest.mark.parametrize("protection", sorted(CATCHES))
def test_each_broker_protection_removed_alone_is_caught(tmp_path: Path, protection: str) -> None:
    """Remove one protection: the experiments that guard it fail, each with its reason."""
    expected = CATCHES[protection]
    run = run_example_suite(tmp_path, fragile=protection, select=sorted(expected))
    assert set(run.outcomes) == set(expected), (
        f"selected {sorted(run.outcomes)}, expected {sorted(expected)}\n{run.explain()}"
    )
    wrong = {
        name: outcome
        for name, outcome in run.outcomes.items()
        if outcome.result != "failed" or not all(p in outcome.message for p in expected[name])
    }
    assert not wrong, (
        f"without {protection!r}, these experiments did not fail with the expected "
        f"message ({ {n: expected[n] for n in wrong} }): {wrong}\n{run.explain()}"
    )
