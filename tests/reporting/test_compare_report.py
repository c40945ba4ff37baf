"""A compare check in the reports: the journal (schema-valid, with both distributions)
and Allure (a step with the numbers, an SVG attachment of both distributions)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_chaos.reporting._journal import journal_schema

from ._support import CONFTEST, run_pytest

pytest.importorskip("jsonschema")
import jsonschema

SUITE = """
import pytest

from conftest import ping


@pytest.mark.chaos(blast_radius=["canary"])
def test_canary_is_slower(chaos, echo):
    control = chaos.proxy("control", upstream=echo.address)
    canary = chaos.proxy("canary", upstream=echo.address)
    chaos.compare(
        ping,
        control=control,
        experiment=canary,
        samples=8,
        inject=lambda: canary.latency(20),
        max_degradation={"p99": "+20%"},
        target="echo",
    )
"""


def test_compare_reaches_the_journal_and_allure(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_canary.py").write_text(SUITE)
    process = run_pytest(tmp_path, "--chaos-journal", "journal", "--alluredir", "allure")
    assert process.returncode == 1, process.stdout[-3000:] + process.stderr[-3000:]
    assert "ComparisonViolated" in process.stdout

    (doc_path,) = (tmp_path / "journal" / "tests").glob("*.json")
    doc = json.loads(doc_path.read_text())
    jsonschema.validate(doc, journal_schema())
    (check,) = doc["checks"]
    assert check["name"] == "compare" and check["passed"] is False
    measured = check["measured"]
    assert measured["degraded"] == ["p99"] and measured["latency_p_value"] < 0.01
    assert measured["experiment_p50"] >= 0.02 > measured["control_p50"]
    assert sum(measured["histogram"]["control"]) == sum(measured["histogram"]["experiment"]) == 8
    assert check["allowed"] == {"alpha": 0.01, "p99": "+20%"}

    (result,) = [
        json.loads(p.read_text())
        for p in (tmp_path / "allure").glob("*-result.json")
        if json.loads(p.read_text())["name"] == "test_canary_is_slower"
    ]
    step = next(s for s in result["steps"] if s["name"].startswith("check compare"))
    assert step["status"] == "failed"
    params = {p["name"]: p["value"] for p in step["parameters"]}
    assert params["allowed p99"] == "+20%" and "measured histogram" not in params
    (attachment,) = [a for a in result["attachments"] if a["name"] == "chaos compare"]
    assert attachment["type"] == "image/svg+xml"
    svg = ET.fromstring((tmp_path / "allure" / attachment["source"]).read_text())
    classes = [e.get("class") or "" for e in svg.iter()]
    assert any(c.endswith("control") for c in classes)
    assert any(c.endswith("experiment") for c in classes)


def test_the_journal_schema_knows_the_compare_check() -> None:
    schema = journal_schema()
    check = {
        "name": "compare",
        "target": "",
        "passed": True,
        "measured": {"calls_control": 5},
        "allowed": {},
        "message": "",
        "duration": 0.1,
        "t": 1.0,
        "wall": 0.0,
    }
    validator = jsonschema.Draft202012Validator(schema["$defs"]["check"])
    errors = [e.message for e in validator.iter_errors(check)]
    assert any("'latency_p_value' is a required property" in e for e in errors), errors
