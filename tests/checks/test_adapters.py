from __future__ import annotations

import contextlib
import time
from typing import Any

import pytest

from pytest_chaos.checks import (
    watch_breaker,
)
from pytest_chaos.errors import CheckError
from pytest_chaos.timeline import Timeline


def _fail(breaker_call: Any) -> None:
    with contextlib.suppress(Exception):
        breaker_call()


def _boom() -> None:
    raise OSError("down")


def test_pybreaker_transitions_are_recorded() -> None:
    pybreaker = pytest.importorskip("pybreaker")
    tl = Timeline()
    cb = pybreaker.CircuitBreaker(fail_max=2, reset_timeout=0.05, name="pay")
    with watch_breaker(cb, timeline=tl) as watch:
        for _ in range(3):
            _fail(lambda: cb.call(_boom))
        time.sleep(0.1)
        cb.call(lambda: None)
    assert watch.states() == ["open", "half-open", "closed"]
    notes = [e for e in tl.of_kind("note") if e.name == "breaker"]
    assert [n.data["to_state"] for n in notes] == ["open", "half-open", "closed"]
    assert notes[0].data["library"] == "pybreaker" and notes[0].data["circuit"] == "pay"
    assert not cb.listeners


def test_circuitbreaker_is_polled() -> None:
    circuitbreaker = pytest.importorskip("circuitbreaker")
    cb = circuitbreaker.CircuitBreaker(failure_threshold=2, recovery_timeout=0.1, name="pay")
    guarded = cb(_boom)
    with watch_breaker(cb, poll_interval=0.005) as watch:
        for _ in range(3):
            _fail(guarded)
        time.sleep(0.05)
        assert "open" in watch.states()
        time.sleep(0.2)
    assert watch.states()[:2] == ["open", "half-open"]


def test_purgatory_events_are_recorded() -> None:
    purgatory = pytest.importorskip("purgatory")
    factory = purgatory.SyncCircuitBreakerFactory(default_threshold=2, default_ttl=0.05)
    with watch_breaker(factory, timeline=Timeline()) as watch:
        for _ in range(3):
            try:
                with factory.get_breaker("pay"):
                    raise OSError("down")
            except Exception:
                pass
        time.sleep(0.1)
        with factory.get_breaker("pay"):
            pass
    assert watch.states() == ["open", "half-open", "closed"]
    assert not factory.listeners


def test_unknown_breaker_is_a_check_error() -> None:
    with pytest.raises(CheckError, match=r"supported: pybreaker\.CircuitBreaker"):
        watch_breaker(object())
