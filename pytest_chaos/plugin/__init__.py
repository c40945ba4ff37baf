"""The pytest11 entry point of pytest-chaos.

Registers the command-line options, ini keys, the ``chaos`` marker and the hook
specifications, and names the sub-plugins that provide fixtures and reports. It imports
nothing heavy: the proxy server, Docker and Allure load only when a test needs them.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from pytest_chaos.errors import ConfigurationError
from pytest_chaos.plugin._marker import MARKER_HELP, spec_for
from pytest_chaos.plugin._session import BACKENDS, SESSION_KEY, ChaosSession, resolve_settings
from pytest_chaos.plugin._session import get_session as get_session  # for pytest_chaos.explore
from pytest_chaos.plugin._signals import SignalsAsInterrupt

_SIGNALS_KEY = pytest.StashKey[SignalsAsInterrupt]()

pytest_plugins = [
    "pytest_chaos.plugin._fixtures",
    "pytest_chaos.plugin._reaper",
    "pytest_chaos.plugin._hypothesis",
    "pytest_chaos.experiments._collector",
    "pytest_chaos.explore._plugin",
    "pytest_chaos.services._plugin",
    "pytest_chaos.reporting._plugin",
]


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Register the ``pytest_chaos_*`` hook specifications."""
    from pytest_chaos.plugin import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    """The options and ini keys of pytest-chaos."""
    group = parser.getgroup("chaos", "chaos engineering (pytest-chaos)")
    group.addoption(
        "--chaos-backend",
        dest="chaos_backend",
        default=None,
        metavar="NAME",
        help=f"fault proxy backend: {', '.join(BACKENDS)} (default: embedded, or "
        "external when --toxiproxy-url is given). ini: chaos_backend",
    )
    group.addoption(
        "--toxiproxy-url",
        dest="toxiproxy_url",
        default=None,
        metavar="URL",
        help="use the existing Toxiproxy server at URL (http://HOST:PORT); implies "
        "--chaos-backend=external. ini: chaos_toxiproxy_url",
    )
    group.addoption(
        "--chaos-seed",
        dest="chaos_seed",
        default=None,
        metavar="N",
        help="seed of every random choice (default: random, shown in the header and with "
        "every failure). ini: chaos_seed",
    )
    group.addoption(
        "--chaos-strict",
        dest="chaos_strict",
        action="store_true",
        default=False,
        help="gate mode: a chaos test skipped because its infrastructure is missing (no "
        "Docker, no server binary, no proxy extension) is an error, and a run in which no "
        "chaos test ran fails. env PYTEST_CHAOS_STRICT=1, ini: chaos_strict",
    )
    group.addoption(
        "--chaos-time-scale",
        dest="chaos_time_scale",
        default=None,
        metavar="F",
        help="multiply the step times of every chaos.schedule and YAML game day by F "
        "(0.01 runs a 15-minute step at 9 s; default 1). ini: chaos_time_scale",
    )
    group.addoption(
        "--chaos-experiment-files",
        dest="chaos_experiment_files",
        default=None,
        metavar="GLOBS",
        help="space-separated globs of YAML experiment files to collect (default: "
        "chaos_*.yaml chaos_*.yml). ini: chaos_experiment_files",
    )
    parser.addini("chaos_backend", "fault proxy backend: embedded, external or container")
    parser.addini("chaos_toxiproxy_url", "URL of an existing Toxiproxy server (external)")
    parser.addini("chaos_seed", "seed of every random choice (default: random)")
    parser.addini("chaos_time_scale", "multiply schedule step times by this factor (default 1)")
    parser.addini(
        "chaos_experiment_files",
        "globs of YAML experiment files (default: chaos_*.yaml chaos_*.yml)",
        type="args",
        default=["chaos_*.yaml", "chaos_*.yml"],
    )
    # a string, not type="bool": a bad value must be a usage error naming it
    parser.addini(
        "chaos_strict",
        "bool (1/true/yes/on, 0/false/no/off): fail on chaos tests that cannot run and on "
        "runs where none ran",
        default="",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker and resolve the settings (bad values stop the run here)."""
    config.addinivalue_line("markers", MARKER_HELP)
    settings = resolve_settings(config)
    config.stash[SESSION_KEY] = ChaosSession(config, settings)
    if settings.strict:
        from pytest_chaos.plugin._strict import StrictGate

        config.pluginmanager.register(StrictGate(config), "chaos-strict")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistSeed(config), "chaos-xdist")
    signals = SignalsAsInterrupt()
    signals.install()
    config.stash[_SIGNALS_KEY] = signals


def pytest_unconfigure(config: pytest.Config) -> None:
    """Give SIGTERM and SIGHUP their previous handlers back."""
    signals = config.stash.get(_SIGNALS_KEY, None)
    if signals is not None:
        signals.uninstall()


class _XdistSeed:
    """Hands the controller's seed and run id to every xdist worker."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_configure_node(self, node: Any) -> None:
        session = self.config.stash[SESSION_KEY]
        node.workerinput["chaos_seed"] = session.seed
        node.workerinput["chaos_run_id"] = session.run_id


def pytest_report_header(config: pytest.Config) -> str:
    """``chaos: backend=embedded seed=N``: enough to replay the run."""
    return config.stash[SESSION_KEY].header()


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """Check every collected test's chaos marker; a bad one is a collection error."""
    report = yield
    errors = []
    for node in report.result or ():
        if isinstance(node, pytest.Item):
            try:
                spec_for(node)
            except ConfigurationError as exc:
                errors.append(str(exc))
    if errors:
        report.outcome = "failed"
        report.longrepr = "\n".join(errors)
        report.result = []
    return report


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """The end-of-session rollback: undo what no teardown could (an interrupted run, a
    SIGTERM), then stop the server."""
    state = session.config.stash.get(SESSION_KEY, None)
    if state is None:
        return
    failures = state.shutdown()
    if failures:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = [f"{owner}: undoing {label} failed: {exc}" for owner, label, exc in failures]
        if reporter is not None:
            reporter.write_line(
                "chaos: the end-of-session rollback could not undo:\n  " + "\n  ".join(lines)
            )
