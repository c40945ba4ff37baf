"""Message-level faults for consumers of queues and event streams.

Queues and event streams deliver *at least once* and rarely in order: a consumer must
cope with the same message twice and with messages overtaking each other. These two
faults need no proxy, they wrap what the test hands to the consumer:

- ``chaos.duplicate`` wraps a handler so that each message (or a
  seeded share of them) is delivered ``copies`` times. It is a fault like any other:
  it goes through ``Chaos.inject`` (blast radius, veto hook, undo stack, timeline) and
  is healed by ``.heal()``, a ``with`` block or teardown. Pass it as ``via=`` to the
  idempotency check, which heals it after the first delivery.
- ``chaos.reorder`` returns a seeded permutation of a batch in which no
  message moves more than ``window`` places, and notes the permutation on the timeline.

Both draw from their own ``random.Random``, seeded from the test's RNG when they are
created (or from ``seed=``), so a run replays exactly under the same ``--chaos-seed``.
"""

from __future__ import annotations

import functools
import inspect
import random
import threading
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pytest_chaos.errors import BlastRadiusError, ConfigurationError
from pytest_chaos.experiment._fault import Fault, Injector

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["Duplicator", "bounded_permutation", "duplicate", "reorder"]

T = TypeVar("T")
R = TypeVar("R")

#: Orders longer than this are summarized on the timeline, not listed.
_MAX_LISTED = 1000


def _handler_name(handler: Callable[..., object]) -> str:
    name = getattr(handler, "__qualname__", None) or getattr(handler, "__name__", None)
    return name if isinstance(name, str) else repr(handler)


def bounded_permutation(n: int, window: int, rng: random.Random) -> list[int]:
    """A random order of ``range(n)`` in which no index moves more than ``window`` places.

    Each index ``i`` gets the key ``i + u * (window + 1)`` with ``u`` uniform in
    ``[0, 1)``; sorting by key can only swap indices whose keys overlap, that is indices
    fewer than ``window + 1`` apart, so every index ends within ``window`` of its start.

    >>> order = bounded_permutation(10, 2, random.Random(1))
    >>> sorted(order) == list(range(10)), max(abs(p - i) for p, i in enumerate(order)) <= 2
    (True, True)
    """
    keys = [(i + rng.random() * (window + 1), i) for i in range(n)]
    keys.sort()
    return [i for _, i in keys]


class Duplicator(Generic[R]):
    """A handler that delivers messages several times while the fault is active.

    Call it like the handler it wraps (an ``async`` handler gives an ``async``
    duplicator). While active, each call delivers the message ``copies`` times, one
    after the other, for a share ``rate`` of calls (seeded); it returns the first
    delivery's result. An exception from any delivery propagates, as it would from a
    consumer that received the copy. After :meth:`heal` each call delivers once.

    ``calls`` counts messages received, ``deliveries`` handler invocations and
    ``duplicated`` messages that were delivered more than once.
    """

    def __init__(
        self,
        handler: Callable[..., R],
        *,
        copies: int,
        rate: float,
        rng: random.Random,
        target: str,
    ) -> None:
        self.handler = handler
        self.copies = copies
        self.rate = rate
        self.target = target
        self.fault: Fault | None = None
        self.calls = 0
        self.deliveries = 0
        self.duplicated = 0
        self._rng = rng
        self._active = False
        self._lock = threading.Lock()
        # name and docstring of the handler, but not its __dict__ (it could shadow ours)
        functools.update_wrapper(self, handler, updated=())
        self._async = inspect.iscoroutinefunction(handler)

    @property
    def active(self) -> bool:
        """True while messages are being duplicated."""
        return self._active

    def _times(self) -> int:
        with self._lock:
            self.calls += 1
            times = 1
            if self._active and (self.rate >= 1.0 or self._rng.random() < self.rate):
                times = self.copies
                self.duplicated += 1
            self.deliveries += times
            return times

    def __call__(self, *args: Any, **kwargs: Any) -> R:
        if self._async:
            return self._call_async(*args, **kwargs)  # type: ignore[return-value]
        times = self._times()
        result = self.handler(*args, **kwargs)
        for _ in range(times - 1):
            self.handler(*args, **kwargs)
        return result

    async def _call_async(self, *args: Any, **kwargs: Any) -> Any:
        times = self._times()
        handler: Callable[..., Awaitable[Any]] = self.handler  # type: ignore[assignment]
        result = await handler(*args, **kwargs)
        for _ in range(times - 1):
            await handler(*args, **kwargs)
        return result

    def _activate(self) -> None:
        self._active = True

    def _deactivate(self) -> None:
        self._active = False

    def heal(self) -> bool:
        """Stop duplicating (heals the fault); False if it was already healed."""
        if self.fault is None:
            self._deactivate()
            return False
        return self.fault.heal()

    def __enter__(self) -> Duplicator[R]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.heal()

    def __repr__(self) -> str:
        state = "active" if self._active else "healed"
        return (
            f"<Duplicator {_handler_name(self.handler)} copies={self.copies} rate={self.rate} "
            f"{state} calls={self.calls} deliveries={self.deliveries} "
            f"duplicated={self.duplicated}>"
        )


def _check_number(
    value: object, name: str, method: str, *, minimum: float, maximum: float | None = None
) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok and isinstance(value, int | float):
        ok = value >= minimum and (maximum is None or value <= maximum)
    if not ok:
        allowed = f"from {minimum:g} to {maximum:g}" if maximum is not None else f">= {minimum:g}"
        raise ConfigurationError(
            f"chaos.{method}: {name}={value!r} is not allowed; {name} must be a number {allowed}."
        )


def duplicate(
    chaos: Injector,
    handler: Callable[..., R],
    copies: int = 2,
    *,
    rate: float = 1.0,
    target: str = "messages",
    seed: int | None = None,
) -> Duplicator[R]:
    """Wrap ``handler`` so that each message is delivered ``copies`` times.

    ``rate`` is the share of messages duplicated (seeded draw per message).
    ``target`` is the name the blast radius must include (``"messages"`` unless you
    name the queue or consumer). Returns a :class:`Duplicator`, active at once,
    healed by ``.heal()``, a ``with`` block or teardown::

        consume = chaos.duplicate(handle_order, copies=2)
        for message in messages:
            consume(message)
    """
    if not callable(handler):
        raise ConfigurationError(
            f"chaos.duplicate: handler={handler!r} is not callable; pass the function "
            "that processes one message."
        )
    if isinstance(copies, bool) or not isinstance(copies, int) or copies < 2:
        raise ConfigurationError(
            f"chaos.duplicate: copies={copies!r} is not allowed; copies is how many "
            "times each message is delivered, an integer >= 2."
        )
    _check_number(rate, "rate", "duplicate", minimum=0.0, maximum=1.0)
    rng = random.Random(seed if seed is not None else chaos.rng.getrandbits(64))
    duplicator = Duplicator(handler, copies=copies, rate=float(rate), rng=rng, target=target)
    name = _handler_name(handler)

    def undo() -> None:
        duplicator._deactivate()
        chaos.timeline.record(
            "note",
            "duplicate_deliveries",
            target=target,
            handler=name,
            calls=duplicator.calls,
            deliveries=duplicator.deliveries,
            duplicated=duplicator.duplicated,
        )

    try:
        duplicator.fault = chaos.inject(
            target,
            "duplicate",
            apply=duplicator._activate,
            undo=undo,
            attributes={"copies": copies, "rate": float(rate), "handler": name},
        )
    except BlastRadiusError as exc:
        exc.add_note(
            f"chaos.duplicate faults the target named by target= ({target!r}); name the "
            "queue or consumer with target=... and list it in the blast radius."
        )
        raise
    return duplicator


def reorder(
    chaos: Injector,
    messages: Iterable[T],
    window: int = 3,
    *,
    target: str = "messages",
    seed: int | None = None,
) -> list[T]:
    """Return ``messages`` in a seeded random order where none moves more than
    ``window`` places (``window=0`` keeps the order).

    The permutation is noted on the timeline (label ``reorder``: ``window``,
    ``count``, ``moved``, ``max_displacement`` and the ``order`` of original
    indices). Feed the result to the consumer and check it with the history check::

        for message in chaos.reorder(events, window=3):
            consumer.handle(message)
    """
    if isinstance(window, bool) or not isinstance(window, int) or window < 0:
        raise ConfigurationError(
            f"chaos.reorder: window={window!r} is not allowed; window is how many places "
            "a message may move, an integer >= 0."
        )
    if isinstance(messages, str | bytes) or not isinstance(messages, Iterable):
        raise ConfigurationError(
            f"chaos.reorder: messages={messages!r} is not a collection of messages; pass "
            "a list (or any iterable) of messages."
        )
    items = list(messages)
    rng = random.Random(seed if seed is not None else chaos.rng.getrandbits(64))
    order = bounded_permutation(len(items), window, rng)
    moves = [abs(pos - i) for pos, i in enumerate(order)]
    data: dict[str, Any] = {
        "window": window,
        "count": len(items),
        "moved": sum(1 for m in moves if m),
        "max_displacement": max(moves, default=0),
    }
    if len(order) <= _MAX_LISTED:
        data["order"] = order
    chaos.timeline.record("note", "reorder", target=target, **data)
    return [items[i] for i in order]
