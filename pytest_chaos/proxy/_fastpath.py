"""Accepting and dialling without tasks on asyncio's selector loop.

``loop.create_server`` runs a task per accepted connection and ``create_connection``
needs one per dial, each costing event-loop turns: through the proxy, connect plus first
echo took about nine turns. On asyncio's own selector loop the proxy instead accepts in
a reader callback, dials with a non-blocking ``connect`` and a writer callback, and wraps
each socket with the loop's transport factory, which brings it down to about four turns.
The factory is private API (stable from Python 3.7 to 3.13), so it is used only where it
exists with the known signature; every other loop (uvloop) takes the public path.
"""

from __future__ import annotations

import asyncio
import asyncio.selector_events
import contextlib
import inspect
import socket
from collections.abc import Callable
from typing import Any, cast

__all__ = ["FastListener", "is_fast_loop", "make_transport"]

_ACCEPT_BATCH = 100
_RETRY_DELAY = 1.0
_RESOURCE_ERRNOS = {24, 23, 105, 12}  # EMFILE, ENFILE, ENOBUFS, ENOMEM


def _factory_ok() -> bool:
    factory = getattr(asyncio.selector_events.BaseSelectorEventLoop, "_make_socket_transport", None)
    if factory is None:
        return False
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return list(params)[:3] == ["self", "sock", "protocol"] and "extra" in params


_FACTORY_OK = _factory_ok()


def is_fast_loop(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether ``loop`` is asyncio's selector loop with the transport factory we use."""
    return _FACTORY_OK and isinstance(loop, asyncio.selector_events.BaseSelectorEventLoop)


def make_transport(
    loop: asyncio.AbstractEventLoop,
    sock: socket.socket,
    protocol: asyncio.BaseProtocol,
    extra: dict[str, Any] | None = None,
) -> asyncio.Transport:
    """Wrap a connected non-blocking socket; ``connection_made`` follows on the next turn."""
    factory = loop._make_socket_transport  # type: ignore[attr-defined]
    return cast(asyncio.Transport, factory(sock, protocol, extra=extra))


class FastListener:
    """A listening socket whose connections go to ``on_accept(sock, peername)``."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        on_accept: Callable[[socket.socket, Any], None],
        on_error: Callable[[OSError], None],
    ) -> None:
        self.loop = loop
        self.sock = sock
        self.on_accept = on_accept
        self.on_error = on_error
        self._retry: asyncio.TimerHandle | None = None
        loop.add_reader(sock.fileno(), self._ready)

    def _ready(self) -> None:
        for _ in range(_ACCEPT_BATCH):
            try:
                conn, peer = self.sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                self.on_error(exc)
                if exc.errno in _RESOURCE_ERRNOS:
                    # Linux keeps reporting the socket readable: stop polling for a while.
                    self.loop.remove_reader(self.sock.fileno())
                    self._retry = self.loop.call_later(_RETRY_DELAY, self._resume)
                return
            conn.setblocking(False)
            with contextlib.suppress(OSError):  # small writes must not wait for ACKs
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.on_accept(conn, peer)

    def _resume(self) -> None:
        self._retry = None
        if self.sock.fileno() >= 0:
            self.loop.add_reader(self.sock.fileno(), self._ready)

    def close(self) -> None:
        """Stop accepting and close the socket."""
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self.sock.fileno() >= 0:
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()

    def __repr__(self) -> str:
        state = "closed" if self.sock.fileno() < 0 else "listening"
        return f"<FastListener {state} fd={self.sock.fileno()}>"
