"""EmbeddedServer: the Toxiproxy-compatible server run from Python.

The server (admin API and data path) lives on its own asyncio event loop in a daemon
thread, so a test can drive it with any blocking Toxiproxy client. ``start()`` returns
once the API has answered a request; ``stop()`` closes every listener and connection
and joins the thread.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import http.client
import ipaddress
import json
import os
import sys
import threading
import warnings
import weakref
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from pytest_chaos.errors import ConfigurationError

if TYPE_CHECKING:
    from pytest_chaos.proxy._api import AdminApi
    from pytest_chaos.proxy._core import ProxyManager
    from pytest_chaos.proxy._http import HttpServer

__all__ = ["EmbeddedServer", "ServerCore", "is_loopback", "load_config"]

ConfigSource = str | os.PathLike[str] | list[dict[str, Any]] | None

_START_TIMEOUT = 30.0

# Servers still running at interpreter exit are stopped by an atexit hook, so that a
# script that forgot stop() still closes its proxies' connections with a FIN instead of
# dying with them half-open in a daemon thread.
_running: weakref.WeakSet[EmbeddedServer] = weakref.WeakSet()


#: The GIL switch interval while an EmbeddedServer runs. The loop thread waking for a
#: due chunk waits for the GIL as long as the switch interval (Python's default 5 ms)
#: when a test's own thread computes: a 100 ms latency toxic was 15 ms late at p50 and
#: 78-105 ms at worst with a CPU-bound thread beside it, 2.1 ms and 11 ms with 0.5 ms
#: (bench/bench_proxy.py --busy-thread, bench/RESULTS.md). CPU-bound threads switch more
#: often meanwhile, which costs them little; the previous value is restored at stop().
SWITCH_INTERVAL = 0.0005


class _SwitchInterval:
    """Lowers ``sys.getswitchinterval()`` while at least one server runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._saved: float | None = None

    def acquire(self) -> None:
        with self._lock:
            self._users += 1
            if self._users == 1:
                current = sys.getswitchinterval()
                if current > SWITCH_INTERVAL:
                    self._saved = current
                    sys.setswitchinterval(SWITCH_INTERVAL)

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._saved is not None:
                # Someone else may have set another value meanwhile: leave theirs.
                if abs(sys.getswitchinterval() - SWITCH_INTERVAL) < 1e-7:
                    sys.setswitchinterval(self._saved)
                self._saved = None


_switch_interval = _SwitchInterval()


@atexit.register
def _stop_all() -> None:
    for server in list(_running):
        with contextlib.suppress(Exception):
            server.stop()


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine (127.0.0.0/8, ::1 or localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def non_loopback_message(host: str) -> str:
    """The warning given when the admin API is told to listen beyond loopback."""
    return (
        f"the embedded Toxiproxy admin API will listen on {host!r}, which is not a "
        "loopback address: anyone who can reach it can create proxies to any address "
        "and fault your services. Use host='127.0.0.1' unless other machines (or "
        "containers) must drive this server."
    )


def load_config(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a populate file (a JSON array of proxies), as toxiproxy-server's ``-config``.

    Raises :class:`ConfigurationError` naming the file and what is wrong with it.
    """
    where = os.fspath(path)
    try:
        text = Path(where).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(
            f"proxy config file {where!r} does not exist; pass the path of a JSON array "
            'of proxies such as [{"name": "redis", "listen": "127.0.0.1:26379", '
            '"upstream": "127.0.0.1:6379"}]'
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(
            f"proxy config file {where!r} cannot be read: {exc}; pass a readable UTF-8 JSON file"
        ) from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigurationError(
            f"proxy config file {where!r} is not valid JSON: {exc}; it must hold a JSON "
            "array of proxies"
        ) from None
    if not isinstance(data, list):
        raise ConfigurationError(
            f"proxy config file {where!r} holds a JSON {type(data).__name__}, not an "
            'array; write it as [{"name": ..., "listen": ..., "upstream": ...}, ...]'
        )
    return data


class ServerCore:
    """The running server on the current event loop: manager, admin API, listener.

    Used by :class:`EmbeddedServer` (in its thread) and by the CLI (on the main
    thread). Create with :meth:`open`, dispose with :meth:`close`.
    """

    def __init__(self, manager: ProxyManager, api: AdminApi, http_server: HttpServer) -> None:
        self.manager = manager
        self.api = api
        self.http = http_server

    def __repr__(self) -> str:
        return f"<ServerCore {self.http!r} {self.api!r}>"

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        *,
        seed: int | None = None,
        config: list[dict[str, Any]] | None = None,
        config_name: str = "config",
    ) -> ServerCore:
        """Create the manager, apply ``config`` (a populate array), bind the API."""
        from pytest_chaos.proxy._api import AdminApi, PopulateError
        from pytest_chaos.proxy._core import ProxyManager
        from pytest_chaos.proxy._http import HttpServer

        manager = ProxyManager(seed=seed)
        api = AdminApi(manager)
        http = HttpServer(api.handle)
        try:
            if config:
                try:
                    await api.populate(config)
                except PopulateError as exc:
                    raise ConfigurationError(
                        f"proxy {config_name} was refused: {exc.message} (status {exc.status}); "
                        "fix that entry of the populate array"
                    ) from None
            await http.start(host, port)
        except BaseException:
            await http.close()
            await manager.close()
            raise
        return cls(manager, api, http)

    async def close(self) -> None:
        """Close the API first (no new changes), then every proxy and connection."""
        await self.http.close()
        await self.manager.close()


class EmbeddedServer:
    """A Toxiproxy-compatible server (admin API + proxies) in a background thread.

    ::

        with EmbeddedServer() as server:
            requests.post(f"{server.url}/proxies", json={...})

    ``host``/``port`` are the admin API's address (port 0 picks a free port, read it
    back from :attr:`port`). ``seed`` seeds toxicity rolls. ``config`` is a populate
    array, or the path of a JSON file holding one, applied before the API answers.
    Binding a non-loopback host gives a ``UserWarning``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        seed: int | None = None,
        config: ConfigSource = None,
    ) -> None:
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ConfigurationError(
                f"EmbeddedServer port={port!r} is not a TCP port; pass an int from 0 to "
                "65535 (0 picks a free port)"
            )
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ConfigurationError(
                f"EmbeddedServer seed={seed!r} is not an int; pass an int or None"
            )
        if config is not None and not isinstance(config, list | str | os.PathLike):
            raise ConfigurationError(
                f"EmbeddedServer config={config!r} is neither a populate list nor a path; "
                'pass [{"name": ..., "listen": ..., "upstream": ...}, ...] or a JSON file path'
            )
        self.host = host
        self._requested_port = port
        self.seed = seed
        self._config = config
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._core: ServerCore | None = None
        self._error: BaseException | None = None
        self._lifecycle = threading.RLock()  # start() stops itself on failure

    def __repr__(self) -> str:
        if self._core is None:
            return f"<EmbeddedServer {self.host}:{self._requested_port} stopped>"
        try:
            proxies = len(self._core.manager.names())
        except Exception:  # the loop thread may be mid-change; repr must not fail
            proxies = -1
        return f"<EmbeddedServer {self.url} running proxies={proxies} seed={self.seed}>"

    @property
    def running(self) -> bool:
        """Whether the server is started and not stopped."""
        return self._core is not None

    @property
    def port(self) -> int:
        """The admin API's bound port (the real one when 0 was asked for)."""
        if self._port is None:
            raise RuntimeError("EmbeddedServer is not started; call start() first")
        return self._port

    @property
    def url(self) -> str:
        """The admin API's base URL, e.g. ``http://127.0.0.1:41235``."""
        host = self.host
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def start(self) -> Self:
        """Start the server thread; returns once the admin API has answered."""
        with self._lifecycle:
            if self._core is not None:
                return self
            if not is_loopback(self.host):
                warnings.warn(non_loopback_message(self.host), UserWarning, stacklevel=2)
            config: list[dict[str, Any]] | None
            config_name = "config"
            if self._config is None or isinstance(self._config, list):
                config = self._config
            else:
                config = load_config(self._config)
                config_name = f"config file {os.fspath(self._config)!r}"
            ready = threading.Event()
            self._error = None
            thread = threading.Thread(
                target=self._run,
                args=(ready, config, config_name),
                name=f"pytest-chaos-proxy-{self.host}:{self._requested_port}",
                daemon=True,
            )
            thread.start()
            if not ready.wait(_START_TIMEOUT):
                raise RuntimeError(f"EmbeddedServer did not start within {_START_TIMEOUT} s")
            if self._error is not None:
                thread.join()
                error, self._error = self._error, None
                raise error
            self._thread = thread
            _running.add(self)
            _switch_interval.acquire()
            try:
                self._check_answers()
            except BaseException:
                self.stop()
                raise
            return self

    def stop(self) -> None:
        """Close every proxy, connection and listener, and join the thread. Idempotent."""
        with self._lifecycle:
            thread, loop, stop_event = self._thread, self._loop, self._stop_event
            if thread is None:
                return
            if loop is not None and stop_event is not None:
                # RuntimeError: the loop already ended (its thread died); join() still runs.
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(stop_event.set)
            thread.join()
            _running.discard(self)
            _switch_interval.release()
            self._thread = None
            self._port = None
            if self._error is not None:
                error, self._error = self._error, None
                raise error

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    # -- the server thread ---------------------------------------------------------

    def _run(
        self, ready: threading.Event, config: list[dict[str, Any]] | None, config_name: str
    ) -> None:
        try:
            asyncio.run(self._main(ready, config, config_name))
        except BaseException as exc:  # handed to start() or stop() in the caller's thread
            self._error = exc
        finally:
            self._core = None
            self._loop = None
            ready.set()

    async def _main(
        self, ready: threading.Event, config: list[dict[str, Any]] | None, config_name: str
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        core = await ServerCore.open(
            self.host,
            self._requested_port,
            seed=self.seed,
            config=config,
            config_name=config_name,
        )
        try:
            self._port = core.http.address[1]
            # Named after the real port, so a leaked thread in a dump says which server.
            threading.current_thread().name = f"pytest-chaos-proxy-{self.host}:{self._port}"
            self._core = core
            ready.set()
            await self._stop_event.wait()
        finally:
            self._core = None
            await core.close()

    def _check_answers(self) -> None:
        host = self.url.split("//", 1)[1].rsplit(":", 1)[0].strip("[]")
        conn = http.client.HTTPConnection(host, self.port, timeout=_START_TIMEOUT)
        try:
            conn.request("GET", "/version")
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(
                    f"EmbeddedServer at {self.url} answered GET /version with "
                    f"{response.status}; expected 200"
                )
        finally:
            conn.close()
