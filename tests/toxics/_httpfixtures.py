"""Helpers for the HTTP toxic tests: process control and a small admin client."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_chaos.proxy import EmbeddedServer

pytest.importorskip("requests")
import requests

_names = itertools.count()


def wait_for_file(path: Path, proc: subprocess.Popen[bytes], what: str) -> str:
    deadline = time.monotonic() + 20
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode} before it was ready")
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not start within 20 s")
        time.sleep(0.02)
    return path.read_text()


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class Upstream:
    """The counting HTTP server (tests/toxics/_upstream.py) in its own process."""

    port: int
    session: requests.Session

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log(self) -> list[dict[str, Any]]:
        """Every request it received (not counting /_log and /_reset), oldest first."""
        entries: list[dict[str, Any]] = self.session.get(
            f"http://{self.address}/_log", timeout=10
        ).json()
        return entries

    def reset(self) -> None:
        self.session.post(f"http://{self.address}/_reset", timeout=10).raise_for_status()


class Admin:
    """Just enough of the Toxiproxy API, over HTTP, for these tests."""

    def __init__(self, server: EmbeddedServer, session: requests.Session) -> None:
        self.server = server
        self.url = server.url
        self.session = session
        self.created: list[str] = []

    def proxy(self, upstream: str) -> tuple[str, str]:
        """Create a uniquely named proxy; returns (name, listen address)."""
        name = f"h6-{os.getpid()}-{next(_names)}"
        r = self.session.post(
            f"{self.url}/proxies",
            json={"name": name, "listen": "127.0.0.1:0", "upstream": upstream},
            timeout=10,
        )
        r.raise_for_status()
        self.created.append(name)
        return name, str(r.json()["listen"])

    def toxic(
        self,
        proxy: str,
        type_name: str,
        stream: str = "upstream",
        toxicity: float = 1.0,
        **attributes: Any,
    ) -> str:
        r = self.session.post(
            f"{self.url}/proxies/{proxy}/toxics",
            json={
                "type": type_name,
                "stream": stream,
                "toxicity": toxicity,
                "attributes": attributes,
            },
            timeout=10,
        )
        assert r.status_code == 200, r.text
        return str(r.json()["name"])

    def remove_toxic(self, proxy: str, toxic: str) -> None:
        self.session.delete(f"{self.url}/proxies/{proxy}/toxics/{toxic}", timeout=10)

    def stats(self, proxy: str) -> dict[str, Any]:
        stats: dict[str, Any] = self.session.get(
            f"{self.url}/proxies/{proxy}/stats", timeout=10
        ).json()
        return stats

    def notes(self, proxy: str) -> list[tuple[str, dict[str, object]]]:
        """The proxy's notes, as the stats extension shows them."""
        return [(note["label"], note["data"]) for note in self.stats(proxy)["notes"]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
