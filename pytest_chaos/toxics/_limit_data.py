"""limit_data: pass exactly ``bytes`` bytes, then close the connection."""

from __future__ import annotations

from pytest_chaos.toxics._base import Attribute, End, Item, LinkContext, Piece, Stage, Toxic
from pytest_chaos.toxics._registry import register_toxic

__all__ = ["LimitDataToxic"]


class LimitDataStage(Stage):
    """Counts the bytes it let through; the count survives updates of the toxic."""

    def __init__(self, limit: int, transmitted: int) -> None:
        super().__init__()
        self.limit = limit
        self.transmitted = transmitted

    def feed(self, item: Item, now: float) -> None:
        if not isinstance(item, Piece):
            self.emit(item, now)
            return
        remaining = max(self.limit - self.transmitted, 0)
        data = item.data[:remaining]
        if data:
            self.transmitted += len(data)
            self.emit(Piece(data, item.stamp), now)
        if self.transmitted >= self.limit:
            self.ended = True
            self.emit(End("close"), now)


@register_toxic
class LimitDataToxic(Toxic):
    """Closes the connection once ``bytes`` bytes went through the link."""

    type_name = "limit_data"
    attributes = (Attribute("bytes", unit="bytes", doc="bytes let through before the close"),)

    def start(self, link: LinkContext, now: float, previous: Stage | None) -> Stage:
        transmitted = previous.transmitted if isinstance(previous, LimitDataStage) else 0
        return LimitDataStage(self.int("bytes"), transmitted)
