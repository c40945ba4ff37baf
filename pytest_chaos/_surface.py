"""The part of `Chaos` that the mixins (checks, container faults, message faults) use.

One Protocol for all three, so the contract of docs/internals.md ("Controller surface")
is written once and checked by mypy wherever a mixin reaches into the controller.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pytest_chaos._fault import Fault
    from pytest_chaos._timeline import Timeline
    from pytest_chaos.checks._result import CheckResult

__all__ = ["ControllerSurface"]


class ControllerSurface(Protocol):
    """What a mixin may call on the controller it is mixed into."""

    rng: random.Random
    timeline: Timeline

    @property
    def active_faults(self) -> Sequence[Any]: ...

    def inject(
        self,
        target: str,
        kind: str,
        *,
        apply: Callable[[], object],
        undo: Callable[[], object],
        attributes: dict[str, Any] | None = None,
        stream: str | None = None,
        toxicity: float | None = None,
    ) -> Fault: ...

    def heal_all(self, by: str = ...) -> Sequence[Any]: ...

    def abort(self, reason: str) -> Sequence[Any]: ...

    def _check_done(self, result: CheckResult, exc: BaseException | None = None) -> None: ...
