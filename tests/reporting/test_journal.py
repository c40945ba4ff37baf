"""The JSON journal: one schema-valid file per chaos test and a merged run index."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_chaos.reporting._journal import journal_schema

from ._support import NODEIDS, run_pytest, write_suite
from .conftest import SuiteRun

pytest.importorskip("jsonschema")
import jsonschema


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _validator() -> jsonschema.Draft202012Validator:
    schema = journal_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_every_file_is_schema_valid_and_the_index_merges_both_workers(
    suite_run: SuiteRun,
) -> None:
    validator = _validator()
    index = _load(suite_run.journal / "index.json")
    validator.validate(index)
    assert index["kind"] == "index"
    assert {e["nodeid"]: e["outcome"] for e in index["tests"]} == NODEIDS
    assert index["totals"] == {
        "tests": 4,
        "passed": 1,
        "failed": 1,
        "error": 1,
        "aborted": 1,
        "skipped": 0,
        "faults": 3,
        "checks": 4,
        "checks_failed": 2,
        "aborts": 1,
    }
    files = sorted((suite_run.journal / "tests").glob("*.json"))
    assert len(files) == 4
    workers = set()
    for entry in index["tests"]:
        document = _load(suite_run.journal / entry["file"])
        validator.validate(document)
        assert document["nodeid"] == entry["nodeid"]
        assert document["outcome"] == entry["outcome"]
        assert document["worker"] == entry["worker"]
        workers.add(document["worker"])
    # records came from xdist workers, the index was written once by the controller
    assert workers <= {"gw0", "gw1"} and workers
    assert index["workers"] == sorted(workers)
    assert index["seeds"] == [entry["seed"] for entry in index["tests"]][:1]


def test_a_test_file_holds_marker_backend_timeline_checks_and_durations(
    suite_run: SuiteRun,
) -> None:
    index = _load(suite_run.journal / "index.json")
    files = {e["nodeid"]: suite_run.journal / e["file"] for e in index["tests"]}

    slow = _load(files["test_suite.py::test_too_slow"])
    assert slow["marker"]["blast_radius"]["targets"] == ["echo"]
    assert slow["backend"]["kind"] == "embedded" and slow["backend"]["version"]
    assert slow["versions"]["pytest_chaos"] and slow["versions"]["python"]
    (fault,) = slow["faults"]
    assert fault["type"] == "latency" and fault["target"] == "echo"
    assert fault["attributes"]["latency"] == 300
    assert fault["healed"]["by"] == "test"
    assert fault["duration"] == pytest.approx(
        fault["healed"]["t"] - fault["injected"]["t"], abs=1e-5
    )
    (check,) = slow["checks"]
    assert check["name"] == "steady_state" and check["passed"] is False
    assert check["measured"]["p99"] >= 0.25 and check["allowed"]["p99"] == 0.01
    assert slow["failure"]["phase"] == "call"
    assert slow["failure"]["kind"] == "hypothesis"
    assert slow["failure"]["type"].endswith("SteadyStateViolated")
    assert slow["phases"]["call"]["outcome"] == "failed"
    durations = slow["durations"]
    assert durations["total"] == pytest.approx(
        sum(durations[w] for w in ("setup", "call", "teardown")), abs=1e-5
    )
    assert durations["call"] >= 0.25 * 3  # three calls through 300 ms of latency

    events = slow["timeline"]["events"]
    assert [e["kind"] for e in events] == ["inject", "check", "heal"]
    ts = [e["t"] for e in events]
    assert ts == sorted(ts)
    for event in events:
        # wall time is the timeline's start plus the monotonic offset
        assert event["wall"] == pytest.approx(slow["timeline"]["started"] + event["t"], abs=1e-3)
    assert len(slow["timeline"]["samples"]) == 3

    aborted = _load(files["test_suite.py::test_guard_aborts"])
    assert aborted["outcome"] == "aborted"
    assert "breached" in aborted["aborted"]["reason"]
    (abort,) = aborted["aborts"]
    assert abort["healed"] == ["f1"]

    error = _load(files["test_suite.py::test_outside_radius"])
    assert error["failure"]["kind"] == "injection"
    assert error["faults"] == []


def test_the_schema_rejects_what_readers_could_not_use() -> None:
    validator = _validator()
    document = {
        "schema": "pytest-chaos/journal/1",
        "kind": "test",
        "nodeid": "t.py::t",
        "outcome": "exploded",  # not an outcome
    }
    errors = {e.validator for e in validator.iter_errors(document)}
    assert errors  # the oneOf fails: missing fields, bad enum
    index_entry_file = {"file": "../../etc/passwd"}
    sub = validator.schema["$defs"]["indexEntry"]["properties"]["file"]
    assert not jsonschema.Draft202012Validator(sub).is_valid(index_entry_file["file"])


def test_ini_key_rerun_replaces_the_old_journal_and_keeps_foreign_files(
    pytester: pytest.Pytester,
) -> None:
    write_suite(pytester.path)
    pytester.makeini("[pytest]\nchaos_journal = out/journal\n")
    journal = pytester.path / "out" / "journal"
    first = run_pytest(pytester.path, "test_suite.py::test_copes_with_latency")
    assert first.returncode == 0, first.stdout[-2000:]
    assert len(list((journal / "tests").glob("*.json"))) == 1
    (journal / "notes.txt").write_text("mine")

    second = run_pytest(pytester.path, "test_suite.py::test_outside_radius")
    assert second.returncode == 1
    index = _load(journal / "index.json")
    assert [e["nodeid"] for e in index["tests"]] == ["test_suite.py::test_outside_radius"]
    assert [p.name for p in (journal / "tests").glob("*.json")] == [
        index["tests"][0]["file"].split("/", 1)[1]
    ]
    assert (journal / "notes.txt").read_text() == "mine"
    assert f"chaos journal: {journal}" in second.stdout


def test_a_journal_path_that_cannot_be_a_directory_is_a_usage_error(
    pytester: pytest.Pytester,
) -> None:
    write_suite(pytester.path)
    (pytester.path / "taken").write_text("a file, not a directory")
    result = run_pytest(pytester.path, "--chaos-journal", "taken/journal")
    assert result.returncode == 4  # pytest's usage error
    assert "--chaos-journal" in result.stderr and "taken" in result.stderr
    assert "writable directory" in result.stderr
