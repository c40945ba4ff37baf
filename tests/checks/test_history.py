from __future__ import annotations

import functools

import pytest

from pytest_chaos.checks import History, HistoryViolated
from pytest_chaos.errors import CheckError
from pytest_chaos.timeline import Timeline


def test_history_finds_lost_and_duplicated_writes() -> None:
    store: dict[str, list[int]] = {"k": []}
    h = History(timeline=Timeline())
    for v in range(5):
        h.write("k", v, functools.partial(store["k"].append, v))
    h.write("k", 5, lambda: True)  # acknowledged, never stored: lost
    store["k"].append(2)  # stored twice: duplicated

    def refused() -> None:
        raise ConnectionRefusedError

    def timed_out() -> None:
        store["k"].append(7)
        raise TimeoutError

    h.write("k", 6, refused)
    h.write("k", 7, timed_out)
    assert [op.outcome for op in h.ops[-2:]] == ["fail", "unknown"]
    with pytest.raises(HistoryViolated) as info:
        h.check(lambda key: store[key])
    msg = str(info.value)
    assert "1 of 6 acknowledged writes lost (key 'k': 5)" in msg
    assert "1 values duplicated (key 'k': 2 present 2x, written 1x)" in msg
    assert "8 writes: 6 ack, 1 fail, 1 unknown (1 of those present)" in msg


def test_history_without_losses_passes() -> None:
    store: list[int] = []
    h = History()
    for v in range(3):
        h.write("k", v, functools.partial(store.append, v))
    assert h.check({"k": store}).passed


def test_history_without_writes_is_a_check_error() -> None:
    with pytest.raises(CheckError, match="no write was recorded"):
        History().check(lambda key: [])
