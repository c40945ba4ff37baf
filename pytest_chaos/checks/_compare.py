"""compare: a control group against an experiment group, as Netflix's ChAP judges.

Two instances of the system run side by side: the *control* and the *experiment*. Only
the experiment's dependencies are faulted. ``compare`` calls the same probe against
both, interleaved in time (each round calls both, in an order drawn from the
experiment's seeded rng), so whatever the machine does meanwhile (a busy CPU, a slow
disk) hits both groups alike. It then decides with statistics rather than a fixed
threshold:

- latency: a one-sided Mann-Whitney U test (are the experiment's latencies larger?),
  with Cliff's delta as the effect size;
- errors: a one-sided two-proportion test (Fisher's exact test for few errors);
- ``max_degradation``: the budget. A metric fails the check only when its degradation
  is both statistically significant (p < ``alpha``) and beyond its budget: a tiny but
  real difference passes, and so does a large difference that noise explains.

``abort_when`` is the kill switch: a bound on the experiment group over a sliding
window of its last calls. On a breach the experiment's faults are healed at once (as
``chaos.compare``, through ``chaos.abort``), the comparison stops, and the check fails
with :class:`ComparisonAborted`.
"""

from __future__ import annotations

import inspect
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_chaos.checks._common import Finish
from pytest_chaos.checks._context import CheckContext, bind_context
from pytest_chaos.checks._errors import ComparisonAborted, ComparisonViolated
from pytest_chaos.checks._probe import Call, Probe, check_count, check_positive
from pytest_chaos.checks._result import CheckResult
from pytest_chaos.checks._statistics import (
    SHOWN,
    MannWhitney,
    Proportions,
    effect_label,
    histogram,
    mann_whitney_u,
    quantile,
    summarize,
    two_proportions,
)
from pytest_chaos.errors import CheckError

if TYPE_CHECKING:
    from pytest_chaos.timeline import Timeline

__all__ = ["AbortWhen", "Budget", "Comparison", "compare"]

_CHECK = "compare"
#: latency metrics a budget or a kill switch may name (seconds; percentiles nearest-rank)
LATENCY_METRICS = ("p50", "p90", "p95", "p99", "max", "mean")
#: fewer calls per group than this can never reach significance at the usual alphas
MIN_CALLS = 5
#: the budget when none is given: any significant degradation of the median or errors
DEFAULT_BUDGET = {"p50": "+0%", "error_rate": "+0pt"}

_LATENCY = re.compile(r"^\+?\s*(\d+(?:\.\d+)?)\s*(%|ms|s)$")
_POINTS = re.compile(r"^\+?\s*(\d+(?:\.\d+)?)\s*(pt|pts|point|points)$")


@dataclass(frozen=True)
class Budget:
    """One rule of ``max_degradation``: how much worse ``metric`` may get.

    ``unit`` is ``"%"`` (relative to the control's value), ``"s"`` (seconds added to
    it) or ``"pt"`` (percentage points of error rate added); ``text`` is what the user
    wrote.
    """

    metric: str
    amount: float
    unit: str
    text: str

    def limit(self, control: float) -> float:
        """The largest experiment value this rule allows, given the control's value."""
        if self.unit == "%":
            return control * (1.0 + self.amount / 100.0)
        if self.unit == "pt":
            return control + self.amount / 100.0
        return control + self.amount


def _budget_fix(metric: str) -> str:
    if metric == "error_rate":
        return "write percentage points, e.g. 'error_rate': '+1pt' (1% more calls may fail)"
    return (
        f"write e.g. '{metric}': '+20%' (relative to the control's {metric}) or "
        f"'{metric}': '+50ms' / '+0.05s' (absolute)"
    )


def parse_budget(max_degradation: object) -> list[Budget]:
    """Validate ``max_degradation`` (a mapping of metric to allowance) into rules."""
    if max_degradation is None:
        max_degradation = DEFAULT_BUDGET
    if not isinstance(max_degradation, Mapping) or not max_degradation:
        raise CheckError(
            f"{_CHECK}: max_degradation={max_degradation!r} is not a non-empty mapping of "
            f"metric to allowance; pass e.g. max_degradation={{'p99': '+20%', "
            f"'error_rate': '+1pt'}}"
        )
    rules = []
    known = (*LATENCY_METRICS, "error_rate")
    for metric, value in max_degradation.items():
        if metric not in known:
            raise CheckError(
                f"{_CHECK}: max_degradation has an unknown metric {metric!r}; choose from "
                f"{list(known)}"
            )
        where = f"{_CHECK}: max_degradation[{metric!r}]={value!r}"
        if not isinstance(value, str):
            raise CheckError(
                f"{where} is not a string: an allowance says its unit; {_budget_fix(metric)}"
            )
        text = value.strip()
        if metric == "error_rate":
            match = _POINTS.match(text)
            if match is None:
                raise CheckError(
                    f"{where} is not an increase in percentage points ('+Npt'); "
                    f"{_budget_fix(metric)}"
                )
            amount, unit = float(match.group(1)), "pt"
            if amount > 100:
                raise CheckError(
                    f"{where} allows more than 100 points, which no error rate can reach; "
                    f"{_budget_fix(metric)}"
                )
        else:
            match = _LATENCY.match(text)
            if match is None:
                raise CheckError(
                    f"{where} is not a relative ('+N%') or absolute ('+Nms', '+Ns') increase; "
                    f"{_budget_fix(metric)}"
                )
            amount, unit = float(match.group(1)), match.group(2)
            if unit == "ms":
                amount, unit = amount / 1000.0, "s"
        rules.append(Budget(metric, amount, unit, text))
    return rules


@dataclass(frozen=True)
class AbortWhen:
    """The kill switch: bounds on the experiment group's last ``window`` calls.

    ``error_rate`` is a fraction (0.5: more than half of the window failed);
    ``latency`` maps a metric of :data:`LATENCY_METRICS` to seconds.
    """

    window: int
    error_rate: float | None = None
    latency: dict[str, float] = field(default_factory=dict)

    def breach(self, calls: list[Call]) -> str:
        """Why the last calls breach a bound ('' when none is breached)."""
        recent = calls[-self.window :]
        if self.error_rate is not None:
            errors = sum(1 for c in recent if not c.ok)
            # errors / window: once that is over the bound, the full window is over it too
            if errors / self.window > self.error_rate:
                first = next(c.error for c in reversed(recent) if not c.ok)
                over = (
                    f"over its last {self.window} calls"
                    if len(recent) == self.window
                    # an early breach: say how many calls there were, not just the window
                    else f"over a window of {self.window} calls already: {errors} of its "
                    f"first {len(recent)} calls failed"
                )
                return (
                    f"experiment error rate {errors / self.window:.2f} > {self.error_rate:.2f} "
                    f"{over} (last error: {first})"
                )
        if len(recent) == self.window:
            latencies = [c.latency for c in recent]
            for metric, bound in self.latency.items():
                value = _metric(latencies, metric)
                if value > bound:
                    return (
                        f"experiment {metric} {fmt_s(value)} > {fmt_s(bound)} over its last "
                        f"{self.window} calls"
                    )
        return ""

    def allowed(self) -> dict[str, Any]:
        """The bounds as flat JSON-safe data (``abort_<metric>``, ``abort_window``)."""
        data: dict[str, Any] = {"abort_window": self.window}
        if self.error_rate is not None:
            data["abort_error_rate"] = self.error_rate
        for metric, bound in self.latency.items():
            data[f"abort_{metric}"] = bound
        return data


def parse_abort(abort_when: object) -> AbortWhen | None:
    """Validate ``abort_when`` (``{"error_rate": 0.5, "p99": 2.0, "window": 10}``)."""
    if abort_when is None:
        return None
    example = "abort_when={'error_rate': 0.5, 'p99': 2.0, 'window': 10}"
    if not isinstance(abort_when, Mapping) or not abort_when:
        raise CheckError(
            f"{_CHECK}: abort_when={abort_when!r} is not a non-empty mapping of bounds; "
            f"pass e.g. {example}"
        )
    known = ("error_rate", *LATENCY_METRICS, "window")
    unknown = [k for k in abort_when if k not in known]
    if unknown:
        raise CheckError(
            f"{_CHECK}: abort_when has unknown key(s) {unknown}; choose from {list(known)}, "
            f"e.g. {example}"
        )
    window = abort_when.get("window", 10)
    check_count(_CHECK, "abort_when['window']", window)
    rate = abort_when.get("error_rate")
    if rate is not None:
        rate = check_positive(_CHECK, "abort_when['error_rate']", rate, allow_zero=True)
        if rate >= 1:
            raise CheckError(
                f"{_CHECK}: abort_when['error_rate']={abort_when['error_rate']!r} is a "
                f"fraction of calls that must be exceeded, so it must be below 1; pass e.g. "
                f"0.5 to abort when more than half of the window failed"
            )
    latency = {
        metric: check_positive(_CHECK, f"abort_when[{metric!r}]", abort_when[metric])
        for metric in LATENCY_METRICS
        if metric in abort_when
    }
    if rate is None and not latency:
        raise CheckError(
            f"{_CHECK}: abort_when={dict(abort_when)!r} has no bound, only a window; add "
            f"one, e.g. {example}"
        )
    return AbortWhen(window=window, error_rate=rate, latency=latency)


def fmt_s(seconds: float) -> str:
    """A latency for a message: ``12.3 ms`` under a second, ``1.84 s`` above."""
    return f"{seconds * 1000:.1f} ms" if abs(seconds) < 1 else f"{seconds:.2f} s"


def _metric(latencies: list[float], metric: str) -> float:
    if metric == "max":
        return max(latencies)
    if metric == "mean":
        return sum(latencies) / len(latencies)
    return quantile(latencies, float(metric[1:]))


@dataclass(frozen=True)
class Comparison:
    """What ``compare`` measured and decided.

    ``control`` and ``experiment`` are the probe calls of each group; ``latency`` the
    Mann-Whitney test of their latencies, ``errors`` the test of their error rates;
    ``result`` the check's verdict (its ``measured`` holds every number, and the
    histogram of both groups). ``aborted`` tells whether ``abort_when`` stopped it.
    """

    result: CheckResult
    control: list[Call]
    experiment: list[Call]
    latency: MannWhitney
    errors: Proportions
    aborted: bool = False
    abort_reason: str = ""

    @property
    def passed(self) -> bool:
        """Whether the experiment stayed within its degradation budget."""
        return self.result.passed


def _heal(item: object, by: str = "test") -> list[str]:
    """Heal a fault (or each of a list of them) returned by ``inject``; the ids healed."""
    if item is None:
        return []
    if isinstance(item, list | tuple):
        return [fid for one in item for fid in _heal(one, by)]
    heal = getattr(item, "heal", None)
    if not callable(heal) or not getattr(item, "active", True):
        return []
    if _takes_by(heal):
        heal(by=by)
    else:
        heal()
    return [str(getattr(item, "id", item))]


def _takes_by(heal: Callable[..., object]) -> bool:
    try:
        return "by" in inspect.signature(heal).parameters
    except (TypeError, ValueError):
        return False


def _check_injected(item: object) -> None:
    items = list(item) if isinstance(item, list | tuple) else [item]
    for one in items:
        if one is not None and not callable(getattr(one, "heal", None)):
            raise CheckError(
                f"{_CHECK}: inject returned {one!r}, which has no heal(); return the Fault "
                f"(or a list of them) the fault method gave, e.g. "
                f"inject=lambda: db.latency(100)"
            )


def _ratio(experiment: float, control: float) -> str:
    if control > 0:
        return f"{(experiment / control - 1) * 100:+.0f}%"
    return "+inf%" if experiment > 0 else "+0%"


def _group_line(name: str, summary: dict[str, float], errors: int, n: int) -> str:
    if not summary:
        return f"{name}: no calls"
    return (
        f"{name}: p50 {fmt_s(summary['p50'])}, p90 {fmt_s(summary['p90'])}, "
        f"p99 {fmt_s(summary['p99'])}, max {fmt_s(summary['max'])}, "
        f"errors {errors}/{n}"
    )


def judge(
    control: list[Call],
    experiment: list[Call],
    budget: list[Budget],
    *,
    alpha: float,
    duration: float,
    abort: AbortWhen | None = None,
    abort_reason: str = "",
    target: str = "",
) -> tuple[CheckResult, MannWhitney, Proportions]:
    """Compare the two groups' calls against the budget; the verdict and both tests."""
    lat_c = [c.latency for c in control]
    lat_e = [c.latency for c in experiment]
    err_c = sum(1 for c in control if not c.ok)
    err_e = sum(1 for c in experiment if not c.ok)
    n_c, n_e = len(control), len(experiment)
    mw = mann_whitney_u(lat_e, lat_c)
    props = two_proportions(err_e, n_e, err_c, n_c)
    sum_c, sum_e = summarize(lat_c), summarize(lat_e)
    rate_c, rate_e = err_c / n_c, err_e / n_e

    measured: dict[str, Any] = {
        "calls_control": n_c,
        "calls_experiment": n_e,
        "errors_control": err_c,
        "errors_experiment": err_e,
        "error_rate_control": round(rate_c, 4),
        "error_rate_experiment": round(rate_e, 4),
        "error_rate_diff": round(rate_e - rate_c, 4),
        "error_p_value": props.p_value,
        "error_test": props.method,
        "latency_p_value": mw.p_value,
        "latency_test": f"mann-whitney {mw.method}",
        "u": mw.u,
        "cliffs_delta": round(mw.delta, 4),
        "effect": effect_label(mw.delta),
    }
    for group, summary in (("control", sum_c), ("experiment", sum_e)):
        for key in SHOWN:
            measured[f"{group}_{key}"] = round(summary[key], 6)

    degraded: list[str] = []  # significant and beyond budget: the failure
    degraded_metrics: list[str] = []
    notes: list[str] = []  # what held, and why
    for rule in budget:
        if rule.metric == "error_rate":
            limit = rule.limit(rate_c)
            p, test = props.p_value, "Fisher" if props.method == "fisher" else "z-test"
            shown = (
                f"error rate {rate_e:.2f} vs control {rate_c:.2f} "
                f"({(rate_e - rate_c) * 100:+.1f}pt, budget {rule.text}, {test} p={p:.3g})"
            )
            beyond = rate_e > limit + 1e-12
        else:
            value_c, value_e = sum_c[rule.metric], sum_e[rule.metric]
            limit = rule.limit(value_c)
            p = mw.p_value
            shown = (
                f"{rule.metric} {fmt_s(value_e)} vs control {fmt_s(value_c)} "
                f"({_ratio(value_e, value_c)}, budget {rule.text} = {fmt_s(limit)}, "
                f"Mann-Whitney p={p:.3g})"
            )
            beyond = value_e > limit
        significant = p < alpha
        if beyond and significant:
            degraded.append(shown)
            degraded_metrics.append(rule.metric)
        elif beyond:
            notes.append(f"{shown}: beyond budget but not significant (p >= alpha {alpha:g})")
        else:
            notes.append(f"{shown}: within budget")
    measured["degraded"] = degraded_metrics
    measured["aborted"] = bool(abort_reason)
    hist = histogram([lat_c, lat_e], bins=20)
    measured["histogram"] = {
        "edges": [round(e, 6) for e in hist["edges"]],
        "control": hist["counts"][0],
        "experiment": hist["counts"][1],
    }

    effect = f"Cliff's delta {mw.delta:+.2f} ({effect_label(mw.delta)})"
    groups = (
        f"{_group_line('control', sum_c, err_c, n_c)}; "
        f"{_group_line('experiment', sum_e, err_e, n_e)}"
    )
    calls = f"{n_c} control and {n_e} experiment calls"
    if abort_reason:
        message = (
            f"{_CHECK} aborted by abort_when: {abort_reason}; the experiment group's "
            f"faults were healed at once and the comparison stopped after {calls}. "
            f"{effect}. {groups}"
        )
        violation: type[ComparisonViolated] = ComparisonAborted
    elif degraded:
        message = (
            f"{_CHECK} violated: the experiment degraded beyond its budget, significantly "
            f"(alpha {alpha:g}): {'; '.join(degraded)}; over {calls}. {effect}. {groups}"
        )
        if notes:
            message += f". Held: {'; '.join(notes)}"
        violation = ComparisonViolated
    else:
        message = (
            f"{_CHECK} held over {calls} (alpha {alpha:g}): {'; '.join(notes)}. {effect}. {groups}"
        )
        violation = ComparisonViolated
    allowed: dict[str, Any] = {"alpha": alpha, **{r.metric: r.text for r in budget}}
    if abort is not None:
        allowed.update(abort.allowed())
    result = CheckResult(
        name=_CHECK,
        passed=not degraded and not abort_reason,
        measured=measured,
        allowed=allowed,
        message=message,
        duration=duration,
        target=target,
        violation=violation,
    )
    return result, mw, props


def _named(fn: Callable[[], object], name: str) -> Callable[[], object]:
    fn.__qualname__ = fn.__name__ = name
    return fn


def compare(
    probe: Callable[[Any], object],
    *,
    control: Any,
    experiment: Any,
    samples: int | None = None,
    duration: float | None = None,
    inject: Callable[[], object] | None = None,
    max_degradation: Mapping[str, str] | None = None,
    alpha: float = 0.01,
    abort_when: Mapping[str, float] | None = None,
    order: str = "random",
    interval: float = 0.0,
    concurrency: int = 1,
    seed: int | None = None,
    failures: object = (Exception,),
    target: str = "",
    label: str | None = None,
    timeline: Timeline | None = None,
    finish: Finish | None = None,
    context: CheckContext | None = None,
) -> Comparison:
    """Call ``probe(control)`` and ``probe(experiment)`` interleaved; fail when the
    experiment degrades significantly beyond ``max_degradation``.

    ``control`` and ``experiment`` are two instances of the system (clients, URLs,
    anything the probe takes); only the experiment's dependencies should be faulted.
    Give ``samples`` (calls per group) or ``duration`` (seconds), or both (whichever
    ends first). Each round calls both groups, in an order drawn from the rng
    (``order="random"``: the experiment's seeded rng as ``chaos.compare``, else
    ``random.Random(seed)``) or control first (``order="alternate"``), then waits
    ``interval`` seconds. ``concurrency`` threads run rounds at once (load on both
    groups alike, for a degradation that shows only under load, as a smaller pool);
    ``samples`` still counts the rounds in all.

    ``inject`` (optional) is called once before the first round and returns the
    experiment group's fault(s), e.g. ``inject=lambda: canary_db.latency(100)``;
    ``compare`` heals them when it ends, whatever happens. Without it, inject before
    the call (a ``with`` block around it).

    ``max_degradation`` maps a metric to its budget: latency metrics (``p50``, ``p90``,
    ``p95``, ``p99``, ``max``, ``mean``) take ``"+20%"`` (relative to the control's)
    or ``"+50ms"``/``"+0.05s"`` (absolute); ``error_rate`` takes points,
    ``"+1pt"``. A metric fails the check only when it is beyond its budget *and* the
    degradation is significant at ``alpha``: Mann-Whitney U for latency metrics, a
    two-proportion test for the error rate (both one-sided). The default budget,
    ``{"p50": "+0%", "error_rate": "+0pt"}``, fails on any significant degradation.

    ``abort_when`` is the kill switch, e.g. ``{"error_rate": 0.5, "p99": 2.0,
    "window": 10}``: a bound on the experiment group's last ``window`` calls (error
    rate a fraction, latencies in seconds). On a breach the experiment's faults are
    healed at once (``chaos.abort`` as ``chaos.compare``, which marks the test
    aborted; standalone, the faults ``inject`` returned), the comparison stops and
    :class:`ComparisonAborted` is raised.

    Raises :class:`ComparisonViolated` on a significant degradation beyond budget;
    returns the :class:`Comparison` otherwise.
    """
    rng_source = getattr(context, "rng", None) if seed is None else None
    timeline, finish = bind_context(context, timeline, finish)
    if not callable(probe):
        raise CheckError(
            f"{_CHECK}: the probe {probe!r} is not callable; pass a function of one "
            f"argument, called with control= and with experiment="
        )
    if samples is None and duration is None:
        raise CheckError(
            f"{_CHECK}: give samples=N (calls per group) or duration=SECONDS (or both); "
            f"neither was given"
        )
    if samples is not None:
        check_count(_CHECK, "samples", samples, minimum=MIN_CALLS)
    if duration is not None:
        check_positive(_CHECK, "duration", duration)
    check_positive(_CHECK, "interval", interval, allow_zero=True)
    check_count(_CHECK, "concurrency", concurrency)
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise CheckError(
            f"{_CHECK}: alpha={alpha!r} is the significance level and must be between 0 "
            f"and 1; pass e.g. alpha=0.01"
        )
    if order not in ("random", "alternate"):
        raise CheckError(
            f"{_CHECK}: order={order!r} is not 'random' (each round's order drawn from the "
            f"seeded rng) or 'alternate' (control first in every round)"
        )
    if inject is not None and not callable(inject):
        raise CheckError(
            f"{_CHECK}: inject={inject!r} is not callable; pass a function that injects the "
            f"experiment's fault and returns it, e.g. inject=lambda: canary_db.latency(100)"
        )
    if control is experiment:
        raise CheckError(
            f"{_CHECK}: control and experiment are the same object ({control!r}); compare "
            f"needs two instances of the system, only the experiment's dependencies faulted"
        )
    budget = parse_budget(max_degradation)
    kill = parse_abort(abort_when)
    rng = rng_source if isinstance(rng_source, random.Random) else random.Random(seed)
    name = label or _CHECK
    fn_name = getattr(probe, "__name__", "probe")
    groups = {
        "control": Probe(
            _named(lambda: probe(control), f"{fn_name}(control)"),
            check=_CHECK,
            failures=failures,
            timeline=timeline,
            label=f"{name}:control",
        ),
        "experiment": Probe(
            _named(lambda: probe(experiment), f"{fn_name}(experiment)"),
            check=_CHECK,
            failures=failures,
            timeline=timeline,
            label=f"{name}:experiment",
        ),
    }
    calls: dict[str, list[Call]] = {"control": [], "experiment": []}
    start = time.perf_counter()
    deadline = None if duration is None else time.monotonic() + duration
    injected: object = None
    abort_reason = ""
    try:
        if inject is not None:
            injected = inject()
            _check_injected(injected)
        abort_reason = _Rounds(
            groups,
            calls,
            samples=samples,
            deadline=deadline,
            order=order,
            rng=rng,
            interval=interval,
            kill=kill,
            on_breach=lambda reason: _abort(reason, context, timeline, injected, target),
        ).run(concurrency)
    finally:
        _heal(injected)
    if not abort_reason and min(len(calls["control"]), len(calls["experiment"])) < MIN_CALLS:
        raise CheckError(
            f"{_CHECK}: only {len(calls['control'])} calls per group fit in duration="
            f"{duration!r}, fewer than the {MIN_CALLS} a test of significance needs; give a "
            f"longer duration or samples=N"
        )
    result, mw, props = judge(
        calls["control"],
        calls["experiment"],
        budget,
        alpha=float(alpha),
        duration=time.perf_counter() - start,
        abort=kill,
        abort_reason=abort_reason,
        target=target,
    )
    finish(result)
    return Comparison(
        result=result,
        control=calls["control"],
        experiment=calls["experiment"],
        latency=mw,
        errors=props,
        aborted=bool(abort_reason),
        abort_reason=abort_reason,
    )


class _Rounds:
    """The rounds of a comparison, from one thread or ``concurrency`` at once: each
    round calls both groups in an order drawn from the rng, until ``samples`` rounds
    were taken, the deadline passed or the kill switch tripped."""

    def __init__(
        self,
        groups: dict[str, Probe],
        calls: dict[str, list[Call]],
        *,
        samples: int | None,
        deadline: float | None,
        order: str,
        rng: random.Random,
        interval: float,
        kill: Any,
        on_breach: Callable[[str], object],
    ) -> None:
        self.groups = groups
        self.calls = calls
        self.samples = samples
        self.deadline = deadline
        self.order = order
        self.rng = rng
        self.interval = interval
        self.kill = kill
        self.on_breach = on_breach
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.taken = 0
        self.reason = ""
        self.crash: list[BaseException] = []

    def run(self, concurrency: int) -> str:
        """Run every round; the kill switch's reason, or ``""``."""
        if concurrency == 1:
            self._worker()
        else:
            threads = [
                threading.Thread(target=self._worker, name=f"chaos-compare-{i}", daemon=True)
                for i in range(concurrency)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        if self.crash:
            raise self.crash[0]
        for group in self.calls.values():
            group.sort(key=lambda c: c.t)
        return self.reason

    def _round(self) -> tuple[str, str] | None:
        """The next round's order, or ``None`` when no round is left."""
        with self.lock:
            if self.stop.is_set():
                return None
            if self.samples is not None and self.taken >= self.samples:
                return None
            if self.deadline is not None and time.monotonic() >= self.deadline:
                return None
            self.taken += 1
            if self.order == "random" and self.rng.random() < 0.5:
                return "experiment", "control"
            return "control", "experiment"

    def _worker(self) -> None:
        try:
            while (pair := self._round()) is not None:
                for group in pair:
                    if self.stop.is_set() and self.reason and group == "experiment":
                        return  # another thread tripped the kill switch: healed now
                    call = self.groups[group]()
                    breach = ""
                    with self.lock:
                        self.calls[group].append(call)
                        if group == "experiment" and self.kill is not None and not self.reason:
                            breach = self.kill.breach(self.calls["experiment"])
                            if breach:
                                self.reason = breach
                                self.stop.set()
                    if breach:
                        self.on_breach(breach)  # heal first
                        if pair[0] == "experiment":  # keep the round whole
                            control = self.groups["control"]()
                            with self.lock:
                                self.calls["control"].append(control)
                        return
                if self.interval and self.stop.wait(self.interval):
                    return
        except BaseException as exc:  # re-raised in the caller's thread
            self.crash.append(exc)
            self.stop.set()


def _abort(
    reason: str,
    context: CheckContext | None,
    timeline: Timeline | None,
    injected: object,
    target: str,
) -> None:
    """The kill switch: heal the experiment group's faults now and record the abort."""
    full = f"compare abort_when breached: {reason}"
    if context is not None:
        context.abort(full, source=_CHECK)  # heals every fault, records the abort
        return
    healed = _heal(injected, by="guard")
    if timeline is not None:
        timeline.record("abort", _CHECK, target=target, reason=full, healed=healed)
