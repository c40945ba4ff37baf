from __future__ import annotations

import threading
import time

import pytest

from pytest_chaos.checks import SteadyStateViolated, observe, steady_state
from pytest_chaos.checks._probe import percentile
from pytest_chaos.errors import CheckError, SteadyStateNotMet
from pytest_chaos.timeline import Timeline


def _injected() -> Timeline:
    tl = Timeline()
    tl.record("inject", "latency", target="db", fault_id="f1")
    return tl


def test_percentile_is_nearest_rank() -> None:
    values = [float(i) for i in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([3.0], 99) == 3.0


def test_a_healthy_probe_holds_and_every_call_is_a_sample() -> None:
    tl = _injected()
    result = steady_state(lambda: True, calls=20, p99=1.0, timeline=tl)
    assert result.passed and result.measured["calls"] == 20
    assert len(tl.samples) == 20 and all(s.ok for s in tl.samples)
    (check,) = tl.of_kind("check")
    assert check.name == "steady_state" and check.data["passed"] is True


def test_error_rate_over_tolerance_fails_with_numbers() -> None:
    n = 0

    def flaky() -> bool:
        nonlocal n
        n += 1
        if n % 4 == 0:
            raise ConnectionError("refused")
        return True

    with pytest.raises(SteadyStateViolated) as info:
        steady_state(flaky, calls=40, max_error_rate=0.1, timeline=_injected())
    msg = str(info.value)
    assert "error rate 0.25 > allowed 0.10 (10 of 40 calls failed" in msg
    assert "ConnectionError: refused" in msg
    assert isinstance(info.value, AssertionError)
    assert info.value.measured["errors"] == 10


def test_latency_percentile_over_bound_fails_and_says_which() -> None:
    def slow() -> None:
        time.sleep(0.03)

    with pytest.raises(
        SteadyStateViolated, match=r"p50 0\.0\d\d s > allowed 0\.010 s over 5 calls"
    ):
        steady_state(slow, calls=5, p50=0.01, timeline=_injected())


def test_returning_false_is_a_failure() -> None:
    with pytest.raises(SteadyStateViolated, match="returned False"):
        steady_state(lambda: False, calls=3, timeline=_injected())


def test_before_any_fault_a_violation_is_steady_state_not_met() -> None:
    tl = Timeline()
    with pytest.raises(SteadyStateNotMet, match="steady state not met before injection: error"):
        steady_state(lambda: False, calls=3, timeline=tl)
    assert not issubclass(SteadyStateNotMet, AssertionError)
    assert tl.of_kind("check")[0].data["passed"] is False


def test_an_undeclared_exception_is_a_check_error() -> None:
    def broken() -> None:
        raise KeyError("typo in the probe")

    with pytest.raises(CheckError, match=r"KeyError.*not declared as a failure"):
        steady_state(broken, calls=3, failures=(ConnectionError,), timeline=_injected())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "give calls=N or duration=SECONDS"),
        ({"calls": 0}, "calls=0 must be an integer >= 1"),
        ({"calls": 2, "p99": -1}, "p99=-1 must be > 0"),
        ({"calls": 2, "max_error_rate": 5}, "between 0 and 1"),
        ({"calls": 2, "concurrency": 0}, "concurrency=0"),
        ({"calls": 2, "failures": "ConnectionError"}, "not an exception class"),
    ],
)
def test_bad_arguments_are_check_errors(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(CheckError, match=match):
        steady_state(lambda: True, **kwargs)  # type: ignore[arg-type]


def test_duration_and_concurrency() -> None:
    seen: set[str] = set()
    lock = threading.Lock()

    def probe() -> None:
        with lock:
            seen.add(threading.current_thread().name)
        time.sleep(0.01)

    result = steady_state(probe, duration=0.3, concurrency=3, timeline=_injected())
    assert len(seen) == 3
    assert result.measured["calls"] >= 3


def test_observe_probes_during_the_block_and_judges_at_exit() -> None:
    tl = Timeline()
    broken = threading.Event()

    def probe() -> bool:
        return not broken.is_set()

    with (
        pytest.raises(SteadyStateViolated, match="error rate") as info,
        observe(probe, interval=0.01, timeline=tl) as obs,
    ):
        time.sleep(0.1)
        tl.record("inject", "down", target="db", fault_id="f1")
        broken.set()
        time.sleep(0.1)
    assert obs.result is not None and not obs.result.passed
    assert info.value.measured["errors"] >= 1
    assert not any(t.name == "chaos-observe" for t in threading.enumerate())


def test_observe_lets_the_blocks_own_error_through() -> None:
    with (
        pytest.raises(RuntimeError, match="body"),
        observe(lambda: False, interval=0.01, timeline=_injected()),
    ):
        time.sleep(0.02)
        raise RuntimeError("body")


def test_observe_holds_for_a_healthy_probe() -> None:
    tl = _injected()
    with observe(lambda: True, interval=0.01, p99=1.0, timeline=tl) as obs:
        time.sleep(0.1)
    assert obs.result is not None and obs.result.passed
    assert obs.result.measured["calls"] >= 2
