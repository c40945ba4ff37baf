"""The data path: the sockets of a connection and the links between them.

Each connection (:mod:`._connection`) has a client side and a server side (asyncio
Protocols writing straight to the other side's transport) and two :class:`Link`
objects: ``upstream`` (client to server) and ``downstream`` (server to client). A link
with no toxic forwards each read with one transport write; with toxics it feeds the
sans-IO chain and sleeps until the chain's deadline. The upstream link also shows what
it reads to a passive HTTP/1.x request counter (:mod:`._http_count`) until the stream
turns out not to be HTTP/1.x; the counter rests while an HTTP toxic's session parses
(and counts) the same bytes as they are read (:meth:`Link.on_data`). After the last
HTTP toxic left a link, the link shows what it writes to a watch that keeps
the connection's HTTP session in step with the messages, until an HTTP toxic is back
(:meth:`Link.set_toxics`, ``HttpStage.detach``). Backpressure: a
link pauses reading its source while its destination's write buffer is over the
high-water mark or its chain holds more than :data:`CHAIN_HIGH` bytes, so nothing is
buffered without bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

from pytest_chaos.proxy._http_count import RequestCounter
from pytest_chaos.toxics import (
    Chain,
    Deliver,
    End,
    Item,
    LinkContext,
    Piece,
    Reply,
    Stage,
    StreamWatch,
)

if TYPE_CHECKING:
    import asyncio
    import random
    from collections.abc import Mapping, Sequence

    from pytest_chaos.toxics import ConnectionContext, Toxic

__all__ = ["CHAIN_HIGH", "Connection", "Link", "Owner", "ProxyStats", "Side", "ToxicEntry"]

#: A link stops reading its source while its chain holds more than this many bytes.
CHAIN_HIGH = 4 * 1024 * 1024
CHAIN_LOW = CHAIN_HIGH // 2
#: Timers fire this early and release what is due within it (see Link.pump).
TIMER_SLACK = 0.0005


@dataclass(slots=True)
class ProxyStats:
    """The per-proxy counters of the stats extension (see docs/internals.md)."""

    connections_accepted: int = 0
    connections_open: int = 0
    connections_failed: int = 0
    bytes_upstream: int = 0
    bytes_downstream: int = 0
    http_requests: int = 0
    http_responses: int = 0
    http_errors_injected: int = 0
    http_duplicates_sent: int = 0
    http_duplicates_failed: int = 0
    http_requests_delayed: int = 0
    http_passthrough_connections: int = 0

    def add(self, name: str, n: int) -> None:
        """Add ``n`` to the counter ``name`` (unknown names are ignored)."""
        if name in _TOXIC_COUNTERS:
            setattr(self, name, getattr(self, name) + n)


#: The counters toxics may add to through ``LinkContext.count``.
_TOXIC_COUNTERS = frozenset(
    {
        "http_requests",
        "http_responses",
        "http_errors_injected",
        "http_duplicates_sent",
        "http_duplicates_failed",
        "http_requests_delayed",
        "http_passthrough_connections",
    }
)


class RequestSource(Protocol):
    """An HTTP session counting a link's requests instead of the passive counter
    (``pytest_chaos.toxics.Stage.request_source``)."""

    def request_position(self) -> tuple[str, int, bytes] | None: ...

    def follow_requests(self, on: bool) -> RequestFollower | None: ...


class RequestFollower(Protocol):
    """Keeps the bytes of a request stream from its switch to passthrough on."""

    pending_tail: bytearray | None

    def tail(self) -> tuple[str, int, bytes] | None: ...


class ToxicEntry(Protocol):
    """What a link needs to know about a toxic on its proxy."""

    @property
    def name(self) -> str: ...

    @property
    def toxicity(self) -> float: ...

    @property
    def toxic(self) -> Toxic: ...

    @property
    def version(self) -> int: ...


class Owner(Protocol):
    """The proxy a connection belongs to."""

    name: str
    upstream: str
    stats: ProxyStats
    #: Generation of the toxics of each stream (upstream, downstream).
    gens: list[int]
    #: Links that have a chain.
    chained: set[Link]

    @property
    def read_buffer(self) -> memoryview: ...

    @property
    def rng(self) -> random.Random: ...

    @property
    def dial_timeout(self) -> float: ...

    def toxics_for(self, stream: str) -> Sequence[ToxicEntry]: ...

    # Any: the proxy keeps the concrete connection class, which this module must not
    # import (it imports this one).
    def connection_closed(self, conn: Any) -> None:
        """A connection closed (``conn`` is the proxy's `Connection`)."""
        ...

    def connection_gone(self, conn: Any) -> None:
        """A connection is gone."""
        ...

    def note(self, label: str, data: Mapping[str, object]) -> None: ...


class Connection(Protocol):
    """What a link uses of its connection (`pytest_chaos.proxy._connection.Connection`)."""

    owner: Owner
    loop: asyncio.AbstractEventLoop
    closed: bool
    zero_copy: bool
    rolls: dict[str, tuple[int, bool]]
    context: ConnectionContext

    def side_made(self, side: Side) -> None:
        """A socket of the connection is connected."""
        ...

    def side_lost(self, side: Side) -> None:
        """A socket of the connection is lost."""
        ...

    def link_ended(self) -> None:
        """A link has delivered its end."""
        ...

    def close(self, *, reset: bool = False, abort: bool = False) -> None:
        """Close both sockets."""
        ...

    def deliver(self, item: Deliver) -> None:
        """Deliver copies of a request on fresh upstream connections."""
        ...


class Side(asyncio.BufferedProtocol):
    """One socket of a connection. ``reader`` reads from it, ``writer`` writes to it.

    Reads land in one buffer shared by every socket of the manager: a link consumes the
    bytes before ``buffer_updated`` returns (the transport copies what it cannot send at
    once, a chain gets a copy), so no read allocates.
    """

    __slots__ = (
        "buffer", "conn", "early", "eof_seen", "eof_sent", "lost", "reader", "transport", "writer",
    )  # fmt: skip

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.buffer = conn.owner.read_buffer
        self.transport: asyncio.Transport | None = None
        self.reader: Link | None = None
        self.writer: Link | None = None
        self.lost = False
        self.eof_seen = False  # the peer half-closed (its EOF reached the reader)
        self.eof_sent = False
        self.early: list[bytes | None] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.transport is not None:
            return  # adopted when the transport was made (fast path): already handled
        # uvloop's transports do not subclass asyncio.Transport, hence no isinstance check.
        self.transport = cast(asyncio.Transport, transport)
        self.conn.side_made(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        link = self.reader
        if link is None:
            self._early(bytes(self.buffer[:nbytes]))
            return
        if link.gen != link.gens[link.index]:
            link.sync()
        if link.chain is None and not link.ended:
            link.count(nbytes)
            if link.http is not None and not link.http.feed(self.buffer[:nbytes]):
                link.http = None  # not HTTP/1.x: stop scanning this connection
            if self.conn.zero_copy:
                link.dest_transport.write(self.buffer[:nbytes])
            else:
                link.dest_transport.write(bytes(self.buffer[:nbytes]))
            if link.watch is not None and not link.watch.feed(self.buffer[:nbytes]):
                link.watch = None
        else:
            link.on_data(bytes(self.buffer[:nbytes]))

    def eof_received(self) -> bool:
        self.eof_seen = True
        link = self.reader
        if link is None:
            self._early(None)
        else:
            link.sync()
            link.on_eof()
        return True  # keep the write side open: half-close is propagated, not forced

    def _early(self, data: bytes | None) -> None:
        # Some loops (uvloop) read once before connection_made's pause_reading takes
        # effect: keep what arrives before the links exist (None is the EOF).
        if not self.conn.closed:
            self.early.append(data)
            if self.transport is not None:
                self.transport.pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.conn.side_lost(self)

    def pause_writing(self) -> None:
        if self.writer is not None:
            self.writer.set_paused("dest", True)

    def resume_writing(self) -> None:
        if self.writer is not None:
            self.writer.set_paused("dest", False)


class Link:
    """One direction of a connection with its toxic chain.

    Toxic changes reach a link through :meth:`sync`: at once when the link holds data or
    a timer, or when the toxic acts on idle links (``Toxic.idle_effect``); otherwise on
    the link's next read, which nobody can tell apart and which keeps adding a toxic to
    a proxy with a thousand idle connections cheap.
    """

    def __init__(self, conn: Connection, direction: str, source: Side, dest: Side) -> None:
        assert source.transport is not None and dest.transport is not None
        owner = conn.owner
        self.conn = conn
        self.direction = direction
        self.source = source
        self.dest = dest
        self.source_transport: asyncio.Transport = source.transport
        self.dest_transport: asyncio.Transport = dest.transport
        self.upstream = direction == "upstream"
        self.index = 0 if self.upstream else 1
        self.gens = owner.gens
        self.gen = -1
        self.stats = owner.stats
        self.loop = conn.loop
        self.chain: Chain | None = None
        self.stages: dict[str, Stage] = {}
        self.signature: tuple[tuple[str, int], ...] = ()
        # toxic name -> (version rolled for, hit): toxicity is rolled when a toxic joins
        # the link or is updated, and kept while other toxics come and go.
        self.rolls: dict[str, tuple[int, bool]] = {}
        self.context = LinkContext(direction, conn.context, owner.rng)  # type: ignore[arg-type]
        self.ended = False  # the End left the chain (or the source ended with no chain)
        self._timer: asyncio.TimerHandle | None = None
        self._pause_reasons: set[str] = set()
        #: counts the client's HTTP/1.x requests (``http_requests``) until the stream
        #: turns out not to be HTTP/1.x; None then, and on the downstream link
        self.http: RequestCounter | None = RequestCounter(owner.stats) if self.upstream else None
        #: the HTTP session that counts instead while it parses the stream as it is read
        #: (the counter rests in ``_resting`` meanwhile)
        self.http_source: RequestSource | None = None
        self._follower: RequestFollower | None = None
        self._resting: RequestCounter | None = None
        #: follows what is written while no stage parses it (`Stage.detach`)
        self.watch: StreamWatch | None = None

    def count(self, n: int) -> None:
        """Count bytes read from the source."""
        if self.upstream:
            self.stats.bytes_upstream += n
        else:
            self.stats.bytes_downstream += n

    def busy(self) -> bool:
        """Whether the chain holds data or waits for a deadline."""
        return self.chain is not None and (self._timer is not None or self.chain.buffered() > 0)

    def on_data(self, data: bytes) -> None:
        """Bytes read from the source."""
        if self.ended:
            return
        if self.upstream:
            self.stats.bytes_upstream += len(data)
        else:
            self.stats.bytes_downstream += len(data)
        counter = self.http
        if counter is not None:
            if self.chain is not None and counter.between_requests() and self._hand_over():
                pass  # the chain's HTTP session counts from here on
            elif not counter.feed(data):
                self.http = None
        if self.chain is None:
            self.dest_transport.write(data)
            if self.watch is not None and not self.watch.feed(data):
                self.watch = None
            return
        now = self.loop.time()
        chain = self.chain
        direct = chain.take(data, now)
        follower = self._follower
        if follower is not None and follower.pending_tail is not None:
            self._resume(follower.tail())  # the session stopped parsing: the counter goes on
        if direct is not None and not self.conn.closed and self.chain is chain:
            # Passed straight through: nothing held, nothing to poll or time.
            if direct:
                self.dest_transport.write(direct)
                if self.watch is not None and not self.watch.feed(direct):
                    self.watch = None
            if not self._pause_reasons and self.gen != -1:
                return
        self.pump(now)

    def _hand_over(self) -> bool:
        """Rest the passive counter (between two requests) if the chain's first stage
        is an HTTP session that parses the stream from the same point."""
        assert self.chain is not None
        source = self.chain.stages[0].request_source()
        if source is None or source.request_position() != ("head", 0, b""):
            return False
        follower = source.follow_requests(True)
        if follower is None:
            return False
        self._resting, self.http, self.http_source = self.http, None, source
        self._follower = follower
        return True

    def _resume(self, position: tuple[str, int, bytes] | None) -> None:
        """The HTTP session stops counting: the passive counter goes on from
        ``position`` (as the session describes it), with the bytes it held."""
        counter, source = self._resting, self.http_source
        self._resting = self.http_source = self._follower = None
        if source is not None:
            source.follow_requests(False)
        if counter is None or position is None:
            return
        kind, left, held = position
        counter.resume(kind, left)
        self.http = counter if not held or counter.feed(held) else None

    def on_eof(self) -> None:
        """The source half-closed."""
        if self.chain is None:
            self.perform(End("eof"))
            return
        now = self.loop.time()
        self.chain.feed(End("eof"), now)
        self.pump()

    def pump(self, now: float | None = None) -> None:
        """Write what is due (at ``now``, by default the loop's time) and sleep until the
        next deadline."""
        self._timer = None
        chain = self.chain
        if chain is None or self.conn.closed:
            return
        if now is None:
            now = self.loop.time()
        # epoll sleeps in whole milliseconds, rounded up: wake half a millisecond early
        # and release what is due within that half, so timing errors centre on zero.
        for item in chain.poll(now + TIMER_SLACK):
            self.perform(item)
            if self.conn.closed:
                return
        if self.chain is not chain:  # a toxic performed a change (not in built-ins)
            return
        if self.gen == -1:  # a change waits for a finishing stage: try again
            self.sync()
            if self.chain is not chain:
                return
        due, buffered = chain.status()
        if due is not None:
            self._timer = self.loop.call_at(due - TIMER_SLACK, self.pump)
        if buffered > CHAIN_HIGH:
            self.set_paused("chain", True)
        elif buffered < CHAIN_LOW and "chain" in self._pause_reasons:
            self.set_paused("chain", False)

    def perform(self, item: Item) -> None:
        """Carry out one item that left the chain."""
        if type(item) is Piece or isinstance(item, Piece):
            if not self.ended:
                self.dest_transport.write(item.data)
                if self.watch is not None and not self.watch.feed(item.data):
                    self.watch = None
        elif isinstance(item, Reply):
            if not self.source.eof_sent and not self.source_transport.is_closing():
                self.source_transport.write(item.data)
        elif isinstance(item, Deliver):
            self.conn.deliver(item)
        elif item.kind == "eof":
            if self.ended:
                return
            self.ended = True
            if not self.dest_transport.is_closing() and not self.dest.eof_sent:
                self.dest.eof_sent = True
                try:
                    self.dest_transport.write_eof()
                except OSError:
                    # The peer is already gone (ENOTCONN): nothing left to half-close.
                    self.conn.close()
                    return
            self.conn.link_ended()
        elif item.kind == "close":
            self.ended = True
            self.conn.close()
        else:
            self.ended = True
            self.conn.close(reset=True)

    def set_paused(self, reason: str, paused: bool) -> None:
        """Pause or resume reading the source for ``reason``."""
        before = bool(self._pause_reasons)
        if paused:
            self._pause_reasons.add(reason)
        else:
            self._pause_reasons.discard(reason)
        after = bool(self._pause_reasons)
        if before == after or self.source_transport.is_closing():
            return
        if after:
            self.source_transport.pause_reading()
        else:
            self.source_transport.resume_reading()

    def sync(self) -> None:
        """Catch up with the proxy's toxics of this stream if they changed."""
        gen = self.gens[self.index]
        if self.gen != gen:
            self.gen = gen
            self.set_toxics(self.conn.owner.toxics_for(self.direction))

    def set_toxics(self, entries: Iterable[ToxicEntry]) -> None:
        """Rebuild the chain (toxicity rolled for new or updated toxics) keeping every
        byte in flight."""
        if self.conn.closed:
            return
        entries = list(entries)
        signature = tuple((entry.name, entry.version) for entry in entries)
        if signature == self.signature:
            return
        names = {entry.name for entry in entries}
        if any(name not in names and st.finishing() for name, st in self.stages.items()):
            self.gen = -1  # retried on the next read or poll
            return
        self.signature = signature
        now = self.loop.time()
        held: list[Item] = []
        detaching: list[tuple[Stage, int]] = []
        for name, stage in reversed(self.stages.items()):  # later stages hold older data
            held.extend(stage.drain())
            if name not in names:
                held.extend(stage.on_remove())
                # What it already saw of what is held: the first bytes written next.
                seen = sum(len(item.data) for item in held if isinstance(item, Piece))
                detaching.append((stage, seen))
        stages: dict[str, Stage] = {}
        rolls: dict[str, tuple[int, bool]] = {}
        for entry in entries:
            # Toxics spanning both links roll once per connection, the others per link.
            table = self.conn.rolls if entry.toxic.both_links else self.rolls
            roll = table.get(entry.name)
            if roll is None or roll[0] != entry.version:
                roll = (entry.version, self.conn.owner.rng.random() < entry.toxicity)
                table[entry.name] = roll
            rolls[entry.name] = roll
            if roll[1]:
                previous = self.stages.get(entry.name)
                stages[entry.name] = entry.toxic.start(self.context, now, previous)
        self.stages = stages
        self.rolls = rolls
        for removed, seen in detaching:
            # A stage that parsed this link and has no successor in it may leave a watch.
            watch = removed.detach(seen)
            if watch is not None:
                self.watch = watch
        self.chain = Chain(list(stages.values())) if stages else None
        source = self.http_source
        if source is not None:
            first = self.chain.stages[0].request_source() if self.chain is not None else None
            if first is not source:
                # The session no longer sees the bytes as they are read (gone, or behind
                # another stage): the counter resumes where it stands.
                self._resume(source.request_position())
        if self.chain is None:
            self.conn.owner.chained.discard(self)
        else:
            self.conn.owner.chained.add(self)
        self.cancel_timer()
        if self.chain is None:
            for item in held:
                self.perform(item)
            self.set_paused("chain", False)
            return
        if self.ended:
            return
        for item in held:
            self.chain.feed(item, now)
        self.pump()

    def cancel_timer(self) -> None:
        """Stop the pending wake-up."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def __repr__(self) -> str:
        toxics = list(self.stages)
        held = self.chain.buffered() if self.chain is not None else 0
        state = "ended" if self.ended else ("paused" if self._pause_reasons else "open")
        return f"<Link {self.direction} {state} toxics={toxics} held={held}>"
