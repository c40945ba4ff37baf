"""The ``@pytest.mark.chaos(blast_radius=...)`` marker, parsed into a frozen spec.

The marker is checked when the test is collected, so a mistake in it is a collection
error that names the test, the argument, what is allowed and the fix, long before any
fault could be injected.
"""

from __future__ import annotations

import pytest

from pytest_chaos.errors import ConfigurationError
from pytest_chaos.experiment import FIX as _FIX
from pytest_chaos.experiment import BlastRadius, ChaosSpec

__all__ = ["MARKER_HELP", "BlastRadius", "ChaosSpec", "parse_marker", "spec_for"]

MARKER_HELP = (
    "chaos(blast_radius=[...] or BlastRadius(targets=[...], exclude=[...], "
    "max_concurrent_faults=None, max_fault_seconds=None)): a chaos experiment that may "
    "fault only the named targets"
)

_ALLOWED_KWARGS = ("blast_radius",)


_SPEC_KEY = pytest.StashKey["ChaosSpec | None"]()


def parse_marker(item: pytest.Item) -> ChaosSpec | None:
    """Parse the closest ``chaos`` marker of ``item``; ``None`` if it has none.

    Raises :class:`ConfigurationError` naming the test, the argument and the fix.
    """
    mark = item.get_closest_marker("chaos")
    if mark is None:
        return None
    where = f"{item.nodeid}: @pytest.mark.chaos"
    if mark.args:
        raise ConfigurationError(
            f"{where} got positional arguments {list(mark.args)!r}; it takes only the "
            f"keyword blast_radius. {_FIX}"
        )
    unknown = sorted(set(mark.kwargs) - set(_ALLOWED_KWARGS))
    if unknown:
        raise ConfigurationError(
            f"{where} got unknown argument(s) {unknown}; allowed: {list(_ALLOWED_KWARGS)}. "
            "Limits go inside BlastRadius(max_concurrent_faults=..., max_fault_seconds=...)."
        )
    if "blast_radius" not in mark.kwargs:
        raise ConfigurationError(
            f"{where} needs blast_radius: the targets this test may fault. {_FIX}"
        )
    raw = mark.kwargs["blast_radius"]
    if isinstance(raw, BlastRadius):
        radius = raw
    elif isinstance(raw, list | tuple):
        radius = BlastRadius(targets=tuple(raw))
    else:
        raise ConfigurationError(
            f"{where}: blast_radius={raw!r} is a {type(raw).__name__}; allowed are a list "
            f"of target names or a BlastRadius. {_FIX}"
        )
    radius.validate(f"{where}")
    return ChaosSpec(nodeid=item.nodeid, blast_radius=radius)


def spec_for(item: pytest.Item) -> ChaosSpec | None:
    """The spec parsed at collection (parsing now if collection did not)."""
    if _SPEC_KEY not in item.stash:
        item.stash[_SPEC_KEY] = parse_marker(item)
    return item.stash[_SPEC_KEY]
