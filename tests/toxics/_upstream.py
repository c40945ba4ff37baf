"""A small HTTP/1.1 keep-alive server that counts what it receives (run as a script).

``python _upstream.py PORTFILE`` binds 127.0.0.1 on a free port, writes the port to
PORTFILE and serves until killed. Every request is appended to an in-memory log that
``GET /_log`` returns as JSON (method, path, body as latin-1 text, the connection's
client port), so a test can count exactly what reached the upstream. ``POST /_reset``
clears the log. Bodies may be chunked (``Transfer-Encoding: chunked``).
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_LOG: list[dict[str, object]] = []
_LOCK = threading.Lock()


def read_body(
    handler: BaseHTTPRequestHandler, progress: Callable[[int], None] | None = None
) -> bytes:
    """The request body a handler is reading (chunked or Content-Length), whole;
    ``progress`` is told how many body bytes have arrived after each read."""
    out = bytearray()
    rfile, headers = handler.rfile, handler.headers
    if headers.get("Transfer-Encoding", "").lower() == "chunked":
        while True:
            size = int(rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                while rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(out)
            out += rfile.read(size)
            rfile.readline()
            if progress is not None:
                progress(len(out))
    left = int(headers.get("Content-Length") or 0)
    while left:
        chunk = rfile.read1(min(left, 65536))
        if not chunk:
            break
        out += chunk
        left -= len(chunk)
        if progress is not None:
            progress(len(out))
    return bytes(out)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    # Headers and body go out in separate writes; without this, Nagle's algorithm and
    # the client's delayed ACK add ~40 ms to every keep-alive answer.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _body(self) -> bytes:
        return read_body(self)

    def _answer(self, status: int, body: bytes, ctype: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self) -> None:
        body = self._body()
        if self.path == "/_log":
            with _LOCK:
                data = json.dumps(_LOG).encode()
            self._answer(200, data, "application/json")
            return
        if self.path == "/_reset":
            with _LOCK:
                _LOG.clear()
            self._answer(200, b"reset")
            return
        with _LOCK:
            _LOG.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "body": body.decode("latin-1"),
                    "port": self.client_address[1],
                }
            )
            n = len(_LOG)
        self._answer(200, f"{self.command} {self.path} #{n} {len(body)}".encode())

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    import os

    os.replace(sys.argv[1] + ".tmp", sys.argv[1])
    server.serve_forever()


if __name__ == "__main__":
    main()
