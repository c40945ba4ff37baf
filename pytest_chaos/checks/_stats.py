"""Reading proxy counters for the black-box checks (circuit_breaker, retries).

A ``proxy`` is anything with a ``stats()`` method (``ChaosProxy``) or a zero-argument
callable, returning the stats JSON of docs/internals.md as a mapping or an object
with the counters as attributes. Counters are cumulative: checks take differences.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pytest_chaos.errors import CheckError

__all__ = ["COUNTERS", "Counters"]

#: the counters of the stats extension that a check may watch
COUNTERS = (
    "connections_accepted",
    "connections_open",
    "connections_failed",
    "bytes_upstream",
    "bytes_downstream",
    "http_requests",
    "http_responses",
)


class Counters:
    """Reads selected counters of one proxy."""

    def __init__(self, proxy: object, counters: Sequence[str], *, check: str) -> None:
        reader = getattr(proxy, "stats", None)
        if reader is None and callable(proxy):
            reader = proxy
        if reader is None or not callable(reader):
            raise CheckError(
                f"{check}: proxy={proxy!r} has no stats(); pass the ChaosProxy the "
                f"dependency is reached through (embedded backend) or a callable "
                f"returning its stats"
            )
        if isinstance(counters, str):
            counters = (counters,)
        unknown = [c for c in counters if c not in COUNTERS]
        if not counters or unknown:
            raise CheckError(
                f"{check}: unknown proxy counter(s) {unknown or list(counters)!r}; "
                f"choose from {list(COUNTERS)}"
            )
        self._read: Callable[[], Any] = reader
        self.counters = tuple(counters)
        self.check = check
        self.name = str(getattr(proxy, "name", "") or "")

    def read(self) -> dict[str, int]:
        """The current values of the watched counters."""
        raw = self._read()
        values: dict[str, int] = {}
        for key in self.counters:
            value = raw.get(key) if isinstance(raw, Mapping) else getattr(raw, key, None)
            if not isinstance(value, int):
                raise CheckError(
                    f"{self.check}: the proxy stats have no integer {key!r} (got "
                    f"{raw!r}); counters come from the embedded backend's stats extension"
                )
            values[key] = value
        return values

    @staticmethod
    def delta(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
        """Per-counter growth between two reads."""
        return {k: after[k] - before[k] for k in before}

    def __repr__(self) -> str:
        return f"<Counters {self.name!r} {list(self.counters)}>"
