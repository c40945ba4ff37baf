"""A small HTTP/1.1 server on asyncio streams, parsed with h11.

The admin API needs keep-alive, Content-Length and chunked request bodies, and must
survive anything a client sends: every protocol error becomes a 4xx answer (when the
connection can still carry one) and the connection is closed; nothing a client does
reaches the event loop's exception handler. Request handling is delegated to one
coroutine, ``handler(request) -> Response``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import h11

__all__ = ["HttpServer", "Request", "Response", "json_response"]

log = logging.getLogger("pytest_chaos.proxy.api")

# A request body larger than this is refused with 413: the API's largest legitimate
# body is a populate array, and a few MiB of proxies is already absurd.
MAX_BODY = 8 * 1024 * 1024
# Keep-alive connections idle this long are closed so that abandoned clients do not
# hold file descriptors forever (Toxiproxy's IdleTimeout is 60 s as well).
IDLE_TIMEOUT = 60.0
_READ_SIZE = 65536


@dataclass(frozen=True)
class Request:
    """One parsed HTTP request: method, raw target, lower-cased headers, whole body."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        """The target's path: no query string, no scheme and host (absolute form)."""
        path = self.target.split("?", 1)[0].split("#", 1)[0]
        lowered = path[:8].lower()
        if lowered.startswith(("http://", "https://")):
            # RFC 9112 3.2.2: a server must accept the absolute form; Go's does.
            rest = path.split("//", 1)[1]
            slash = rest.find("/")
            path = rest[slash:] if slash >= 0 else "/"
        return path


@dataclass(frozen=True)
class Response:
    """An HTTP response; ``body`` is sent as is with a Content-Length."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_response(status: int, obj: Any) -> Response:
    """A response whose body is ``obj`` as compact JSON."""
    body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(status, body)


def error_response(status: int, message: str) -> Response:
    """The Toxiproxy error body: ``{"error": message, "status": status}``."""
    return json_response(status, {"error": message, "status": status})


Handler = Callable[[Request], Awaitable[Response]]


class HttpServer:
    """Serves ``handler`` over HTTP/1.1 on one listening socket.

    Owns its listener and every connection task; :meth:`close` closes them all and
    waits for the tasks, so nothing outlives the server.
    """

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self.requests_served = 0

    def __repr__(self) -> str:
        state = "closed" if self._server is None else f"listening on {self.address}"
        return (
            f"<HttpServer {state} connections={len(self._tasks)} "
            f"requests_served={self.requests_served}>"
        )

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); only valid after :meth:`start`."""
        if self._server is None:
            raise RuntimeError("HttpServer is not started")
        sockname = self._server.sockets[0].getsockname()
        return str(sockname[0]), int(sockname[1])

    async def start(self, host: str, port: int) -> None:
        """Bind and start accepting; raises ``OSError`` when the address is unusable.

        A name is bound at one address (IPv4 first), as Go's ``net.Listen`` does:
        asyncio would bind every address of ``localhost`` and, with port 0, give each
        its own port, so the reported port would not answer on the others.
        """
        address = host or "0.0.0.0"
        try:
            ipaddress.ip_address(address)
        except ValueError:  # a name: resolve it off the loop (no executor for literals)
            infos = await asyncio.get_running_loop().getaddrinfo(
                address, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )
            infos.sort(key=lambda info: info[0] != socket.AF_INET)
            address = str(infos[0][4][0])
        self._server = await asyncio.start_server(self._on_connection, address, port)

    async def close(self) -> None:
        """Stop listening, close every connection and wait for their tasks."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        if self._closing:
            writer.close()
            return
        self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        except asyncio.CancelledError:
            # Only close() cancels us; swallowing keeps the server's own task quiet.
            pass
        except Exception:  # pragma: no cover - a bug; log it and keep serving others
            log.exception("admin API connection failed")
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
        while True:
            try:
                request = await self._read_request(conn, reader, writer)
            except h11.RemoteProtocolError as exc:
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    status = exc.error_status_hint
                    await self._send(conn, writer, error_response(status, f"bad request: {exc}"))
                return
            except _BodyTooLarge as exc:
                await self._send(conn, writer, error_response(413, str(exc)))
                return
            if request is None:
                return
            started = time.perf_counter()
            try:
                response = await self._handler(request)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a handler bug must not kill the connection silently
                log.exception("admin API handler failed on %s %s", request.method, request.target)
                response = error_response(500, f"internal error: {exc!r}")
            self.requests_served += 1
            if log.isEnabledFor(logging.DEBUG):  # the CLI's -verbose access log
                log.debug(
                    "%s %s -> %d (%.1f ms)",
                    request.method,
                    request.target,
                    response.status,
                    (time.perf_counter() - started) * 1000,
                )
            await self._send(conn, writer, response, head_only=request.method == "HEAD")
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is not h11.DONE:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return

    async def _read_request(
        self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> Request | None:
        head: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                if conn.they_are_waiting_for_100_continue:
                    # curl sends "Expect: 100-continue" for bodies over 1 KiB and
                    # would otherwise wait a second before sending the body.
                    writer.write(
                        conn.send(h11.InformationalResponse(status_code=100, headers=[])) or b""
                    )
                    await writer.drain()
                timeout = IDLE_TIMEOUT if head is None else IDLE_TIMEOUT / 4
                data = await asyncio.wait_for(reader.read(_READ_SIZE), timeout)
                conn.receive_data(data)
                continue
            if isinstance(event, h11.Request):
                head = event
                length = _content_length(event)
                if length is not None and length > MAX_BODY:
                    raise _BodyTooLarge(
                        f"request body of {length} bytes is larger than the limit of "
                        f"{MAX_BODY} bytes; send a smaller body"
                    )
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > MAX_BODY:
                    raise _BodyTooLarge(
                        f"request body is larger than the limit of {MAX_BODY} bytes; "
                        "send a smaller body"
                    )
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                headers = {
                    name.decode("latin-1").lower(): value.decode("latin-1")
                    for name, value in head.headers
                }
                return Request(
                    method=head.method.decode("latin-1"),
                    target=head.target.decode("latin-1"),
                    headers=headers,
                    body=bytes(body),
                )
            elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return None

    async def _send(
        self,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        response: Response,
        *,
        head_only: bool = False,
    ) -> None:
        headers = [("server", "pytest-chaos"), *response.headers]
        no_body = response.status in (204, 304)
        if not no_body:
            headers.append(("content-type", response.content_type))
            headers.append(("content-length", str(len(response.body))))
        # A response to HEAD announces its length but carries no body (RFC 9110 9.3.2).
        no_body = no_body or head_only
        if conn.their_state is not h11.DONE:
            # We answer before reading the whole request (an error): say we close.
            headers.append(("connection", "close"))
        try:
            out = conn.send(h11.Response(status_code=response.status, headers=headers))
            if not no_body and response.body:
                out = (out or b"") + (conn.send(h11.Data(data=response.body)) or b"")
            out = (out or b"") + (conn.send(h11.EndOfMessage()) or b"")
        except h11.LocalProtocolError:
            return
        writer.write(out)
        await writer.drain()


class _BodyTooLarge(Exception):
    pass


def _content_length(event: h11.Request) -> int | None:
    for name, value in event.headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
