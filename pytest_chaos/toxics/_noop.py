"""noop: passes data through unchanged."""

from __future__ import annotations

from pytest_chaos.toxics._base import LinkContext, Stage, Toxic
from pytest_chaos.toxics._registry import register_toxic

__all__ = ["NoopToxic"]


@register_toxic
class NoopToxic(Toxic):
    """Does nothing; useful to test the plumbing."""

    type_name = "noop"

    def start(self, link: LinkContext, now: float, previous: Stage | None) -> Stage:
        return Stage()
