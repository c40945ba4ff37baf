"""YAML experiments collected by pytest: -m chaos, -k, xdist, collection errors, reports."""

from __future__ import annotations

import json
import textwrap
from typing import Any

import pytest

from pytest_chaos.experiments import parse_fault

CONFTEST = '''
import socket, threading
import pytest

class Upstream:
    """A tiny HTTP server answering 200 to everything, counting connections."""
    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self.serve, daemon=True).start()
    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.recv(65536)
                conn.sendall(
                    b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n"
                    b"Connection: close\\r\\n\\r\\nok"
                )

@pytest.fixture
def api():
    server = Upstream()
    yield server
    server.sock.close()
'''

EXPERIMENT = """\
apiVersion: pytest-chaos/v1
kind: Experiment
metadata:
  name: {name}
spec:
  hypothesis: with 50 ms of latency the API still answers every call within a second
  blast_radius:
    targets: [api]
  uses: [api]
  targets:
    api: {{upstream: "{{api.address}}"}}
  probes:
    ping:
      http: {{target: api, path: /, expect_status: 200}}
  steady_state:
    - {{probe: ping, calls: 5, p99: 1s}}
  method:
    - at: 0s
      name: slow api
      fault: latency:50ms
      target: api
      for: 500ms
      expect: {{probe: ping, p99: 1s, max_error_rate: 0%}}
  abort_when:
    - {{probe: ping, max_error_rate: 50%}}
  success_criteria:
    - {{recovers: {{probe: ping, within: 2s}}}}
"""


def _suite(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    text = EXPERIMENT.format(name="slow-api") + "---\n" + EXPERIMENT.format(name="slower-api")
    pytester.path.joinpath("chaos_api.yaml").write_text(text)
    pytester.path.joinpath("notes.yaml").write_text("not: an experiment\n")


def test_yaml_experiments_run_with_m_chaos_and_show_their_source(pytester: pytest.Pytester) -> None:
    _suite(pytester)
    result = pytester.runpytest_subprocess(
        "-m", "chaos", "-v", "-p", "no:cacheprovider", "--chaos-journal", "journal"
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "chaos_api.yaml::slow-api PASSED*",
            "chaos_api.yaml::slower-api PASSED*",
            "*chaos summary*",
            "chaos_api.yaml::slow-api  PASSED*",
            "  source  chaos_api.yaml:1",
        ]
    )
    index = json.loads((pytester.path / "journal" / "index.json").read_text())
    sources = {}
    for entry in index["tests"]:
        document = json.loads((pytester.path / "journal" / entry["file"]).read_text())
        sources[document["nodeid"]] = document["source"]
        (step,) = document["schedule"]
        assert step["step"] == "slow api" and step["source"].startswith("chaos_api.yaml:")
    second = EXPERIMENT.count("\n") + 2
    assert sources == {
        "chaos_api.yaml::slow-api": "chaos_api.yaml:1",
        "chaos_api.yaml::slower-api": f"chaos_api.yaml:{second}",
    }


def test_yaml_experiments_run_under_xdist_and_k_selects_them(pytester: pytest.Pytester) -> None:
    _suite(pytester)
    result = pytester.runpytest_subprocess("-m", "chaos", "-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result = pytester.runpytest_subprocess("-k", "slower", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_an_unknown_key_under_spec_fails_collection_and_injects_nothing(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(CONFTEST)
    text = EXPERIMENT.format(name="typo").replace("  uses: [api]", "  uses: [api]\n  lod: 1")
    pytester.path.joinpath("chaos_typo.yaml").write_text(text)
    pytester.makepyfile(test_other="def test_other():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        ["*ERROR collecting chaos_typo.yaml*", "chaos_typo.yaml:10: spec.lod: unknown key 'lod'*"]
    )
    assert "fault" not in result.stdout.str().split("short test summary")[0].split("ERRORS")[0]


def test_an_unknown_fixture_fails_collection(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    text = EXPERIMENT.format(name="nofix").replace("uses: [api]", "uses: [api, shop]")
    pytester.path.joinpath("chaos_nofix.yaml").write_text(text)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(
        ["chaos_nofix.yaml:9: spec.uses[[]1]: no fixture named 'shop' is visible*conftest.py*"]
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED


def test_the_ini_glob_chooses_the_files(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makeini("[pytest]\nchaos_experiment_files = drill_*.yml\n")
    pytester.path.joinpath("drill_api.yml").write_text(EXPERIMENT.format(name="drill"))
    pytester.path.joinpath("chaos_api.yaml").write_text(textwrap.dedent("not: collected\n"))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["drill_api.yml::drill", "1 test collected*"])


@pytest.mark.chaos(blast_radius=["api"])
def test_retry_after_reaches_the_client_through_the_embedded_proxy(chaos: Any) -> None:
    """End to end: the embedded proxy answers 429 with ``Retry-After: 1``."""
    import http.client
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True).start()
    host, port = listener.getsockname()
    proxy = chaos.proxy("api", upstream=f"{host}:{port}")
    with parse_fault({"http_error": {"status": 429, "retry_after": "1s"}}).inject(proxy):
        conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=5)
        conn.request("GET", "/pay")
        response = conn.getresponse()
        response.read()
        conn.close()
    listener.close()
    for sock in accepted:
        sock.close()
    assert (response.status, response.getheader("Retry-After")) == (429, "1")
