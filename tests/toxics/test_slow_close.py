"""Each built-in toxic's behaviour, sans-IO, with an explicit clock."""

from __future__ import annotations

import pytest

from pytest_chaos.toxics import End, Piece

from ._helpers import chain, ends_of, run_until_idle


def test_slow_close_passes_data_and_delays_the_close() -> None:
    ch = chain(("slow_close", {"delay": 300}))
    ch.feed(Piece(b"bye", 1.0), 1.0)
    ch.feed(End("eof"), 1.0)
    out = run_until_idle(ch, start=1.0)
    assert out[0] == (1.0, Piece(b"bye", 1.0))
    assert ends_of(out) == [(pytest.approx(1.3), "eof")]
