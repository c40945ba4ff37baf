"""steady_state and guard against the real service and Redis behind the embedded proxy.

The bug: no timeout on the Redis client. Under a fault that makes Redis hang (a
``timeout`` toxic: the proxy accepts and forwards nothing), a service with a timeout
and a fallback keeps answering fast; one without hangs until the caller gives up.
"""

from __future__ import annotations

import re
import time

import pytest

from pytest_chaos.checks import GuardTripped, SteadyStateViolated

pytestmark = pytest.mark.chaos(blast_radius=["redis"])


def _probe(svc):
    return lambda: svc.ok("/item?key=k", timeout=1.5)


def test_steady_state_holds_with_a_timeout(chaos, service, redis_address) -> None:
    redis = chaos.proxy("redis", upstream=redis_address)
    svc = service(redis.address, "--timeout", "0.2", "--fallback")
    baseline = chaos.steady_state(_probe(svc), duration=0.5, concurrency=2, p99=0.5)
    assert baseline.measured["calls"] >= 4
    with redis.timeout():
        result = chaos.steady_state(_probe(svc), calls=6, p99=1.0, max_error_rate=0.0)
    assert result.measured["p50"] >= 0.15  # it did wait for Redis, then fell back
    assert result.measured["p99"] < 1.0


def test_steady_state_catches_a_missing_timeout(chaos, service, redis_address) -> None:
    redis = chaos.proxy("redis", upstream=redis_address)
    svc = service(redis.address, "--timeout", "none", "--fallback")
    chaos.steady_state(_probe(svc), calls=10, p99=0.5)
    with redis.timeout(), pytest.raises(SteadyStateViolated) as info:
        chaos.steady_state(_probe(svc), calls=3, p99=1.0)
    message = str(info.value)
    assert "error rate 1.00 > allowed 0.00 (3 of 3 calls failed" in message
    assert re.search(r"p99 \d+\.\d\d s > allowed 1\.00 s over 3 calls", message)
    assert info.value.measured["p99"] >= 1.4


def test_observe_during_a_fault_window(chaos, service, redis_address) -> None:
    redis = chaos.proxy("redis", upstream=redis_address)
    svc = service(redis.address, "--timeout", "0.2", "--fallback")
    with chaos.observe(_probe(svc), interval=0.02, p99=1.0) as obs, redis.timeout():
        time.sleep(0.8)
    assert obs.result is not None and obs.result.measured["calls"] >= 2
    assert any(s.latency >= 0.15 for s in chaos.timeline.samples)


def test_guard_trips_on_a_missing_timeout_and_heals(chaos, service, redis_address) -> None:
    redis = chaos.proxy("redis", upstream=redis_address)
    svc = service(redis.address, "--timeout", "none")
    fault = redis.timeout()
    with (
        pytest.raises(GuardTripped, match="guard tripped, test aborted") as info,
        chaos.guard(lambda: svc.ok("/item?key=k", timeout=0.5), interval=0.05) as g,
    ):
        deadline = time.monotonic() + 10
        while not g.breached and time.monotonic() < deadline:
            time.sleep(0.05)
    assert "TimeoutError" in str(info.value) or "timed out" in str(info.value)
    assert not fault.active and not chaos.active_faults
    assert chaos.aborted is not None
    (abort,) = chaos.timeline.of_kind("abort")
    assert abort.data["healed"] == [fault.id]
    # healed: a fresh request gets through again (the hung one stays hung: no timeout)
    assert svc.ok("/item?key=k", timeout=2.0)


def test_guard_does_not_cry_wolf_with_a_timeout(chaos, service, redis_address) -> None:
    redis = chaos.proxy("redis", upstream=redis_address)
    svc = service(redis.address, "--timeout", "0.2", "--fallback")
    with (
        chaos.guard(lambda: svc.ok("/item?key=k", timeout=1.0), interval=0.05) as g,
        redis.timeout(),
    ):
        time.sleep(1.0)
    assert not g.breached and len(g.calls) >= 2
    assert chaos.aborted is None


@pytest.mark.parametrize(
    ("timeout", "trips"),
    [("none", True), ("0.2", False)],
)
def test_guard_on_latency_under_a_slow_dependency(chaos, service, redis_address, timeout, trips):
    """latency(800) on Redis: without a timeout every call takes 0.8 s (> max_latency
    0.5 s, three in a row trips the guard); with a 0.2 s timeout and a fallback, none."""
    redis = chaos.proxy("redis", upstream=redis_address)
    svc = service(redis.address, "--timeout", timeout, "--fallback")
    probe = lambda: svc.ok("/item?key=k", timeout=5.0)  # noqa: E731
    with redis.latency(800):
        guarded = chaos.guard(probe, interval=0.0, consecutive=3, max_latency=0.5)
        if trips:
            with (
                pytest.raises(GuardTripped, match=r"3 bad probe call\(s\) in a row, last took"),
                guarded as g,
            ):
                deadline = time.monotonic() + 10
                while not g.breached and time.monotonic() < deadline:
                    time.sleep(0.05)
            assert chaos.aborted is not None and not chaos.active_faults
        else:
            with guarded as g:
                time.sleep(1.5)
            assert len(g.calls) >= 3 and chaos.aborted is None
