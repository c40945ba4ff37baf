"""Unit tests of the example shop's own logic (no processes, no network)."""

from __future__ import annotations

import contextlib

import pytest

# The shop needs the example extra.
pytest.importorskip("pybreaker")
pytest.importorskip("requests")
pytest.importorskip("tenacity")
import pybreaker

from example_suite.shop.config import PROTECTIONS, Resilience, ShopConfig, parse_fragile
from example_suite.shop.payments import _FailureRate


def test_fragile_switch_parses_all_none_and_lists() -> None:
    assert parse_fragile("") == frozenset()
    assert parse_fragile("0") == frozenset()
    assert parse_fragile("1") == frozenset(PROTECTIONS)
    assert parse_fragile(" Breaker , timeouts ") == {"breaker", "timeouts"}


def test_fragile_switch_names_an_unknown_protection_and_the_fix() -> None:
    with pytest.raises(ValueError, match=r"'brekaer'.*comma-separated list of \['backoff'"):
        parse_fragile("breaker,brekaer")


def test_removing_one_protection_keeps_the_others() -> None:
    r = Resilience.without({"breaker"})
    assert not r.breaker
    assert r.payments_timeout == Resilience().payments_timeout
    assert r.idempotency_keys and r.durable_commits
    fragile = Resilience.fragile()
    assert fragile.db_timeout is None and fragile.redis_timeout is None
    assert not (fragile.breaker or fragile.idempotency_keys or fragile.durable_commits)


def test_config_needs_every_address_and_says_which() -> None:
    with pytest.raises(ValueError, match="SHOP_REDIS_URL, SHOP_PAYMENTS_URL"):
        ShopConfig.from_env({"SHOP_DATABASE_URL": "postgresql://u@h:1/d"})
    config = ShopConfig.from_env(
        {
            "SHOP_DATABASE_URL": "postgresql://u@h:1/d",
            "SHOP_REDIS_URL": "redis://h:2/0",
            "SHOP_PAYMENTS_URL": "http://h:3/",
            "SHOP_FRAGILE": "idempotency",
        }
    )
    assert config.payments_url == "http://h:3"
    assert config.fragile and config.removed == {"idempotency"}


def _breaker(window: int = 10, min_calls: int = 5, rate: float = 0.2) -> pybreaker.CircuitBreaker:
    return pybreaker.CircuitBreaker(
        fail_max=100, reset_timeout=60, listeners=[_FailureRate(window, min_calls, rate)]
    )


def _feed(breaker: pybreaker.CircuitBreaker, outcomes: str) -> None:
    def fail() -> None:
        raise OSError("provider failed")

    for outcome in outcomes:
        with contextlib.suppress(OSError, pybreaker.CircuitBreakerError):
            breaker.call(fail if outcome == "F" else lambda: None)


def test_breaker_opens_on_the_failure_rate_of_recent_attempts() -> None:
    breaker = _breaker()
    _feed(breaker, "SSSSSSSSSF")  # 1 of 10 failed: 10% < 20%
    assert breaker.current_state == pybreaker.STATE_CLOSED
    _feed(breaker, "F")  # 2 of the last 10: 20%
    assert breaker.current_state == pybreaker.STATE_OPEN


def test_breaker_waits_for_enough_attempts_before_judging() -> None:
    breaker = _breaker()
    _feed(breaker, "FSS")  # 33% failed, but only 3 attempts seen (minimum 5)
    assert breaker.current_state == pybreaker.STATE_CLOSED
