"""Run-wide state of pytest-chaos: settings, seed, run id and the lazily started server.

Lives on ``config.stash``. Workers of pytest-xdist receive the seed and run id from the
controller through ``workerinput``, so every worker replays the same run and names its
proxies under the same run id.
"""

from __future__ import annotations

import ipaddress
import os
import random
import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from pytest_chaos.experiment import SessionRollback, new_run_id

if TYPE_CHECKING:
    from pytest_chaos.backends import Backend
    from pytest_chaos.client import ToxiproxyClient

__all__ = ["BACKENDS", "ChaosSession", "ToxiproxyServer", "get_session", "resolve_settings"]

BACKENDS = ("embedded", "external", "container")
STRICT_ENV = "PYTEST_CHAOS_STRICT"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")
SESSION_KEY = pytest.StashKey["ChaosSession"]()
_MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class Settings:
    """The resolved options: backend name, server URL (external), seed, strict gate."""

    backend: str
    url: str | None
    seed: int
    #: --chaos-strict: an experiment that could not run, or a run with none, fails
    strict: bool = False
    #: --chaos-time-scale: multiplies the step times of every schedule
    time_scale: float = 1.0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _registered(name: str) -> bool:
    # a plugin may register its own backend (pytest_chaos.backends.register_backend)
    from pytest_chaos.backends import _FACTORIES

    return name in _FACTORIES


def _pick(config: pytest.Config, option: str, ini: str) -> tuple[Any, str]:
    value = config.getoption(option, None)
    if value is not None:
        return value, f"--{option.replace('_', '-')}"
    raw = config.getini(ini)
    if raw not in (None, ""):
        return str(raw).strip(), f"ini {ini}"
    return None, ""


def _strict(config: pytest.Config, environ: dict[str, str] | None = None) -> bool:
    # strongest first: the option, the environment (CI exports it for a whole job),
    # the ini key; so PYTEST_CHAOS_STRICT=0 switches off an ini file's chaos_strict
    if config.getoption("chaos_strict", False):
        return True
    env = os.environ if environ is None else environ
    if env.get(STRICT_ENV) is not None:
        raw, where = env[STRICT_ENV], STRICT_ENV
    else:
        raw, where = str(config.getini("chaos_strict") or ""), "ini chaos_strict"
    lowered = raw.strip().lower()
    if lowered in _TRUE or lowered in _FALSE:
        return lowered in _TRUE
    raise pytest.UsageError(
        f"{where}={raw!r} is not a boolean; use one of {'/'.join(_TRUE)} to make an "
        f"experiment that cannot run an error, or {'/'.join(_FALSE[:-1])} to let it skip."
    )


def resolve_settings(config: pytest.Config) -> Settings:
    """Read options and ini keys; raise :class:`pytest.UsageError` on a bad value."""
    backend, backend_from = _pick(config, "chaos_backend", "chaos_backend")
    url, url_from = _pick(config, "toxiproxy_url", "chaos_toxiproxy_url")
    seed_raw, seed_from = _pick(config, "chaos_seed", "chaos_seed")
    # a backend asked for on the command line beats a URL kept in the ini file
    if url_from.startswith("ini") and backend_from.startswith("--") and backend != "external":
        url = None

    if backend is not None and backend not in BACKENDS and not _registered(backend):
        raise pytest.UsageError(
            f"{backend_from}={backend!r} is not a chaos backend; use one of "
            f"{', '.join(BACKENDS)} (embedded needs nothing installed)."
        )
    if url is not None:
        parsed = urllib.parse.urlsplit(url)
        try:
            port_ok = parsed.port is not None
        except ValueError:
            port_ok = False
        if parsed.scheme != "http" or not parsed.hostname or not port_ok:
            raise pytest.UsageError(
                f"{url_from}={url!r} is not a Toxiproxy API URL; it must be "
                "http://HOST:PORT, e.g. --toxiproxy-url=http://127.0.0.1:8474."
            )
        if backend not in (None, "external"):
            raise pytest.UsageError(
                f"{url_from}={url!r} selects the external backend but {backend_from}="
                f"{backend!r} asks for another; drop one of the two."
            )
        backend = "external"
    if backend == "external" and url is None:
        raise pytest.UsageError(
            f"{backend_from}=external needs the server's URL; add "
            "--toxiproxy-url=http://HOST:8474 (ini: chaos_toxiproxy_url)."
        )

    if seed_raw is None:
        seed = random.SystemRandom().randrange(_MAX_SEED)
    else:
        try:
            seed = int(str(seed_raw), 10)
        except ValueError:
            seed = -1
        if not 0 <= seed <= _MAX_SEED:
            raise pytest.UsageError(
                f"{seed_from}={seed_raw!r} is not a seed; use a whole number from 0 to "
                f"{_MAX_SEED}, e.g. the one printed as 'chaos: ... seed=N' by the run to replay."
            )
    return Settings(
        backend=backend or "embedded",
        url=url,
        seed=seed,
        strict=_strict(config),
        time_scale=_time_scale(config),
    )


def _time_scale(config: pytest.Config) -> float:
    raw, where = _pick(config, "chaos_time_scale", "chaos_time_scale")
    if raw is None:
        return 1.0
    try:
        scale = float(str(raw))
    except ValueError:
        scale = -1.0
    if not 0 < scale < float("inf"):
        raise pytest.UsageError(
            f"{where}={raw!r} is not a time scale; use a number > 0 that multiplies the "
            "step times of schedules and game days, e.g. --chaos-time-scale=0.01 to run a "
            "15-minute step at 9 s."
        )
    return scale


@dataclass(eq=False)
class ToxiproxyServer:
    """The server this worker's tests drive (the ``toxiproxy`` fixture).

    ``url`` is the API root, ``client`` a :class:`~pytest_chaos.client.ToxiproxyClient`
    for it, ``backend`` the backend name (``"embedded"``, ``"external"``,
    ``"container"``), ``version`` the Toxiproxy API version it reports.
    """

    url: str
    client: ToxiproxyClient
    backend: str
    version: str
    server: Backend = field(repr=False)
    #: where proxies listen on the server's host, and the name clients reach them by
    listen_host: str = "127.0.0.1"
    public_host: str | None = None

    def __repr__(self) -> str:
        return f"<ToxiproxyServer {self.backend} {self.url} version={self.version}>"


class ChaosSession:
    """Everything pytest-chaos knows about the run in this process."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
        if workerinput is not None:
            self.worker = str(workerinput.get("workerid", "gw"))
            self.seed = int(workerinput.get("chaos_seed", settings.seed))
            self.run_id = str(workerinput.get("chaos_run_id") or new_run_id())
        else:
            # not os.environ: a run started from inside an xdist worker inherits its id
            self.worker = "master"
            self.seed = settings.seed
            self.run_id = new_run_id()
        self.session_rollback = SessionRollback()
        self._server: ToxiproxyServer | None = None
        self._failure: Exception | None = None

    @property
    def started(self) -> bool:
        """Whether the server was needed (and started) in this process."""
        return self._server is not None

    def server(self) -> ToxiproxyServer:
        """The server, started on first use.

        If it cannot start, every later test gets the same error at once instead of
        waiting for its own connection timeout.
        """
        if self._server is None:
            if self._failure is not None:
                raise self._failure
            try:
                self._server = self._start()
            except Exception as exc:
                self._failure = exc
                raise
        return self._server

    def _start(self) -> ToxiproxyServer:
        from pytest_chaos.backends import BackendOptions, get_backend
        from pytest_chaos.client import ToxiproxyClient

        name = self.settings.backend
        if name == "embedded":
            # extra toxic types must be known before the first proxy is created
            from pytest_chaos.toxics import register_toxic

            self.config.hook.pytest_chaos_register_toxics(
                register=register_toxic, config=self.config
            )
        options = BackendOptions(
            url=self.settings.url,
            seed=self.seed,
            run_id=self.run_id,
            worker=self.worker,
            config=self.config,
        )
        backend = get_backend(name)(options)
        backend.start()
        client = ToxiproxyClient(backend.url, embedded=backend.embedded)
        try:
            version = str(client.version().get("version", "?"))
        except Exception:
            client.close()
            backend.stop()
            raise
        host = urllib.parse.urlsplit(backend.url).hostname or "127.0.0.1"
        if _is_loopback(host):
            return ToxiproxyServer(backend.url, client, name, version, backend)
        # a remote server (staging): proxies must listen where the tests can reach them
        return ToxiproxyServer(backend.url, client, name, version, backend, "0.0.0.0", host)

    def shutdown(self) -> list[tuple[str, str, BaseException]]:
        """Drain the end-of-session rollback, then stop the server; return its failures."""
        failures = self.session_rollback.drain()
        server, self._server = self._server, None
        if server is not None:
            server.client.close()
            server.server.stop()
        return failures

    def header(self) -> str:
        """The line shown in the pytest header."""
        line = f"chaos: backend={self.settings.backend} seed={self.seed}"
        if self.settings.url:
            line += f" url={self.settings.url}"
        if self.settings.strict:
            line += " strict"
        if self.settings.time_scale != 1.0:
            line += f" time_scale={self.settings.time_scale:g}"
        return line

    def __repr__(self) -> str:
        return (
            f"<ChaosSession backend={self.settings.backend} seed={self.seed} "
            f"run={self.run_id} worker={self.worker} started={self.started}>"
        )


def get_session(config: pytest.Config) -> ChaosSession:
    """The run state created in ``pytest_configure``."""
    return config.stash[SESSION_KEY]
