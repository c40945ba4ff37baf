"""A check that could not judge (CheckError) reads the same in pytest's summary and in
the chaos summary: ERROR, with "could not judge" and the reason."""

from __future__ import annotations

import pytest

SUITE = """
import pytest

@pytest.mark.chaos(blast_radius=["api"])
def test_nothing_to_judge(chaos):
    chaos.history().check({})  # no write recorded: a CheckError

@pytest.mark.chaos(blast_radius=["api"])
def test_violated(chaos):
    history = chaos.history()
    history.write("k", "v", lambda: None)
    history.check({"k": []})  # lost: a HistoryViolated, a failure
"""


def test_a_check_that_could_not_judge_is_an_error_everywhere(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rfE")
    result.assert_outcomes(failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at call of test_nothing_to_judge*",
            "*FAILED*test_suite.py::test_violated*",
            "*ERROR test_suite.py::test_nothing_to_judge*",
        ]
    )
    out = result.stdout.str()
    assert "FAILED test_suite.py::test_nothing_to_judge" not in out
    chaos = out.split("chaos summary", 1)[1]
    assert "test_suite.py::test_nothing_to_judge  ERROR" in chaos
    assert "could not judge (call raised pytest_chaos.errors.CheckError)" in chaos
    assert "test_suite.py::test_violated  FAILED" in chaos
    assert "chaos: 2 tests (1 failed, 1 error)" in chaos
    assert result.ret == pytest.ExitCode.TESTS_FAILED
