"""Names on the server, run ids, and which leftovers belong to dead runs.

Every proxy pytest-chaos creates is named ``chaos-<run>-<worker>-<name>`` so that
runs and xdist workers sharing one server never touch each other's proxies. The run id
is ``<unix time hex>.<host hash>.<pid hex>`` of the process that started the run (the
xdist controller), which lets a later run tell whether a leftover's run is dead: same
host and the pid is gone, or older than :data:`STALE_AFTER_SECONDS` on another host.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "PREFIX",
    "STALE_AFTER_SECONDS",
    "RunId",
    "dead_run_proxies",
    "new_run_id",
    "server_name",
]

PREFIX = "chaos-"
#: a run from another host is considered dead after this long (nightly suites fit in it)
STALE_AFTER_SECONDS = 12 * 3600


def _host_hash() -> str:
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:4]


def new_run_id(now: float | None = None, pid: int | None = None) -> str:
    """A fresh run id for this process."""
    started = int(time.time() if now is None else now)
    return f"{started:x}.{_host_hash()}.{os.getpid() if pid is None else pid:x}"


def server_name(run_id: str, worker: str, name: str) -> str:
    """The name on the server of proxy ``name`` created by ``worker`` in ``run_id``."""
    return f"{PREFIX}{run_id}-{worker}-{name}"


@dataclass(frozen=True)
class RunId:
    """A parsed run id."""

    started: int
    host: str
    pid: int

    @classmethod
    def parse(cls, text: str) -> RunId | None:
        """Parse ``text``; ``None`` if it is not a pytest-chaos run id."""
        parts = text.split(".")
        if len(parts) != 3:
            return None
        try:
            return cls(int(parts[0], 16), parts[1], int(parts[2], 16))
        except ValueError:
            return None

    def is_dead(self, now: float | None = None) -> bool:
        """Whether the run that owns this id has certainly ended."""
        now = time.time() if now is None else now
        if self.host == _host_hash():
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                return False  # alive, someone else's
            # alive, but a pid can be reused long after the run died
            return now - self.started > STALE_AFTER_SECONDS
        return now - self.started > STALE_AFTER_SECONDS


def dead_run_proxies(
    names: Iterable[str], *, current_run: str, now: float | None = None
) -> list[str]:
    """The proxy names among ``names`` left behind by dead pytest-chaos runs.

    Only names with pytest-chaos's prefix and a parseable run id are considered; the
    current run's proxies and live runs' proxies are never returned.
    """
    dead = []
    for name in names:
        if not name.startswith(PREFIX):
            continue
        run_text = name[len(PREFIX) :].split("-", 1)[0]
        if run_text == current_run:
            continue
        run = RunId.parse(run_text)
        if run is not None and run.is_dead(now):
            dead.append(name)
    return sorted(dead)
