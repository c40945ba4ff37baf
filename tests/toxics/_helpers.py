"""Drive sans-IO stages and chains with an explicit clock."""

from __future__ import annotations

import random

from pytest_chaos.toxics import (
    Chain,
    ConnectionContext,
    End,
    Item,
    LinkContext,
    Piece,
    Stage,
    get_toxic_class,
)


def link(direction: str = "downstream", seed: int = 1) -> LinkContext:
    """A link context with a seeded RNG and no-op stats/notes."""
    return LinkContext(direction, ConnectionContext(1, "p"), random.Random(seed))  # type: ignore[arg-type]


def stage(type_name: str, now: float = 0.0, **attributes: object) -> Stage:
    """A stage of a built-in toxic."""
    cls = get_toxic_class(type_name)
    assert cls is not None
    return cls.from_attributes(attributes).start(link(), now, None)


def chain(*specs: tuple[str, dict[str, object]], direction: str = "downstream") -> Chain:
    """A chain of stages, e.g. chain(("latency", {"latency": 10}))."""
    ctx = link(direction)
    stages = []
    for type_name, attributes in specs:
        cls = get_toxic_class(type_name)
        assert cls is not None
        stages.append(cls.from_attributes(attributes).start(ctx, 0.0, None))
    return Chain(stages)


def run_until_idle(ch: Chain, start: float = 0.0, limit: float = 1e6) -> list[tuple[float, Item]]:
    """Poll at every deadline until nothing is pending; (time, item) pairs."""
    out: list[tuple[float, Item]] = []
    now = start
    for item in ch.poll(now):
        out.append((now, item))
    while (due := ch.deadline()) is not None and due <= limit:
        now = max(now, due)
        for item in ch.poll(now):
            out.append((now, item))
    return out


def data_of(items: list[tuple[float, Item]]) -> bytes:
    """The bytes of the pieces."""
    return b"".join(i.data for _, i in items if isinstance(i, Piece))


def ends_of(items: list[tuple[float, Item]]) -> list[tuple[float, str]]:
    """(time, kind) of the ends."""
    return [(t, i.kind) for t, i in items if isinstance(i, End)]
