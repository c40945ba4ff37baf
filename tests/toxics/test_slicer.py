"""Each built-in toxic's behaviour, sans-IO, with an explicit clock."""

from __future__ import annotations

import pytest

from pytest_chaos.toxics import Piece

from ._helpers import chain, data_of, run_until_idle, stage


def test_slicer_cuts_within_bounds_and_keeps_every_byte() -> None:
    ch = chain(("slicer", {"average_size": 10, "size_variation": 4, "delay": 1000}))
    payload = bytes(range(256)) * 4
    ch.feed(Piece(payload, 0.0), 0.0)
    out = run_until_idle(ch)
    sizes = [len(i.data) for _, i in out]  # type: ignore[union-attr]
    assert data_of(out) == payload
    assert all(6 <= n <= 14 for n in sizes[:-1])
    times = [t for t, _ in out]
    assert times[1] - times[0] == pytest.approx(0.001)  # delay is in microseconds


def test_slicing_is_lazy_and_bounded_per_poll() -> None:
    s = stage("slicer", average_size=1)
    s.accept(Piece(b"z" * 262_144, 0.0), 0.0)
    first = s.poll(0.0)
    assert len(first) == 1024  # one poll never returns more; the rest is due at once
    assert s.deadline() == 0.0
    assert s.buffered == 262_144 - 1024
    rest = s.drain()  # removal hands back the remainder in one piece
    assert rest == [Piece(b"z" * (262_144 - 1024), 0.0)]
    assert s.buffered == 0 and s.deadline() is None
