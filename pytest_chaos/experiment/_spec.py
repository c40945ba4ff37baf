"""What a chaos test may fault: `BlastRadius` and the parsed marker `ChaosSpec`.

Frozen values with no pytest dependency: the plugin parses the marker into them
(plugin/_marker.py) and the experiment checks every injection against them (_radius.py).
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_chaos.errors import ConfigurationError

__all__ = ["FIX", "BlastRadius", "ChaosSpec"]

#: how to write the marker, for every error message about it
FIX = (
    "Write @pytest.mark.chaos(blast_radius=['redis']) or "
    "@pytest.mark.chaos(blast_radius=BlastRadius(targets=['redis'], max_concurrent_faults=1))."
)

# a target name or a shell-style pattern over such names
_NAME = re.compile(r"^[A-Za-z0-9_.*?\[\]-]+$")


@dataclass(frozen=True)
class BlastRadius:
    """What a chaos test may fault, and how much at once.

    ``targets`` are proxy or service names (shell patterns such as ``"redis*"`` or
    ``"*"`` allowed); ``exclude`` removes names from them. ``max_concurrent_faults``
    caps the faults active at the same time; ``max_fault_seconds`` lets a safety timer
    heal any fault older than that. ``None`` means no limit.

    >>> BlastRadius(targets=["*"], exclude=["postgres"]).allows("redis")
    True
    """

    targets: Sequence[str] = ()
    exclude: Sequence[str] = ()
    max_concurrent_faults: int | None = None
    max_fault_seconds: float | None = None

    def __post_init__(self) -> None:
        # lists become tuples so the spec is hashable; wrong types are kept as given and
        # reported by validate() with the test's name
        for name in ("targets", "exclude"):
            value = getattr(self, name)
            if isinstance(value, list | tuple):
                object.__setattr__(self, name, tuple(value))

    def allows(self, target: str) -> bool:
        """True when ``target`` matches a target and no exclusion."""
        if any(fnmatch.fnmatchcase(target, pattern) for pattern in self.exclude):
            return False
        return any(fnmatch.fnmatchcase(target, pattern) for pattern in self.targets)

    def validate(self, where: str) -> None:
        """Raise :class:`ConfigurationError` naming ``where`` if any field is invalid."""
        for arg in ("targets", "exclude"):
            value = getattr(self, arg)
            if isinstance(value, str) or not isinstance(value, tuple):
                raise ConfigurationError(
                    f"{where}: BlastRadius({arg}={value!r}) must be a list of target names, "
                    f"got {type(value).__name__}. Write {arg}=[{value!r}] for a single name."
                )
            for name in value:
                if not isinstance(name, str) or not _NAME.match(name):
                    raise ConfigurationError(
                        f"{where}: BlastRadius {arg} entry {name!r} is not a target name; "
                        "names are non-empty strings of letters, digits, '-', '_', '.' "
                        "(and '*', '?', '[]' patterns). Use the name you give chaos.proxy() "
                        "or the service."
                    )
        if not self.targets:
            raise ConfigurationError(
                f"{where}: blast_radius is empty; a chaos test must name at least one "
                f"target it may fault. {FIX}"
            )
        both = sorted(set(self.targets) & set(self.exclude))
        if both:
            raise ConfigurationError(
                f"{where}: blast_radius names {both} both in targets and in exclude; a name "
                "must be one or the other. Remove it from one of the lists."
            )
        limit = self.max_concurrent_faults
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise ConfigurationError(
                f"{where}: max_concurrent_faults={limit!r} is not allowed; use a whole "
                "number >= 1, or None for no limit."
            )
        seconds = self.max_fault_seconds
        if seconds is not None and (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not math.isfinite(seconds)
            or seconds <= 0
        ):
            raise ConfigurationError(
                f"{where}: max_fault_seconds={seconds!r} is not allowed; use a number of "
                "seconds > 0 (e.g. 30), or None for no limit."
            )

    def to_json(self) -> dict[str, Any]:
        """The radius as the JSON the per-test record carries."""
        return {
            "targets": list(self.targets),
            "exclude": list(self.exclude),
            "max_concurrent_faults": self.max_concurrent_faults,
            "max_fault_seconds": (
                None if self.max_fault_seconds is None else float(self.max_fault_seconds)
            ),
        }

    def describe(self) -> str:
        """The targets a test may fault, for error messages: ``['redis']``."""
        text = repr(list(self.targets))
        if self.exclude:
            text += f" excluding {list(self.exclude)!r}"
        return text


@dataclass(frozen=True)
class ChaosSpec:
    """The parsed chaos marker of one test."""

    nodeid: str
    blast_radius: BlastRadius = field(default_factory=BlastRadius)
