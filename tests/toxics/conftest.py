"""Real processes for the HTTP toxic tests: an HTTP/1.1 upstream that counts requests,
and an EmbeddedServer, each one per module (per xdist worker); the real Redis is
tests/conftest.py's ``redis_address``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_chaos.proxy import EmbeddedServer
from pytest_chaos.toxics._http_framing import PARSERS

from ._httpfixtures import Admin, Upstream, stop, wait_for_file

pytest.importorskip("requests")
import requests

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


@pytest.fixture(scope="module", params=sorted(PARSERS))
def http_parser(request: pytest.FixtureRequest) -> Iterator[str]:
    """Runs a module's tests once per HTTP parser backend (``usefixtures``): HTTP
    sessions read ``PYTEST_CHAOS_HTTP_PARSER`` when they start."""
    old = os.environ.get("PYTEST_CHAOS_HTTP_PARSER")
    os.environ["PYTEST_CHAOS_HTTP_PARSER"] = request.param
    try:
        yield request.param
    finally:
        if old is None:
            os.environ.pop("PYTEST_CHAOS_HTTP_PARSER", None)
        else:
            os.environ["PYTEST_CHAOS_HTTP_PARSER"] = old


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
