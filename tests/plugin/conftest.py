"""A standalone ``python -m pytest_chaos.proxy`` server, as a shared Toxiproxy would run,
for the tests that kill or signal a pytest run using it as an external server."""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest


def server_api(port: int, method: str, path: str, body: object = None) -> Any:
    """One call to the server's admin API; the decoded JSON answer (None when empty)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body))
        data = conn.getresponse().read()
        return json.loads(data) if data.strip() else None
    finally:
        conn.close()


@pytest.fixture
def server() -> Iterator[int]:
    """A standalone embedded server in its own process; its API port."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest_chaos.proxy", "-host", "127.0.0.1", "-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    match = re.search(r"127\.0\.0\.1:(\d+)", proc.stdout.readline())
    assert match, "the proxy CLI did not print its address"
    try:
        yield int(match.group(1))
    finally:
        proc.kill()
        proc.communicate(timeout=30)
