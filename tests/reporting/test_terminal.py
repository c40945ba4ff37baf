"""The "chaos summary" section: what a user reads in the terminal after a run."""

from __future__ import annotations

import re

import pytest

from pytest_chaos.reporting._terminal import format_number

from ._support import NODEIDS, run_pytest, write_suite
from .conftest import SuiteRun


def _section(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"=+ chaos summary =+$", line))
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("chaos journal:"))
    return lines[start + 1 : end + 1]


def _block(section: list[str], nodeid: str) -> list[str]:
    start = next(i for i, line in enumerate(section) if line.startswith(nodeid + "  "))
    block = [section[start]]
    for line in section[start + 1 :]:
        if not line.startswith("  ") and not line.startswith("         "):
            break
        block.append(line)
    return block


def test_summary_shows_each_chaos_test_with_faults_checks_and_outcome(suite_run: SuiteRun) -> None:
    section = _section(suite_run.stdout)
    header_seed = re.search(r"^chaos: backend=\S+ seed=(\d+)$", suite_run.stdout, re.M)
    assert header_seed, suite_run.stdout[:500]
    seed = header_seed.group(1)

    for nodeid, outcome in NODEIDS.items():
        head = _block(section, nodeid)[0]
        assert f"  {outcome.upper()}  " in head, head
        assert f"seed {seed}" in head and "backend embedded" in head, head
    assert not any("test_not_chaos" in line for line in section)

    passed = "\n".join(_block(section, "test_suite.py::test_copes_with_latency"))
    assert re.search(
        r"fault  latency on echo  latency=50 jitter=10 downstream  at [\d.]+s "
        r"for [\d.]+s \(healed by test\)",
        passed,
    ), passed
    assert re.search(
        r"check  steady_state on echo  PASS  calls=4 .*p99=[\d.]+ \(allowed 30\)", passed
    ), passed
    assert re.search(r"check  recovers on echo  PASS  recovery_seconds=\S+", passed), passed

    failed = "\n".join(_block(section, "test_suite.py::test_too_slow"))
    match = re.search(r"check  steady_state on echo  FAIL  .*p99=([\d.]+) \(allowed 0.01\)", failed)
    assert match, failed
    assert float(match.group(1)) >= 0.25  # the 300 ms of latency the proxy added
    assert "steady_state violated" in failed

    aborted = "\n".join(_block(section, "test_suite.py::test_guard_aborts"))
    assert re.search(r"fault  down on echo  at [\d.]+s for [\d.]+s \(healed by guard\)", aborted)
    assert re.search(r"abort  by guard at [\d.]+s: .*healed f1", aborted), aborted
    assert "guard tripped" not in aborted  # the guard's verdict would only repeat the reason

    error = "\n".join(_block(section, "test_suite.py::test_outside_radius"))
    assert "call raised pytest_chaos.errors.BlastRadiusError" in error, error
    assert "'other'" in error

    totals = next(line for line in section if line.startswith("chaos: 4 tests"))
    assert "(1 passed, 1 failed, 1 error, 1 aborted)" in totals
    assert "3 faults" in totals and "4 checks (2 passed, 2 failed)" in totals
    assert "1 abort" in totals and f"seed {seed}" in totals
    assert section[-1].startswith("chaos journal: ")


def test_summary_without_xdist_and_quiet_modes(pytester: pytest.Pytester) -> None:
    write_suite(pytester.path)
    nodeid = "test_suite.py::test_copes_with_latency"
    full = run_pytest(pytester.path, nodeid)
    assert full.returncode == 0, full.stdout[-2000:]
    section = full.stdout.split("chaos summary", 1)[1]
    assert f"{nodeid}  PASSED" in section
    assert "chaos: 1 test (1 passed); 1 fault" in section

    # -qq keeps only the totals line, and no journal line without --chaos-journal
    quiet = run_pytest(pytester.path, "-qq", nodeid)
    section = quiet.stdout.split("chaos summary", 1)[1]
    assert nodeid not in section
    assert "chaos: 1 test (1 passed)" in section
    assert "chaos journal" not in quiet.stdout


def test_no_summary_when_no_chaos_test_ran(pytester: pytest.Pytester) -> None:
    write_suite(pytester.path)
    result = run_pytest(pytester.path, "test_suite.py::test_not_chaos")
    assert result.returncode == 0
    assert "chaos summary" not in result.stdout


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (300, "300"),
        (0.0, "0"),
        (0.30464, "0.3046"),
        (0.01, "0.01"),
        (2.5e-05, "<0.0001"),
        (1.23456, "1.23"),
        (1234.5, "1234"),
        (True, "True"),
        ("x", "x"),
    ],
)
def test_numbers_are_short_and_never_in_exponent_form(value: object, text: str) -> None:
    assert format_number(value) == text
