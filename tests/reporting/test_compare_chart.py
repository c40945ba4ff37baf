"""The chart of a compare check: both distributions, quantile marks, the verdict."""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET

from pytest_chaos.checks._compare import judge, parse_budget
from pytest_chaos.checks._probe import Call
from pytest_chaos.reporting._compare_chart import compare_svg, has_distributions
from pytest_chaos.reporting._model import CheckVerdict

_SVG = "{http://www.w3.org/2000/svg}"


def _verdict(shift: float, **budget: str) -> CheckVerdict:
    rng = random.Random(5)
    control = [Call(float(i), 0.010 + rng.uniform(0, 0.002), True) for i in range(20)]
    experiment = [Call(float(i), 0.010 + shift + rng.uniform(0, 0.002), True) for i in range(20)]
    result, _, _ = judge(
        control, experiment, parse_budget(budget or None), alpha=0.01, duration=0.5
    )
    data = result.event_data()
    return CheckVerdict(
        name=result.name,
        target="shop",
        passed=result.passed,
        measured=data["measured"],
        allowed=data["allowed"],
        message=result.message,
        duration=result.duration,
        t=1.0,
        wall=0.0,
    )


def test_the_chart_shows_both_groups_and_the_verdict() -> None:
    check = _verdict(0.02, p99="+20%")
    assert has_distributions(check)
    root = ET.fromstring(compare_svg(check))
    assert root.get("class") == "chaos-compare"
    bars = [e for e in root.iter(f"{_SVG}rect") if "chaos-compare-bar" in (e.get("class") or "")]
    heights = {"control": 0, "experiment": 0}
    for bar in bars:
        group = (bar.get("class") or "").split()[-1]
        assert group in heights
        heights[group] += 1
    assert heights["control"] > 0 and heights["experiment"] > 0
    # two groups that do not overlap: the control's bars all left of the experiment's
    left = max(float(b.get("x") or 0) for b in bars if "control" in (b.get("class") or ""))
    right = min(float(b.get("x") or 0) for b in bars if "experiment" in (b.get("class") or ""))
    assert left < right
    quantiles = [g for g in root.iter(f"{_SVG}g") if g.get("class") == "chaos-compare-quantile"]
    assert len(quantiles) == 4  # p50 and p99 of each group
    text = " ".join(t.text or "" for t in root.iter(f"{_SVG}text"))
    assert "FAIL" in text and "budget p99 +20% (alpha 0.01)" in text
    assert "Mann-Whitney p=" in text and "Cliff's delta 1 (large)" in text


def test_a_passing_compare_and_other_checks() -> None:
    check = _verdict(0.0, p99="+1s")
    text = compare_svg(check)
    assert ">PASS<" in text
    other = CheckVerdict("steady_state", "", True, {"p99": 0.1}, {}, "", 0.1, 1.0, 0.0)
    assert not has_distributions(other)
