"""Property: non-destructive toxic chains deliver every byte, in order, then the end.

Random payloads cut into random chunks go through random chains of latency (with
jitter), bandwidth, slicer, slow_close and noop, in both directions; the chain may be
rebuilt mid-stream (as when a toxic is added or removed on an open connection).
"""

from __future__ import annotations

import random

import pytest

from pytest_chaos.toxics import Chain, ConnectionContext, End, LinkContext, Piece, get_toxic_class

pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

_SPECS: st.SearchStrategy[tuple[str, dict[str, int]]] = st.one_of(
    st.tuples(
        st.just("latency"),
        st.fixed_dictionaries({"latency": st.integers(0, 200), "jitter": st.integers(0, 100)}),
    ),
    st.tuples(st.just("bandwidth"), st.fixed_dictionaries({"rate": st.integers(1, 100)})),
    st.tuples(
        st.just("slicer"),
        st.fixed_dictionaries(
            {
                "average_size": st.integers(1, 64),
                "size_variation": st.integers(0, 64),
                "delay": st.integers(0, 2000),
            }
        ),
    ),
    st.tuples(st.just("slow_close"), st.fixed_dictionaries({"delay": st.integers(0, 500)})),
    st.tuples(st.just("noop"), st.just({})),
)


def _build(specs: list[tuple[str, dict[str, int]]], ctx: LinkContext, now: float) -> Chain:
    stages = []
    for name, attributes in specs:
        cls = get_toxic_class(name)
        assert cls is not None
        stages.append(cls.from_attributes(attributes).start(ctx, now, None))
    return Chain(stages)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    # Sizes drawn uniformly (st.binary favours tiny payloads); content from a seed.
    payload=st.builds(
        lambda n, s: random.Random(s).randbytes(n), st.integers(0, 4096), st.integers(0, 99)
    ),
    cuts=st.lists(st.integers(1, 128), min_size=1, max_size=20),
    gaps=st.lists(st.sampled_from([0.0, 0.001, 0.01, 0.03, 0.07, 0.15]), min_size=1, max_size=20),
    first=st.lists(_SPECS, min_size=1, max_size=4),
    second=st.lists(_SPECS, max_size=4),
    rebuild_at=st.integers(1, 4),
    direction=st.sampled_from(["upstream", "downstream"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_every_byte_arrives_in_order_then_the_end(
    payload: bytes,
    cuts: list[int],
    gaps: list[float],
    first: list[tuple[str, dict[str, int]]],
    second: list[tuple[str, dict[str, int]]],
    rebuild_at: int,
    direction: str,
    seed: int,
) -> None:
    ctx = LinkContext(direction, ConnectionContext(1, "p"), random.Random(seed))  # type: ignore[arg-type]
    now = 0.0
    chain = _build(first, ctx, now) if first else None
    out: list[object] = []

    def feed(item: Piece | End) -> None:
        if chain is None:
            out.append(item)
        else:
            chain.feed(item, now)

    def advance(until: float) -> None:
        nonlocal now
        while chain is not None:
            for item in chain.poll(now):
                out.append(item)
            due = chain.deadline()
            if due is None or due > until:
                break
            now = max(now, due)
        now = max(now, until)

    position = 0
    k = 0
    while position < len(payload):
        size = cuts[k % len(cuts)]
        feed(Piece(payload[position : position + size], now))
        position += size
        advance(now + gaps[k % len(gaps)])
        k += 1
        if k == rebuild_at:
            held = chain.drain() if chain is not None else []
            chain = _build(second, ctx, now) if second else None
            for item in held:
                feed(item)  # type: ignore[arg-type]
    feed(End("eof"))
    advance(float("inf"))

    assert chain is None or chain.deadline() is None
    data = b"".join(i.data for i in out if isinstance(i, Piece))
    assert data == payload
    assert out and out[-1] == End("eof")
    assert sum(isinstance(i, End) for i in out) == 1
