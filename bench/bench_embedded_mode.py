"""Where the embedded server should run: a thread of the test process, or its own process.

Not a test: run ``python bench/bench_embedded_mode.py`` and copy the table into
bench/RESULTS.md. The upstream (an echo server that also counts bulk uploads) is its own
process, like the services a chaos test talks to; the client is this process. Each
workload runs direct, through ``EmbeddedServer`` (a thread here, sharing this process's
GIL) and through ``python -m pytest_chaos.proxy`` (its own process), in one run:

- bulk: one connection, 64 KiB writes, 256 MiB, best of 3 (MB/s);
- RTT: 1-byte ping-pong, 2,000 round trips (p50, p99);
- API: add + remove a toxic while 20 connections pump 64 KiB echoes (p50, worst).

The load average is printed with the results: on a shared 2-core machine it moves the
absolute numbers a lot; compare the columns of one run, not runs.
"""

from __future__ import annotations

import http.client
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

UPSTREAM = r"""
import socket, threading
srv = socket.create_server(("127.0.0.1", 0), backlog=512)
print(srv.getsockname()[1], flush=True)
def serve(conn):
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    first = conn.recv(65536)
    if first.startswith(b"BULK"):          # count until EOF, answer the count
        n = len(first) - 4
        while data := conn.recv(262144):
            n += len(data)
        conn.sendall(str(n).encode())
    else:                                  # echo
        data = first
        while data:
            conn.sendall(data)
            data = conn.recv(65536)
    conn.close()
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""


def api(url: str, method: str, path: str, body: object = None) -> bytes:
    host, port = url.split("//")[1].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body))
        return conn.getresponse().read()
    finally:
        conn.close()


def connect(address: str) -> socket.socket:
    host, port = address.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def bulk(address: str, total: int = 256 * 1024 * 1024) -> float:
    block = b"x" * 65536
    with connect(address) as sock:
        start = time.perf_counter()
        sock.sendall(b"BULK")
        sent = 0
        while sent < total:
            sock.sendall(block)
            sent += len(block)
        sock.shutdown(socket.SHUT_WR)
        counted = int(sock.recv(100))
        elapsed = time.perf_counter() - start
    assert counted == total, (counted, total)
    return total / elapsed / 1e6


def rtt(address: str, rounds: int) -> tuple[float, float]:
    samples = []
    with connect(address) as sock:
        for _ in range(rounds):
            start = time.perf_counter()
            sock.sendall(b"x")
            sock.recv(1)
            samples.append(time.perf_counter() - start)
    samples.sort()
    return samples[len(samples) // 2] * 1e6, samples[int(len(samples) * 0.99) - 1] * 1e6


def api_under_load(url: str, address: str, name: str) -> tuple[float, float]:
    stop = threading.Event()

    def pump() -> None:
        block = b"z" * 65536
        with connect(address) as sock:
            while not stop.is_set():
                sock.sendall(block)
                got = 0
                while got < len(block):
                    got += len(sock.recv(65536))

    pumps = [threading.Thread(target=pump) for _ in range(20)]
    for p in pumps:
        p.start()
    time.sleep(0.3)
    samples = []
    try:
        for i in range(50):
            start = time.perf_counter()
            api(url, "POST", f"/proxies/{name}/toxics", {"type": "noop", "name": f"n{i}"})
            api(url, "DELETE", f"/proxies/{name}/toxics/n{i}")
            samples.append(time.perf_counter() - start)
    finally:
        stop.set()
        for p in pumps:
            p.join()
    return statistics.median(samples) * 1e3, max(samples) * 1e3


def measure(url: str | None, upstream: str) -> dict[str, tuple[float, ...]]:
    if url is None:
        address, name = upstream, ""
    else:
        name = "bench"
        created = api(
            url, "POST", "/proxies", {"name": name, "listen": "127.0.0.1:0", "upstream": upstream}
        )
        address = json.loads(created)["listen"]
    result: dict[str, tuple[float, ...]] = {
        "bulk": (max(bulk(address) for _ in range(3)),),
        "rtt": rtt(address, 2000),
    }
    if url is not None:
        result["api"] = api_under_load(url, address, name)
        api(url, "DELETE", f"/proxies/{name}")
    return result


def main() -> None:
    from pytest_chaos.proxy import EmbeddedServer

    upstream_proc = subprocess.Popen([sys.executable, "-c", UPSTREAM], stdout=subprocess.PIPE)
    assert upstream_proc.stdout is not None
    upstream = f"127.0.0.1:{int(upstream_proc.stdout.readline())}"
    cli = None
    try:
        direct = measure(None, upstream)
        with EmbeddedServer() as server:
            threaded = measure(server.url, upstream)
        cli = subprocess.Popen(
            [sys.executable, "-m", "pytest_chaos.proxy", "-port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert cli.stdout is not None
        url = cli.stdout.readline().strip().rsplit(" ", 1)[1]
        own_process = measure(url, upstream)
    finally:
        if cli is not None:
            cli.terminate()
            cli.wait()
        upstream_proc.kill()
        upstream_proc.wait()

    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"{when}, {platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}, Linux {platform.release()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}\n"
    )
    print("| workload | direct | thread (EmbeddedServer) | own process (CLI) |")
    print("|---|---|---|---|")
    d, t, p = direct, threaded, own_process
    print(
        f"| bulk MB/s (ratio) | {d['bulk'][0]:.0f} | {t['bulk'][0]:.0f} "
        f"({t['bulk'][0] / d['bulk'][0]:.2f}) | {p['bulk'][0]:.0f} "
        f"({p['bulk'][0] / d['bulk'][0]:.2f}) |"
    )
    for key, label in (("rtt", "RTT"),):
        print(
            f"| {label} p50 / p99 µs (p50 ratio) | {d[key][0]:.0f} / {d[key][1]:.0f} | "
            f"{t[key][0]:.0f} / {t[key][1]:.0f} ({t[key][0] / d[key][0]:.1f}) | "
            f"{p[key][0]:.0f} / {p[key][1]:.0f} ({p[key][0] / d[key][0]:.1f}) |"
        )
    print(
        f"| toxic add+remove, 20 busy conns, p50 / worst ms | - | "
        f"{t['api'][0]:.1f} / {t['api'][1]:.1f} | {p['api'][0]:.1f} / {p['api'][1]:.1f} |"
    )


if __name__ == "__main__":
    main()
