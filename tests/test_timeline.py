from __future__ import annotations

import json

import pytest

from pytest_chaos.timeline import Timeline


def test_events_are_ordered_json_safe_and_timed() -> None:
    ticks = iter([10.0, 10.5, 12.0])
    tl = Timeline(clock=lambda: next(ticks))
    tl.record("inject", "latency", target="redis", fault_id="f1", attributes={"latency": 300})
    tl.record("heal", "latency", target="redis", fault_id="f1", by="test")
    data = json.loads(json.dumps(tl.to_json()))
    assert [e["kind"] for e in data["events"]] == ["inject", "heal"]
    assert [e["t"] for e in data["events"]] == [0.5, 2.0]
    assert data["events"][0]["data"]["attributes"] == {"latency": 300}


def test_unknown_kind_is_refused_with_the_allowed_kinds() -> None:
    with pytest.raises(ValueError, match=r"'explode'.*abort"):
        Timeline().record("explode", "x")  # type: ignore[arg-type]
