"""The reaper heals what a SIGKILLed pytest process or xdist worker left on the server.

Against a separately started ``python -m pytest_chaos.proxy`` used as an external
server (as a shared staging Toxiproxy would be): each test of the inner run creates a
proxy, adds a latency toxic and disables the proxy (``down()``), then blocks until told
to finish. SIGKILL gives pytest no chance to heal; the reaper must, within 2 s, and
must leave another run's proxies alone.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_chaos.experiment import new_run_id

from .conftest import server_api

BLOCKING_TEST = """
import json, os, pathlib, time
import pytest

@pytest.mark.chaos(blast_radius=["db"])
@pytest.mark.parametrize("n", range({tests}))
def test_blocks_with_faults(chaos, n):
    db = chaos.proxy("db", upstream="127.0.0.1:9")
    db.latency(500)
    db.down()
    worker = os.environ.get("PYTEST_XDIST_WORKER", "master")
    info = {{"pid": os.getpid(), "worker": worker}}
    pathlib.Path({ready!r}, f"injected-{{n}}").write_text(json.dumps(info))
    release = pathlib.Path({ready!r}, "release")
    deadline = time.monotonic() + 120
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
"""

#: seconds after the SIGKILL by which the server must hold nothing of the killed process
WITHIN = 2.0


@pytest.fixture
def other_run(server: int) -> list[str]:
    """Proxies of another, live run and of someone else, each faulted, made by hand."""
    names = [f"chaos-{new_run_id()}-master-db", "staging-redis"]
    for name in names:
        server_api(
            server,
            "POST",
            "/proxies",
            {"name": name, "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"},
        )
        server_api(
            server,
            "POST",
            f"/proxies/{name}/toxics",
            {"type": "latency", "attributes": {"latency": 100}},
        )
    return names


def _start(tmp: Path, port: int, tests: int, *args: str) -> tuple[subprocess.Popen[str], Path]:
    ready = tmp / "ready"
    ready.mkdir()
    (tmp / "test_blocking.py").write_text(BLOCKING_TEST.format(tests=tests, ready=str(ready)))
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-s"]
    argv += [f"--toxiproxy-url=http://127.0.0.1:{port}", "test_blocking.py", *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.Popen(
        argv,
        cwd=tmp,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while len(list(ready.glob("injected-*"))) < tests:
        if proc.poll() is not None:
            pytest.fail(f"pytest ended before injecting (exit {proc.returncode}):\n{_out(proc)}")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"the tests did not inject within 60 s:\n{_out(proc)}")
        time.sleep(0.05)
    return proc, ready


def _out(proc: subprocess.Popen[str]) -> str:
    out, _ = proc.communicate(timeout=60)
    return out


def _injected(ready: Path, n: int) -> dict[str, Any]:
    info: dict[str, Any] = json.loads((ready / f"injected-{n}").read_text())
    return info


def _faulted(port: int, prefix: str) -> dict[str, Any]:
    proxies: dict[str, Any] = server_api(port, "GET", "/proxies")
    return {name: p for name, p in proxies.items() if name.startswith(prefix)}


def _seconds_until_gone(port: int, prefix: str, limit: float = 10.0) -> float:
    started = time.monotonic()
    while _faulted(port, prefix) and time.monotonic() - started < limit:
        time.sleep(0.01)
    return time.monotonic() - started


def _reaper_pid(out: str) -> int:
    match = re.search(r"chaos: reaper on \(pid (\d+)\)", out)
    assert match, out
    return int(match.group(1))


def _gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def _kill_all(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()


def test_sigkill_of_pytest_leaves_nothing_of_the_run(
    server: int, other_run: list[str], tmp_path: Path
) -> None:
    proc, _ = _start(tmp_path, server, 1)
    try:
        mine = _faulted(server, "chaos-")
        mine = {n: p for n, p in mine.items() if n not in other_run}
        (name,) = mine
        assert not mine[name]["enabled"] and mine[name]["toxics"], mine
        proc.kill()  # SIGKILL of pytest alone: no handler runs
        took = _seconds_until_gone(server, name)
        out = _out(proc)
    finally:
        _kill_all(proc)
    print(f"SIGKILL of pytest -> server clean in {took * 1000:.0f} ms")
    assert took < WITHIN, out
    assert _gone(_reaper_pid(out)), "the reaper outlived its run"
    left = server_api(server, "GET", "/proxies")
    assert sorted(left) == sorted(other_run)  # another run's proxies are untouched
    assert all(p["toxics"] for p in left.values())


def test_sigkill_of_one_xdist_worker_heals_only_that_worker(server: int, tmp_path: Path) -> None:
    pytest.importorskip("xdist")
    proc, ready = _start(tmp_path, server, 2, "-n", "2")
    try:
        victim, survivor = _injected(ready, 0), _injected(ready, 1)
        assert victim["worker"] != survivor["worker"]
        prefix = _reaper_run_prefix(server)
        assert len(_faulted(server, prefix)) == 2
        os.kill(victim["pid"], signal.SIGKILL)
        took = _seconds_until_gone(server, f"{prefix}-{victim['worker']}-")
        left = _faulted(server, prefix)
        assert proc.poll() is None, "the controller died with its worker"
        (ready / "release").touch()
        out = _out(proc)
    finally:
        _kill_all(proc)
    print(f"SIGKILL of an xdist worker -> its proxies gone in {took * 1000:.0f} ms")
    assert took < WITHIN, out
    # the other worker's fault was still in place, and it healed it itself
    (other,) = left
    assert f"-{survivor['worker']}-" in other and left[other]["toxics"], left
    assert server_api(server, "GET", "/proxies") == {}, out
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, out
    assert re.search(rf"worker '?{victim['worker']}'? crashed", out), out
    assert _gone(_reaper_pid(out))


def _reaper_run_prefix(port: int) -> str:
    names = list(_faulted(port, "chaos-"))
    assert names
    return names[0].rsplit("-", 2)[0]


def test_a_normal_run_ends_its_reaper(server: int, tmp_path: Path) -> None:
    (tmp_path / "ready").mkdir()
    (tmp_path / "ready" / "release").touch()
    ready = tmp_path / "ready"
    (tmp_path / "test_blocking.py").write_text(BLOCKING_TEST.format(tests=2, ready=str(ready)))
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_blocking.py"]
    argv += [f"--toxiproxy-url=http://127.0.0.1:{server}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    result = subprocess.run(
        argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout
    assert _gone(_reaper_pid(result.stdout), within=3.0)
    assert server_api(server, "GET", "/proxies") == {}


def test_with_the_reaper_off_a_sigkill_leaves_the_fault(server: int, tmp_path: Path) -> None:
    proc, _ = _start(tmp_path, server, 1, "--chaos-reaper=off")
    try:
        proc.kill()
        out = _out(proc)
        time.sleep(WITHIN)
        left = _faulted(server, "chaos-")
    finally:
        _kill_all(proc)
    assert "chaos: reaper off" in out
    (name,) = left  # what the test measures without the reaper: the fault stays
    assert left[name]["toxics"] and not left[name]["enabled"]
