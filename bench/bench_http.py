"""What the HTTP toxics cost: the embedded proxy with and without them, in one run.

Not a test: run ``python bench/bench_http.py [REQUESTS]`` and copy the table into
bench/RESULTS.md. Three processes, so that nobody shares a GIL: the counting HTTP
upstream of the test suite (tests/toxics/_upstream.py), the proxy
(``python -m pytest_chaos.proxy``) and this client. Measured, each against the same
upstream:

- keep-alive request rate: sequential small GETs over one connection (direct; through
  the proxy with no toxic; with an ``http_error`` that matches nothing, which still
  parses every request and response; with an ``http_delay`` of 0 ms that matches all);
- bulk upload: one POST with a Content-Length body sent in 64 KiB writes, same four
  setups (the upstream reads and counts the body);
- duplicated delivery: the rate of POSTs with ``http_duplicate`` (2 copies) against
  plain POSTs through the proxy.

Ratios are against the direct path (or the proxy without toxics) measured in the same
run, so a busy machine skews both sides alike.

``python bench/bench_http.py --parsers scan,h11 [--runs 5] [REQUESTS]`` compares the HTTP
parser backends instead (``PYTEST_CHAOS_HTTP_PARSER`` in the proxy's environment): for
each run and backend, the keep-alive GET rate through the plain proxy, with an
``http_error`` matching nothing and with an ``http_delay`` of 0 ms, one right after the
other, each toxic as a ratio to the plain proxy of that run; medians over the runs.
With ``--interleave B`` the three setups are three proxies of one server measured in
alternating blocks of ``B`` requests (steadier on a machine whose load changes).
"""

from __future__ import annotations

import http.client
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
UPSTREAM = ROOT / "tests" / "toxics" / "_upstream.py"


def start_upstream(tmp: str) -> tuple[subprocess.Popen[bytes], str]:
    portfile = os.path.join(tmp, "port")
    proc = subprocess.Popen([sys.executable, str(UPSTREAM), portfile])
    while not os.path.exists(portfile):
        time.sleep(0.02)
    with open(portfile) as f:
        return proc, f"127.0.0.1:{f.read()}"


def start_proxy(parser: str = "") -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "pytest_chaos.proxy", "-port", "0"]
    env = {**os.environ, "PYTEST_CHAOS_HTTP_PARSER": parser} if parser else None
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"http://[^\s]+", line)
    if match is None:
        raise RuntimeError(f"proxy did not start: {line!r}")
    return proc, match.group(0)


def connect(address: str) -> http.client.HTTPConnection:
    host, port = address.rsplit(":", 1)
    return http.client.HTTPConnection(host, int(port), timeout=30)


def request_rate(address: str, n: int, method: str = "GET", body: bytes | None = None) -> float:
    conn = connect(address)
    try:
        conn.request(method, "/warm", body=body)
        conn.getresponse().read()
        started = time.perf_counter()
        for i in range(n):
            conn.request(method, f"/r/{i}", body=body)
            conn.getresponse().read()
        return n / (time.perf_counter() - started)
    finally:
        conn.close()


def upload_mb_s(address: str, size: int) -> float:
    block = os.urandom(64 * 1024)
    conn = connect(address)
    try:
        started = time.perf_counter()
        conn.putrequest("POST", "/upload")
        conn.putheader("Content-Length", str(size))
        conn.endheaders()
        sent = 0
        while sent < size:
            conn.send(block)
            sent += len(block)
        response = conn.getresponse()
        response.read()
        elapsed = time.perf_counter() - started
        assert response.status == 200, response.status
        return size / elapsed / 1e6
    finally:
        conn.close()


def best(samples: list[float]) -> float:
    """The median of a few runs (less noise than one, less bias than the max)."""
    return statistics.median(samples)


def compare_parsers(parsers: list[str], n: int, runs: int) -> None:
    """Plain proxy against the two toxic setups, per parser backend, ratios per run."""
    tmp = tempfile.mkdtemp()
    upstream, up_address = start_upstream(tmp)
    procs, apis, vias = [], {}, {}
    session = requests.Session()
    setups: list[tuple[str, str, dict[str, Any]] | None] = [
        None,
        ("http_error", "nothing", {"path_prefix": "/x"}),
        ("http_delay", "delay0", {"delay": 0}),
    ]
    rates: dict[tuple[str, str], list[float]] = {}
    ratios: dict[tuple[str, str], list[float]] = {}
    try:
        for parser in parsers:
            proc, api = start_proxy(parser)
            procs.append(proc)
            r = session.post(
                f"{api}/proxies",
                json={"name": "web", "listen": "127.0.0.1:0", "upstream": up_address},
                timeout=10,
            )
            r.raise_for_status()
            apis[parser], vias[parser] = api, str(r.json()["listen"])
        for _ in range(runs):
            for parser in parsers:
                api, via = apis[parser], vias[parser]
                plain = 0.0
                for spec in setups:
                    name, label = None, "plain"
                    if spec is not None:
                        r = session.post(
                            f"{api}/proxies/web/toxics",
                            json={"type": spec[0], "stream": "upstream", "attributes": spec[2]},
                            timeout=10,
                        )
                        r.raise_for_status()
                        name, label = str(r.json()["name"]), spec[1]
                    session.post(f"http://{up_address}/_reset", timeout=10)
                    rate = request_rate(via, n)
                    if name is not None:
                        url = f"{api}/proxies/web/toxics/{name}"
                        session.delete(url, timeout=10).raise_for_status()
                    else:
                        plain = rate
                    rates.setdefault((parser, label), []).append(rate)
                    ratios.setdefault((parser, label), []).append(rate / plain)
    finally:
        session.close()
        for proc in procs:
            proc.terminate()
            proc.wait(10)
        upstream.terminate()
        upstream.wait(10)
    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    print(f"keep-alive GETs: {n} per setup and run; medians of {runs} runs")
    print()
    print(
        "| parser | plain proxy req/s | matching nothing req/s (ratio) | delay 0 ms req/s (ratio) |"
    )
    print("|---|---|---|---|")
    for parser in parsers:
        cells = [f"{statistics.median(rates[parser, 'plain']):.0f}"]
        for label in ("nothing", "delay0"):
            rate = statistics.median(rates[parser, label])
            ratio = statistics.median(ratios[parser, label])
            cells.append(f"{rate:.0f} (**{ratio:.2f}**)")
        print(f"| {parser} | " + " | ".join(cells) + " |")
    print()
    for parser in parsers:
        for label in ("nothing", "delay0"):
            each = " ".join(f"{x:.2f}" for x in ratios[parser, label])
            print(f"{parser} {label} ratios per run: {each}")


def compare_interleaved(parsers: list[str], n: int, runs: int, block: int) -> None:
    """As :func:`compare_parsers`, but the three setups are three proxies of one server
    (one with no toxic, one with each toxic) measured in alternating blocks of ``block``
    requests, each on its own keep-alive connection: a change of the machine's load
    then weighs on the three alike, which the sequential runs cannot ensure."""
    tmp = tempfile.mkdtemp()
    upstream, up_address = start_upstream(tmp)
    procs = []
    session = requests.Session()
    setups: list[tuple[str, tuple[str, dict[str, Any]] | None]] = [
        ("plain", None),
        ("nothing", ("http_error", {"path_prefix": "/x"})),
        ("delay0", ("http_delay", {"delay": 0})),
    ]
    rates: dict[tuple[str, str], list[float]] = {}
    ratios: dict[tuple[str, str], list[float]] = {}
    try:
        vias: dict[tuple[str, str], str] = {}
        for parser in parsers:
            proc, api = start_proxy(parser)
            procs.append(proc)
            for label, spec in setups:
                r = session.post(
                    f"{api}/proxies",
                    json={"name": label, "listen": "127.0.0.1:0", "upstream": up_address},
                    timeout=10,
                )
                r.raise_for_status()
                vias[parser, label] = str(r.json()["listen"])
                if spec is not None:
                    session.post(
                        f"{api}/proxies/{label}/toxics",
                        json={"type": spec[0], "stream": "upstream", "attributes": spec[1]},
                        timeout=10,
                    ).raise_for_status()
        for _ in range(runs):
            for parser in parsers:
                session.post(f"http://{up_address}/_reset", timeout=10)
                conns = {label: connect(vias[parser, label]) for label, _ in setups}
                spent = dict.fromkeys(conns, 0.0)
                try:
                    for conn in conns.values():
                        conn.request("GET", "/warm")
                        conn.getresponse().read()
                    for b in range(max(n // block, 1)):
                        order = [label for label, _ in setups]
                        shift = b % len(order)  # who goes first rotates
                        for label in order[shift:] + order[:shift]:
                            conn = conns[label]
                            started = time.perf_counter()
                            for i in range(block):
                                conn.request("GET", f"/r/{b}/{i}")
                                conn.getresponse().read()
                            spent[label] += time.perf_counter() - started
                finally:
                    for conn in conns.values():
                        conn.close()
                done = max(n // block, 1) * block
                for label in conns:
                    rates.setdefault((parser, label), []).append(done / spent[label])
                    ratios.setdefault((parser, label), []).append(spent["plain"] / spent[label])
    finally:
        session.close()
        for proc in procs:
            proc.terminate()
            proc.wait(10)
        upstream.terminate()
        upstream.wait(10)
    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    print(f"keep-alive GETs: {n} per setup and run, interleaved in blocks of {block}; "
          f"medians of {runs} runs")  # fmt: skip
    print()
    print(
        "| parser | plain proxy req/s | matching nothing req/s (ratio) | delay 0 ms req/s (ratio) |"
    )
    print("|---|---|---|---|")
    for parser in parsers:
        cells = [f"{statistics.median(rates[parser, 'plain']):.0f}"]
        for label in ("nothing", "delay0"):
            rate = statistics.median(rates[parser, label])
            ratio = statistics.median(ratios[parser, label])
            cells.append(f"{rate:.0f} (**{ratio:.2f}**)")
        print(f"| {parser} | " + " | ".join(cells) + " |")
    print()
    for parser in parsers:
        for label in ("nothing", "delay0"):
            each = " ".join(f"{x:.2f}" for x in ratios[parser, label])
            print(f"{parser} {label} ratios per run: {each}")


def main() -> None:
    if "--parsers" in sys.argv:
        args = sys.argv[1:]
        i = args.index("--parsers")
        parsers = args[i + 1].split(",")
        del args[i : i + 2]
        runs = 5
        if "--runs" in args:
            j = args.index("--runs")
            runs = int(args[j + 1])
            del args[j : j + 2]
        if "--interleave" in args:
            k = args.index("--interleave")
            block = int(args[k + 1])
            del args[k : k + 2]
            compare_interleaved(parsers, int(args[0]) if args else 1000, runs, block)
            return
        compare_parsers(parsers, int(args[0]) if args else 1000, runs)
        return
    tmp = tempfile.mkdtemp()
    upstream, up_address = start_upstream(tmp)
    args = sys.argv[1:]
    proxy, api = start_proxy()
    session = requests.Session()
    try:
        r = session.post(
            f"{api}/proxies",
            json={"name": "web", "listen": "127.0.0.1:0", "upstream": up_address},
            timeout=10,
        )
        r.raise_for_status()
        via = str(r.json()["listen"])

        def toxic(type_name: str, **attributes: Any) -> str:
            r = session.post(
                f"{api}/proxies/web/toxics",
                json={"type": type_name, "stream": "upstream", "attributes": attributes},
                timeout=10,
            )
            r.raise_for_status()
            return str(r.json()["name"])

        def untoxic(name: str) -> None:
            session.delete(f"{api}/proxies/web/toxics/{name}", timeout=10).raise_for_status()

        def reset_log() -> None:
            session.post(f"http://{up_address}/_reset", timeout=10)

        setups: list[tuple[str, str, tuple[str, dict[str, Any]] | None]] = [
            ("direct", up_address, None),
            ("proxy, no toxic", via, None),
            ("proxy, http_error matching nothing", via, ("http_error", {"path_prefix": "/x"})),
            ("proxy, http_delay 0 ms on all", via, ("http_delay", {"delay": 0})),
        ]
        n = int(args[0]) if args else 500
        size, runs = 32 * 1024 * 1024, 3
        rows = []
        for label, address, spec in setups:
            name = toxic(spec[0], **spec[1]) if spec else None
            rates, uploads = [], []
            for _ in range(runs):
                reset_log()
                rates.append(request_rate(address, n))
                reset_log()
                uploads.append(upload_mb_s(address, size))
            reset_log()
            if name:
                untoxic(name)
            rows.append((label, best(rates), best(uploads)))
        reset_log()
        plain_posts = best([request_rate(via, n // 2, "POST", b"x" * 100) for _ in range(runs)])
        name = toxic("http_duplicate", copies=2)
        dup_posts = best([request_rate(via, n // 2, "POST", b"x" * 100) for _ in range(runs)])
        untoxic(name)
        reset_log()
    finally:
        session.close()
        proxy.terminate()
        proxy.wait(10)
        upstream.terminate()
        upstream.wait(10)

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"machine: {os.cpu_count()} cpus, {cpu}, Python {platform.python_version()}")
    print(f"keep-alive GETs: {n} per run; upload: {size >> 20} MiB in 64 KiB writes; "
          f"median of {runs} runs")  # fmt: skip
    print()
    print("| setup | req/s | vs direct | upload MB/s | vs direct |")
    print("|---|---|---|---|---|")
    base_rate, base_up = rows[0][1], rows[0][2]
    for label, rate, up in rows:
        print(f"| {label} | {rate:.0f} | {rate / base_rate:.2f} | {up:.0f} | {up / base_up:.2f} |")
    print()
    print(
        f"POST rate through the proxy: {plain_posts:.0f}/s plain, {dup_posts:.0f}/s with "
        f"http_duplicate copies=2 (ratio {dup_posts / plain_posts:.2f}; each POST then costs "
        "the upstream two requests)"
    )


if __name__ == "__main__":
    main()
