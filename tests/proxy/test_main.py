"""``python -m pytest_chaos.proxy``: flags, serving, signals, bad config."""

from __future__ import annotations

import http.client
import json
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pytest_chaos.proxy.__main__ import main

_LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")


@contextmanager
def _cli(*args: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """Run the CLI; yields (process, API port) once it printed its address."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest_chaos.proxy", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = _LISTENING.search(line)
        if match is None:
            proc.kill()
            _, err = proc.communicate(timeout=30)
            pytest.fail(f"CLI did not print its address: {line!r} {err!r}")
        yield proc, int(match.group(1))
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def _call(port: int, method: str, path: str, body: object = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body))
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serves_the_api_and_exits_0_on_signals(signum: signal.Signals) -> None:
    with socket.create_server(("127.0.0.1", 0)) as upstream:
        with _cli("-host", "127.0.0.1", "-port", "0", "-seed", "3") as (proc, port):
            status, body = _call(port, "GET", "/version")
            assert status == 200 and json.loads(body)["version"] == "2.12.0"
            status, body = _call(
                port,
                "POST",
                "/proxies",
                {
                    "name": "p",
                    "upstream": f"127.0.0.1:{upstream.getsockname()[1]}",
                    "listen": "127.0.0.1:0",
                },
            )
            assert status == 201
            listen = json.loads(body)["listen"]
            client = socket.create_connection(("127.0.0.1", int(listen.split(":")[1])), timeout=10)
            accepted, _ = upstream.accept()
            proc.send_signal(signum)
            assert proc.wait(timeout=30) == 0
        with client, accepted:
            client.settimeout(10)
            assert client.recv(1) == b""  # the proxied connection was closed on exit
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_double_dash_flags_and_config_file(tmp_path: Path) -> None:
    config = tmp_path / "toxiproxy.json"
    config.write_text(
        json.dumps(
            [
                {"name": "redis", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:6379"},
                {
                    "name": "pg",
                    "listen": "127.0.0.1:0",
                    "upstream": "127.0.0.1:5432",
                    "enabled": False,
                },
            ]
        )
    )
    with _cli("--port", "0", "--config", str(config), "--seed", "1") as (proc, port):
        status, body = _call(port, "GET", "/proxies")
        assert status == 200
        proxies = json.loads(body)
        assert sorted(proxies) == ["pg", "redis"]
        assert proxies["pg"]["enabled"] is False
        proc.terminate()
        assert proc.wait(timeout=30) == 0


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (None, "does not exist"),
        ("[{", "is not valid JSON"),
        ('[{"name": "a"}]', "missing required field: upstream at proxy 1"),
    ],
)
def test_bad_config_exits_2_naming_the_file(
    tmp_path: Path, content: str | None, needle: str
) -> None:
    config = tmp_path / "broken.json"
    if content is not None:
        config.write_text(content)
    result = subprocess.run(
        [sys.executable, "-m", "pytest_chaos.proxy", "-port", "0", "-config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert str(config) in result.stderr and needle in result.stderr
    assert "listening" not in result.stdout


def test_a_taken_port_exits_1_with_a_message() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "pytest_chaos.proxy", "-port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-version"]) == 0
    assert capsys.readouterr().out.strip() == "2.12.0"


@pytest.mark.parametrize("port", ["-1", "65536", "http"])
def test_bad_port_is_a_usage_error(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["-port", port])
    assert info.value.code == 2
    assert "0-65535" in capsys.readouterr().err


def test_a_non_loopback_host_is_warned_about(capsys: pytest.CaptureFixture[str]) -> None:
    # 192.0.2.1 (TEST-NET-1) is not on this machine, so the bind fails after the warning.
    assert main(["-host", "192.0.2.1", "-port", "0"]) == 1
    err = capsys.readouterr().err
    assert "not a loopback address" in err and "cannot listen on 192.0.2.1:0" in err


def test_toxiproxy_server_command_lines_parse() -> None:
    from pytest_chaos.proxy.__main__ import _parser

    args = _parser().parse_args(
        ["-host=0.0.0.0", "-port=8474", "-config", "c.json", "--seed=3", "-proxy-metrics"]
    )
    assert (args.host, args.port, args.config, args.seed) == ("0.0.0.0", 8474, "c.json", 3)
    assert args.proxy_metrics is True and args.runtime_metrics is False
    args = _parser().parse_args(["--host", "::1", "--port", "0", "--runtime-metrics"])
    assert (args.host, args.port, args.runtime_metrics) == ("::1", 0, True)


def test_metrics_flags_are_accepted_with_a_warning() -> None:
    with _cli("-port", "0", "-runtime-metrics") as (proc, port):
        assert _call(port, "GET", "/version")[0] == 200
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "no /metrics endpoint" in err


def test_a_config_proxy_that_cannot_bind_exits_2_naming_the_file(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        config = tmp_path / "ports.json"
        config.write_text(
            json.dumps([{"name": "r", "listen": f"127.0.0.1:{port}", "upstream": "127.0.0.1:9"}])
        )
        result = subprocess.run(
            [sys.executable, "-m", "pytest_chaos.proxy", "-port", "0", "-config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert str(config) in result.stderr
    assert "address already in use" in result.stderr and "status 500" in result.stderr


def test_verbose_logs_every_api_request() -> None:
    with _cli("-port", "0", "-verbose") as (proc, port):
        assert _call(port, "GET", "/proxies/nope")[0] == 404
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert re.search(r"GET /proxies/nope -> 404 \(\d+\.\d ms\)", err), err
