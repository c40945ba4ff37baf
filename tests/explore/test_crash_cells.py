"""The ``crash`` fault string: parsing, the ``service`` target kind and its catalogue,
which targets an explicit ``crash`` goes to, and the errors for a crash that has no
server to crash (no Docker, no server: the live runs are in test_crash.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from pytest_chaos import ChaosProxy
from pytest_chaos.errors import ConfigurationError
from pytest_chaos.experiments import FaultSpec, UnitError, parse_fault
from pytest_chaos.explore import DEFAULT_FAULTS, Explored, parse_explore


@pytest.mark.parametrize(
    ("text", "after"),
    [
        ("crash", 0.5),
        ("crash:2s", 2.0),
        ("crash:0s", 0.0),
        ("crash:100ms", 0.1),
        ({"crash": "1s"}, 1.0),
    ],
)
def test_crash_strings_give_the_seconds_until_the_kill(text: Any, after: float) -> None:
    spec = parse_fault(text)
    assert spec == FaultSpec("crash", {"after": after})
    assert spec.service and not spec.http


def test_a_bad_crash_delay_names_the_value_and_the_form() -> None:
    with pytest.raises(
        UnitError, match=re.escape("fault 'crash': 'soon' is not a duration")
    ) as exc:
        parse_fault("crash:soon")
    assert "crash:0.5s" in str(exc.value)


def test_a_crash_spec_calls_the_proxys_crash_with_its_delay() -> None:
    calls: list[float] = []

    class Proxy:
        def crash(self, after: float) -> str:
            calls.append(after)
            return "fault"

    assert parse_fault("crash:250ms").inject(Proxy()) == "fault"
    assert parse_fault("crash").inject(Proxy()) == "fault"
    assert calls == [0.25, 0.5]


def test_the_service_kind_is_tcp_plus_a_crash_with_a_readable_id() -> None:
    assert DEFAULT_FAULTS["service"] == (*DEFAULT_FAULTS["tcp"], "crash")
    assert "crash" not in DEFAULT_FAULTS["tcp"] and "crash" not in DEFAULT_FAULTS["http"]
    plan = parse_explore(
        [], {"targets": {"db": "service", "cache": "tcp"}}, where="t.py::test", seed=1
    )
    ids = [cell.id for cell in plan.cells]
    assert "db-crash" in ids and not any(i.startswith("cache-crash") for i in ids)
    assert Explored((("db", "crash:2s"),)).id == "db-crash-2s"


def test_an_explicit_crash_goes_to_service_targets_only() -> None:
    plan = parse_explore(
        [],
        {"targets": {"db": "service", "api": "http", "cache": "tcp"}, "faults": ["down", "crash"]},
        where="t.py::test",
        seed=1,
    )
    assert plan.faults == {"db": ["down", "crash"], "api": ["down"], "cache": ["down"]}


def test_a_crash_without_a_service_target_is_refused_with_the_fix() -> None:
    with pytest.raises(ConfigurationError) as exc:
        parse_explore(
            [], {"targets": ["db"], "faults": ["down", "crash:1s"]}, where="t.py::test", seed=1
        )
    message = str(exc.value)
    for phrase in ("['crash:1s']", "no target is declared service", "{'name': 'service'}"):
        assert phrase in message, message


def test_a_proxy_in_front_of_an_address_cannot_crash_and_says_how_to_fix_it() -> None:
    class Owner:
        public_host = None

        def inject(self, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("nothing may be injected")

    created: Any = {"upstream": "127.0.0.1:5432", "listen": "127.0.0.1:40000", "enabled": True}
    proxy = ChaosProxy(Owner(), "db", "run-db", created)  # type: ignore[arg-type]
    assert proxy.service is None
    with pytest.raises(ConfigurationError) as exc:
        proxy.crash(after=0.1)
    message = str(exc.value)
    for phrase in ("'db'", "'127.0.0.1:5432'", "chaos.proxy('db', upstream=<the Service>)"):
        assert phrase in message, message
