"""Calling a probe: timing it, judging it, and recording it on the timeline.

A probe is any zero-argument callable. A call *fails* when it raises one of the declared
``failures`` (any ``Exception`` by default) or returns ``False``; everything else is a
success. An exception that is not declared as a failure means the probe itself is
broken, so the check cannot run: that is a :class:`~pytest_chaos.errors.CheckError`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_chaos.errors import CheckError

if TYPE_CHECKING:
    from pytest_chaos.timeline import Timeline

__all__ = [
    "Call",
    "Failures",
    "Probe",
    "check_failures",
    "check_positive",
    "percentile",
    "probe_name",
]

Failures = tuple[type[BaseException], ...]


@dataclass(frozen=True)
class Call:
    """One probe call: start (timeline seconds, or monotonic without a timeline), latency,
    verdict, and the failure if there was one."""

    t: float
    latency: float
    ok: bool
    error: str = ""
    value: Any = None


def probe_name(probe: Callable[..., object]) -> str:
    """A short label for a probe, used in samples and messages."""
    name = getattr(probe, "__qualname__", None) or getattr(probe, "__name__", None)
    return str(name) if name else type(probe).__name__


def check_failures(failures: object, check: str) -> Failures:
    """Validate ``failures=``: a tuple of exception classes."""
    if isinstance(failures, type) and issubclass(failures, BaseException):
        return (failures,)
    if isinstance(failures, tuple) and all(
        isinstance(f, type) and issubclass(f, BaseException) for f in failures
    ):
        return failures
    raise CheckError(
        f"{check}: failures={failures!r} is not an exception class or a tuple of them; "
        f"pass e.g. failures=(ConnectionError, TimeoutError)"
    )


def check_positive(check: str, name: str, value: object, *, allow_zero: bool = False) -> float:
    """Validate a numeric argument: a finite number, positive (or >= 0)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CheckError(f"{check}: {name}={value!r} is not a number; pass a finite number")
    if value < 0 or (value == 0 and not allow_zero):
        rule = ">= 0" if allow_zero else "> 0"
        raise CheckError(f"{check}: {name}={value!r} must be {rule}; pass a value {rule}")
    return float(value)


def check_count(check: str, name: str, value: object, *, minimum: int = 1) -> int:
    """Validate an integer count argument."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise CheckError(
            f"{check}: {name}={value!r} must be an integer >= {minimum}; "
            f"pass e.g. {name}={max(minimum, 3)}"
        )
    return value


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by the nearest-rank method (a value that occurred)."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


class Probe:
    """A probe bound to the way its calls are judged and recorded.

    ``label`` names the samples on the timeline (the Allure chart groups them by it).
    """

    def __init__(
        self,
        fn: Callable[[], object],
        *,
        check: str,
        failures: object = (Exception,),
        timeline: Timeline | None = None,
        label: str | None = None,
    ) -> None:
        if not callable(fn):
            raise CheckError(f"{check}: the probe {fn!r} is not callable; pass a function")
        self.fn = fn
        self.check = check
        self.failures = check_failures(failures, check)
        self.timeline = timeline
        name = getattr(fn, "__name__", "")
        # a lambda's name says nothing; a named probe's name says what was probed
        self.label = label or (f"{check}:{name}" if name and name != "<lambda>" else check)

    def now(self) -> float:
        """Timeline seconds (or the monotonic clock when there is no timeline)."""
        return self.timeline.now() if self.timeline is not None else time.monotonic()

    def __call__(self) -> Call:
        """Call the probe once, record the sample, and return the :class:`Call`."""
        t = self.now()
        start = time.perf_counter()
        error = ""
        value: Any = None
        try:
            value = self.fn()
        except self.failures as exc:
            ok = False
            error = f"{type(exc).__name__}: {exc}"[:200]
        except Exception as exc:
            raise CheckError(
                f"{self.check}: the probe {probe_name(self.fn)} raised {type(exc).__name__}: "
                f"{exc}, which is not declared as a failure (failures="
                f"{tuple(f.__name__ for f in self.failures)}); add it to failures=... "
                f"if it means the system failed, or fix the probe"
            ) from exc
        else:
            ok = value is not False
            if not ok:
                error = "returned False"
        latency = time.perf_counter() - start
        if self.timeline is not None:
            self.timeline.sample(self.label, t=t, latency=latency, ok=ok)
        return Call(t, latency, ok, error, value)

    def __repr__(self) -> str:
        return f"<Probe {self.label!r} failures={[f.__name__ for f in self.failures]}>"
