"""Every deliberate difference from Toxiproxy 2.12, one test per row of the table in
docs/proxy.md ("Differences from Toxiproxy 2.12").

``DIFFERENCES`` names the rows; ``test_the_docs_table_lists_exactly_these_rows`` reads the
docs table and fails when a row has no test here or a test has no row. Against the
embedded server each test checks our behaviour; against another server (Toxiproxy, via
``CHAOS_CONFORMANCE_URL``) it checks Toxiproxy's, so the table states both sides.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import Api, EchoServer, host_port

UP = "127.0.0.1:9"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "proxy.md"
HEADING = "## Differences from Toxiproxy 2.12"


def _unknown_path_and_wrong_method(api: Api, echo: EchoServer, embedded: bool) -> None:
    missing = api.call("GET", "/nowhere")
    wrong = api.call("PUT", "/proxies")
    assert (missing.status_code, wrong.status_code) == (404, 405)
    if embedded:
        assert missing.json()["status"] == 404 and "/proxies" in missing.json()["error"]
        assert wrong.json()["status"] == 405 and "GET, POST" in wrong.json()["error"]
        assert wrong.headers["allow"] == "GET, POST"
    else:
        assert missing.text == "404 page not found\n" and wrong.content == b""


def _version_fields(api: Api, echo: EchoServer, embedded: bool) -> None:
    body = api.call("GET", "/version").json()
    assert body["version"] == "2.12.0"
    if embedded:
        assert set(body) == {"version", "implementation", "implementation_version"}
    else:
        assert set(body) == {"version"}


def _stats_extension(api: Api, echo: EchoServer, embedded: bool) -> None:
    name = api.create(UP)["name"]
    resp = api.call("GET", f"/proxies/{name}/stats")
    if embedded:
        assert resp.status_code == 200 and resp.json()["connections_accepted"] == 0
    else:
        assert resp.status_code == 404


def _http_toxics(api: Api, echo: EchoServer, embedded: bool) -> None:
    name = api.create(UP)["name"]
    resp = api.call(
        "POST", f"/proxies/{name}/toxics", {"type": "http_error", "attributes": {"status": 503}}
    )
    if embedded:
        assert resp.status_code == 200 and resp.json()["type"] == "http_error"
    else:
        assert (resp.status_code, resp.json()["error"]) == (400, "invalid toxic type")


def _empty_listen(api: Api, echo: EchoServer, embedded: bool) -> None:
    resp = api.call("POST", "/proxies", {"name": api.name(), "upstream": UP, "listen": ""})
    assert resp.status_code == 201
    host, port = host_port(resp.json()["listen"])
    assert port > 0
    assert host == ("127.0.0.1" if embedded else "::")


def _values_that_hang_toxiproxy(api: Api, echo: EchoServer, embedded: bool) -> None:
    if not embedded:
        pytest.skip("these values hang or crash Toxiproxy; nothing to check there")
    name = api.create(UP)["name"]
    for body in (
        {"type": "bandwidth", "attributes": {"rate": 0}},
        {"type": "slicer", "attributes": {"average_size": 0}},
        {"type": "latency", "attributes": {"latency": -1}},
        {"type": "noop", "toxicity": 2},
    ):
        resp = api.call("POST", f"/proxies/{name}/toxics", body)
        assert resp.status_code == 400, body
    assert api.call("GET", f"/proxies/{name}/toxics").json() == []


def _oversized_body(api: Api, echo: EchoServer, embedded: bool) -> None:
    if not embedded:
        pytest.skip("Toxiproxy reads any body size")
    resp = api.call("POST", "/populate", raw=b" " * (8 * 1024 * 1024 + 1))
    assert resp.status_code == 413 and "limit" in resp.json()["error"]


def _half_close(api: Api, echo: EchoServer, embedded: bool) -> None:
    # The echo server answers, then half-closes when it reads EOF: a half-close passed
    # on keeps the client's read side open for the answer and then the EOF.
    proxy = api.create(echo.address)
    with socket.create_connection(host_port(proxy["listen"]), timeout=10) as sock:
        sock.sendall(b"last words")
        sock.shutdown(socket.SHUT_WR)
        got = b""
        while chunk := sock.recv(64):
            got += chunk
    if embedded:
        assert got == b"last words"
    else:  # Toxiproxy closes both ways at the first EOF; the answer may be lost
        assert got in (b"", b"last words")


def _no_metrics(api: Api, echo: EchoServer, embedded: bool) -> None:
    if not embedded:
        pytest.skip("Toxiproxy serves /metrics when started with -proxy-metrics")
    assert api.call("GET", "/metrics").status_code == 404


def _bad_json_detail(api: Api, echo: EchoServer, embedded: bool) -> None:
    resp = api.call("POST", "/proxies", raw=b'{"name": ')
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error.startswith("bad request body: ")
    if embedded:
        assert "EOF" not in error and "JSON" in error  # Python's decoder, in words
    else:
        assert error == "bad request body: unexpected EOF"


#: Row key (first column of the docs table) -> the test of that row.
DIFFERENCES: dict[str, Callable[[Api, EchoServer, bool], None]] = {
    "404-405-bodies": _unknown_path_and_wrong_method,
    "version-fields": _version_fields,
    "stats": _stats_extension,
    "http-toxics": _http_toxics,
    "empty-listen": _empty_listen,
    "hanging-values": _values_that_hang_toxiproxy,
    "body-limit": _oversized_body,
    "half-close": _half_close,
    "metrics": _no_metrics,
    "json-errors": _bad_json_detail,
}


#: Rows whose test connects to a proxy (the ``data_path`` marker of conftest.py).
DATA_PATH = {"empty-listen", "half-close"}


@pytest.mark.parametrize(
    "row",
    [
        pytest.param(row, marks=[pytest.mark.data_path] if row in DATA_PATH else [])
        for row in sorted(DIFFERENCES)
    ],
)
def test_difference(api: Api, echo: EchoServer, is_embedded: bool, row: str) -> None:
    DIFFERENCES[row](api, echo, is_embedded)


def docs_rows() -> list[str]:
    """The row keys of the docs table, in order."""
    text = DOCS.read_text(encoding="utf-8")
    section = text.split(HEADING, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([a-z0-9-]+)` \|", section, flags=re.MULTILINE)


def test_the_docs_table_lists_exactly_these_rows() -> None:
    rows = docs_rows()
    assert len(rows) == len(set(rows)), "a row key appears twice in the docs table"
    assert sorted(rows) == sorted(DIFFERENCES)
