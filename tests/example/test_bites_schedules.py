"""The Hypothesis schedule experiment bites: without the shop's stale reads
(``SHOP_FRAGILE=stale_reads``) browsing fails only when Redis and PostgreSQL are down at
the same time, and Hypothesis shrinks the schedule that found it to exactly those two
overlapping faults, printed as snippets ready to paste as a regression test.

The resilient build passing the same experiment is part of tests/example/
test_suite_bites.py's run of the whole suite.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from pytest_chaos.strategies import FaultSchedule, ScheduledFault

REPO = Path(__file__).resolve().parents[2]
TEST = "example_suite/test_schedules.py"


def test_two_overlapping_outages_are_found_and_shrunk_to_exactly_those_two(
    tmp_path: Path,
) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT_TEST", "PYTEST_ADDOPTS"))
    }
    env["SHOP_FRAGILE"] = "stale_reads"
    # the experiment is derandomized (no example database, the same schedules every
    # run); should that change, a failure saved by another run must not be replayed here
    env["HYPOTHESIS_STORAGE_DIRECTORY"] = str(tmp_path / "hypothesis")
    began = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            TEST,
            "-m",
            "chaos",
            "-p",
            "no:cacheprovider",
            f"--basetemp={tmp_path / 'basetemp'}",
        ],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    took = time.monotonic() - began
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, f"expected the experiment to fail:\n{out[-6000:]}"
    assert "1 failed" in out, out[-6000:]
    # the browse that failed: a 503 from the database, with no cache to fall back on
    assert (
        "AssertionError: a product page failed under the schedule: GET /products/mug -> 503" in out
    ), out[-6000:]
    found = re.search(r"schedule=(FaultSchedule\(\[.*?\]\))", out)
    assert found, f"no falsifying schedule in the output:\n{out[-6000:]}"
    schedule = eval(
        found.group(1), {"FaultSchedule": FaultSchedule, "ScheduledFault": ScheduledFault}
    )
    assert {(f.target, f.fault) for f in schedule} == {("redis", "down"), ("postgres", "down")}
    assert len(schedule) == 2 and len(schedule.overlapping()) == 1, schedule
    # shrunk: earliest start, shortest duration on the experiment's 0.2 s grid
    assert all(f.start == 0.0 and f.duration == 0.2 for f in schedule), schedule
    # printed as a regression test, both ways
    assert f"fault schedule (2 fault(s)): {schedule.describe()}" in out
    assert 'chaos.proxies["redis"].down()' in out
    assert 'chaos.proxies["postgres"].down()' in out
    assert 'target: "postgres"' in out and 'fault: "down"' in out
    print(f"fragile run with shrinking: {took:.1f} s")
