"""A stage that cuts its input into slices released one at a time.

Slicer and bandwidth both turn one chunk into many small pieces. Cutting a 256 KiB read
into 1-byte slices up front would create a quarter of a million objects at once, so the
cutting is lazy: the stage keeps its input and cuts the next slice only when it is due,
at most :data:`MAX_PER_POLL` per poll, so that one link never monopolises the loop.
"""

from __future__ import annotations

import math
from collections import deque

from pytest_chaos.toxics._base import Item, Piece, Stage

__all__ = ["MAX_PER_POLL", "PacedStage"]

#: Slices one poll may return; the rest are due at once and follow on the next turn.
MAX_PER_POLL = 1024


class PacedStage(Stage):
    """Subclasses choose slice sizes and when each slice leaves.

    ``_free`` is when the next slice may start (virtual time, so that a busy link does
    not drift with timer lateness); the head slice is planned when it reaches the head.
    """

    def __init__(self) -> None:
        super().__init__()
        self._queue: deque[Item] = deque()
        self._offset = 0  # bytes of the head piece already sent
        self._free = -math.inf
        self._size = 0
        self._due = -math.inf

    def slice_size(self) -> int:
        """Size of the next slice (at least 1)."""
        raise NotImplementedError

    def leaves_at(self, start: float, size: int) -> float:
        """When a slice of ``size`` bytes that may start at ``start`` leaves."""
        raise NotImplementedError

    def next_start(self, left_at: float, size: int) -> float:
        """When the slice after one that left at ``left_at`` may start."""
        return left_at

    def _plan(self, now: float) -> None:
        start = max(now, self._free)
        head = self._queue[0]
        if isinstance(head, Piece):
            self._size = min(self.slice_size(), len(head.data) - self._offset)
            self._due = self.leaves_at(start, self._size)
        else:
            self._due = start  # an end leaves right after the slices before it

    def feed(self, item: Item, now: float) -> None:
        self._queue.append(item)
        if isinstance(item, Piece):
            self.buffered += len(item.data)
        if len(self._queue) == 1:
            self._plan(now)

    def deadline(self) -> float | None:
        return self._due if self._queue else None

    def poll(self, now: float) -> list[Item]:
        out: list[Item] = []
        queue = self._queue
        while queue and self._due <= now and len(out) < MAX_PER_POLL:
            head = queue[0]
            left_at = self._due
            if isinstance(head, Piece):
                part = head.data[self._offset : self._offset + self._size]
                self._offset += len(part)
                self.buffered -= len(part)
                out.append(Piece(part, head.stamp))
                self._free = self.next_start(left_at, len(part))
                if self._offset >= len(head.data):
                    queue.popleft()
                    self._offset = 0
            else:
                out.append(queue.popleft())
            if queue:
                self._plan(left_at)
        return out

    def drain(self) -> list[Item]:
        items = list(self._queue)
        if items and self._offset:
            head = items[0]
            assert isinstance(head, Piece)
            items[0] = Piece(head.data[self._offset :], head.stamp)
        self._queue.clear()
        self._offset = 0
        self.buffered = 0
        return items
