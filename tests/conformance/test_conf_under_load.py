"""The API keeps answering while the data path is busy (Toxiproxy's most reported bug).

Bounds are generous on purpose (seconds for operations that take milliseconds): the
point is "does not hang", not a speed claim.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from .conftest import Api, EchoServer, host_port

pytestmark = pytest.mark.data_path

CONNECTIONS = 20


def _pump(address: tuple[str, int], stop: threading.Event, errors: list[BaseException]) -> None:
    """Keep one connection busy: write 64 KiB, read it back, until told to stop."""
    block = b"z" * 65536
    try:
        with socket.create_connection(address, timeout=30) as conn:
            while not stop.is_set():
                conn.sendall(block)
                got = 0
                while got < len(block):
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    got += len(chunk)
    except (ConnectionError, TimeoutError):
        return  # the proxy was disabled under us: expected at the end
    except BaseException as exc:  # pragma: no cover - surfaced by the test
        errors.append(exc)


def test_toxics_change_promptly_while_connections_are_busy(api: Api, echo: EchoServer) -> None:
    proxy = api.create(echo.address)
    name = proxy["name"]
    address = host_port(proxy["listen"])
    stop = threading.Event()
    errors: list[BaseException] = []
    pumps = [
        threading.Thread(target=_pump, args=(address, stop, errors)) for _ in range(CONNECTIONS)
    ]
    for pump in pumps:
        pump.start()
    try:
        time.sleep(0.3)  # let the transfers run
        worst = 0.0
        for round_ in range(10):
            start = time.monotonic()
            resp = api.call(
                "POST",
                f"/proxies/{name}/toxics",
                {"type": "bandwidth", "name": f"bw{round_}", "attributes": {"rate": 500}},
            )
            assert resp.status_code == 200, resp.text
            assert api.call("DELETE", f"/proxies/{name}/toxics/bw{round_}").status_code == 204
            worst = max(worst, time.monotonic() - start)
        assert worst < 5.0, f"add+remove of a toxic took {worst:.2f} s under load"
        start = time.monotonic()
        assert api.call("PATCH", f"/proxies/{name}", {"enabled": False}).status_code == 200
        assert time.monotonic() - start < 5.0
    finally:
        stop.set()
        for pump in pumps:
            pump.join(30)
    assert not errors, errors
    assert not any(p.is_alive() for p in pumps)
