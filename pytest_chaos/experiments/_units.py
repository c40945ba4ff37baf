"""Strict unit strings of YAML experiments: ``200ms``, ``30s``, ``15m``, ``2%``, ``20/s``,
``1KB/s``, ``64MiB``. A bare number is refused: the unit says what the number means."""

from __future__ import annotations

import re

__all__ = [
    "UnitError",
    "parse_bandwidth",
    "parse_duration",
    "parse_mib",
    "parse_percent",
    "parse_rate",
]


class UnitError(ValueError):
    """A value that is not a strict unit string; the message names the rule and the fix."""


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$")
_FACTOR = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: object) -> float:
    """``"200ms"`` -> 0.2 (seconds); units ms, s, m, h."""
    match = _DURATION.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise UnitError(
            f"{value!r} is not a duration; write a number with a unit: 200ms, 30s, 15m or 1h"
        )
    return float(match.group(1)) * _FACTOR[match.group(2)]


def parse_percent(value: object) -> float:
    """``"2%"`` -> 0.02."""
    match = re.match(r"^(\d+(?:\.\d+)?)%$", value.strip()) if isinstance(value, str) else None
    if match is None or float(match.group(1)) > 100:
        raise UnitError(f"{value!r} is not a percentage; write 0% to 100%, e.g. 2% or 0.5%")
    return float(match.group(1)) / 100.0


def parse_rate(value: object) -> float:
    """``"20/s"`` -> 20.0 calls a second (also ``/m``)."""
    match = re.match(r"^(\d+(?:\.\d+)?)/(s|m)$", value.strip()) if isinstance(value, str) else None
    if match is None or float(match.group(1)) <= 0:
        raise UnitError(f"{value!r} is not a rate; write calls per second or minute: 20/s, 600/m")
    return float(match.group(1)) / (1.0 if match.group(2) == "s" else 60.0)


def parse_bandwidth(value: object) -> float:
    """``"1KB/s"`` -> 1.0 (KB/s, Toxiproxy's unit); also ``MB/s``."""
    match = (
        re.match(r"^(\d+(?:\.\d+)?)(KB|MB)/s$", value.strip()) if isinstance(value, str) else None
    )
    if match is None:
        raise UnitError(f"{value!r} is not a bandwidth; write 1KB/s or 2MB/s")
    return float(match.group(1)) * (1.0 if match.group(2) == "KB" else 1024.0)


def parse_mib(value: object) -> int:
    """``"64MiB"`` -> 64, ``"1GiB"`` -> 1024 (whole MiB)."""
    match = re.match(r"^(\d+)(MiB|GiB)$", value.strip()) if isinstance(value, str) else None
    if match is None or int(match.group(1)) == 0:
        raise UnitError(f"{value!r} is not a size; write whole mebibytes or gibibytes: 64MiB, 1GiB")
    return int(match.group(1)) * (1 if match.group(2) == "MiB" else 1024)
