"""chaos.run_schedule under Hypothesis, through real proxies in front of echo servers:
a failure that only two overlapping faults cause is shrunk to exactly those two, the
failure message carries the schedule as snippets, the example database replays the
minimal schedule first, ``--chaos-seed`` makes the generated schedules repeat, and no
fault leaks from one example into the next (teardown finds nothing)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytest.importorskip("hypothesis")

HEADER = '''
import json
import socket
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from pytest_chaos.strategies import fault_schedules, schedule_settings

LOG = Path(__file__).parent / "log.jsonl"


def log(**entry):
    with LOG.open("a") as f:
        f.write(json.dumps(entry) + "\\n")


def answers(proxy):
    """One echo round trip through the proxy; False when it fails."""
    try:
        with socket.create_connection((proxy.host, proxy.port), timeout=1.0) as sock:
            sock.sendall(b"ping")
            return sock.recv(16) == b"ping"
    except OSError:
        return False


@pytest.fixture
def paths(chaos, echo):
    return {name: chaos.proxy(name, upstream=echo.address) for name in ("a", "b", "c")}
'''

#: two redundant paths (a, b): the scenario fails only when both are down at once
TWO_DOWN = (
    HEADER
    + """

@pytest.mark.chaos(blast_radius=["a", "b", "c"])
@given(schedule=fault_schedules(["a", "b", "c"], ["latency:20ms", "down"], max_faults=4,
                                horizon=0.4, resolution=0.1))
@settings(schedule_settings(max_examples=30, database={database}))
def test_redundant_paths(chaos, paths, schedule):
    first = not LOG.exists()
    log(schedule=repr(schedule), first=first)

    def scenario():
        # a second look 50 ms later: a heal and an injection at the same instant are
        # not an overlap (the first look may straddle them)
        if not (answers(paths["a"]) or answers(paths["b"])):
            time.sleep(0.05)
            assert answers(paths["a"]) or answers(paths["b"]), "both paths failed"

    chaos.run_schedule(schedule, scenario)
"""
)


@pytest.fixture(autouse=True)
def _outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """The inner runs must not load Hypothesis's ``ci`` profile (chosen when ``CI`` or
    another CI variable is set, as in .ci/run): it derandomizes every test and drops the
    example database, which these tests are about."""
    from hypothesis._settings import _CI_VARS

    for name in _CI_VARS:
        monkeypatch.delenv(name, raising=False)


def _schedules(path: Path) -> list[dict[str, object]]:
    log = path / "log.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


MINIMAL = (
    "FaultSchedule([ScheduledFault(start=0.0, duration=0.1, target='a', fault='down'), "
    "ScheduledFault(start=0.0, duration=0.1, target='b', fault='down')])"
)


def test_a_two_fault_failure_is_shrunk_printed_and_replayed_from_the_database(
    chaos_pytester: pytest.Pytester, tmp_path: Path
) -> None:
    database = f"DirectoryBasedExampleDatabase({str(tmp_path / 'db')!r})"
    chaos_pytester.makepyfile(test_paths=TWO_DOWN.replace("{database}", database))
    first = chaos_pytester.runpytest_subprocess("-p", "no:cacheprovider", "--chaos-seed=5")
    first.assert_outcomes(failed=1)
    out = first.stdout.str()
    # Hypothesis's own report, then our note with the schedule and both snippets
    assert f"schedule={MINIMAL}" in out, out[-3000:]
    assert "fault schedule (2 fault(s)): a down [0s, 100ms); b down [0s, 100ms)" in out
    assert 'chaos.proxies["a"].down()' in out and 'chaos.proxies["b"].down()' in out
    assert 'target: "b"' in out and "for: 100ms" in out
    assert "AssertionError: both paths failed" in out
    log = _schedules(chaos_pytester.path)
    assert log[0]["schedule"] != MINIMAL  # found by generation, then shrunk
    # the last example run is the minimal one, and it is the failure reported
    assert log[-1]["schedule"] == MINIMAL
    # teardown found nothing left on the server (no RollbackError)
    assert "RollbackError" not in out and "rollback of" not in out

    # another run, another seed: the saved minimal schedule is the first one tried
    (chaos_pytester.path / "log.jsonl").unlink()
    second = chaos_pytester.runpytest_subprocess("-p", "no:cacheprovider", "--chaos-seed=6")
    second.assert_outcomes(failed=1)
    assert _schedules(chaos_pytester.path)[0]["schedule"] == MINIMAL
    assert f"schedule={MINIMAL}" in second.stdout.str()


PASSING = (
    HEADER
    + """

@pytest.mark.chaos(blast_radius=["a", "b", "c"])
@given(schedule=fault_schedules(["a", "b", "c"], ["latency:20ms", "down", "timeout"],
                                max_faults=3, horizon=0.3, resolution=0.05))
@settings(schedule_settings(max_examples=15, database=None))
def test_schedules(chaos, paths, schedule):
    # before each example: nothing of the previous one is left
    leaks = [f"{f.kind} on {f.target}" for f in chaos.active_faults]
    for proxy in paths.values():
        state = chaos.client.get_proxy(proxy.server_name)
        leaks += [f"{t['name']} on {proxy.name}" for t in chaos.client.toxics(proxy.server_name)]
        if not state["enabled"]:
            leaks.append(f"{proxy.name} disabled")
        if not answers(proxy):
            leaks.append(f"{proxy.name} does not answer")
    log(schedule=repr(schedule), leaks=leaks)
    calls = chaos.run_schedule(schedule, lambda: None, interval=0.01)
    assert calls >= 1
"""
)


def test_seeded_runs_repeat_their_schedules_and_nothing_leaks(
    chaos_pytester: pytest.Pytester,
) -> None:
    chaos_pytester.makepyfile(test_seeded=PASSING)
    runs = []
    for seed in (11, 11, 12):
        result = chaos_pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", f"--chaos-seed={seed}"
        )
        result.assert_outcomes(passed=1)
        entries = _schedules(chaos_pytester.path)
        (chaos_pytester.path / "log.jsonl").unlink()
        assert [e["leaks"] for e in entries if e["leaks"]] == []
        runs.append([e["schedule"] for e in entries])
    assert len(runs[0]) >= 10
    assert runs[0] == runs[1], "the same --chaos-seed generated other schedules"
    assert runs[0] != runs[2], "another --chaos-seed generated the same schedules"


def test_errors_name_the_missing_proxy_and_the_bad_time_scale(
    chaos_pytester: pytest.Pytester,
) -> None:
    chaos_pytester.makepyfile(
        test_bad="""
        import pytest
        from pytest_chaos.strategies import FaultSchedule, ScheduledFault

        S = FaultSchedule([ScheduledFault(start=0, duration=0.1, target="db", fault="down")])

        @pytest.mark.chaos(blast_radius=["db"])
        def test_no_proxy(chaos):
            chaos.run_schedule(S, lambda: None)

        @pytest.mark.chaos(blast_radius=["db"])
        def test_scale(chaos, echo):
            chaos.proxy("db", upstream=echo.address)
            chaos.run_schedule(S, lambda: None, time_scale=0)

        @pytest.mark.chaos(blast_radius=["db"])
        def test_not_a_schedule(chaos):
            chaos.run_schedule([("db", "down")], lambda: None)
        """
    )
    result = chaos_pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=3)
    out = result.stdout.str()
    assert "the schedule faults ['db'], which are not proxies of this test" in out
    assert "time_scale=0 must be a number > 0" in out
    assert "is not a fault schedule; draw one from" in out


def test_the_time_scale_stretches_the_schedule(chaos_pytester: pytest.Pytester) -> None:
    chaos_pytester.makepyfile(
        test_scale="""
        import time
        import pytest
        from pytest_chaos.strategies import FaultSchedule, ScheduledFault

        S = FaultSchedule([ScheduledFault(start=0.1, duration=0.2, target="db", fault="down")])

        @pytest.mark.chaos(blast_radius=["db"])
        def test_scaled(chaos, echo):
            chaos.proxy("db", upstream=echo.address)
            began = time.monotonic()
            chaos.run_schedule(S, lambda: None, interval=0.01)
            took = time.monotonic() - began
            print("TOOK", took)
            steps = [e for e in chaos.timeline.events if e.name == "schedule_step"]
            assert [e.data["at"] for e in steps] == [0.1]
        """
    )
    result = chaos_pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-s", "--chaos-time-scale=4"
    )
    result.assert_outcomes(passed=1)
    took = float(re.search(r"TOOK ([0-9.]+)", result.stdout.str()).group(1))  # type: ignore[union-attr]
    assert took >= 1.2  # 0.3 s of schedule, times 4


OWN_SEEDS = (
    HEADER
    + """
from hypothesis import seed

STRATEGY = fault_schedules(["a"], ["down", "latency:20ms"], max_faults=2, horizon=0.1)


@pytest.mark.chaos(blast_radius=["a", "b", "c"])
@seed(1234)
@given(schedule=STRATEGY)
@settings(schedule_settings(max_examples=5))
def test_own_seed(chaos, paths, schedule):
    log(test="own", schedule=repr(schedule))


@pytest.mark.chaos(blast_radius=["a", "b", "c"])
@given(schedule=STRATEGY)
@settings(schedule_settings(max_examples=5, derandomize=True))
def test_derandomized(chaos, paths, schedule):
    log(test="derandomized", schedule=repr(schedule))


@pytest.mark.chaos(blast_radius=["a", "b", "c"])
@given(schedule=STRATEGY)
@settings(schedule_settings(max_examples=5, database=None))
def test_seeded(chaos, paths, schedule):
    log(test="seeded", schedule=repr(schedule))
"""
)


def test_a_tests_own_seed_and_derandomize_are_kept(chaos_pytester: pytest.Pytester) -> None:
    chaos_pytester.makepyfile(test_own=OWN_SEEDS)
    runs = []
    for seed in (21, 22):
        result = chaos_pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", f"--chaos-seed={seed}"
        )
        result.assert_outcomes(passed=3)
        entries = _schedules(chaos_pytester.path)
        (chaos_pytester.path / "log.jsonl").unlink()
        runs.append(
            {
                name: [e["schedule"] for e in entries if e["test"] == name]
                for name in ("own", "derandomized", "seeded")
            }
        )
    assert runs[0]["own"] == runs[1]["own"], "--chaos-seed replaced the test's @seed"
    assert runs[0]["derandomized"] == runs[1]["derandomized"]
    assert runs[0]["seeded"] != runs[1]["seeded"], "--chaos-seed did not seed the test"
