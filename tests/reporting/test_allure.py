"""Allure result files of chaos tests: steps, attachments, labels, status, categories."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from pytest_chaos.reporting._journal import journal_schema

from ._support import run_pytest, write_suite
from .conftest import SuiteRun

pytest.importorskip("jsonschema")
import jsonschema

_SVG = "{http://www.w3.org/2000/svg}"


def _results(alluredir: Path) -> dict[str, dict[str, Any]]:
    results = {}
    for path in alluredir.glob("*-result.json"):
        data = json.loads(path.read_text())
        results[data["name"]] = data
    return results


def _labels(result: dict[str, Any], name: str) -> set[str]:
    return {label["value"] for label in result["labels"] if label["name"] == name}


class _Tables(HTMLParser):
    """Collects the rows of the tables in an HTML attachment, cell by cell."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = dict(attrs).get("id") or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def test_steps_status_and_labels_of_chaos_tests(suite_run: SuiteRun) -> None:
    results = _results(suite_run.alluredir)

    passed = results["test_copes_with_latency"]
    assert passed["status"] == "passed"
    steps = [s["name"] for s in passed["steps"]]
    assert steps == [
        "inject latency on echo (latency=50, jitter=10)",
        "check steady_state on echo: passed",
        "heal latency on echo (by test)",
        "check recovers on echo: passed",
    ]
    inject = passed["steps"][0]
    params = {p["name"]: p["value"] for p in inject["parameters"]}
    assert params["latency"] == "50" and params["fault_id"] == "f1"
    assert _labels(passed, "feature") == {"chaos"}
    assert {"fault:latency", "target:echo"} <= _labels(passed, "tag")
    assert _labels(passed, "chaos_target") == {"echo"}
    # steps carry the real times of the events, inside the test's own time span
    check = passed["steps"][1]
    assert passed["start"] <= inject["start"] <= check["start"] <= check["stop"] <= passed["stop"]

    failed = results["test_too_slow"]
    assert failed["status"] == "failed"
    assert failed["statusDetails"]["message"].startswith("Hypothesis violated: ")
    assert "SteadyStateViolated" in failed["statusDetails"]["message"]
    failed_check = next(s for s in failed["steps"] if s["name"].startswith("check"))
    assert failed_check["status"] == "failed"
    measured = {p["name"]: p["value"] for p in failed_check["parameters"]}
    assert float(measured["measured p99"]) >= 0.25 and measured["allowed p99"] == "0.01"

    aborted = results["test_guard_aborts"]
    assert aborted["status"] == "broken"
    assert aborted["statusDetails"]["message"].startswith("Aborted by guard: ")
    assert "chaos:aborted" in _labels(aborted, "tag")
    abort_step = next(s for s in aborted["steps"] if s["name"].startswith("abort"))
    assert abort_step["status"] == "broken"

    error = results["test_outside_radius"]
    assert error["status"] == "broken"
    assert error["statusDetails"]["message"].startswith("Injection broken: ")
    assert "BlastRadiusError" in error["statusDetails"]["message"]

    plain = results["test_not_chaos"]
    assert "chaos" not in _labels(plain, "feature")
    assert not plain.get("attachments")


def test_attachments_chart_table_and_record(suite_run: SuiteRun) -> None:
    failed = _results(suite_run.alluredir)["test_too_slow"]
    attachments = {a["name"]: a for a in failed["attachments"]}
    assert {a: attachments[a]["type"] for a in attachments} == {
        "chaos timeline": "image/svg+xml",
        "chaos checks": "text/html",
        "chaos journal": "application/json",
    }

    svg = ET.parse(suite_run.alluredir / attachments["chaos timeline"]["source"]).getroot()
    assert svg.tag == f"{_SVG}svg"
    classes = [el.get("class", "") for el in svg.iter()]
    assert classes.count("chaos-window") == 1  # the one latency window, shaded
    assert classes.count("chaos-sample ok") == 3  # three probe calls, all answered
    assert classes.count("chaos-check fail") == 1
    window = next(el for el in svg.iter() if el.get("class") == "chaos-window")
    samples = [el for el in svg.iter() if el.get("class") == "chaos-sample ok"]
    x0, x1 = float(window.get("x", 0)), float(window.get("x", 0)) + float(window.get("width", 0))
    # every probe call happened while the latency was active: inside the shaded window
    assert all(x0 <= float(s.get("cx", -1)) <= x1 for s in samples)

    parser = _Tables()
    parser.feed((suite_run.alluredir / attachments["chaos checks"]["source"]).read_text())
    header, *rows = parser.tables["chaos-checks"]
    assert header[:3] == ["check", "target", "verdict"]
    (row,) = rows
    assert row[:3] == ["steady_state", "echo", "FAIL"]
    assert re.search(r"p99 = 0\.\d+", row[3]) and "p99 = 0.01" in row[4]
    _, fault_row = parser.tables["chaos-faults"]
    assert fault_row[1:4] == ["latency", "echo", "latency=300, jitter=0"]

    # the same document the journal holds, valid against the journal schema
    document = json.loads(
        (suite_run.alluredir / attachments["chaos journal"]["source"]).read_text()
    )
    jsonschema.Draft202012Validator(journal_schema()).validate(document)
    assert document["nodeid"] == "test_suite.py::test_too_slow"
    assert document["outcome"] == "failed"
    assert document["checks"][0]["passed"] is False


def test_categories_and_environment(suite_run: SuiteRun) -> None:
    categories = json.loads((suite_run.alluredir / "categories.json").read_text())
    by_name = {c["name"]: c for c in categories}
    assert by_name["Hypothesis violated"]["matchedStatuses"] == ["failed"]
    assert by_name["Aborted by guard"]["matchedStatuses"] == ["broken"]
    assert by_name["Injection broken"]["matchedStatuses"] == ["broken"]
    # each category's regex picks exactly the test it is meant for
    results = _results(suite_run.alluredir)
    for name, test in [
        ("Hypothesis violated", "test_too_slow"),
        ("Aborted by guard", "test_guard_aborts"),
        ("Injection broken", "test_outside_radius"),
    ]:
        matching = [
            r["name"]
            for r in results.values()
            if r["status"] in by_name[name]["matchedStatuses"]
            and re.fullmatch(by_name[name]["messageRegex"], r["statusDetails"]["message"])
        ]
        assert matching == [test], name

    env = dict(
        line.split("=", 1)
        for line in (suite_run.alluredir / "environment.properties").read_text().splitlines()
    )
    seed = re.search(r"^chaos: backend=\S+ seed=(\d+)$", suite_run.stdout, re.M)
    assert seed
    assert env["chaos.seed"] == seed.group(1)
    assert env["chaos.backend"] == "embedded"
    assert env["chaos.server.version"]
    assert env["chaos.backend.url"].startswith("http://127.0.0.1:")


def test_user_categories_and_environment_are_kept(pytester: pytest.Pytester) -> None:
    write_suite(pytester.path)
    alluredir = pytester.path / "results"
    alluredir.mkdir()
    (alluredir / "categories.json").write_text(
        json.dumps([{"name": "Mine", "matchedStatuses": ["failed"]}])
    )
    (alluredir / "environment.properties").write_text("team=payments\n")
    result = run_pytest(
        pytester.path, "--alluredir", "results", "test_suite.py::test_copes_with_latency"
    )
    assert result.returncode == 0, result.stdout[-2000:]
    names = [c["name"] for c in json.loads((alluredir / "categories.json").read_text())]
    assert names == ["Hypothesis violated", "Aborted by guard", "Injection broken", "Mine"]
    env = (alluredir / "environment.properties").read_text()
    assert "team=payments" in env and "chaos.backend=embedded" in env


def test_an_abort_shows_even_when_the_test_body_passes(pytester: pytest.Pytester) -> None:
    write_suite(pytester.path)
    pytester.makepyfile(
        test_abort_passes="""
        import pytest

        @pytest.mark.chaos(blast_radius=["echo"])
        def test_stops_itself(chaos, echo):
            proxy = chaos.proxy("echo", upstream=echo.address)
            proxy.latency(100)
            chaos.abort("error budget spent")
        """
    )
    result = run_pytest(
        pytester.path, "--alluredir", "results", "--chaos-journal", "j", "test_abort_passes.py"
    )
    assert result.returncode == 0, result.stdout[-2000:]  # pytest saw a passing test
    assert "test_abort_passes.py::test_stops_itself  ABORTED" in result.stdout
    assert (
        "abort  by guard at" in result.stdout and "error budget spent  healed f1" in result.stdout
    )
    (allure_result,) = _results(pytester.path / "results").values()
    assert allure_result["status"] == "broken"
    assert allure_result["statusDetails"]["message"] == "Aborted by guard: error budget spent"
    (entry,) = json.loads((pytester.path / "j" / "index.json").read_text())["tests"]
    assert entry["outcome"] == "aborted" and entry["aborted"] is True


_PROBE_CONFTEST = """
import json, sys

def pytest_unconfigure(config):
    with open("modules.json", "w") as f:
        json.dump({
            "allure_commons": "allure_commons" in sys.modules,
            "chaos_allure": "pytest_chaos.reporting._allure" in sys.modules,
        }, f)
"""


@pytest.mark.parametrize(
    ("args", "allure_commons"),
    [(["-p", "no:allure_pytest"], False), ([], True)],
    ids=["allure-pytest-disabled", "allure-pytest-without-alluredir"],
)
def test_without_alluredir_nothing_about_allure_happens(
    pytester: pytest.Pytester, args: list[str], allure_commons: bool
) -> None:
    write_suite(pytester.path)
    pytester.path.joinpath("conftest.py").write_text(
        pytester.path.joinpath("conftest.py").read_text() + _PROBE_CONFTEST
    )
    result = run_pytest(pytester.path, *args, "test_suite.py::test_copes_with_latency")
    assert result.returncode == 0, result.stdout[-2000:]
    modules = json.loads((pytester.path / "modules.json").read_text())
    # allure-pytest itself imports allure_commons when it is enabled; pytest-chaos never does
    assert modules == {"allure_commons": allure_commons, "chaos_allure": False}
    # the test's path and pytest's plugin list mention allure; pytest-chaos's output does not
    assert "allure" not in result.stdout.split("chaos summary", 1)[1].lower()
    assert not list(pytester.path.rglob("*-result.json"))
    assert not list(pytester.path.rglob("categories.json"))
