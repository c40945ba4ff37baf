"""White-box breaker adapters: record a breaker library's state transitions.

Each library is imported only when a breaker of that library is passed in, so none of
them is needed to use pytest-chaos:

- pybreaker: a ``CircuitBreakerListener`` gets ``state_change`` callbacks;
- circuitbreaker: has no hooks, so its ``state`` is polled in a background thread;
- purgatory: a hook on ``SyncCircuitBreakerFactory`` receives ``state_changed`` events
  (pass the factory; every circuit it makes is watched).

Transitions go to the timeline as ``note`` events named ``breaker`` with ``library``,
``circuit``, ``from_state`` and ``to_state``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pytest_chaos.checks._context import CheckContext
from pytest_chaos.errors import CheckError

if TYPE_CHECKING:
    from pytest_chaos.timeline import Timeline

__all__ = ["BreakerWatch", "Transition", "watch_breaker"]

SUPPORTED = (
    "pybreaker.CircuitBreaker",
    "circuitbreaker.CircuitBreaker",
    "purgatory.SyncCircuitBreakerFactory",
)


@dataclass(frozen=True)
class Transition:
    """One state change of a breaker (``t`` in timeline seconds, or 0 without one)."""

    t: float
    circuit: str
    from_state: str
    to_state: str


class BreakerWatch:
    """Watches one breaker; ``transitions`` lists what it saw. Close it (or use ``with``)."""

    def __init__(self, library: str, name: str, timeline: Timeline | None) -> None:
        self.library = library
        self.name = name
        self.timeline = timeline
        self.transitions: list[Transition] = []
        self._lock = threading.Lock()
        self._closers: list[Callable[[], None]] = []

    def _saw(self, circuit: str, old: str, new: str) -> None:
        if old == new:
            return
        t = self.timeline.now() if self.timeline is not None else 0.0
        with self._lock:
            self.transitions.append(Transition(t, circuit, old, new))
        if self.timeline is not None:
            self.timeline.record(
                "note",
                "breaker",
                target=self.name,
                library=self.library,
                circuit=circuit,
                from_state=old,
                to_state=new,
            )

    def states(self) -> list[str]:
        """The sequence of states entered, e.g. ``["open", "half-open", "closed"]``."""
        with self._lock:
            return [tr.to_state for tr in self.transitions]

    def close(self) -> None:
        """Stop watching (remove the listener, join the polling thread)."""
        while self._closers:
            self._closers.pop()()

    def __enter__(self) -> BreakerWatch:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        watching = "watching" if self._closers else "closed"
        return f"<BreakerWatch {self.library} {self.name!r} {watching} states={self.states()}>"


_ALIASES = {"opened": "open", "half-opened": "half-open", "closed": "closed"}


def _norm(state: object) -> str:
    """``open``, ``half-open`` or ``closed`` whatever the library calls them."""
    name = str(getattr(state, "name", state)).replace("_", "-").lower()
    return _ALIASES.get(name, name)


def _watch_pybreaker(breaker: Any, watch: BreakerWatch) -> None:
    import pybreaker

    class Listener(pybreaker.CircuitBreakerListener):
        def state_change(self, cb: Any, old_state: Any, new_state: Any) -> None:
            watch._saw(
                str(getattr(cb, "name", "") or watch.name), _norm(old_state), _norm(new_state)
            )

    listener = Listener()
    breaker.add_listener(listener)
    watch._closers.append(lambda: breaker.remove_listener(listener))


def _watch_circuitbreaker(breaker: Any, watch: BreakerWatch, interval: float) -> None:
    stop = threading.Event()
    circuit = str(getattr(breaker, "name", "") or watch.name)

    def poll() -> None:
        last = _norm(breaker.state)
        while not stop.wait(interval):
            now = _norm(breaker.state)
            if now != last:
                watch._saw(circuit, last, now)
                last = now

    thread = threading.Thread(target=poll, name="chaos-breaker-poll", daemon=True)
    thread.start()

    def close() -> None:
        stop.set()
        thread.join()

    watch._closers.append(close)


def _watch_purgatory(factory: Any, watch: BreakerWatch) -> None:
    last: dict[str, str] = {}

    def hook(circuit: str, event_type: str, event: Any) -> None:
        if event_type == "circuit_breaker_created":
            last[circuit] = "closed"
        elif event_type == "state_changed":
            new = _norm(getattr(event, "state", "?"))
            watch._saw(circuit, last.get(circuit, "closed"), new)
            last[circuit] = new

    factory.add_listener(hook)
    watch._closers.append(lambda: factory.remove_listener(hook))


def watch_breaker(
    breaker: object,
    *,
    name: str | None = None,
    timeline: Timeline | None = None,
    poll_interval: float = 0.01,
    context: CheckContext | None = None,
) -> BreakerWatch:
    """Start recording the state transitions of ``breaker`` (see the module docstring).

    States are normalised to ``closed``, ``open`` and ``half-open``. Raises
    :class:`~pytest_chaos.errors.CheckError` for an object of another library. Use it
    as a context manager (or call ``close()``) so its listener is removed; as
    ``chaos.watch_breaker(...)`` it records on the test's timeline.
    """
    if context is not None:
        timeline = context.timeline
    module = type(breaker).__module__.split(".")[0]
    label = name or str(getattr(breaker, "name", "") or type(breaker).__name__)
    if module == "pybreaker" and hasattr(breaker, "add_listener"):
        watch = BreakerWatch("pybreaker", label, timeline)
        _watch_pybreaker(breaker, watch)
    elif module == "circuitbreaker" and hasattr(breaker, "state"):
        watch = BreakerWatch("circuitbreaker", label, timeline)
        _watch_circuitbreaker(breaker, watch, poll_interval)
    elif module == "purgatory" and hasattr(breaker, "add_listener"):
        watch = BreakerWatch("purgatory", label, timeline)
        _watch_purgatory(breaker, watch)
    else:
        raise CheckError(
            f"watch_breaker: {breaker!r} is not a breaker pytest-chaos can watch; "
            f"supported: {', '.join(SUPPORTED)}"
        )
    return watch
