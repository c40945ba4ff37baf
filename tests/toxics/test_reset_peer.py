"""Each built-in toxic's behaviour, sans-IO, with an explicit clock."""

from __future__ import annotations

from pytest_chaos.toxics import End, Piece

from ._helpers import stage


def test_reset_peer_resets_after_the_first_data() -> None:
    s = stage("reset_peer", timeout=100)
    assert s.deadline() is None  # nothing happens before data
    s.accept(Piece(b"hello", 1.0), 1.0)
    s.accept(Piece(b"more", 1.05), 1.05)
    assert s.poll(1.09) == []
    assert s.poll(1.1) == [End("reset")]  # the data never went through


def test_reset_peer_also_fires_on_the_close() -> None:
    s = stage("reset_peer", timeout=0)
    s.accept(End("eof"), 2.0)
    assert s.poll(2.0) == [End("reset")]
