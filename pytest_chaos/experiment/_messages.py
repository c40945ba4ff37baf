"""Message-level faults for consumers of queues and event streams.

Queues and event streams deliver *at least once* and rarely in order: a consumer must
cope with the same message twice, with messages overtaking each other, and with the odd
message that arrives damaged. These faults need no proxy, they wrap what the test hands
to the consumer (or what the producer sends):

- ``chaos.duplicate`` wraps a handler so that each message (or a
  seeded share of them) is delivered ``copies`` times. It is a fault like any other:
  it goes through ``Chaos.inject`` (blast radius, veto hook, undo stack, timeline) and
  is healed by ``.heal()``, a ``with`` block or teardown. Pass it as ``via=`` to the
  idempotency check, which heals it after the first delivery.
- ``chaos.reorder`` returns a seeded permutation of a batch in which no
  message moves more than ``window`` places, and notes the permutation on the timeline.
- ``chaos.corrupt`` wraps a handler so that each message (or a seeded share of them)
  reaches it damaged: one bit of a field flipped, or the field truncated. Like
  ``duplicate`` it goes through ``Chaos.inject`` and is healed the same ways.

All three draw from their own ``random.Random``, seeded from the test's RNG when they are
created (or from ``seed=``), so a run replays exactly under the same ``--chaos-seed``.
"""

from __future__ import annotations

import functools
import inspect
import random
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar

from pytest_chaos.errors import BlastRadiusError, ConfigurationError
from pytest_chaos.experiment._fault import Fault, Injector

if TYPE_CHECKING:
    from types import TracebackType

__all__ = [
    "CORRUPTIONS",
    "Corrupter",
    "Corruption",
    "Duplicator",
    "bounded_permutation",
    "corrupt",
    "corrupt_value",
    "duplicate",
    "reorder",
]

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


class _HandlerFault(Generic[R]):
    """What a message fault that wraps a handler shares: the handler's name and
    docstring, sync or async calls, a seeded rate, the fault it is injected as, and
    ``heal()`` / a ``with`` block. Subclasses say what a call does."""

    def __init__(
        self, handler: Callable[..., R], *, rate: float, rng: random.Random, target: str
    ) -> None:
        self.handler = handler
        self.rate = rate
        self.target = target
        self.fault: Fault | None = None
        self.calls = 0
        self._rng = rng
        self._active = False
        self._lock = threading.Lock()
        # name and docstring of the handler, but not its __dict__ (it could shadow ours)
        functools.update_wrapper(self, handler, updated=())
        self._async = inspect.iscoroutinefunction(handler)

    @property
    def active(self) -> bool:
        """True while the fault acts on messages (until healed)."""
        return self._active

    def __call__(self, *args: Any, **kwargs: Any) -> R:
        raise NotImplementedError  # each fault says what a call does

    def _hit(self) -> bool:
        """Whether this message is one the fault acts on (call with the lock held)."""
        return self._active and (self.rate >= 1.0 or self._rng.random() < self.rate)

    def _activate(self) -> None:
        self._active = True

    def _deactivate(self) -> None:
        self._active = False

    def heal(self) -> bool:
        """Stop the fault (heals it); False if it was already healed."""
        if self.fault is None:
            self._deactivate()
            return False
        return self.fault.heal()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.heal()


def _inject_wrapper(
    chaos: Injector,
    wrapper: _HandlerFault[Any],
    kind: str,
    undo: Callable[[], None],
    attributes: dict[str, Any],
) -> None:
    """Inject ``wrapper`` as the ``kind`` fault of its target; a refusal by the blast
    radius says how to name the target."""
    try:
        wrapper.fault = chaos.inject(
            wrapper.target, kind, apply=wrapper._activate, undo=undo, attributes=attributes
        )
    except BlastRadiusError as exc:
        exc.add_note(
            f"chaos.{kind} faults the target named by target= ({wrapper.target!r}); name "
            "the queue or consumer with target=... and list it in the blast radius."
        )
        raise


class Duplicator(_HandlerFault[R]):
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
        super().__init__(handler, rate=rate, rng=rng, target=target)
        self.copies = copies
        self.deliveries = 0
        self.duplicated = 0

    def _times(self) -> int:
        with self._lock:
            self.calls += 1
            times = 1
            if self._hit():
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

    attributes = {"copies": copies, "rate": float(rate), "handler": name}
    _inject_wrapper(chaos, duplicator, "duplicate", undo, attributes)
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


#: how ``chaos.corrupt`` damages a value
CORRUPTIONS = ("flip", "truncate")


def corrupt_value(value: str | bytes, mode: str, rng: random.Random) -> str | bytes:
    """``value`` damaged: ``"flip"`` inverts one bit of one byte (of one character's low
    seven bits for a ``str``, so it stays text), ``"truncate"`` keeps a prefix at least
    one byte or character shorter. The result always differs from a non-empty value;
    an empty one is returned as it is.

    >>> corrupt_value("hello", "truncate", random.Random(3))
    'h'
    >>> corrupt_value(b"ab", "flip", random.Random(1)) != b"ab"
    True
    """
    if not value:
        return value
    if mode == "truncate":
        return value[: rng.randrange(len(value))]
    pos = rng.randrange(len(value))
    if isinstance(value, str):
        flipped = chr(ord(value[pos]) ^ (1 << rng.randrange(7)))
        return value[:pos] + flipped + value[pos + 1 :]
    data = bytearray(value)
    data[pos] ^= 1 << rng.randrange(8)
    return bytes(data)


@dataclass(frozen=True)
class Corruption:
    """One message ``chaos.corrupt`` damaged: the ``index`` of the call (from 0), the
    ``field`` (``None``: the whole message), the ``mode``, the ``original`` message and
    the ``before`` and ``after`` values."""

    index: int
    field: str | None
    mode: str
    original: object
    before: str | bytes
    after: str | bytes


class Corrupter(_HandlerFault[R]):
    """A handler whose messages arrive damaged while the fault is active.

    Call it like the handler it wraps, the message first (an ``async`` handler gives an
    ``async`` corrupter). While active, a share ``rate`` of calls (seeded) pass the
    handler a damaged copy of the message: with ``field`` set, a copy of the mapping
    with that field's ``str`` or ``bytes`` value damaged; without, the ``str`` or
    ``bytes`` message itself. The caller's message is never changed. After
    :meth:`heal` messages pass through untouched.

    ``calls`` counts messages received, ``corruptions`` lists the :class:`Corruption`
    of each damaged one (``corrupted`` is their number).
    """

    def __init__(
        self,
        handler: Callable[..., R],
        *,
        field: str | None,
        mode: str,
        rate: float,
        rng: random.Random,
        target: str,
    ) -> None:
        super().__init__(handler, rate=rate, rng=rng, target=target)
        self.field = field
        self.mode = mode
        self.corruptions: list[Corruption] = []

    @property
    def corrupted(self) -> int:
        """How many messages were damaged."""
        return len(self.corruptions)

    def _message(self, args: tuple[Any, ...]) -> tuple[Any, ...]:
        if not args:
            raise ConfigurationError(
                f"chaos.corrupt: {_handler_name(self.handler)} was called without a "
                "message; pass the message as the first positional argument."
            )
        message = args[0]
        with self._lock:
            index = self.calls
            self.calls += 1
            if not self._hit():
                return args
            if self.field is None:
                before = _corruptible(message, "the message", hint="name a field with field=")
                after = corrupt_value(before, self.mode, self._rng)
                damaged: Any = after
            else:
                if not isinstance(message, Mapping) or self.field not in message:
                    fields = sorted(map(str, message)) if isinstance(message, Mapping) else None
                    raise ConfigurationError(
                        f"chaos.corrupt: field={self.field!r} is not in the message "
                        f"{message!r}"
                        + (f" (its fields: {fields})" if fields else "")
                        + "; name a field the messages have, or field=None to damage a "
                        "str or bytes message whole."
                    )
                before = _corruptible(
                    message[self.field], f"field {self.field!r}", hint="serialize it first"
                )
                after = corrupt_value(before, self.mode, self._rng)
                damaged = dict(message)
                damaged[self.field] = after
            if after == before:  # an empty value: nothing to damage
                return args
            self.corruptions.append(
                Corruption(index, self.field, self.mode, message, before, after)
            )
        return (damaged, *args[1:])

    def __call__(self, *args: Any, **kwargs: Any) -> R:
        if self._async:
            return self._call_async(*args, **kwargs)  # type: ignore[return-value]
        return self.handler(*self._message(args), **kwargs)

    async def _call_async(self, *args: Any, **kwargs: Any) -> Any:
        handler: Callable[..., Awaitable[Any]] = self.handler  # type: ignore[assignment]
        return await handler(*self._message(args), **kwargs)

    def __repr__(self) -> str:
        state = "active" if self._active else "healed"
        return (
            f"<Corrupter {_handler_name(self.handler)} mode={self.mode} field={self.field!r} "
            f"rate={self.rate} {state} calls={self.calls} corrupted={self.corrupted}>"
        )


def _corruptible(value: object, what: str, *, hint: str) -> str | bytes:
    if isinstance(value, str | bytes):
        return value
    if isinstance(value, bytearray):
        return bytes(value)
    raise ConfigurationError(
        f"chaos.corrupt: {what} is {type(value).__name__} {value!r}; only str or bytes "
        f"values can be flipped or truncated ({hint})."
    )


def corrupt(
    chaos: Injector,
    handler: Callable[..., R],
    *,
    field: str | None = None,
    mode: str = "flip",
    rate: float = 1.0,
    target: str = "messages",
    seed: int | None = None,
) -> Corrupter[R]:
    """Wrap ``handler`` so that each message reaches it damaged.

    ``mode`` is ``"flip"`` (one bit of one byte inverted: a checksum or a parser must
    notice) or ``"truncate"`` (a prefix kept, the rest lost). ``field`` names the value
    to damage in a mapping message (``None``: the ``str`` or ``bytes`` message itself).
    ``rate`` is the share of messages damaged (seeded draw per message); ``target`` the
    name the blast radius must include. Wrap a producer's send to put damaged messages
    on a real queue, or a consumer's handler to damage them on the way in. Returns a
    :class:`Corrupter`, active at once, healed by ``.heal()``, a ``with`` block or
    teardown; its ``corruptions`` say which messages were damaged and how::

        send = chaos.corrupt(producer.send, field="payload", mode="truncate")
        send({"id": "e1", "payload": '{"qty": 2}'})
    """
    if not callable(handler):
        raise ConfigurationError(
            f"chaos.corrupt: handler={handler!r} is not callable; pass the function that "
            "sends or processes one message."
        )
    if mode not in CORRUPTIONS:
        raise ConfigurationError(
            f"chaos.corrupt: mode={mode!r} is not allowed; use one of {list(CORRUPTIONS)}."
        )
    if field is not None and not isinstance(field, str):
        raise ConfigurationError(
            f"chaos.corrupt: field={field!r} is not allowed; field is the name (a str) of "
            "the value to damage in a mapping message, or None for the whole message."
        )
    _check_number(rate, "rate", "corrupt", minimum=0.0, maximum=1.0)
    rng = random.Random(seed if seed is not None else chaos.rng.getrandbits(64))
    corrupter = Corrupter(handler, field=field, mode=mode, rate=float(rate), rng=rng, target=target)
    name = _handler_name(handler)

    def undo() -> None:
        corrupter._deactivate()
        indexes = [c.index for c in corrupter.corruptions]
        data: dict[str, Any] = {"calls": corrupter.calls, "corrupted": len(indexes)}
        if len(indexes) <= _MAX_LISTED:
            data["indexes"] = indexes
        chaos.timeline.record("note", "corrupted_messages", target=target, handler=name, **data)

    attributes = {"mode": mode, "field": field, "rate": float(rate), "handler": name}
    _inject_wrapper(chaos, corrupter, "corrupt", undo, attributes)
    return corrupter
