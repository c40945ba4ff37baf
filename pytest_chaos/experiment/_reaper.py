"""The reaper: one watchdog process per run that heals what a killed pytest process left.

SIGINT, SIGTERM and SIGHUP heal in pytest itself; SIGKILL and an OOM kill give pytest no
chance. As testcontainers' Ryuk does for containers, a small separate process (started
by the pytest controller with ``python -m pytest_chaos.experiment._reaper``, see
`_reaper_link.py`) listens on a loopback TCP port. Every pytest process of the run (the
controller and each xdist worker) that uses an external or container server connects
once and streams JSON lines as it works::

    {"op": "hello", "pid": 123, "token": "...", "url": "http://...", "worker": "gw0"}
    {"op": "proxy", "pid": 123, "proxy": "chaos-<run>-gw0-db"}        before creating it
    {"op": "inject", "pid": 123, "test": "t.py::test", "fault": "f1", "kind": "latency",
     "proxies": ["chaos-<run>-gw0-db"]}                                before applying it
    {"op": "heal", "pid": 123, "test": "t.py::test", "fault": "f1"}
    {"op": "unproxy", "pid": 123, "proxy": "chaos-<run>-gw0-db"}       after deleting it
    {"op": "bye", "pid": 123}                                          at pytest_unconfigure

A connection that closes without ``bye`` (or whose pid is gone) belongs to a process
that died: the reaper heals its live faults on the server (removes every toxic of the
proxies they touched, re-enables those proxies) and deletes every proxy it announced. A
process announces a proxy before creating it, so a kill between the two costs a 404.
The proxies belong to that process alone (their names carry its worker id), so every
toxic on them is one of its faults.

It never touches anything else: only names with this run's prefix
(``chaos-<run id>-``), and only those a process announced. It exits when the controller
is gone (its stdin pipe closes, or it is re-parented), after giving the remaining
processes a short grace period to say ``bye`` and healing those that did not.

Out of scope: faults that are not on the Toxiproxy server (paused, stopped or
disconnected containers, whose Docker labels let the next run sweep them; message faults
live in the test process and die with it).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import selectors
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

__all__ = ["Ledger", "ProcessState", "heal_process", "main"]

#: environment variable that carries the connection token to the reaper (not argv,
#: which other users of the host can read)
TOKEN_ENV = "PYTEST_CHAOS_REAPER_TOKEN"
#: seconds the processes still connected get to say ``bye`` once the controller is gone
GRACE_SECONDS = 2.0
#: how often the reaper checks the pids and the parent, in seconds
POLL_SECONDS = 0.2


class ReaperClient(Protocol):
    """What the reaper needs of a Toxiproxy client (`pytest_chaos.client.ToxiproxyClient`)."""

    def toxics(self, proxy: str) -> Sequence[Any]: ...
    def remove_toxic(self, proxy: str, name: str) -> None: ...
    def get_proxy(self, name: str) -> Any: ...
    def update_proxy(self, name: str, **fields: Any) -> Any: ...
    def delete_proxy(self, name: str) -> None: ...
    def close(self) -> None: ...


@dataclass
class ProcessState:
    """What one pytest process told the reaper: its server, proxies and live faults."""

    pid: int
    url: str
    worker: str = "?"
    proxies: set[str] = field(default_factory=set)
    #: "<test> <fault id>" -> (kind, proxies the fault touches)
    faults: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    said_bye: bool = False

    @property
    def has_work(self) -> bool:
        """Whether there is anything on the server to heal or delete for this process."""
        return bool(self.proxies or self.faults)


class Ledger:
    """The bookkeeping: which proxies and live faults each connected process has.

    Names outside this run's prefix are refused (and reported), so a confused or
    hostile client cannot make the reaper delete another run's proxies.
    """

    def __init__(self, run_id: str) -> None:
        self.prefix = f"chaos-{run_id}-"
        self.processes: dict[int, ProcessState] = {}
        self.refused: list[str] = []

    def _mine(self, name: object) -> str | None:
        if isinstance(name, str) and name.startswith(self.prefix):
            return name
        self.refused.append(repr(name))
        return None

    def hello(self, pid: int, url: str, worker: str) -> ProcessState:
        """Start the record of process ``pid`` driving the server at ``url``."""
        state = ProcessState(pid=pid, url=url, worker=worker)
        self.processes[pid] = state
        return state

    def record(self, state: ProcessState, message: dict[str, Any]) -> None:
        """Apply one message of ``state``'s process to its record."""
        op = message.get("op")
        key = f"{message.get('test')} {message.get('fault')}"
        if op == "proxy":
            if name := self._mine(message.get("proxy")):
                state.proxies.add(name)
        elif op == "unproxy":
            state.proxies.discard(str(message.get("proxy")))
            for fault_key, (_, proxies) in list(state.faults.items()):
                if message.get("proxy") in proxies:  # deleting the proxy healed it
                    del state.faults[fault_key]
        elif op == "inject":
            names = [n for n in map(self._mine, message.get("proxies") or ()) if n]
            state.faults[key] = (str(message.get("kind")), names)
        elif op == "heal":
            state.faults.pop(key, None)
        elif op == "bye":
            state.said_bye = True

    def live_faults(self, pid: int) -> list[str]:
        """``"<kind> <fault id> in <test>"`` for each live fault of ``pid``, oldest first."""
        state = self.processes.get(pid)
        if state is None:
            return []
        return [
            f"{kind} {key.rsplit(' ', 1)[-1]} in {key.rsplit(' ', 1)[0]}"
            for key, (kind, _) in state.faults.items()
        ]


def heal_process(state: ProcessState, client: ReaperClient) -> list[str]:
    """Heal what process ``state`` left on its server; return what was done, one line each.

    First every proxy with a live fault is healed (its toxics removed, re-enabled), then
    every proxy the process announced is deleted. A proxy already gone is fine.
    """
    from pytest_chaos.errors import ProxyAPIError

    done: list[str] = []
    faulted = sorted({name for _, proxies in state.faults.values() for name in proxies})

    def attempt(what: str, action: Callable[[], object]) -> bool:
        try:
            action()
        except ProxyAPIError as exc:
            if exc.status != 404:
                done.append(f"failed to {what}: {exc}")
            return False
        done.append(what)
        return True

    for name in faulted:
        with contextlib.suppress(ProxyAPIError):
            for toxic in client.toxics(name):
                toxic_name = str(toxic["name"])
                remove = functools.partial(client.remove_toxic, name, toxic_name)
                attempt(f"remove toxic {toxic_name} of {name}", remove)
            proxy = client.get_proxy(name)
            if not proxy.get("enabled", True):
                enable = functools.partial(
                    client.update_proxy, name, enabled=True, listen=proxy["listen"]
                )
                attempt(f"re-enable {name}", enable)
    for name in sorted(state.proxies):
        attempt(f"delete proxy {name}", functools.partial(client.delete_proxy, name))
    state.faults.clear()
    state.proxies.clear()
    return done


def _default_client(url: str) -> ReaperClient:
    from pytest_chaos.client import ToxiproxyClient

    return ToxiproxyClient(url, timeout=5.0)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


class _Connection:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.state: ProcessState | None = None


class Reaper:
    """The reaper's event loop (one thread, a selector over the listener and connections)."""

    def __init__(
        self,
        ledger: Ledger,
        listener: socket.socket,
        *,
        token: str,
        parent: int,
        log: Callable[[str], None],
        make_client: Callable[[str], ReaperClient] = _default_client,
    ) -> None:
        self.ledger = ledger
        self.listener = listener
        self.token = token
        self.parent = parent
        self.log = log
        self.make_client = make_client
        self.controller_gone = threading.Event()
        self._selector = selectors.DefaultSelector()
        self._connections: dict[socket.socket, _Connection] = {}

    def watch_pipe(self, pipe: IO[bytes]) -> None:
        """Set `controller_gone` when ``pipe`` (the controller's end of our stdin) closes."""

        def read() -> None:
            with contextlib.suppress(OSError, ValueError):
                while pipe.read(4096):
                    pass
            self.controller_gone.set()

        threading.Thread(target=read, name="reaper-stdin", daemon=True).start()

    def run(self) -> None:
        """Serve until the controller is gone and nothing is left to heal."""
        self.listener.setblocking(False)
        self._selector.register(self.listener, selectors.EVENT_READ)
        deadline: float | None = None
        while True:
            for key, _ in self._selector.select(POLL_SECONDS):
                if key.fileobj is self.listener:
                    self._accept()
                else:
                    self._read(self._connections[key.fileobj])  # type: ignore[index]
            self._check_pids()
            if deadline is None and self._parent_gone():
                deadline = time.monotonic() + GRACE_SECONDS
            if deadline is not None and (not self._connections or time.monotonic() > deadline):
                break
        for conn in list(self._connections.values()):
            self._close(conn, reason="still connected when the run's controller was gone")
        for state in list(self.ledger.processes.values()):
            if not state.said_bye and state.has_work:
                self._heal(state, "the run's controller is gone")
        self._selector.close()
        self.listener.close()

    def _parent_gone(self) -> bool:
        if self.controller_gone.is_set():
            return True
        return hasattr(os, "getppid") and os.getppid() != self.parent

    def _accept(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        sock.setblocking(False)
        self._connections[sock] = _Connection(sock)
        self._selector.register(sock, selectors.EVENT_READ)

    def _read(self, conn: _Connection) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        conn.buffer += data
        *lines, conn.buffer = conn.buffer.split(b"\n")
        for line in lines:
            if not self._handle(conn, line):
                self._close(conn, reason="sent a bad message")
                return
        if not data:
            self._close(conn, reason="its connection closed")

    def _handle(self, conn: _Connection, line: bytes) -> bool:
        try:
            message = json.loads(line)
        except ValueError:
            return False
        if not isinstance(message, dict):
            return False
        if conn.state is None:
            if message.get("op") != "hello" or message.get("token") != self.token:
                return False
            conn.state = self.ledger.hello(
                int(message["pid"]), str(message["url"]), str(message.get("worker", "?"))
            )
            return True
        self.ledger.record(conn.state, message)
        return True

    def _close(self, conn: _Connection, *, reason: str) -> None:
        self._selector.unregister(conn.sock)
        del self._connections[conn.sock]
        conn.sock.close()
        state = conn.state
        if state is not None and not state.said_bye and state.has_work:
            self._heal(state, f"pid {state.pid} ended without saying bye ({reason})")

    def _check_pids(self) -> None:
        # a process that forked keeps the connection open after it dies: watch pids too
        for conn in list(self._connections.values()):
            if conn.state is not None and not _pid_alive(conn.state.pid):
                self._close(conn, reason="its pid is gone")

    def _heal(self, state: ProcessState, why: str) -> None:
        started = time.monotonic()
        faults = self.ledger.live_faults(state.pid)
        try:
            client = self.make_client(state.url)
            try:
                done = heal_process(state, client)
            finally:
                client.close()
        except Exception as exc:  # the reaper must outlive one bad server
            done = [f"failed: {type(exc).__name__}: {exc}"]
        took = time.monotonic() - started
        self.log(
            f"worker {state.worker} (pid {state.pid}): {why}; live faults: "
            f"{', '.join(faults) or 'none'}; on {state.url}: {'; '.join(done) or 'nothing left'} "
            f"({took * 1000:.0f} ms)"
        )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pytest_chaos.experiment._reaper --run-id ID --parent PID``."""
    parser = argparse.ArgumentParser(prog="pytest-chaos reaper")
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--log", default=None, help="append what the reaper does to this file")
    args = parser.parse_args(argv)
    token = os.environ.pop(TOKEN_ENV, "")
    if not token:
        print(f"pytest-chaos reaper: {TOKEN_ENV} is not set", file=sys.stderr)
        return 2
    with contextlib.suppress(AttributeError, ValueError):
        import signal

        # Ctrl-C in the terminal reaches the whole process group; pytest heals itself then
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    def log(line: str) -> None:
        if args.log:
            with open(args.log, "a", encoding="utf-8") as out:
                out.write(f"{time.strftime('%H:%M:%S')} reaper {args.run_id}: {line}\n")

    listener = socket.create_server(("127.0.0.1", 0))
    reaper = Reaper(Ledger(args.run_id), listener, token=token, parent=args.parent, log=log)
    reaper.watch_pipe(sys.stdin.buffer)
    host, port = listener.getsockname()[:2]
    print(f"{host}:{port}", flush=True)
    log(f"listening on {host}:{port} for the run of pid {args.parent}")
    reaper.run()
    if reaper.ledger.refused:
        log(f"refused names outside the run's prefix: {', '.join(reaper.ledger.refused)}")
    log("exiting: the run is over")
    return 0


if __name__ == "__main__":
    sys.exit(main())
