"""``fault_schedules``: a Hypothesis strategy of timed, overlapping fault schedules.

Built so that Hypothesis shrinks toward the simplest schedule: a list (shrinks by
removing faults: fewest faults), start and duration as whole ticks of ``resolution``
seconds (integers shrink toward 0 and 1: earliest starts, shortest durations), target
and fault drawn from the lists as given (shrink toward the first of each). The drawn
faults are sorted by start, so one schedule has one form whatever order it was drawn in.

Two faults on the same target never overlap (a second ``down`` healed by the first's
heal would be ambiguous): a fault drawn over an earlier one on its target starts when
the earlier one ends, or is dropped if that is past the horizon.

Hypothesis is imported when a strategy is built, not with this module.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pytest_chaos.errors import ConfigurationError
from pytest_chaos.strategies._schedule import FaultSchedule, ScheduledFault, check_fault

if TYPE_CHECKING:
    from hypothesis import settings as Settings
    from hypothesis.strategies import SearchStrategy

__all__ = ["fault_schedules", "require_hypothesis", "schedule_settings"]

_EXTRA = "pip install 'pytest-chaos[explore]'"


def require_hypothesis(what: str) -> Any:
    """Import Hypothesis, or a clear error naming the extra that installs it."""
    try:
        import hypothesis
    except ImportError:
        raise ConfigurationError(
            f"{what} needs Hypothesis, which is not installed; {_EXTRA} (or pip install "
            "'hypothesis>=6.100')."
        ) from None
    return hypothesis


def _validate(
    targets: object,
    faults: object,
    max_faults: object,
    horizon: object,
    resolution: object,
    min_faults: object,
) -> tuple[list[str], dict[str, list[str]]]:
    where = "fault_schedules"
    if isinstance(targets, str) or not isinstance(targets, Sequence) or not targets:
        raise ConfigurationError(
            f"{where}: targets={targets!r} must be a non-empty list of proxy names, e.g. "
            "targets=['redis', 'postgres']."
        )
    names = list(targets)
    for name in names:
        if not isinstance(name, str) or not name:
            raise ConfigurationError(
                f"{where}: target {name!r} is not a proxy name; give the names the test's "
                "chaos.proxy(name, ...) calls use."
            )
    if len(set(names)) != len(names):
        raise ConfigurationError(
            f"{where}: targets={names!r} names a target twice; list each once."
        )
    if isinstance(faults, Mapping):
        unknown = sorted(set(faults) - set(names))
        if unknown:
            raise ConfigurationError(
                f"{where}: faults names targets {unknown} that are not in targets={names!r}; "
                "key faults by the targets' names."
            )
        per_target = {name: faults.get(name, ()) for name in names}
    elif isinstance(faults, Sequence) and not isinstance(faults, str):
        per_target = {name: faults for name in names}
    else:
        raise ConfigurationError(
            f"{where}: faults={faults!r} must be a list of fault strings (['down', "
            "'latency:500ms']) or a mapping target -> list."
        )
    catalogue: dict[str, list[str]] = {}
    for name, listed in per_target.items():
        if isinstance(listed, str) or not isinstance(listed, Sequence):
            raise ConfigurationError(
                f"{where}: the faults of {name!r} ({listed!r}) must be a list of fault strings."
            )
        for fault in listed:
            check_fault(fault, where=f"{where} (target {name!r})")
        if listed:
            catalogue[name] = list(listed)
    if not catalogue:
        raise ConfigurationError(
            f"{where}: no target has a fault; give faults=['down', 'latency:500ms', ...]."
        )
    for arg, value, low in (("max_faults", max_faults, 1), ("min_faults", min_faults, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigurationError(f"{where}: {arg}={value!r} must be a whole number >= {low}.")
    assert isinstance(max_faults, int) and isinstance(min_faults, int)
    if min_faults > max_faults:
        raise ConfigurationError(
            f"{where}: min_faults={min_faults} > max_faults={max_faults}; lower min_faults."
        )
    for arg, value in (("horizon", horizon), ("resolution", resolution)):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value <= 0
        ):
            raise ConfigurationError(
                f"{where}: {arg}={value!r} must be a number of seconds > 0 (horizon=5.0 "
                "spreads faults over 5 s before --chaos-time-scale)."
            )
    assert isinstance(horizon, int | float) and isinstance(resolution, int | float)
    if resolution > horizon:
        raise ConfigurationError(
            f"{where}: resolution={resolution!r} is longer than horizon={horizon!r}; use a "
            "resolution that divides the horizon, e.g. horizon / 20."
        )
    return names, catalogue


def _resolve(
    drawn: list[tuple[int, int, str, str]], ticks: int, resolution: float, targets: Sequence[str]
) -> FaultSchedule:
    """Ticks to seconds, same-target overlaps moved after each other, sorted."""
    busy: dict[str, int] = {}  # target -> tick its last fault ends
    faults = []
    for start, length, target, fault in sorted(drawn):
        start = max(start, busy.get(target, 0))
        if start >= ticks:
            continue
        length = min(length, ticks - start)
        busy[target] = start + length
        faults.append(
            ScheduledFault(
                start=round(start * resolution, 6),
                duration=round(length * resolution, 6),
                target=target,
                fault=fault,
            )
        )
    return FaultSchedule(faults, targets=targets)


def fault_schedules(
    targets: Sequence[str],
    faults: Sequence[str] | Mapping[str, Sequence[str]],
    max_faults: int = 4,
    horizon: float = 5.0,
    *,
    min_faults: int = 1,
    resolution: float | None = None,
) -> SearchStrategy[FaultSchedule]:
    """A Hypothesis strategy of timed fault schedules (:class:`FaultSchedule`).

    Each schedule holds ``min_faults`` to ``max_faults`` faults, each a fault string of
    ``faults`` (``"down"``, ``"latency:500ms"``, ...; a mapping ``{target: [...]}``
    gives each target its own list) on one of ``targets`` (the test's proxy names),
    starting within ``horizon`` seconds and ending by it; faults on different targets
    overlap freely. Times are multiples of ``resolution`` seconds (default
    ``horizon / 20``) before ``--chaos-time-scale``.

    On failure Hypothesis shrinks toward fewer faults, earlier starts, shorter
    durations and the first target and fault of the lists. Run a schedule with
    ``chaos.run_schedule(schedule, scenario)``.
    """
    step = horizon / 20 if resolution is None and isinstance(horizon, int | float) else resolution
    names, catalogue = _validate(targets, faults, max_faults, horizon, step, min_faults)
    hypothesis = require_hypothesis("pytest_chaos.strategies.fault_schedules")
    st = hypothesis.strategies
    assert isinstance(step, int | float)
    resolution_s = float(step)
    ticks = max(1, math.floor(float(horizon) / resolution_s + 1e-9))
    faulted = [name for name in names if name in catalogue]

    @st.composite  # type: ignore[untyped-decorator]
    def one_fault(draw: Any) -> tuple[int, int, str, str]:
        target = draw(st.sampled_from(faulted))
        fault = draw(st.sampled_from(catalogue[target]))
        start = draw(st.integers(min_value=0, max_value=ticks - 1))
        length = draw(st.integers(min_value=1, max_value=ticks - start))
        return (start, length, target, fault)

    # composite rather than .map: Hypothesis then prints the schedule's repr (Python that
    # rebuilds it) in "Falsifying example", not the mapping function's source
    @st.composite  # type: ignore[untyped-decorator]
    def schedules(draw: Any) -> FaultSchedule:
        drawn = draw(st.lists(one_fault(), min_size=min_faults, max_size=max_faults))
        return _resolve(drawn, ticks, resolution_s, names)

    strategy: SearchStrategy[FaultSchedule] = schedules()
    return strategy


def schedule_settings(**overrides: Any) -> Settings:
    """Hypothesis settings for a test that runs fault schedules through fixtures.

    ``deadline=None`` (an example lasts as long as its schedule), the
    ``function_scoped_fixture`` and ``too_slow`` health checks suppressed (the ``chaos``
    proxies and the system under test are fixtures built once per test, reused by every
    example: ``chaos.run_schedule`` heals and resets the proxies between examples), and
    ``max_examples=20``. Keyword arguments override any of them:
    ``@schedule_settings(max_examples=50)`` or ``@settings(schedule_settings(), ...)``.
    """
    hypothesis = require_hypothesis("pytest_chaos.strategies.schedule_settings")
    values: dict[str, Any] = {
        "deadline": None,
        "max_examples": 20,
        "suppress_health_check": [
            hypothesis.HealthCheck.function_scoped_fixture,
            hypothesis.HealthCheck.too_slow,
        ],
    }
    values.update(overrides)
    made: Settings = hypothesis.settings(**values)
    return made
