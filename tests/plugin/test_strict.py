"""--chaos-strict: a chaos gate fails on experiments that could not run and on runs with none."""

from __future__ import annotations

import pytest

UNAVAILABLE = """
import pytest
import pytest_chaos


@pytest.fixture
def frobnicator():
    pytest_chaos.unavailable("needs the frobnicator; install frob-server")


@pytest.mark.chaos(blast_radius=["x"])
def test_in_setup(frobnicator):
    pass


@pytest.mark.chaos(blast_radius=["x"])
def test_in_call():
    pytest_chaos.unavailable("needs a widget engine; start widgetd")


@pytest.mark.chaos(blast_radius=["x"])
def test_runs(chaos):
    pass
"""

USER_SKIPS = """
import pytest


@pytest.mark.chaos(blast_radius=["x"])
def test_skips_itself():
    pytest.skip("not on Fridays")


@pytest.mark.chaos(blast_radius=["x"])
@pytest.mark.skipif(True, reason="windows only")
def test_skipif():
    pass


@pytest.mark.chaos(blast_radius=["x"])
def test_runs(chaos):
    pass
"""

NO_CHAOS = """
def test_plain():
    pass
"""

STRICT_NOTE = "--chaos-strict turned this skip into an error"
NONE_RAN = "--chaos-strict: no chaos test ran;"


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:cacheprovider", *args)


def test_an_infrastructure_skip_is_an_error_with_its_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(UNAVAILABLE)
    result = _run(pytester, "--chaos-strict", "-rE")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, errors=2)
    out = result.stdout.str()
    # both phases are ERRORs, each with the reason and what to do
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_in_setup*",
            "needs the frobnicator; install frob-server",
            f"{STRICT_NOTE}*drop --chaos-strict*",
            "*ERROR at call of test_in_call*",
            "needs a widget engine; start widgetd",
            f"{STRICT_NOTE}*",
        ]
    )
    assert "FAILED" not in out
    # the chaos summary agrees: errors, not skips; one experiment ran, so no gate verdict
    result.stdout.fnmatch_lines(
        [
            "*::test_in_setup  ERROR  *",
            "  unavailable at setup: needs the frobnicator; install frob-server*",
            "chaos: 3 tests (1 passed, 2 error); *",
        ]
    )
    assert NONE_RAN not in out
    # a seed does not replay a missing server: no replay hint on these errors
    assert "replay with" not in out


def test_without_strict_an_infrastructure_skip_stays_a_skip(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(UNAVAILABLE)
    result = _run(pytester, "-rs")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["*SKIPPED*needs the frobnicator; install frob-server"])
    assert STRICT_NOTE not in result.stdout.str()


def test_the_users_own_skips_stay_skips_in_strict_mode(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(USER_SKIPS)
    result = _run(pytester, "--chaos-strict", "-rs")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["*SKIPPED*not on Fridays", "*SKIPPED*windows only"])
    assert NONE_RAN not in result.stdout.str()


def test_a_selection_without_chaos_tests_fails_the_gate(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain=NO_CHAOS, test_chaos=USER_SKIPS)
    result = _run(pytester, "--chaos-strict", "-m", "chaos", "-k", "nothing_matches")
    # pytest alone says 5 (no tests ran); a gate that ran nothing is a failure
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*chaos strict gate*",
            f"{NONE_RAN} the selection (paths, -m, -k) holds no test marked "
            "@pytest.mark.chaos.*drop --chaos-strict*",
        ]
    )
    # plain tests that ran are not chaos tests
    result = _run(pytester, "--chaos-strict", "test_plain.py")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"{NONE_RAN}*"])


def test_without_strict_an_empty_selection_keeps_pytests_status(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_plain=NO_CHAOS)
    result = _run(pytester, "-m", "chaos")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result = _run(pytester)
    assert result.ret == pytest.ExitCode.OK
    assert NONE_RAN not in result.stdout.str()


def test_chaos_tests_that_all_skipped_fail_the_gate(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(USER_SKIPS)
    result = _run(pytester, "--chaos-strict", "-k", "not test_runs")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(
        [f"{NONE_RAN} of 2 selected, 2 skipped: not on Fridays (1), windows only (1).*"]
    )


def test_experiments_that_could_not_run_are_named_in_the_gate_verdict(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(UNAVAILABLE)
    result = _run(pytester, "--chaos-strict", "-k", "not test_runs")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [f"{NONE_RAN} of 2 selected, 2 could not run for want of infrastructure*"]
    )


def test_the_gate_counts_on_the_xdist_controller(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain=NO_CHAOS, test_chaos=USER_SKIPS)
    args = ("-p", "no:cacheprovider", "-p", "xdist", "-n", "2", "--chaos-strict")
    # nothing selected: every worker collects, none runs a chaos test
    result = pytester.runpytest_subprocess(*args, "-m", "chaos", "-k", "nothing_matches")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([f"{NONE_RAN} the selection*"])
    # one chaos test ran on some worker: the controller knows and the gate passes
    result = pytester.runpytest_subprocess(*args, "-m", "chaos")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.assert_outcomes(passed=1, skipped=2)
    assert NONE_RAN not in result.stdout.str()
    # a worker turns the skip into an error; the controller reports it as one
    pytester.makepyfile(test_chaos=UNAVAILABLE)
    result = pytester.runpytest_subprocess(*args, "-m", "chaos")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(
        ["*::test_in_call  ERROR  *", "chaos: 3 tests (1 passed, 2 error)*"]
    )


def test_a_docker_only_service_without_an_engine_fails_the_gate(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the run the gate exists for: a CI machine whose Docker engine is gone
    monkeypatch.setenv("DOCKER_HOST", f"unix://{pytester.path}/no-docker.sock")
    monkeypatch.delenv("PYTEST_CHAOS_SERVICES", raising=False)
    monkeypatch.delenv("PYTEST_CHAOS_REQUIRE_DOCKER", raising=False)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.chaos(blast_radius=["web"])
        def test_web(chaos, chaos_services):
            chaos_services.container("some-image:tag", 80)
        """
    )
    result = _run(pytester, "-m", "chaos", "--chaos-strict")
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # not 4: no usage error
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert "chaos_services.container('some-image:tag') needs Docker" in out
    assert "no Docker engine answers" in out or "docker/testcontainers packages" in out
    assert STRICT_NOTE in out
    result.stdout.fnmatch_lines([f"{NONE_RAN} of 1 selected, 1 could not run*"])


@pytest.mark.parametrize(
    ("ini", "env", "strict"),
    [
        ("chaos_strict = true", None, True),
        ("chaos_strict = 0", None, False),
        ("", "1", True),
        # the environment beats the ini file: a developer switches a gate off locally
        ("chaos_strict = yes", "0", False),
    ],
)
def test_ini_key_and_environment_switch_the_gate(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    ini: str,
    env: str | None,
    strict: bool,
) -> None:
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    if env is None:
        monkeypatch.delenv("PYTEST_CHAOS_STRICT", raising=False)
    else:
        monkeypatch.setenv("PYTEST_CHAOS_STRICT", env)
    pytester.makepyfile(NO_CHAOS)
    result = _run(pytester)
    header = "chaos: backend=embedded seed=* strict" if strict else "chaos: backend=embedded seed=*"
    result.stdout.fnmatch_lines([header])
    assert result.ret == (pytest.ExitCode.TESTS_FAILED if strict else pytest.ExitCode.OK)


@pytest.mark.parametrize(
    ("ini", "env", "message"),
    [
        ("chaos_strict = maybe", None, "ini chaos_strict='maybe' is not a boolean; use one of"),
        ("", "sometimes", "PYTEST_CHAOS_STRICT='sometimes' is not a boolean; use one of"),
    ],
)
def test_a_bad_strict_value_is_a_usage_error_naming_it(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    ini: str,
    env: str | None,
    message: str,
) -> None:
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    if env is None:
        monkeypatch.delenv("PYTEST_CHAOS_STRICT", raising=False)
    else:
        monkeypatch.setenv("PYTEST_CHAOS_STRICT", env)
    pytester.makepyfile(NO_CHAOS)
    result = _run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()
    assert "1/true/yes/on" in result.stderr.str()


def test_unavailable_needs_a_reason() -> None:
    import pytest_chaos

    with pytest.raises(TypeError, match="must be a non-empty string"):
        pytest_chaos.unavailable("  ")
    with pytest.raises(pytest.skip.Exception, match="no frob"):
        pytest_chaos.unavailable("no frob")
    assert issubclass(pytest_chaos.ChaosUnavailable, pytest.skip.Exception)
