"""Exploration: one scenario, run under every fault on every dependency.

``@pytest.mark.chaos_explore(targets=[...], faults=[...])`` on a chaos test makes one
item per target x fault plus a baseline (docs/explore.md). Public here:

- :class:`Explored`: the cell an item runs (``chaos.explored`` in the scenario);
- :data:`DEFAULT_FAULTS`: the default catalogue per target kind (``tcp``, ``http``,
  ``service``: the TCP faults plus ``crash``),
  which the ``pytest_chaos_explore_faults`` hook extends;
- :func:`parse_explore` and :func:`cell_id`, for tools that list the cells.

The pytest glue is the sub-plugin ``pytest_chaos.explore._plugin``.
"""

from __future__ import annotations

from pytest_chaos.explore._cells import (
    DEFAULT_FAULTS,
    KINDS,
    Explored,
    ExplorePlan,
    cell_id,
    default_catalogue,
    parse_explore,
)

__all__ = [
    "DEFAULT_FAULTS",
    "KINDS",
    "ExplorePlan",
    "Explored",
    "cell_id",
    "default_catalogue",
    "parse_explore",
]
