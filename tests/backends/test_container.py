"""The container backend: Toxiproxy in a container, driven like any other backend.

The image comes from the settings (offline CI: pytest-chaos's own proxy image built
from docker/proxy; with a registry: the public Toxiproxy image).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from pytest_chaos.backends import BackendOptions, get_backend

CONFORMANCE = Path(__file__).resolve().parent.parent / "conformance"


def test_the_container_backend_serves_the_api_and_leaves_nothing(docker_client: Any) -> None:
    from pytest_chaos.services._docker import LABEL_RUN

    backend = get_backend("container")(BackendOptions(run_id="cbtest", worker="gw-test"))
    backend.start()
    try:
        assert backend.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{backend.url}/version", timeout=10) as response:
            assert "version" in json.loads(response.read())
        assert "running" in repr(backend)
        running = docker_client.containers.list(filters={"label": f"{LABEL_RUN}=cbtest"})
        assert len(running) == 1
    finally:
        backend.stop()
    assert docker_client.containers.list(all=True, filters={"label": f"{LABEL_RUN}=cbtest"}) == []
    backend.stop()  # idempotent


def test_the_conformance_suite_passes_against_the_container_backend(docker_client: Any) -> None:
    from pytest_chaos.backends.container import start_container_backend

    url, stop = start_container_backend(run_id="conformance")
    try:
        env = {
            **os.environ,
            "CHAOS_CONFORMANCE_URL": url,
            # The server is this test's own: resetting it touches nobody else.
            "CHAOS_CONFORMANCE_SERVER_WIDE": "1",
        }
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                str(CONFORMANCE),
                "-q",
                "-p",
                "no:cacheprovider",
                "-p",
                "no:randomly",
                "-o",
                "addopts=",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            cwd=CONFORMANCE.parent.parent,
        )
    finally:
        stop()
    tail = proc.stdout[-3000:] + proc.stderr[-2000:]
    assert proc.returncode == 0, tail
    assert " passed" in proc.stdout and " failed" not in proc.stdout, tail


def test_chaos_backend_container_runs_a_chaos_test(
    pytester: pytest.Pytester, docker_client: Any
) -> None:
    pytester.makepyfile(
        """
        import socket, time
        import pytest

        @pytest.mark.chaos(blast_radius=["cache"])
        def test_latency_through_the_container(chaos, chaos_services, toxiproxy):
            svc = chaos_services.redis("cache")
            proxy = chaos.proxy("cache", upstream=svc.address)
            with socket.create_connection((proxy.host, proxy.port), timeout=10) as s:
                s.sendall(b"PING\\r\\n")
                assert s.recv(16).startswith(b"+PONG")
                with proxy.latency(400):
                    started = time.monotonic()
                    s.sendall(b"PING\\r\\n")
                    assert s.recv(16).startswith(b"+PONG")
                    assert time.monotonic() - started >= 0.35
            print("BACKEND", toxiproxy.backend)
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-s", "--chaos-backend=container"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*BACKEND*container*"])


def test_a_port_lost_to_another_process_is_retried(
    docker_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from pytest_chaos.services import _local

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    busy = taken.getsockname()[1]
    real_free_port = _local.free_port
    ports = iter([busy])
    monkeypatch.setattr(_local, "free_port", lambda: next(ports, None) or real_free_port())
    backend = get_backend("container")(BackendOptions(run_id="cbretry", worker="gw-test"))
    try:
        backend.start()
        assert backend.url.startswith("http://127.0.0.1:")
        assert not backend.url.endswith(f":{busy}")
    finally:
        backend.stop()
        taken.close()


def test_a_missing_toxiproxy_image_is_a_clear_error(
    pytester: pytest.Pytester, docker_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_CHAOS_TOXIPROXY_IMAGE", "pytest-chaos/no-such-image:0")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.chaos(blast_radius=["x"])
        def test_needs_the_server(chaos):
            chaos.proxy("x", upstream="127.0.0.1:9")
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--chaos-backend=container")
    assert result.ret != 0
    result.stdout.fnmatch_lines(
        ["*'pytest-chaos/no-such-image:0' is not present locally and could not be pulled*"]
    )
