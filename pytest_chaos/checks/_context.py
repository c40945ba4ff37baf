"""`CheckContext`: what a check uses of the experiment it runs in.

Every check is a plain function. Called as ``chaos.<check>(...)``, `Chaos` passes
itself as ``context=``: the check then records on the test's timeline, hands its verdict
to ``context.record_check`` (the ``check`` event, the after-check hook, the raise), and
uses the experiment where its hypothesis needs it (a guard aborts it, ``recovers``
requires every fault healed, ``circuit_breaker`` heals to watch the breaker close).
Called from ``pytest_chaos.checks`` directly, there is no context and the check records
on the ``timeline=`` it is given, if any.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from pytest_chaos.checks._common import Finish, standalone_finish
from pytest_chaos.errors import CheckError

if TYPE_CHECKING:
    from pytest_chaos.checks._result import CheckResult
    from pytest_chaos.timeline import Timeline

__all__ = ["CheckContext", "bind_context", "require_healed"]


class CheckContext(Protocol):
    """The experiment a check runs in (`pytest_chaos.Chaos` is one)."""

    timeline: Timeline

    @property
    def active_faults(self) -> Sequence[object]:
        """Faults not healed yet."""
        ...

    def heal_all(self, by: str = "test") -> Sequence[object]:
        """Heal every active fault."""
        ...

    def abort(self, reason: str, *, source: str = "guard") -> Sequence[object]:
        """Heal everything and mark the experiment aborted."""
        ...

    def record_check(self, result: CheckResult, exc: BaseException | None = None) -> None:
        """Record a verdict and raise ``exc`` (or the result's violation) if it failed."""
        ...


def bind_context(
    context: CheckContext | None, timeline: Timeline | None, finish: Finish | None
) -> tuple[Timeline | None, Finish]:
    """The timeline to record on and the ``finish`` to hand the verdict to."""
    if context is None:
        return timeline, finish or standalone_finish(timeline)

    def done(result: CheckResult) -> None:
        context.record_check(result, None if result.passed else result.exception())
        # a context that records without raising must not turn a failure into a pass
        result.raise_if_failed()

    return context.timeline, finish or done


def require_healed(context: CheckContext | None, check: str) -> None:
    """Raise `CheckError` when ``check`` must judge after heal and faults are active."""
    if context is None:
        return
    active = list(context.active_faults)
    if active:
        names = ", ".join(repr(f) for f in active)
        raise CheckError(
            f"{check} judges the system after heal, but faults are still active: "
            f"{names}; heal them first (leave their with blocks or call .heal())"
        )
