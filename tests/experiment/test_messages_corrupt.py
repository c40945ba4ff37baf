"""chaos.corrupt on a real Chaos controller (no server needed: message faults never
touch the proxy)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from pytest_chaos.errors import BlastRadiusError, ConfigurationError
from pytest_chaos.experiment import BlastRadius, ChaosSpec
from pytest_chaos.experiment._chaos import Chaos
from pytest_chaos.experiment._messages import Corrupter, corrupt_value

pytest.importorskip("hypothesis")
from hypothesis import given
from hypothesis import strategies as st


def make_chaos(seed: int = 7, targets: tuple[str, ...] = ("messages",), **limits: Any) -> Chaos:
    spec = ChaosSpec("t::test", BlastRadius(targets=list(targets), **limits))
    return Chaos(client=None, spec=spec, nodeid="t::test", seed=seed)  # type: ignore[arg-type]


class Inbox:
    """A consumer that keeps what it received."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def handle(self, message: Any, *rest: Any, **options: Any) -> str:
        self.seen.append(message)
        return f"got {len(self.seen)}"


def test_a_truncated_field_reaches_the_handler_and_the_caller_keeps_its_message() -> None:
    chaos = make_chaos()
    inbox = Inbox()
    event = {"id": "e1", "payload": '{"order": 42, "qty": 2}'}
    send = chaos.corrupt(inbox.handle, field="payload", mode="truncate")
    assert send(event) == "got 1"
    received = inbox.seen[0]
    assert received["id"] == "e1"
    assert len(received["payload"]) < len(event["payload"])
    assert event["payload"].startswith(received["payload"])
    assert event == {"id": "e1", "payload": '{"order": 42, "qty": 2}'}  # untouched
    (record,) = send.corruptions
    assert (record.index, record.field, record.mode) == (0, "payload", "truncate")
    assert record.original is event and record.after == received["payload"]


def test_flip_changes_exactly_one_bit_of_a_bytes_message() -> None:
    chaos = make_chaos()
    inbox = Inbox()
    send = chaos.corrupt(inbox.handle, mode="flip")
    send(b"\x00" * 16, "extra", key="k")
    (received,) = inbox.seen
    assert sum(bin(b).count("1") for b in received) == 1
    assert len(received) == 16


def test_healed_corrupter_passes_messages_through_and_the_timeline_shows_the_window() -> None:
    chaos = make_chaos()
    inbox = Inbox()
    with chaos.corrupt(inbox.handle, field="body") as send:
        send({"body": "abc"})
    send({"body": "abc"})
    assert inbox.seen[0]["body"] != "abc"
    assert inbox.seen[1] == {"body": "abc"}
    kinds = [(e.kind, e.name) for e in chaos.timeline.events]
    assert kinds == [("inject", "corrupt"), ("note", "corrupted_messages"), ("heal", "corrupt")]
    inject = chaos.timeline.events[0]
    assert inject.data["attributes"] == {
        "mode": "flip",
        "field": "body",
        "rate": 1.0,
        "handler": "Inbox.handle",
    }
    note = chaos.timeline.events[1]
    assert (note.data["calls"], note.data["corrupted"], note.data["indexes"]) == (1, 1, [0])
    assert not chaos.active_faults
    assert send.heal() is False


def test_teardown_heals_an_active_corrupter() -> None:
    chaos = make_chaos()
    send = chaos.corrupt(Inbox().handle)
    assert send.active
    chaos.heal_all(by="teardown")
    assert not send.active
    assert chaos.timeline.of_kind("heal")[0].data["by"] == "teardown"


def test_rate_corrupts_a_seeded_share_and_replays_exactly() -> None:
    def run(seed: int) -> list[int]:
        send = make_chaos(seed).corrupt(Inbox().handle, rate=0.25)
        for i in range(400):
            send(f"message {i}")
        return [c.index for c in send.corruptions]

    first, again, other = run(3), run(3), run(4)
    assert first == again
    assert first != other
    # Binomial(400, 0.25): mean 100, sd ~8.7; +-5 sd
    assert 57 <= len(first) <= 143


def test_corrupt_needs_the_target_in_the_blast_radius() -> None:
    chaos = make_chaos(targets=("redis",))
    with pytest.raises(BlastRadiusError, match="messages") as info:
        chaos.corrupt(Inbox().handle)
    assert "target=" in "".join(info.value.__notes__)
    stream = make_chaos(targets=("orders-stream",)).corrupt(Inbox().handle, target="orders-stream")
    assert stream.fault is not None and stream.fault.target == "orders-stream"


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"mode": "shuffle"}, "mode='shuffle'"),
        ({"rate": 2}, "rate=2"),
        ({"field": 3}, "field=3"),
    ],
)
def test_bad_corrupt_arguments_name_the_value(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigurationError, match=words):
        make_chaos().corrupt(Inbox().handle, **kwargs)
    with pytest.raises(ConfigurationError, match="not callable"):
        make_chaos().corrupt(None)  # type: ignore[arg-type]


def test_a_message_that_cannot_be_damaged_is_a_clear_error() -> None:
    send = make_chaos().corrupt(Inbox().handle, field="payload")
    with pytest.raises(ConfigurationError, match=r"field='payload' is not in .*'id'"):
        send({"id": "e1"})
    with pytest.raises(ConfigurationError, match="field 'payload' is int 7"):
        send({"payload": 7})
    with pytest.raises(ConfigurationError, match="without a message"):
        send()
    whole = make_chaos().corrupt(Inbox().handle)
    with pytest.raises(ConfigurationError, match="name a field with field="):
        whole({"payload": "x"})


def test_an_empty_value_passes_through_uncounted() -> None:
    inbox = Inbox()
    send = make_chaos().corrupt(inbox.handle, field="payload")
    send({"payload": ""})
    assert inbox.seen == [{"payload": ""}]
    assert send.corrupted == 0 and send.calls == 1


def test_async_handlers_get_an_async_corrupter() -> None:
    seen: list[str] = []

    async def handle(message: str) -> int:
        seen.append(message)
        return len(message)

    send = make_chaos().corrupt(handle, mode="truncate")
    assert isinstance(send, Corrupter)
    assert asyncio.run(send("abcdef")) < 6
    assert len(seen) == 1 and "abcdef".startswith(seen[0])


def test_corrupter_repr_shows_live_counts() -> None:
    send = make_chaos().corrupt(Inbox().handle, mode="truncate")
    send("abc")
    assert "calls=1 corrupted=1" in repr(send) and "active" in repr(send)


@given(
    st.one_of(st.text(min_size=1, max_size=40), st.binary(min_size=1, max_size=40)),
    st.sampled_from(["flip", "truncate"]),
    st.integers(0, 2**32),
)
def test_corrupt_value_always_damages_and_keeps_the_type(
    value: str | bytes, mode: str, seed: int
) -> None:
    after = corrupt_value(value, mode, random.Random(seed))
    assert type(after) is type(value)
    assert after != value
    if mode == "truncate":
        assert len(after) < len(value) and value.startswith(after)  # type: ignore[arg-type]
    else:
        assert len(after) == len(value)
        assert sum(a != b for a, b in zip(after, value, strict=True)) == 1
