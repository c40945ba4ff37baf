"""Strict units and fault strings of YAML experiments (shared with exploration)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from pytest_chaos.experiments import (
    FaultSpec,
    UnitError,
    parse_bandwidth,
    parse_duration,
    parse_fault,
    parse_percent,
    parse_rate,
)


@pytest.mark.parametrize(
    ("text", "seconds"), [("200ms", 0.2), ("30s", 30.0), ("15m", 900.0), ("1.5s", 1.5)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["200", 200, "2 seconds", "5sec", "-1s", None])
def test_a_duration_without_a_known_unit_is_refused_with_the_fix(bad: object) -> None:
    with pytest.raises(UnitError, match="200ms, 30s, 15m"):
        parse_duration(bad)


def test_percent_rate_and_bandwidth() -> None:
    assert parse_percent("2%") == pytest.approx(0.02)
    assert parse_rate("20/s") == 20.0 and parse_rate("600/m") == 10.0
    assert parse_bandwidth("1KB/s") == 1.0 and parse_bandwidth("2MB/s") == 2048.0
    for parse, bad in [(parse_percent, "0.02"), (parse_rate, "20"), (parse_bandwidth, "1kb")]:
        with pytest.raises(UnitError):
            parse(bad)


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("down", FaultSpec("down")),
        ("latency:500ms", FaultSpec("latency", {"ms": 500})),
        ({"latency": "2s"}, FaultSpec("latency", {"ms": 2000})),
        ("reset_peer", FaultSpec("reset_peer")),
        ("timeout", FaultSpec("timeout")),
        ("bandwidth:1KB/s", FaultSpec("bandwidth", {"kb_per_s": 1.0})),
        ("http_error:503", FaultSpec("http_error", {"status": 503})),
        ({"http_error": 429}, FaultSpec("http_error", {"status": 429})),
        (
            {"http_error": {"status": 429, "retry_after": "1s"}},
            FaultSpec("http_error", {"status": 429, "retry_after": 1}),
        ),
        (
            {"http_error": {"status": 503, "retry_after": "2m", "body": "busy"}},
            FaultSpec("http_error", {"status": 503, "retry_after": 120, "body": "busy"}),
        ),
        ("http_delay:2s", FaultSpec("http_delay", {"ms": 2000})),
        ("http_duplicate", FaultSpec("http_duplicate")),
    ],
)
def test_fault_strings(text: Any, spec: FaultSpec) -> None:
    assert parse_fault(text) == spec


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lag:500ms", "unknown fault 'lag'; use one of down, latency:500ms"),
        ("latency:500", "fault 'latency': '500' is not a duration"),
        ("http_error:999", "is not an HTTP status"),
        ("down:1s", "takes no value"),
        ({"http_error": {"retry_after": "1s"}}, "status is missing"),
        ({"http_error": {"status": 429, "retry_after": "500ms"}}, "whole seconds"),
        ({"http_error": {"status": 429, "retry": "1s"}}, "unknown keys ['retry']"),
    ],
)
def test_bad_fault_strings_name_the_rule_and_the_fix(text: Any, message: str) -> None:
    with pytest.raises(UnitError, match=re.escape(message)):
        parse_fault(text)


def test_a_fault_spec_calls_the_proxy_method() -> None:
    class Proxy:
        def latency(self, ms: int) -> str:
            return f"latency {ms}"

        def http_error(self, status: int) -> str:
            return f"http_error {status}"

    assert parse_fault("latency:300ms").inject(Proxy()) == "latency 300"
    assert parse_fault("http_error:429").inject(Proxy()) == "http_error 429"


def test_http_error_with_retry_after_sends_the_header() -> None:
    """The mapping form reaches ChaosProxy.http_error as a Retry-After header; the string
    form is unchanged."""
    calls: list[tuple[int, dict[str, Any]]] = []

    class Proxy:
        def http_error(self, status: int, **kwargs: Any) -> str:
            calls.append((status, kwargs))
            return "fault"

    spec = parse_fault({"http_error": {"status": 429, "retry_after": "1s"}})
    assert spec.inject(Proxy()) == "fault"
    parse_fault("http_error:429").inject(Proxy())
    assert calls == [(429, {"headers": {"Retry-After": "1"}}), (429, {})]
    assert str(spec) == "http_error:429 retry_after=1"


def test_every_fault_string_of_exploration_parses_and_slicer_cuts_into_bytes() -> None:
    # the strings issue 14 names: exploration and YAML experiments share them
    for text in (
        "down",
        "latency:500ms",
        "latency:2s",
        "reset_peer",
        "timeout",
        "bandwidth:1KB/s",
        "slicer",
        "http_error:503",
        "http_error:429",
        "http_delay:2s",
        "http_duplicate",
    ):
        spec = parse_fault(text)
        assert spec.http == text.startswith("http_"), text
    calls: list[tuple[str, tuple[Any, ...]]] = []

    class Proxy:
        def slicer(self, *args: Any) -> str:
            calls.append(("slicer", args))
            return "fault"

    assert parse_fault("slicer").inject(Proxy()) == "fault"
    assert calls == [("slicer", ())]
    with pytest.raises(UnitError, match="takes no value"):
        parse_fault("slicer:10")
