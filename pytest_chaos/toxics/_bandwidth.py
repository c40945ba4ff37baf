"""bandwidth: limit a link to ``rate`` KB/s (KB = 1000 bytes)."""

from __future__ import annotations

from pytest_chaos.toxics._base import Attribute, LinkContext, Stage, Toxic, ToxicConfigError
from pytest_chaos.toxics._pacing import PacedStage
from pytest_chaos.toxics._registry import register_toxic

__all__ = ["BandwidthToxic"]


class BandwidthStage(PacedStage):
    """Releases each slice when a wire of the given rate would have carried it.

    Slices are 100 ms worth of bytes, like Toxiproxy's, so a slow rate still delivers
    steadily; the schedule is virtual, so a busy link does not drift with timer lateness.
    """

    def __init__(self, bytes_per_s: float) -> None:
        super().__init__()
        self.bytes_per_s = bytes_per_s
        self.slice = max(1, int(bytes_per_s / 10))

    def slice_size(self) -> int:
        return self.slice

    def leaves_at(self, start: float, size: int) -> float:
        return start + size / self.bytes_per_s


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
