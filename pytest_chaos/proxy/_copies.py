"""Copies of a request delivered on fresh upstream connections (``http_duplicate``).

A toxic asks for them with a :class:`~pytest_chaos.toxics.Deliver` item; the
connection runs :func:`deliver` as a task it owns (cancelled when the proxy aborts the
connection). Each copy gets its own connection to the proxy's upstream, is written
whole, and its answer is read (with the toxic's reader, which knows where an answer
ends) and dropped; the toxic hears of each copy through ``Deliver.done``. A copy that
cannot be dialled, whose connection closes before the answer is complete, or that gets
no answer within :data:`ANSWER_TIMEOUT` counts as lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable

from pytest_chaos.proxy._address import split_hostport
from pytest_chaos.toxics import AnswerReader, Deliver

__all__ = ["ANSWER_TIMEOUT", "deliver"]

#: Seconds a copy's answer may take before the copy counts as lost (the client's own
#: answer waits for it meanwhile).
ANSWER_TIMEOUT = 30.0


class _Copy(asyncio.Protocol):
    """One copy's connection: writes the request, reads the answer, then closes."""

    def __init__(self, reader: AnswerReader, loop: asyncio.AbstractEventLoop) -> None:
        self.reader = reader
        self.answered: asyncio.Future[bool] = loop.create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if not self.answered.done() and self.reader.feed(data):
            self._finish(True)

    def eof_received(self) -> bool:
        if not self.answered.done():
            self._finish(self.reader.feed_eof())
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answered.done():
            self.answered.set_result(False)

    def _finish(self, ok: bool) -> None:
        self.answered.set_result(ok)
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


async def _open(
    loop: asyncio.AbstractEventLoop, upstream: str, timeout: float, item: Deliver
) -> _Copy:
    host, port = split_hostport(upstream)
    async with asyncio.timeout(timeout):
        _, protocol = await loop.create_connection(
            lambda: _Copy(item.answer(), loop), host or "127.0.0.1", port
        )
    return protocol


async def _answer(copy: _Copy) -> bool:
    try:
        async with asyncio.timeout(ANSWER_TIMEOUT):
            return await copy.answered
    except TimeoutError:
        return False
    finally:
        if not copy.answered.done():
            copy.abort()


async def deliver(
    item: Deliver,
    *,
    loop: asyncio.AbstractEventLoop,
    upstream: str,
    dial_timeout: float,
    after: Callable[[], None],
) -> None:
    """Deliver ``item``'s copies; ``after()`` runs after each callback into the toxic
    (the connection pumps its links, which may now have something to write)."""

    def done(ok: bool) -> None:
        item.done(ok, loop.time())
        after()

    if item.together:
        opened = await asyncio.gather(
            *(_open(loop, upstream, dial_timeout, item) for _ in range(item.copies)),
            return_exceptions=True,
        )
        copies = [c for c in opened if isinstance(c, _Copy)]
        for copy in copies:
            assert copy.transport is not None
            copy.transport.write(item.data)
        # The original goes in the same loop turn as the copies.
        item.ready(loop.time())
        after()
        for _ in range(len(opened) - len(copies)):
            done(False)
        results = await asyncio.gather(*(_answer(c) for c in copies))
        for ok in results:
            done(ok)
        return
    for _ in range(item.copies):
        try:
            copy = await _open(loop, upstream, dial_timeout, item)
        except (OSError, TimeoutError, ValueError):
            done(False)
            continue
        assert copy.transport is not None
        copy.transport.write(item.data)
        done(await _answer(copy))
