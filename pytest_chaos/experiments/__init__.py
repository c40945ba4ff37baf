"""YAML experiments: strict unit strings and fault names (the parsers exploration shares),
the loader with line numbers (``_loader``, checked against ``experiment.schema.json``),
the runner (``_runner``) and the pytest collector (``_collector``, a sub-plugin).

This package imports nothing heavy: yaml loads only when a YAML file is collected.
"""

from __future__ import annotations

from pytest_chaos.experiments._faults import FAULTS, FaultSpec, parse_fault
from pytest_chaos.experiments._units import (
    UnitError,
    parse_bandwidth,
    parse_duration,
    parse_percent,
    parse_rate,
)

__all__ = [
    "FAULTS",
    "FaultSpec",
    "UnitError",
    "parse_bandwidth",
    "parse_duration",
    "parse_fault",
    "parse_percent",
    "parse_rate",
]
