"""compare without a network: the verdict from given calls, the budget and kill-switch
syntax, the interleaving, the standalone abort, and bad arguments."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest

from pytest_chaos import CheckError, Timeline
from pytest_chaos.checks import ComparisonAborted, ComparisonViolated, compare
from pytest_chaos.checks._compare import judge, parse_abort, parse_budget
from pytest_chaos.checks._probe import Call


def _calls(latencies: list[float], errors: int = 0) -> list[Call]:
    return [
        Call(t=float(i), latency=v, ok=i >= errors, error="" if i >= errors else "boom")
        for i, v in enumerate(latencies)
    ]


def _spread(center: float, n: int = 30, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [center * (1 + rng.uniform(-0.1, 0.1)) for _ in range(n)]


def test_a_significant_degradation_beyond_budget_fails() -> None:
    budget = parse_budget({"p99": "+20%", "error_rate": "+1pt"})
    result, mw, props = judge(
        _calls(_spread(0.010)), _calls(_spread(0.030, seed=2)), budget, alpha=0.01, duration=1
    )
    assert not result.passed and result.violation is ComparisonViolated
    assert mw.p_value < 1e-9 and mw.delta == 1.0
    assert props.p_value == 1.0
    assert result.measured["degraded"] == ["p99"]
    assert result.message.startswith(
        "compare violated: the experiment degraded beyond its budget, significantly "
        "(alpha 0.01): p99 "
    )
    assert "budget +20%" in result.message and "Cliff's delta +1.00 (large)" in result.message
    assert "error rate 0.00 vs control 0.00" in result.message  # what held is said too
    assert result.allowed == {"alpha": 0.01, "p99": "+20%", "error_rate": "+1pt"}
    hist = result.measured["histogram"]
    assert len(hist["edges"]) == 21 and sum(hist["control"]) == sum(hist["experiment"]) == 30


def test_within_budget_passes_even_when_significant() -> None:
    budget = parse_budget({"p99": "+50ms"})
    result, mw, _ = judge(
        _calls(_spread(0.010)), _calls(_spread(0.030, seed=2)), budget, alpha=0.01, duration=1
    )
    assert mw.p_value < 0.01
    assert result.passed, result.message
    assert "within budget" in result.message


def test_beyond_budget_but_not_significant_passes() -> None:
    # one slow outlier makes the experiment's p99 (its max) far worse, but the
    # distributions are the same: no evidence of a degradation
    control = _spread(0.010)
    experiment = [*_spread(0.010, n=29, seed=3), 0.5]
    result, mw, _ = judge(
        _calls(control), _calls(experiment), parse_budget({"p99": "+20%"}), alpha=0.01, duration=1
    )
    assert mw.p_value > 0.01
    assert result.passed
    assert "beyond budget but not significant" in result.message


def test_error_rate_budget_in_points() -> None:
    lat = _spread(0.01)
    control, experiment = _calls(lat, errors=0), _calls(lat, errors=12)
    tight, _, props = judge(
        control, experiment, parse_budget({"error_rate": "+5pt"}), alpha=0.01, duration=1
    )
    assert props.method == "z" and props.p_value < 0.001
    assert not tight.passed and tight.measured["degraded"] == ["error_rate"]
    assert "error rate 0.40 vs control 0.00 (+40.0pt, budget +5pt" in tight.message
    loose, _, _ = judge(
        control, experiment, parse_budget({"error_rate": "+50pt"}), alpha=0.01, duration=1
    )
    assert loose.passed


def test_the_default_budget_fails_on_any_significant_median_shift() -> None:
    result, _, _ = judge(
        _calls(_spread(0.010)),
        _calls(_spread(0.0105, seed=2)),
        parse_budget(None),
        alpha=0.05,
        duration=1,
    )
    assert result.allowed == {"alpha": 0.05, "p50": "+0%", "error_rate": "+0pt"}
    assert result.passed == (result.measured["latency_p_value"] >= 0.05)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ({"p99": 0.2}, r"max_degradation\['p99'\]=0.2 is not a string.*'\+20%'"),
        ({"p99": "20"}, r"not a relative \('\+N%'\) or absolute"),
        ({"error_rate": "+1%"}, r"not an increase in percentage points.*'\+1pt'"),
        ({"error_rate": "+120pt"}, "more than 100 points"),
        ({"latency": "+20%"}, r"unknown metric 'latency'; choose from \['p50'"),
        ({}, "not a non-empty mapping"),
        ("p99 +20%", "not a non-empty mapping"),
    ],
)
def test_bad_budgets_name_the_value_and_the_fix(value: Any, match: str) -> None:
    with pytest.raises(CheckError, match=match):
        parse_budget(value)


def test_budget_units() -> None:
    rules = {r.metric: r for r in parse_budget({"p50": "+25ms", "p99": "+20%", "max": "+1s"})}
    assert rules["p50"].limit(0.010) == pytest.approx(0.035)
    assert rules["p99"].limit(0.010) == pytest.approx(0.012)
    assert rules["max"].limit(0.5) == pytest.approx(1.5)
    assert parse_budget({"error_rate": "+2.5pt"})[0].limit(0.1) == pytest.approx(0.125)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ({"error_rate": 1.0}, r"must be below 1"),
        ({"error_rate": "50%"}, r"abort_when\['error_rate'\]='50%' is not a number"),
        ({"p99": -1}, r"abort_when\['p99'\]=-1 must be > 0"),
        ({"window": 5}, "has no bound, only a window"),
        ({"p99": 1, "window": 0}, r"abort_when\['window'\]=0 must be an integer >= 1"),
        ({"errors": 0.5}, r"unknown key\(s\) \['errors'\]"),
        (0.5, "not a non-empty mapping"),
    ],
)
def test_bad_kill_switches_name_the_value_and_the_fix(value: Any, match: str) -> None:
    with pytest.raises(CheckError, match=match):
        parse_abort(value)


def test_kill_switch_windows() -> None:
    kill = parse_abort({"error_rate": 0.5, "p99": 0.1, "window": 4})
    assert kill is not None
    assert kill.breach(_calls([0.01] * 4, errors=2)) == ""  # 2 of 4 is not > 0.5
    assert "error rate 0.75 > 0.50 over its last 4 calls" in kill.breach(
        _calls([0.01] * 4, errors=3)
    )
    # three errors are already more than half of any window of 4 that holds them
    early = kill.breach(_calls([0.01] * 3, errors=3))
    assert "error rate 0.75 > 0.50 over a window of 4 calls already" in early
    assert "3 of its first 3 calls failed" in early and "last 4" not in early
    assert kill.breach(_calls([0.01, 0.01, 0.5])) == ""  # latency waits for a full window
    assert "p99 500.0 ms > 100.0 ms" in kill.breach(_calls([0.01, 0.01, 0.01, 0.5]))


class _Target:
    def __init__(self, name: str, delay: float = 0.0, fail: bool = False) -> None:
        self.name, self.delay, self.fail = name, delay, fail
        self.calls = 0

    def __repr__(self) -> str:
        return f"<{self.name}>"


def _probe(order: list[str]):
    def probe(target: _Target) -> None:
        order.append(target.name)
        target.calls += 1
        if target.delay:
            time.sleep(target.delay)
        if target.fail:
            raise ConnectionError("refused")

    return probe


def test_rounds_interleave_in_a_seeded_order() -> None:
    def run(seed: int) -> list[str]:
        order: list[str] = []
        compare(_probe(order), control=_Target("c"), experiment=_Target("e"), samples=10, seed=seed)
        return order

    first = run(3)
    assert first == run(3)  # replayable
    rounds = [first[i : i + 2] for i in range(0, 20, 2)]
    assert all(sorted(r) == ["c", "e"] for r in rounds)  # both groups in every round
    assert len({tuple(r) for r in rounds}) == 2  # in both orders
    order: list[str] = []
    compare(
        _probe(order), control=_Target("c"), experiment=_Target("e"), samples=5, order="alternate"
    )
    assert order == ["c", "e"] * 5


def test_standalone_compare_records_samples_and_the_check() -> None:
    timeline = Timeline()
    comparison = compare(
        _probe([]),
        control=_Target("c"),
        experiment=_Target("e"),
        samples=6,
        seed=1,
        max_degradation={"p99": "+10s"},
        timeline=timeline,
        label="shop",
    )
    assert comparison.passed and not comparison.aborted
    assert len(comparison.control) == len(comparison.experiment) == 6
    labels = {s.label for s in timeline.samples}
    assert labels == {"shop:control", "shop:experiment"}
    (check,) = timeline.of_kind("check")
    assert check.name == "compare" and check.data["passed"] is True


class _FakeFault:
    def __init__(self, target: _Target) -> None:
        self.id, self.target = "f1", target
        self.active = True
        self.healed_by = ""

    def heal(self, *, by: str = "test") -> bool:
        self.active, self.healed_by = False, by
        self.target.fail = False
        return True


def test_standalone_kill_switch_heals_what_inject_returned() -> None:
    timeline = Timeline()
    experiment = _Target("e")
    faults: list[_FakeFault] = []

    def inject() -> _FakeFault:
        experiment.fail = True
        faults.append(_FakeFault(experiment))
        return faults[0]

    with pytest.raises(ComparisonAborted, match="compare aborted by abort_when") as info:
        compare(
            _probe([]),
            control=_Target("c"),
            experiment=experiment,
            samples=50,
            seed=1,
            inject=inject,
            abort_when={"error_rate": 0.5, "window": 4},
            timeline=timeline,
        )
    assert faults[0].healed_by == "guard"
    assert experiment.calls == 3  # the third error is more than half of any window of 4
    assert info.value.measured["aborted"] is True
    (abort,) = timeline.of_kind("abort")
    assert abort.name == "compare" and abort.data["healed"] == ["f1"]
    assert "experiment error rate 0.75 > 0.50" in abort.data["reason"]


def test_inject_faults_are_healed_at_the_end_and_on_errors() -> None:
    experiment = _Target("e")
    fault = _FakeFault(experiment)
    compare(
        _probe([]),
        control=_Target("c"),
        experiment=experiment,
        samples=5,
        inject=lambda: [fault],
        max_degradation={"p50": "+1s"},
    )
    assert fault.healed_by == "test"

    broken = _FakeFault(experiment)

    def probe(target: _Target) -> None:
        raise KeyError("a broken probe")

    with pytest.raises(CheckError, match="KeyError"):
        compare(
            probe,
            control=_Target("c"),
            experiment=experiment,
            samples=5,
            inject=lambda: broken,
            failures=(ConnectionError,),
        )
    assert broken.healed_by == "test"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "give samples=N"),
        ({"samples": 3}, "samples=3 must be an integer >= 5"),
        ({"samples": 5, "alpha": 1.5}, "alpha=1.5 is the significance level"),
        ({"samples": 5, "order": "zigzag"}, "order='zigzag' is not 'random'"),
        ({"samples": 5, "inject": "latency"}, "inject='latency' is not callable"),
        ({"duration": -1}, "duration=-1 must be > 0"),
        ({"samples": 5, "max_degradation": {"p99": 20}}, "is not a string"),
    ],
)
def test_bad_arguments_name_the_value_and_the_fix(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(CheckError, match=match):
        compare(_probe([]), control=_Target("c"), experiment=_Target("e"), **kwargs)


def test_control_and_experiment_must_differ() -> None:
    same = _Target("same")
    with pytest.raises(CheckError, match="control and experiment are the same object"):
        compare(_probe([]), control=same, experiment=same, samples=5)


def test_inject_must_return_faults() -> None:
    with pytest.raises(CheckError, match="inject returned 42, which has no heal"):
        compare(
            _probe([]), control=_Target("c"), experiment=_Target("e"), samples=5, inject=lambda: 42
        )


def test_too_short_a_duration_is_an_error_not_a_pass() -> None:
    with pytest.raises(CheckError, match="fewer than the 5 a test of significance needs"):
        compare(
            _probe([]),
            control=_Target("c", delay=0.03),
            experiment=_Target("e", delay=0.03),
            duration=0.05,
        )


class _Busy:
    """A system that slows down with the number of calls in flight (a small pool)."""

    def __init__(self, name: str, slots: int) -> None:
        self.name, self.slots = name, threading.BoundedSemaphore(slots)
        self.lock = threading.Lock()
        self.in_flight = self.most = 0

    def __repr__(self) -> str:
        return f"<{self.name}>"

    def call(self) -> None:
        with self.lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        try:
            with self.slots:  # waits for a free slot, as a pool does
                time.sleep(0.01)
        finally:
            with self.lock:
                self.in_flight -= 1


def test_concurrent_rounds_load_both_groups_and_find_a_degradation_only_load_shows() -> None:
    """A canary with a pool of 1 against a control with 8 is as fast one call at a time,
    and significantly slower under eight rounds at once (its calls wait for the slot)."""
    control, canary = _Busy("control", slots=8), _Busy("canary", slots=1)
    alone = compare(
        lambda s: s.call(),
        control=control,
        experiment=canary,
        samples=20,
        seed=1,
        max_degradation={"p50": "+100%"},
    )
    assert alone.passed and control.most == canary.most == 1
    with pytest.raises(ComparisonViolated, match=r"p50 .* budget \+100%"):
        compare(
            lambda s: s.call(),
            control=control,
            experiment=canary,
            samples=48,
            seed=1,
            concurrency=8,
            max_degradation={"p50": "+100%"},
        )
    assert control.most > 1 and canary.most > 1  # calls overlapped in both groups


def test_concurrent_rounds_take_exactly_the_samples_in_a_seeded_order() -> None:
    order: list[str] = []
    comparison = compare(
        _probe(order),
        control=_Target("c"),
        experiment=_Target("e"),
        samples=30,
        seed=2,
        concurrency=3,
    )
    assert len(comparison.control) == len(comparison.experiment) == 30
    assert sorted(order) == ["c"] * 30 + ["e"] * 30
    assert [c.t for c in comparison.control] == sorted(c.t for c in comparison.control)


def test_the_kill_switch_trips_once_under_concurrent_rounds() -> None:
    timeline = Timeline()
    experiment = _Target("e", delay=0.002)
    faults: list[_FakeFault] = []

    def inject() -> _FakeFault:
        experiment.fail = True
        faults.append(_FakeFault(experiment))
        return faults[0]

    with pytest.raises(ComparisonAborted, match="compare aborted by abort_when"):
        compare(
            _probe([]),
            control=_Target("c", delay=0.002),
            experiment=experiment,
            samples=200,
            seed=1,
            inject=inject,
            abort_when={"error_rate": 0.5, "window": 4},
            concurrency=4,
            timeline=timeline,
        )
    assert faults[0].healed_by == "guard"
    assert len(timeline.of_kind("abort")) == 1  # one breach, one heal
    assert experiment.calls < 20  # stopped early: far fewer than 200 rounds


def test_concurrency_must_be_a_positive_count() -> None:
    with pytest.raises(CheckError, match="concurrency=0 must be an integer >= 1"):
        compare(_probe([]), control=_Target("c"), experiment=_Target("e"), samples=5, concurrency=0)
