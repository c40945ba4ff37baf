"""circuit_breaker(half_open_burst=N): a half-open breaker lets one trial through, not
every concurrent caller. Counted at the embedded proxy in front of a real Redis, with
the service's breaker (good: one trial; leaky: every caller in the half-open window)."""

from __future__ import annotations

import pytest

from pytest_chaos.checks import CircuitBreakerViolated, circuit_breaker
from pytest_chaos.errors import CheckError

from .conftest import BREAKER, reads_redis

pytestmark = pytest.mark.chaos(blast_radius=["redis"])


def test_one_trial_under_a_burst_passes(chaos, service, redis_address) -> None:
    redis = chaos.proxy("redis", upstream=redis_address)
    svc = service(redis.address, "--breaker", "good", *BREAKER)
    with redis.timeout() as fault:
        result = chaos.circuit_breaker(
            reads_redis(svc),
            proxy=redis,
            opens_within_calls=3,
            fail_fast=0.4,
            reset_timeout=1.0,
            fault=fault,
            half_open_burst=5,
        )
    assert result.measured["half_open_burst_reached"] == 1
    assert "half-open under a burst of 5 concurrent calls let 1 through" in result.message
    assert result.measured["closed_after"] > 0  # and it still closed after the heal


def test_a_half_open_state_that_lets_everyone_through_is_caught(
    chaos, service, redis_address
) -> None:
    redis = chaos.proxy("redis", upstream=redis_address)
    svc = service(redis.address, "--breaker", "leaky", *BREAKER)
    with redis.timeout(), pytest.raises(CircuitBreakerViolated) as info:
        chaos.circuit_breaker(
            reads_redis(svc),
            proxy=redis,
            opens_within_calls=3,
            fail_fast=0.4,
            reset_timeout=1.0,
            half_open_burst=5,
        )
    message = str(info.value)
    assert "half-open let too much through:" in message
    assert "concurrent calls reached 'redis'" in message
    assert "allowed: at most 1 reaching it" in message
    assert info.value.measured["half_open_burst_reached"] >= 2


def test_the_limit_is_configurable(chaos, service, redis_address) -> None:
    """half_open_max_reaching=5 allows what the leaky breaker does (no false alarm for a
    breaker meant to let several trials through)."""
    redis = chaos.proxy("redis", upstream=redis_address)
    svc = service(redis.address, "--breaker", "leaky", *BREAKER)
    with redis.timeout():
        result = chaos.circuit_breaker(
            reads_redis(svc),
            proxy=redis,
            opens_within_calls=3,
            fail_fast=0.4,
            reset_timeout=1.0,
            half_open_burst=5,
            half_open_max_reaching=5,
        )
    assert result.passed and result.measured["half_open_burst_reached"] >= 2


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"half_open_burst": 4}, "needs reset_timeout"),
        ({"half_open_burst": 1, "reset_timeout": 1.0}, "half_open_burst=1"),
        ({"half_open_burst": 3, "reset_timeout": 1.0, "half_open_max_reaching": -1}, "-1"),
    ],
)
def test_bad_burst_arguments_are_check_errors(kwargs, word: str) -> None:
    with pytest.raises(CheckError, match=word):
        circuit_breaker(
            lambda: None,
            proxy=lambda: {"connections_accepted": 0, "bytes_upstream": 0, "http_requests": 0},
            opens_within_calls=1,
            **kwargs,
        )
