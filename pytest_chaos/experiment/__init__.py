"""The experiment of one test: `Chaos` (the ``chaos`` fixture), its faults and safety.

- `Chaos` (_chaos.py): proxies, the one injection mechanism, checks and faults bound
  to the test, teardown with the server check;
- `ChaosProxy` (_proxy_handle.py): the handle a test holds for one proxy, with the
  fault methods;
- `Fault` (_fault.py): one injected fault, healed once;
- service faults (_service_faults.py) and message faults (_messages.py): functions
  that `Chaos` binds as its methods;
- zones and regions: `chaos.group(name, members)` returns a `FaultGroup` whose faults
  hit every member as one injection (_groups.py);
- game days: `chaos.schedule(steps)` with `Step`, `SteadyState`, `Recovers`,
  `AbortWhen`, returning a `ScheduleRun` (_schedule.py);
- safety: `BlastRadius` and `ChaosSpec` (_spec.py), the injection checks (_radius.py),
  the undo stack and end-of-session rollback (_rollback.py), the safety timer (_timer.py) and
  run-scoped names on shared servers (_names.py);
- the reaper of external servers: the watchdog process (_reaper.py) and each pytest
  process's link to it (_reaper_link.py).

Names load lazily: the plugin imports this package at load time for run ids and the
end-of-session rollback, and the controller must not come with them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_chaos.lazy import lazy_attributes

__all__ = [
    "FIX",
    "AbortWhen",
    "BlastRadius",
    "Chaos",
    "ChaosProxy",
    "ChaosSpec",
    "Corrupter",
    "Duplicator",
    "Fault",
    "FaultGroup",
    "ReaperHandle",
    "ReaperLink",
    "Recovers",
    "ScheduleRun",
    "SessionRollback",
    "SteadyState",
    "Step",
    "dead_run_proxies",
    "new_run_id",
    "server_name",
    "start_reaper",
]

_LAZY = {
    "AbortWhen": "pytest_chaos.experiment._schedule",
    "Recovers": "pytest_chaos.experiment._schedule",
    "ScheduleRun": "pytest_chaos.experiment._schedule",
    "SteadyState": "pytest_chaos.experiment._schedule",
    "Step": "pytest_chaos.experiment._schedule",
    "Chaos": "pytest_chaos.experiment._chaos",
    "ChaosProxy": "pytest_chaos.experiment._proxy_handle",
    "Fault": "pytest_chaos.experiment._fault",
    "FaultGroup": "pytest_chaos.experiment._groups",
    "Duplicator": "pytest_chaos.experiment._messages",
    "Corrupter": "pytest_chaos.experiment._messages",
    "FIX": "pytest_chaos.experiment._spec",
    "BlastRadius": "pytest_chaos.experiment._spec",
    "ChaosSpec": "pytest_chaos.experiment._spec",
    "SessionRollback": "pytest_chaos.experiment._rollback",
    "ReaperHandle": "pytest_chaos.experiment._reaper_link",
    "ReaperLink": "pytest_chaos.experiment._reaper_link",
    "start_reaper": "pytest_chaos.experiment._reaper_link",
    "dead_run_proxies": "pytest_chaos.experiment._names",
    "new_run_id": "pytest_chaos.experiment._names",
    "server_name": "pytest_chaos.experiment._names",
}

if TYPE_CHECKING:
    from pytest_chaos.experiment._chaos import Chaos
    from pytest_chaos.experiment._fault import Fault
    from pytest_chaos.experiment._groups import FaultGroup
    from pytest_chaos.experiment._messages import Corrupter, Duplicator
    from pytest_chaos.experiment._names import dead_run_proxies, new_run_id, server_name
    from pytest_chaos.experiment._proxy_handle import ChaosProxy
    from pytest_chaos.experiment._reaper_link import ReaperHandle, ReaperLink, start_reaper
    from pytest_chaos.experiment._rollback import SessionRollback
    from pytest_chaos.experiment._schedule import (
        AbortWhen,
        Recovers,
        ScheduleRun,
        SteadyState,
        Step,
    )
    from pytest_chaos.experiment._spec import FIX, BlastRadius, ChaosSpec

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)
