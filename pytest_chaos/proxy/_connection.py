"""One proxied TCP connection: its two sockets, the upstream dial and its two links.

The dial never blocks accepting: on asyncio's selector loop it is a non-blocking
``connect`` watched by a writer callback (see :mod:`._fastpath`), elsewhere a task
around ``create_connection``; both give up after the manager's ``dial_timeout`` and count
the failure in ``connections_failed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import os
import socket
import struct
from typing import TYPE_CHECKING

from pytest_chaos.proxy._address import split_hostport
from pytest_chaos.proxy._copies import deliver
from pytest_chaos.proxy._fastpath import is_fast_loop, make_transport
from pytest_chaos.proxy._link import Link, Owner, Side
from pytest_chaos.toxics import ConnectionContext

if TYPE_CHECKING:
    from pytest_chaos.toxics import Deliver

__all__ = ["Connection"]

_LINGER_ZERO = struct.pack("ii", 1, 0)


class Connection:
    """A client connection, its upstream connection and the two links between them."""

    def __init__(self, owner: Owner, conn_id: int, loop: asyncio.AbstractEventLoop) -> None:
        self.owner = owner
        self.id = conn_id
        self.loop = loop
        self.client = Side(self)
        self.server: Side | None = None
        self.up: Link | None = None
        self.down: Link | None = None
        self.closed = False
        # asyncio's selector transports copy what they cannot send at once, so the shared
        # read buffer can be written as is; other loops (uvloop) may keep a reference.
        self.zero_copy = isinstance(loop, asyncio.SelectorEventLoop)
        self.rolls: dict[str, tuple[int, bool]] = {}
        self._dial: asyncio.Task[None] | None = None
        self._dial_sock: socket.socket | None = None
        self._dial_timer: asyncio.TimerHandle | None = None
        # Copies of requests on their own upstream connections (see deliver).
        self._copies: set[asyncio.Task[None]] = set()
        self.context = ConnectionContext(conn_id, owner.name, count=self._count, note=owner.note)

    def _count(self, name: str, n: int) -> None:
        """A toxic's count. ``http_requests`` is the passive counter's while it still
        follows the client's stream (an HTTP toxic would count the same requests)."""
        if name == "http_requests":
            if self.up is None or self.up.http is None:
                self.owner.stats.http_requests += n
        elif name == "http_responses":
            self.owner.stats.http_responses += n
        else:
            self.owner.stats.add(name, n)

    # -- lifecycle -------------------------------------------------------------------

    def side_made(self, side: Side) -> None:
        """A socket of this connection is connected."""
        assert side.transport is not None
        if side is self.client:
            # Nothing is read from the client before the links exist.
            side.transport.pause_reading()
            self.owner.stats.connections_accepted += 1
            self.owner.stats.connections_open += 1
            self._start_dial()
        elif self.closed:
            side.transport.abort()
        else:
            self._start_links()

    @property
    def dialing(self) -> bool:
        """Whether the upstream dial is still pending."""
        return self._dial is not None or self._dial_sock is not None

    def _start_dial(self) -> None:
        upstream = self.owner.upstream
        try:
            host, port = split_hostport(upstream)
        except ValueError as exc:
            self._dial_failed(f"dial tcp {exc}")
            return
        host = host or "127.0.0.1"
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = None  # a name: resolving may block, so it goes through the loop
        if ip is None or not is_fast_loop(self.loop):
            self._dial = self.loop.create_task(self._connect(host, port))
            return
        family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        try:
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        except OSError as exc:
            self._dial_failed(f"dial tcp {upstream}: socket: {exc.strerror or exc}")
            return
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            err = sock.connect_ex((host, port))
        except OSError as exc:
            err = exc.errno or errno.EINVAL
        if err not in (0, errno.EINPROGRESS, errno.EAGAIN):
            sock.close()
            self._dial_failed(f"dial tcp {upstream}: connect: {os.strerror(err).lower()}")
            return
        self._dial_sock = sock
        self.loop.add_writer(sock.fileno(), self._dial_ready)
        self._dial_timer = self.loop.call_later(self.owner.dial_timeout, self._dial_timed_out)

    def _dial_ready(self) -> None:
        sock = self._take_dial_sock()
        if sock is None:
            return
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            sock.close()
            self._dial_failed(
                f"dial tcp {self.owner.upstream}: connect: {os.strerror(err).lower()}"
            )
            return
        # Adopt the transport at once rather than on connection_made, a loop turn later.
        self.server = Side(self)
        try:
            self.server.transport = make_transport(self.loop, sock, self.server)
        except Exception as exc:  # e.g. the loop is closing; never leave the socket open
            sock.close()
            self.server = None
            self._dial_failed(f"dial tcp {self.owner.upstream}: {exc}")
            return
        self.side_made(self.server)

    def _dial_timed_out(self) -> None:
        self._dial_timer = None
        sock = self._take_dial_sock()
        if sock is not None:
            sock.close()
            self._dial_failed(f"dial tcp {self.owner.upstream}: i/o timeout")

    def _take_dial_sock(self) -> socket.socket | None:
        sock, self._dial_sock = self._dial_sock, None
        if self._dial_timer is not None:
            self._dial_timer.cancel()
            self._dial_timer = None
        if sock is not None:
            self.loop.remove_writer(sock.fileno())
        return sock

    def _dial_failed(self, error: str) -> None:
        self.owner.stats.connections_failed += 1
        self.owner.note("dial_failed", {"upstream": self.owner.upstream, "error": error})
        self.close()

    async def _connect(self, host: str, port: int) -> None:
        try:
            async with asyncio.timeout(self.owner.dial_timeout):
                await self.loop.create_connection(self._server_side, host, port)
        except Exception as exc:  # any failure to dial counts; the client is closed
            self._dial = None
            self._dial_failed(f"dial tcp {self.owner.upstream}: {exc or type(exc).__name__}")
            return
        finally:
            # Also when cancelled by close(): the sockets may all be gone already.
            self._dial = None
            self._maybe_gone()
        if self.closed and self.server is not None and self.server.transport is not None:
            self.server.transport.abort()

    def _server_side(self) -> Side:
        self.server = Side(self)
        return self.server

    def _start_links(self) -> None:
        client, server = self.client, self.server
        assert server is not None and client.transport is not None
        self.up = Link(self, "upstream", client, server)
        self.down = Link(self, "downstream", server, client)
        client.reader = server.writer = self.up
        server.reader = client.writer = self.down
        self.up.sync()
        self.down.sync()
        for side in (client, server):
            early, side.early = side.early, []
            for data in early:
                if side.reader is None or self.closed:
                    break
                if data is None:
                    side.reader.on_eof()
                else:
                    side.reader.on_data(data)
        if not self.closed:
            client.transport.resume_reading()

    def link(self, stream: str) -> Link | None:
        """The link of ``stream`` (None while dialling)."""
        return self.up if stream == "upstream" else self.down

    def link_ended(self) -> None:
        """A link passed its end of stream; when both have (or the server's stream has
        ended after its socket was lost), the connection is done."""
        if self.up is None or self.down is None or not self.down.ended:
            return
        if self.up.ended or (self.server is not None and self.server.lost):
            self.close()

    def side_lost(self, side: Side) -> None:
        """A socket is gone: the connection goes with it.

        Except the upstream's while an answer for the client waits for the copies of a
        duplicated request (``http_duplicate``): the upstream often resets rather than
        closes (it closed with the tail of our request unread), yet what it answered
        before is the client's. The answer goes out once the copies are done, then the
        client's stream ends and the connection closes (:meth:`link_ended`)."""
        down = self.down
        held = down is not None and not down.ended and bool(self._copies)
        if side is self.server and held and not self.closed:
            assert down is not None
            if not side.eof_seen:
                side.eof_seen = True
                down.on_eof()
            return
        self.close()
        self._maybe_gone()

    def _maybe_gone(self) -> None:
        if (
            self.client.lost
            and (self.server is None or self.server.lost)
            and not self.dialing
            and not self._copies
        ):
            self.owner.connection_gone(self)

    def deliver(self, item: Deliver) -> None:
        """Deliver copies of a request on fresh upstream connections (an
        ``http_duplicate`` toxic asked). They outlive a normal close of this connection
        (the request reached the proxy, so its copies are delivered) and are cancelled
        when the connection is aborted (the proxy is stopping)."""
        task = self.loop.create_task(
            deliver(
                item,
                loop=self.loop,
                upstream=self.owner.upstream,
                dial_timeout=self.owner.dial_timeout,
                after=self._pump_links,
            )
        )
        self._copies.add(task)
        task.add_done_callback(self._copy_finished)

    def _copy_finished(self, task: asyncio.Task[None]) -> None:
        self._copies.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.owner.note(
                "http_duplicate_failed",
                {"proxy": self.owner.name, "connection": self.id, "reason": repr(task.exception())},
            )
        self._maybe_gone()

    def _pump_links(self) -> None:
        # A toxic released what it held for its copies: write it now.
        for link in (self.up, self.down):
            if link is not None and link.chain is not None and not self.closed:
                link.cancel_timer()
                link.pump()

    def close(self, *, reset: bool = False, abort: bool = False) -> None:
        """Close both sockets: FIN after buffered data, RST with ``reset``, at once with
        ``abort``. Idempotent."""
        if self.closed:
            if abort or reset:
                if abort:
                    for task in self._copies:
                        task.cancel()
                self._shut(reset=reset, abort=True)
            return
        self.closed = True
        self.owner.stats.connections_open -= 1
        for link in (self.up, self.down):
            if link is not None:
                link.cancel_timer()
                self.owner.chained.discard(link)
        if self._dial is not None:
            self._dial.cancel()
        if abort:
            for task in self._copies:
                task.cancel()
        sock = self._take_dial_sock()
        if sock is not None:
            sock.close()
        self._shut(reset=reset, abort=abort)
        self.owner.connection_closed(self)
        self._maybe_gone()

    def _shut(self, *, reset: bool, abort: bool) -> None:
        for side in (self.client, self.server):
            if side is None or side.transport is None or side.lost:
                continue
            transport = side.transport
            if reset:
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
                transport.abort()
            elif abort:
                transport.abort()
            else:
                transport.close()

    def dial_task(self) -> asyncio.Task[None] | None:
        """The pending upstream dial, if any."""
        return self._dial

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("dialing" if self.up is None else "open")
        return (
            f"<Connection #{self.id} {self.owner.name} {state} up={self.up!r} down={self.down!r}>"
        )
