#!/usr/bin/env python
"""Benchmark of the embedded proxy: the same workloads direct and through the proxy.

Run: ``.venv/bin/python bench/bench_proxy.py [--mode M] [--runs N] [--quick]``

Layout: the echo and sink servers run in their own process; the load generator is this
process. The proxy runs either in its own process (``python -m pytest_chaos.proxy``,
mode ``process``) or in a thread of this process (``EmbeddedServer``, mode ``thread``,
which is how a test run uses it: proxy and test code share one GIL). Every number is
reported next to the direct-loopback baseline measured in the same run; targets are
ratios (issue 2, item 6). Mode ``uvloop`` is ``process`` on uvloop (the ``fast``
extra); mode ``streams`` is a ten-line asyncio-streams forwarder without toxics or API,
the design baseline the engine's Protocols are measured against. With ``--runs N`` the
modes alternate N times and the table shows medians. Prints a Markdown table for
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing as mp
import os
import platform
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

CHUNK = 64 * 1024
#: The port of the servers' process's delayed echo (set by main).
DELAYED_ECHO_PORT: list[int] = []


# -- servers (child process) ---------------------------------------------------------------


def _servers_main(conn: Any) -> None:
    class Echo(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.t = transport

        def data_received(self, data: bytes) -> None:
            self.t.write(data)

    class Sink(asyncio.BufferedProtocol):
        """Reads an 8-byte length, then that many bytes; answers b"k"."""

        def connection_made(self, transport: Any) -> None:
            self.t = transport
            self.buf = bytearray(256 * 1024)
            self.head = b""
            self.left = -1

        def get_buffer(self, sizehint: int) -> memoryview:
            return memoryview(self.buf)

        def buffer_updated(self, nbytes: int) -> None:
            data = memoryview(self.buf)[:nbytes]
            if self.left < 0:
                need = 8 - len(self.head)
                self.head += bytes(data[:need])
                data = data[need:]
                if len(self.head) < 8:
                    return
                self.left = struct.unpack("!Q", self.head)[0]
            self.left -= len(data)
            if self.left == 0:
                self.t.write(b"k")
                self.head, self.left = b"", -1

    class DelayedEcho(asyncio.Protocol):
        """Echoes each chunk 100 ms after reading it: the latency toxic's baseline, a
        Python asyncio timer on this machine with the same scheduling (no proxy)."""

        def connection_made(self, transport: Any) -> None:
            self.t = transport

        def data_received(self, data: bytes) -> None:
            asyncio.get_running_loop().call_later(0.100, self.t.write, data)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        echo = await loop.create_server(Echo, "127.0.0.1", 0, backlog=4096)
        sink = await loop.create_server(Sink, "127.0.0.1", 0, backlog=4096)
        delayed = await loop.create_server(DelayedEcho, "127.0.0.1", 0, backlog=4096)
        DELAYED_ECHO_PORT.append(delayed.sockets[0].getsockname()[1])
        conn.send((echo.sockets[0].getsockname()[1], sink.sockets[0].getsockname()[1]))
        conn.send(DELAYED_ECHO_PORT[0])
        await asyncio.Event().wait()

    asyncio.run(main())


# -- proxy control -------------------------------------------------------------------------


class Admin:
    """The Toxiproxy HTTP API over one keep-alive connection."""

    def __init__(self, port: int) -> None:
        self.http = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method: str, path: str, body: object = None) -> Any:
        data = json.dumps(body) if body is not None else None
        self.http.request(method, path, body=data, headers={"Content-Type": "application/json"})
        response = self.http.getresponse()
        raw = response.read()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {raw!r}")
        return json.loads(raw) if raw else None

    def proxy(self, name: str, upstream_port: int) -> int:
        made = self.call(
            "POST",
            "/proxies",
            {"name": name, "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{upstream_port}"},
        )
        return int(made["listen"].rsplit(":", 1)[1])

    def close(self) -> None:
        self.http.close()


_UVLOOP_SERVER = """
import asyncio, sys, uvloop
from pytest_chaos.proxy._server import ServerCore

async def main():
    core = await ServerCore.open("127.0.0.1", 0)
    print("listening on http://127.0.0.1:%d" % core.http.address[1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await core.close()

uvloop.run(main())
"""


_STREAMS_PROXY = """
import asyncio, sys

async def pump(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.write_eof()
    except (ConnectionError, OSError):
        writer.transport.abort()

def forward(port):
    async def handle(reader, writer):
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pump(reader, up_w), pump(up_r, writer))
        up_w.close()
        writer.close()
    return handle

async def main():
    servers = [await asyncio.start_server(forward(int(p)), "127.0.0.1", 0, backlog=4096)
               for p in sys.argv[1:]]
    print(" ".join(str(s.sockets[0].getsockname()[1]) for s in servers), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main())
"""


@contextmanager
def streams_proxy(*ports: int) -> Iterator[list[int]]:
    """A minimal asyncio-streams forwarder (no toxics, no API): the design baseline."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _STREAMS_PROXY, *map(str, ports)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # its pending pumps complain when terminated
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield [int(p) for p in proc.stdout.readline().split()]
    finally:
        proc.terminate()
        proc.wait(10)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


@contextmanager
def proxy_server(mode: str) -> Iterator[int]:
    """Yield the admin port of a running embedded proxy."""
    if mode in ("process", "uvloop"):
        cmd = [sys.executable, "-m", "pytest_chaos.proxy", "-port", "0"]
        if mode == "uvloop":
            cmd = [sys.executable, "-c", _UVLOOP_SERVER]
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            port = int(line.rsplit(":", 1)[1].split()[0].strip("/"))
            yield port
        finally:
            proc.terminate()
            proc.wait(10)
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()
    else:
        from pytest_chaos.proxy._server import EmbeddedServer

        with EmbeddedServer() as server:
            yield server.port


# -- workloads -----------------------------------------------------------------------------


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def bulk(port: int, total: int) -> float:
    """MB/s of one connection writing ``total`` bytes in 64 KiB writes to the sink."""
    block = b"\xab" * CHUNK
    with _connect(port) as sock:
        start = time.perf_counter()
        sock.sendall(struct.pack("!Q", total))
        for _ in range(total // CHUNK):
            sock.sendall(block)
        assert sock.recv(1) == b"k"
        return total / (time.perf_counter() - start) / 1e6


def rtt(port: int, n: int, warm: int = 50) -> list[float]:
    """Seconds per 1-byte ping-pong."""
    out = []
    with _connect(port) as sock:
        for _ in range(warm):
            sock.sendall(b"p")
            sock.recv(1)
        for _ in range(n):
            start = time.perf_counter()
            sock.sendall(b"p")
            if sock.recv(1) != b"p":
                raise RuntimeError("bad echo")
            out.append(time.perf_counter() - start)
    return out


def setup(port: int, n: int) -> list[float]:
    """Seconds for connect + first 1-byte echo."""
    out = []
    for _ in range(n):
        start = time.perf_counter()
        with _connect(port) as sock:
            sock.sendall(b"s")
            if sock.recv(1) != b"s":
                raise RuntimeError("bad echo")
            out.append(time.perf_counter() - start)
    return out


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def interleaved(
    rounds: int, direct: Callable[[], list[float]], proxied: Callable[[], list[float]]
) -> tuple[list[float], list[float]]:
    """Alternate direct and proxied batches so that load changes hit both alike."""
    a: list[float] = []
    b: list[float] = []
    for _ in range(rounds):
        a += direct()
        b += proxied()
    return a, b


def transfer(
    res: dict[str, Any], quick: bool, echo_port: int, sink_port: int, p_echo: int, p_sink: int
) -> None:
    """Bulk, RTT and connection setup, direct and proxied, interleaved."""
    total = (32 if quick else 128) * 1024 * 1024
    rounds = 4 if quick else 10
    n_rtt = 250 if quick else 500
    n_setup = 50 if quick else 100
    b_direct, b_proxy = interleaved(
        rounds, lambda: [bulk(sink_port, total)], lambda: [bulk(p_sink, total)]
    )
    res["bulk_direct_MBps"] = statistics.median(b_direct)
    res["bulk_proxy_MBps"] = statistics.median(b_proxy)
    r_direct, r_proxy = interleaved(
        rounds, lambda: rtt(echo_port, n_rtt), lambda: rtt(p_echo, n_rtt)
    )
    res["rtt_direct_p50_us"] = pct(r_direct, 0.5) * 1e6
    res["rtt_direct_p99_us"] = pct(r_direct, 0.99) * 1e6
    res["rtt_proxy_p50_us"] = pct(r_proxy, 0.5) * 1e6
    res["rtt_proxy_p99_us"] = pct(r_proxy, 0.99) * 1e6
    s_direct, s_proxy = interleaved(
        rounds, lambda: setup(echo_port, n_setup), lambda: setup(p_echo, n_setup)
    )
    res["setup_direct_p50_us"] = pct(s_direct, 0.5) * 1e6
    res["setup_proxy_p50_us"] = pct(s_proxy, 0.5) * 1e6
    res["bulk_ratio"] = res["bulk_proxy_MBps"] / res["bulk_direct_MBps"]
    res["rtt_ratio"] = res["rtt_proxy_p50_us"] / res["rtt_direct_p50_us"]
    res["setup_ratio"] = res["setup_proxy_p50_us"] / res["setup_direct_p50_us"]


def latency(res: dict[str, Any], admin: Admin, echo_port: int, p_echo: int, n: int) -> None:
    """Error of a 100 ms latency toxic: proxied RTT with it - proxied RTT p50 without it
    - 100 ms, per 1-byte ping-pong. Baseline in the same run, batches interleaved: a
    direct connection to an echo server that answers after a 100 ms asyncio timer (the
    error any Python timer has on this machine at this moment)."""
    base = pct(rtt(p_echo, 500), 0.5)
    direct = pct(rtt(echo_port, 500), 0.5)
    res["latency_direct_rtt_p50_ms"] = direct * 1e3
    res["latency_proxy_rtt_p50_ms"] = base * 1e3
    admin.call("POST", "/proxies/echo/toxics", {"type": "latency", "attributes": {"latency": 100}})
    d_direct, d_proxy = interleaved(
        max(1, n // 10),
        lambda: rtt(DELAYED_ECHO_PORT[0], 10, warm=0),
        lambda: rtt(p_echo, 10, warm=0),
    )
    admin.call("DELETE", "/proxies/echo/toxics/latency_downstream")
    for key, delayed, zero in (("latency_error", d_proxy, base), ("timer_error", d_direct, direct)):
        errors = [abs(d - zero - 0.100) * 1e3 for d in delayed]
        res[f"{key}_p50_ms"] = pct(errors, 0.5)
        res[f"{key}_p99_ms"] = pct(errors, 0.99)
        res[f"{key}_max_ms"] = max(errors)
    res["latency_error_mean_ms"] = statistics.mean((d - base - 0.100) * 1e3 for d in d_proxy)


def _busy(stop: threading.Event) -> None:
    """A test's own CPU-bound thread: pure Python that holds the GIL between switches."""
    while not stop.is_set():
        sum(i * i for i in range(2000))


def run(
    mode: str, quick: bool, echo_port: int, sink_port: int, only_latency: bool = False
) -> dict[str, Any]:
    n_toggle = 50 if quick else 200
    res: dict[str, Any] = {"mode": mode}
    if mode == "streams":
        with streams_proxy(echo_port, sink_port) as (p_echo, p_sink):
            transfer(res, quick, echo_port, sink_port, p_echo, p_sink)
        return res
    with proxy_server(mode) as admin_port:
        admin = Admin(admin_port)
        p_echo = admin.proxy("echo", echo_port)
        p_sink = admin.proxy("sink", sink_port)
        if not only_latency:
            transfer(res, quick, echo_port, sink_port, p_echo, p_sink)
        latency(res, admin, echo_port, p_echo, 30 if quick else 100)
        if only_latency:
            admin.close()
            return res
        toggles = toggle(admin, n_toggle)
        res["toggle_0_p50_ms"] = pct(toggles, 0.5) * 1e3
        idle = []
        try:
            for _ in range(1000):
                sock = _connect(p_echo)
                idle.append(sock)
                sock.sendall(b"i")
            for sock in idle:
                sock.recv(1)
            toggles = toggle(admin, n_toggle)
            res["toggle_1000_p50_ms"] = pct(toggles, 0.5) * 1e3
            res["toggle_1000_p99_ms"] = pct(toggles, 0.99) * 1e3
        finally:
            for sock in idle:
                sock.close()
        admin.close()
    return res


def toggle(admin: Admin, n: int) -> list[float]:
    """Seconds per add + remove of a latency toxic over the HTTP API."""
    out = []
    for _ in range(n):
        start = time.perf_counter()
        admin.call(
            "POST",
            "/proxies/echo/toxics",
            {"type": "latency", "name": "t", "attributes": {"latency": 10}},
        )
        admin.call("DELETE", "/proxies/echo/toxics/t")
        out.append(time.perf_counter() - start)
    return out


def machine() -> str:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {platform.system()}"
    )


def combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of every number over repeated runs of one mode."""
    out: dict[str, Any] = {"mode": runs[0]["mode"], "runs": len(runs)}
    for key, value in runs[0].items():
        if isinstance(value, float | int) and not isinstance(value, bool):
            out[key] = statistics.median(r[key] for r in runs)
    return out


def report(results: list[dict[str, Any]]) -> str:
    rows = []

    def row(label: str, keys: list[str], fmt: Callable[..., str]) -> None:
        cells = []
        for r in results:
            cells.append(fmt(*(r[k] for k in keys)) if all(k in r for k in keys) else "-")
        rows.append(f"| {label} | " + " | ".join(cells) + " |")

    row(
        "bulk MB/s direct -> proxy (ratio, target >= 0.6)",
        ["bulk_direct_MBps", "bulk_proxy_MBps", "bulk_ratio"],
        lambda d, p, x: f"{d:.0f} -> {p:.0f} (**{x:.2f}**)",
    )
    row(
        "RTT p50 µs direct -> proxy (ratio, target <= 1.5)",
        ["rtt_direct_p50_us", "rtt_proxy_p50_us", "rtt_ratio"],
        lambda d, p, x: f"{d:.0f} -> {p:.0f} (**{x:.2f}**)",
    )
    row(
        "RTT p99 µs direct -> proxy",
        ["rtt_direct_p99_us", "rtt_proxy_p99_us"],
        lambda d, p: f"{d:.0f} -> {p:.0f}",
    )
    row(
        "connect + first echo p50 µs (ratio, target <= 2.5)",
        ["setup_direct_p50_us", "setup_proxy_p50_us", "setup_ratio"],
        lambda d, p, x: f"{d:.0f} -> {p:.0f} (**{x:.2f}**)",
    )
    row(
        "latency 100 ms: error p50 / p99 / worst ms (target worst <= 2), mean signed",
        [
            "latency_error_p50_ms",
            "latency_error_p99_ms",
            "latency_error_max_ms",
            "latency_error_mean_ms",
        ],
        lambda a, q, w, m: f"{a:.2f} / {q:.2f} / **{w:.2f}** ({m:+.2f})",
    )
    row(
        "baseline: direct to a server answering after a 100 ms asyncio timer, error "
        "p50 / p99 / worst ms",
        ["timer_error_p50_ms", "timer_error_p99_ms", "timer_error_max_ms"],
        lambda a, q, w: f"{a:.2f} / {q:.2f} / **{w:.2f}**",
    )
    row(
        "latency run's RTT p50 ms direct -> proxy (no toxic)",
        ["latency_direct_rtt_p50_ms", "latency_proxy_rtt_p50_ms"],
        lambda d, p: f"{d:.3f} -> {p:.3f}",
    )
    row(
        "add+remove toxic over HTTP, no connections, p50 ms",
        ["toggle_0_p50_ms"],
        lambda a: f"{a:.2f}",
    )
    row(
        "add+remove toxic over HTTP, 1,000 idle connections, p50 / p99 ms (target p50 <= 5)",
        ["toggle_1000_p50_ms", "toggle_1000_p99_ms"],
        lambda a, b: f"**{a:.2f}** / {b:.2f}",
    )
    header = "| workload | " + " | ".join(r["mode"] for r in results) + " |"
    sep = "|---|" + "---|" * len(results)
    return "\n".join([header, sep, *rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mode", choices=["process", "uvloop", "thread", "streams", "all"], default="all"
    )
    parser.add_argument("--runs", type=int, default=1, help="repeat and report medians")
    parser.add_argument("--quick", action="store_true", help="smaller workloads")
    parser.add_argument(
        "--workload", choices=["all", "latency"], default="all", help="latency: only that one"
    )
    parser.add_argument(
        "--busy-thread",
        action="store_true",
        help="run a CPU-bound Python thread in this process meanwhile (a test's own work)",
    )
    parser.add_argument(
        "--switch-interval",
        type=float,
        help="sys.setswitchinterval(S) in this process (the GIL hand-off; default 0.005)",
    )
    args = parser.parse_args()
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    stop = threading.Event()
    if args.busy_thread:
        threading.Thread(target=_busy, args=(stop,), daemon=True).start()
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    servers = ctx.Process(target=_servers_main, args=(child,), daemon=True)
    servers.start()
    try:
        echo_port, sink_port = parent.recv()
        DELAYED_ECHO_PORT.append(parent.recv())
        modes = ["process", "uvloop", "thread", "streams"] if args.mode == "all" else [args.mode]
        raw: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
        for _ in range(args.runs):  # modes alternate, so load changes hit all alike
            for mode in modes:
                raw[mode].append(
                    run(mode, args.quick, echo_port, sink_port, args.workload == "latency")
                )
        results = [combine(raw[m]) for m in modes]
    finally:
        stop.set()
        servers.terminate()
        servers.join(10)
    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"machine: {machine()}")
    print(f"load average at end: {os.getloadavg()}")
    print()
    print(report(results))
    print()
    print(json.dumps(raw, indent=1))


if __name__ == "__main__":
    main()
