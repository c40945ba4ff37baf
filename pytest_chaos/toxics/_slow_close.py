"""slow_close: data passes; the close is delayed by ``delay`` ms."""

from __future__ import annotations

from pytest_chaos.toxics._base import Attribute, End, Item, LinkContext, Stage, Toxic
from pytest_chaos.toxics._registry import register_toxic

__all__ = ["SlowCloseToxic"]


class SlowCloseStage(Stage):
    """Passes pieces at once and holds the end of the stream for ``delay_s``."""

    def __init__(self, delay_s: float) -> None:
        super().__init__()
        self.delay_s = delay_s

    def feed(self, item: Item, now: float) -> None:
        if isinstance(item, End) and item.kind != "reset":
            self.emit(item, now + self.delay_s)
        else:
            self.emit(item, now)


@register_toxic
class SlowCloseToxic(Toxic):
    """Delays the close of the link by ``delay`` ms."""

    type_name = "slow_close"
    attributes = (Attribute("delay", unit="milliseconds", doc="how long the close waits"),)

    def start(self, link: LinkContext, now: float, previous: Stage | None) -> Stage:
        return SlowCloseStage(self.int("delay") / 1000)
