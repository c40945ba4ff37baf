"""What one chaos test did, read back from its ``chaos_record`` and phase reports.

The terminal summary, the journal and Allure all present the same facts; this module
derives them once: fault windows (inject paired with heal), check verdicts, aborts and
the outcome (passed, failed, error, aborted, skipped). It reads only JSON-safe data, so
it works the same in an xdist worker and in the controller.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

__all__ = [
    "AbortInfo",
    "ChaosTestResult",
    "CheckVerdict",
    "FaultWindow",
    "Outcome",
    "PhaseInfo",
    "classify_exception",
    "derive_outcome",
]

Outcome = Literal["passed", "failed", "error", "aborted", "skipped"]
ExceptionKind = Literal["hypothesis", "assertion", "injection", "chaos", "unavailable", "other"]


def classify_exception(exc: BaseException) -> ExceptionKind:
    """Sort an exception raised by a test into the kinds the reports tell apart.

    A violated hypothesis is a failure, a broken injection an error ("broken" in
    Allure); a plain ``assert`` is a failure too. ``unavailable`` is an experiment whose
    infrastructure was missing, which only fails a test under ``--chaos-strict``. The
    error classes are imported here, not at module level, to keep the plugin-load path
    light.
    """
    from pytest_chaos.errors import (
        BlastRadiusError,
        ChaosError,
        ChaosUnavailable,
        HypothesisViolated,
        InjectionError,
        ProxyAPIError,
    )

    if isinstance(exc, ChaosUnavailable):
        return "unavailable"
    if isinstance(exc, HypothesisViolated):
        return "hypothesis"
    if isinstance(exc, AssertionError | pytest.fail.Exception):
        return "assertion"
    if isinstance(exc, InjectionError | BlastRadiusError | ProxyAPIError):
        return "injection"
    if isinstance(exc, ChaosError):
        return "chaos"
    return "other"


@dataclass
class PhaseInfo:
    """The outcome of one phase (setup, call, teardown) of a test, JSON-safe.

    ``skip_reason`` is the reason of a skipped phase, as pytest shows it.
    """

    outcome: str
    duration: float
    exception: dict[str, Any] | None = None
    wasxfail: bool = False
    skip_reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The phase as a JSON-safe dict."""
        return {
            "outcome": self.outcome,
            "duration": round(self.duration, 6),
            "exception": self.exception,
            "skip_reason": self.skip_reason,
        }


@dataclass(frozen=True)
class FaultWindow:
    """One fault from its inject event to its heal event (``end`` None if never healed)."""

    fault_id: str
    kind: str
    target: str
    attributes: Mapping[str, Any]
    stream: str | None
    toxicity: float | None
    start: float
    start_wall: float
    end: float | None
    end_wall: float | None
    healed_by: str | None

    @property
    def duration(self) -> float | None:
        """Seconds the fault was active, or None if it was never healed."""
        return None if self.end is None else max(0.0, self.end - self.start)

    def to_json(self) -> dict[str, Any]:
        """The window as a JSON-safe dict (the journal's ``faults`` items)."""
        return {
            "fault_id": self.fault_id,
            "type": self.kind,
            "target": self.target,
            "attributes": dict(self.attributes),
            "stream": self.stream,
            "toxicity": self.toxicity,
            "injected": {"t": self.start, "wall": self.start_wall},
            "healed": None
            if self.end is None
            else {"t": self.end, "wall": self.end_wall, "by": self.healed_by},
            "duration": None if self.duration is None else round(self.duration, 6),
        }


@dataclass(frozen=True)
class CheckVerdict:
    """One check event: the hypothesis, its verdict and its numbers.

    ``t`` is when the verdict was recorded (the end of the check); the check ran over
    ``[t - duration, t]``.
    """

    name: str
    target: str
    passed: bool
    measured: Mapping[str, Any]
    allowed: Mapping[str, Any]
    message: str
    duration: float
    t: float
    wall: float

    @property
    def recovery_seconds(self) -> float | None:
        """The recovery time a ``recovers`` check measured, if any."""
        value = self.measured.get("recovery_seconds")
        return float(value) if isinstance(value, int | float) else None

    def to_json(self) -> dict[str, Any]:
        """The verdict as a JSON-safe dict (the journal's ``checks`` items)."""
        return {
            "name": self.name,
            "target": self.target,
            "passed": self.passed,
            "measured": dict(self.measured),
            "allowed": dict(self.allowed),
            "message": self.message,
            "duration": self.duration,
            "t": self.t,
            "wall": self.wall,
        }


@dataclass(frozen=True)
class AbortInfo:
    """One abort event: who aborted, why, and which faults it healed."""

    source: str
    reason: str
    healed: tuple[str, ...]
    t: float
    wall: float


@dataclass
class ChaosTestResult:
    """Everything the reports say about one chaos test."""

    nodeid: str
    record: dict[str, Any]
    phases: dict[str, PhaseInfo] = field(default_factory=dict)
    faults: list[FaultWindow] = field(default_factory=list)
    checks: list[CheckVerdict] = field(default_factory=list)
    aborts: list[AbortInfo] = field(default_factory=list)

    @classmethod
    def build(cls, record: Mapping[str, Any], phases: Mapping[str, PhaseInfo]) -> ChaosTestResult:
        """Derive the result from a ``chaos_record`` and the test's phase reports."""
        result = cls(nodeid=str(record.get("nodeid", "")), record=dict(record))
        result.phases = dict(phases)
        timeline = record.get("timeline") or {}
        open_faults: dict[str, dict[str, Any]] = {}
        order: list[str] = []
        for event in timeline.get("events", []):
            kind, data = event.get("kind"), event.get("data") or {}
            if kind == "inject":
                fid = str(data.get("fault_id", f"f{len(order) + 1}"))
                open_faults[fid] = {"event": event, "heal": None}
                order.append(fid)
            elif kind == "heal":
                fid = str(data.get("fault_id", ""))
                if fid in open_faults and open_faults[fid]["heal"] is None:
                    open_faults[fid]["heal"] = event
            elif kind == "check":
                result.checks.append(
                    CheckVerdict(
                        name=str(event.get("name", "")),
                        target=str(event.get("target", "")),
                        passed=bool(data.get("passed")),
                        measured=dict(data.get("measured") or {}),
                        allowed=dict(data.get("allowed") or {}),
                        message=str(data.get("message", "")),
                        duration=float(data.get("duration") or 0.0),
                        t=float(event.get("t", 0.0)),
                        wall=float(event.get("wall", 0.0)),
                    )
                )
            elif kind == "abort":
                result.aborts.append(
                    AbortInfo(
                        source=str(event.get("name", "")),
                        reason=str(data.get("reason", "")),
                        healed=tuple(str(h) for h in data.get("healed") or ()),
                        t=float(event.get("t", 0.0)),
                        wall=float(event.get("wall", 0.0)),
                    )
                )
        for fid in order:
            inject, heal = open_faults[fid]["event"], open_faults[fid]["heal"]
            data = inject.get("data") or {}
            toxicity = data.get("toxicity")
            result.faults.append(
                FaultWindow(
                    fault_id=fid,
                    kind=str(inject.get("name", "")),
                    target=str(inject.get("target", "")),
                    attributes=dict(data.get("attributes") or {}),
                    stream=data.get("stream"),
                    toxicity=None if toxicity is None else float(toxicity),
                    start=float(inject.get("t", 0.0)),
                    start_wall=float(inject.get("wall", 0.0)),
                    end=None if heal is None else float(heal.get("t", 0.0)),
                    end_wall=None if heal is None else float(heal.get("wall", 0.0)),
                    healed_by=None if heal is None else (heal.get("data") or {}).get("by"),
                )
            )
        return result

    @property
    def outcome(self) -> Outcome:
        """passed, failed, error, aborted or skipped (see :func:`derive_outcome`)."""
        return derive_outcome(self.phases, self.record.get("aborted"))

    @property
    def failure(self) -> dict[str, Any] | None:
        """The first phase that did not pass, with its exception, or None."""
        for when in ("setup", "call", "teardown"):
            phase = self.phases.get(when)
            if phase is not None and phase.outcome == "failed":
                return {"phase": when, **(phase.exception or {})}
        return None

    @property
    def skip(self) -> dict[str, Any] | None:
        """The phase that was skipped and why (``{"phase", "reason"}``), or None."""
        for when in ("setup", "call", "teardown"):
            phase = self.phases.get(when)
            if phase is not None and phase.outcome == "skipped":
                return {"phase": when, "reason": phase.skip_reason or ""}
        return None

    @property
    def seed(self) -> int | None:
        """The seed the experiment ran with."""
        seed = self.record.get("seed")
        return seed if isinstance(seed, int) else None

    @property
    def samples(self) -> list[dict[str, Any]]:
        """The probe samples of the timeline (JSON dicts)."""
        return list((self.record.get("timeline") or {}).get("samples", []))

    @property
    def span(self) -> float:
        """Seconds from the start of the timeline to its last event, sample or heal."""
        ends = [0.0]
        for event in (self.record.get("timeline") or {}).get("events", []):
            ends.append(float(event.get("t", 0.0)))
        for sample in self.samples:
            ends.append(float(sample.get("t", 0.0)) + float(sample.get("latency", 0.0)))
        return max(ends)


def derive_outcome(phases: Mapping[str, PhaseInfo], aborted: object) -> Outcome:
    """The outcome of a chaos test from its phase reports and the record's ``aborted``.

    An abort wins over everything but a skip: a guard that fired is what the reader must
    see, whatever the test did next. A failing ``call`` is a failure when it raised an
    AssertionError (a violated hypothesis or a plain ``assert``), an error otherwise; a
    failing setup or teardown is an error.
    """
    if any(p.outcome == "skipped" for p in phases.values()):
        return "skipped"
    if aborted:
        return "aborted"
    setup, call, teardown = phases.get("setup"), phases.get("call"), phases.get("teardown")
    if setup is not None and setup.outcome == "failed":
        return "error"
    if call is not None and call.outcome == "failed":
        kind = (call.exception or {}).get("kind")
        return "failed" if kind in (None, "hypothesis", "assertion") else "error"
    if teardown is not None and teardown.outcome == "failed":
        return "error"
    return "passed"
