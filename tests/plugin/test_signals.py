"""SIGTERM and SIGHUP during a chaos run heal every fault, as Ctrl-C does.

Against a separately started ``python -m pytest_chaos.proxy`` used as an external
server (as a shared staging Toxiproxy would be): a test injects a fault and blocks; the
signal arrives; the server must hold nothing of the run once pytest has exited.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import server_api

BLOCKING_TEST = """
import pathlib, time
import pytest

@pytest.mark.chaos(blast_radius=["db"])
@pytest.mark.parametrize("n", range({tests}))
def test_blocks_with_a_fault(chaos, n):
    db = chaos.proxy("db", upstream="127.0.0.1:9")
    db.latency(500)
    pathlib.Path({ready!r}, f"injected-{{n}}").touch()
    time.sleep(120)
"""


def _wait_for(path: Path, count: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while len(list(path.glob("injected-*"))) < count:
        if proc.poll() is not None:
            out, _ = proc.communicate()
            pytest.fail(f"pytest ended before injecting (exit {proc.returncode}):\n{out}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the tests did not inject within 60 s")
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("signum", "workers"),
    [(signal.SIGTERM, 0), (signal.SIGHUP, 0), (signal.SIGTERM, 2)],
    ids=["SIGTERM", "SIGHUP", "SIGTERM-xdist-process-group"],
)
def test_a_signal_heals_every_fault_before_pytest_exits(
    server: int, tmp_path: Path, signum: signal.Signals, workers: int
) -> None:
    ready = tmp_path / "ready"
    ready.mkdir()
    tests = max(workers, 1)
    (tmp_path / "test_blocking.py").write_text(BLOCKING_TEST.format(tests=tests, ready=str(ready)))
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-s"]
    argv += [f"--toxiproxy-url=http://127.0.0.1:{server}", "test_blocking.py"]
    if workers:
        argv += ["-n", str(workers)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.Popen(
        argv,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a CI job's
    )
    try:
        _wait_for(ready, tests, proc)
        proxies = server_api(server, "GET", "/proxies")
        assert isinstance(proxies, dict) and len(proxies) == tests
        assert all(p["toxics"] for p in proxies.values()), proxies
        if workers:
            os.killpg(proc.pid, signum)  # what a CI runner cancelling the job does
        else:
            proc.send_signal(signum)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert server_api(server, "GET", "/proxies") == {}, out
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    assert f"{signum.name} received" in out
