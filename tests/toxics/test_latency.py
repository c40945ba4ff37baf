"""Each built-in toxic's behaviour, sans-IO, with an explicit clock."""

from __future__ import annotations

import pytest

from pytest_chaos.toxics import Piece

from ._helpers import chain, run_until_idle, stage


def test_latency_holds_each_chunk_from_its_read_time() -> None:
    s = stage("latency", latency=100)
    s.accept(Piece(b"a", 0.0), 0.0)
    s.accept(Piece(b"b", 0.05), 0.05)
    assert s.poll(0.099) == []
    assert s.deadline() == pytest.approx(0.1)
    assert [p.data for p in s.poll(0.1)] == [b"a"]  # type: ignore[union-attr]
    # the second chunk waits from its own read time: throughput is not reduced
    assert s.deadline() == pytest.approx(0.15)
    assert [p.data for p in s.poll(0.1501)] == [b"b"]  # type: ignore[union-attr]


def test_latency_counts_from_the_read_even_when_it_arrives_late() -> None:
    s = stage("latency", latency=100)
    s.accept(Piece(b"a", 0.0), 0.08)  # read at 0, reached this stage at 0.08
    assert s.deadline() == pytest.approx(0.1)


def test_two_latencies_add_up() -> None:
    ch = chain(("latency", {"latency": 100}), ("latency", {"latency": 50}))
    ch.feed(Piece(b"x", 0.0), 0.0)
    out = run_until_idle(ch)
    assert len(out) == 1
    t, item = out[0]
    assert isinstance(item, Piece) and item.data == b"x"
    assert t == pytest.approx(0.15) and item.stamp == pytest.approx(0.15)


def test_jitter_stays_in_bounds_and_keeps_order() -> None:
    s = stage("latency", latency=100, jitter=50)
    for k in range(200):
        s.accept(Piece(bytes([k]), k * 0.001), k * 0.001)
    due = [t for t, _ in s._out]
    assert due == sorted(due)
    for k, t in enumerate(due):
        assert t >= k * 0.001 + 0.05 - 1e-9
        assert t <= max(due[: k + 1])
    assert max(t - k * 0.001 for k, t in enumerate(due)) <= 0.15 + 1e-9
    assert len({round(t - k * 0.001, 6) for k, t in enumerate(due)}) > 10  # it does vary
