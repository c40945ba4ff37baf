"""The "chaos summary" section printed after a run.

Per chaos test: outcome, seed and backend; each fault (target, type, attributes, when
and for how long, who healed it); each check with its verdict and numbers; recovery
times; aborts; leftovers; why it was skipped. Totals at the end, skips counted with
their reasons, so a run that tested nothing never reads like a pass. Text only, built from
:class:`~pytest_chaos.reporting._model.ChaosTestResult`, so it is the same with and
without xdist.
"""

from __future__ import annotations

import re
import textwrap
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pytest_chaos.reporting._model import ChaosTestResult, CheckVerdict, FaultWindow

__all__ = ["SummaryLine", "format_number", "summary_lines", "totals_line"]

# (text, markup) pairs: markup is the keyword set for TerminalWriter (red=True, ...)
SummaryLine = tuple[str, dict[str, bool]]

_OUTCOME_MARKUP: dict[str, dict[str, bool]] = {
    "passed": {"green": True},
    "failed": {"red": True, "bold": True},
    "error": {"red": True, "bold": True},
    "aborted": {"yellow": True, "bold": True},
    "skipped": {"yellow": True},
}


def format_number(value: Any) -> str:
    """A number short enough for one line: at most 3 significant digits, no exponent."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 1:
        return f"{value:.3g}"
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return text if text not in ("0", "-0") else ("<0.0001" if value > 0 else ">-0.0001")


def _shown(value: Any) -> bool:
    # the summary line shows numbers and flags; reasons and lists live in the journal
    return isinstance(value, int | float) or (isinstance(value, str) and 0 < len(value) <= 24)


_REASON_LIMIT = 80
_INDENT = " " * 9  # under the text after "  check  "
# where a reason's first clause ends: "; ", ". " or ": " (not inside a number or a URL)
_CLAUSE_END = re.compile(r"[;.:](?=\s)")


def _clip(text: str, limit: int = 200) -> str:
    first = text.splitlines()[0] if text else ""
    return first if len(first) <= limit else first[: limit - 3] + "..."


def _wrap(text: str, width: int | None, indent: str = _INDENT) -> list[str]:
    """``text`` in full (every line of it), each line ``indent``-ed and wrapped at
    ``width`` columns (not wrapped without a width): numbers are never cut off."""
    lines: list[str] = []
    for line in text.splitlines() or [""]:
        if width is None or len(indent) + len(line) <= width:
            lines.append(indent + line)
            continue
        lines.extend(
            textwrap.wrap(
                line,
                width=max(width, len(indent) + 20),
                initial_indent=indent,
                subsequent_indent=indent + "  ",
                break_long_words=False,
                break_on_hyphens=False,
            )
        )
    return lines


def _short_reason(text: str, limit: int = _REASON_LIMIT) -> str:
    """A skip reason for the totals line: whole when short, else its first clause (in
    full, however long) with "..." for the rest; never cut in the middle of a word."""
    first = text.splitlines()[0].strip() if text else ""
    if len(first) <= limit:
        return first
    end = _CLAUSE_END.search(first)
    if end is not None and end.start() > 0:
        return first[: end.start()] + " ..."
    return first


def _attributes(attrs: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={format_number(v)}" for k, v in attrs.items())


def _numbers(check: CheckVerdict) -> str:
    parts = []
    for key, value in check.measured.items():
        if not _shown(value):
            continue
        if key in check.allowed:
            parts.append(
                f"{key}={format_number(value)} (allowed {format_number(check.allowed[key])})"
            )
        else:
            parts.append(f"{key}={format_number(value)}")
    extra = {k: v for k, v in check.allowed.items() if k not in check.measured and _shown(v)}
    if extra:
        parts.append("allowed " + _attributes(extra))
    return " ".join(parts)


def _fault_line(fault: FaultWindow) -> str:
    on = f" on {fault.target}" if fault.target else ""
    text = f"  fault  {fault.kind}{on}"
    if fault.attributes:
        text += f"  {_attributes(fault.attributes)}"
    if fault.stream:
        text += f" {fault.stream}"
    if fault.toxicity is not None and fault.toxicity < 1.0:
        text += f" toxicity={format_number(fault.toxicity)}"
    text += f"  at {fault.start:.2f}s"
    if fault.duration is None:
        text += "  NEVER HEALED"
    else:
        text += f" for {fault.duration:.2f}s (healed by {fault.healed_by or '?'})"
    return text


def _check_lines(
    check: CheckVerdict, said: Sequence[str] = (), width: int | None = None
) -> list[SummaryLine]:
    verdict = "PASS" if check.passed else "FAIL"
    on = f" on {check.target}" if check.target else ""
    text = f"  check  {check.name}{on}  {verdict}"
    numbers = _numbers(check)
    if numbers:
        text += f"  {numbers}"
    text += f"  in {check.duration:.2f}s"
    lines: list[SummaryLine] = [(text, {} if check.passed else {"red": True})]
    # a guard's verdict repeats the abort reason, which the abort line shows anyway
    if not check.passed and check.message and not any(r and r in check.message for r in said):
        lines.extend((line, {"red": True}) for line in _wrap(check.message, width))
    return lines


def _backend(record: Mapping[str, Any]) -> str:
    backend = record.get("backend") or {}
    kind = backend.get("kind", "?")
    version = backend.get("version")
    return f"{kind} {version}" if version else str(kind)


#: faults, and passed checks, listed per test; a Hypothesis test or a long game day makes
#: hundreds, which the journal keeps
_MAX_LISTED = 12


def summary_lines(
    results: Sequence[ChaosTestResult], *, verbose: bool = True, width: int | None = None
) -> list[SummaryLine]:
    """The lines of the chaos summary: per test (when ``verbose``), then the totals.

    Violation messages are shown in full, wrapped at ``width`` columns (the terminal's)
    under their check; without a width they are not wrapped.
    """
    lines: list[SummaryLine] = []
    if verbose:
        for result in results:
            outcome = result.outcome
            seed = "?" if result.seed is None else str(result.seed)
            duration = float(result.record.get("duration") or 0.0)
            head = (
                f"{result.nodeid}  {outcome.upper()}  {duration:.2f}s  seed {seed}"
                f"  backend {_backend(result.record)}"
            )
            lines.append((head, _OUTCOME_MARKUP.get(outcome, {})))
            if result.record.get("source"):
                # a YAML experiment: where it is written
                lines.append((f"  source  {result.record['source']}", {}))
            faults = result.faults
            lines.extend((_fault_line(f), {}) for f in faults[:_MAX_LISTED])
            if len(faults) > _MAX_LISTED:
                more = len(faults) - _MAX_LISTED
                lines.append((f"  ... {_plural(more, 'more fault')} (the journal has all)", {}))
            # every violated check, and the passed ones up to the limit
            checks = result.checks
            passed = [c for c in checks if c.passed]
            shown_passed = {id(c) for c in passed[:_MAX_LISTED]}
            for check in checks:
                if check.passed and id(check) not in shown_passed:
                    continue
                lines.extend(_check_lines(check, [a.reason for a in result.aborts], width))
            if len(passed) > _MAX_LISTED:
                more = len(passed) - _MAX_LISTED
                text = f"  ... {_plural(more, 'more passed check')} (the journal has all)"
                lines.append((text, {}))
            for abort in result.aborts:
                healed = f"  healed {', '.join(abort.healed)}" if abort.healed else ""
                where = f"by {abort.source} at {abort.t:.2f}s"
                text = f"  abort  {where}: {_clip(abort.reason)}{healed}"
                lines.append((text, {"yellow": True}))
            for leftover in result.record.get("leftovers") or ():
                lines.append((f"  leftover  {leftover}", {"red": True}))
            skip = result.skip
            if skip is not None and outcome == "skipped":
                reason = _clip(str(skip["reason"])) or "no reason given"
                lines.append((f"  skipped at {skip['phase']}: {reason}", {"yellow": True}))
            failure = result.failure
            if failure and failure.get("kind") == "unavailable":
                reason = _clip(str(failure.get("message", "")))
                text = f"  unavailable at {failure['phase']}: {reason} (--chaos-strict: an error)"
                lines.append((text, {"red": True}))
            elif (
                failure
                and outcome in ("error", "failed")
                and not any(not c.passed for c in result.checks)
            ):
                kind = failure.get("type", "error")
                message = _clip(str(failure.get("message", "")))
                detail = f": {message}" if message else ""
                if str(kind).rsplit(".", 1)[-1] == "CheckError":
                    # not a finding about resilience: the check had nothing to judge
                    text = f"  could not judge ({failure['phase']} raised {kind}){detail}"
                else:
                    text = f"  {failure['phase']} raised {kind}{detail}"
                lines.append((text, {"red": True}))
    lines.append(totals_line(results))
    return lines


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _counts(counter: Counter[str], order: Iterable[str]) -> str:
    return ", ".join(f"{counter[k]} {k}" for k in order if counter[k])


def _skip_reasons(results: Sequence[ChaosTestResult]) -> str:
    """``no postgres`` for one reason; ``no postgres (2), needs HTTP toxics (1)`` for more."""
    reasons: Counter[str] = Counter(
        _short_reason(str((r.skip or {}).get("reason") or "")) or "no reason given"
        for r in results
        if r.outcome == "skipped"
    )
    if len(reasons) == 1:
        return next(iter(reasons))
    return ", ".join(f"{reason} ({n})" for reason, n in reasons.most_common())


def totals_line(results: Sequence[ChaosTestResult]) -> SummaryLine:
    """One line of totals: tests by outcome (skips with their reasons), faults, checks,
    aborts, recovery, seeds.

    Green only when something passed and nothing went wrong: a run whose chaos tests
    were all skipped is yellow, whatever pytest's own colour.
    """
    outcomes: Counter[str] = Counter(r.outcome for r in results)
    faults = [f for r in results for f in r.faults]
    checks = [c for r in results for c in r.checks]
    aborts = sum(len(r.aborts) for r in results)
    injected = sum(f.duration or 0.0 for f in faults)
    verdicts: Counter[str] = Counter("passed" if c.passed else "failed" for c in checks)
    order = ("passed", "failed", "error", "aborted", "skipped")
    counts = _counts(outcomes, order)
    if outcomes["skipped"]:
        # skipped comes last in ``order``: its reasons close the parenthesis
        counts += f": {_skip_reasons(results)}"
    parts = [f"{_plural(len(results), 'test')} ({counts})"]
    parts.append(f"{_plural(len(faults), 'fault')} ({injected:.2f}s injected)")
    if checks:
        parts.append(f"{_plural(len(checks), 'check')} ({_counts(verdicts, ('passed', 'failed'))})")
    else:
        parts.append("0 checks")
    recoveries = [c.recovery_seconds for c in checks if c.recovery_seconds is not None]
    if recoveries:
        parts.append(f"slowest recovery {max(recoveries):.2f}s")
    parts.append(_plural(aborts, "abort"))
    seeds = sorted({r.seed for r in results if r.seed is not None})
    if seeds:
        parts.append(
            "seed " + ", ".join(str(s) for s in seeds[:3]) + (" ..." if len(seeds) > 3 else "")
        )
    bad = outcomes["failed"] + outcomes["error"] + outcomes["aborted"]
    if bad:
        markup = {"red": True}
    elif not outcomes["passed"]:
        markup = {"yellow": True}
    else:
        markup = {"green": True}
    return ("chaos: " + "; ".join(parts), markup)
