"""An HTTP toxic removed while a message is in transfer, and added again, acts again.

Connection pools (``requests.Session``, ``httpx.Client``, ``http.client`` reused) keep
one connection across a heal and the next injection. When the last HTTP toxic left a
link mid-message, the rest of the message passed unparsed; the connection's HTTP session
then resumed out of step when a toxic came back (body bytes where it expected a head),
took the traffic for non-HTTP and never acted on that connection again (issue 17).

Every test here uses the real embedded proxy, a real HTTP/1.1 server in this process
(so that it can hold a response half sent until the test says so) and real clients on
one keep-alive connection; it checks what the client gets, what the server got, and
that the proxy accepted one connection only.
"""

from __future__ import annotations

import http.client
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ._httpfixtures import Admin
from ._upstream import read_body

pytest.importorskip("requests")
import requests

pytestmark = pytest.mark.usefixtures("http_parser")

BIG = 300_000  # a body sent in several reads, long enough to remove a toxic inside it
WAIT = 10.0  # generous bound for anything the test waits for


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _read_body(self) -> bytes:
        events, path = self.server.events, self.path
        return read_body(self, lambda n: events.put(("progress", path, n)))

    def _handle(self) -> None:
        server = self.server
        server.events.put(("head", self.path, 0))
        body = self._read_body()
        server.log.append((self.command, self.path, body, self.client_address[1]))
        kind = self.path.strip("/").split("/")[0]
        if kind == "big-cl":
            self._send_big({"Content-Length": str(BIG)}, lambda part: part)
        elif kind == "big-chunked":
            self._send_big(
                {"Transfer-Encoding": "chunked"},
                lambda part: b"%x\r\n%s\r\n" % (len(part), part) if part else b"0\r\n\r\n",
            )
        elif kind == "big-close":
            self.close_connection = True
            self._send_big({"Connection": "close"}, lambda part: part)
        else:
            answer = f"{self.command} {self.path} {len(body)} {sum(body) % 65521}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    def _send_big(self, headers: dict[str, str], frame: Callable[[bytes], bytes]) -> None:
        # Half the body, then wait for the test's go (it removes a toxic meanwhile).
        self.send_response(200)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        body = pattern(BIG)
        half = BIG // 2
        for start in range(0, half, 50_000):
            self.wfile.write(frame(body[start : min(start + 50_000, half)]))
        self.wfile.flush()
        self.server.events.put(("half", self.path, half))
        assert self.server.gate.wait(WAIT)
        for start in range(half, BIG, 50_000):
            self.wfile.write(frame(body[start : start + 50_000]))
        self.wfile.write(frame(b""))
        self.wfile.flush()

    do_GET = do_POST = do_PUT = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.events: queue.Queue[tuple[str, str, int]] = queue.Queue()
        self.log: list[tuple[str, str, bytes, int]] = []
        self.gate = threading.Event()


def pattern(n: int) -> bytes:
    """``n`` bytes that make any shift or loss visible."""
    return bytes(i * 7 % 251 for i in range(n))


@dataclass
class Origin:
    """The in-process HTTP server: its address, what it got, what it is doing."""

    server: _Server

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    @property
    def paths(self) -> list[str]:
        return [path for _, path, _, _ in self.server.log]

    def body(self, path: str) -> bytes:
        return next(body for _, p, body, _ in self.server.log if p == path)

    def wait(self, kind: str, path: str, at_least: int = 0) -> None:
        """Wait until the server reports ``kind`` for ``path`` (with ``at_least`` bytes)."""
        deadline = time.monotonic() + WAIT
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"the server never reported {kind} {path}"
            event = self.server.events.get(timeout=left)
            if event[0] == kind and event[1] == path and event[2] >= at_least:
                return


@pytest.fixture
def origin() -> Iterator[Origin]:
    server = _Server()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Origin(server)
    finally:
        server.gate.set()
        server.shutdown()
        server.server_close()
        thread.join(WAIT)


# -- the toxics: what "acts" means for each -------------------------------------------


@dataclass
class Fault:
    """A toxic to remove and add again, and how its effect on a request shows."""

    type_name: str
    attributes: dict[str, Any]

    def add(self, admin: Admin, proxy: str) -> str:
        return admin.toxic(proxy, self.type_name, **self.attributes)


FAULTS = {
    # Matches only /fail: the message in transfer is not its business.
    "error": Fault("http_error", {"status": 503, "path_prefix": "/fail"}),
    "delay": Fault("http_delay", {"delay": 250}),
    "duplicate": Fault("http_duplicate", {"copies": 2, "path_prefix": "/twice"}),
}


def check_acts(fault: str, send: Callable[[str, str], tuple[int, bytes]], origin: Origin) -> None:
    """The toxic acts on the next request of the connection (``send(method, path)``)."""
    if fault == "error":
        before = origin.paths.count("/fail")
        status, _ = send("GET", "/fail")
        assert status == 503
        assert origin.paths.count("/fail") == before
    elif fault == "delay":
        started = time.monotonic()
        status, _ = send("GET", "/slow")
        assert status == 200
        # A delay can only be longer than asked, never shorter.
        assert time.monotonic() - started >= 0.24
    else:
        status, _ = send("POST", "/twice")
        assert status == 200
        assert origin.paths.count("/twice") == 2
    # And the connection keeps working after it.
    status, body = send("GET", "/after")
    assert (status, body[:10]) == (200, b"GET /after")


# -- http.client, byte by byte control ------------------------------------------------


def connect(listen: str) -> http.client.HTTPConnection:
    host, port = listen.rsplit(":", 1)
    return http.client.HTTPConnection(host, int(port), timeout=WAIT)


def sender(conn: http.client.HTTPConnection) -> Callable[[str, str], tuple[int, bytes]]:
    def send(method: str, path: str) -> tuple[int, bytes]:
        conn.request(method, path, body=b"x" if method == "POST" else None)
        response = conn.getresponse()
        return response.status, response.read()

    return send


def chunked(data: bytes, size: int = 40_000) -> bytes:
    out = b"".join(
        b"%x\r\n%s\r\n" % (len(data[i : i + size]), data[i : i + size])
        for i in range(0, len(data), size)
    )
    return out + b"0\r\n\r\n"


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_removed_mid_request_body_then_added_again_acts_on_the_next_request(
    admin: Admin, origin: Origin, fault: str, framing: str
) -> None:
    name, listen = admin.proxy(origin.address)
    toxic = FAULTS[fault].add(admin, name)
    body = pattern(BIG)
    conn = connect(listen)
    try:
        conn.putrequest("POST", "/upload")
        if framing == "length":
            conn.putheader("Content-Length", str(BIG))
            wire = body
        else:
            conn.putheader("Transfer-Encoding", "chunked")
            wire = chunked(body)
        conn.endheaders()
        third = len(wire) // 3
        conn.send(wire[:third])
        origin.wait("head", "/upload")  # the proxy parsed the head and is in the body
        admin.remove_toxic(name, toxic)
        conn.send(wire[third:])
        response = conn.getresponse()
        assert response.status == 200
        response.read()
        assert origin.body("/upload") == body
        FAULTS[fault].add(admin, name)
        check_acts(fault, sender(conn), origin)
    finally:
        conn.close()
    stats = admin.stats(name)
    assert stats["connections_accepted"] == 1
    assert stats["http_requests"] == 3  # each counted once: by the toxic or passively
    assert stats["http_passthrough_connections"] == 0


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("framing", ["cl", "chunked"])
def test_removed_mid_response_body_then_added_again_acts_on_the_next_request(
    admin: Admin, origin: Origin, fault: str, framing: str
) -> None:
    name, listen = admin.proxy(origin.address)
    toxic = FAULTS[fault].add(admin, name)
    conn = connect(listen)
    try:
        conn.request("GET", f"/big-{framing}")
        response = conn.getresponse()
        first = response.read(1000)  # the response is in transfer
        origin.wait("half", f"/big-{framing}")
        admin.remove_toxic(name, toxic)
        origin.server.gate.set()
        assert first + response.read() == pattern(BIG)
        FAULTS[fault].add(admin, name)
        check_acts(fault, sender(conn), origin)
    finally:
        conn.close()
    assert admin.stats(name)["connections_accepted"] == 1


def test_a_response_delimited_by_the_close_arrives_intact_and_the_next_connection_is_acted_on(
    admin: Admin, origin: Origin
) -> None:
    name, listen = admin.proxy(origin.address)
    toxic = FAULTS["error"].add(admin, name)
    conn = connect(listen)
    try:
        conn.request("GET", "/big-close")
        response = conn.getresponse()
        first = response.read(1000)
        origin.wait("half", "/big-close")
        admin.remove_toxic(name, toxic)
        origin.server.gate.set()
        assert first + response.read() == pattern(BIG)
    finally:
        conn.close()
    FAULTS["error"].add(admin, name)
    conn = connect(listen)
    try:
        check_acts("error", sender(conn), origin)
    finally:
        conn.close()


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_removed_between_messages_then_added_again_acts(
    admin: Admin, origin: Origin, fault: str
) -> None:
    name, listen = admin.proxy(origin.address)
    toxic = FAULTS[fault].add(admin, name)
    conn = connect(listen)
    send = sender(conn)
    try:
        assert send("POST", "/one")[0] == 200
        admin.remove_toxic(name, toxic)
        assert send("POST", "/two")[0] == 200
        assert send("GET", "/fail")[0] == 200  # healed: nothing acts
        FAULTS[fault].add(admin, name)
        check_acts(fault, send, origin)
    finally:
        conn.close()
    stats = admin.stats(name)
    assert stats["connections_accepted"] == 1
    # Every request counted once, by the toxic or, while healed, by the passive counter.
    assert stats["http_requests"] == 5
    assert stats["http_passthrough_connections"] == 0


def test_removed_while_a_delay_holds_the_request_then_added_again(
    admin: Admin, origin: Origin
) -> None:
    """A heal lets the held request go at once (the proxy parsed it already: it is not
    parsed twice); a toxic added again acts on the next request."""
    name, listen = admin.proxy(origin.address)
    toxic = admin.toxic(name, "http_delay", delay=5000)
    body = pattern(BIG)
    conn = connect(listen)
    try:
        conn.putrequest("POST", "/upload")
        conn.putheader("Content-Length", str(BIG))
        conn.endheaders()
        conn.send(body[:100_000])
        deadline = time.monotonic() + WAIT
        while admin.stats(name)["http_requests_delayed"] < 1:  # the proxy holds it
            assert time.monotonic() < deadline, "the request was never delayed"
            time.sleep(0.01)
        started = time.monotonic()
        admin.remove_toxic(name, toxic)
        conn.send(body[100_000:])
        response = conn.getresponse()
        assert response.status == 200
        response.read()
        assert origin.body("/upload") == body
        FAULTS["error"].add(admin, name)
        check_acts("error", sender(conn), origin)
        # Let go by the heal: neither this request nor the next wait for the old 5 s.
        assert time.monotonic() - started < 4.0
    finally:
        conn.close()
    assert admin.stats(name)["connections_accepted"] == 1


def test_healing_a_delay_beside_another_http_toxic_lets_later_requests_go_at_once(
    admin: Admin, origin: Origin
) -> None:
    name, listen = admin.proxy(origin.address)
    FAULTS["error"].add(admin, name)
    delay = admin.toxic(name, "http_delay", delay=5000)
    conn = connect(listen)
    try:
        conn.putrequest("POST", "/upload")
        conn.putheader("Content-Length", "100000")
        conn.endheaders()
        conn.send(pattern(40_000))
        deadline = time.monotonic() + WAIT
        while admin.stats(name)["http_requests_delayed"] < 1:
            assert time.monotonic() < deadline, "the request was never delayed"
            time.sleep(0.01)
        started = time.monotonic()
        admin.remove_toxic(name, delay)
        conn.send(pattern(100_000)[40_000:])
        response = conn.getresponse()
        assert response.status == 200
        response.read()
        assert origin.body("/upload") == pattern(100_000)
        check_acts("error", sender(conn), origin)  # the other toxic still acts
        assert time.monotonic() - started < 4.0
    finally:
        conn.close()


@pytest.mark.parametrize("latency_first", [True, False], ids=["latency-first", "http-first"])
def test_removed_while_a_latency_on_the_same_link_holds_part_of_the_body(
    admin: Admin, origin: Origin, latency_first: bool
) -> None:
    """Bytes the latency holds when the HTTP toxic leaves are written once, in order, and
    the framing stays in step whether they had passed the HTTP toxic or not."""
    name, listen = admin.proxy(origin.address)
    if latency_first:
        admin.toxic(name, "latency", latency=150)
    toxic = FAULTS["error"].add(admin, name)
    if not latency_first:
        admin.toxic(name, "latency", latency=150)
    body = pattern(BIG)
    conn = connect(listen)
    try:
        conn.putrequest("POST", "/upload")
        conn.putheader("Content-Length", str(BIG))
        conn.endheaders()
        conn.send(body[:100_000])
        origin.wait("head", "/upload")
        conn.send(body[100_000:200_000])  # held by the latency for 150 ms
        admin.remove_toxic(name, toxic)
        conn.send(body[200_000:])
        response = conn.getresponse()
        assert response.status == 200
        response.read()
        assert origin.body("/upload") == body
        FAULTS["error"].add(admin, name)
        check_acts("error", sender(conn), origin)
    finally:
        conn.close()
    assert admin.stats(name)["http_passthrough_connections"] == 0


def test_two_http_toxics_removed_together_mid_body_then_one_added_again(
    admin: Admin, origin: Origin
) -> None:
    name, listen = admin.proxy(origin.address)
    toxics = [FAULTS["duplicate"].add(admin, name), FAULTS["error"].add(admin, name)]
    body = pattern(BIG)
    conn = connect(listen)
    try:
        conn.putrequest("POST", "/upload")
        conn.putheader("Content-Length", str(BIG))
        conn.endheaders()
        conn.send(body[:100_000])
        origin.wait("head", "/upload")
        for toxic in toxics:
            admin.remove_toxic(name, toxic)
        conn.send(body[100_000:])
        response = conn.getresponse()
        assert response.status == 200
        response.read()
        assert origin.body("/upload") == body
        FAULTS["error"].add(admin, name)
        check_acts("error", sender(conn), origin)
    finally:
        conn.close()
    assert admin.stats(name)["http_passthrough_connections"] == 0


def wait_bytes_read(admin: Admin, proxy: str, n: int) -> None:
    """Wait until the proxy has read ``n`` bytes from clients."""
    deadline = time.monotonic() + WAIT
    while admin.stats(proxy)["bytes_upstream"] < n:
        assert time.monotonic() < deadline, f"the proxy never read {n} bytes"
        time.sleep(0.01)


def test_a_request_head_cut_by_the_heal_is_delivered_whole_and_not_acted_on(
    admin: Admin, origin: Origin
) -> None:
    """The heal waits for the head being read (its bytes are not lost), but the removed
    toxic no longer decides for it."""
    name, listen = admin.proxy(origin.address)
    toxic = FAULTS["error"].add(admin, name)
    host, port = listen.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=WAIT) as sock:
        first = b"GET /fail/cut HTTP/1.1\r\nHo"
        sock.sendall(first)
        wait_bytes_read(admin, name, len(first))
        admin.remove_toxic(name, toxic)
        sock.sendall(b"st: x\r\n\r\n")
        assert [status for status, _ in read_responses(sock, 1)] == [200]
        FAULTS["error"].add(admin, name)
        sock.sendall(b"GET /fail HTTP/1.1\r\nHost: x\r\n\r\n")
        assert [status for status, _ in read_responses(sock, 1)] == [503]
    assert origin.paths == ["/fail/cut"]


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_removed_and_added_again_within_one_request_body(
    admin: Admin, origin: Origin, fault: str
) -> None:
    """The message in transfer arrives intact; the toxic acts from the next one on."""
    name, listen = admin.proxy(origin.address)
    toxic = FAULTS[fault].add(admin, name)
    body = pattern(BIG)
    conn = connect(listen)
    try:
        conn.putrequest("POST", "/upload")
        conn.putheader("Content-Length", str(BIG))
        conn.endheaders()
        conn.send(body[:50_000])
        origin.wait("head", "/upload")
        admin.remove_toxic(name, toxic)
        conn.send(body[50_000:150_000])
        origin.wait("progress", "/upload", 150_000)  # read while no toxic was there
        FAULTS[fault].add(admin, name)
        conn.send(body[150_000:])
        response = conn.getresponse()
        assert response.status == 200
        response.read()
        assert origin.body("/upload") == body
        check_acts(fault, sender(conn), origin)
    finally:
        conn.close()


def test_pipelined_requests_across_the_removal_and_after_the_return(
    admin: Admin, origin: Origin
) -> None:
    name, listen = admin.proxy(origin.address)
    toxic = FAULTS["error"].add(admin, name)
    host, port = listen.rsplit(":", 1)
    body = pattern(50_000)
    with socket.create_connection((host, int(port)), timeout=WAIT) as sock:
        head = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
        sock.sendall(head + body[:20_000])
        origin.wait("head", "/a")
        admin.remove_toxic(name, toxic)
        # The rest of /a and a whole /b in one write, both answered in order.
        sock.sendall(body[20_000:] + b"GET /fail/b HTTP/1.1\r\nHost: x\r\n\r\n")
        answers = read_responses(sock, 2)
        assert [status for status, _ in answers] == [200, 200]
        FAULTS["error"].add(admin, name)
        sock.sendall(
            b"GET /c HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /fail/d HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /e HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        answers = read_responses(sock, 3)
        assert [status for status, _ in answers] == [200, 503, 200]
        assert [body[:6] for _, body in (answers[0], answers[2])] == [b"GET /c", b"GET /e"]
    assert origin.paths == ["/a", "/fail/b", "/c", "/e"]
    assert origin.body("/a") == body


def read_responses(sock: socket.socket, n: int) -> list[tuple[int, bytes]]:
    """Read ``n`` Content-Length framed responses."""
    buf = b""
    out: list[tuple[int, bytes]] = []
    while len(out) < n:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = buf[:end].decode("latin-1").split("\r\n")
            length = next(
                int(line.split(":", 1)[1])
                for line in head
                if line.lower().startswith("content-length:")
            )
            if len(buf) >= end + 4 + length:
                out.append((int(head[0].split()[1]), buf[end + 4 : end + 4 + length]))
                buf = buf[end + 4 + length :]
                continue
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed after {len(out)} responses"
        buf += chunk
    return out


# -- requests and httpx: pooled connections as applications use them ------------------


def test_requests_session_upload_removed_mid_body_then_error_again(
    admin: Admin, origin: Origin
) -> None:
    name, listen = admin.proxy(origin.address)
    toxic = FAULTS["error"].add(admin, name)
    body = pattern(BIG)

    def parts() -> Iterator[bytes]:
        yield body[:100_000]
        origin.wait("head", "/upload")
        admin.remove_toxic(name, toxic)
        yield body[100_000:]

    with requests.Session() as session:
        base = f"http://{listen}"
        assert session.post(f"{base}/upload", data=parts(), timeout=WAIT).status_code == 200
        assert origin.body("/upload") == body
        FAULTS["error"].add(admin, name)
        assert session.get(f"{base}/fail", timeout=WAIT).status_code == 503
        assert session.get(f"{base}/after", timeout=WAIT).text.startswith("GET /after")
    assert "/fail" not in origin.paths
    assert admin.stats(name)["connections_accepted"] == 1


def test_requests_session_download_removed_mid_body_then_delay_again(
    admin: Admin, origin: Origin
) -> None:
    name, listen = admin.proxy(origin.address)
    toxic = FAULTS["delay"].add(admin, name)
    with requests.Session() as session:
        base = f"http://{listen}"
        response = session.get(f"{base}/big-chunked", stream=True, timeout=WAIT)
        chunks = response.iter_content(1000)
        first = next(chunks)
        origin.wait("half", "/big-chunked")
        admin.remove_toxic(name, toxic)
        origin.server.gate.set()
        assert first + b"".join(chunks) == pattern(BIG)
        FAULTS["delay"].add(admin, name)
        started = time.monotonic()
        assert session.get(f"{base}/slow", timeout=WAIT).status_code == 200
        assert time.monotonic() - started >= 0.24
    assert admin.stats(name)["connections_accepted"] == 1


def test_httpx_client_removed_mid_upload_then_duplicate_again(admin: Admin, origin: Origin) -> None:
    httpx = pytest.importorskip("httpx")
    name, listen = admin.proxy(origin.address)
    toxic = FAULTS["duplicate"].add(admin, name)
    body = pattern(BIG)

    def parts() -> Iterator[bytes]:
        yield body[:100_000]
        origin.wait("head", "/upload")
        admin.remove_toxic(name, toxic)
        yield body[100_000:]

    with httpx.Client(base_url=f"http://{listen}", timeout=WAIT) as client:
        assert client.post("/upload", content=parts()).status_code == 200
        assert origin.body("/upload") == body
        FAULTS["duplicate"].add(admin, name)
        assert client.post("/twice", content=b"x").status_code == 200
        assert client.get("/after").text.startswith("GET /after")
    assert origin.paths.count("/twice") == 2
    assert origin.paths.count("/upload") == 1
    assert admin.stats(name)["connections_accepted"] == 1


def test_traffic_that_is_not_http_still_passes_through_and_is_noted_once(
    admin: Admin, origin: Origin
) -> None:
    """A healed and re-added toxic on a connection that left HTTP (it never was):
    untouched bytes, one note, one count."""
    echo = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def serve() -> None:
        conn, _ = echo.accept()
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)
        done.set()

    threading.Thread(target=serve, daemon=True).start()
    name, listen = admin.proxy(f"127.0.0.1:{echo.getsockname()[1]}")
    toxic = FAULTS["error"].add(admin, name)
    host, port = listen.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=WAIT) as sock:
            for i in range(3):
                message = b"\x00\x01binary %d\r\n" % i
                sock.sendall(message)
                assert recv_exactly(sock, len(message)) == message
                admin.remove_toxic(name, toxic)
                sock.sendall(message)
                assert recv_exactly(sock, len(message)) == message
                toxic = FAULTS["error"].add(admin, name)
    finally:
        echo.close()
    assert done.wait(WAIT)
    stats = admin.stats(name)
    assert stats["http_passthrough_connections"] == 1
    assert [label for label, _ in admin.notes(name)].count("http_passthrough") == 1


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            break
        out += chunk
    return out
