"""chaos.duplicate and chaos.reorder on a real Chaos controller (no server needed:
message faults never touch the proxy)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pytest_chaos.errors import BlastRadiusError, ConfigurationError
from pytest_chaos.experiment import BlastRadius, ChaosSpec
from pytest_chaos.experiment._chaos import Chaos
from pytest_chaos.experiment._messages import Duplicator, bounded_permutation

pytest.importorskip("hypothesis")
from hypothesis import given, settings
from hypothesis import strategies as st


def make_chaos(seed: int = 7, targets: tuple[str, ...] = ("messages",), **limits: Any) -> Chaos:
    spec = ChaosSpec("t::test", BlastRadius(targets=list(targets), **limits))
    return Chaos(client=None, spec=spec, nodeid="t::test", seed=seed)  # type: ignore[arg-type]


class Inbox:
    """A consumer that is not idempotent: it appends every delivery."""

    def __init__(self) -> None:
        self.seen: list[object] = []

    def handle(self, message: object) -> str:
        self.seen.append(message)
        return f"ok {message}"


def test_duplicate_delivers_each_message_copies_times_and_returns_the_first_result() -> None:
    chaos = make_chaos()
    inbox = Inbox()
    consume = chaos.duplicate(inbox.handle, copies=3)
    assert consume("a") == "ok a"
    consume("b")
    assert inbox.seen == ["a", "a", "a", "b", "b", "b"]
    assert (consume.calls, consume.deliveries, consume.duplicated) == (2, 6, 2)


def test_healed_duplicator_delivers_once_and_the_timeline_shows_the_window() -> None:
    chaos = make_chaos()
    inbox = Inbox()
    with chaos.duplicate(inbox.handle) as consume:
        consume(1)
    consume(2)
    assert inbox.seen == [1, 1, 2]
    kinds = [(e.kind, e.name) for e in chaos.timeline.events]
    assert kinds == [
        ("inject", "duplicate"),
        ("note", "duplicate_deliveries"),
        ("heal", "duplicate"),
    ]
    inject = chaos.timeline.events[0]
    assert inject.target == "messages"
    assert inject.data["attributes"]["copies"] == 2
    assert chaos.timeline.events[1].data["deliveries"] == 2
    assert not chaos.active_faults
    assert consume.heal() is False  # twice is harmless


def test_teardown_heals_an_active_duplicator() -> None:
    chaos = make_chaos()
    consume = chaos.duplicate(Inbox().handle)
    assert consume.active
    chaos.heal_all(by="teardown")
    assert not consume.active
    assert chaos.timeline.of_kind("heal")[0].data["by"] == "teardown"


def test_rate_duplicates_a_seeded_share_and_replays_exactly() -> None:
    def run(seed: int) -> list[object]:
        inbox = Inbox()
        consume = make_chaos(seed).duplicate(inbox.handle, rate=0.3)
        for i in range(400):
            consume(i)
        return inbox.seen

    first, again, other = run(11), run(11), run(12)
    assert first == again
    assert first != other
    extra = len(first) - 400
    # Binomial(400, 0.3): mean 120, sd ~9.2; +-5 sd is a bound a correct draw never misses.
    assert 74 <= extra <= 166


def test_duplicate_needs_the_target_in_the_blast_radius() -> None:
    chaos = make_chaos(targets=("redis",))
    with pytest.raises(BlastRadiusError, match="messages") as info:
        chaos.duplicate(Inbox().handle)
    assert "target=" in "".join(info.value.__notes__)
    queue = make_chaos(targets=("orders-queue",))
    consume = queue.duplicate(Inbox().handle, target="orders-queue")
    assert consume.fault is not None and consume.fault.target == "orders-queue"


def test_duplicate_counts_against_max_concurrent_faults() -> None:
    chaos = make_chaos(max_concurrent_faults=1)
    chaos.duplicate(Inbox().handle)
    with pytest.raises(BlastRadiusError):
        chaos.duplicate(Inbox().handle)


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"copies": 1}, "copies=1"),
        ({"copies": 2.0}, "copies=2.0"),
        ({"rate": 1.5}, "rate=1.5"),
        ({"rate": -0.1}, "rate=-0.1"),
    ],
)
def test_bad_duplicate_arguments_name_the_value(kwargs: dict[str, Any], word: str) -> None:
    with pytest.raises(ConfigurationError, match=word.replace(".", r"\.")):
        make_chaos().duplicate(Inbox().handle, **kwargs)
    with pytest.raises(ConfigurationError, match="not callable"):
        make_chaos().duplicate("handler")  # type: ignore[arg-type]


def test_an_exception_from_a_copy_reaches_the_caller() -> None:
    seen: set[str] = set()

    def insert(key: str) -> None:
        if key in seen:
            raise KeyError(f"duplicate key {key}")
        seen.add(key)

    consume = make_chaos().duplicate(insert)
    with pytest.raises(KeyError, match="duplicate key k1"):
        consume("k1")


def test_async_handlers_get_an_async_duplicator() -> None:
    inbox = Inbox()

    async def handle(message: object) -> str:
        await asyncio.sleep(0)
        return inbox.handle(message)

    consume = make_chaos().duplicate(handle, copies=2)
    assert asyncio.run(consume("m")) == "ok m"
    assert inbox.seen == ["m", "m"]
    # functools.update_wrapper copies __name__ at run time; Duplicator does not declare it
    assert consume.__name__ == "handle"  # type: ignore[attr-defined]


def test_duplicator_repr_shows_live_counts() -> None:
    consume = make_chaos().duplicate(Inbox().handle)
    consume(1)
    text = repr(consume)
    assert "active" in text and "calls=1" in text and "deliveries=2" in text
    assert isinstance(consume, Duplicator)


def test_the_idempotency_check_heals_the_duplicator_after_the_first_delivery() -> None:
    from pytest_chaos.checks import idempotent

    inbox = Inbox()
    consume = make_chaos().duplicate(inbox.handle)
    # A non-idempotent consumer: the duplicate shows up in the state.
    result = idempotent(
        lambda: consume("pay"), state=lambda: list(inbox.seen), via=consume, times=2,
        finish=lambda r: None,
    )  # fmt: skip
    assert not consume.active
    assert inbox.seen == ["pay", "pay", "pay"]
    assert result.passed is False


@pytest.mark.parametrize("window", [0, 1, 3, 10])
def test_reorder_moves_nothing_further_than_window(window: int) -> None:
    chaos = make_chaos()
    messages = [f"m{i}" for i in range(300)]
    out = chaos.reorder(messages, window=window)
    assert sorted(out) == sorted(messages)
    assert max(abs(i - messages.index(m)) for i, m in enumerate(out)) <= window
    note = chaos.timeline.of_kind("note")[-1]
    assert note.name == "reorder" and note.data["window"] == window
    assert note.data["max_displacement"] <= window
    if window == 0:
        assert out == messages
    else:
        assert note.data["moved"] > 0
        assert [messages[i] for i in note.data["order"]] == out


def test_reorder_is_deterministic_under_a_seed() -> None:
    batch = list(range(50))
    assert make_chaos(3).reorder(batch) == make_chaos(3).reorder(batch)
    assert make_chaos(3).reorder(batch) != make_chaos(4).reorder(batch)
    assert make_chaos(3).reorder(batch, seed=99) == make_chaos(5).reorder(batch, seed=99)


def test_reorder_reaches_the_window_edge_over_many_draws() -> None:
    import random

    rng = random.Random(0)
    worst = max(
        max(abs(p - i) for p, i in enumerate(bounded_permutation(40, 3, rng))) for _ in range(200)
    )
    assert worst == 3


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_bad_window_names_the_value(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="window"):
        make_chaos().reorder([1, 2], window=bad)  # type: ignore[arg-type]


def test_reorder_rejects_a_string() -> None:
    with pytest.raises(ConfigurationError, match="messages="):
        make_chaos().reorder("abc")


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 200), st.integers(0, 20), st.integers(0, 2**32))
def test_bounded_permutation_property(n: int, window: int, seed: int) -> None:
    import random

    order = bounded_permutation(n, window, random.Random(seed))
    assert sorted(order) == list(range(n))
    assert all(abs(pos - i) <= window for pos, i in enumerate(order))
