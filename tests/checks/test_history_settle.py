"""history.check(read, settle=S): reads that lag behind acknowledgements are re-read
until the verdict stops changing, instead of a guessed sleep."""

from __future__ import annotations

import functools
import itertools
import time

import pytest

from pytest_chaos.checks import History, HistoryViolated
from pytest_chaos.errors import CheckError


class LaggingReplica:
    """Acknowledges at once, shows writes to readers ``lag`` seconds later; loses one."""

    def __init__(self, lag: float) -> None:
        self.lag = lag
        self.writes: list[tuple[float, str]] = []

    def write(self, value: str) -> None:
        if value != "w-13":  # acknowledged, never stored
            self.writes.append((time.monotonic(), value))

    def read(self, key: str) -> list[str]:
        now = time.monotonic()
        return [value for at, value in self.writes if now - at >= self.lag]


def _record(replica: LaggingReplica) -> History:
    history = History()
    for i in range(26):
        history.write("orders", f"w-{i}", functools.partial(replica.write, f"w-{i}"))
    return history


def test_without_settle_a_lagging_read_looks_like_every_write_was_lost() -> None:
    replica = LaggingReplica(lag=0.5)
    with pytest.raises(HistoryViolated, match="26 of 26 acknowledged writes lost"):
        _record(replica).check(replica.read)


def test_settle_rereads_until_the_verdict_stops_changing() -> None:
    replica = LaggingReplica(lag=0.5)
    history = _record(replica)
    with pytest.raises(HistoryViolated) as info:
        history.check(replica.read, settle=1.0)
    message = str(info.value)
    assert "1 of 26 acknowledged writes lost (key 'orders': 'w-13')" in message
    assert "settled after" in message and "settle=1 s" in message
    assert info.value.measured["reads"] >= 3  # all lost, then 1 lost, then 1 lost again


def test_a_settled_pass_says_how_long_it_took() -> None:
    rows: list[str] = []
    history = History()
    history.write("k", "a", lambda: rows.append("a"))
    result = history.check(lambda key: rows, settle=0.05)
    assert result.passed
    assert result.measured["reads"] == 2 and result.measured["settled_after"] >= 0.05
    assert "settled after" in result.message and "(2 reads, settle=0.05 s)" in result.message


def test_a_verdict_that_never_settles_is_judged_on_the_last_read_and_says_so() -> None:
    counter = itertools.count()
    history = History()
    history.write("k", "a", lambda: None)
    # a value nobody wrote, a new one at every read
    with pytest.raises(HistoryViolated) as info:
        history.check(lambda key: ["a", f"ghost-{next(counter)}"], settle=0.01)
    assert "did not settle: the verdict still changed after 20 reads" in str(info.value)
    assert "'ghost-19' present 1x, written 0x" in str(info.value)


def test_a_negative_settle_is_refused() -> None:
    history = History()
    history.write("k", "a", lambda: None)
    with pytest.raises(CheckError, match="settle"):
        history.check({"k": ["a"]}, settle=-1)
