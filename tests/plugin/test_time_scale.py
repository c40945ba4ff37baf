"""``--chaos-time-scale`` (ini ``chaos_time_scale``): schedules run compressed, the
header shows the scale, a bad value is a usage error."""

from __future__ import annotations

import json

import pytest

GAME_DAY = """
import time
import pytest
from pytest_chaos.experiment import Step

@pytest.mark.chaos(blast_radius=["echo"])
def test_game_day(chaos, echo):
    proxy = chaos.proxy("echo", upstream=echo)
    started = time.monotonic()
    chaos.schedule([
        Step(at=0, fault=lambda: proxy.latency(50), for_=60, name="slow"),
        Step(at=90, fault=proxy.down, for_=30, name="down"),
    ]).wait()
    assert time.monotonic() - started < 5
    print("SCALE", chaos.time_scale)
"""


def test_the_scale_compresses_schedules_and_is_shown(
    chaos_pytester: pytest.Pytester,
) -> None:
    chaos_pytester.makepyfile(GAME_DAY)
    journal = chaos_pytester.path / "journal"
    result = chaos_pytester.runpytest(
        "-p", "no:cacheprovider", "-s", "--chaos-time-scale=0.01", f"--chaos-journal={journal}"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["chaos: backend=embedded seed=* time_scale=0.01*", "*SCALE 0.01*"])
    (document,) = [json.loads(p.read_text()) for p in (journal / "tests").glob("*.json")]
    steps = document["schedule"]
    assert [s["step"] for s in steps] == ["slow", "down"]
    assert [s["planned"] for s in steps] == pytest.approx([0.0, 0.9], abs=0.05)
    assert all(0 <= s["late_ms"] < 50 for s in steps), steps


def test_the_ini_key_sets_it_and_a_bad_value_is_a_usage_error(
    chaos_pytester: pytest.Pytester,
) -> None:
    chaos_pytester.makepyfile(GAME_DAY)
    chaos_pytester.makeini("[pytest]\nchaos_time_scale = 0.01\n")
    chaos_pytester.runpytest("-p", "no:cacheprovider", "-s").assert_outcomes(passed=1)
    bad = chaos_pytester.runpytest("-p", "no:cacheprovider", "--chaos-time-scale=fast")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--chaos-time-scale='fast' is not a time scale*"])
