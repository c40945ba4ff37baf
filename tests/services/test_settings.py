"""ServiceSettings: option > environment > ini > default, and clear errors."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_chaos.services import ServiceSettings


class FakeConfig:
    """Just the two lookups ServiceSettings.from_config makes."""

    def __init__(self, options: dict[str, Any] | None = None, ini: dict[str, Any] | None = None):
        self.options = options or {}
        self.ini = ini or {}

    def getoption(self, name: str, default: Any = None) -> Any:
        return self.options.get(name, default)

    def getini(self, name: str) -> Any:
        return self.ini.get(name, "")


def settings(options=None, ini=None, env=None) -> ServiceSettings:
    return ServiceSettings.from_config(FakeConfig(options, ini), environ=env or {})  # type: ignore[arg-type]


def test_defaults_are_the_public_images_and_auto() -> None:
    s = settings()
    assert s.provider == "auto"
    assert not s.require_docker
    assert (s.redis_image, s.postgres_image, s.toxiproxy_image) == (
        "redis:7-alpine",
        "postgres:16-alpine",
        "ghcr.io/shopify/toxiproxy:2.12.0",
    )


def test_environment_overrides_ini_for_images() -> None:
    s = settings(
        ini={"chaos_redis_image": "ini/redis:1", "chaos_postgres_image": "ini/pg:1"},
        env={"PYTEST_CHAOS_REDIS_IMAGE": "env/redis:2"},
    )
    assert s.redis_image == "env/redis:2"
    assert s.postgres_image == "ini/pg:1"


def test_option_overrides_environment_for_the_provider() -> None:
    env = {"PYTEST_CHAOS_SERVICES": "docker"}
    assert settings(env=env).provider == "docker"
    assert settings(options={"chaos_services": "local"}, env=env).provider == "local"
    assert settings(ini={"chaos_services": "local"}).provider == "local"


@pytest.mark.parametrize(
    ("options", "ini", "env", "expected"),
    [
        ({}, {}, {}, False),
        ({"chaos_require_docker": True}, {}, {}, True),
        ({}, {"chaos_require_docker": True}, {}, True),
        ({}, {}, {"PYTEST_CHAOS_REQUIRE_DOCKER": "1"}, True),
        ({}, {}, {"PYTEST_CHAOS_REQUIRE_DOCKER": "no"}, False),
    ],
)
def test_docker_can_be_demanded_three_ways(options, ini, env, expected) -> None:
    s = settings(options, ini, env)
    assert s.require_docker is expected
    assert s.docker_demanded is expected


def test_forcing_docker_demands_it() -> None:
    s = ServiceSettings(provider="docker")
    assert s.docker_demanded and s.docker_allowed
    assert not ServiceSettings(provider="local").docker_allowed


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"provider": "k8s"}, r"provider 'k8s' is unknown.*auto, docker, local"),
        ({"provider": "local", "require_docker": True}, r"contradicts a demand for Docker"),
        ({"redis_image": ""}, r"image name '' for redis_image"),
        ({"postgres_image": "postgres 16"}, r"contains whitespace"),
    ],
)
def test_bad_settings_name_the_value_and_the_fix(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        ServiceSettings(**kwargs)


def test_a_bad_boolean_in_the_environment_is_named() -> None:
    with pytest.raises(ValueError, match=r"PYTEST_CHAOS_REQUIRE_DOCKER='maybe' is not a boolean"):
        settings(env={"PYTEST_CHAOS_REQUIRE_DOCKER": "maybe"})


def test_from_environment_outside_pytest() -> None:
    s = ServiceSettings.from_environment(
        {"PYTEST_CHAOS_TOXIPROXY_IMAGE": "local/proxy:1", "PYTEST_CHAOS_REQUIRE_DOCKER": "true"}
    )
    assert s.toxiproxy_image == "local/proxy:1"
    assert s.require_docker
    assert s.redis_image == "redis:7-alpine"


def test_an_explicit_local_provider_beats_a_machine_wide_docker_demand() -> None:
    env = {"PYTEST_CHAOS_REQUIRE_DOCKER": "1"}
    s = settings(options={"chaos_services": "local"}, env=env)
    assert s.provider == "local" and not s.require_docker
    with pytest.raises(ValueError, match="contradicts"):
        settings(options={"chaos_services": "local", "chaos_require_docker": True})
