"""circuit_breaker and retries, counted at the embedded proxy in front of a real Redis.

The service opens a fresh Redis connection per attempt, so the proxy's
``connections_accepted`` counts attempts. Under a ``timeout`` toxic every attempt that
reaches Redis hangs until the service's 0.5 s socket timeout; under ``reset_peer``
every attempt is reset at once.
"""

from __future__ import annotations

import pytest

from pytest_chaos.checks import CircuitBreakerViolated, RetriesViolated

from .conftest import BREAKER, reads_redis

pytestmark = pytest.mark.chaos(blast_radius=["redis"])


def test_a_good_breaker_opens_fails_fast_and_closes(chaos, service, redis_address) -> None:
    redis = chaos.proxy("redis", upstream=redis_address)
    svc = service(redis.address, "--breaker", "good", *BREAKER)
    with redis.timeout() as fault:
        result = chaos.circuit_breaker(
            reads_redis(svc),
            proxy=redis,
            opens_within_calls=3,
            fail_fast=0.25,
            reset_timeout=1.0,
            fault=fault,
        )
    m = result.measured
    assert m["opened_after_calls"] == 3 and m["reached_while_closed"] == 3
    assert m["fail_fast_max"] < 0.25
    assert m["half_open_after"] >= 0.3  # the breaker waited for (most of) its 1 s reset
    assert m["half_open_after"] <= m["closed_after"] <= 3.0
    assert not fault.active


def test_no_breaker_is_caught(chaos, service, redis_address) -> None:
    redis = chaos.proxy("redis", upstream=redis_address)
    svc = service(redis.address, "--breaker", "none", *BREAKER)
    with redis.timeout(), pytest.raises(CircuitBreakerViolated) as info:
        chaos.circuit_breaker(reads_redis(svc), proxy=redis, opens_within_calls=3, fail_fast=0.25)
    message = str(info.value)
    assert "did not open within 3 calls: call 4 failed (returned False) after " in message
    assert "connections_accepted +1" in message
    assert "4 of 4 calls reached" in message
    assert info.value.measured["slowest"] >= 0.45


def test_a_breaker_that_never_half_opens_is_caught(chaos, service, redis_address) -> None:
    redis = chaos.proxy("redis", upstream=redis_address)
    svc = service(redis.address, "--breaker", "stuck", *BREAKER)
    with redis.timeout() as fault, pytest.raises(CircuitBreakerViolated) as info:
        chaos.circuit_breaker(
            reads_redis(svc),
            proxy=redis,
            opens_within_calls=3,
            fail_fast=0.25,
            reset_timeout=1.0,
            closes_within=2.5,
            fault=fault,
        )
    message = str(info.value)
    assert "opened after 3 calls" in message
    assert "never let a trial call through after heal" in message
    assert info.value.measured["reached_after_heal"] == 0
    assert info.value.measured["calls_after_heal"] >= 5
    # the dependency itself is fine again: only the service's breaker is stuck
    assert not chaos.active_faults


def _pybreaker():
    pybreaker = pytest.importorskip("pybreaker")
    breaker = pybreaker.CircuitBreaker(fail_max=2, reset_timeout=1.0, name="redis")
    return breaker, lambda fn: breaker.call(fn)


def _circuitbreaker():
    circuitbreaker = pytest.importorskip("circuitbreaker")
    breaker = circuitbreaker.CircuitBreaker(
        failure_threshold=2, recovery_timeout=1.0, expected_exception=Exception, name="redis"
    )
    # the decorator, not breaker.call(): call() never refuses, even when open (the
    # black-box check catches that misuse: "did not open within 2 calls")
    return breaker, lambda fn: breaker(fn)()


def _purgatory():
    purgatory = pytest.importorskip("purgatory")
    factory = purgatory.SyncCircuitBreakerFactory(default_threshold=2, default_ttl=1.0)

    def guarded(fn):
        with factory.get_breaker("redis"):
            return fn()

    return factory, guarded


@pytest.mark.parametrize("library", [_pybreaker, _circuitbreaker, _purgatory])
def test_in_process_breakers_with_their_transitions(chaos, redis_address, library) -> None:
    import redis as redis_py
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    proxy = chaos.proxy("redis", upstream=redis_address)
    host, port = proxy.address.rsplit(":", 1)
    breaker, guarded = library()

    def call() -> object:
        # a fresh connection per call, so each attempt shows at the proxy
        client = redis_py.Redis(
            host=host, port=int(port), socket_timeout=0.3, retry=Retry(NoBackoff(), 0)
        )
        try:
            return guarded(lambda: client.get("k"))
        finally:
            client.close()

    with proxy.timeout() as fault:
        result = chaos.circuit_breaker(
            call,
            proxy=proxy,
            opens_within_calls=2,
            fail_fast=0.2,
            reset_timeout=1.0,
            fault=fault,
            breaker=breaker,
        )
    transitions = result.measured["transitions"]
    # circuitbreaker is polled, so a short half-open may pass unseen
    assert transitions[0] == "open" and transitions[-1] == "closed"
    assert set(transitions) <= {"open", "half-open", "closed"}
    notes = [e.data["to_state"] for e in chaos.timeline.of_kind("note") if e.name == "breaker"]
    assert notes == transitions
    assert not getattr(breaker, "listeners", None)


def test_bounded_retries_with_backoff_pass(chaos, service, redis_address) -> None:
    redis = chaos.proxy("redis", upstream=redis_address)
    svc = service(redis.address, "--retry", "backoff", "--timeout", "0.5")
    with redis.reset_peer():
        result = chaos.retries(reads_redis(svc), proxy=redis, calls=3, max_attempts_per_call=3)
    assert result.measured["attempts"] == 9
    assert result.measured["failed_calls"] == 3


def test_bounded_retries_without_backoff_are_caught_by_the_gap(
    chaos, service, redis_address
) -> None:
    """Three attempts per call is within the bound, but all three come in a burst."""
    redis = chaos.proxy("redis", upstream=redis_address)
    svc = service(redis.address, "--retry", "eager", "--timeout", "0.5")
    with redis.reset_peer(), pytest.raises(RetriesViolated) as info:
        chaos.retries(
            reads_redis(svc), proxy=redis, calls=3, max_attempts_per_call=3, min_retry_gap=0.03
        )
    m = info.value.measured
    assert m["attempts"] == 9 and m["retry_gap"] < 0.03
    assert "6 retries reached 'redis'" in str(info.value)
    assert "< allowed gap 0.030 s (no backoff?" in str(info.value)


def test_retries_with_backoff_keep_the_gap(chaos, service, redis_address) -> None:
    redis = chaos.proxy("redis", upstream=redis_address)
    svc = service(redis.address, "--retry", "backoff", "--timeout", "0.5")
    with redis.reset_peer():
        result = chaos.retries(
            reads_redis(svc), proxy=redis, calls=3, max_attempts_per_call=3, min_retry_gap=0.03
        )
    # backoff sleeps 0.05 s then 0.1 s: 0.075 s between retries on average, at least
    assert result.passed and result.measured["retry_gap"] >= 0.07


def test_a_retry_storm_is_caught(chaos, service, redis_address) -> None:
    redis = chaos.proxy("redis", upstream=redis_address)
    svc = service(redis.address, "--retry", "storm", "--timeout", "0.5")
    with redis.reset_peer(), pytest.raises(RetriesViolated) as info:
        chaos.retries(reads_redis(svc), proxy=redis, calls=2, max_attempts_per_call=3)
    m = info.value.measured
    assert m["attempts_per_call"] > 10
    assert f"{m['attempts']} attempts reached 'redis' for 2 calls" in str(info.value)
    assert "> allowed 3 (connections_accepted;" in str(info.value)


def test_retries_without_a_fault_is_one_attempt_per_call(chaos, service, redis_address) -> None:
    redis = chaos.proxy("redis", upstream=redis_address)
    svc = service(redis.address, "--retry", "storm")
    result = chaos.retries(reads_redis(svc), proxy=redis, calls=4, max_attempts_per_call=1)
    assert result.measured["attempts"] == 4 and result.measured["failed_calls"] == 0


def test_a_breaker_library_misused_is_caught(chaos, redis_address) -> None:
    """circuitbreaker's ``call()`` counts failures but never refuses a call."""
    circuitbreaker = pytest.importorskip("circuitbreaker")
    import redis as redis_py
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    proxy = chaos.proxy("redis", upstream=redis_address)
    host, port = proxy.address.rsplit(":", 1)
    breaker = circuitbreaker.CircuitBreaker(
        failure_threshold=2, recovery_timeout=5, expected_exception=Exception, name="redis"
    )

    def call() -> object:
        client = redis_py.Redis(
            host=host, port=int(port), socket_timeout=0.3, retry=Retry(NoBackoff(), 0)
        )
        try:
            return breaker.call(client.get, "k")
        finally:
            client.close()

    with proxy.timeout(), pytest.raises(CircuitBreakerViolated) as info:
        chaos.circuit_breaker(
            call, proxy=proxy, opens_within_calls=2, fail_fast=0.2, breaker=breaker
        )
    assert "did not open within 2 calls: call 3 failed (TimeoutError" in str(info.value)
    # the library itself believes it is open: only the black-box view shows the truth
    assert info.value.measured["transitions"] == ["open"]
