"""slicer: cut chunks into pieces of about average_size ± size_variation bytes."""

from __future__ import annotations

from pytest_chaos.toxics._base import Attribute, LinkContext, Stage, Toxic, ToxicConfigError
from pytest_chaos.toxics._pacing import PacedStage
from pytest_chaos.toxics._registry import register_toxic

__all__ = ["SlicerToxic"]


class SlicerStage(PacedStage):
    """Emits slices one ``delay`` apart (Toxiproxy also waits after the last slice)."""

    def __init__(self, average: int, variation: int, delay_s: float, link: LinkContext) -> None:
        super().__init__()
        self.average = average
        self.variation = min(variation, average - 1)
        self.delay_s = delay_s
        self.rng = link.rng

    def slice_size(self) -> int:
        if not self.variation:
            return self.average
        return self.average + self.rng.randint(-self.variation, self.variation)

    def leaves_at(self, start: float, size: int) -> float:
        return start

    def next_start(self, left_at: float, size: int) -> float:
        return left_at + self.delay_s


@register_toxic
class SlicerToxic(Toxic):
    """Slices data into small pieces with an optional delay between them."""

    type_name = "slicer"
    attributes = (
        Attribute("average_size", minimum=None, unit="bytes", doc="mean slice size"),
        Attribute("size_variation", unit="bytes", doc="slices vary by up to this many bytes"),
        Attribute("delay", unit="microseconds", doc="pause between slices"),
    )

    def check(self) -> None:
        average = self.int("average_size")
        if average <= 0:
            raise ToxicConfigError(
                f"attribute 'average_size' of toxic type 'slicer' must be > 0 (bytes), got "
                f"{average}; Toxiproxy would loop forever on it: use at least 1"
            )

    def start(self, link: LinkContext, now: float, previous: Stage | None) -> Stage:
        return SlicerStage(
            self.int("average_size"),
            self.int("size_variation"),
            self.int("delay") / 1_000_000,
            link,
        )
