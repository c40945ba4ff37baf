"""The safety timer: heals a fault that outlives ``max_fault_seconds``."""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["SafetyTimer"]


class SafetyTimer:
    """Calls ``action`` once after ``seconds`` unless cancelled first.

    The thread is a daemon so a hung test never keeps the interpreter alive;
    :meth:`cancel` joins it so no thread outlives the fault it guards.
    """

    def __init__(self, seconds: float, action: Callable[[], None], *, name: str) -> None:
        self.seconds = seconds
        self._timer = threading.Timer(seconds, action)
        self._timer.daemon = True
        self._timer.name = f"chaos-safety-timer-{name}"

    def start(self) -> SafetyTimer:
        """Arm the timer."""
        self._timer.start()
        return self

    def cancel(self) -> None:
        """Disarm it and wait for its thread, unless called from that thread."""
        self._timer.cancel()
        if self._timer.is_alive() and threading.current_thread() is not self._timer:
            self._timer.join()

    def __repr__(self) -> str:
        state = "armed" if self._timer.is_alive() and not self._timer.finished.is_set() else "off"
        return f"<SafetyTimer {self.seconds}s {state}>"
