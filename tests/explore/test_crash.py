"""The ``crash`` fault, live: exploration and a YAML experiment SIGKILL a real server
process behind a proxy mid-traffic and restart it; a server that acknowledges writes
before they are durable loses some, one that syncs first loses none.

The server is a ``chaos_services.process`` service (every provider's services restart
the same way: tests/services covers kill and restart on Docker and local binaries).
"""

from __future__ import annotations

import json

import pytest

#: a store: ``add X`` answers ``ok`` (kept in memory, written to its file at once with
#: --durable, else by a flusher every second, as PostgreSQL's synchronous_commit=off
#: does), ``list`` answers every value; it reads its file back when it starts
STORE = r"""
import argparse, os, socket, threading, time

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, default=0)
parser.add_argument("--file", required=True)
parser.add_argument("--durable", action="store_true")
args = parser.parse_args()
lock = threading.Lock()
items = open(args.file).read().split() if os.path.exists(args.file) else []
pending = []


def write(values):
    with open(args.file, "a") as f:
        f.write("".join(v + "\n" for v in values))
        f.flush()
        os.fsync(f.fileno())


def flusher():
    while True:
        time.sleep(1.0)
        with lock:
            batch = pending[:]
            pending.clear()
        if batch:
            write(batch)


def serve(conn):
    with conn, conn.makefile("rb") as lines:
        for line in lines:
            command, _, value = line.decode().strip().partition(" ")
            if command == "add":
                with lock:
                    if args.durable:
                        write([value])
                    else:
                        pending.append(value)
                    items.append(value)
                conn.sendall(b"ok\n")
            elif command == "list":
                with lock:
                    conn.sendall((" ".join(items) + "\n").encode())


if not args.durable:
    threading.Thread(target=flusher, daemon=True).start()
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", args.port))
sock.listen(64)
print("LISTENING on 127.0.0.1:%d" % sock.getsockname()[1], flush=True)
while True:
    conn, _ = sock.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""

CONFTEST = r"""
import os, socket, sys
from pathlib import Path

import pytest


@pytest.fixture
def store(chaos_services, tmp_path):
    argv = [sys.executable, str(Path(__file__).parent / "store.py"), "--port", "{port}",
            "--file", str(tmp_path / "data")]
    if os.environ.get("STORE_DURABLE") == "1":
        argv.append("--durable")
    ready = r"LISTENING on 127\.0\.0\.1:(\d+)"
    with chaos_services.process(argv, ready=ready, name="store") as svc:
        yield svc


def ask(address, line):
    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=2) as conn:
        conn.sendall(line.encode() + b"\n")
        return conn.makefile().readline().strip()
"""

SCENARIO = r'''
import time
import pytest
from conftest import ask


@pytest.mark.chaos_explore(targets={"store": "service"}, faults=["latency:10ms", "crash:0.3s"])
def test_writes(chaos, store):
    """Hypothesis: every acknowledged write is stored, whatever happens to the store."""
    proxy = chaos.proxy("store", upstream=store)
    crash = str(chaos.explored.fault).startswith("crash")
    first_pid = store.pid
    acked, i = [], 0
    deadline = time.monotonic() + 30
    # write until the crash is over (the fault heals itself once the store answers)
    while (i < 20 or crash and chaos.active_faults) and (
        time.monotonic() < deadline
    ):
        i += 1
        try:
            if ask(proxy.address, f"add w{i}") == "ok":
                acked.append(f"w{i}")
        except OSError:
            time.sleep(0.02)
    chaos.heal_all()
    crashed = store.pid != first_pid
    assert crashed == crash, (first_pid, store.pid)
    stored = set(ask(proxy.address, "list").split())
    lost = [w for w in acked if w not in stored]
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged writes lost: {lost[:3]}"
'''


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    pytester.path.joinpath("store.py").write_text(STORE)
    return pytester


def _cells(pytester: pytest.Pytester) -> dict[str, dict[str, str]]:
    index = json.loads((pytester.path / "journal" / "index.json").read_text())
    (matrix,) = index["explore"]
    return {c["cell"]: c for c in matrix["cells"]}


def test_a_crash_cell_finds_writes_acknowledged_before_they_were_durable(
    suite: pytest.Pytester,
) -> None:
    suite.makepyfile(test_store=SCENARIO)
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", "--chaos-journal", "journal")
    result.assert_outcomes(passed=2, failed=1)
    cells = _cells(suite)
    assert {c: cells[c]["status"] for c in cells} == {
        "baseline": "pass",
        "store-latency-10ms": "pass",
        "store-crash-0.3s": "fail",
    }
    assert "acknowledged writes lost" in cells["store-crash-0.3s"]["message"]
    # the crash is a fault like any other: injected on the target, healed by the restart
    result.stdout.fnmatch_lines(["*fault  crash on store  service=store provider=process*"])
    result.stdout.fnmatch_lines(["*after=0.3 *(healed by restart)*"])


def test_a_crash_cell_passes_when_the_server_syncs_before_it_acknowledges(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORE_DURABLE", "1")
    suite.makepyfile(test_store=SCENARIO)
    result = suite.runpytest_subprocess(
        "-p", "no:cacheprovider", "-k", "crash or baseline", "--chaos-journal", "journal"
    )
    result.assert_outcomes(passed=2)  # the assertion also checks the pid changed


def test_a_crash_of_a_proxy_in_front_of_an_address_is_an_error_with_the_fix(
    suite: pytest.Pytester,
) -> None:
    suite.makepyfile(
        test_store="""
        import pytest

        @pytest.mark.chaos_explore(targets={"store": "service"}, faults=["crash"])
        def test_writes(chaos, store):
            chaos.proxy("store", upstream=store.address)  # the address: no server known
        """
    )
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", "-k", "crash")
    result.assert_outcomes(errors=1)
    text = result.stdout.str()
    for phrase in (
        "cell 'store-crash'",
        "an address, not a chaos_services service",
        "chaos.proxy('store', upstream=<the Service>)",
        "'store': 'tcp'",
    ):
        assert phrase in text, phrase


def test_a_scenario_that_ends_before_the_crash_is_told_so(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        test_store="""
        import pytest

        @pytest.mark.chaos_explore(targets={"store": "service"}, faults=["crash:30s"])
        def test_writes(chaos, store):
            chaos.proxy("store", upstream=store)
        """
    )
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", "-k", "crash")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*cell 'store-crash-30s': the scenario returned *before the crash of 'store' at 30s*"]
    )
    assert "Keep the scenario running past the crash" in result.stdout.str()


EXPERIMENT = """\
apiVersion: pytest-chaos/v1
kind: Experiment
metadata:
  name: store-crash
spec:
  hypothesis: the store answers again within 10 s of a crash
  blast_radius:
    targets: [store]
  uses: [store]
  targets:
    store: {upstream: "{store}"}
  probes:
    connect:
      tcp: store
  steady_state:
    - {probe: connect, calls: 3}
  method:
    - at: 0s
      name: crash the store
      fault: crash:0.2s
      target: store
      for: 1s
  success_criteria:
    - {recovers: {probe: connect, within: 10s}}
"""


def test_a_yaml_experiment_crashes_the_server_behind_its_target(suite: pytest.Pytester) -> None:
    suite.path.joinpath("chaos_store.yaml").write_text(EXPERIMENT)
    result = suite.runpytest_subprocess("-m", "chaos", "-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["*fault  crash on store  service=store provider=process*after=0.2 *(healed by restart)*"]
    )


def test_proxy_crash_heals_itself_by_restart_and_the_safety_timer_cancels_a_pending_one(
    suite: pytest.Pytester,
) -> None:
    suite.makepyfile(
        test_store="""
        import time
        import pytest
        from pytest_chaos import BlastRadius
        from conftest import ask

        @pytest.mark.chaos(blast_radius=["store"])
        def test_crash_and_restart(chaos, store):
            proxy = chaos.proxy("store", upstream=store)
            assert proxy.service is store
            before = store.pid
            fault = proxy.crash(after=0.1)
            deadline = time.monotonic() + 30
            while fault.active and time.monotonic() < deadline:
                time.sleep(0.02)
            assert fault.healed_by == "restart"
            assert store.pid != before and store.state == "running"
            assert ask(proxy.address, "list") == ""  # back on the same address
            notes = [e.name for e in chaos.timeline.events if e.kind == "note"]
            assert "crash" in notes

        @pytest.mark.chaos(blast_radius=BlastRadius(targets=("store",), max_fault_seconds=0.3))
        def test_safety_timer(chaos, store):
            proxy = chaos.proxy("store", upstream=store)
            before = store.pid
            fault = proxy.crash(after=30)
            time.sleep(0.8)
            assert fault.healed_by == "safety_timer"
            assert store.pid == before  # the crash to come was cancelled

        @pytest.mark.chaos(blast_radius=["elsewhere"])
        def test_radius(chaos, store):
            proxy = chaos.proxy("store", upstream=store)
            with pytest.raises(Exception, match="store"):
                proxy.crash()
        """
    )
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", "-rA")
    result.assert_outcomes(passed=3)
