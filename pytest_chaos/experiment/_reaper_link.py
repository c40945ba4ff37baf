"""The pytest side of the reaper: starting it, and telling it what each process does.

`start_reaper` runs in the controller (the only pytest process without xdist): it starts
``python -m pytest_chaos.experiment._reaper`` in its own session (a signal sent to
pytest's process group must not take the reaper with it) and holds its stdin pipe, whose
closing is how the reaper learns that the controller is gone. `ReaperLink` runs in every
process that drives a server (the controller, each xdist worker): it connects on first
use and sends one JSON line per proxy created or deleted and per fault injected or
healed (the protocol is in `_reaper.py`). It is the `Chaos` observer.

The link never fails a test: if the reaper cannot be reached, it says so once in
`ReaperLink.problem` and the run goes on unprotected, as with ``--chaos-reaper=off``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_chaos.errors import ConfigurationError

if TYPE_CHECKING:
    from pytest_chaos.experiment._fault import Fault

__all__ = ["ReaperHandle", "ReaperLink", "start_reaper"]

#: seconds the reaper may take to print its address
START_TIMEOUT = 10.0


@dataclass(eq=False)
class ReaperHandle:
    """The started reaper, held by the controller: ``address``, ``token``, ``pid``."""

    address: str
    token: str
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def pid(self) -> int:
        """The reaper's process id."""
        return self.process.pid

    def stop(self, timeout: float = 5.0) -> None:
        """Tell the reaper the run is over (close its stdin) and wait for it to exit."""
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def start_reaper(run_id: str, *, log: str | None = None) -> ReaperHandle:
    """Start the run's reaper; raise `ConfigurationError` saying why if it cannot start."""
    token = secrets.token_hex(16)
    argv = [sys.executable, "-m", "pytest_chaos.experiment._reaper"]
    argv += ["--run-id", run_id, "--parent", str(os.getpid())]
    if log:
        argv += ["--log", log]
    env = {**os.environ, "PYTEST_CHAOS_REAPER_TOKEN": token}
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=hasattr(os, "setsid"),
        )
    except OSError as exc:
        raise ConfigurationError(f"cannot run {sys.executable}: {exc}") from exc
    assert process.stdout is not None
    first: list[bytes] = []
    reader = threading.Thread(
        target=lambda: first.append(process.stdout.readline()),  # type: ignore[union-attr]
        daemon=True,
    )
    reader.start()
    reader.join(START_TIMEOUT)
    address = first[0].decode().strip() if first else ""
    if not address:
        process.kill()
        process.wait()
        why = f"exit status {process.returncode}" if first else f"no answer in {START_TIMEOUT} s"
        raise ConfigurationError(f"the reaper process did not start ({why})")
    return ReaperHandle(address, token, process)


class ReaperLink:
    """One process's connection to the reaper; the `Chaos` observer.

    ``url`` is the server this process drives, ``worker`` its xdist id. Thread-safe: a
    safety timer may heal while the test injects.
    """

    def __init__(self, address: str, token: str, *, url: str, worker: str) -> None:
        self.address = address
        self.url = url
        self.worker = worker
        #: why the link stopped working, if it did (the run goes on unprotected)
        self.problem: str | None = None
        self._token = token
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def _send(self, message: dict[str, Any]) -> None:
        with self._lock:
            if self.problem is not None:
                return
            try:
                if self._sock is None:
                    host, _, port = self.address.rpartition(":")
                    self._sock = socket.create_connection((host, int(port)), timeout=5.0)
                    self._write(
                        {
                            "op": "hello",
                            "token": self._token,
                            "url": self.url,
                            "worker": self.worker,
                        }
                    )
                self._write(message)
            except (OSError, ValueError) as exc:
                self.problem = f"the reaper at {self.address} cannot be reached: {exc}"
                self._drop()

    def _write(self, message: dict[str, Any]) -> None:
        assert self._sock is not None
        line = json.dumps({**message, "pid": self._pid}, separators=(",", ":")) + "\n"
        self._sock.sendall(line.encode())

    def _drop(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None

    # -- the Chaos observer ---------------------------------------------------------------

    def proxy_created(self, server_name: str) -> None:
        """Announced before the proxy is created, so a kill in between leaves nothing."""
        self._send({"op": "proxy", "proxy": server_name})

    def proxy_deleted(self, server_name: str) -> None:
        """The proxy is gone from the server (with its toxics)."""
        self._send({"op": "unproxy", "proxy": server_name})

    def fault_injected(self, test: str, fault: Fault, proxies: Sequence[str]) -> None:
        """Announced before the fault is applied; ``proxies`` are the server names it touches."""
        self._send(
            {
                "op": "inject",
                "test": test,
                "fault": fault.id,
                "kind": fault.kind,
                "proxies": list(proxies),
            }
        )

    def fault_healed(self, test: str, fault: Fault) -> None:
        """The fault was undone."""
        self._send({"op": "heal", "test": test, "fault": fault.id})

    def bye(self) -> None:
        """This process ends normally: the reaper forgets it. Only at the very end."""
        with self._lock:
            if self._sock is not None and self.problem is None:
                with contextlib.suppress(OSError):
                    self._write({"op": "bye"})
            self._drop()
            self.problem = self.problem or "closed"

    def __repr__(self) -> str:
        state = self.problem or ("connected" if self._sock else "not connected yet")
        return f"<ReaperLink {self.address} worker={self.worker} {state}>"
