"""How reporting reads a record: outcomes, fault windows, and cases a real run rarely hits.

These build records by hand with the real :class:`Timeline` (the contract the
controller fills), to reach states that are awkward to produce on purpose: a fault
never healed, a skipped chaos test, a failure in teardown.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest

import pytest_chaos.reporting
from pytest_chaos.reporting._chart import timeline_svg
from pytest_chaos.reporting._journal import journal_document
from pytest_chaos.reporting._model import ChaosTestResult, PhaseInfo, derive_outcome
from pytest_chaos.reporting._terminal import summary_lines
from pytest_chaos.timeline import Timeline

pytest.importorskip("jsonschema")
import jsonschema


def _record(timeline: Timeline, **overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "schema": "pytest-chaos/record/1",
        "nodeid": "t.py::test_x",
        "worker": "master",
        "run_id": "run1",
        "blast_radius": {
            "targets": ["db"],
            "exclude": [],
            "max_concurrent_faults": None,
            "max_fault_seconds": None,
        },
        "backend": {"kind": "embedded", "url": "http://127.0.0.1:1", "version": "1"},
        "seed": 7,
        "timeline": timeline.to_json(),
        "aborted": None,
        "leftovers": [],
        "started": timeline.started_wall,
        "duration": 1.0,
    }
    record.update(overrides)
    return record


def _phases(**outcomes: str | tuple[str, str]) -> dict[str, PhaseInfo]:
    phases = {}
    for when, value in outcomes.items():
        outcome, kind = value if isinstance(value, tuple) else (value, None)
        exception = None if kind is None else {"type": "X", "message": "m", "kind": kind}
        phases[when] = PhaseInfo(outcome=outcome, duration=0.1, exception=exception)
    return phases


@pytest.mark.parametrize(
    ("phases", "aborted", "outcome"),
    [
        (_phases(setup="passed", call="passed", teardown="passed"), None, "passed"),
        (_phases(setup="passed", call=("failed", "hypothesis")), None, "failed"),
        (_phases(setup="passed", call=("failed", "assertion")), None, "failed"),
        (_phases(setup="passed", call=("failed", "injection")), None, "error"),
        (_phases(setup="passed", call=("failed", "other")), None, "error"),
        (_phases(setup=("failed", "other")), None, "error"),
        (_phases(setup="passed", call="passed", teardown=("failed", "chaos")), None, "error"),
        (_phases(setup="passed", call=("failed", "hypothesis")), {"reason": "r"}, "aborted"),
        (_phases(setup="passed", call="passed"), {"reason": "r"}, "aborted"),
        (_phases(setup="skipped"), None, "skipped"),
        # --chaos-strict: an experiment whose infrastructure is missing is an error
        (_phases(setup=("failed", "unavailable")), None, "error"),
        (_phases(setup="passed", call=("failed", "unavailable")), None, "error"),
    ],
)
def test_outcome(phases: dict[str, PhaseInfo], aborted: object, outcome: str) -> None:
    assert derive_outcome(phases, aborted) == outcome


def test_a_fault_never_healed_is_reported_as_such_everywhere() -> None:
    tl = Timeline()
    tl.record("inject", "latency", target="db", fault_id="f1", attributes={"latency": 100})
    tl.record("inject", "down", target="db", fault_id="f2", attributes={})
    tl.record("heal", "down", target="db", fault_id="f2", by="teardown", duration=0.0)
    result = ChaosTestResult.build(
        _record(tl, leftovers=["toxic latency on db"]),
        _phases(setup="passed", call="passed", teardown=("failed", "chaos")),
    )
    first, second = result.faults
    assert first.end is None and first.duration is None
    assert second.healed_by == "teardown"

    text = "\n".join(line for line, _ in summary_lines([result]))
    assert "fault  latency on db  latency=100  at" in text and "NEVER HEALED" in text
    assert "leftover  toxic latency on db" in text
    assert "teardown raised X: m" in text

    document = journal_document(result)
    jsonschema.Draft202012Validator(pytest_chaos.reporting.journal_schema()).validate(document)
    assert document["faults"][0]["healed"] is None
    assert document["outcome"] == "error"

    svg = ET.fromstring(timeline_svg(result))
    titles = [el.text or "" for el in svg.iter("{http://www.w3.org/2000/svg}title")]
    assert any("never healed" in t for t in titles)


def test_a_record_without_events_still_renders() -> None:
    result = ChaosTestResult.build(_record(Timeline()), _phases(setup="skipped"))
    assert result.outcome == "skipped"
    svg = ET.fromstring(timeline_svg(result))
    texts = {el.text for el in svg.iter("{http://www.w3.org/2000/svg}text")}
    assert {"no faults injected", "no checks"} <= texts
    lines = [line for line, _ in summary_lines([result])]
    assert lines[-1].startswith("chaos: 1 test (1 skipped: no reason given); 0 faults")


def test_thousands_of_probe_calls_are_thinned_but_spikes_and_errors_stay() -> None:
    tl = Timeline()
    tl.record("inject", "latency", target="db", fault_id="f1", attributes={"latency": 5})
    for i in range(20_000):
        # 2 ms calls, one 900 ms spike and one failed call in the middle
        latency = 0.9 if i == 10_000 else 0.002
        tl.sample("get", t=i * 0.001, latency=latency, ok=i != 12_345)
    tl.record("heal", "latency", target="db", fault_id="f1", by="test", duration=20.0)
    result = ChaosTestResult.build(_record(tl), _phases(setup="passed", call="passed"))
    text = timeline_svg(result)
    svg = ET.fromstring(text)
    dots = [el for el in svg.iter() if el.get("class") == "chaos-sample ok"]
    errors = [el for el in svg.iter() if el.get("class") == "chaos-sample error"]
    assert 100 < len(dots) <= 2 * 800  # at most two per pixel column of the plot
    assert len(errors) == 1
    # the spike is drawn at the top of the plot (the y scale is 1.1 x the slowest call)
    top = min(float(el.get("cy", 1e9)) for el in dots)
    plot = next(
        el
        for el in svg.iter("{http://www.w3.org/2000/svg}rect")
        if el.get("fill") == "none" and el.get("stroke") == "#bbb"
    )
    assert top - float(plot.get("y", 0)) < 0.1 * float(plot.get("height", 0)) + 1
    assert "20000 calls, 1 failed" in text and "drawn (extremes per pixel)" in text
    assert len(text) < 400_000


def test_each_probe_has_its_own_colour_and_a_legend() -> None:
    tl = Timeline()
    for i in range(5):
        tl.sample("steady_state:orders", t=i * 0.1, latency=0.2, ok=True)
        tl.sample("guard:health", t=i * 0.1 + 0.05, latency=0.001, ok=True)
    result = ChaosTestResult.build(_record(tl), _phases(setup="passed", call="passed"))
    svg = ET.fromstring(timeline_svg(result))
    fills = {el.get("fill") for el in svg.iter() if el.get("class") == "chaos-sample ok"}
    assert len(fills) == 2
    texts = {el.text for el in svg.iter("{http://www.w3.org/2000/svg}text")}
    assert {"steady_state:orders", "guard:health"} <= texts


def test_public_schema_names() -> None:
    assert pytest_chaos.reporting.JOURNAL_SCHEMA_ID == "pytest-chaos/journal/1"
    schema = pytest_chaos.reporting.journal_schema()
    assert schema["$defs"]["test"]["properties"]["schema"]["const"] == "pytest-chaos/journal/1"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        pytest_chaos.reporting.nope  # noqa: B018
