"""A chain of stages: the whole sans-IO pipeline of one link.

The link feeds items read from its source, polls what is due and writes it; it sleeps
until :meth:`Chain.deadline`. Replacing the chain (a toxic added, updated or removed)
drains the old stages in order and refeeds the new ones, so no byte is lost or reordered.
"""

from __future__ import annotations

from pytest_chaos.toxics._base import Deliver, End, Item, Piece, Reply, Stage

__all__ = ["Chain"]


class Chain:
    """Stages in order; items flow from the first to the last."""

    __slots__ = ("_one", "stages")

    def __init__(self, stages: list[Stage]) -> None:
        self.stages = stages
        #: the only stage, if there is one (most chains): no loops then
        self._one = stages[0] if len(stages) == 1 else None

    def feed(self, item: Item, now: float) -> None:
        """An item read from the source at ``now``."""
        self.stages[0].accept(item, now)

    def take(self, data: bytes, now: float) -> bytes | None:
        """Bytes read from the source at ``now`` (:meth:`Stage.take`): the bytes to
        write at once if the chain passed them straight through, else None (poll)."""
        one = self._one
        if one is not None:
            return one.take(data, now)
        self.stages[0].accept(Piece(data, now), now)
        return None

    def poll(self, now: float) -> list[Item]:
        """Everything that leaves the chain at ``now``, in order."""
        one = self._one
        if one is not None:
            return one.poll(now)
        stages = self.stages
        last = len(stages) - 1
        out: list[Item] = []
        for i, stage in enumerate(stages):
            if stage.deadline() is None:
                continue
            ready = stage.poll(now)
            if i == last:
                out.extend(ready)
                continue
            nxt = stages[i + 1]
            for item in ready:
                if isinstance(item, Reply | Deliver):
                    out.append(item)
                else:
                    nxt.accept(item, now)
        return out

    def deadline(self) -> float | None:
        """The earliest time a stage has something due."""
        if self._one is not None:
            return self._one.deadline()
        best: float | None = None
        for stage in self.stages:
            due = stage.deadline()
            if due is not None and (best is None or due < best):
                best = due
        return best

    def status(self) -> tuple[float | None, int]:
        """:meth:`deadline` and :meth:`buffered` in one call (the link asks after each
        poll)."""
        one = self._one
        if one is not None:
            return one.deadline(), one.buffered
        return self.deadline(), self.buffered()

    def buffered(self) -> int:
        """Bytes held by the stages (for backpressure)."""
        if self._one is not None:
            return self._one.buffered
        return sum(stage.buffered for stage in self.stages)

    def drain(self) -> list[Item]:
        """Everything still held, oldest first (later stages hold older data)."""
        items: list[Item] = []
        for stage in reversed(self.stages):
            items.extend(stage.drain())
        # An End that was pending in a later stage precedes data still in earlier ones
        # only if the source ended, in which case earlier stages hold nothing new.
        return items

    def __repr__(self) -> str:
        return f"<Chain stages={len(self.stages)} buffered={self.buffered()}>"


def pieces(items: list[Item]) -> bytes:
    """The bytes of the :class:`Piece` items (for tests and tooling)."""
    return b"".join(item.data for item in items if isinstance(item, Piece))


def ends(items: list[Item]) -> list[str]:
    """The kinds of the :class:`End` items."""
    return [item.kind for item in items if isinstance(item, End)]
