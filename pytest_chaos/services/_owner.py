"""Who made a container, network or temporary directory: ``host:pid:starttime``.

Leftovers of a run are removed by the next run only when the process that made them is
gone. The kernel's start time of the process guards against a recycled pid.
"""

from __future__ import annotations

import os
import socket

__all__ = ["owner_is_dead", "owner_token"]


def _process_start_time(pid: int) -> str:
    """The kernel's start time of ``pid`` (guards against pid reuse), or ``""``."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            # Field 22; the command name (field 2) may contain spaces, so split after ')'.
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def owner_token(pid: int | None = None) -> str:
    """``host:pid:starttime`` of this (or the given) process."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_process_start_time(pid)}"


def owner_is_dead(token: str) -> bool:
    """Whether the process named by an owner label is gone (only judged on this host)."""
    host, _, rest = token.partition(":")
    pid_text, _, started = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return bool(started) and _process_start_time(pid) != started
