"""The timeline chart and the journal show a schedule's planned and actual step times."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

import pytest_chaos.reporting
from pytest_chaos.reporting._chart import timeline_svg
from pytest_chaos.reporting._journal import journal_document
from pytest_chaos.reporting._model import ChaosTestResult, PhaseInfo
from pytest_chaos.timeline import Timeline

from .test_model import _record

SVG = "{http://www.w3.org/2000/svg}"


def _scheduled() -> ChaosTestResult:
    tl = Timeline()
    for i, (planned, actual) in enumerate([(0.0, 0.001), (0.5, 0.502)]):
        tl.record(
            "note",
            "schedule_step",
            target="db",
            step=f"step {i + 1}",
            index=i,
            at=planned * 100,
            planned=planned,
            actual=actual,
            late_ms=round((actual - planned) * 1000, 3),
            time_scale=0.01,
            source="chaos_x.yaml:12",
            fault="latency",
        )
    phases = {w: PhaseInfo(outcome="passed", duration=0.1) for w in ("setup", "call")}
    return ChaosTestResult.build(_record(tl), phases)


def test_the_chart_draws_planned_against_actual_step_times() -> None:
    svg = ET.fromstring(timeline_svg(_scheduled()))
    steps = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "chaos-step"]
    assert len(steps) == 2
    titles = [g.find(f"{SVG}title").text or "" for g in steps]  # type: ignore[union-attr]
    assert titles[1] == "step 2: planned 0.500s, actual 0.502s (late 2.0 ms)"
    planned = [el for el in svg.iter(f"{SVG}path") if el.get("class") == "chaos-step-planned"]
    actual = [el for el in svg.iter(f"{SVG}circle") if el.get("class") == "chaos-step-actual"]
    assert len(planned) == len(actual) == 2


def test_the_journal_lists_each_step_with_its_lateness() -> None:
    pytest.importorskip("jsonschema")
    import jsonschema

    document = journal_document(_scheduled())
    jsonschema.Draft202012Validator(pytest_chaos.reporting.journal_schema()).validate(document)
    assert [(s["step"], s["late_ms"], s["source"]) for s in document["schedule"]] == [
        ("step 1", 1.0, "chaos_x.yaml:12"),
        ("step 2", 2.0, "chaos_x.yaml:12"),
    ]
