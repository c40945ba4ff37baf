"""Nothing is left behind: not after a failing test, an interrupted run, or a dead run.

The inner runs are real pytest subprocesses using the ``chaos_services`` fixture on
Docker; afterwards the engine is asked for anything carrying their run id.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from typing import Any

import pytest

INNER = """
import json, os
import pytest

def _record(chaos_services):
    with open(os.environ["CHAOS_TEST_RUN_FILE"], "w") as fh:
        json.dump({"run": chaos_services.docker.run_id,
                   "provider": chaos_services.provider}, fh)

def test_fails_with_services_running(chaos_services):
    chaos_services.redis()
    chaos_services.postgres()
    _record(chaos_services)
    assert False, "this test fails on purpose"

def test_interrupted_with_services_running(chaos_services):
    chaos_services.redis()
    _record(chaos_services)
    raise KeyboardInterrupt
"""


def _left_by(client: Any, run_id: str) -> list[str]:
    from pytest_chaos.services._docker import LABEL_RUN

    label = {"label": f"{LABEL_RUN}={run_id}"}
    containers = [c.name for c in client.containers.list(all=True, filters=label)]
    networks = [n.name for n in client.networks.list(filters=label)]
    return containers + networks


@pytest.mark.parametrize(
    ("test_name", "outcome"),
    [
        ("test_fails_with_services_running", {"failed": 1}),
        ("test_interrupted_with_services_running", {}),
    ],
)
def test_a_run_leaves_no_container_or_network(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    docker_client: Any,
    test_name: str,
    outcome: dict[str, int],
) -> None:
    pytester.makepyfile(test_inner=INNER)
    run_file = pytester.path / "run.json"
    monkeypatch.setenv("CHAOS_TEST_RUN_FILE", str(run_file))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--chaos-services=docker", f"test_inner.py::{test_name}"
    )
    if outcome:
        result.assert_outcomes(**outcome)
    else:
        assert result.ret == pytest.ExitCode.INTERRUPTED
        result.stdout.fnmatch_lines(["*KeyboardInterrupt*"])
    recorded = json.loads(run_file.read_text())
    assert recorded["provider"] == "docker"
    assert _left_by(docker_client, recorded["run"]) == []


def test_leftovers_of_a_dead_run_are_removed_at_the_next_start(docker_client: Any) -> None:
    from pytest_chaos.services import ServiceSettings
    from pytest_chaos.services._docker import LABEL_OWNER, LABEL_RUN, DockerProvider, owner_token

    image = ServiceSettings.from_environment().redis_image
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead_owner = owner_token().split(":")[0] + f":{gone.pid}:1"
    dead = {LABEL_RUN: "deadrun00001", LABEL_OWNER: dead_owner}
    alive = {LABEL_RUN: "aliverun0001", LABEL_OWNER: owner_token()}
    client = docker_client
    made = [
        client.containers.create(image, labels=dead, name=f"pytest-chaos-dead-{gone.pid}"),
        client.containers.create(image, labels=alive, name=f"pytest-chaos-alive-{gone.pid}"),
    ]
    net = client.networks.create(f"pytest-chaos-dead-{gone.pid}", labels=dead)
    try:
        provider = DockerProvider()
        try:
            # Both are gone once a provider has started. Another xdist worker
            # starting its own provider at the same moment may have been the
            # one to remove some of them, so this provider reports a subset.
            assert _left_by(client, "deadrun00001") == []
            name = f"pytest-chaos-dead-{gone.pid}"
            ours = {f"container {name}", f"network {name}"}
            reported = {r for r in provider.removed_leftovers if r.endswith(f"-dead-{gone.pid}")}
            assert reported <= ours
            # A live process's containers are never touched.
            assert _left_by(client, "aliverun0001") == [f"pytest-chaos-alive-{gone.pid}"]
        finally:
            assert provider.close() == []
    finally:
        import docker.errors

        for leftover in [*made, net]:
            with contextlib.suppress(docker.errors.NotFound):
                leftover.remove()


ABANDON = """
import os, sys
from pytest_chaos.services import ChaosServices, ServiceSettings
services = ChaosServices(ServiceSettings(provider="local"))
svc = services.redis()
print(svc._runtime._proc.pid, flush=True)
os._exit(0)  # like a pytest killed with SIGKILL: no teardown at all
"""


def test_local_servers_of_a_killed_run_are_removed_at_the_next_start(
    local_binaries: None,
) -> None:
    import os
    import sys
    import time

    from pytest_chaos.services import ChaosServices, ServiceSettings

    out = subprocess.run(
        [sys.executable, "-c", ABANDON], capture_output=True, text=True, timeout=60, check=True
    )
    orphan = int(out.stdout.split()[0])
    os.kill(orphan, 0)  # still serving, owned by nobody alive
    services = ChaosServices(ServiceSettings(provider="local"))
    try:
        services.redis()
        assert f"process {orphan}" in services.removed_leftovers
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(orphan, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"the abandoned redis-server {orphan} is still running")
    finally:
        assert services.close() == []
