"""Each built-in toxic's behaviour, sans-IO, with an explicit clock."""

from __future__ import annotations

import pytest

from pytest_chaos.toxics import End, Piece

from ._helpers import chain, data_of, ends_of, run_until_idle, stage


def test_bandwidth_releases_bytes_at_the_rate() -> None:
    ch = chain(("bandwidth", {"rate": 100}))  # 100 KB/s = 100,000 bytes/s
    ch.feed(Piece(b"x" * 50_000, 0.0), 0.0)
    out = run_until_idle(ch)
    assert data_of(out) == b"x" * 50_000
    assert out[-1][0] == pytest.approx(0.5)
    # cut into 100 ms slices, so bytes flow steadily
    assert [len(i.data) for _, i in out] == [10_000] * 5  # type: ignore[union-attr]
    assert [round(t, 6) for t, _ in out] == [0.1, 0.2, 0.3, 0.4, 0.5]


def test_bandwidth_queues_chunks_behind_each_other_and_credits_no_idle_time() -> None:
    s = stage("bandwidth", rate=10)  # 10,000 bytes/s
    s.accept(Piece(b"a" * 1000, 0.0), 0.0)
    s.accept(Piece(b"b" * 1000, 0.0), 0.0)
    assert s.deadline() == pytest.approx(0.1)
    assert s.poll(0.1) == [Piece(b"a" * 1000, 0.0)]
    assert s.deadline() == pytest.approx(0.2)
    assert s.poll(1.0) == [Piece(b"b" * 1000, 0.0)]
    s.accept(Piece(b"c" * 1000, 5.0), 5.0)
    assert s.deadline() == pytest.approx(5.1)


def test_bandwidth_end_follows_the_last_slice() -> None:
    ch = chain(("bandwidth", {"rate": 10}))
    ch.feed(Piece(b"q" * 2500, 0.0), 0.0)
    ch.feed(End("eof"), 0.0)
    out = run_until_idle(ch)
    assert data_of(out) == b"q" * 2500
    assert ends_of(out) == [(pytest.approx(0.25), "eof")]
