"""Each built-in toxic's behaviour, sans-IO, with an explicit clock."""

from __future__ import annotations

from pytest_chaos.toxics import Chain, End, Piece

from ._helpers import chain, run_until_idle, stage


def test_input_after_the_end_is_ignored() -> None:
    s = stage("latency", latency=10)
    s.accept(End("eof"), 0.0)
    s.accept(Piece(b"late", 0.0), 0.0)
    assert s.poll(1.0) == [End("eof")]


def test_chain_drain_hands_back_data_oldest_first() -> None:
    ch = chain(("latency", {"latency": 100}), ("bandwidth", {"rate": 1}))
    ch.feed(Piece(b"first", 0.0), 0.0)
    run_until_idle(ch, limit=0.1)  # "first" now sits in the bandwidth stage
    ch.feed(Piece(b"second", 0.1), 0.1)  # "second" sits in the latency stage
    assert [i.data for i in ch.drain()] == [b"first", b"second"]  # type: ignore[union-attr]
    assert ch.buffered() == 0


def test_chain_buffered_counts_held_bytes() -> None:
    ch = chain(("latency", {"latency": 100}))
    ch.feed(Piece(b"x" * 1000, 0.0), 0.0)
    assert ch.buffered() == 1000
    run_until_idle(ch)
    assert ch.buffered() == 0


def test_empty_stage_chain_is_allowed_for_drain() -> None:
    assert Chain([]).drain() == []
