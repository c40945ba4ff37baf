"""``@pytest.mark.chaos_explore``: items, ids, the baseline, pairs, the budget, bad fault
strings, xdist, and the resilience matrix in the terminal, the journal and Allure."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from pytest_chaos.explore import DEFAULT_FAULTS, Explored, parse_explore

CONFTEST = '''
import socket, threading
import pytest

class Upstream:
    """A tiny HTTP server answering 200 to everything."""
    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()
    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
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

@pytest.fixture
def cache(chaos, api):
    """A proxy a fixture creates (the fault is injected when the call starts)."""
    return chaos.proxy("cache", upstream=api.address)
'''

SCENARIO = """
import urllib.request
import pytest

def get(address):
    with urllib.request.urlopen("http://" + address + "/", timeout=2) as answer:
        return answer.read()

@pytest.mark.chaos_explore({marker})
def test_call(chaos, api, cache):
    api_proxy = chaos.proxy("api", upstream=api.address)  # created by the scenario
    chaos.steady_state(lambda: get(api_proxy.address), calls=2)
    chaos.steady_state(lambda: get(cache.address), calls=2)
"""

MARKER = (
    'targets={"api": "http", "cache": "tcp"}, faults=["down", "latency:50ms", "http_error:503"]'
)


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    return pytester


def _write(pytester: pytest.Pytester, marker: str = MARKER, extra: str = "") -> None:
    pytester.makepyfile(test_explore=SCENARIO.replace("{marker}", marker) + textwrap.dedent(extra))


def _ids(result: pytest.RunResult) -> list[str]:
    return [line.strip() for line in result.outlines if "::test_" in line and "[" in line]


def test_one_item_per_target_and_fault_plus_a_baseline(suite: pytest.Pytester) -> None:
    _write(suite)
    result = suite.runpytest("--collect-only", "-q", "-p", "no:cacheprovider")
    assert _ids(result) == [
        "test_explore.py::test_call[baseline]",
        "test_explore.py::test_call[api-down]",
        "test_explore.py::test_call[api-latency-50ms]",
        "test_explore.py::test_call[api-http_error-503]",
        "test_explore.py::test_call[cache-down]",
        "test_explore.py::test_call[cache-latency-50ms]",
    ]


def test_the_faults_act_on_proxies_of_fixtures_and_of_the_scenario(
    suite: pytest.Pytester,
) -> None:
    _write(suite)
    result = suite.runpytest("-p", "no:cacheprovider", "-rA")
    result.assert_outcomes(passed=3, failed=3)
    pattern = r"^(PASSED|FAILED) test_explore.py::test_call\[([^\]]+)\]"
    outcomes = {cell: verdict for verdict, cell in re.findall(pattern, result.stdout.str(), re.M)}
    assert outcomes == {
        "baseline": "PASSED",
        "api-down": "FAILED",  # the scenario's own proxy, faulted when it was created
        "api-latency-50ms": "PASSED",
        "api-http_error-503": "FAILED",
        "cache-down": "FAILED",  # the fixture's proxy, faulted when the call began
        "cache-latency-50ms": "PASSED",
    }


def test_chaos_explored_names_the_cell_and_the_selection_is_pytests(
    suite: pytest.Pytester,
) -> None:
    suite.makepyfile(
        test_cells="""
        import pytest

        SEEN = []

        @pytest.mark.chaos_explore(targets=["cache"], faults=["down", "timeout"])
        def test_cell(chaos, cache):
            explored = chaos.explored
            print("CELL", explored, explored.baseline, explored.target, explored.fault)
            if explored.fault == "down":
                assert not chaos.proxies["cache"].enabled
        """
    )
    result = suite.runpytest(
        "-p", "no:cacheprovider", "-s", "-k", "baseline or down", "-m", "chaos"
    )
    result.assert_outcomes(passed=2, deselected=1)
    result.stdout.fnmatch_lines(
        ["*CELL baseline True None None*", "*CELL cache-down False cache down*"]
    )


def test_pairs_add_two_fault_cells_capped_by_max_items(suite: pytest.Pytester) -> None:
    _write(
        suite,
        'targets=["api", "cache"], faults=["down", "latency:50ms"], pairs=True, max_items=7',
    )
    result = suite.runpytest("--collect-only", "-q", "-p", "no:cacheprovider", "--chaos-seed=3")
    ids = _ids(result)
    pairs = [i for i in ids if "+" in i]
    assert len(ids) == 7 and len(pairs) == 2  # baseline + 4 singles + 2 of the 4 pairs
    for pair in pairs:
        first, second = pair.split("[")[1].rstrip("]").split("+")
        assert first.split("-")[0] != second.split("-")[0], pair  # two different targets
    again = suite.runpytest("--collect-only", "-q", "-p", "no:cacheprovider", "--chaos-seed=3")
    assert _ids(again) == ids  # the seed chooses the same pairs


def test_a_pair_injects_both_faults(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        test_pair="""
        import pytest

        @pytest.mark.chaos_explore(targets=["cache", "db"], faults=["down"], pairs=True)
        def test_cell(chaos, api):
            cache = chaos.proxy("cache", upstream=api.address)
            db = chaos.proxy("db", upstream=api.address)
            down = sorted(n for n, p in chaos.proxies.items() if not p.enabled)
            expected = sorted(t for t, _ in chaos.explored.faults)
            assert down == expected
        """
    )
    result = suite.runpytest("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*test_cell?cache-down+db-down? PASSED*"])


@pytest.mark.parametrize(
    ("marker", "words"),
    [
        (
            'targets=["api"], faults=["latency:fast"]',
            ["'latency:fast'", "latency:500ms", "http_error:503"],
        ),
        ('targets=["api"], faults=["explode"]', ["'explode'", "down", "reset_peer"]),
        ('targets=["api"], faults=["http_error:503"]', ["http_error:503", "need HTTP traffic"]),
        ('faults=["down"]', ["needs targets"]),
        ('targets={"api": "grpc"}', ["'grpc'", "tcp, http"]),
    ],
)
def test_a_bad_marker_is_a_collection_error_naming_the_value(
    suite: pytest.Pytester, marker: str, words: list[str]
) -> None:
    _write(suite, marker)
    result = suite.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    text = result.stdout.str()
    assert "ERROR collecting test_explore.py" in text
    for word in words:
        assert word in text, (word, text)
    assert "Traceback" not in text


def test_the_default_catalogue_follows_the_kind_and_a_hook_extends_it(
    suite: pytest.Pytester,
) -> None:
    suite.makeconftest(
        CONFTEST
        + """
def pytest_chaos_explore_faults(config, target, kind):
    return ["latency:2s"] if kind == "tcp" else None
"""
    )
    _write(suite, 'targets={"api": "http", "cache": "tcp"}')
    result = suite.runpytest("--collect-only", "-q", "-p", "no:cacheprovider")
    ids = [i.split("[")[1].rstrip("]") for i in _ids(result)]
    assert ids[0] == "baseline"
    assert [i for i in ids if i.startswith("api-")] == [
        "api-" + f.replace(":", "-").replace("/", "p") for f in DEFAULT_FAULTS["http"]
    ]
    assert [i for i in ids if i.startswith("cache-")] == [
        "cache-" + f.replace(":", "-").replace("/", "p") for f in DEFAULT_FAULTS["tcp"]
    ] + ["cache-latency-2s"]


def test_an_item_budget_keeps_the_baselines_and_a_seeded_choice(suite: pytest.Pytester) -> None:
    _write(suite)
    args = ("--collect-only", "-q", "-p", "no:cacheprovider", "--chaos-seed=11")
    first = suite.runpytest(*args, "--chaos-explore-budget=3")
    ids = _ids(first)
    assert len(ids) == 3 and ids[0].endswith("[baseline]")
    assert "3/6 tests collected (3 deselected)" in first.stdout.str()
    assert _ids(suite.runpytest(*args, "--chaos-explore-budget=3")) == ids
    others = {
        tuple(_ids(suite.runpytest(*args[:-1], f"--chaos-seed={s}", "--chaos-explore-budget=3")))
        for s in range(6)
    }
    assert len(others) > 1  # another seed, another choice


def test_a_time_budget_skips_the_cells_left_when_it_is_spent(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        test_slow="""
        import time
        import pytest

        @pytest.mark.chaos_explore(targets=["cache"], faults=["down", "timeout", "latency:1ms"])
        def test_cell(chaos, cache):
            time.sleep(0.6)
        """
    )
    result = suite.runpytest("-p", "no:cacheprovider", "--chaos-explore-budget=1s", "-rs")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= 2 and outcomes.get("skipped", 0) >= 1
    assert outcomes["passed"] + outcomes["skipped"] == 4
    result.stdout.fnmatch_lines(["*budget of 1s is spent*"])
    assert (
        "test_cell[baseline] PASSED"
        in suite.runpytest("-p", "no:cacheprovider", "--chaos-explore-budget=1s", "-v").stdout.str()
    )


def test_all_lifts_a_budget_the_ini_file_sets(suite: pytest.Pytester) -> None:
    _write(suite)
    suite.makeini("[pytest]\nchaos_explore_budget = 2\n")
    args = ("--collect-only", "-q", "-p", "no:cacheprovider")
    assert len(_ids(suite.runpytest(*args))) == 2
    assert len(_ids(suite.runpytest(*args, "--chaos-explore-budget=all"))) == 6


def test_a_bad_budget_is_a_usage_error(suite: pytest.Pytester) -> None:
    _write(suite)
    result = suite.runpytest("-p", "no:cacheprovider", "--chaos-explore-budget=lots")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--chaos-explore-budget='lots'*90s*"])


def test_a_target_the_test_never_creates_is_an_error(suite: pytest.Pytester) -> None:
    _write(suite, 'targets=["api", "queue"], faults=["down"]')
    result = suite.runpytest("-p", "no:cacheprovider", "-k", "queue")
    result.assert_outcomes(errors=1, deselected=2)
    assert "target(s) ['queue'] of cell 'queue-down' were never created" in result.stdout.str()


@pytest.mark.parametrize(
    ("radius", "pairs", "words"),
    [
        ('["api"]', "False", ["targets ['cache'] are outside", "blast radius ['api']"]),
        (
            'BlastRadius(targets=["api", "cache"], max_concurrent_faults=1)',
            "True",
            ["pairs=True) injects two faults", "max_concurrent_faults=1"],
        ),
    ],
)
def test_a_chaos_marker_that_cannot_allow_the_cells_is_a_collection_error(
    suite: pytest.Pytester, radius: str, pairs: str, words: list[str]
) -> None:
    marker = f'targets=["api", "cache"], faults=["down"], pairs={pairs}'
    extra = f"""
    from pytest_chaos import BlastRadius

    @pytest.mark.chaos(blast_radius={radius})
    @pytest.mark.chaos_explore({marker})
    def test_narrow(chaos, api, cache):
        chaos.proxy("api", upstream=api.address)
    """
    _write(suite, marker, extra)
    result = suite.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    text = result.stdout.str()
    assert "ERROR collecting test_explore.py" in text
    for word in words:
        assert word in text, (word, text)
    # a radius that allows every cell collects: the first scenario (no chaos marker) did
    _write(suite, marker)
    suite.runpytest("--collect-only", "-q", "-p", "no:cacheprovider").assert_outcomes()


def test_the_matrix_in_the_terminal(suite: pytest.Pytester) -> None:
    _write(suite)
    result = suite.runpytest("-p", "no:cacheprovider", "--chaos-explore-budget=5", "--chaos-seed=1")
    text = result.stdout.str()
    summary = text.index("chaos summary")
    matrix = text.index("resilience matrix: test_explore.py::test_call")
    assert summary < matrix
    lines = text[matrix:].splitlines()
    assert lines[1] == "  baseline: pass"
    assert lines[2].split() == ["down", "latency:50ms", "http_error:503"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[3:5]}
    assert set(rows) == {"api", "cache"}
    # one of the five cells was deselected by the budget: it reads "-" (not run)
    assert sum(row.count("-") for row in rows.values()) == 1
    assert "FAIL" in rows["api"] + rows["cache"]
    failures = [
        line for line in lines if re.match(r"  \w+-[\w-]+: FAIL steady_state violated", line)
    ]
    assert failures, lines[:12]


def test_the_matrix_in_the_journal_merges_xdist_workers(
    suite: pytest.Pytester, tmp_path: Path
) -> None:
    pytest.importorskip("xdist")
    _write(suite)
    journal = tmp_path / "journal"
    result = suite.runpytest("-p", "no:cacheprovider", "-n", "2", f"--chaos-journal={journal}")
    result.assert_outcomes(passed=3, failed=3)
    index = json.loads((journal / "index.json").read_text())
    assert len({t["worker"] for t in index["tests"]}) == 2  # spread over both workers
    (matrix,) = index["explore"]
    assert matrix["test"] == "test_explore.py::test_call"
    assert matrix["rows"] == ["api", "cache"]
    assert matrix["columns"] == ["down", "latency:50ms", "http_error:503"]
    assert matrix["counts"] == {"pass": 3, "fail": 3}
    cells = {c["cell"]: c for c in matrix["cells"]}
    assert cells["api-http_error-503"]["status"] == "fail"
    assert "HTTP Error 503" in cells["api-http_error-503"]["message"]
    assert cells["baseline"]["faults"] == []
    jsonschema = pytest.importorskip("jsonschema")
    from pytest_chaos.reporting import journal_schema

    schema = journal_schema()
    jsonschema.validate(index, schema)
    for path in (journal / "tests").glob("*.json"):
        document = json.loads(path.read_text())
        jsonschema.validate(document, schema)
        assert document["explore"]["cell"] in cells


def test_the_matrix_in_allure_is_a_result_with_an_svg_heatmap(
    suite: pytest.Pytester, tmp_path: Path
) -> None:
    pytest.importorskip("allure_pytest")
    _write(suite)
    alluredir = tmp_path / "allure"
    suite.runpytest("-p", "no:cacheprovider", f"--alluredir={alluredir}")
    results = [json.loads(p.read_text()) for p in alluredir.glob("*-result.json")]
    (matrix,) = [r for r in results if r["name"].startswith("resilience matrix")]
    assert matrix["status"] == "failed"
    assert "api-down: fail" in matrix["statusDetails"]["message"]
    (attachment,) = matrix["attachments"]
    assert attachment["type"] == "image/svg+xml"
    svg = (alluredir / attachment["source"]).read_text()
    assert svg.startswith("<svg") and svg.count("<rect") >= 6 + 1
    assert "#cf222e" in svg and "#2da44e" in svg  # red and green cells


def test_parse_explore_is_plain_data() -> None:
    plan = parse_explore((), {"targets": ["redis"], "faults": ["down"]}, where="t", seed=1)
    assert [str(c) for c in plan.cells] == ["baseline", "redis-down"]
    assert plan.cells[1] == Explored((("redis", "down"),))
    assert plan.cells[1].to_json()["cells"][1] == {
        "cell": "redis-down",
        "faults": [{"target": "redis", "fault": "down"}],
    }
