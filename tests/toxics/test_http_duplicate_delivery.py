"""http_duplicate delivers every copy, whatever the connection does, as users' HTTP
clients meet it: urllib.request (always ``Connection: close``), requests, httpx and
http.client with and without keep-alive, a raw HTTP/1.0 client, and an upstream that
closes after each answer. Through ``chaos.idempotent(via=proxy.http_duplicate(...))``
against a handler that is not idempotent (caught), an idempotent one (no false alarm)
and a check-then-set one (idempotent one delivery at a time; ``concurrent=True``
catches it). A copy that cannot be delivered makes the check an error, never a pass."""

from __future__ import annotations

import functools
import http.client
import itertools
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Generator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pytest_chaos.checks import IdempotencyViolated
from pytest_chaos.errors import CheckError

requests = pytest.importorskip("requests")
httpx = pytest.importorskip("httpx")

pytestmark = pytest.mark.chaos(blast_radius=["shop"])

_keys = itertools.count()


class Shop:
    """The upstream: three charge handlers over one list of charges."""

    def __init__(self, close_after_answer: bool) -> None:
        self.charges: list[str] = []
        self.lock = threading.Lock()
        shop = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                key = self.headers.get("Idempotency-Key") or ""
                if self.path == "/count":  # not idempotent: every delivery charges
                    with shop.lock:
                        shop.charges.append(key)
                elif self.path == "/check-then-set":  # racy: check, work, then set
                    if key not in shop.charges:
                        time.sleep(0.3)  # the work between the check and the set
                        shop.charges.append(key)
                else:  # /safe: check and set under one lock
                    with shop.lock:
                        if key not in shop.charges:
                            shop.charges.append(key)
                self.send_response(201)
                self.send_header("Content-Length", "2")
                if close_after_answer:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,))
        self.thread.start()
        self.address = f"127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture(params=[False, True], ids=["keepalive-upstream", "closing-upstream"])
def shop(request: pytest.FixtureRequest) -> Iterator[Shop]:
    service = Shop(close_after_answer=request.param)
    yield service
    service.close()


Post = Callable[[str, str], int]


def _urllib(keep_alive: bool) -> Generator[Post, None, None]:
    def post(url: str, key: str) -> int:  # urllib always sends Connection: close
        req = urllib.request.Request(url, data=b"10 EUR", headers={"Idempotency-Key": key})
        with urllib.request.urlopen(req, timeout=10) as response:
            response.read()
            return int(response.status)

    yield post


def _requests(keep_alive: bool) -> Generator[Post, None, None]:
    headers = {} if keep_alive else {"Connection": "close"}
    with requests.Session() as session:

        def post(url: str, key: str) -> int:
            r = session.post(
                url, data=b"10 EUR", headers={**headers, "Idempotency-Key": key}, timeout=10
            )
            return int(r.status_code)

        yield post


def _httpx(keep_alive: bool) -> Generator[Post, None, None]:
    headers = {} if keep_alive else {"Connection": "close"}
    with httpx.Client(timeout=10) as client:

        def post(url: str, key: str) -> int:
            r = client.post(url, content=b"10 EUR", headers={**headers, "Idempotency-Key": key})
            return int(r.status_code)

        yield post


def _http_client(keep_alive: bool) -> Generator[Post, None, None]:
    connections: dict[str, http.client.HTTPConnection] = {}

    def post(url: str, key: str) -> int:
        hostport, _, path = url.removeprefix("http://").partition("/")
        host, port = hostport.split(":")
        conn = connections.get(hostport) if keep_alive else None
        if conn is None:
            conn = http.client.HTTPConnection(host, int(port), timeout=10)
            connections[hostport] = conn
        headers = {"Idempotency-Key": key}
        if not keep_alive:
            headers["Connection"] = "close"
        conn.request("POST", "/" + path, body=b"10 EUR", headers=headers)
        response = conn.getresponse()
        response.read()
        if not keep_alive or response.will_close:
            conn.close()
            connections.pop(hostport, None)
        return response.status

    yield post
    for conn in connections.values():
        conn.close()


def _http10(keep_alive: bool) -> Generator[Post, None, None]:
    def post(url: str, key: str) -> int:  # HTTP/1.0: the server closes after answering
        hostport, _, path = url.removeprefix("http://").partition("/")
        host, port = hostport.split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                f"POST /{path} HTTP/1.0\r\nHost: {hostport}\r\nIdempotency-Key: {key}\r\n"
                f"Content-Length: 6\r\n\r\n10 EUR".encode()
            )
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        return int(answer.split()[1])

    yield post


CLIENTS = {
    "urllib": _urllib,
    "requests": _requests,
    "httpx": _httpx,
    "http.client": _http_client,
    "http1.0": _http10,
}


@pytest.fixture(
    params=[
        (name, keep_alive)
        for name in CLIENTS
        for keep_alive in (True, False)
        if name not in ("urllib", "http1.0") or not keep_alive  # they never keep alive
    ],
    ids=lambda p: f"{p[0]}-{'keepalive' if p[1] else 'close'}",
)
def post(request: pytest.FixtureRequest) -> Generator[Post, None, None]:
    name, keep_alive = request.param
    yield from CLIENTS[name](keep_alive)


def test_a_handler_that_is_not_idempotent_is_caught(chaos, shop: Shop, post: Post) -> None:
    proxy = chaos.proxy("shop", upstream=shop.address)
    key = f"k{next(_keys)}"
    with pytest.raises(IdempotencyViolated, match="changed the state again"):
        chaos.idempotent(
            lambda: post(f"http://{proxy.address}/count", key),
            state=lambda: list(shop.charges),
            via=proxy.http_duplicate(),
        )
    assert shop.charges == [key] * 3  # the original, its copy, then the replay
    stats = proxy.stats()
    assert (stats["http_duplicates_sent"], stats["http_duplicates_failed"]) == (1, 0)


def test_an_idempotent_handler_passes(chaos, shop: Shop, post: Post) -> None:
    proxy = chaos.proxy("shop", upstream=shop.address)
    key = f"k{next(_keys)}"
    result = chaos.idempotent(
        lambda: post(f"http://{proxy.address}/safe", key),
        state=lambda: list(shop.charges),
        via=proxy.http_duplicate(copies=3, concurrent=True),
        effect=len,
    )
    assert result.measured["copies_delivered"] == 2
    assert result.measured["first_effect"] == 1
    assert shop.charges == [key]


@pytest.mark.parametrize("client", ["urllib", "httpx"])
def test_check_then_set_passes_one_at_a_time_and_is_caught_concurrently(
    chaos, shop: Shop, client: str
) -> None:
    proxy = chaos.proxy("shop", upstream=shop.address)
    url = f"http://{proxy.address}/check-then-set"
    client_gen = CLIENTS[client](True)
    post = next(client_gen)
    try:
        key = f"k{next(_keys)}"
        chaos.idempotent(  # one after another: the copy sees the first charge
            functools.partial(post, url, key),
            state=lambda: list(shop.charges),
            via=proxy.http_duplicate(),
            effect=len,
        )
        key = f"k{next(_keys)}"
        with pytest.raises(IdempotencyViolated, match=r"changed effect\(state\) by 2"):
            chaos.idempotent(  # at the same moment: both pass the check
                functools.partial(post, url, key),
                state=lambda: list(shop.charges),
                via=proxy.http_duplicate(concurrent=True),
                effect=len,
            )
        assert shop.charges.count(key) == 2
    finally:
        client_gen.close()


@pytest.mark.parametrize("after_answer", ["keeps_open", "resets"])
def test_a_copy_that_cannot_be_delivered_is_an_error_not_a_pass(chaos, after_answer) -> None:
    """The upstream answers one connection and stops listening: the copy's connection
    is refused. The check cannot judge the duplicate, and says so.

    ``resets``: the upstream answers ``Connection: close`` and closes with the request's
    body unread, so its socket resets. The client still gets the answer the proxy held
    for the copies (it was lost before: issue 17)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    received: list[bytes] = []
    done = threading.Event()

    def serve_once() -> None:
        conn, _ = listener.accept()
        listener.close()
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(65536)
            received.append(head)
            if after_answer == "keeps_open":
                conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
                done.wait(10)
            else:
                time.sleep(0.05)  # the body arrives and stays unread: close() resets
                conn.sendall(
                    b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )

    thread = threading.Thread(target=serve_once)
    thread.start()
    proxy = chaos.proxy("shop", upstream=f"127.0.0.1:{port}")
    try:
        with pytest.raises(CheckError, match="the replay never reached the upstream: 1 of 1"):
            chaos.idempotent(
                lambda: _post_once(proxy.address),
                state=lambda: len(received),
                via=proxy.http_duplicate(),
            )
    finally:
        done.set()
        thread.join(10)
    stats = proxy.stats()
    assert (stats["http_duplicates_sent"], stats["http_duplicates_failed"]) == (0, 1)
    assert len(received) == 1


def _post_once(address: str) -> int:
    req = urllib.request.Request(f"http://{address}/charge", data=b"x")
    with urllib.request.urlopen(req, timeout=10) as response:
        return int(response.status)
