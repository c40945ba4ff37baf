"""SIGTERM and SIGHUP end a chaos run the way Ctrl-C does: every fault healed first.

CI runners and Kubernetes cancel a job with SIGTERM; a closed terminal sends SIGHUP.
By default either kills pytest at once, and a fault injected into a shared Toxiproxy
stays there for everyone until some later run sweeps it. pytest already handles
``KeyboardInterrupt`` well: fixture teardowns run (the ``chaos`` fixture heals and
removes its proxies), the end-of-session rollback drains the rest, and pytest exits
with its "interrupted" status. So the first SIGTERM or SIGHUP is raised as a
``KeyboardInterrupt`` in the main thread; a second one finds the default action again
and ends the process at once, as a user who insists expects.

A handler someone else installed (or an ignored signal, as under ``nohup``) is left
alone. xdist workers run this too, so a signal sent to the whole process group heals
on every worker.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

__all__ = ["SignalsAsInterrupt"]

_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class SignalsAsInterrupt:
    """Installs the handlers for a pytest run and restores the previous ones after."""

    def __init__(self) -> None:
        self._previous: dict[int, Any] = {}
        #: the name of the signal that interrupted the run, if one did
        self.received: str | None = None

    def install(self) -> None:
        """Take over SIGTERM and SIGHUP where they still have their default action."""
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for sig in _SIGNALS:
            if signal.getsignal(sig) is signal.SIG_DFL:
                self._previous[sig] = signal.signal(sig, self._interrupt)

    def uninstall(self) -> None:
        """Put back what was there before `install`."""
        for sig, previous in self._previous.items():
            if signal.getsignal(sig) == self._interrupt:
                signal.signal(sig, previous)
        self._previous.clear()

    def _interrupt(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        self.received = name
        self.uninstall()  # a second signal takes the default action
        raise KeyboardInterrupt(
            f"{name} received: pytest-chaos heals every fault before pytest exits "
            f"(send {name} again to exit at once)"
        )
