"""What every check does once it has a verdict, when it runs without a ``Chaos``.

Called through ``chaos.<check>``, the controller records the result and raises
(``Chaos._check_done``); called from ``pytest_chaos.checks`` directly, the check does
it itself with :func:`finish`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pytest_chaos.checks._result import CheckResult

if TYPE_CHECKING:
    from pytest_chaos.timeline import Timeline

__all__ = ["Finish", "fmt_s", "has_injected", "last_heal_t", "record_only", "standalone_finish"]

#: records a result and raises its violation when it failed
Finish = Callable[[CheckResult], None]


def record_only(result: CheckResult, timeline: Timeline | None) -> None:
    """Put the ``check`` event of ``result`` on ``timeline`` (if there is one)."""
    if timeline is not None:
        timeline.record("check", result.name, target=result.target, **result.event_data())


def standalone_finish(timeline: Timeline | None) -> Finish:
    """The ``finish`` of a check called without a controller: record, then raise."""

    def finish(result: CheckResult) -> None:
        record_only(result, timeline)
        result.raise_if_failed()

    return finish


def has_injected(timeline: Timeline | None) -> bool:
    """Whether any fault was injected on ``timeline`` so far."""
    return timeline is not None and bool(timeline.of_kind("inject"))


def last_heal_t(timeline: Timeline | None) -> float | None:
    """Timeline seconds of the last ``heal`` or ``abort``, if it came after every inject."""
    if timeline is None:
        return None
    last_inject: float | None = None
    last_heal: float | None = None
    for event in timeline.events:
        if event.kind == "inject":
            last_inject = event.t
        elif event.kind in ("heal", "abort"):
            last_heal = event.t
    if last_heal is None or (last_inject is not None and last_inject > last_heal):
        return None
    return last_heal


def fmt_s(seconds: Any) -> str:
    """Seconds for a message: ``1.84 s``, ``0.004 s`` (short times keep a digit more)."""
    value = float(seconds)
    return f"{value:.3f} s" if abs(value) < 0.1 else f"{value:.2f} s"
