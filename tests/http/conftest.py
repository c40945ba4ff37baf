"""Real processes for the HTTP toxic tests: an HTTP/1.1 upstream that counts requests,
an EmbeddedServer, and a redis-server, each one per module (per xdist worker)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from _httpfixtures import Admin, Upstream, free_port, stop, wait_for_file

from pytest_chaos.proxy import EmbeddedServer

_HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    portfile = tmp_path_factory.mktemp("upstream") / "port"
    proc = subprocess.Popen([sys.executable, str(_HERE / "_upstream.py"), str(portfile)])
    try:
        port = int(wait_for_file(portfile, proc, "the HTTP upstream"))
        with requests.Session() as session:
            yield Upstream(port, session)
    finally:
        stop(proc)


@pytest.fixture(autouse=True)
def _fresh_log(request: pytest.FixtureRequest) -> None:
    if "upstream" in request.fixturenames:
        request.getfixturevalue("upstream").reset()


@pytest.fixture(scope="module")
def embedded() -> Iterator[EmbeddedServer]:
    with EmbeddedServer(seed=1234) as server:
        yield server


@pytest.fixture
def admin(embedded: EmbeddedServer) -> Iterator[Admin]:
    with requests.Session() as session:
        api = Admin(embedded, session)
        yield api
        for name in api.created:
            session.delete(f"{embedded.url}/proxies/{name}", timeout=10)


@pytest.fixture(scope="module")
def redis_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.path.exists(binary):
        pytest.fail("redis-server is not installed (apt-get install redis-server; CI does)")
    workdir = tmp_path_factory.mktemp("redis")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("redis-server did not start")
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        stop(proc)
