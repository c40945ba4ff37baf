"""bandwidth: limit a link to ``rate`` KB/s (KB = 1000 bytes)."""

from __future__ import annotations

from pytest_chaos.toxics._base import (
    Attribute,
    Item,
    LinkContext,
    Piece,
    Stage,
    Toxic,
    ToxicConfigError,
)
from pytest_chaos.toxics._registry import register_toxic

__all__ = ["BandwidthToxic"]


class BandwidthStage(Stage):
    """Releases each piece when a wire of the given rate would have carried it.

    ``free_at`` is virtual: while the link stays busy the schedule does not drift with
    timer lateness. Large pieces are cut into 100 ms slices like Toxiproxy does, so a
    slow rate still delivers bytes steadily.
    """

    def __init__(self, bytes_per_s: float) -> None:
        super().__init__()
        self.bytes_per_s = bytes_per_s
        self.slice = max(1, int(bytes_per_s / 10))
        self.free_at = float("-inf")

    def feed(self, item: Item, now: float) -> None:
        if not isinstance(item, Piece):
            self.emit(item, now)
            return
        t = max(now, self.free_at)
        data = item.data
        step = self.slice
        for i in range(0, len(data), step):
            part = data[i : i + step]
            t += len(part) / self.bytes_per_s
            self.emit(Piece(part, item.stamp), t)
        self.free_at = t


@register_toxic
class BandwidthToxic(Toxic):
    """Limits the link to ``rate`` KB/s."""

    type_name = "bandwidth"
    attributes = (Attribute("rate", minimum=None, unit="KB/s", doc="1 KB = 1000 bytes"),)

    def check(self) -> None:
        rate = self.int("rate")
        if rate <= 0:
            raise ToxicConfigError(
                f"attribute 'rate' of toxic type 'bandwidth' must be > 0 (KB/s), got {rate}; "
                "a rate of 0 would stall the link forever: use at least 1, or a timeout "
                "toxic to stop the traffic"
            )

    def start(self, link: LinkContext, now: float, previous: Stage | None) -> Stage:
        return BandwidthStage(self.int("rate") * 1000.0)
