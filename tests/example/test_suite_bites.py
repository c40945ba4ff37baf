"""The example chaos suite bites: it passes against the resilient shop and fails against
the fragile one, each failing experiment with the check and the reason it was built for.

Both runs execute the README's main command (``pytest example_suite -m chaos``) in a
subprocess, the fragile one with ``SHOP_FRAGILE=1`` (no timeouts, no circuit breaker, no
idempotency keys, retries without backoff, commits not durable), and read the outcome of
every experiment from a JUnit XML report. Then each protection is removed alone, and
the experiments that guard it must catch it.

Removing only the retry backoff (``SHOP_FRAGILE=backoff``) is caught by no experiment of
the suite run here (the breaker still cuts the retries off over several checkouts);
exploration's ``pay[payments-http_error-503]`` cell catches it (one checkout alone makes
5 attempts), shown by tests/example/test_bites_explore.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# experiment -> (violation class, phrases its message must contain): why the fragile
# build fails it.
FRAGILE_FAILURES: dict[str, tuple[str, tuple[str, ...]]] = {
    # Resources (tests/example/test_bites_resources.py removes each protection alone).
    # No bounded pool: with every PostgreSQL slot taken, requests fail instead of queueing.
    "test_resources.py::test_a_full_database_queues_orders_instead_of_failing_them": (
        "SteadyStateViolated",
        ("steady_state violated: error rate", "-> 503"),
    ),
    # No hedged reads: the CPU-throttled replica sets the tail latency.
    "test_resources.py::test_a_cpu_starved_replica_does_not_set_the_tail_latency": (
        "SteadyStateViolated",
        ("steady_state violated: p99", "> allowed 0.25 s"),
    ),
    # Only lost connections count as Redis trouble: its OOM error fails the request.
    "test_resources.py::test_shop_keeps_selling_when_redis_is_out_of_memory": (
        "SteadyStateViolated",
        ("steady_state violated: error rate", "-> 500"),
    ),
    # No Redis socket timeout: a black-holed Redis hangs every request.
    "test_cache.py::test_shop_keeps_selling_when_redis_is_down": (
        "SteadyStateViolated",
        ("steady_state violated: error rate", "Read timed out"),
    ),
    # No Redis socket timeout either when the Redis process itself is frozen.
    "test_cache.py::test_a_frozen_redis_server_does_not_freeze_the_shop": (
        "SteadyStateViolated",
        ("steady_state violated: error rate", "Read timed out"),
    ),
    # No breaker: every checkout keeps calling the failing provider.
    "test_payments.py::test_breaker_opens_when_payments_fail_30_percent": (
        "CircuitBreakerViolated",
        ("circuit_breaker violated: did not open within 25 calls", "reached 'payments'"),
    ),
    # Eager retries without backoff or breaker: 5 attempts per checkout on an outage.
    "test_payments.py::test_payment_outage_causes_no_retry_storm": (
        "RetriesViolated",
        ("retries violated:", "= 5.0 per call > allowed 1"),
    ),
    # No Idempotency-Key on charges: the duplicated request and the retry both charge.
    "test_payments.py::test_duplicated_payment_request_charges_once": (
        "IdempotencyViolated",
        ("idempotent violated", "changed the state again", "'idempotency_key': None"),
    ),
    # No payment timeout: stuck payments take every worker thread, browsing dies too.
    "test_system.py::test_hanging_payment_provider_does_not_take_the_shop_down": (
        "SteadyStateViolated",
        ("steady_state violated: error rate", "Read timed out"),
    ),
    # synchronous_commit=off: a crash loses commits already acknowledged to customers.
    "test_database.py::test_database_crash_loses_no_acknowledged_order": (
        "HistoryViolated",
        ("history violated:", "acknowledged writes lost"),
    ),
    # Idempotency-Key ignored on orders: the replayed POST creates more orders.
    "test_system.py::test_a_resubmitted_order_is_created_once": (
        "IdempotencyViolated",
        ("idempotent violated", "changed the state again", "the first delivery changed"),
    ),
    # The YAML experiments (issue 13). No database deadline: a black-holed database
    # holds an order until the heal (4.5 s), where the resilient build answers 503 in < 3 s.
    "chaos_database.yaml::database-connection-chaos": (
        "steady_state violated: p99",
        ("> allowed 3.00 s", "database-connection-chaos"),
    ),
    # No deadlines: the game day's first step that meets a missing timeout fails (which
    # one depends on timing: the black-holed cache hangs browsing, a slow database holds
    # an order for seconds); a YAML item's message is its document and the violations.
    "chaos_black_friday.yaml::black-friday": (
        "steady_state violated",
        ("black-friday", "> allowed"),
    ),
    # The rate-limit cascade: a 429 is retried at once like a 5xx, Retry-After ignored.
    "test_rate_limit.py::test_shop_sends_nothing_before_retry_after_has_passed": (
        "AssertionError",
        ("requests before Retry-After had passed",),
    ),
    "test_rate_limit.py::test_callers_get_a_fast_503_with_retry_after_not_a_pile_up": (
        "SteadyStateViolated",
        ("steady_state violated: error rate", "checkout answered 502"),
    ),
    "test_rate_limit.py::test_rate_limit_causes_no_retry_storm_upstream": (
        "RetriesViolated",
        ("retries violated:", "= 5.0 per call > allowed 0.5"),
    ),
    # The message bus (tests/example/test_bites_broker.py removes each protection alone).
    # No buffer: events published while the broker is down are dropped.
    "test_broker.py::test_broker_down_loses_no_acknowledged_event": (
        "HistoryViolated",
        ("history violated:", "acknowledged writes lost"),
    ),
    # No idempotent consumer: every published copy takes effect.
    "test_broker.py::test_duplicated_and_reordered_events_take_effect_once_in_version_order": (
        "HistoryViolated",
        ("history violated:", "values duplicated"),
    ),
    # No XAUTOCLAIM: the killed consumer's pending entries are never applied.
    "test_broker.py::test_a_consumer_killed_mid_batch_has_its_events_reclaimed_and_applied_once": (
        "HistoryViolated",
        ("history violated:", "acknowledged writes lost"),
    ),
    # No dead-letter stream: the first corrupted event kills the consumer.
    "test_broker.py::test_a_corrupted_event_goes_to_the_dead_letter_stream_and_the_consumer_keeps_going": (  # noqa: E501
        "AssertionError",
        ("the consumer stopped at a corrupted event", "not answering"),
    ),
    # Events dropped on a reset (no buffer) or applied twice (no idempotent consumer).
    "test_broker.py::test_connection_drop_storm_loses_nothing_and_keeps_order_per_key": (
        "HistoryViolated",
        ("history violated:",),
    ),
    # No Redis timeout on the canary: its product pages hang, and compare's kill switch
    # (abort_when) heals the canary's fault and stops the comparison (issue 16).
    "test_canary.py::test_a_canary_whose_cache_hangs_keeps_serving_within_budget": (
        "ComparisonAborted",
        ("compare aborted by abort_when: experiment error rate", "Read timed out"),
    ),
    # Replication lag (tests/example/test_bites_replication.py): no replica routing, every
    # read goes to the replica however far behind it is.
    "test_replication.py::test_the_shop_reads_its_own_writes_while_the_replica_lags": (
        "AssertionError",
        ("read-your-writes violated:", "orders were missing"),
    ),
    "test_replication.py::test_stale_reads_stay_within_the_staleness_bound": (
        "AssertionError",
        ("staleness bound violated:", "> allowed 32768"),
    ),
    # Split brain (tests/example/test_bites_split_brain.py): no fencing, the cut-off
    # leader keeps writing next to the new one.
    "test_split_brain.py::test_a_leader_cut_off_from_the_lease_store_gives_way_to_exactly_one_new_leader": (  # noqa: E501
        "AssertionError",
        ("split brain: two leaders' jobs accepted, tokens went back",),
    ),
    # Zones and regions (tests/example/test_bites_zones.py): zone B wired through zone A's
    # paths, so losing A fails B's orders too (SteadyStateViolated on the error rate).
    "test_zones.py::test_chaos_gorilla_the_shop_survives_the_loss_of_a_zone": (
        "SteadyStateViolated",
        ("steady_state violated: error rate", "> allowed 0.00"),
    ),
    "test_zones.py::test_chaos_kong_the_shop_fails_over_to_another_region_and_back": (
        "SteadyStateViolated",
        ("steady_state violated: error rate", "> allowed 0.05"),
    ),
    # No stale reads (tests/example/test_bites_schedules.py): with Redis and PostgreSQL
    # down at once browsing answers 503; Hypothesis shrinks the schedule to those two.
    "test_schedules.py::test_browsing_survives_any_schedule_of_dependency_faults": (
        "AssertionError",
        (
            "a product page failed under the schedule: GET /products/mug -> 503",
            "fault schedule (2 fault(s)): postgres down [0s, 200ms); redis down [0s, 200ms)",
        ),
    ),
}

# Experiments whose protections the fragile switch does not remove: they must pass.
BOTH_PASS = {
    # the replica's catch-up after the heal concerns no protection of the shop
    "test_replication.py::test_the_replica_catches_up_within_3s_after_the_link_heals",
    "test_database.py::test_orders_meet_their_latency_bound_on_a_slow_database",
    "test_database.py::test_lost_database_connections_fail_cleanly_and_leave_no_half_order",
    "test_database.py::test_partition_between_api_and_database_loses_no_acknowledged_order",
    "test_system.py::test_shop_recovers_quickly_after_the_database_comes_back",
    "test_system.py::test_degradation_ladder_holds_the_latency_objective_at_every_step",
    "test_system.py::test_chaos_monkey_kills_a_replica_and_the_shop_stays_up",
    # a slow but answering database reaches no deadline: both builds degrade alike
    "test_canary.py::test_a_canary_on_a_slow_database_stays_within_its_degradation_budget",
    # no protection of the fragile build concerns a slow consumer link
    "test_broker.py::test_consumer_lag_stays_bounded_on_a_slow_link_and_catches_up_after",
}

ALL_EXPERIMENTS = set(FRAGILE_FAILURES) | BOTH_PASS


@dataclass(frozen=True)
class Outcome:
    """One experiment's outcome in a JUnit report."""

    result: str  # passed, failed, error, skipped
    message: str

    def __repr__(self) -> str:
        message = self.message if len(self.message) <= 300 else self.message[:297] + "..."
        return f"{self.result}: {message}"


@dataclass(frozen=True)
class Run:
    """A run of the example suite."""

    returncode: int
    outcomes: dict[str, Outcome]
    output: str

    def explain(self) -> str:
        return f"exit code {self.returncode}; last output:\n{self.output[-6000:]}"


# protection removed alone -> the experiments that must catch it, and with which violation
CATCHES: dict[str, dict[str, str]] = {
    "timeouts": {
        "test_cache.py::test_shop_keeps_selling_when_redis_is_down": "SteadyStateViolated",
        "test_cache.py::test_a_frozen_redis_server_does_not_freeze_the_shop": (
            "SteadyStateViolated"
        ),
        "test_system.py::test_hanging_payment_provider_does_not_take_the_shop_down": (
            "SteadyStateViolated"
        ),
        "chaos_database.yaml::database-connection-chaos": "steady_state violated",
        "chaos_black_friday.yaml::black-friday": "steady_state violated",
        "test_canary.py::test_a_canary_whose_cache_hangs_keeps_serving_within_budget": (
            "ComparisonAborted"
        ),
    },
    "breaker": {
        "test_payments.py::test_breaker_opens_when_payments_fail_30_percent": (
            "CircuitBreakerViolated"
        ),
        "test_payments.py::test_payment_outage_causes_no_retry_storm": "RetriesViolated",
        # timeouts alone do not stop the cascade: 3 timed-out attempts per payment still
        # hold the worker threads
        "test_system.py::test_hanging_payment_provider_does_not_take_the_shop_down": (
            "SteadyStateViolated"
        ),
    },
    "durability": {
        "test_database.py::test_database_crash_loses_no_acknowledged_order": "HistoryViolated",
    },
    "stale_reads": {
        "test_schedules.py::test_browsing_survives_any_schedule_of_dependency_faults": (
            "AssertionError"
        ),
    },
    "idempotency": {
        "test_payments.py::test_duplicated_payment_request_charges_once": "IdempotencyViolated",
        "test_system.py::test_a_resubmitted_order_is_created_once": "IdempotencyViolated",
    },
}


def run_example_suite(
    tmp_path: Path, *, fragile: bool | str, select: list[str] | None = None
) -> Run:
    """Run the README's main command in a subprocess; the outcome of every test."""
    junit = tmp_path / "junit.xml"
    env = {
        k: v
        for k, v in os.environ.items()
        # this test may itself run under xdist: the child is a plain session of its own
        if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT_TEST", "PYTEST_ADDOPTS"))
    }
    env["SHOP_FRAGILE"] = fragile if isinstance(fragile, str) else "1" if fragile else "0"
    selection = ["-k", " or ".join(n.split("::")[1] for n in select)] if select else []
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "example_suite",
                "-m",
                "chaos",
                # exploration's cells are judged by test_bites_explore.py
                "--ignore=example_suite/test_explore.py",
                "-p",
                "no:cacheprovider",
                f"--junitxml={junit}",
                f"--basetemp={tmp_path / 'basetemp'}",
                "-o",
                "junit_family=xunit2",
                # the whole suite on two workers, as `make chaos` runs it
                *(["-n", "2"] if not select else []),
                *selection,
            ],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the example suite did not finish in {exc.timeout}s: {exc.output!r}")
    output = proc.stdout + proc.stderr
    if not junit.exists():
        pytest.fail(f"the example suite wrote no JUnit report; exit {proc.returncode}:\n{output}")
    outcomes = _outcomes(junit)
    if outcomes and all(o.result == "error" for o in outcomes.values()):
        # One environmental cause (no Docker image, no PostgreSQL...) errors every test:
        # say it once instead of once per experiment.
        first = next(iter(outcomes.values()))
        pytest.fail(
            f"every experiment errored before it could run, so nothing was judged: {first!r}",
            pytrace=False,
        )
    return Run(proc.returncode, outcomes, output)


def _outcomes(junit: Path) -> dict[str, Outcome]:
    outcomes: dict[str, Outcome] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        classname = case.get("classname", "")
        if classname.endswith((".yaml", ".yml")):  # a YAML experiment: dir.chaos_x.yaml
            stem, ext = classname.rsplit(".", 1)
            key = f"{stem.rsplit('.', 1)[-1]}.{ext}::{case.get('name')}"
        else:
            key = f"{classname.rsplit('.', 1)[-1]}.py::{case.get('name')}"
        result, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            element = case.find(tag)
            if element is not None:
                result = {"failure": "failed"}.get(tag, tag)
                # the message attribute is a one-line summary (for a YAML item, its
                # document and hypothesis, cut): the text holds the violations too
                message = "\n".join(filter(None, (element.get("message"), element.text)))
                break
        # A test with a failing call and a teardown error has two entries: keep the worst.
        if key not in outcomes or outcomes[key].result == "passed":
            outcomes[key] = Outcome(result, message)
    return outcomes


def test_resilient_shop_passes_every_experiment(tmp_path: Path) -> None:
    """The main command against the resilient build: every experiment holds."""
    run = run_example_suite(tmp_path, fragile=False)
    assert set(run.outcomes) == ALL_EXPERIMENTS, (
        f"the example suite's experiments changed: unexpected {set(run.outcomes) - ALL_EXPERIMENTS}"
        f", missing {ALL_EXPERIMENTS - set(run.outcomes)}; update this test"
    )
    bad = {k: o for k, o in run.outcomes.items() if o.result != "passed"}
    assert not bad, f"experiments did not pass on the resilient shop: {bad}\n{run.explain()}"
    assert run.returncode == 0, run.explain()
    assert f"chaos: {len(ALL_EXPERIMENTS)} tests ({len(ALL_EXPERIMENTS)} passed)" in run.output, (
        f"the chaos summary line is missing:\n{run.explain()}"
    )


def test_fragile_shop_fails_the_right_experiments_for_the_right_reasons(tmp_path: Path) -> None:
    """The main command against the fragile build: the experiments that target a removed
    protection fail with their check's violation and message; the others still pass."""
    run = run_example_suite(tmp_path, fragile=True)
    problems: list[str] = []
    for name, (violation, phrases) in FRAGILE_FAILURES.items():
        outcome = run.outcomes.get(name)
        if outcome is None:
            problems.append(f"{name}: did not run")
            continue
        if outcome.result != "failed":
            problems.append(f"{name}: {outcome.result}, expected failed with {violation}")
            continue
        missing = [p for p in (violation, *phrases) if p not in outcome.message]
        if missing:
            problems.append(f"{name}: failed, but its message lacks {missing}: {outcome.message}")
    for name in sorted(BOTH_PASS):
        outcome = run.outcomes.get(name)
        if outcome is None or outcome.result != "passed":
            problems.append(f"{name}: expected to pass on the fragile shop too, got {outcome}")
    assert not problems, "\n".join(problems) + "\n" + run.explain()
    assert run.returncode == 1, run.explain()
    # a test whose kill switch fired is counted as aborted in the chaos summary
    aborted = sum(1 for violation, _ in FRAGILE_FAILURES.values() if "Aborted" in violation)
    failed = len(FRAGILE_FAILURES) - aborted
    counts = f"{len(BOTH_PASS)} passed, {failed} failed"
    counts += f", {aborted} aborted" if aborted else ""
    assert f"({counts})" in run.output, run.explain()


@pytest.mark.parametrize("protection", sorted(CATCHES))
def test_each_protection_removed_alone_is_caught(tmp_path: Path, protection: str) -> None:
    """Remove one protection (``SHOP_FRAGILE=<name>``): the experiments built to guard it
    fail, each with its check's violation."""
    expected = CATCHES[protection]
    run = run_example_suite(tmp_path, fragile=protection, select=sorted(expected))
    assert set(run.outcomes) == set(expected), (
        f"selected {sorted(run.outcomes)}, expected {sorted(expected)}\n{run.explain()}"
    )
    wrong = {
        name: outcome
        for name, outcome in run.outcomes.items()
        if outcome.result != "failed" or expected[name] not in outcome.message
    }
    assert not wrong, (
        f"without {protection!r}, these experiments did not fail with the expected "
        f"violation ({ {n: expected[n] for n in wrong} }): {wrong}\n{run.explain()}"
    )
