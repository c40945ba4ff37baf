"""idempotent(effect=..., first_effect=...): the first delivery's own effect is bounded.

The replays alone cannot see a first delivery that already did the work twice: a
payment call retried on timeout without an idempotency key charges twice, and every
replay is then deduplicated. Live against the service's POST /pay (a Redis set of
charges behind a latency fault that makes each attempt time out after its write), and
over fakes for the arguments.
"""

from __future__ import annotations

import uuid

import pytest

from pytest_chaos.checks import IdempotencyViolated, idempotent
from pytest_chaos.errors import CheckError

pytestmark = pytest.mark.chaos(blast_radius=["redis"])


def _pay(svc, order: str, key: str):
    def action() -> None:
        svc.post(f"/pay?order={order}&key={key}", timeout=5.0)  # 503 after two timeouts

    return action


def _setup(chaos, service, redis_address, redis_direct, payment: str):
    redis = chaos.proxy("redis", upstream=redis_address)
    svc = service(redis.address, "--payment", payment, "--timeout", "0.3")
    order = uuid.uuid4().hex

    def state() -> list[str]:
        return sorted(redis_direct.smembers(f"payments:{order}"))

    # Each attempt's SADD reaches Redis; its answer comes after the 0.3 s timeout.
    return redis, _pay(svc, order, "key-1"), state


def test_a_charge_retried_with_its_key_passes(chaos, service, redis_address, redis_direct) -> None:
    redis, action, state = _setup(chaos, service, redis_address, redis_direct, "keyed")
    result = chaos.idempotent(
        action, state=state, via=lambda: redis.latency(600), effect=len, first_effect=1
    )
    assert result.measured["first_effect"] == 1
    assert state() == ["key-1"]


def test_a_charge_retried_without_a_key_is_caught(
    chaos, service, redis_address, redis_direct
) -> None:
    redis, action, state = _setup(chaos, service, redis_address, redis_direct, "unkeyed")
    with pytest.raises(IdempotencyViolated) as info:
        chaos.idempotent(action, state=state, via=lambda: redis.latency(600), effect=len)
    message = str(info.value)
    assert "the first delivery via <Fault" in message
    assert "changed effect(state) by 2 (0 -> 2), allowed 1" in message
    assert info.value.measured["first_effect"] == 2
    assert "changed_by_duplicates" in info.value.measured  # the replays changed nothing
    assert info.value.measured["changed_by_duplicates"] == ""


def test_without_effect_the_replays_alone_miss_it(
    chaos, service, redis_address, redis_direct
) -> None:
    """Why effect= exists: the replay is deduplicated, so the double charge passes."""
    redis, action, state = _setup(chaos, service, redis_address, redis_direct, "unkeyed")
    result = chaos.idempotent(action, state=state, via=lambda: redis.latency(600))
    assert len(state()) == 2 and result.passed


class _Ledger:
    def __init__(self, per_call: int) -> None:
        self.rows: list[int] = []
        self.per_call = per_call
        self.calls = 0

    def charge(self) -> None:
        self.calls += 1
        if self.calls == 1:  # only the first delivery misbehaves; replays are deduplicated
            self.rows += [self.calls] * self.per_call


@pytest.mark.parametrize(
    ("per_call", "first_effect", "passed"),
    [(1, 1, True), (2, 1, False), (2, (1, 2), True), (3, (1, 2), False), (0, (0, 1), True)],
)
def test_first_effect_exact_or_a_range(per_call: int, first_effect, passed: bool) -> None:
    ledger = _Ledger(per_call)
    run = lambda: idempotent(  # noqa: E731
        ledger.charge,
        state=lambda: list(ledger.rows),
        effect=len,
        first_effect=first_effect,
        require_effect=False,
    )
    if passed:
        assert run().measured["first_effect"] == per_call
    else:
        with pytest.raises(IdempotencyViolated, match=f"changed effect\\(state\\) by {per_call}"):
            run()


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"effect": 3}, "effect=3 must be a callable"),
        ({"effect": len, "first_effect": "one"}, "first_effect='one' is not allowed"),
        ({"effect": len, "first_effect": (2, 1)}, "low is above high"),
        ({"effect": lambda s: "many"}, "it must return a number"),
    ],
)
def test_bad_effect_arguments_are_check_errors(kwargs, word: str) -> None:
    rows: list[int] = []
    with pytest.raises(CheckError, match=word.replace("(", "\\(").replace(")", "\\)")):
        idempotent(lambda: rows.append(1), state=lambda: list(rows), **kwargs)
