"""A small real service for the checks' tests: HTTP in front of Redis.

Run as a subprocess: ``python service.py --redis HOST:PORT [switches]``; it prints
``READY <port>`` once it listens on 127.0.0.1. Each switch selects a correct or a
specific broken behaviour, so a test can show that a check catches the bug and does
not cry wolf on the correct version:

--timeout S|none       Redis socket timeout (none: the "no timeout" bug)
--fallback             answer GET /item with 200 "fallback" when Redis fails
--breaker none|good|stuck|leaky   circuit breaker around Redis (stuck: never
                       half-opens; leaky: half-open lets every concurrent call through,
                       not one trial)
--retry none|backoff|eager|storm  retry policy (eager: 3 attempts, no backoff;
                                  storm: no backoff, no cap until 1 s)
--idempotency good|bug      POST /charge dedups by order, or adds a row every time
--writes sync|early    POST /write acknowledges after (sync) or before (early) RPUSH
--connection fresh|sticky|once   a new connection per command, one reconnecting
                       connection, or one connection never re-made (needs a restart)
--payment keyed|unkeyed  POST /pay dedups requests by key in memory, then charges
                       (SADD payments:O) with 2 attempts on failure: with the request's
                       key (keyed), or a new charge id per attempt (unkeyed: a timeout
                       whose write went through charges twice)

Endpoints: GET /item?key=K, POST /charge?order=O, POST /write?key=K&value=V,
POST /pay?order=O&key=K, GET /health. Redis is spoken in RESP over raw sockets so
that every attempt is visible at the proxy.
"""

from __future__ import annotations

import argparse
import contextlib
import queue
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class DependencyError(Exception):
    """Redis could not be used."""


class BreakerOpen(DependencyError):
    """The breaker refused the call without trying."""


def encode(*args: str) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        b = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class Reader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exact(self, n: int) -> bytes:
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2 :]
        return data

    def reply(self) -> object:
        line = self.line()
        kind, rest = line[:1], line[1:]
        if kind in (b"+",):
            return rest.decode()
        if kind == b"-":
            raise DependencyError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.exact(n).decode()
        if kind == b"*":
            return [self.reply() for _ in range(int(rest))]
        raise DependencyError(f"bad reply {line!r}")


class Redis:
    """One Redis command at a time, with the connection policy of --connection."""

    def __init__(self, address: str, timeout: float | None, mode: str) -> None:
        host, port = address.rsplit(":", 1)
        self.addr = (host, int(port))
        self.timeout = timeout
        self.mode = mode
        self.lock = threading.Lock()
        self.sock: socket.socket | None = None
        self.reader: Reader | None = None
        self.dead = False

    def _connect(self) -> tuple[socket.socket, Reader]:
        sock = socket.create_connection(self.addr, timeout=self.timeout)
        sock.settimeout(self.timeout)
        return sock, Reader(sock)

    def command(self, *args: str) -> object:
        try:
            if self.mode == "fresh":
                sock, reader = self._connect()
                try:
                    sock.sendall(encode(*args))
                    return reader.reply()
                finally:
                    sock.close()
            with self.lock:
                if self.dead:
                    raise DependencyError("connection lost and never re-made (restart me)")
                if self.sock is None:
                    self.sock, self.reader = self._connect()
                try:
                    self.sock.sendall(encode(*args))
                    assert self.reader is not None
                    return self.reader.reply()
                except (OSError, ConnectionError):
                    self.sock.close()
                    self.sock = self.reader = None
                    if self.mode == "once":
                        self.dead = True
                    raise
        except (OSError, ConnectionError) as exc:
            raise DependencyError(f"{type(exc).__name__}: {exc}") from exc


class Breaker:
    def __init__(self, mode: str, threshold: int, reset: float) -> None:
        self.mode = mode
        self.threshold = threshold
        self.reset = reset
        self.lock = threading.Lock()
        self.failures = 0
        self.opened_at: float | None = None
        self.trial = False

    def call(self, fn):
        if self.mode == "none":
            return fn()
        with self.lock:
            if self.opened_at is not None:
                waited = time.monotonic() - self.opened_at
                if self.mode == "stuck" or waited < self.reset or self.trial:
                    raise BreakerOpen("circuit open")
                # half-open: this call is the one trial (leaky: every caller is one)
                self.trial = self.mode != "leaky"
        try:
            result = fn()
        except DependencyError:
            with self.lock:
                self.trial = False
                self.failures += 1
                if self.opened_at is not None or self.failures >= self.threshold:
                    self.opened_at = time.monotonic()
            raise
        with self.lock:
            self.failures = 0
            self.opened_at = None
            self.trial = False
        return result


class App:
    def __init__(self, args: argparse.Namespace) -> None:
        timeout = None if args.timeout == "none" else float(args.timeout)
        self.redis = Redis(args.redis, timeout, args.connection)
        self.breaker = Breaker(args.breaker, args.breaker_threshold, args.breaker_reset)
        self.args = args
        self.paid: set[str] = set()
        self.pending: queue.Queue[tuple[str, str] | None] = queue.Queue()
        if args.writes == "early":
            threading.Thread(target=self._drain, daemon=True).start()

    def _attempts(self, fn):
        policy = self.args.retry
        if policy == "none":
            return fn()
        if policy == "backoff":
            for i in range(3):
                try:
                    return fn()
                except DependencyError:
                    if i == 2:
                        raise
                    time.sleep(0.05 * 2**i)
        if policy == "eager":  # bounded, but without backoff
            for i in range(3):
                try:
                    return fn()
                except DependencyError:
                    if i == 2:
                        raise
        deadline = time.monotonic() + 1.0  # "storm": retry at once until the deadline
        while True:
            try:
                return fn()
            except DependencyError:
                if time.monotonic() >= deadline:
                    raise

    def redis_call(self, *cmd: str) -> object:
        return self.breaker.call(lambda: self._attempts(lambda: self.redis.command(*cmd)))

    def _drain(self) -> None:
        while True:
            item = self.pending.get()
            if item is None:
                return
            # the bug: acknowledged already, so a failure here silently loses the write
            with contextlib.suppress(DependencyError):
                self.redis_call("RPUSH", *item)

    def item(self, key: str) -> tuple[int, str]:
        try:
            value = self.redis_call("GET", key)
        except DependencyError as exc:
            if self.args.fallback:
                return 200, "fallback"
            return 503, str(exc)
        return 200, str(value)

    def charge(self, order: str) -> tuple[int, str]:
        try:
            if self.args.idempotency == "good":
                first = self.redis_call("SET", f"idem:{order}", "1", "NX")
                if first is None:
                    return 200, "duplicate ignored"
            self.redis_call("RPUSH", f"charges:{order}", f"charge-{time.time_ns()}")
        except DependencyError as exc:
            return 503, str(exc)
        return 200, "charged"

    def pay(self, order: str, key: str) -> tuple[int, str]:
        with self.breaker.lock:
            if key in self.paid:
                return 200, "duplicate ignored"
            self.paid.add(key)
        for attempt in range(2):
            charge = key if self.args.payment == "keyed" else f"{key}-{time.time_ns()}"
            try:
                self.redis_call("SADD", f"payments:{order}", charge)
                return 200, "paid"
            except DependencyError as exc:
                if attempt == 1:
                    return 503, str(exc)
        raise AssertionError("unreachable")

    def write(self, key: str, value: str) -> tuple[int, str]:
        if self.args.writes == "early":
            self.pending.put((key, value))
            return 200, "ok"
        try:
            self.redis_call("RPUSH", key, value)
        except DependencyError as exc:
            return 503, str(exc)
        return 200, "ok"


def handler_for(app: App) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _answer(self, status: int, body: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(data)

        def _route(self) -> None:
            url = urlsplit(self.path)
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            if url.path == "/health":
                self._answer(200, "ok")
            elif url.path == "/item":
                self._answer(*app.item(q.get("key", "k")))
            elif url.path == "/charge" and self.command == "POST":
                self._answer(*app.charge(q["order"]))
            elif url.path == "/pay" and self.command == "POST":
                self._answer(*app.pay(q["order"], q["key"]))
            elif url.path == "/write" and self.command == "POST":
                self._answer(*app.write(q["key"], q["value"]))
            else:
                self._answer(404, "not found")

        do_GET = _route
        do_POST = _route

    return Handler


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--redis", required=True)
    p.add_argument("--timeout", default="0.3")
    p.add_argument("--fallback", action="store_true")
    p.add_argument("--breaker", choices=("none", "good", "stuck", "leaky"), default="none")
    p.add_argument("--breaker-threshold", type=int, default=3)
    p.add_argument("--breaker-reset", type=float, default=0.5)
    p.add_argument("--retry", choices=("none", "backoff", "eager", "storm"), default="none")
    p.add_argument("--idempotency", choices=("good", "bug"), default="good")
    p.add_argument("--writes", choices=("sync", "early"), default="sync")
    p.add_argument("--connection", choices=("fresh", "sticky", "once"), default="fresh")
    p.add_argument("--payment", choices=("keyed", "unkeyed"), default="keyed")
    args = p.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(App(args)))
    server.daemon_threads = True
    print(f"READY {server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.05)
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
