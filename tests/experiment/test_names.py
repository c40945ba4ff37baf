"""Run ids, server names, and which leftovers belong to dead runs."""

from __future__ import annotations

import os

from pytest_chaos.experiment._names import (
    STALE_AFTER_SECONDS,
    RunId,
    dead_run_proxies,
    new_run_id,
    server_name,
)


def test_run_id_round_trips() -> None:
    run = new_run_id(now=1_700_000_000, pid=4321)
    parsed = RunId.parse(run)
    assert parsed is not None
    assert parsed.started == 1_700_000_000 and parsed.pid == 4321
    assert RunId.parse("not-a-run") is None
    assert RunId.parse("zz.0000.1") is None


def test_server_names_carry_run_and_worker() -> None:
    assert server_name("abc", "gw1", "redis-main") == "chaos-abc-gw1-redis-main"


def test_only_dead_runs_with_our_prefix_are_returned() -> None:
    now = 2_000_000_000.0
    live_here = server_name(new_run_id(now=now, pid=os.getpid()), "gw0", "a")
    dead_here = server_name(new_run_id(now=now, pid=0x7FFFFFFE), "gw0", "b")
    current = new_run_id(now=now, pid=1)
    mine = server_name(current, "gw0", "c")
    old_elsewhere = server_name(f"{int(now - STALE_AFTER_SECONDS - 1):x}.zzzz.1", "m", "d")
    new_elsewhere = server_name(f"{int(now - 60):x}.zzzz.1", "m", "e")
    names = [live_here, dead_here, mine, old_elsewhere, new_elsewhere, "redis", "chaos-x-y-z"]
    assert dead_run_proxies(names, current_run=current, now=now) == sorted(
        [dead_here, old_elsewhere]
    )
