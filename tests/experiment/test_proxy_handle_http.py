"""HTTP and message faults as a user meets them: through the ``chaos`` fixture, in a
pytester run, against the real counting HTTP upstream."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

_UPSTREAM = Path(__file__).parent.parent / "toxics" / "_upstream.py"

CONFTEST = f"""
import http.client, json, os, subprocess, sys, time
import pytest


class Payments:
    def __init__(self, tmp):
        portfile = os.path.join(tmp, "port")
        self.proc = subprocess.Popen([sys.executable, {str(_UPSTREAM)!r}, portfile])
        deadline = time.monotonic() + 20
        while not os.path.exists(portfile):
            assert time.monotonic() < deadline and self.proc.poll() is None
            time.sleep(0.02)
        with open(portfile) as f:
            self.address = "127.0.0.1:" + f.read()

    def charges(self):
        host, port = self.address.split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            conn.request("GET", "/_log")
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()

    def close(self):
        self.proc.terminate()
        self.proc.wait(10)


def post(address, path, body=b"order=1"):
    host, port = address.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("POST", path, body=body)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.fixture
def payments(tmp_path):
    service = Payments(str(tmp_path))
    yield service
    service.close()
"""


@pytest.fixture
def http_pytester(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    return pytester


def test_duplicated_charge_is_caught_by_the_idempotency_check(
    http_pytester: pytest.Pytester,
) -> None:
    http_pytester.makepyfile(
        """
        import pytest
        from conftest import post

        @pytest.mark.chaos(blast_radius=["payments"])
        def test_charge_once(chaos, payments):
            pay = chaos.proxy("payments", upstream=payments.address)
            chaos.idempotent(
                lambda: post(pay.address, "/charge"),
                state=lambda: len(payments.charges()),
                via=pay.http_duplicate(),
            )

        @pytest.mark.chaos(blast_radius=["payments"])
        def test_distinct_orders_are_idempotent(chaos, payments):
            pay = chaos.proxy("payments", upstream=payments.address)
            chaos.idempotent(
                lambda: post(pay.address, "/charge/7"),
                state=lambda: sorted({c["path"] for c in payments.charges()}),
                via=pay.http_duplicate(copies=3),
            )
            assert len(payments.charges()) == 3 + 1  # three deliveries, then one replay
            assert [e.name for e in chaos.timeline.of_kind("inject")] == ["http_duplicate"]
        """
    )
    result = http_pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*idempotent violated*"])


def test_http_error_and_delay_through_chaos_proxy_are_healed_with_their_block(
    http_pytester: pytest.Pytester,
) -> None:
    http_pytester.makepyfile(
        """
        import time

        import pytest
        from conftest import post

        @pytest.mark.chaos(blast_radius=["payments"])
        def test_it(chaos, payments):
            pay = chaos.proxy("payments", upstream=payments.address)
            with pay.http_error(503, path_prefix="/charge", body="try later"):
                assert post(pay.address, "/charge") == (503, b"try later")
                assert post(pay.address, "/refund")[0] == 200
            assert post(pay.address, "/charge")[0] == 200
            assert [c["path"] for c in payments.charges()] == ["/refund", "/charge"]
            stats = pay.stats()
            assert stats["http_requests"] == 3  # the passive counter counts after heal too
            with pay.http_delay(300, method="POST"):
                started = time.perf_counter()
                assert post(pay.address, "/slow")[0] == 200
                assert time.perf_counter() - started >= 0.29  # never shorter than asked
        """
    )
    http_pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_message_faults_through_the_fixture(http_pytester: pytest.Pytester) -> None:
    http_pytester.makepyfile(
        """
        import pytest

        class Ledger:
            def __init__(self):
                self.rows = {}
            def apply(self, event):
                key, value = event
                self.rows.setdefault(key, []).append(value)

        @pytest.mark.chaos(blast_radius=["events"])
        def test_it(chaos):
            ledger = Ledger()
            history = chaos.history()
            events = [("acct", i) for i in range(20)]
            consume = chaos.duplicate(ledger.apply, rate=0.5, target="events")
            for event in chaos.reorder(events, window=2, target="events"):
                history.write(event[0], event[1], lambda e=event: consume(e))
            consume.heal()
            assert consume.duplicated > 0
            history.check(lambda key: ledger.rows.get(key, []))
        """
    )
    result = http_pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*duplicated*"])


def test_message_faults_replay_exactly_under_the_same_chaos_seed(
    http_pytester: pytest.Pytester,
) -> None:
    http_pytester.makepyfile(
        """
        import pytest

        @pytest.mark.chaos(blast_radius=["messages"])
        def test_it(chaos):
            seen = []
            consume = chaos.duplicate(seen.append, rate=0.5)
            for message in chaos.reorder(list(range(30)), window=4):
                consume(message)
            print("RESULT", seen)
        """
    )

    def run(seed: str) -> str:
        result = http_pytester.runpytest("-p", "no:cacheprovider", "-s", f"--chaos-seed={seed}")
        result.assert_outcomes(passed=1)
        found = re.findall(r"RESULT \[[0-9, ]*\]", result.stdout.str())
        assert len(found) == 1, result.stdout.str()
        return str(found[0])

    first = run("123")
    assert run("123") == first
    assert run("124") != first


def test_non_http_traffic_passes_intact_and_lands_on_the_timeline(
    http_pytester: pytest.Pytester,
) -> None:
    """Bytes that are not HTTP through an HTTP toxic: delivered unchanged, and after the
    heal the test's timeline carries the proxy's note saying why nothing was injected."""
    http_pytester.makepyfile(
        """
        import socket, threading
        import pytest

        @pytest.fixture
        def echo():
            server = socket.create_server(("127.0.0.1", 0))
            def serve():
                conn, _ = server.accept()
                with conn:
                    while data := conn.recv(65536):
                        conn.sendall(data)
            thread = threading.Thread(target=serve, daemon=True)
            thread.start()
            yield "127.0.0.1:%d" % server.getsockname()[1]
            server.close()
            thread.join(10)

        @pytest.mark.chaos(blast_radius=["cache"])
        def test_binary_protocol(chaos, echo):
            cache = chaos.proxy("cache", upstream=echo)
            payload = bytes(range(256)) * 64
            with cache.http_error(503, stream="both"):
                host, port = cache.address.split(":")
                with socket.create_connection((host, int(port)), timeout=10) as sock:
                    sock.sendall(payload)
                    got = b""
                    while len(got) < len(payload):
                        got += sock.recv(65536)
                assert got == payload
                assert cache.stats()["http_errors_injected"] == 0
            notes = chaos.timeline.of_kind("note")
            assert [(n.name, n.target) for n in notes] == [("http_passthrough", "cache")]
            assert "not HTTP" in notes[0].data["detail"]["reason"]
            # one toxic (an HTTP toxic acts on whole exchanges), not one per direction
            injects = chaos.timeline.of_kind("inject")
            assert len(injects) == 1 and injects[0].data["stream"] == "upstream"
            assert cache.stats()["http_passthrough_connections"] == 1
        """
    )
    result = http_pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_http_counters_show_what_was_injected(http_pytester: pytest.Pytester) -> None:
    http_pytester.makepyfile(
        """
        import pytest
        from conftest import post

        @pytest.mark.chaos(blast_radius=["payments"])
        def test_counters(chaos, payments):
            pay = chaos.proxy("payments", upstream=payments.address)
            with pay.http_error(503, path_prefix="/charge"):
                statuses = [post(pay.address, "/charge")[0] for _ in range(3)]
            with pay.http_duplicate(copies=3):
                post(pay.address, "/refund")
            stats = pay.stats()
            assert statuses == [503, 503, 503]
            assert stats["http_errors_injected"] == 3
            assert stats["http_duplicates_sent"] == 2
            assert stats["http_requests"] == 4
        """
    )
    result = http_pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
