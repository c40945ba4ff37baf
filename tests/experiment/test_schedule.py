"""``chaos.schedule``: steps start on time, heal on time, check their windows, abort all.

The faults are ``chaos.inject`` with recording apply/undo functions (the mechanism every
fault method uses), so these tests see the schedule, not a proxy.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest

from pytest_chaos import (
    BlastRadius,
    Chaos,
    ConfigurationError,
    GuardTripped,
    RecoveryViolated,
    SteadyStateViolated,
)
from pytest_chaos.experiment import AbortWhen, ChaosSpec, Recovers, SteadyState, Step


class NoServer:
    url = "http://none"
    embedded = True

    def proxies(self) -> dict[str, Any]:
        return {}


def make(scale: float = 1.0) -> tuple[Chaos, list[str]]:
    spec = ChaosSpec("t.py::test", BlastRadius(targets=["db", "cache", "pay"]))
    chaos = Chaos(client=NoServer(), spec=spec, nodeid="t.py::test", seed=1)  # type: ignore[arg-type]
    chaos.time_scale = scale
    log: list[str] = []
    return chaos, log


def fault(chaos: Chaos, log: list[str], target: str, kind: str = "latency") -> Any:
    def inject() -> Any:
        return chaos.inject(
            target,
            kind,
            apply=lambda: log.append(f"+{target}"),
            undo=lambda: log.append(f"-{target}"),
        )

    return inject


def notes(chaos: Chaos) -> list[dict[str, Any]]:
    return [dict(e.data) for e in chaos.timeline.of_kind("note") if e.name == "schedule_step"]


def test_steps_inject_and_heal_in_order_on_time_and_are_recorded() -> None:
    chaos, log = make()
    run = chaos.schedule(
        [
            Step(at=0.0, fault=fault(chaos, log, "db"), for_=0.2, name="slow db"),
            Step(at=0.1, fault=fault(chaos, log, "cache"), name="cache lost"),
            Step(at=0.25, heal="cache lost"),
        ]
    )
    run.wait()
    assert log == ["+db", "+cache", "-db", "-cache"]
    recorded = notes(chaos)
    assert [n["step"] for n in recorded] == ["slow db", "cache lost", "step 3"]
    for n in recorded:
        assert n["actual"] >= n["planned"]
        assert n["late_ms"] < 50, recorded  # the bound; typically < 2 ms
    heals = chaos.timeline.of_kind("heal")
    assert [h.data["by"] for h in heals] == ["schedule", "schedule"]
    chaos.teardown()


def test_a_slow_injection_is_not_counted_as_a_late_start() -> None:
    """A step starts when the schedule begins it; how long its fault call takes (an API
    call on a loaded machine) is recorded apart, as inject_ms."""
    chaos, log = make()
    inject = fault(chaos, log, "db")

    def slow_inject() -> Any:
        time.sleep(0.3)
        return inject()

    run = chaos.schedule([Step(at=0.05, fault=slow_inject, for_=0.05, name="slow")])
    run.wait()
    (step, *_) = [n for n in notes(chaos) if n.get("fault")]
    assert step["late_ms"] < 50  # generous: the start itself is not slowed
    assert step["inject_ms"] >= 250
    assert run.steps[0]["inject_ms"] == step["inject_ms"]
    chaos.teardown()


def test_the_time_scale_compresses_step_times() -> None:
    chaos, log = make(scale=0.001)
    started = time.monotonic()
    chaos.schedule(
        [
            Step(at=60.0, fault=fault(chaos, log, "db"), for_=60.0),
            Step(at=200.0, fault=fault(chaos, log, "cache"), for_=100.0),
        ]
    ).wait()
    assert time.monotonic() - started < 1.0
    assert log == ["+db", "-db", "+cache", "-cache"]
    assert [n["time_scale"] for n in notes(chaos)] == [0.001, 0.001]
    assert notes(chaos)[1]["at"] == 200.0
    chaos.teardown()


def test_a_violated_window_objective_is_raised_by_wait() -> None:
    chaos, log = make()

    def probe() -> None:
        if chaos.active_faults:
            raise ConnectionError("refused")

    run = chaos.schedule(
        [
            Step(
                at=0.0,
                fault=fault(chaos, log, "db"),
                for_=0.2,
                name="db down",
                expect=SteadyState(probe, max_error_rate=0.0, interval=0.01),
            )
        ]
    )
    with pytest.raises(SteadyStateViolated, match="error rate"):
        run.wait()
    checks = chaos.timeline.of_kind("check")
    assert [(c.name, c.data["passed"]) for c in checks] == [("steady_state", False)]
    chaos.teardown()


def test_recovers_is_measured_from_the_steps_heal_while_another_fault_is_active() -> None:
    chaos, log = make()
    healed_at: list[float] = []

    def probe() -> None:
        if any(f.target == "db" for f in chaos.active_faults):
            raise ConnectionError("db down")
        healed_at.append(time.monotonic())

    chaos.schedule(
        [
            Step(at=0.0, fault=fault(chaos, log, "cache"), for_=0.4),
            Step(
                at=0.0,
                fault=fault(chaos, log, "db"),
                for_=0.1,
                recovers=Recovers(probe, within=1.0, interval=0.01),
            ),
        ]
    ).wait()
    recovered = [c for c in chaos.timeline.of_kind("check") if c.name == "recovers"]
    assert recovered and recovered[0].data["passed"]
    chaos.teardown()


def test_a_slow_recovery_fails_the_schedule() -> None:
    chaos, log = make()
    run = chaos.schedule(
        [
            Step(
                at=0.0,
                fault=fault(chaos, log, "db"),
                for_=0.05,
                recovers=Recovers(lambda: False, within=0.1, interval=0.01),
            )
        ]
    )
    with pytest.raises(RecoveryViolated):
        run.wait()
    chaos.teardown()


def test_abort_when_aborts_the_whole_schedule_and_heals_everything() -> None:
    chaos, log = make()
    counter = itertools.count()

    def probe() -> bool:
        return next(counter) % 2 == 0  # 50% errors

    run = chaos.schedule(
        [
            Step(
                at=0.0,
                fault=fault(chaos, log, "db"),
                for_=2.0,
                name="db",
                abort_when=AbortWhen(probe, max_error_rate=0.05, min_calls=4, interval=0.005),
            ),
            Step(at=1.0, fault=fault(chaos, log, "cache"), for_=0.1, name="never"),
        ]
    )
    with pytest.raises(GuardTripped, match="schedule aborted at step 'db'"):
        run.wait()
    assert log == ["+db", "-db"]  # the later step never ran
    assert chaos.aborted is not None
    assert [e.name for e in chaos.timeline.of_kind("abort")] == ["schedule"]
    chaos.teardown()


def test_teardown_joins_a_schedule_nobody_waited_for() -> None:
    chaos, log = make()
    run = chaos.schedule([Step(at=0.0, fault=fault(chaos, log, "db"), for_=5.0)])
    time.sleep(0.05)
    chaos.teardown()
    assert run.done
    assert log == ["+db", "-db"]


def test_a_fault_outside_the_radius_is_the_schedules_error() -> None:
    chaos, log = make()
    run = chaos.schedule([Step(at=0.0, fault=fault(chaos, log, "redis"), for_=0.1)])
    with pytest.raises(Exception, match="blast_radius"):
        run.wait()
    assert log == []
    chaos.teardown()


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([Step(at=-1.0, fault=lambda: None)], "negative"),  # type: ignore[arg-type,return-value]
        ([Step(at=0.0, for_=1.0)], "needs a fault"),
        ([Step(at=1.0, heal="nothing")], "names no earlier step"),
        (["latency"], "not a Step"),
    ],
)
def test_bad_steps_are_refused_before_anything_runs(steps: list[Any], message: str) -> None:
    chaos, _ = make()
    with pytest.raises(ConfigurationError, match=message):
        chaos.schedule(steps)
    with pytest.raises(ConfigurationError, match="time_scale"):
        chaos.schedule([], time_scale=0)
    chaos.teardown()
