"""Each built-in toxic's behaviour, sans-IO, with an explicit clock."""

from __future__ import annotations

from pytest_chaos.toxics import End, Piece

from ._helpers import chain, data_of, ends_of, link, run_until_idle, stage


def test_limit_data_cuts_at_exactly_n_bytes_then_closes() -> None:
    ch = chain(("limit_data", {"bytes": 25}))
    for k in range(5):
        ch.feed(Piece(bytes([65 + k]) * 10, 0.0), 0.0)
    out = run_until_idle(ch)
    assert data_of(out) == b"A" * 10 + b"B" * 10 + b"C" * 5
    assert ends_of(out) == [(0.0, "close")]


def test_limit_data_keeps_its_count_when_restarted() -> None:
    cls_stage = stage("limit_data", bytes=10)
    cls_stage.accept(Piece(b"1234567", 0.0), 0.0)
    from pytest_chaos.toxics import get_toxic_class

    cls = get_toxic_class("limit_data")
    assert cls is not None
    again = cls.from_attributes({"bytes": 10}).start(link(), 0.0, cls_stage)
    again.accept(Piece(b"abcdef", 0.0), 0.0)
    items = again.poll(0.0)
    assert items == [Piece(b"abc", 0.0), End("close")]


def test_limit_data_zero_closes_on_first_data() -> None:
    s = stage("limit_data", bytes=0)
    s.accept(Piece(b"x", 0.0), 0.0)
    assert s.poll(0.0) == [End("close")]
