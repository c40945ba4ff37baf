"""reset_peer: on data (or the close), drop it and reset the connection after ``timeout`` ms."""

from __future__ import annotations

from pytest_chaos.toxics._base import Attribute, End, Item, LinkContext, Stage, Toxic
from pytest_chaos.toxics._registry import register_toxic

__all__ = ["ResetPeerToxic"]


class ResetPeerStage(Stage):
    """The first item arms an RST; everything is dropped."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__()
        self.timeout_s = timeout_s
        self.armed = False

    def feed(self, item: Item, now: float) -> None:
        if not self.armed:
            self.armed = True
            self.emit(End("reset"), now + self.timeout_s)

    def drain(self) -> list[Item]:
        self.cancel_pending()
        return []


@register_toxic
class ResetPeerToxic(Toxic):
    """Simulates a TCP RST: the connection is aborted with SO_LINGER 0."""

    type_name = "reset_peer"
    attributes = (
        Attribute("timeout", unit="milliseconds", doc="wait after the first data before the RST"),
    )

    def start(self, link: LinkContext, now: float, previous: Stage | None) -> Stage:
        return ResetPeerStage(self.int("timeout") / 1000)
