"""``Fault``: one injected fault, healed once, usable as a context manager."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import TracebackType

    from pytest_chaos.controller import Chaos
    from pytest_chaos.safety._rollback import UndoEntry
    from pytest_chaos.safety._timer import SafetyTimer

__all__ = ["Fault"]


class Fault:
    """A fault that is active until healed.

    Returned by every fault method (``proxy.latency(300)``, ``chaos.partition(...)``,
    ``chaos.inject(...)``). Heal it with :meth:`heal` or by leaving a ``with`` block;
    healing twice is harmless. Whatever the test does, teardown heals it.

    Attributes: ``id`` (unique in the test, e.g. ``"f1"``), ``kind`` (``"latency"``),
    ``target`` (proxy or service name), ``attributes``, ``stream``, ``toxicity``,
    ``started`` (timeline seconds), ``healed_by`` (None while active).
    """

    def __init__(
        self,
        chaos: Chaos,
        *,
        id: str,
        kind: str,
        target: str,
        attributes: dict[str, Any],
        stream: str | None,
        toxicity: float | None,
        entry: UndoEntry,
    ) -> None:
        self.chaos = chaos
        self.id = id
        self.kind = kind
        self.target = target
        self.attributes = attributes
        self.stream = stream
        self.toxicity = toxicity
        self.started = 0.0
        self.healed_by: str | None = None
        self.healed_at: float | None = None
        self._entry = entry
        self._timer: SafetyTimer | None = None
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        """True until the fault is healed."""
        return self.healed_by is None

    @property
    def duration(self) -> float:
        """Seconds the fault has been (or was) active."""
        end = self.healed_at if self.healed_at is not None else self.chaos.timeline.now()
        return max(0.0, end - self.started)

    def heal(self, *, by: str = "test") -> bool:
        """Undo the fault now. Returns False if it was already healed (a no-op)."""
        return self.chaos._heal(self, by=by)

    def __enter__(self) -> Fault:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.heal()

    def __repr__(self) -> str:
        state = "active" if self.active else f"healed by {self.healed_by}"
        attrs = ", ".join(f"{k}={v!r}" for k, v in self.attributes.items())
        stream = f" {self.stream}" if self.stream else ""
        return f"<Fault {self.id} {self.kind}({attrs}) on {self.target!r}{stream} {state}>"
