from __future__ import annotations

import time

import pytest

from pytest_chaos.checks import (
    CheckResult,
    GuardTripped,
    History,
    SteadyStateViolated,
    circuit_breaker,
    guard,
    recovers,
    steady_state,
)
from pytest_chaos.errors import CheckError, HypothesisViolated, SteadyStateNotMet
from pytest_chaos.timeline import Timeline


class FakeChaos:
    """A CheckContext in memory: what a check uses of the experiment."""

    def __init__(self) -> None:
        self.timeline = Timeline()
        self.faults: list[str] = []
        self.aborted: str | None = None
        self.done: list[CheckResult] = []

    @property
    def active_faults(self) -> list[str]:
        return list(self.faults)

    def heal_all(self, by: str = "test") -> list[str]:
        healed, self.faults = self.faults, []
        for f in healed:
            self.timeline.record("heal", "latency", fault_id=f, by=by, duration=0.0)
        return healed

    def abort(self, reason: str, *, source: str = "guard") -> list[str]:
        healed = self.heal_all("guard")
        self.aborted = reason
        self.timeline.record("abort", "guard", reason=reason, healed=healed)
        return healed

    def record_check(self, result: CheckResult, exc: BaseException | None = None) -> None:
        self.done.append(result)
        self.timeline.record("check", result.name, **result.event_data())
        if not result.passed:
            raise exc if exc is not None else HypothesisViolated(result.message)

    def inject(self) -> None:
        self.faults.append(f"f{len(self.faults) + 1}")
        self.timeline.record("inject", "latency", fault_id=self.faults[-1])


def test_a_context_gets_every_verdict_with_the_checks_exception() -> None:
    chaos = FakeChaos()
    with pytest.raises(SteadyStateNotMet):
        steady_state(lambda: False, calls=2, context=chaos)
    chaos.inject()
    with pytest.raises(SteadyStateViolated):
        steady_state(lambda: False, calls=2, context=chaos)
    assert [r.passed for r in chaos.done] == [False, False]


def test_a_guard_in_a_context_aborts_the_experiment() -> None:
    chaos = FakeChaos()
    chaos.inject()
    with pytest.raises(GuardTripped), guard(lambda: False, interval=0.01, context=chaos) as g:
        deadline = time.monotonic() + 5
        while not g.breached and time.monotonic() < deadline:
            time.sleep(0.01)
    assert chaos.aborted and not chaos.active_faults
    assert len(chaos.timeline.of_kind("abort")) == 1  # the controller's, not a second one
    assert g.healed == ["f1"]


def test_recovers_and_history_in_a_context_need_healed_faults() -> None:
    chaos = FakeChaos()
    chaos.inject()
    with pytest.raises(CheckError, match="faults are still active"):
        recovers(lambda: True, within=1, context=chaos)
    h = History(context=chaos)
    h.write("k", 1, lambda: None)
    with pytest.raises(CheckError, match="faults are still active"):
        h.check({"k": [1]})
    chaos.heal_all()
    assert recovers(lambda: True, within=1, context=chaos).passed
    assert h.check({"k": [1]}).passed


def test_circuit_breaker_in_a_context_heals_all_when_given_reset_timeout() -> None:
    chaos = FakeChaos()
    chaos.inject()
    counter = {"n": 0}

    def call() -> None:
        if chaos.active_faults:
            raise RuntimeError("open")  # fast, never reaches
        counter["n"] += 1

    stats = lambda: {"connections_accepted": counter["n"], "bytes_upstream": 0, "http_requests": 0}  # noqa: E731
    result = circuit_breaker(
        call, proxy=stats, opens_within_calls=1, reset_timeout=0.05, context=chaos
    )
    assert result.passed and not chaos.active_faults
