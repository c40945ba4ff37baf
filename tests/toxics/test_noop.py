"""Each built-in toxic's behaviour, sans-IO, with an explicit clock."""

from __future__ import annotations

from pytest_chaos.toxics import End, Piece

from ._helpers import stage


def test_noop_passes_everything_at_once() -> None:
    s = stage("noop")
    s.accept(Piece(b"abc", 0.0), 0.0)
    s.accept(End("eof"), 0.0)
    assert s.poll(0.0) == [Piece(b"abc", 0.0), End("eof")]
    assert s.deadline() is None
