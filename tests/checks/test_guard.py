from __future__ import annotations

import threading
import time

import pytest

from pytest_chaos.checks import GuardTripped, guard
from pytest_chaos.errors import CheckError
from pytest_chaos.timeline import Timeline


def test_a_breached_guard_heals_once_records_abort_and_fails_at_exit() -> None:
    tl = Timeline()
    healed: list[str] = []
    broken = threading.Event()

    def heal(reason: str) -> list[str]:
        healed.append(reason)
        broken.clear()
        return ["f1", "f2"]

    with (
        pytest.raises(
            GuardTripped, match=r"guard tripped, test aborted: .*2 bad probe call"
        ) as info,
        guard(
            lambda: not broken.is_set(), on_breach=heal, consecutive=2, interval=0.01, timeline=tl
        ) as g,
    ):
        broken.set()
        deadline = time.monotonic() + 5
        while not g.breached and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)
    assert len(healed) == 1
    (abort,) = tl.of_kind("abort")
    assert abort.data["healed"] == ["f1", "f2"] and "returned False" in abort.data["reason"]
    assert info.value.measured["healed"] == ["f1", "f2"]
    assert not any(t.name == "chaos-guard" for t in threading.enumerate())


def test_a_guard_that_holds_passes_and_only_probes_while_active() -> None:
    tl = Timeline()
    active = threading.Event()
    calls = 0

    def probe() -> bool:
        nonlocal calls
        calls += 1
        return True

    with guard(probe, active=active.is_set, interval=0.01, timeline=tl) as g:
        time.sleep(0.05)
        assert calls == 0
        active.set()
        time.sleep(0.05)
    assert calls >= 1 and not g.breached
    assert tl.of_kind("check")[0].data["passed"] is True


def test_guard_max_latency_counts_slow_calls_as_bad() -> None:
    with (
        pytest.raises(GuardTripped, match=r"max_latency 0\.010 s"),
        guard(lambda: time.sleep(0.03), max_latency=0.01, interval=0.0, on_breach=lambda r: None),
    ):
        time.sleep(0.2)


def test_guard_probe_crash_heals_and_is_a_check_error() -> None:
    healed: list[str] = []

    def crash() -> None:
        raise KeyError("bug")

    with (
        pytest.raises(CheckError, match="KeyError"),
        guard(crash, failures=(OSError,), on_breach=healed.append, interval=0.01),
    ):
        time.sleep(0.1)
    assert healed and "crashed" in healed[0]


def test_a_failing_heal_is_reraised_at_the_exit() -> None:
    def heal(reason: str) -> None:
        raise RuntimeError("proxy API unreachable")

    with (
        pytest.raises(RuntimeError, match="proxy API unreachable"),
        guard(lambda: False, on_breach=heal, interval=0.01) as g,
    ):
        time.sleep(0.1)
    assert g.breached
