"""timeout: drop all data; close after ``timeout`` ms without data (0: never)."""

from __future__ import annotations

from pytest_chaos.toxics._base import Attribute, End, Item, LinkContext, Stage, Toxic
from pytest_chaos.toxics._registry import register_toxic

__all__ = ["TimeoutToxic"]


class TimeoutStage(Stage):
    """Swallows pieces; each one re-arms the close, as Toxiproxy's loop does.

    Removing the toxic closes the connection if data was dropped: the byte stream has a
    hole, so resuming it would hand the peer garbage (Toxiproxy closes unconditionally).
    """

    def __init__(self, timeout_s: float, now: float, dropped: bool) -> None:
        super().__init__()
        self.timeout_s = timeout_s
        self.dropped = dropped
        self._arm(now)

    def _arm(self, now: float) -> None:
        self.cancel_pending()
        if self.timeout_s > 0:
            self.emit(End("close"), now + self.timeout_s)

    def feed(self, item: Item, now: float) -> None:
        if isinstance(item, End):
            self.cancel_pending()
            self.emit(item, now)
        else:
            self.dropped = True
            self._arm(now)

    def drain(self) -> list[Item]:
        # The dropped data is gone for good; only a real end of stream is handed on.
        items: list[Item] = [item for _, item in self._out if self.ended]
        self.cancel_pending()
        return items

    def on_remove(self) -> list[Item]:
        if self.dropped and not self.ended:
            self.ended = True
            return [End("close")]
        return []


@register_toxic
class TimeoutToxic(Toxic):
    """Stops all data; closes the connection after ``timeout`` ms of silence."""

    type_name = "timeout"
    idle_effect = True
    attributes = (
        Attribute("timeout", unit="milliseconds", doc="idle time before the close; 0 = never"),
    )

    def start(self, link: LinkContext, now: float, previous: Stage | None) -> Stage:
        dropped = previous.dropped if isinstance(previous, TimeoutStage) else False
        return TimeoutStage(self.int("timeout") / 1000, now, dropped)
