"""Timed fault schedules as values: what ``fault_schedules`` generates and
``chaos.run_schedule`` runs, printable as a regression test.

A :class:`FaultSchedule` is a sorted tuple of :class:`ScheduledFault` (target, fault
string, start offset, duration, in seconds before ``--chaos-time-scale``). Its ``repr``
is Python that rebuilds it (Hypothesis prints it in "Falsifying example"), and
:meth:`FaultSchedule.as_python` / :meth:`FaultSchedule.as_yaml` write it as a
``chaos.schedule`` snippet and as YAML ``method`` steps.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_chaos.errors import ConfigurationError
from pytest_chaos.experiments import FaultSpec, UnitError, parse_fault

__all__ = ["FaultSchedule", "ScheduledFault", "check_fault", "format_seconds"]


def format_seconds(seconds: float) -> str:
    """``0.25`` -> ``"250ms"``, ``2.0`` -> ``"2s"``: a duration the YAML format accepts."""
    ms = round(seconds * 1000.0, 3)
    if ms % 1000 == 0:
        return f"{int(ms // 1000)}s"
    return f"{ms:g}ms"


def _quote(text: str) -> str:
    """A Python string literal in double quotes (the house style, ruff's)."""
    return json.dumps(text)


def check_fault(fault: object, *, where: str) -> FaultSpec:
    """Parse a fault string (``"latency:500ms"``); a clear error naming it otherwise."""
    if not isinstance(fault, str):
        raise ConfigurationError(
            f"{where}: fault {fault!r} is a {type(fault).__name__}; write faults as strings "
            "such as 'down', 'latency:500ms' or 'http_error:503'."
        )
    try:
        return parse_fault(fault)
    except (UnitError, ValueError) as exc:
        raise ConfigurationError(f"{where}: fault {fault!r}: {exc}") from None


@dataclass(frozen=True, order=True)
class ScheduledFault:
    """One fault of a schedule: ``fault`` on ``target`` from ``start`` for ``duration``
    seconds (both before the time scale). ``target`` is a proxy name of the test."""

    start: float
    duration: float
    target: str
    fault: str
    spec: FaultSpec = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        where = f"ScheduledFault({self.target!r}, {self.fault!r})"
        if not isinstance(self.target, str) or not self.target:
            raise ConfigurationError(f"{where}: target must be a proxy name (a string).")
        for name in ("start", "duration"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigurationError(f"{where}: {name}={value!r} is not a number of seconds.")
        if self.start < 0:
            raise ConfigurationError(f"{where}: start={self.start!r} is negative; use >= 0.")
        if self.duration <= 0:
            raise ConfigurationError(f"{where}: duration={self.duration!r} must be > 0 seconds.")
        object.__setattr__(self, "spec", check_fault(self.fault, where=where))

    @property
    def end(self) -> float:
        """``start + duration``."""
        return self.start + self.duration

    @property
    def label(self) -> str:
        """``"redis down at 0.25s"``: the step's name in reports and snippets."""
        return f"{self.target} {self.fault} at {self.start:g}s"

    def inject(self, proxy: Any) -> Any:
        """Inject the fault into ``proxy`` (a ``ChaosProxy``); return the ``Fault``."""
        return self.spec.inject(proxy)

    def python_call(self) -> str:
        """The ``ChaosProxy`` method call that injects it: ``.latency(500)``."""
        spec = self.spec
        args = spec.arguments
        if spec.name in ("latency", "http_delay"):
            return f".{spec.name}({args['ms']})"
        if spec.name == "bandwidth":
            return f".bandwidth({args['kb_per_s']!r})"
        if spec.name == "crash":
            return f".crash({args['after']!r})"
        if spec.name == "http_error":
            extra = ""
            if "retry_after" in args:
                extra += (
                    f", headers={{{_quote('Retry-After')}: {_quote(str(args['retry_after']))}}}"
                )
            if "body" in args:
                extra += f", body={_quote(args['body'])}"
            return f".http_error({args['status']}{extra})"
        return f".{spec.name}()"

    def __repr__(self) -> str:
        return (
            f"ScheduledFault(start={self.start!r}, duration={self.duration!r}, "
            f"target={self.target!r}, fault={self.fault!r})"
        )


class FaultSchedule:
    """A timed schedule of overlapping faults, sorted by start (the canonical form).

    ``faults``: the :class:`ScheduledFault` items. ``targets``: every proxy the schedule
    may fault (what ``chaos.run_schedule`` resets between examples; by default the
    faults' targets).
    """

    def __init__(
        self, faults: Iterable[ScheduledFault] = (), *, targets: Sequence[str] = ()
    ) -> None:
        items = list(faults)
        for item in items:
            if not isinstance(item, ScheduledFault):
                raise ConfigurationError(
                    f"FaultSchedule: {item!r} is a {type(item).__name__}, not a "
                    "ScheduledFault(start=..., duration=..., target=..., fault=...)."
                )
        self.faults: tuple[ScheduledFault, ...] = tuple(sorted(items))
        seen = dict.fromkeys([*targets, *(f.target for f in self.faults)])
        self.targets: tuple[str, ...] = tuple(seen)

    # -- value semantics --------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.faults)

    def __iter__(self) -> Iterator[ScheduledFault]:
        return iter(self.faults)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FaultSchedule):
            return NotImplemented
        return self.faults == other.faults

    def __hash__(self) -> int:
        return hash(self.faults)

    def __repr__(self) -> str:
        inner = ", ".join(repr(f) for f in self.faults)
        return f"FaultSchedule([{inner}])"

    @property
    def end(self) -> float:
        """When the last fault heals (seconds before the time scale; 0 without faults)."""
        return max((f.end for f in self.faults), default=0.0)

    def overlapping(self) -> list[tuple[ScheduledFault, ScheduledFault]]:
        """Pairs of faults active at the same time."""
        pairs = []
        for i, a in enumerate(self.faults):
            for b in self.faults[i + 1 :]:
                if b.start < a.end and a.start < b.end:
                    pairs.append((a, b))
        return pairs

    def describe(self) -> str:
        """One line: ``redis down [0s, 250ms); postgres down [0s, 500ms)``."""
        if not self.faults:
            return "no fault"
        return "; ".join(
            f"{f.target} {f.fault} [{format_seconds(f.start)}, {format_seconds(f.end)})"
            for f in self.faults
        )

    # -- as regression tests ----------------------------------------------------------

    def as_python(self) -> str:
        """A ``chaos.schedule`` snippet that replays the schedule around a scenario.

        Times are as generated (``chaos.schedule`` scales them by ``--chaos-time-scale``
        as ``run_schedule`` did); ``scenario()`` stands for the test's own scenario.
        """
        lines = ["from pytest_chaos.experiment import Step", "", "with chaos.schedule(", "    ["]
        for f in self.faults:
            proxy = f"chaos.proxies[{_quote(f.target)}]"
            lines += [
                "        Step(",
                f"            at={f.start!r},",
                f"            for_={f.duration!r},",
                f"            name={_quote(f.label)},",
                f"            fault=lambda: {proxy}{f.python_call()},",
                "        ),",
            ]
        lines += ["    ]", ") as run:", "    while not run.done:", "        scenario()"]
        return "\n".join(lines)

    def as_yaml(self) -> str:
        """The schedule as the ``method`` steps of a YAML experiment."""
        if not self.faults:
            return "method: []"
        lines = ["method:"]
        for f in self.faults:
            lines += [
                f"  - at: {format_seconds(f.start)}",
                f"    name: {json.dumps(f.label)}",
                f"    target: {json.dumps(f.target)}",
                f"    fault: {json.dumps(f.fault)}",
                f"    for: {format_seconds(f.duration)}",
            ]
        return "\n".join(lines)

    def explain(self) -> str:
        """What a failure message adds: the schedule, and both snippets to paste."""
        python = "\n".join("    " + line for line in self.as_python().splitlines())
        yaml = "\n".join("    " + line for line in self.as_yaml().splitlines())
        return (
            f"fault schedule ({len(self.faults)} fault(s)): {self.describe()}\n"
            f"  as a regression test with chaos.schedule:\n{python}\n"
            f"  as YAML experiment steps:\n{yaml}"
        )
