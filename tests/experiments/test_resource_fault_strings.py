"""Resource faults as fault strings (YAML steps and exploration cells): parsing, the
``key=value`` options, the errors, what reaches the proxy, and exploration's
``faults=`` per target (no server: the live runs are in test_resource_fault_steps.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from pytest_chaos import ChaosProxy
from pytest_chaos.errors import ConfigurationError
from pytest_chaos.experiments import FaultSpec, UnitError, parse_fault
from pytest_chaos.experiments._units import parse_mib
from pytest_chaos.explore import DEFAULT_FAULTS, Explored, cell_id, parse_explore


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("cpu_stress", FaultSpec("cpu_stress")),
        ("cpu_stress:2", FaultSpec("cpu_stress", {"cores": 2})),
        ("cpu_stress:2 percent=80%", FaultSpec("cpu_stress", {"cores": 2, "percent": 80.0})),
        (
            {"cpu_stress": {"cores": 2, "percent": "50%"}},
            FaultSpec("cpu_stress", {"cores": 2, "percent": 50.0}),
        ),
        ("cpu_throttle:0.2", FaultSpec("cpu_throttle", {"cpus": 0.2})),
        (
            "cpu_throttle:0.1 period=500ms",
            FaultSpec("cpu_throttle", {"cpus": 0.1, "period_ms": 500}),
        ),
        ("memory_limit:64MiB", FaultSpec("memory_limit", {"mib": 64})),
        ("memory_limit:1GiB", FaultSpec("memory_limit", {"mib": 1024})),
        ("memory_limit:4MiB fill=true", FaultSpec("memory_limit", {"mib": 4, "fill": True})),
        (
            {"memory_limit": {"mib": "4MiB", "fill": True}},
            FaultSpec("memory_limit", {"mib": 4, "fill": True}),
        ),
        ("memory_pressure:256MiB", FaultSpec("memory_pressure", {"mib": 256})),
        ("fill_disk", FaultSpec("fill_disk")),
        ("fill_disk:8MiB", FaultSpec("fill_disk", {"mib": 8})),
        ("exhaust_connections", FaultSpec("exhaust_connections")),
        ("exhaust_connections:5", FaultSpec("exhaust_connections", {"n": 5})),
        (
            "exhaust_connections max_clients=20",
            FaultSpec("exhaust_connections", {"max_clients": 20}),
        ),
        (
            "http_error:429 retry_after=1s",
            FaultSpec("http_error", {"status": 429, "retry_after": 1}),
        ),
    ],
)
def test_resource_fault_strings(text: Any, spec: FaultSpec) -> None:
    parsed = parse_fault(text)
    assert parsed == spec
    assert parsed.service == (spec.name != "http_error")
    assert parsed.http == (spec.name == "http_error")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cpu_throttle", "fault 'cpu_throttle': needs cpus, the CPUs' worth of time"),
        ("cpu_throttle:-1", "cpus '-1' is not a number above 0"),
        ("cpu_throttle:0.2 period=1", "'1' is not a duration"),
        ("cpu_stress:0", "cores 0 is not a whole number from 1"),
        ("cpu_stress percent=0%", "percent 0% keeps no core busy"),
        ("memory_limit:4MB", "'4MB' is not a size; write whole mebibytes or gibibytes"),
        ("memory_limit:4MiB fill=maybe", "fill 'maybe' is not true or false"),
        ("memory_pressure", "needs mib, the memory held"),
        ("exhaust_connections max_clients=0", "max_clients 0 is not a whole number from 1"),
        ("exhaust_connections foo", "option 'foo' is not key=value"),
        ("cpu_stress:1 cores=2", "cores is given twice"),
        ("latency:500ms jitter=5ms", "fault 'latency': takes no key=value options"),
        ({"cpu_stress": {"cpus": [0]}}, "unknown key(s) ['cpus']; its keys are cores, percent"),
    ],
)
def test_bad_resource_fault_strings_name_the_value_and_the_rule(text: Any, message: str) -> None:
    with pytest.raises(UnitError, match=re.escape(message)) as exc:
        parse_fault(text)
    name = text if isinstance(text, str) else next(iter(text))
    example = re.escape(f"(e.g. {name.split(':')[0].split()[0]}")
    assert re.search(example, str(exc.value)), str(exc.value)  # and the form to write


def test_sizes_are_whole_mebibytes_or_gibibytes() -> None:
    assert parse_mib("64MiB") == 64 and parse_mib("2GiB") == 2048
    for bad in ("64", 64, "64MB", "0MiB", "1.5GiB"):
        with pytest.raises(UnitError, match="64MiB, 1GiB"):
            parse_mib(bad)


def test_a_resource_spec_calls_the_proxys_method_with_its_arguments() -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    class Proxy:
        def __getattr__(self, name: str) -> Any:
            def method(**kwargs: Any) -> str:
                calls.append((name, kwargs))
                return name

            return method

    for text in (
        "cpu_stress:2 percent=80%",
        "cpu_throttle:0.1 period=500ms",
        "memory_limit:4MiB fill=true",
        "memory_pressure:64MiB",
        "fill_disk",
        "exhaust_connections max_clients=20",
    ):
        parse_fault(text).inject(Proxy())
    assert calls == [
        ("cpu_stress", {"cores": 2, "percent": 80.0}),
        ("cpu_throttle", {"cpus": 0.1, "period_ms": 500}),
        ("memory_limit", {"mib": 4, "fill": True}),
        ("memory_pressure", {"mib": 64}),
        ("fill_disk", {}),
        ("exhaust_connections", {"max_clients": 20}),
    ]


def test_a_spec_prints_as_it_is_written() -> None:
    assert str(parse_fault("cpu_throttle:0.1 period=500ms")) == "cpu_throttle:0.1 period_ms=500"
    assert str(parse_fault("exhaust_connections max_clients=20")) == (
        "exhaust_connections max_clients=20"
    )
    assert str(parse_fault("fill_disk")) == "fill_disk"


@pytest.mark.parametrize(
    "call",
    [
        lambda p: p.cpu_stress(cores=2),
        lambda p: p.cpu_throttle(0.2),
        lambda p: p.memory_limit(4, fill=True),
        lambda p: p.memory_pressure(64),
        lambda p: p.fill_disk(),
        lambda p: p.exhaust_connections(),
    ],
)
def test_a_proxy_in_front_of_an_address_has_no_server_and_says_how_to_fix_it(call: Any) -> None:
    class Owner:
        public_host = None

        def inject(self, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("nothing may be injected")

    created: Any = {"upstream": "127.0.0.1:6379", "listen": "127.0.0.1:40000", "enabled": True}
    proxy = ChaosProxy(Owner(), "cache", "run-cache", created)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError) as exc:
        call(proxy)
    message = str(exc.value)
    for phrase in (
        "on proxy 'cache'",
        "'127.0.0.1:6379', an address",
        "chaos.proxy('cache', upstream=<the Service>)",
    ):
        assert phrase in message, message


def test_exploration_takes_faults_per_target_and_defaults_for_the_others() -> None:
    plan = parse_explore(
        [],
        {
            "targets": {"cache": "service", "db": "tcp"},
            "faults": {"cache": ["down", "memory_limit:4MiB fill=true", "down"]},
        },
        where="t.py::test",
        seed=1,
    )
    assert plan.faults == {
        "cache": ["down", "memory_limit:4MiB fill=true"],
        "db": list(DEFAULT_FAULTS["tcp"]),
    }
    ids = [cell.id for cell in plan.cells]
    assert "cache-memory_limit-4MiB-fill-true" in ids and "db-slicer" in ids
    assert cell_id("db", "exhaust_connections max_clients=20") == (
        "db-exhaust_connections-max_clients-20"
    )


@pytest.mark.parametrize(
    ("faults", "phrases"),
    [
        (
            {"nope": ["down"]},
            ("names ['nope'], which targets= does not declare", "['cache', 'db']"),
        ),
        ({"db": ["cpu_throttle:0.2"]}, ("cannot go to 'db', a target of kind 'tcp'", "'service'")),
        ({"cache": "down"}, ("faults['cache']='down' is not a list", "faults={'cache': ['down'")),
        ({"cache": []}, ("faults['cache']=[] is not a list of faults",)),
        ({"cache": ["memory_limit:4MB"]}, ("(faults of 'cache')", "'4MB' is not a size")),
    ],
)
def test_bad_faults_per_target_fail_with_the_rule_and_the_fix(
    faults: dict[str, Any], phrases: tuple[str, ...]
) -> None:
    with pytest.raises(ConfigurationError) as exc:
        parse_explore(
            [], {"targets": {"cache": "service", "db": "tcp"}, "faults": faults}, where="t", seed=1
        )
    for phrase in phrases:
        assert phrase in str(exc.value), str(exc.value)


def test_a_resource_fault_in_a_list_goes_to_service_targets_only() -> None:
    plan = parse_explore(
        [],
        {"targets": {"cache": "service", "db": "tcp"}, "faults": ["down", "cpu_stress"]},
        where="t",
        seed=1,
    )
    assert plan.faults == {"cache": ["down", "cpu_stress"], "db": ["down"]}
    with pytest.raises(ConfigurationError, match="act on the server behind a proxy"):
        parse_explore([], {"targets": ["db"], "faults": ["cpu_stress"]}, where="t", seed=1)


def test_a_cell_whose_fault_is_refused_names_the_cell_and_only_the_way_out_that_helps() -> None:
    from pytest_chaos.explore._plugin import _CellRun

    class Proxy:
        name = "cache"

        def __init__(self, service: object) -> None:
            self.service = service

        def cpu_throttle(self, **kwargs: Any) -> Any:
            if self.service is None:
                raise ConfigurationError("cpu_throttle on proxy 'cache': ... an address")
            raise ConfigurationError("cpus must be under 1 (e.g. 0.2)")

    cell = Explored((("cache", "cpu_throttle:1.5"),))
    with pytest.raises(ConfigurationError) as bad_value:
        _CellRun(None, cell).inject(Proxy(service=object()))
    message = str(bad_value.value)
    assert "cell 'cache-cpu_throttle-1.5'" in message and "must be under 1" in message
    assert "'tcp'" not in message  # declaring the target tcp would not mend a bad value
    with pytest.raises(ConfigurationError) as no_server:
        _CellRun(None, cell).inject(Proxy(service=None))
    assert "Or declare the target 'cache': 'tcp'" in str(no_server.value)
