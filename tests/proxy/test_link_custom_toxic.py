"""A toxic type registered from outside, through the public toxic interface."""

from __future__ import annotations

import time
from collections.abc import Callable

from pytest_chaos.toxics import (
    Attribute,
    Item,
    LinkContext,
    Piece,
    Stage,
    Toxic,
    register_toxic,
)

from .conftest import Helper, Upstream, recv_exactly


class _SwallowStage(Stage):
    """Drops bytes up to and including the first ``marker``; passes the rest."""

    def __init__(self, marker: bytes) -> None:
        super().__init__()
        self.marker = marker
        self.done = False

    def feed(self, item: Item, now: float) -> None:
        if self.done or not isinstance(item, Piece):
            self.emit(item, now)
            return
        cut = item.data.find(self.marker)
        if cut >= 0:
            self.done = True
            rest = item.data[cut + len(self.marker) :]
            if rest:
                self.emit(Piece(rest, item.stamp), now)

    def finishing(self) -> bool:
        return not self.done


@register_toxic
class SwallowUntil(Toxic):
    """Test toxic: swallow the stream up to a marker byte."""

    type_name = "test_swallow_until"
    attributes = (Attribute("marker", kind=str, default="!", minimum=None),)

    def start(self, link: LinkContext, now: float, previous: Stage | None) -> Stage:
        if isinstance(previous, _SwallowStage):
            return previous  # keeps its progress across restarts
        marker = self.values["marker"]
        assert isinstance(marker, str)
        return _SwallowStage(marker.encode())


def test_a_registered_toxic_works_and_a_finishing_stage_outlives_its_removal(
    helper: Helper, upstream: Callable[..., Upstream]
) -> None:
    proxy = helper.proxy(upstream().address)
    name = helper.toxic(proxy, "test_swallow_until", marker="!")
    sock = helper.connect(proxy)
    sock.sendall(b"abc")  # echoed, then swallowed
    time.sleep(0.2)
    helper.remove(proxy, name)  # the stage has not seen its marker: it stays
    sock.sendall(b"x!")  # still swallowed, and the stage is done
    time.sleep(0.2)
    sock.sendall(b"ok")
    assert recv_exactly(sock, 2) == b"ok"
    stages = helper.lt.call(lambda: [list(c.down.stages) for c in proxy.connections if c.down])
    assert stages == [[]]
