"""Allure output of chaos tests (only when allure-pytest runs with ``--alluredir``).

Imported only by the reporting plugin after it found allure-pytest's listener, so a run
without Allure never imports ``allure_commons``.

What a chaos test gets in its Allure result (written by allure-pytest itself, which
closes the result after the test's teardown report, where this module adds to it):

- one step per timeline ``inject``, ``heal``, ``check`` and ``abort``, with the
  event's real start and stop times and its numbers as step parameters; a failed check
  is a failed step, an abort a broken one;
- attachments: the timeline chart (SVG), the check results (HTML table), the record
  (JSON, the test's journal document);
- labels: feature ``chaos``, a tag per fault type (``fault:latency``) and per target
  (``target:redis``), plus ``chaos_target`` labels;
- a status message prefix that ``categories.json`` sorts on: ``Hypothesis violated:``
  (failed), ``Aborted by guard:`` and ``Injection broken:`` (broken).

At session end the process that sees every report writes ``categories.json`` and
``environment.properties`` (backend, seed, server version) into the results directory,
merging with what is already there.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid as uuid_module
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from allure_commons.model2 import (
    Label,
    Parameter,
    Status,
    StatusDetails,
    TestResult,
    TestStepResult,
)
from allure_commons.types import AttachmentType

from pytest_chaos.reporting._chart import timeline_svg
from pytest_chaos.reporting._compare_chart import compare_svg, has_distributions
from pytest_chaos.reporting._journal import journal_document
from pytest_chaos.reporting._model import ChaosTestResult
from pytest_chaos.reporting._tables import checks_html
from pytest_chaos.reporting._terminal import format_number

__all__ = ["CATEGORIES", "decorate_result", "write_run_files"]

HYPOTHESIS_PREFIX = "Hypothesis violated: "
ABORT_PREFIX = "Aborted by guard: "
INJECTION_PREFIX = "Injection broken: "

CATEGORIES: list[dict[str, Any]] = [
    {
        "name": "Hypothesis violated",
        "description": "a chaos check's verdict: the system did not cope with the fault",
        "matchedStatuses": ["failed"],
        "messageRegex": "(?s)Hypothesis violated: .*",
    },
    {
        "name": "Aborted by guard",
        "description": "a safety guard stopped the experiment and healed its faults",
        "matchedStatuses": ["broken"],
        "messageRegex": "(?s)Aborted by guard: .*",
    },
    {
        "name": "Injection broken",
        "description": "a fault could not be applied (proxy API error, veto, backend limit)",
        "matchedStatuses": ["broken"],
        "messageRegex": "(?s)Injection broken: .*",
    },
]


def _ms(wall: float) -> int:
    return round(wall * 1000)


def _params(values: dict[str, Any], prefix: str = "") -> list[Parameter]:
    # a compare check's histogram is drawn in its own attachment, not listed
    return [
        Parameter(name=f"{prefix}{k}", value=format_number(v))
        for k, v in values.items()
        if k != "histogram"
    ]


def _open_uuid(listener: Any, item: pytest.Item | None) -> str | None:
    # allure-pytest 2.16 (read from its listener) keys open results by id(item.nodeid);
    # without that cache the last scheduled result is the test's (see _find_test)
    cache = getattr(listener, "_cache", None)
    if item is None or cache is None:
        return None
    uuid = cache.get(item.nodeid)
    return str(uuid) if uuid else None


def _find_test(listener: Any, item: pytest.Item | None) -> TestResult | None:
    logger = listener.allure_logger
    uuid = _open_uuid(listener, item)
    if uuid:
        found = logger.get_test(uuid)
        if isinstance(found, TestResult):
            return found
    found = logger.get_test(None)
    return found if isinstance(found, TestResult) else None


def _steps(result: ChaosTestResult) -> list[TestStepResult]:
    steps: list[TestStepResult] = []
    timeline = result.record.get("timeline") or {}
    for event in timeline.get("events", []):
        kind, name, target = event.get("kind"), event.get("name", ""), event.get("target", "")
        data = event.get("data") or {}
        wall = float(event.get("wall", 0.0))
        on = f" on {target}" if target else ""
        if kind == "inject":
            attrs = data.get("attributes") or {}
            shown = ", ".join(f"{k}={format_number(v)}" for k, v in attrs.items())
            step = TestStepResult(
                name=f"inject {name}{on}" + (f" ({shown})" if shown else ""),
                status=Status.PASSED,
                start=_ms(wall),
                stop=_ms(wall),
                parameters=[
                    Parameter(name="fault_id", value=str(data.get("fault_id"))),
                    *_params(attrs),
                    *(
                        Parameter(name=key, value=format_number(data[key]))
                        for key in ("stream", "toxicity")
                        if data.get(key) is not None
                    ),
                    Parameter(name="t", value=f"{float(event.get('t', 0.0)):.3f} s"),
                ],
            )
        elif kind == "heal":
            duration = data.get("duration")
            step = TestStepResult(
                name=f"heal {name}{on} (by {data.get('by')})",
                status=Status.PASSED,
                start=_ms(wall),
                stop=_ms(wall),
                parameters=[
                    Parameter(name="fault_id", value=str(data.get("fault_id"))),
                    Parameter(name="by", value=str(data.get("by"))),
                    Parameter(
                        name="active for",
                        value="?" if duration is None else f"{float(duration):.3f} s",
                    ),
                ],
            )
        elif kind == "check":
            passed = bool(data.get("passed"))
            duration = float(data.get("duration") or 0.0)
            step = TestStepResult(
                name=f"check {name}{on}: {'passed' if passed else 'FAILED'}",
                status=Status.PASSED if passed else Status.FAILED,
                statusDetails=None if passed else StatusDetails(message=str(data.get("message"))),
                start=_ms(wall - duration),
                stop=_ms(wall),
                parameters=[
                    *_params(dict(data.get("measured") or {}), "measured "),
                    *_params(dict(data.get("allowed") or {}), "allowed "),
                ],
            )
        elif kind == "abort":
            reason = str(data.get("reason", ""))
            step = TestStepResult(
                name=f"abort by {name}: {reason}",
                status=Status.BROKEN,
                statusDetails=StatusDetails(message=reason),
                start=_ms(wall),
                stop=_ms(wall),
                parameters=[
                    Parameter(name="healed", value=", ".join(map(str, data.get("healed") or [])))
                ],
            )
        elif kind == "note" and name == "schedule_step":
            # one Allure step per scheduled step, with its planned and actual start
            fault = data.get("fault") or (f"heal {data['heals']}" if data.get("heals") else "")
            late = float(data.get("late_ms") or 0.0)
            step = TestStepResult(
                name=f"schedule {data.get('step')}: {fault}{on} at "
                f"{float(data.get('planned') or 0.0):.3f} s (late {late:.1f} ms)",
                status=Status.PASSED,
                start=_ms(wall),
                stop=_ms(wall),
                parameters=[
                    *(
                        Parameter(name=key, value=format_number(data[key]))
                        for key in ("at", "planned", "actual", "late_ms", "time_scale", "for_")
                        if data.get(key) is not None
                    ),
                    *(
                        [Parameter(name="source", value=str(data["source"]))]
                        if data.get("source")
                        else []
                    ),
                ],
            )
        else:
            continue
        steps.append(step)
    return steps


def _adjust_status(test: TestResult, result: ChaosTestResult) -> None:
    outcome = result.outcome
    details = test.statusDetails or StatusDetails()
    message = details.message or ""
    if outcome == "aborted":
        reason = str((result.record.get("aborted") or {}).get("reason", "aborted"))
        test.status = Status.BROKEN
        test.statusDetails = StatusDetails(
            message=f"{ABORT_PREFIX}{reason}" + (f"\n\n{message}" if message else ""),
            trace=details.trace,
        )
        return
    failure = result.failure or {}
    kind = failure.get("kind")
    if outcome == "failed" and kind == "hypothesis" and not message.startswith(HYPOTHESIS_PREFIX):
        details.message = HYPOTHESIS_PREFIX + message
        test.statusDetails = details
    elif outcome == "error" and kind == "injection" and not message.startswith(INJECTION_PREFIX):
        test.status = Status.BROKEN
        details.message = INJECTION_PREFIX + message
        test.statusDetails = details


def decorate_result(
    config: pytest.Config, item: pytest.Item | None, result: ChaosTestResult
) -> bool:
    """Add the chaos steps, attachments, labels and status to the open Allure result.

    Returns False when allure-pytest has no open result for the test (nothing added).
    """
    listener = config.pluginmanager.getplugin("allure_listener")
    if listener is None:
        return False
    test = _find_test(listener, item)
    if test is None:
        return False
    test.steps.extend(_steps(result))
    labels = [("feature", "chaos")]
    for kind in sorted({f.kind for f in result.faults}):
        labels.append(("tag", f"fault:{kind}"))
    targets = set((result.record.get("blast_radius") or {}).get("targets") or [])
    targets |= {f.target for f in result.faults if f.target}
    for target in sorted(targets):
        labels.append(("tag", f"target:{target}"))
        labels.append(("chaos_target", target))
    if result.aborts or result.record.get("aborted"):
        labels.append(("tag", "chaos:aborted"))
    present = {(label.name, label.value) for label in test.labels}
    test.labels.extend(Label(name=n, value=v) for n, v in labels if (n, v) not in present)
    _adjust_status(test, result)
    logger = listener.allure_logger
    uuid = _open_uuid(listener, item)
    JSON = AttachmentType.JSON
    for body, name, attachment_type in (
        (timeline_svg(result), "chaos timeline", AttachmentType.SVG),
        (checks_html(result), "chaos checks", AttachmentType.HTML),
        (json.dumps(journal_document(result), indent=2, default=str), "chaos journal", JSON),
    ):
        logger.attach_data(
            str(uuid_module.uuid4()),
            body,
            name=name,
            attachment_type=attachment_type,
            parent_uuid=uuid,
        )
    # each compare check: both latency distributions (control and experiment)
    compares = [c for c in result.checks if has_distributions(c)]
    for n, check in enumerate(compares, 1):
        logger.attach_data(
            str(uuid_module.uuid4()),
            compare_svg(check),
            name="chaos compare" + (f" {n}" if len(compares) > 1 else ""),
            attachment_type=AttachmentType.SVG,
            parent_uuid=uuid,
        )
    return True


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _properties(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in path.read_text(encoding="utf-8").splitlines():
            if "=" in line and not line.lstrip().startswith(("#", "!")):
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip()
    return values


def _joined(values: Sequence[Any]) -> str:
    unique = sorted({str(v) for v in values if v not in (None, "")})
    return ", ".join(unique) if unique else "?"


def write_run_files(directory: Path, results: Sequence[ChaosTestResult]) -> None:
    """Write (merge) ``categories.json`` and ``environment.properties`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    categories_path = directory / "categories.json"
    categories: list[dict[str, Any]] = []
    with contextlib.suppress(OSError, ValueError):
        existing = json.loads(categories_path.read_text(encoding="utf-8"))
        if isinstance(existing, list):
            categories = [c for c in existing if isinstance(c, dict)]
    names = {c.get("name") for c in CATEGORIES}
    merged = [*CATEGORIES, *(c for c in categories if c.get("name") not in names)]
    _write(categories_path, json.dumps(merged, indent=2) + "\n")

    from pytest_chaos import __version__

    env_path = directory / "environment.properties"
    env = _properties(env_path)
    backends = [(r.record.get("backend") or {}) for r in results]
    env.update(
        {
            "chaos.backend": _joined([b.get("kind") for b in backends]),
            "chaos.backend.url": _joined([b.get("url") for b in backends]),
            "chaos.server.version": _joined([b.get("version") for b in backends]),
            "chaos.seed": _joined([r.seed for r in results]),
            "chaos.tests": str(len(results)),
            "pytest-chaos.version": __version__,
        }
    )
    # Java properties syntax: escape what would end or split a key or value
    lines = [
        f"{k.replace(':', '_').replace('=', '_')}={v.replace(chr(10), ' ')}"
        for k, v in sorted(env.items())
    ]
    _write(env_path, "\n".join(lines) + "\n")
