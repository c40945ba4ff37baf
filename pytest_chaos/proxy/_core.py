"""The proxy manager: proxies, their listeners, connections and toxics.

:class:`ProxyManager` is the model behind the Toxiproxy HTTP API. Every method runs on
the server's event loop; the HTTP layer maps :class:`~pytest_chaos.proxy._errors.ApiError`
to responses. Connections live in :mod:`._connection`, the data path in :mod:`._link`,
addresses in :mod:`._address`, the toxics in :mod:`pytest_chaos.toxics`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from pytest_chaos.proxy._address import BACKLOG, bind_listener, canonical_listen, format_address
from pytest_chaos.proxy._connection import Connection
from pytest_chaos.proxy._errors import BadRequest, BindError, Conflict, NotFound
from pytest_chaos.proxy._fastpath import FastListener, is_fast_loop, make_transport
from pytest_chaos.proxy._link import Link, ProxyStats, Side
from pytest_chaos.toxics import Toxic, ToxicConfigError, get_toxic_class

_log = logging.getLogger(__name__)

#: Notes a proxy keeps for its stats (older ones are dropped).
_NOTES_KEPT = 50

__all__ = ["Proxy", "ProxyManager", "ToxicState"]

_STREAMS = ("upstream", "downstream")
_READ_SIZE = 256 * 1024
#: Where a proxy created with an omitted or empty ``listen`` binds: a free loopback port.
DEFAULT_LISTEN = "127.0.0.1:0"


@dataclass(eq=False)
class ToxicState:
    """One toxic on a proxy: what the API shows and the validated toxic behind it."""

    name: str
    type: str
    stream: str
    toxicity: float
    toxic: Toxic
    #: Bumped by every update, so that links re-roll toxicity for this toxic only.
    version: int = 0

    @property
    def direction(self) -> str:
        """``upstream`` or ``downstream``: the link this toxic runs in. ``stream`` keeps the
        text the client sent (``UPSTREAM``), as Toxiproxy stores and shows it, while the
        data path matches it case-insensitively, as Toxiproxy's ParseDirection does."""
        return self.stream.lower()

    def to_json(self) -> dict[str, object]:
        """The Toxiproxy toxic object."""
        return {
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
            "attributes": self.toxic.to_json(),
        }

    def __repr__(self) -> str:
        return (
            f"<ToxicState {self.name!r} {self.type} {self.stream} toxicity={self.toxicity} "
            f"{self.toxic.to_json()}>"
        )


class Proxy:
    """A named proxy: listener, upstream, toxics per stream, open connections, stats."""

    def __init__(self, manager: ProxyManager, name: str, listen: str, upstream: str) -> None:
        self.manager = manager
        self.name = name
        self.listen = listen  # as given; the bound address is reported while enabled
        self.upstream = upstream
        self.enabled = False
        self.bound: str | None = None
        self.stats = ProxyStats()
        #: The last notes of this proxy's toxics, numbered from 1 so that a reader of
        #: the stats can tell which it has already seen.
        self.notes: collections.deque[tuple[int, str, dict[str, object]]] = collections.deque(
            maxlen=_NOTES_KEPT
        )
        self._note_seq = 0
        self.toxics: dict[str, ToxicState] = {}
        self.connections: set[Connection] = set()
        self.gens = [0, 0]  # bumped when the toxics of (upstream, downstream) change
        self.chained: set[Link] = set()
        self._lingering: set[Connection] = set()
        self._server: asyncio.Server | None = None
        self._listener: FastListener | None = None
        self._next_id = 0

    # -- what Connection needs (pytest_chaos.proxy._connection.Owner) -------------------------

    @property
    def rng(self) -> random.Random:
        """The manager's seeded RNG (toxicity rolls, jitter, slice sizes)."""
        return self.manager.rng

    @property
    def read_buffer(self) -> memoryview:
        """The manager's read buffer, shared by every socket on its loop."""
        return self.manager.read_buffer

    @property
    def dial_timeout(self) -> float:
        """Seconds an upstream dial may take."""
        return self.manager.dial_timeout

    def toxics_for(self, stream: str) -> list[ToxicState]:
        """The toxics a link of ``stream`` runs, in insertion order (those that span both
        links run in both streams)."""
        return [t for t in self.toxics.values() if t.direction == stream or t.toxic.both_links]

    def connection_closed(self, conn: Connection) -> None:
        """A connection started closing; its sockets may still be flushing."""
        self.connections.discard(conn)
        self._lingering.add(conn)

    def connection_gone(self, conn: Connection) -> None:
        """Every socket of a connection is closed."""
        self.connections.discard(conn)
        self._lingering.discard(conn)

    def note(self, label: str, data: Mapping[str, object]) -> None:
        """A toxic or the data path recorded something; the stats show the last ones."""
        self.manager.record_note(self.name, label, data)
        self._note_seq += 1
        self.notes.append((self._note_seq, label, dict(data)))

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and accept; raises BindError."""
        if self._server is not None or self._listener is not None:
            return
        # An omitted or empty listen is a free port, as in Toxiproxy; but on loopback,
        # where Toxiproxy's net.Listen("tcp", "") binds every interface (docs/proxy.md,
        # "Differences from Toxiproxy 2.12").
        sock = bind_listener(self.listen or DEFAULT_LISTEN)
        loop = asyncio.get_running_loop()
        host, port = sock.getsockname()[:2]
        if is_fast_loop(loop):
            self._listener = FastListener(loop, sock, self._accepted, self._accept_error)
        else:
            self._server = await loop.create_server(self._accept, sock=sock, backlog=BACKLOG)
        self.bound = format_address(host, port)
        # Like Toxiproxy, the bound address replaces the given one, so that disabling and
        # re-enabling a proxy on port 0 keeps its port and clients can reconnect.
        self.listen = self.bound
        self.enabled = True

    def _accept(self) -> asyncio.BaseProtocol:
        self._next_id += 1
        conn = Connection(self, self._next_id, asyncio.get_running_loop())
        self.connections.add(conn)
        return conn.client

    def _accepted(self, sock: socket.socket, peer: object) -> None:
        # Adopt the transport at once, so the dial starts in this loop turn rather than
        # on connection_made in the next one.
        side = self._accept()
        assert isinstance(side, Side)
        side.transport = make_transport(asyncio.get_running_loop(), sock, side, {"peername": peer})
        side.conn.side_made(side)

    def _accept_error(self, exc: OSError) -> None:
        self.note("accept_failed", {"error": str(exc)})

    async def stop(self) -> None:
        """Close the listener and abort every connection."""
        self.enabled = False
        self.bound = None
        server, self._server = self._server, None
        if server is not None:
            server.close()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        conns = list(self.connections) + list(self._lingering)
        dials = [t for c in conns if (t := c.dial_task()) is not None]
        for conn in conns:
            conn.close(abort=True)
        if dials:
            await asyncio.gather(*dials, return_exceptions=True)
        # Aborted transports report connection_lost on the next loop iterations.
        for _ in range(3):
            await asyncio.sleep(0)
        self.connections.clear()
        self._lingering.clear()

    def differs(self, listen: str, upstream: str) -> bool:
        """Whether ``listen``/``upstream`` name another address than this proxy's, the way
        Toxiproxy compares them (populate keeps a proxy that does not differ)."""
        return canonical_listen(listen) != canonical_listen(self.listen) or (
            upstream != self.upstream
        )

    def apply_toxics(self, changed: ToxicState | None = None) -> None:
        """Make open connections follow a change of ``changed`` (or of every toxic).

        Links that hold data or a timer, and every link when the toxic acts on idle
        connections, rebuild now; the others on their next read (see Link).
        """
        streams: tuple[str, ...] = _STREAMS
        if changed is not None and not changed.toxic.both_links:
            streams = (changed.direction,)
        for stream in streams:
            self.gens[_STREAMS.index(stream)] += 1
        if changed is None or changed.toxic.idle_effect:
            links = [conn.link(s) for conn in self.connections for s in streams]
        else:
            links = [link for link in self.chained if link.direction in streams and link.busy()]
        for link in links:
            if link is None:
                continue
            try:
                link.sync()
            except Exception:
                # One broken connection must neither fail the admin request nor keep
                # the change from the other connections: drop that connection alone.
                _log.exception(
                    "closing connection of proxy %r after a failed toxic change", self.name
                )
                link.conn.close(reset=True)

    # -- JSON --------------------------------------------------------------------------

    def toxics_json(self) -> list[dict[str, object]]:
        """Upstream toxics first, then downstream, each in insertion order."""
        return [t.to_json() for s in _STREAMS for t in self.toxics.values() if t.direction == s]

    def to_json(self) -> dict[str, object]:
        """The Toxiproxy proxy object."""
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": self.toxics_json(),
        }

    def stats_json(self) -> dict[str, object]:
        """The stats extension object (docs/internals.md)."""
        s = self.stats
        return {
            "name": self.name,
            "connections_accepted": s.connections_accepted,
            "connections_open": s.connections_open,
            "connections_failed": s.connections_failed,
            "bytes_upstream": s.bytes_upstream,
            "bytes_downstream": s.bytes_downstream,
            "http_requests": s.http_requests,
            "http_responses": s.http_responses,
            "http_errors_injected": s.http_errors_injected,
            "http_duplicates_sent": s.http_duplicates_sent,
            "http_duplicates_failed": s.http_duplicates_failed,
            "http_requests_delayed": s.http_requests_delayed,
            "http_passthrough_connections": s.http_passthrough_connections,
            "notes": [
                {"seq": seq, "label": label, "data": data} for seq, label, data in self.notes
            ],
        }

    def __repr__(self) -> str:
        state = "enabled" if self.enabled else "disabled"
        listen = self.bound or self.listen
        return (
            f"<Proxy {self.name!r} {listen} -> {self.upstream} {state} "
            f"toxics={list(self.toxics)} open={len(self.connections)}>"
        )


class ProxyManager:
    """Every proxy of one embedded server. Call all methods on the server's loop."""

    def __init__(self, *, seed: int | None = None, dial_timeout: float = 5.0) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.dial_timeout = dial_timeout
        self._proxies: dict[str, Proxy] = {}
        #: One read buffer for every socket: reads are consumed before the next one.
        self.read_buffer = memoryview(bytearray(_READ_SIZE))
        #: The last notes recorded by toxics: (proxy, label, data).
        self.notes: collections.deque[tuple[str, str, dict[str, object]]] = collections.deque(
            maxlen=1000
        )

    def record_note(self, proxy: str, label: str, data: Mapping[str, object]) -> None:
        """Keep a note from a toxic or the data path."""
        self.notes.append((proxy, label, dict(data)))

    # -- proxies -----------------------------------------------------------------------

    def names(self) -> list[str]:
        """Proxy names in creation order."""
        return list(self._proxies)

    def get(self, name: str) -> Proxy:
        """The proxy ``name`` or NotFound."""
        proxy = self._proxies.get(name)
        if proxy is None:
            raise NotFound("proxy not found")
        return proxy

    async def create(self, name: str, listen: str, upstream: str, enabled: bool = True) -> Proxy:
        """Create a proxy; Conflict if the name is taken, BindError if it cannot listen."""
        if name in self._proxies:
            raise Conflict("proxy already exists")
        proxy = Proxy(self, name, listen, upstream)
        if enabled:
            await proxy.start()
        self._proxies[name] = proxy
        return proxy

    async def update(
        self,
        name: str,
        *,
        listen: str | None = None,
        upstream: str | None = None,
        enabled: bool | None = None,
    ) -> Proxy:
        """Change listen, upstream or enabled; a changed address restarts the proxy."""
        proxy = self.get(name)
        new_listen = proxy.listen if listen is None else listen
        new_upstream = proxy.upstream if upstream is None else upstream
        restart = proxy.differs(new_listen, new_upstream)
        if restart:
            proxy.listen = new_listen
            proxy.upstream = new_upstream
        want = proxy.enabled if enabled is None else enabled
        if restart or not want:
            await proxy.stop()
        if want and not proxy.enabled:
            await proxy.start()
        return proxy

    async def delete(self, name: str) -> None:
        """Stop and forget a proxy."""
        proxy = self.get(name)
        del self._proxies[name]
        await proxy.stop()

    async def reset(self) -> None:
        """Enable every proxy and remove every toxic; deletes nothing."""
        failure: BindError | None = None
        for proxy in list(self._proxies.values()):
            if proxy.toxics:
                proxy.toxics.clear()
                proxy.apply_toxics()
            if not proxy.enabled:
                try:
                    await proxy.start()
                except BindError as exc:
                    failure = failure or exc
        if failure is not None:
            raise failure

    # -- toxics ------------------------------------------------------------------------

    def add_toxic(
        self,
        proxy: str,
        *,
        type: str,
        name: str | None,
        stream: str,
        toxicity: float,
        attributes: Mapping[str, object],
    ) -> ToxicState:
        """Add a toxic; it applies to connections already open."""
        p = self.get(proxy)
        # As Toxiproxy: the stream matches case-insensitively ("" is invalid; the API
        # passes "downstream" for an omitted or null one) but is stored as sent, and the
        # default name uses it as sent: "UPSTREAM" gives latency_UPSTREAM.
        if stream.lower() not in _STREAMS:
            raise BadRequest("stream was invalid, can be either upstream or downstream")
        cls = get_toxic_class(type) if type else None
        if cls is None:
            raise BadRequest("invalid toxic type")
        toxic_name = name or f"{type}_{stream}"
        if toxic_name in p.toxics:
            raise Conflict("toxic already exists")
        toxicity = 1.0 if toxicity is None else _check_toxicity(toxicity)  # null: default
        try:
            toxic = cls.from_attributes(attributes)
        except ToxicConfigError as exc:
            raise BadRequest(str(exc)) from None
        state = ToxicState(toxic_name, type, stream, toxicity, toxic)
        p.toxics[toxic_name] = state
        p.apply_toxics(state)
        return state

    def get_toxic(self, proxy: str, toxic: str) -> ToxicState:
        """A toxic of a proxy, or NotFound."""
        state = self.get(proxy).toxics.get(toxic)
        if state is None:
            raise NotFound("toxic not found")
        return state

    def update_toxic(
        self,
        proxy: str,
        toxic: str,
        *,
        attributes: Mapping[str, object] | None,
        toxicity: float | None,
    ) -> ToxicState:
        """Merge attributes, maybe change toxicity; open connections follow."""
        p = self.get(proxy)
        state = self.get_toxic(proxy, toxic)
        new_toxicity = state.toxicity if toxicity is None else _check_toxicity(toxicity)
        try:
            new_toxic = type(state.toxic).from_attributes(attributes or {}, state.toxic)
        except ToxicConfigError as exc:
            raise BadRequest(str(exc)) from None
        state.toxic = new_toxic
        state.toxicity = new_toxicity
        state.version += 1
        p.apply_toxics(state)
        return state

    def remove_toxic(self, proxy: str, toxic: str) -> None:
        """Remove a toxic; data it held moves on."""
        p = self.get(proxy)
        state = self.get_toxic(proxy, toxic)
        del p.toxics[state.name]
        p.apply_toxics(state)

    def stats(self, proxy: str) -> dict[str, object]:
        """The stats extension object of a proxy."""
        return self.get(proxy).stats_json()

    async def close(self) -> None:
        """Stop every proxy (listeners and connections); the manager stays usable."""
        proxies = list(self._proxies.values())
        self._proxies.clear()
        for proxy in proxies:
            await proxy.stop()

    def __repr__(self) -> str:
        open_ = sum(len(p.connections) for p in self._proxies.values())
        return f"<ProxyManager proxies={self.names()} open_connections={open_} seed={self.seed}>"


def _check_toxicity(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(f"bad request body: toxicity must be a number, got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise BadRequest(
            f"toxicity must be between 0.0 and 1.0 (the share of connections affected), "
            f"got {value!r}; use 1.0 for every connection"
        )
    return float(value)
