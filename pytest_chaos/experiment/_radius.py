"""The checks every injection passes before anything is applied."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_chaos.errors import BlastRadiusError
from pytest_chaos.experiment._spec import ChaosSpec

__all__ = ["check_injection"]


def check_injection(
    spec: ChaosSpec | None,
    *,
    nodeid: str,
    targets: Sequence[str],
    kind: str,
    active: Sequence[str],
) -> None:
    """Raise :class:`BlastRadiusError` unless the test may inject ``kind`` into ``targets``.

    ``active`` describes the faults already active (for ``max_concurrent_faults``).
    """
    if spec is None:
        first = targets[0] if targets else "?"
        raise BlastRadiusError(
            f"{nodeid} injects {kind!r} into {first!r} but has no @pytest.mark.chaos "
            f"marker; every fault needs a blast radius. Add "
            f"@pytest.mark.chaos(blast_radius=[{first!r}]) to the test."
        )
    radius = spec.blast_radius
    for target in targets:
        if not radius.allows(target):
            rule = (
                "excludes"
                if radius.exclude and any(_match(target, p) for p in radius.exclude)
                else "does not include"
            )
            raise BlastRadiusError(
                f"blast_radius {rule} {target!r}; this test may fault {radius.describe()}. "
                f"Add {target!r} to @pytest.mark.chaos(blast_radius=...) or fault a target "
                f"in the radius."
            )
    limit = radius.max_concurrent_faults
    if limit is not None and len(active) >= limit:
        raise BlastRadiusError(
            f"max_concurrent_faults={limit} reached: cannot inject {kind!r} into "
            f"{', '.join(map(repr, targets))} while {len(active)} fault(s) are active "
            f"({', '.join(active)}). Heal one first (fault.heal() or a with-block) or raise "
            f"BlastRadius(max_concurrent_faults=...)."
        )


def _match(target: str, pattern: str) -> bool:
    import fnmatch

    return fnmatch.fnmatchcase(target, pattern)
