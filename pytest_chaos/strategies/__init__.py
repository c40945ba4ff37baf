"""Hypothesis strategies of chaos: timed fault schedules, shrunk to the minimal failing one.

- :func:`fault_schedules` (_strategy.py): the strategy; :func:`schedule_settings`, the
  Hypothesis settings a schedule test needs (no deadline, fixtures reused);
- :class:`FaultSchedule` and :class:`ScheduledFault` (_schedule.py): the schedules it
  generates, printable as a ``chaos.schedule`` snippet and YAML ``method`` steps;
  ``chaos.run_schedule(schedule, scenario)`` runs one.

Hypothesis is an optional extra (``pip install 'pytest-chaos[explore]'``): it is imported
when a strategy is built, never by the plugin; without it the error names the extra.
"""

from __future__ import annotations

from pytest_chaos.strategies._schedule import FaultSchedule, ScheduledFault, format_seconds
from pytest_chaos.strategies._strategy import fault_schedules, schedule_settings

__all__ = [
    "FaultSchedule",
    "ScheduledFault",
    "fault_schedules",
    "format_seconds",
    "schedule_settings",
]
