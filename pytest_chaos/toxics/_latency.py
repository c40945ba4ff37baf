"""latency: delay every chunk by latency ± jitter from when it was read."""

from __future__ import annotations

from pytest_chaos.toxics._base import Attribute, Item, LinkContext, Piece, Stage, Toxic
from pytest_chaos.toxics._registry import register_toxic

__all__ = ["LatencyToxic"]


class LatencyStage(Stage):
    """Holds each piece until its stamp plus the delay; the delay does not cap
    throughput because every piece waits from its own stamp, not after the last one."""

    def __init__(self, latency_s: float, jitter_s: float, link: LinkContext) -> None:
        super().__init__()
        self.latency_s = latency_s
        self.jitter_s = jitter_s
        self.rng = link.rng

    def feed(self, item: Item, now: float) -> None:
        if isinstance(item, Piece):
            delay = self.latency_s
            if self.jitter_s:
                delay += self.rng.uniform(-self.jitter_s, self.jitter_s)
            due = max(item.stamp + max(delay, 0.0), now)
            self.emit(Piece(item.data, item.stamp + max(delay, 0.0)), due)
        else:
            self.emit(item, now)


@register_toxic
class LatencyToxic(Toxic):
    """Adds ``latency`` ms (± ``jitter`` ms, uniform) to every chunk."""

    type_name = "latency"
    attributes = (
        Attribute("latency", unit="milliseconds", doc="delay added to each chunk"),
        Attribute("jitter", unit="milliseconds", doc="uniform random variation ±"),
    )

    def start(self, link: LinkContext, now: float, previous: Stage | None) -> Stage:
        return LatencyStage(self.int("latency") / 1000, self.int("jitter") / 1000, link)
