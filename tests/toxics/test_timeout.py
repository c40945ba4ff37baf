"""Each built-in toxic's behaviour, sans-IO, with an explicit clock."""

from __future__ import annotations

import pytest

from pytest_chaos.toxics import End, Piece

from ._helpers import stage


def test_timeout_drops_data_and_closes_after_silence() -> None:
    s = stage("timeout", now=0.0, timeout=200)
    assert s.deadline() == pytest.approx(0.2)
    s.accept(Piece(b"lost", 0.1), 0.1)  # data re-arms the timer
    assert s.poll(0.25) == []
    assert s.deadline() == pytest.approx(0.3)
    assert s.poll(0.3001) == [End("close")]


def test_timeout_zero_never_closes_but_passes_the_end() -> None:
    s = stage("timeout", timeout=0)
    s.accept(Piece(b"lost", 0.0), 0.0)
    assert s.deadline() is None
    assert s.poll(1e9) == []
    s.accept(End("eof"), 5.0)
    assert s.poll(5.0) == [End("eof")]


def test_removing_a_timeout_closes_only_if_it_dropped_data() -> None:
    clean = stage("timeout", timeout=0)
    assert clean.drain() == [] and clean.on_remove() == []
    dirty = stage("timeout", timeout=0)
    dirty.accept(Piece(b"lost", 0.0), 0.0)
    assert dirty.drain() == []
    assert dirty.on_remove() == [End("close")]
