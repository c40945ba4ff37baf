"""fault_schedules: what it generates, how it shrinks, its argument errors, and the two
snippets a failure prints (the YAML loads with the experiments loader, the Python
compiles)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from pytest_chaos.errors import ConfigurationError
from pytest_chaos.strategies import (
    FaultSchedule,
    ScheduledFault,
    fault_schedules,
    format_seconds,
    schedule_settings,
)

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import find, given  # noqa: E402
from hypothesis import settings as hsettings  # noqa: E402

TARGETS = ["redis", "postgres", "payments"]
FAULTS = ["down", "latency:500ms", "http_error:503"]


@given(fault_schedules(TARGETS, FAULTS, max_faults=4, horizon=5.0))
@hsettings(max_examples=200, deadline=None)
def test_every_schedule_keeps_the_rules(schedule: FaultSchedule) -> None:
    assert 1 <= len(schedule) <= 4
    assert list(schedule.faults) == sorted(schedule.faults)  # canonical: by start
    for fault in schedule.faults:
        assert fault.target in TARGETS
        assert fault.fault in FAULTS
        assert 0 <= fault.start < 5.0
        assert fault.duration > 0 and fault.end <= 5.0 + 1e-9
        # on the 0.25 s grid (horizon / 20)
        assert round(fault.start / 0.25, 6).is_integer()
        assert round(fault.duration / 0.25, 6).is_integer()
    for a, b in schedule.overlapping():
        assert a.target != b.target, f"{a} and {b} overlap on one target"
    assert schedule.targets == tuple(TARGETS)
    assert (
        eval(repr(schedule), {"FaultSchedule": FaultSchedule, "ScheduledFault": ScheduledFault})
        == schedule
    )


def test_faults_per_target_and_the_resolution() -> None:
    strategy = fault_schedules(
        ["redis", "payments"],
        {"redis": ["down"], "payments": ["http_error:429"]},
        max_faults=2,
        horizon=1.0,
        resolution=0.5,
    )

    @given(strategy)
    @hsettings(max_examples=100, deadline=None)
    def check(schedule: FaultSchedule) -> None:
        for fault in schedule.faults:
            assert fault.fault == {"redis": "down", "payments": "http_error:429"}[fault.target]
            assert fault.start in (0.0, 0.5) and fault.duration in (0.5, 1.0)

    check()


def test_overlapping_faults_are_generated() -> None:
    # not a degenerate strategy: two faults at once on two targets do come out
    found = find(
        fault_schedules(TARGETS, ["down"], max_faults=3, horizon=2.0),
        lambda s: len({f.target for pair in s.overlapping() for f in pair}) == 2,
        settings=hsettings(max_examples=500, database=None),
    )
    assert len(found) == 2


def test_it_shrinks_to_fewest_faults_earliest_starts_shortest_durations() -> None:
    # the failure: postgres down overlapping redis latency, whatever else happens
    def fails(schedule: FaultSchedule) -> bool:
        return any(
            {(a.target, a.fault), (b.target, b.fault)}
            == {("postgres", "down"), ("redis", "latency:500ms")}
            for a, b in schedule.overlapping()
        )

    minimal = find(
        fault_schedules(TARGETS, FAULTS, max_faults=4, horizon=5.0),
        fails,
        settings=hsettings(max_examples=2000, database=None),
    )
    assert minimal == FaultSchedule(
        [
            ScheduledFault(start=0.0, duration=0.25, target="postgres", fault="down"),
            ScheduledFault(start=0.0, duration=0.25, target="redis", fault="latency:500ms"),
        ]
    )


@pytest.mark.parametrize(
    ("kwargs", "phrase"),
    [
        ({"targets": [], "faults": ["down"]}, "targets=[] must be a non-empty list"),
        ({"targets": "redis", "faults": ["down"]}, "targets='redis' must be a non-empty list"),
        ({"targets": ["redis", "redis"], "faults": ["down"]}, "names a target twice"),
        ({"targets": ["redis"], "faults": ["lag:5ms"]}, "unknown fault 'lag'"),
        ({"targets": ["redis"], "faults": ["latency:5"]}, "'latency:5'"),
        ({"targets": ["redis"], "faults": "down"}, "must be a list of fault strings"),
        ({"targets": ["redis"], "faults": [{"latency": "1s"}]}, "write faults as strings"),
        ({"targets": ["redis"], "faults": {"db": ["down"]}}, "not in targets=['redis']"),
        ({"targets": ["redis"], "faults": []}, "no target has a fault"),
        ({"targets": ["redis"], "faults": ["down"], "max_faults": 0}, "max_faults=0"),
        ({"targets": ["redis"], "faults": ["down"], "horizon": 0}, "horizon=0 must be"),
        (
            {"targets": ["redis"], "faults": ["down"], "horizon": 1.0, "resolution": 2.0},
            "resolution=2.0 is longer than horizon=1.0",
        ),
        (
            {"targets": ["redis"], "faults": ["down"], "min_faults": 3, "max_faults": 2},
            "min_faults=3 > max_faults=2",
        ),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, object], phrase: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        fault_schedules(**kwargs)  # type: ignore[arg-type]
    assert phrase in str(info.value)
    assert "fault_schedules" in str(info.value)


def test_bad_scheduled_faults_are_named() -> None:
    with pytest.raises(ConfigurationError, match=r"start=-1 is negative"):
        ScheduledFault(start=-1, duration=1, target="redis", fault="down")
    with pytest.raises(ConfigurationError, match=r"duration=0 must be > 0"):
        ScheduledFault(start=0, duration=0, target="redis", fault="down")
    with pytest.raises(ConfigurationError, match=r"fault 'slow'.*unknown fault"):
        ScheduledFault(start=0, duration=1, target="redis", fault="slow")
    with pytest.raises(ConfigurationError, match=r"not a ScheduledFault"):
        FaultSchedule([("redis", "down")])  # type: ignore[list-item]


def test_schedule_settings_fit_fixtures_and_long_examples() -> None:
    made = schedule_settings(max_examples=7)
    assert made.deadline is None and made.max_examples == 7
    assert hypothesis.HealthCheck.function_scoped_fixture in made.suppress_health_check


def test_format_seconds() -> None:
    assert [format_seconds(s) for s in (0, 0.25, 1.0, 1.5, 90)] == [
        "0s",
        "250ms",
        "1s",
        "1500ms",
        "90s",
    ]


SCHEDULE = FaultSchedule(
    [
        ScheduledFault(start=0.25, duration=1.5, target="redis", fault="latency:500ms"),
        ScheduledFault(start=0.0, duration=0.5, target="postgres", fault="down"),
        ScheduledFault(start=1.0, duration=2.0, target="payments", fault="http_error:503"),
        ScheduledFault(start=1.0, duration=1.0, target="postgres", fault="bandwidth:1KB/s"),
    ]
)


def test_the_yaml_steps_load_with_the_experiments_loader(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    from pytest_chaos.experiments._loader import load_file

    document = textwrap.dedent(
        """\
        apiVersion: pytest-chaos/v1
        kind: Experiment
        metadata:
          name: regression
        spec:
          hypothesis: the shop sells through these faults
          blast_radius:
            targets: [redis, postgres, payments]
          targets:
            redis: {upstream: "127.0.0.1:6379"}
            postgres: {upstream: "127.0.0.1:5432"}
            payments: {upstream: "127.0.0.1:8080"}
        """
    ) + "\n".join("  " + line for line in SCHEDULE.as_yaml().splitlines())
    path = tmp_path / "chaos_regression.yaml"
    path.write_text(document + "\n")
    (doc,) = load_file(path)
    method = doc.spec["method"]
    assert [(s["at"], s["for"], s["target"], s["fault"]) for s in method] == [
        ("0s", "500ms", "postgres", "down"),
        ("250ms", "1500ms", "redis", "latency:500ms"),
        ("1s", "1s", "postgres", "bandwidth:1KB/s"),
        ("1s", "2s", "payments", "http_error:503"),
    ]


def test_the_python_snippet_compiles_and_builds_the_same_steps() -> None:
    from pytest_chaos.experiment import Step

    code = SCHEDULE.as_python()
    compile(code, "<snippet>", "exec")

    calls: list[tuple[str, str, tuple[object, ...], dict[str, object]]] = []

    class Proxy:
        def __init__(self, name: str) -> None:
            self.name = name

        def __getattr__(self, method: str) -> object:
            return lambda *a, **k: calls.append((self.name, method, a, k))

    class Run:
        done = True

        def __enter__(self) -> Run:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

    class FakeChaos:
        proxies = {name: Proxy(name) for name in ("redis", "postgres", "payments")}
        steps: list[Step] = []

        def schedule(self, steps: list[Step]) -> Run:
            self.steps = steps
            return Run()

    fake = FakeChaos()
    exec(code, {"chaos": fake, "scenario": lambda: None})
    assert [(s.at, s.for_) for s in fake.steps] == [(f.start, f.duration) for f in SCHEDULE]
    for step in fake.steps:
        assert step.fault is not None
        step.fault()
    assert calls == [
        ("postgres", "down", (), {}),
        ("redis", "latency", (500,), {}),
        ("postgres", "bandwidth", (1.0,), {}),
        ("payments", "http_error", (503,), {}),
    ]


def test_explain_holds_both_snippets() -> None:
    text = SCHEDULE.explain()
    assert text.startswith("fault schedule (4 fault(s)): postgres down [0s, 500ms); ")
    assert SCHEDULE.as_python().splitlines()[2] in text.replace("\n    ", "\n")
    assert "as YAML experiment steps:" in text
    assert FaultSchedule().as_yaml() == "method: []"
    assert FaultSchedule().describe() == "no fault"


def test_without_hypothesis_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hypothesis", None)  # import hypothesis -> ImportError
    with pytest.raises(ConfigurationError) as info:
        fault_schedules(["redis"], ["down"])
    assert "needs Hypothesis, which is not installed" in str(info.value)
    assert "pip install 'pytest-chaos[explore]'" in str(info.value)
    with pytest.raises(ConfigurationError, match=r"pytest-chaos\[explore\]"):
        schedule_settings()
    # the schedules themselves need no Hypothesis
    assert len(FaultSchedule([ScheduledFault(0, 1, "redis", "down")])) == 1
