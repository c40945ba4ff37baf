"""Options, ini keys, the header line and the seed shown with failures."""

from __future__ import annotations

import re

import pytest

SEED_PROBE = """
import pytest

@pytest.mark.chaos(blast_radius=["x"])
def test_seed(chaos, toxiproxy):
    print("SEED", chaos.seed, "RNG", chaos.rng.random(), "BACKEND", toxiproxy.backend)
"""


def _seed_line(result: pytest.RunResult) -> str:
    found = re.search(r"SEED \d+ RNG \S+ BACKEND \w+", result.stdout.str())
    assert found is not None, result.stdout.str()
    return found.group(0)


def test_seed_option_is_shown_in_the_header_and_replays_the_rng(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(SEED_PROBE)
    first = pytester.runpytest("-p", "no:cacheprovider", "-s", "--chaos-seed=1234")
    first.assert_outcomes(passed=1)
    first.stdout.fnmatch_lines(["chaos: backend=embedded seed=1234"])
    again = pytester.runpytest("-p", "no:cacheprovider", "-s", "--chaos-seed=1234")
    other = pytester.runpytest("-p", "no:cacheprovider", "-s", "--chaos-seed=99")
    assert _seed_line(first) == _seed_line(again)
    assert _seed_line(first) != _seed_line(other)
    assert "BACKEND embedded" in _seed_line(first)


def test_without_a_seed_a_random_one_is_shown(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SEED_PROBE)
    result = pytester.runpytest("-p", "no:cacheprovider", "-s")
    header = re.search(r"chaos: backend=embedded seed=(\d+)", result.stdout.str())
    assert header is not None
    assert _seed_line(result).startswith(f"SEED {header.group(1)} ")


def test_ini_keys_set_seed_and_backend(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nchaos_seed = 77\nchaos_backend = embedded\n")
    pytester.makepyfile(SEED_PROBE)
    result = pytester.runpytest("-p", "no:cacheprovider", "-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["chaos: backend=embedded seed=77"])
    assert _seed_line(result).startswith("SEED 77 ")
    # the option wins over the ini key
    result = pytester.runpytest("-p", "no:cacheprovider", "-s", "--chaos-seed=5")
    result.stdout.fnmatch_lines(["chaos: backend=embedded seed=5"])


def test_a_failure_shows_the_seed_to_replay(chaos_pytester: pytest.Pytester) -> None:
    chaos_pytester.makepyfile(
        """
        import pytest

        @pytest.mark.chaos(blast_radius=["echo"])
        def test_fails(chaos):
            assert False, "boom"
        """
    )
    result = chaos_pytester.runpytest("-p", "no:cacheprovider", "--chaos-seed=4242")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*seed=4242; replay with: pytest --chaos-seed=4242 'test_a_failure_shows*::test_fails'"]
    )


@pytest.mark.parametrize(
    ("args", "ini", "message"),
    [
        (["--chaos-seed=abc"], "", "--chaos-seed='abc' is not a seed; use a whole number"),
        (["--chaos-seed=-3"], "", "--chaos-seed='-3' is not a seed"),
        ([], "chaos_seed = x1", "ini chaos_seed='x1' is not a seed"),
        (["--chaos-backend=docker"], "", "--chaos-backend='docker' is not a chaos backend; use"),
        ([], "chaos_backend = nope", "ini chaos_backend='nope' is not a chaos backend"),
        (
            ["--toxiproxy-url=localhost:8474"],
            "",
            "--toxiproxy-url='localhost:8474' is not a Toxiproxy API URL; it must be http://",
        ),
        ([], "chaos_toxiproxy_url = ftp://x:1", "ini chaos_toxiproxy_url='ftp://x:1' is not"),
        (
            ["--toxiproxy-url=http://127.0.0.1:8474", "--chaos-backend=embedded"],
            "",
            "selects the external backend but --chaos-backend='embedded' asks for another",
        ),
        (["--chaos-backend=external"], "", "--chaos-backend=external needs the server's URL"),
    ],
)
def test_bad_settings_are_usage_errors_naming_value_rule_and_fix(
    pytester: pytest.Pytester, args: list[str], ini: str, message: str
) -> None:
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_command_line_backend_beats_an_ini_url(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nchaos_toxiproxy_url = http://127.0.0.1:9\n")
    pytester.makepyfile(SEED_PROBE)
    result = pytester.runpytest("-p", "no:cacheprovider", "-s", "--chaos-backend=embedded")
    result.assert_outcomes(passed=1)
    assert "BACKEND embedded" in _seed_line(result)
    # without the option, the ini URL selects the external backend
    result = pytester.runpytest("-p", "no:cacheprovider", "--co")
    result.stdout.fnmatch_lines(["chaos: backend=external seed=* url=http://127.0.0.1:9"])


def test_options_are_in_help(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        ["*--chaos-backend=NAME*", "*--toxiproxy-url=URL*", "*--chaos-seed=N*", "*chaos_seed*"]
    )


def test_runs_without_chaos_tests_start_no_server(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        def pytest_sessionfinish(session):
            from pytest_chaos.plugin._session import get_session
            print("STARTED", get_session(session.config).started)
        """
    )
    pytester.makepyfile("def test_plain(): pass")
    result = pytester.runpytest("-p", "no:cacheprovider", "-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*STARTED False*"])
