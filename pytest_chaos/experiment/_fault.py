"""``Fault``: one injected fault, healed once, usable as a context manager.

A fault owns its own heal: the undo entry pushed before it was applied, the lock that
makes a heal happen once (the test, a guard, the safety timer and teardown may race
for it), the timeline record and the safety timer. What the experiment adds on top
(the after-heal hook) comes in as a callback, so a fault never reaches back into the
experiment that made it.

`Injector` is what fault families that live outside the experiment class (service
faults, message faults) need from it: the one injection mechanism and the seeded rng.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from pytest_chaos.experiment._timer import SafetyTimer

if TYPE_CHECKING:
    from types import TracebackType

    from pytest_chaos.experiment._rollback import UndoEntry
    from pytest_chaos.timeline import Timeline

__all__ = ["Fault", "Injector"]


class Fault:
    """A fault that is active until healed.

    Returned by every fault method (``proxy.latency(300)``, ``chaos.partition(...)``,
    ``chaos.inject(...)``). Heal it with :meth:`heal` or by leaving a ``with`` block;
    healing twice is harmless. Whatever the test does, teardown heals it.

    Attributes: ``id`` (unique in the test, e.g. ``"f1"``), ``kind`` (``"latency"``),
    ``target`` (proxy or service name), ``attributes``, ``stream``, ``toxicity``,
    ``started`` (timeline seconds), ``healed_by`` (None while active), ``healed_at``.
    """

    def __init__(
        self,
        *,
        id: str,
        kind: str,
        target: str,
        attributes: dict[str, Any],
        stream: str | None,
        toxicity: float | None,
        entry: UndoEntry,
        timeline: Timeline,
        after_heal: Callable[[Fault, str], object] | None = None,
    ) -> None:
        self.id = id
        self.kind = kind
        self.target = target
        self.attributes = attributes
        self.stream = stream
        self.toxicity = toxicity
        self.started = 0.0
        self.healed_by: str | None = None
        self.healed_at: float | None = None
        #: Reads the counters of the proxy this fault acts on (``ChaosProxy.stats``), for
        #: checks that verify what the fault did (``idempotent`` counts the copies an
        #: ``http_duplicate`` delivered); None when there is nothing to read.
        self.stats: Callable[[], Mapping[str, Any]] | None = None
        self._entry = entry
        self._timeline = timeline
        self._after_heal = after_heal
        self._timer: SafetyTimer | None = None
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        """True until the fault is healed."""
        return self.healed_by is None

    @property
    def duration(self) -> float:
        """Seconds the fault has been (or was) active."""
        end = self.healed_at if self.healed_at is not None else self._timeline.now()
        return max(0.0, end - self.started)

    def arm(self, seconds: float) -> None:
        """Start a safety timer that heals the fault ``seconds`` from now."""

        def fire() -> None:
            self.heal(by="safety_timer")

        self._timer = SafetyTimer(seconds, fire, name=self.id).start()

    def disarm(self) -> None:
        """Cancel the safety timer, if any (teardown does, once everything is healed)."""
        if self._timer is not None:
            self._timer.cancel()

    def heal(self, *, by: str = "test") -> bool:
        """Undo the fault now. Returns False if it was already healed (a no-op).

        ``by`` says who healed it on the timeline: ``test``, ``guard``, ``safety_timer``,
        ``teardown`` or ``session``. An undo that fails still marks the fault healed (the
        teardown check of the server tells the truth) and re-raises.
        """
        with self._lock:
            if self.healed_by is not None:
                return False
            error: BaseException | None = None
            try:
                self._entry.run()
            except BaseException as exc:
                error = exc
            self.healed_by = by
            self.healed_at = self._timeline.now()
            extra = {} if error is None else {"error": f"{type(error).__name__}: {error}"}
            self._timeline.record(
                "heal",
                self.kind,
                target=self.target,
                fault_id=self.id,
                by=by,
                duration=round(self.duration, 6),
                **extra,
            )
        # outside the lock: a safety timer that just fired waits for that lock, and
        # cancel() joins its thread
        if by != "safety_timer":
            self.disarm()
        if error is not None:
            raise error
        if self._after_heal is not None:
            self._after_heal(self, by)
        return True

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


class Injector(Protocol):
    """What a family of faults needs from the experiment (`Chaos` provides it)."""

    rng: random.Random
    timeline: Timeline

    def inject(
        self,
        target: str,
        kind: str,
        *,
        apply: Callable[[], object],
        undo: Callable[[], object],
        attributes: dict[str, Any] | None = None,
        stream: str | None = None,
        toxicity: float | None = None,
    ) -> Fault:
        """Inject through the one mechanism (radius, veto, undo, timeline, timer)."""
