"""The ``chaos_services`` fixture as users meet it: provider choice, skip or fail, options.

Each case is a pytest subprocess, because the provider is decided from options and the
environment once per session.
"""

from __future__ import annotations

import pytest

USES_REDIS = """
def test_redis(chaos_services):
    svc = chaos_services.redis()
    print("PROVIDER", chaos_services.provider, svc.url)
    import socket
    with socket.create_connection((svc.host, svc.port), timeout=5) as s:
        s.sendall(b"PING\\r\\n")
        assert s.recv(16).startswith(b"+PONG")
"""

USES_CONTAINER = """
def test_container(chaos_services):
    chaos_services.container("anything:latest", 80)
"""

NO_DOCKER = "unix:///nonexistent/docker.sock"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The CI settings of the outer run must not leak into the inner runs."""
    for name in ("PYTEST_CHAOS_REQUIRE_DOCKER", "PYTEST_CHAOS_SERVICES"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_local_provider_serves_redis(
    pytester: pytest.Pytester, clean_env, local_binaries_path: str
) -> None:
    clean_env.setenv("PATH", local_binaries_path)
    pytester.makepyfile(USES_REDIS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", "--chaos-services=local")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "chaos services: provider=local; redis * (local), postgres * (local); "
            "images redis=* postgres=* toxiproxy=*",
            "*PROVIDER local redis://127.0.0.1:*",
        ]
    )


def test_auto_falls_back_to_local_binaries_without_docker(
    pytester: pytest.Pytester, clean_env
) -> None:
    clean_env.setenv("DOCKER_HOST", NO_DOCKER)
    pytester.makepyfile(USES_REDIS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*PROVIDER local *"])


@pytest.mark.parametrize(
    "demand",
    [["--chaos-require-docker"], ["--chaos-services=docker"], ["env"]],
    ids=["option", "forced-provider", "env"],
)
def test_demanded_docker_fails_instead_of_skipping(
    pytester: pytest.Pytester, clean_env, demand: list[str]
) -> None:
    clean_env.setenv("DOCKER_HOST", NO_DOCKER)
    if demand == ["env"]:
        clean_env.setenv("PYTEST_CHAOS_REQUIRE_DOCKER", "1")
        demand = []
    pytester.makepyfile(USES_REDIS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *demand)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*ServiceError: Docker is demanded*Start the engine*"])


def test_a_container_without_docker_is_skipped_with_the_reason(
    pytester: pytest.Pytester, clean_env
) -> None:
    clean_env.setenv("DOCKER_HOST", NO_DOCKER)
    pytester.makepyfile(USES_CONTAINER)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*needs Docker, but no Docker engine answers*"])


def test_bad_settings_are_usage_errors(pytester: pytest.Pytester, clean_env) -> None:
    pytester.makepyfile(USES_REDIS)
    clean_env.setenv("PYTEST_CHAOS_SERVICES", "kubernetes")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*services provider 'kubernetes' is unknown*auto, docker, local, bundled*"]
    )
    clean_env.delenv("PYTEST_CHAOS_SERVICES")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--chaos-require-docker", "--chaos-services=local"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--chaos-services=local contradicts a demand for Docker*"])


def test_teardown_heals_container_faults_the_test_left(
    pytester: pytest.Pytester, clean_env
) -> None:
    pytester.makepyfile(
        """
        import pytest
        SEEN = {}

        @pytest.mark.chaos(blast_radius=["cache", "store"])
        def test_leaves_faults_active(chaos, chaos_services):
            SEEN["cache"] = chaos_services.redis("cache")
            SEEN["store"] = chaos_services.redis("store")
            chaos.pause(SEEN["cache"])
            chaos.kill(SEEN["store"])
            assert SEEN["cache"].state == "paused"
            assert SEEN["store"].state == "stopped"

        def test_finds_them_healed():
            assert SEEN["cache"].state == "running"
            assert SEEN["store"].state == "running"
        """
    )
    clean_env.setenv("DOCKER_HOST", NO_DOCKER)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
