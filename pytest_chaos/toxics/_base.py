"""The sans-IO toxic interface: items, attributes, stages and the link context.

A toxic type is a :class:`Toxic` subclass: a validated set of attributes (what the API
shows) and a factory of per-link :class:`Stage` objects (the state machine that acts on
bytes). Stages never touch sockets or clocks: the link feeds them items with the current
time and asks what is due; the asyncio layer only moves bytes and sleeps until
:meth:`Stage.deadline`.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Literal, Protocol

__all__ = [
    "AnswerReader",
    "Attribute",
    "ConnectionContext",
    "Deliver",
    "End",
    "Item",
    "LinkContext",
    "Piece",
    "Reply",
    "RequestFollower",
    "RequestSource",
    "Stage",
    "Toxic",
    "ToxicConfigError",
]

Direction = Literal["upstream", "downstream"]
EndKind = Literal["eof", "close", "reset"]

_INT64_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Piece:
    """Bytes travelling through a chain.

    ``stamp`` is the logical time of the bytes: when they were read from the socket,
    advanced by each latency toxic they pass, so that several latencies add up while a
    latency after a bandwidth limit still counts from the read.
    """

    data: bytes
    stamp: float


@dataclass(frozen=True, slots=True)
class End:
    """The end of a link's byte stream.

    ``eof``: the source closed its side (the link half-closes its destination).
    ``close``: a toxic closes the whole connection (FIN both ways).
    ``reset``: a toxic resets the whole connection (RST both ways).
    """

    kind: EndKind


@dataclass(frozen=True, slots=True)
class Reply:
    """Bytes a stage sends back to the link's source (e.g. an HTTP toxic answering a
    request itself). They skip the rest of the chain and are written at once."""

    data: bytes


@dataclass(frozen=True, slots=True, eq=False)
class Deliver:
    """A stage asks the connection to deliver ``data`` ``copies`` times upstream, each
    time on a fresh connection to the proxy's upstream, reading and discarding the
    answer (an HTTP toxic repeating a request). Like a :class:`Reply` it skips the rest
    of the chain.

    ``answer()`` makes a reader of one answer: ``feed(data)`` and ``feed_eof()`` return
    True once the answer is complete. With ``together`` the connection opens every
    connection first, calls ``ready(now)`` (the stage may release what it held for
    that moment), then writes ``data`` on all of them at once; otherwise the copies go
    one after another, each once the previous one is answered. ``done(ok, now)`` is
    called once per copy: ``ok`` when its answer was read, False when it could not be
    delivered (dial failed, the connection closed first, no answer in time).
    """

    data: bytes
    copies: int
    together: bool
    answer: Callable[[], AnswerReader]
    ready: Callable[[float], None]
    done: Callable[[bool, float], None]


class AnswerReader(Protocol):
    """Reads one answer to a :class:`Deliver` copy (see there)."""

    def feed(self, data: bytes) -> bool:
        """Answer bytes; True once the answer is complete."""
        ...

    def feed_eof(self) -> bool:
        """The server closed; True if that completes an answer."""
        ...


Item = Piece | End | Reply | Deliver


class RequestSource(Protocol):
    """An HTTP session counting a link's requests instead of the proxy's passive
    counter (see :meth:`Stage.request_source`). Positions are ``(kind, n, held)`` with
    kind ``head`` (between messages or in a head; ``held`` not yet framed), ``body``
    (``n`` bytes of a Content-Length body to come), ``chunk`` (at a chunk-size line or
    the trailers) or ``skip`` (``n`` bytes of chunk data and CRLF to come)."""

    def request_position(self) -> tuple[str, int, bytes] | None:
        """Where the client's stream stands now (None: cannot tell)."""
        ...

    def follow_requests(self, on: bool) -> RequestFollower | None:
        """Start (or stop) keeping the bytes from a switch to passthrough on; returns
        what keeps them (None when off or impossible)."""
        ...


class StreamWatch(Protocol):
    """Follows the bytes a link writes while no stage parses them (see
    :meth:`Stage.detach`)."""

    def feed(self, data: bytes | memoryview) -> bool:
        """Bytes written; False once the watch is done (the link then drops it)."""
        ...


class RequestFollower(Protocol):
    """Keeps a request stream's bytes from its switch to passthrough on."""

    #: set (to the bytes so far) once the stream went passthrough
    pending_tail: bytearray | None

    def tail(self) -> tuple[str, int, bytes] | None:
        """The position of the switch and every byte since; following stops."""
        ...


class ToxicConfigError(ValueError):
    """Bad attributes for a toxic; ``str(error)`` is the complete API message."""


@dataclass(frozen=True, slots=True)
class Attribute:
    """One attribute of a toxic type, as it appears in the API's ``attributes`` object.

    ``kind`` is ``int`` (Go's int64: floats, strings and booleans are refused), ``float``,
    ``str`` or ``bool``. ``minimum`` applies to numbers; ``unit`` goes into messages.
    """

    name: str
    kind: type = int
    default: object = 0
    minimum: float | None = 0
    unit: str = ""
    doc: str = ""

    def coerce(self, toxic_type: str, value: object) -> object:
        """Check ``value`` against the kind and minimum; return the stored value."""
        where = f"attribute {self.name!r} of toxic type {toxic_type!r}"
        unit = f" ({self.unit})" if self.unit else ""
        if self.kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ToxicConfigError(
                    f"bad request body: {where} must be an integer{unit}, got {value!r}"
                )
            if not -_INT64_MAX - 1 <= value <= _INT64_MAX:
                raise ToxicConfigError(
                    f"bad request body: {where} does not fit in a 64-bit integer: {value!r}"
                )
        elif self.kind is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ToxicConfigError(
                    f"bad request body: {where} must be a number{unit}, got {value!r}"
                )
            if not math.isfinite(value):
                raise ToxicConfigError(f"bad request body: {where} must be finite, got {value!r}")
            value = float(value)
        elif not isinstance(value, self.kind):
            raise ToxicConfigError(
                f"bad request body: {where} must be of type {self.kind.__name__}, got {value!r}"
            )
        if (
            self.minimum is not None
            and isinstance(value, int | float)
            and not isinstance(value, bool)
            and value < self.minimum
        ):
            raise ToxicConfigError(
                f"{where} must be >= {self.minimum:g}{unit}, got {value!r}; "
                f"use a value of at least {self.minimum:g}"
            )
        return value


@dataclass(eq=False)
class ConnectionContext:
    """What both links of one proxied connection share.

    ``shared`` is a scratch dict for toxics that coordinate the two directions (an
    upstream stage that duplicates a request tells the downstream stage how many extra
    responses to swallow); key it by toxic name. ``count`` adds to the proxy's stats
    counters (``http_requests``, ``http_responses``); ``note`` records a labelled event.
    """

    id: int
    proxy: str
    shared: dict[str, object] = field(default_factory=dict)
    count: Callable[[str, int], None] = field(default=lambda name, n: None)
    note: Callable[[str, Mapping[str, object]], None] = field(default=lambda label, data: None)


@dataclass(eq=False)
class LinkContext:
    """What a stage knows about the link it runs in."""

    direction: Direction
    connection: ConnectionContext
    rng: random.Random

    def note(self, label: str, **data: object) -> None:
        """Record a note (e.g. non-HTTP traffic through an HTTP toxic)."""
        self.connection.note(label, {"direction": self.direction, **data})

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to the proxy's stats counter ``name``."""
        self.connection.count(name, n)


class Stage:
    """Per-link state of one toxic: items and the time in, due items out.

    The default passes everything through. Subclasses override :meth:`feed` and call
    :meth:`emit` with a due time; outputs stay in order (a due time earlier than the last
    one is raised to it). After an :class:`End` a stage ignores further input.
    Override :meth:`drain` when removing the toxic must not release what it holds
    (a timeout toxic dropped its data for good).
    """

    def __init__(self) -> None:
        self._out: deque[tuple[float, Item]] = deque()
        self._last_due = -math.inf
        self.buffered = 0
        self.ended = False

    def feed(self, item: Item, now: float) -> None:
        """Take an item that reached this stage at ``now``."""
        self.emit(item, now)

    def accept(self, item: Item, now: float) -> None:
        """Entry point used by the chain: drops input after the end, then :meth:`feed`."""
        if self.ended:
            return
        if isinstance(item, End):
            self.ended = True
        self.feed(item, now)

    def take(self, data: bytes, now: float) -> bytes | None:
        """Bytes read at ``now``, for the first stage of a chain: as :meth:`accept` of a
        :class:`Piece`, then None. A stage may instead return the bytes to write at once
        when that is all the read produced (nothing held before or after, nothing
        else scheduled), sparing the link a poll; ``b""`` when it produced nothing."""
        self.accept(Piece(data, now), now)
        return None

    def emit(self, item: Item, due: float) -> None:
        """Schedule ``item`` to leave this stage at ``due`` (never before earlier items)."""
        if due < self._last_due:
            due = self._last_due
        self._last_due = due
        if isinstance(item, Piece):
            self.buffered += len(item.data)
        self._out.append((due, item))

    def cancel_pending(self) -> None:
        """Forget every scheduled output."""
        self._out.clear()
        self.buffered = 0

    def poll(self, now: float) -> list[Item]:
        """Return the items due at ``now``, in order."""
        out = self._out
        if not out or out[0][0] > now:
            return []
        ready: list[Item] = []
        while out and out[0][0] <= now:
            item = out.popleft()[1]
            if isinstance(item, Piece):
                self.buffered -= len(item.data)
            ready.append(item)
        return ready

    def deadline(self) -> float | None:
        """When :meth:`poll` next has something to return, or ``None``."""
        return self._out[0][0] if self._out else None

    def drain(self) -> list[Item]:
        """Hand back everything held, unchanged, because the chain changes (this toxic
        is updated or removed, or another toxic joined or left the link)."""
        items = [item for _, item in self._out]
        self.cancel_pending()
        return items

    def __repr__(self) -> str:
        due = self.deadline()
        when = "idle" if due is None else f"due={due:.3f}"
        return f"<{type(self).__name__} held={self.buffered} {when} ended={self.ended}>"

    def finishing(self) -> bool:
        """True while this stage must outlive the removal of its toxic to leave the
        stream consistent (an HTTP stage still swallowing a duplicated response). The
        link then keeps its whole chain unchanged and retries the change after each
        poll, so a removal waits for it; new toxics wait too (usually milliseconds)."""
        return False

    def request_source(self) -> RequestSource | None:
        """The HTTP session that parses and counts (``http_requests``) the client's
        requests from the bytes this stage gets, if it gets them as they are read (the
        first stage of an upstream chain); the proxy's passive request counter rests
        while it does. None for every other stage."""
        return None

    def on_remove(self) -> list[Item]:
        """Items to send after :meth:`drain` when the toxic leaves the link for good
        (a timeout toxic that dropped data closes the connection, as Toxiproxy does)."""
        return []

    def detach(self, seen: int) -> StreamWatch | None:
        """Called after the rebuild that removed this stage from its link; ``seen`` is how
        many bytes held in the chain at and behind it when it left (the first the link
        writes next). A stage whose parser must stay in step with the stream while no
        stage parses it (an HTTP session) returns the watch the link then feeds with
        what it writes; None for every other stage."""
        return None


class Toxic:
    """A toxic type: its attributes and the per-link stages it makes.

    Subclasses set ``type_name`` and ``attributes``, may override :meth:`check` for rules
    across attributes, and implement :meth:`start`. Instances are immutable snapshots:
    an update builds a new instance and every link restarts its chain with it.
    """

    type_name: ClassVar[str] = ""
    attributes: ClassVar[tuple[Attribute, ...]] = ()
    #: True for toxics that need both directions (HTTP toxics): the proxy starts a stage
    #: in both links of every connection, whichever stream the toxic was added on, and
    #: rolls its toxicity once per connection rather than once per link.
    both_links: ClassVar[bool] = False
    #: True for toxics that act on a link that carries no data (timeout closes idle
    #: connections): changes to them reach every open link at once. Other changes reach
    #: idle links on their next read, which keeps toxic changes cheap with many
    #: connections open.
    idle_effect: ClassVar[bool] = False

    def __init__(self, values: Mapping[str, object]) -> None:
        self.values: dict[str, object] = dict(values)

    @classmethod
    def from_attributes(cls, given: Mapping[str, object], current: Toxic | None = None) -> Toxic:
        """Validate ``given`` (merged over ``current``'s values) and build an instance.

        Keys match case-insensitively, unknown keys and ``None`` values are ignored,
        like Toxiproxy's JSON decoding. Raises :class:`ToxicConfigError`.
        """
        values = (
            dict(current.values)
            if current is not None
            else {a.name: a.default for a in cls.attributes}
        )
        by_lower = {a.name.lower(): a for a in cls.attributes}
        for key, value in given.items():
            attribute = by_lower.get(str(key).lower())
            if attribute is None or value is None:
                continue
            values[attribute.name] = attribute.coerce(cls.type_name, value)
        toxic = cls(values)
        toxic.check()
        return toxic

    def check(self) -> None:
        """Rules across attributes; raise :class:`ToxicConfigError` with the fix."""

    def int(self, name: str) -> int:
        """An integer attribute."""
        value = self.values[name]
        assert isinstance(value, int)
        return value

    def start(self, link: LinkContext, now: float, previous: Stage | None) -> Stage:
        """A new stage for one link, starting at ``now``. ``previous`` is this toxic's
        stage in that link before the chain changed (to carry state such as bytes already
        counted), or ``None``."""
        raise NotImplementedError

    def to_json(self) -> dict[str, object]:
        """Every attribute of the type, defaults included."""
        return {a.name: self.values.get(a.name, a.default) for a in self.attributes}

    def __repr__(self) -> str:
        attrs = " ".join(f"{k}={v!r}" for k, v in self.to_json().items())
        return f"<{type(self).__name__} {self.type_name} {attrs}>".replace(" >", ">")
