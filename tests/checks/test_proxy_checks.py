"""circuit_breaker and retries against an in-memory system with fake proxy counters."""

from __future__ import annotations

import time
from typing import Any

import pytest

from pytest_chaos.checks import (
    CircuitBreakerViolated,
    RetriesViolated,
    circuit_breaker,
    retries,
)
from pytest_chaos.errors import CheckError


class FakeProxy:
    name = "payments"

    def __init__(self) -> None:
        self.accepted = 0
        self.broken = True

    def stats(self) -> dict[str, Any]:
        return {"connections_accepted": self.accepted, "bytes_upstream": 0, "http_requests": 0}

    def heal(self) -> None:
        self.broken = False


class System:
    """Calls the dependency through FakeProxy, with an optional breaker."""

    def __init__(
        self, proxy: FakeProxy, *, threshold: int | None, reset: float, half_opens: bool = True
    ) -> None:
        self.proxy = proxy
        self.threshold = threshold
        self.reset = reset
        self.half_opens = half_opens
        self.failures = 0
        self.opened_at: float | None = None

    def _dependency(self) -> None:
        self.proxy.accepted += 1
        if self.proxy.broken:
            time.sleep(0.03)
            raise TimeoutError("dependency timed out")

    def call(self) -> str:
        if self.opened_at is not None and (
            not self.half_opens or time.monotonic() - self.opened_at < self.reset
        ):
            raise RuntimeError("breaker open")
        try:
            self._dependency()
        except TimeoutError:
            self.failures += 1
            if self.threshold is not None and self.failures >= self.threshold:
                self.opened_at = time.monotonic()
            raise
        self.failures = 0
        self.opened_at = None
        return "ok"


def test_a_good_breaker_opens_fails_fast_and_closes() -> None:
    proxy = FakeProxy()
    system = System(proxy, threshold=3, reset=0.2)
    result = circuit_breaker(
        system.call,
        proxy=proxy,
        opens_within_calls=3,
        fail_fast=0.02,
        reset_timeout=0.2,
        heal=proxy.heal,
    )
    assert result.measured["opened_after_calls"] == 3
    assert result.measured["reached_while_closed"] == 3
    assert 0.1 <= result.measured["half_open_after"] <= 1.4
    assert "closed at" in result.message


def test_no_breaker_is_caught() -> None:
    proxy = FakeProxy()
    system = System(proxy, threshold=None, reset=0.2)
    with pytest.raises(
        CircuitBreakerViolated, match=r"did not open within 3 calls: call 4 failed"
    ) as info:
        circuit_breaker(system.call, proxy=proxy, opens_within_calls=3, fail_fast=0.02)
    assert info.value.measured["reached"] == 4
    assert "connections_accepted +1" in str(info.value)


def test_a_breaker_that_never_half_opens_is_caught() -> None:
    proxy = FakeProxy()
    system = System(proxy, threshold=2, reset=0.1, half_opens=False)
    with pytest.raises(CircuitBreakerViolated, match="never let a trial call through after heal"):
        circuit_breaker(
            system.call,
            proxy=proxy,
            opens_within_calls=3,
            fail_fast=0.02,
            reset_timeout=0.1,
            closes_within=0.4,
            heal=proxy.heal,
        )


def test_a_breaker_opening_too_late_is_caught() -> None:
    proxy = FakeProxy()
    system = System(proxy, threshold=6, reset=0.1)
    with pytest.raises(CircuitBreakerViolated, match="6 of 6 calls reached 'payments'"):
        circuit_breaker(system.call, proxy=proxy, opens_within_calls=5, fail_fast=0.02)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"reset_timeout": 1.0}, "needs heal= or fault="),
        ({"heal": lambda: None}, "pass reset_timeout"),
        ({"heal": lambda: None, "fault": object(), "reset_timeout": 1}, "not both"),
        ({"counters": ("nope",)}, "unknown proxy counter"),
    ],
)
def test_breaker_argument_errors(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(CheckError, match=match):
        circuit_breaker(lambda: None, proxy=FakeProxy(), opens_within_calls=1, **kwargs)


def test_breaker_needs_stats() -> None:
    with pytest.raises(CheckError, match="has no stats"):
        circuit_breaker(lambda: None, proxy=object(), opens_within_calls=1)


def _retrying(proxy: FakeProxy, attempts: int) -> Any:
    def call() -> None:
        for _ in range(attempts):
            proxy.accepted += 1
        raise ConnectionResetError("reset")

    return call


def test_retries_within_bound_pass() -> None:
    proxy = FakeProxy()
    result = retries(_retrying(proxy, 3), proxy=proxy, calls=4, max_attempts_per_call=3, settle=0)
    assert result.measured["attempts"] == 12 and result.measured["attempts_per_call"] == 3.0
    assert result.measured["failed_calls"] == 4


def test_a_retry_storm_is_caught_with_numbers() -> None:
    proxy = FakeProxy()
    with pytest.raises(
        RetriesViolated,
        match=r"200 attempts reached 'payments' for 4 calls = 50\.0 per call > allowed 3",
    ):
        retries(_retrying(proxy, 50), proxy=proxy, calls=4, max_attempts_per_call=3, settle=0)
