"""pytest-xdist: one server per worker, no shared names, records reach the controller."""

from __future__ import annotations

import json
import re

import pytest

RECORDS_CONFTEST = """

IS_WORKER = []


def pytest_configure(config):
    IS_WORKER.append(hasattr(config, "workerinput"))


def pytest_runtest_logreport(report):
    record = getattr(report, "chaos_record", None)
    # only the controller writes: these records crossed the process boundary
    if record is not None and not IS_WORKER[0]:
        import json, pathlib
        with open(pathlib.Path(__file__).parent / "records.jsonl", "a") as out:
            out.write(json.dumps(record) + "\\n")
"""


def test_two_workers_each_run_their_own_server(chaos_pytester: pytest.Pytester) -> None:
    chaos_pytester.makeconftest(
        chaos_pytester.path.joinpath("conftest.py").read_text() + RECORDS_CONFTEST
    )
    chaos_pytester.makepyfile(
        """
        import os
        import pytest

        @pytest.mark.chaos(blast_radius=["echo"])
        @pytest.mark.parametrize("i", range(6))
        def test_same_proxy_name_everywhere(chaos, echo, toxiproxy, i):
            proxy = chaos.proxy("echo", upstream=echo.address)
            worker = os.environ["PYTEST_XDIST_WORKER"]
            assert proxy.server_name.endswith(f"-{worker}-echo")
            with proxy.latency(20):
                assert echo.rtt(proxy.address) >= 0.015
            print("URL", worker, toxiproxy.url)
        """
    )
    # no --chaos-seed: the controller draws one and hands it to both workers
    result = chaos_pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "xdist", "-n", "2")
    result.assert_outcomes(passed=6)
    header = re.search(r"chaos: backend=embedded seed=(\d+)", result.stdout.str())
    assert header is not None
    records = [
        json.loads(line)
        for line in (chaos_pytester.path / "records.jsonl").read_text().splitlines()
    ]
    assert len(records) == 6
    assert {r["worker"] for r in records} == {"gw0", "gw1"}
    assert {r["seed"] for r in records} == {int(header.group(1))}
    assert len({r["run_id"] for r in records}) == 1
    # one embedded server per worker: two different URLs
    by_worker: dict[str, set[str]] = {}
    for r in records:
        by_worker.setdefault(r["worker"], set()).add(r["backend"]["url"])
    assert all(len(urls) == 1 for urls in by_worker.values()), by_worker  # once per worker
    assert len(set.union(*by_worker.values())) == 2
    for record in records:
        assert record["schema"] == "pytest-chaos/record/1"
        assert record["backend"]["kind"] == "embedded"
        assert record["blast_radius"]["targets"] == ["echo"]
        assert [e["kind"] for e in record["timeline"]["events"]] == ["inject", "heal"]
        assert record["leftovers"] == [] and record["aborted"] is None
