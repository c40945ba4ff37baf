"""``--chaos-reaper``: the run's reaper for external and container servers (a sub-plugin).

The controller (the only process without xdist) starts the reaper in
``pytest_configure`` and hands its address and token to the xdist workers through
``workerinput``. Every process that drives a server connects its `ReaperLink` on first
use (the ``chaos`` fixture passes it to `Chaos` as the observer) and says ``bye`` in
``pytest_unconfigure``, after the end-of-session rollback; the controller then closes
the reaper's stdin and it exits. The embedded backend needs no reaper: its server dies
with the process. If the reaper cannot start, the run goes on without it and the header
says why.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pytest

from pytest_chaos.plugin._session import get_session

if TYPE_CHECKING:
    from pytest_chaos.experiment import ReaperHandle, ReaperLink
    from pytest_chaos.plugin._session import ToxiproxyServer

__all__ = ["observer_for"]

#: backends whose server outlives a killed pytest process
REAPED_BACKENDS = ("external", "container")
#: append what the reaper does to this file (for debugging a CI job)
LOG_ENV = "PYTEST_CHAOS_REAPER_LOG"
_VALUES = ("on", "off")


class ReaperPlugin:
    """The reaper's state in one pytest process (registered as ``chaos-reaper``)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.handle: ReaperHandle | None = None
        self.link: ReaperLink | None = None
        #: (address, token) of the run's reaper, in the controller and in the workers
        self.address: tuple[str, str] | None = None
        #: the header's word on the reaper
        self.status = "off"

    def start(self) -> None:
        """In the controller: start the run's reaper, or say why not."""
        from pytest_chaos.experiment import start_reaper

        try:
            handle = start_reaper(get_session(self.config).run_id, log=os.environ.get(LOG_ENV))
        except Exception as exc:
            self.status = (
                f"NOT RUNNING ({exc}): a killed pytest process leaves its faults on the "
                "server until a later run sweeps them"
            )
            return
        self.handle = handle
        self.address = (handle.address, handle.token)
        self.status = f"on (pid {handle.pid})"

    def observer(self, server: ToxiproxyServer) -> ReaperLink | None:
        """This process's link to the reaper, made on first use."""
        if self.address is None or server.backend not in REAPED_BACKENDS:
            return None
        if self.link is None:
            from pytest_chaos.experiment import ReaperLink

            address, token = self.address
            self.link = ReaperLink(
                address, token, url=server.url, worker=get_session(self.config).worker
            )
        return self.link

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """Tell each xdist worker where the reaper listens."""
        if self.address is not None:
            node.workerinput["chaos_reaper"] = list(self.address)

    def pytest_report_header(self, config: pytest.Config) -> str:
        """``chaos: reaper on (pid N)``, or why it does not run."""
        return f"chaos: reaper {self.status}"

    def close(self) -> None:
        """Say bye (nothing of this process is left to heal); stop the reaper we started."""
        if self.link is not None:
            self.link.bye()
        if self.handle is not None:
            self.handle.stop()
            self.handle = None


_KEY = pytest.StashKey[ReaperPlugin]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--chaos-reaper=on|off`` and ini ``chaos_reaper``."""
    parser.getgroup("chaos").addoption(
        "--chaos-reaper",
        dest="chaos_reaper",
        default=None,
        choices=_VALUES,
        help="on (default): with an external or container server, a watchdog process "
        "heals what a killed pytest process or xdist worker left on it; off: none. "
        "ini: chaos_reaper",
    )
    parser.addini("chaos_reaper", "on/off: the reaper for external and container servers")


def _wanted(config: pytest.Config) -> bool:
    value = config.getoption("chaos_reaper", None)
    if value is None:
        raw = str(config.getini("chaos_reaper") or "on").strip().lower()
        if raw not in _VALUES:
            raise pytest.UsageError(
                f"ini chaos_reaper={raw!r} is not on or off; use off to run without the "
                "reaper of external and container servers."
            )
        value = raw
    return bool(value == "on")


@pytest.hookimpl(trylast=True)  # after the main plugin has made the session
def pytest_configure(config: pytest.Config) -> None:
    """Start the reaper (controller) or pick up its address (xdist worker)."""
    wanted = _wanted(config)
    plugin = ReaperPlugin(config)
    config.stash[_KEY] = plugin
    if get_session(config).settings.backend not in REAPED_BACKENDS:
        return
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    if workerinput is not None:
        given = workerinput.get("chaos_reaper")
        if given:
            plugin.address = (str(given[0]), str(given[1]))
    else:
        if wanted:
            plugin.start()
        else:
            plugin.status = "off (--chaos-reaper=off or ini chaos_reaper=off)"
        config.pluginmanager.register(plugin, "chaos-reaper")


def pytest_unconfigure(config: pytest.Config) -> None:
    """Say bye and stop the reaper, after the end-of-session rollback."""
    plugin = config.stash.get(_KEY, None)
    if plugin is not None:
        plugin.close()


def observer_for(config: pytest.Config, server: ToxiproxyServer) -> ReaperLink | None:
    """The `Chaos` observer of this process: its link to the run's reaper, if any."""
    plugin = config.stash.get(_KEY, None)
    return plugin.observer(server) if plugin is not None else None
