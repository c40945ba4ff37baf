"""How a check's verdict reaches the user: the failure line and the per-test record."""

from __future__ import annotations

import json

import pytest

CONFTEST = """
import json, pathlib

def pytest_runtest_logreport(report):
    record = getattr(report, "chaos_record", None)
    if record is not None:
        with pathlib.Path("records.jsonl").open("a") as out:
            out.write(json.dumps(record) + "\\n")
"""

TESTS = """
import time
import pytest

@pytest.mark.chaos(blast_radius=["dep"])
def test_guarded(chaos):
    dep = chaos.proxy("dep", upstream="127.0.0.1:9")
    dep.latency(100)
    with chaos.guard(lambda: False, interval=0.01):
        time.sleep(0.5)

@pytest.mark.chaos(blast_radius=["dep"])
def test_steady(chaos):
    dep = chaos.proxy("dep", upstream="127.0.0.1:9")
    with dep.latency(100):
        chaos.steady_state(lambda: False, calls=3)

@pytest.mark.chaos(blast_radius=["dep"])
def test_broken_before(chaos):
    chaos.steady_state(lambda: False, calls=2)
"""


def test_verdicts_in_the_output_and_the_record(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_verdicts=TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    # SteadyStateNotMet is not an AssertionError: nothing was judged, so pytest, the
    # chaos summary and Allure ("broken") all count it an error
    result.assert_outcomes(failed=2, errors=1)
    # pytest shows the errors section before the failures
    result.stdout.fnmatch_lines(
        [
            "*SteadyStateNotMet: steady state not met before injection: error rate 1.00*",
            "*GuardTripped: guard tripped, test aborted: guard 'guard' breached:*",
            "*SteadyStateViolated: steady_state violated: error rate 1.00 > allowed 0.00 "
            "(3 of 3 calls failed, first: returned False) over 3 calls*",
        ]
    )
    result.stdout.fnmatch_lines(["chaos: 3 tests (*1 error*1 aborted*"])
    lines = (pytester.path / "records.jsonl").read_text().splitlines()
    records = {r["nodeid"].split("::")[-1]: r for r in map(json.loads, lines)}

    guarded = records["test_guarded"]
    assert guarded["aborted"]["reason"].startswith("guard 'guard' breached: 1 bad probe call")
    kinds = [(e["kind"], e["name"]) for e in guarded["timeline"]["events"]]
    assert kinds == [
        ("inject", "latency"),
        ("heal", "latency"),
        ("abort", "guard"),
        ("check", "guard"),
    ]
    heal = guarded["timeline"]["events"][1]
    assert heal["data"]["by"] == "guard"

    steady = records["test_steady"]
    assert steady["aborted"] is None
    (check,) = [e for e in steady["timeline"]["events"] if e["kind"] == "check"]
    assert check["data"]["passed"] is False
    assert check["data"]["measured"]["error_rate"] == 1.0
    assert len(steady["timeline"]["samples"]) == 3
