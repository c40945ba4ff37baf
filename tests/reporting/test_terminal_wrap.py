"""The chaos summary shows violation messages in full, wrapped at the terminal width,
and shortens skip reasons in the totals line to their first clause, never mid-word."""

from __future__ import annotations

import re
from typing import Any

import pytest

from pytest_chaos.reporting._model import ChaosTestResult, PhaseInfo
from pytest_chaos.reporting._terminal import summary_lines
from pytest_chaos.timeline import Timeline

MESSAGE = (
    "steady_state violated: p99 2.01 s > allowed 0.50 s over 40 calls; error rate 0.25 > "
    "allowed 0.00 (10 of 40 calls failed, first: TimeoutError: timed out after 2.00 s); "
    "slowest call 2.013 s at 1.37 s into the fault window"
)


def _record(timeline: Timeline, nodeid: str) -> dict[str, Any]:
    return {
        "schema": "pytest-chaos/record/1",
        "nodeid": nodeid,
        "worker": "master",
        "run_id": "run1",
        "blast_radius": {"targets": ["api"], "exclude": [], "max_concurrent_faults": None,
                         "max_fault_seconds": None},
        "backend": {"kind": "embedded", "url": "http://127.0.0.1:1", "version": "1"},
        "seed": 7,
        "timeline": timeline.to_json(),
        "aborted": None,
        "leftovers": [],
        "started": timeline.started_wall,
        "duration": 1.0,
    }  # fmt: skip


def _failed() -> ChaosTestResult:
    tl = Timeline()
    tl.record(
        "check", "steady_state", target="api", passed=False, measured={"p99": 2.01},
        allowed={"p99": 0.5}, message=MESSAGE, duration=2.0,
    )  # fmt: skip
    exception = {"type": "SteadyStateViolated", "message": MESSAGE, "kind": "hypothesis"}
    phases = {
        "setup": PhaseInfo(outcome="passed", duration=0.1),
        "call": PhaseInfo(outcome="failed", duration=2.0, exception=exception),
        "teardown": PhaseInfo(outcome="passed", duration=0.1),
    }
    return ChaosTestResult.build(_record(tl, "t.py::test_slow"), phases)


def _skipped(reason: str, nodeid: str) -> ChaosTestResult:
    phases = {"setup": PhaseInfo(outcome="skipped", duration=0.0, skip_reason=reason)}
    return ChaosTestResult.build(_record(Timeline(), nodeid), phases)


@pytest.mark.parametrize("width", [60, 80, 120])
def test_a_violation_message_is_wrapped_not_cut(width: int) -> None:
    lines = [text for text, _ in summary_lines([_failed()], width=width)]
    start = next(i for i, line in enumerate(lines) if "steady_state violated" in line)
    message = lines[start : start + 1 + sum(1 for _ in lines[start + 1 : -1])]
    assert all(len(line) <= width for line in message), message
    assert all(line.startswith("         ") for line in message)  # under its check
    assert " ".join(line.strip() for line in message) == MESSAGE  # every number kept
    assert not any(line.rstrip().endswith("...") for line in message)


def test_without_a_width_the_message_is_one_whole_line() -> None:
    lines = [text for text, _ in summary_lines([_failed()])]
    assert f"         {MESSAGE}" in lines


def test_quiet_keeps_only_the_totals() -> None:
    lines = summary_lines([_failed()], verbose=False, width=60)
    assert len(lines) == 1 and lines[0][0].startswith("chaos: 1 test (1 failed)")


def test_a_long_skip_reason_keeps_its_first_clause() -> None:
    reason = (
        "order API unavailable: POST /orders answered 500 Server Error (INTERNAL SERVER "
        "ERROR) for url http://127.0.0.1:8080/orders; start it with make api"
    )
    results = [_skipped(reason, f"t.py::test_{i}") for i in range(2)]
    totals = summary_lines(results, width=80)[-1][0]
    assert "skipped: order API unavailable ..." in totals
    assert not re.search(r"\w\.\.\.", totals)  # never cut in the middle of a word
    short = summary_lines([_skipped("no postgres", "t.py::test_x")])[-1][0]
    assert "skipped: no postgres" in short


def test_a_test_with_hundreds_of_faults_lists_the_first_and_counts_the_rest() -> None:
    """A Hypothesis schedule test injects faults in every example: the summary lists the
    first 12 faults and 12 passed checks, counts the rest, and keeps every violation."""
    tl = Timeline()
    for i in range(40):
        tl.record("inject", "latency", target="api", fault_id=f"f{i}", attributes={"latency": i})
        tl.record("heal", "latency", target="api", fault_id=f"f{i}", by="test")
        tl.record("check", "steady_state", target="api", passed=True, message=f"ok {i}")
    tl.record("check", "steady_state", target="api", passed=False, message=MESSAGE)
    phases = {"call": PhaseInfo(outcome="failed", duration=2.0)}
    result = ChaosTestResult.build(_record(tl, "t.py::test_many"), phases)
    lines = [text for text, _ in summary_lines([result])]
    assert sum(line.startswith("  fault  latency") for line in lines) == 12
    assert "  ... 28 more faults (the journal has all)" in lines
    assert sum("PASS" in line for line in lines) == 12
    assert "  ... 28 more passed checks (the journal has all)" in lines
    assert any(MESSAGE in line for line in lines)  # the violation is never left out
    assert lines[-1][0:40].startswith("chaos: 1 test (1 failed); 40 faults")
